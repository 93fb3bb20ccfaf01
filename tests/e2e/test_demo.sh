#!/bin/bash
# The README's demo, driven as a person would: in tmux, press k to kill the
# backend serving client1, read the screen until client1 shows another
# backend, press q, check that everything was torn down.
set -uo pipefail
cd "$(dirname "$0")/../.."
command -v tmux >/dev/null || { echo "SKIP: needs tmux"; exit 77; }
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
S=wglb-demo-$$
ID=$(printf '%05d' $(($$ % 100000)))
screen() { tmux capture-pane -p -t "$S"; }
client1() { screen | awk '$1 == "client1" { print $2 }'; }
fail() { echo "FAIL: $*"; screen; tmux kill-session -t "$S" 2>/dev/null; exit 1; }
wait_screen() { # timeout description test-function
	local deadline=$((SECONDS + $1))
	until $3; do [ $SECONDS -ge $deadline ] && fail "timed out: $2"; sleep 0.2; done
}
tmux new-session -d -s "$S" -x 100 -y 40 "TOPO_ID=$$ WGLB_BUILD=${WGLB_BUILD:-$PWD/build} bash tests/e2e/demo.sh; sleep 2"
has_backend() { [[ "$(client1)" =~ ^b[1-3]$ ]]; }
wait_screen 60 "demo shows client1 on a backend" has_backend
first=$(client1)
echo "client1 on $first; pressing k"
tmux send-keys -t "$S" k
# Screens are read whole, then matched ("| grep -q" fails on SIGPIPE under pipefail).
shows_killed() { grep -q "killed WireGuard on $first" <<<"$(screen)"; }
wait_screen 10 "the kill shows in the events" shows_killed
shows_down() { grep -Eq "^$first +down" <<<"$(screen)"; }
wait_screen 15 "$first shown down" shows_down
t_kill=$SECONDS
moved() { local b; b=$(client1); [[ "$b" =~ ^b[1-3]$ ]] && [ "$b" != "$first" ]; }
wait_screen 30 "client1 moves off $first" moved
# Recovered: on another backend, more than 2 s after the kill, with a reply
# less than a second old (so it crossed the new backend).
recovers() {
	[ $((SECONDS - t_kill)) -ge 2 ] && moved &&
		screen | awk '$1 == "client1" { s = $4; sub("s", "", s); exit !($5 == "ago" && s + 0 < 1.0) }'
}
wait_screen 40 "client1's pings come back through the new backend" recovers
echo "client1 moved $first -> $(client1) with pings flowing; pressing q"
tmux send-keys -t "$S" q
gone() { ! grep -q -- "-$ID" <<<"$(ip netns list)"; }
wait_screen 20 "namespaces torn down" gone
tmux kill-session -t "$S" 2>/dev/null
echo "PASS: demo showed the failover and cleaned up"
