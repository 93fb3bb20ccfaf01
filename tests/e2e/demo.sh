#!/bin/bash
# SPDX-License-Identifier: MIT
# wglb's live demo: three real WireGuard clients (wireguard-go) reach an
# internal app through wglb and three backends that share one key, all in
# network namespaces on this machine. Kill or drain a backend and watch the
# clients move. Builds wglb first if needed. Run as root.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x build/lb/wglb ] || [ ! -x build/health/wg-health ]; then
	echo "building wglb..."
	{ [ -d build ] || meson setup build >/dev/null; } && ninja -C build >/dev/null || exit 1
fi
export TOPO_ID=${TOPO_ID:-$$}
source tests/e2e/topo.sh
CLIENTS=3
echo "starting: 1 balancer, 3 backends, $CLIENTS clients, 1 app (takes a few seconds)..."
# Instant failover on: each server's agent lets the new server start the
# handshake, so a client is back in well under a second (DEMO_AGENT=0 shows
# WireGuard's own ~15 s instead).
[ "${DEMO_AGENT:-1}" = 1 ] && export AGENT=1
topo_up 3 "$CLIENTS" 2>"$T/topo.log" || { cat "$T/topo.log"; exit 1; }
for i in $(seq 1 "$CLIENTS"); do ping_start "$i" 0.2; done
EVENTS=()
event() { EVENTS+=("$(date +%H:%M:%S) $*"); [ ${#EVENTS[@]} -gt 6 ] && EVENTS=("${EVENTS[@]:1}"); }
declare -A killed

ok_last() { # i seconds: replies in exactly the last N seconds (a whole-second cut let 27 of 25 in)
	awk -v now="$(date +%s.%N)" -v w="$2" '/bytes from/ { if (substr($1, 2, length($1) - 2) + 0 > now - w) n++ } END { print n + 0 }' "$T/ping$1.log"
}
last_reply_age() {
	awk -v now="$(date +%s.%N)" '/bytes from/ { t = substr($1, 2, length($1) - 2) } END { if (t) printf "%.1fs ago", now - t; else print "never" }' "$T/ping$1.log"
}

draw() {
	local out
	out=$(
		printf '\033[1mwglb demo\033[0m  real WireGuard through wglb in network namespaces   %s\n\n' "$(date +%H:%M:%S)"
		printf '%-8s %-10s %-6s %s\n' BACKEND STATE FLOWS "LAST HEALTH CHECK"
		ctl show backends | awk 'NR > 1 { printf "%-8s %-10s %-6s %s %s %s\n", $1, $3, $6, $9, $10, $11 }'
		printf '\n%-8s %-9s %-22s %s\n' CLIENT BACKEND "PINGS OK (last 5 s)" "LAST REPLY"
		for i in $(seq 1 "$CLIENTS"); do
			printf '%-8s %-9s %-22s %s\n' "client$i" "$(serving_backend "$i")" "$(ok_last "$i" 5)/25" "$(last_reply_age "$i")"
		done
		printf '\nre-pins: %s\n' "$(stat_json '", ".join(f"{k} {v}" for k, v in s["repins"].items())')"
		printf '\nevents:\n'
		for e in "${EVENTS[@]}"; do printf '  %s\n' "$e"; done
		printf '\nkeys: [k] kill the backend serving client1  [1-3] kill backend bN\n'
		printf '      [d] drain the backend serving client1  [r] restore all  [q] quit\n'
		if [ -n "${AGENT:-}" ]; then
			printf 'Instant failover is on: a killed backend is seen down in under a second and\n'
			printf 'the new backend starts the handshake itself (DEMO_AGENT=0: WireGuard waits ~15 s).\n'
		else
			printf 'A killed backend is seen down in under a second; each client moves at its\n'
			printf "next handshake (WireGuard retries ~15 s after its server goes silent).\n"
		fi
	)
	printf '\033[H\033[2J%s\n' "$out"
}

kill_be() { # name
	local j=${1#b}
	[ -n "${killed[$j]:-}" ] && return
	kill_backend_wg "$j"
	killed[$j]=1
	event "killed WireGuard on $1"
}

restore() {
	for j in "${!killed[@]}"; do start_backend_wg "$j"; unset "killed[$j]"; event "restarted WireGuard on b$j"; done
	for j in $(seq 1 "$N_BE"); do ctl backend enable "b$j" >/dev/null; done
	event "all backends enabled"
}

trap 'exit 130' INT TERM
while true; do
	draw
	key=""
	read -rsn1 -t 1 key || true
	case "$key" in
	k) b=$(serving_backend 1); [ -n "$b" ] && kill_be "$b" ;;
	[1-3]) kill_be "b$key" ;;
	d) b=$(serving_backend 1); [ -n "$b" ] && ctl backend drain "$b" >/dev/null && event "drained $b (clients move at their next handshake)" ;;
	r) restore ;;
	q) break ;;
	esac
done
printf '\ntearing down...\n'
