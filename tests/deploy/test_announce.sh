#!/bin/bash
# wglb-announce against a stand-in wglbctl (whose answers the test sets) in a
# private network namespace (the address goes on its lo): the first
# announcement waits until no enabled backend is still checking (a wglb
# that has not probed yet would pin clients elsewhere than the other
# balancers do), or WGLB_ANNOUNCE_SETTLE seconds; once announced, a backend
# checking again does not withdraw it; wglb not answering does, and the
# next announcement waits for settled probes again.
set -uo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root for a private network namespace"; exit 77; }
if [ -z "${IN_NETNS:-}" ]; then exec unshare -n env IN_NETNS=1 bash "$0" "$@"; fi
ip link set lo up
T=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
die() { echo "FAIL: $*"; cat "$T/announce.log"; exit 1; }
ADDR=203.0.113.77
cat >"$T/wglbctl" <<'STUB'
#!/bin/sh
# A stand-in wglbctl: counts its calls, answers from files the test writes.
echo >>"$STUB_DIR/calls"
[ -e "$STUB_DIR/answers" ] || exit 1
case "$3 $4" in
"show info") echo "wglb (stand-in)" ;;
"show backends")
	echo "NAME ADDRESS STATE ADMIN HEALTH FLOWS WEIGHT LAST"
	cat "$STUB_DIR/backends" ;;
*) exit 2 ;;
esac
STUB
chmod +x "$T/wglbctl"
be() { printf '%s\n' "$@" >"$T/backends"; } # lines: name admin health
row() { echo "$1 10.0.0.1:51820 x $2 $3 0 100 -"; }
announced() { # not "ip | grep -q": under pipefail, ip's SIGPIPE when grep quits early reads as "no"
	local a
	a=$(ip -o addr show dev lo) || die "ip addr"
	[[ $a == *" $ADDR/32 "* ]]
}
calls() { wc -l <"$T/calls"; }
checks_pass() { # wait until wglb-announce has asked N more times
	local want=$(($(calls) + $1)) i
	for i in $(seq 1 200); do [ "$(calls)" -ge "$want" ] && return 0; sleep 0.02; done
	die "wglb-announce stopped asking"
}
wait_state() { # up|down
	local i
	for i in $(seq 1 200); do
		if [ "$1" = up ]; then announced && return 0; else announced || return 0; fi
		sleep 0.02
	done
	die "never $1"
}
start() { # settle seconds
	SERVICE_V4=$ADDR WGLB_ANNOUNCE_IF=lo WGLB_SOCKET=/nonexistent WGLBCTL="$T/wglbctl" STUB_DIR="$T" \
		WGLB_ANNOUNCE_INTERVAL=0.02 WGLB_ANNOUNCE_SETTLE=$1 deploy/bgp/wglb-announce 2>>"$T/announce.log" &
	pid=$!
}
touch "$T/calls" "$T/answers"

# wglb answers, one backend still checking (one disabled and checking does not count).
be "$(row a enabled checking)" "$(row b enabled up)" "$(row c disabled checking)"
start 60
checks_pass 20
announced && die "announced while a backend was still checking"
be "$(row a enabled up)" "$(row b enabled up)" "$(row c disabled checking)"
wait_state up
echo "ok   the first announcement waits for the first probes"
be "$(row a enabled checking)" "$(row b enabled up)"
checks_pass 20
announced || die "withdrawn because a backend was checking again"
echo "ok   a backend checking again (re-enabled, added) does not withdraw"
rm "$T/answers"
wait_state down
echo "ok   wglb not answering withdraws"
touch "$T/answers"
checks_pass 20
announced && die "announced again before the probes settled"
be "$(row a enabled up)" "$(row b enabled down)"
wait_state up
echo "ok   back once no backend is checking (down counts as settled)"
kill "$pid"; wait "$pid" 2>/dev/null; pid=
announced && die "the address stayed after wglb-announce stopped"

# Probes that never settle: announced after WGLB_ANNOUNCE_SETTLE seconds.
be "$(row a enabled checking)"
start 1
wait_state up
echo "ok   announced after WGLB_ANNOUNCE_SETTLE when probes never settle"
echo "PASS: wglb-announce"
