#!/bin/bash
# SPDX-License-Identifier: MIT
# The reference article's topology in network namespaces, with real
# WireGuard (wireguard-go + wg) and wglb in place of NLB. Source it, then:
#   topo_up [BACKENDS] [CLIENTS]     build everything, wait until tunnels work
#   topo_down                        tear down (also runs on EXIT/INT/TERM)
# Every address lives in namespaces this script creates; nothing leaves.
#
#   client i (198.51.100.10+i) --brc-- [lb: wglb 0.0.0.0:51820] --brb-- backend j (10.10.10.10+j)
#   backend j: wireguard-go wgsJ (same key, 10.99.0.1), wg-health :8080, masquerade --bra-- app 10.10.21.130:8080
set -uo pipefail

TOPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${WGLB_BUILD:=$TOPO_ROOT/build}"
WGLB=$WGLB_BUILD/lb/wglb
WGLBCTL=$WGLB_BUILD/lb/wglbctl
WGHEALTH=$WGLB_BUILD/health/wg-health
ID=$(printf '%05d' $(( ${TOPO_ID:-$$} % 100000 )))
T=$(mktemp -d /tmp/wglb-e2e-$ID.XXXX)
NS_LB=wglb-$ID
NS_APP=wgapp-$ID
APP=10.10.21.130
LB_PUBLIC=198.51.100.1
N_BE=0
N_CL=0
TOPO_PIDS=()

source "$TOPO_ROOT/tests/e2e/pair.sh"
source "$TOPO_ROOT/tests/e2e/ecmp.sh"

log() { printf '%s %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }
ns_be() { echo "wgb$1-$ID"; }
ns_cl() { echo "wgc$1-$ID"; }
wg_be() { echo "wgs$1-$ID"; }
wg_cl() { echo "wgc$1-$ID"; }
ctl() { ip netns exec "$NS_LB" "$WGLBCTL" -s "$T/control.sock" "$@"; }

# wait_for TIMEOUT_S DESCRIPTION COMMAND...: poll until the command succeeds,
# for at least TIMEOUT_S seconds (the clock's nanoseconds: SECONDS counts
# whole seconds and could give up a second early).
wait_for() {
	local timeout=$1 what=$2; shift 2
	local deadline
	deadline=$(($(date +%s%N) + timeout * 1000000000))
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s%N)" -ge "$deadline" ] && { log "timed out after ${timeout}s: $what"; return 1; }
		sleep 0.1
	done
}

topo_require() {
	local missing=""
	for t in ip wg wireguard-go nft python3 curl ping; do
		command -v $t >/dev/null || missing="$missing $t"
	done
	[ -x "$WGLB" ] && [ -x "$WGHEALTH" ] || missing="$missing wglb-build($WGLB_BUILD)"
	[ "$(id -u)" = 0 ] || missing="$missing root"
	if [ -n "$missing" ]; then
		echo "SKIP: needs$missing" >&2
		exit 77
	fi
}

bg() { # bg NS LOGNAME CMD...: run in a namespace, remember the pid
	local ns=$1 name=$2; shift 2
	ip netns exec "$ns" "$@" >"$T/$name.log" 2>&1 &
	TOPO_PIDS+=($!)
	echo $! >"$T/$name.pid"
}

mkns() {
	ip netns add "$1" || die "ip netns add $1"
	ip -n "$1" link set lo up
}

veth_to_bridge() { # NS IFNAME BRIDGE_NS BRIDGE ADDR/PREFIX
	local ns=$1 ifn=$2 bns=$3 br=$4 addr=$5 peer="p$RANDOM$RANDOM"
	peer=${peer:0:14}
	ip link add "$ifn" netns "$ns" type veth peer name "$peer" netns "$bns" || die "veth $ns"
	ip -n "$bns" link set "$peer" master "$br" up
	ip -n "$ns" addr add "$addr" dev "$ifn"
	ip -n "$ns" link set "$ifn" up
}

start_backend_wg() { # j
	local j=$1 ns wgi
	ns=$(ns_be "$j"); wgi=$(wg_be "$j")
	bg "$ns" "wg-backend$j" wireguard-go -f "$wgi"
	wait_for 5 "wireguard-go $wgi" test -S "/var/run/wireguard/$wgi.sock" || die "wireguard-go $wgi"
	wg set "$wgi" listen-port 51820 private-key "$T/server.key" || die "wg set $wgi"
	for i in $(seq 1 "$N_CL"); do
		wg set "$wgi" peer "$(cat "$T/client$i.pub")" allowed-ips "10.99.0.$((100 + i))/32"
	done
	ip -n "$ns" addr add 10.99.0.1/24 dev "$wgi"
	ip -n "$ns" link set "$wgi" up
}

kill_backend_wg() { # j: the server dies (its wireguard-go and interface vanish)
	local pid
	pid=$(cat "$T/wg-backend$1.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rm -f "$T/wg-backend$1.pid" "/var/run/wireguard/$(wg_be "$1").sock"
}

agent_key_for() { # NAME: a backend's agent key from $T/agent.key, as ap_key_derive makes it
	python3 -c 'import base64, hashlib, sys
m = base64.b64decode(open(sys.argv[1]).read().strip())
print(base64.b64encode(hashlib.blake2b(b"wglb agent key v2\0" + sys.argv[2].encode(), key=m, digest_size=32).digest()).decode())' "$T/agent.key" "$1"
}

write_wglb_conf() { # extra lines for [balancer]
	{
		echo "[balancer]"
		echo "listen = 0.0.0.0:51820"
		echo "control = $T/control.sock"
		echo "max_flows = ${MAX_FLOWS:-1024}"
		# The suites run again with WGLB_TEST_WORKERS=2 (tests/meson.build).
		[ -n "${WGLB_TEST_WORKERS:-}" ] && echo "workers = $WGLB_TEST_WORKERS"
		echo "${1:-}" | sed "s|@SERVER_PUB@|$(cat "$T/server.pub")|"
		for j in $(seq 1 "${WGLB_BACKENDS:-$N_BE}"); do
			printf '\n[backend b%d]\naddress = 10.10.10.%d:51820\n' "$j" $((10 + j))
		done
		printf '\n[health]\nport = 8080\ninterval_ms = %s\ntimeout_ms = %s\nrise = 2\nfall = 2\n' \
			"${HEALTH_INTERVAL_MS:-500}" "${HEALTH_TIMEOUT_MS:-300}"
		[ -n "${AGENT:-}" ] && printf '\n[agent]\nport = 8081\nkey_file = %s\n' "$T/agent.key"
	} >"$T/wglb.conf"
}

start_wglb() {
	rm -f "$T/control.sock"
	bg "$NS_LB" wglb "$WGLB" -c "$T/wglb.conf"
	wait_for 5 "wglb control socket" test -S "$T/control.sock" || { cat "$T/wglb.log"; die "wglb did not start"; }
}

stop_wglb() {
	local pid
	pid=$(cat "$T/wglb.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rm -f "$T/wglb.pid"
}

client_up() { # i
	local i=$1 ns wgi
	ns=$(ns_cl "$i"); wgi=$(wg_cl "$i")
	bg "$ns" "wg-client$i" wireguard-go -f "$wgi"
	wait_for 5 "wireguard-go $wgi" test -S "/var/run/wireguard/$wgi.sock" || die "wireguard-go $wgi"
	# A fixed port per client makes Maglev's choice (a hash of IP and port) repeatable.
	wg set "$wgi" listen-port $((40000 + i)) private-key "$T/client$i.key" peer "$(cat "$T/server.pub")" \
		endpoint "$LB_PUBLIC:51820" allowed-ips 10.99.0.0/24,10.10.21.0/24 \
		persistent-keepalive 25 || die "wg set $wgi"
	ip -n "$ns" addr add "10.99.0.$((100 + i))/32" dev "$wgi"
	ip -n "$ns" link set "$wgi" up
	ip -n "$ns" route add 10.99.0.0/24 dev "$wgi"
	ip -n "$ns" route add 10.10.21.0/24 dev "$wgi"
}

# client_renew i port: client i forgets its session and starts a new one
# from a new source port: a new client as far as wglb can tell (a port
# change alone keeps the session on its backend: index routing).
client_renew() {
	local wgi
	wgi=$(wg_cl "$1")
	wg set "$wgi" peer "$(cat "$T/server.pub")" remove || return 1
	wg set "$wgi" listen-port "$2" peer "$(cat "$T/server.pub")" endpoint "$LB_PUBLIC:51820" \
		allowed-ips 10.99.0.0/24,10.10.21.0/24 persistent-keepalive 25
}

app_ok() { # i: client i reaches the internal app through the tunnel
	ip netns exec "$(ns_cl "$1")" curl -sf --max-time 2 "http://$APP:8080/" -o /dev/null
}

topo_up() {
	N_BE=${1:-3}
	N_CL=${2:-1}
	topo_require
	trap topo_down EXIT
	trap 'exit 130' INT TERM
	(umask 077
	 wg genkey >"$T/server.key" && wg pubkey <"$T/server.key" >"$T/server.pub"
	 for i in $(seq 1 "$N_CL"); do
		wg genkey >"$T/client$i.key" && wg pubkey <"$T/client$i.key" >"$T/client$i.pub"
	 done
	 # The balancer <-> agent master key (instant failover): 32 random bytes,
	 # base64. Each backend's agent gets only its own key, derived from it
	 # and the backend's name as wglb does (wglb --agent-key-for bJ).
	 wg genkey >"$T/agent.key" &&
	 for j in $(seq 1 "$N_BE"); do
		agent_key_for "b$j" >"$T/agent-b$j.key" || exit 1
	 done) || die "keys"

	mkns "$NS_LB"; mkns "$NS_APP"
	# Bridges get a fixed MAC: one that takes the lowest of its ports' (the
	# default) changes it when a port joins later, and a neighbour that
	# cached the old one loses the balancer until its ARP entry goes stale.
	ip -n "$NS_LB" link add brc address 02:00:00:00:0b:01 type bridge && ip -n "$NS_LB" link set brc up
	ip -n "$NS_LB" link add brb address 02:00:00:00:0b:02 type bridge && ip -n "$NS_LB" link set brb up
	if [ "${LB_MODE:-wglb}" != pair ] && [ "${LB_MODE:-wglb}" != ecmp ]; then # they hold these
		ip -n "$NS_LB" addr add "$LB_PUBLIC/24" dev brc
		ip -n "$NS_LB" addr add 10.10.10.1/24 dev brb
	fi
	ip -n "$NS_APP" link add bra address 02:00:00:00:0b:03 type bridge && ip -n "$NS_APP" link set bra up
	ip -n "$NS_APP" addr add "$APP/24" dev bra

	# HEALTH_EXTRA: more wg-health options, @J@ standing for the backend's number.
	local hx=${HEALTH_EXTRA:-}
	for j in $(seq 1 "$N_BE"); do
		local ns; ns=$(ns_be "$j")
		mkns "$ns"
		veth_to_bridge "$ns" eth0 "$NS_LB" brb "10.10.10.$((10 + j))/24"
		veth_to_bridge "$ns" app0 "$NS_APP" bra "10.10.21.$((10 + j))/24"
		ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
		# Same key and address on every backend: each masquerades toward the
		# app so that replies come back to the backend that carried the request.
		ip netns exec "$ns" nft "table ip nat { chain post { type nat hook postrouting priority 100; oifname \"app0\" masquerade; }; }" || die "nft $ns"
		start_backend_wg "$j"
		bg "$ns" "health$j" "$WGHEALTH" --device "$(wg_be "$j")" --port 8080 \
			--listen "10.10.10.$((10 + j))" --drain-file "$T/drain-b$j" ${hx//@J@/$j} \
			${AGENT:+--agent-port 8081 --agent-key "$T/agent-b$j.key" --name "b$j" --clients-file "$T/clients-b$j"}
	done
	for i in $(seq 1 "$N_CL"); do
		local ns; ns=$(ns_cl "$i")
		mkns "$ns"
		veth_to_bridge "$ns" eth0 "$NS_LB" brc "198.51.100.$((10 + i))/24"
	done
	bg "$NS_APP" app python3 -m http.server 8080 --bind "$APP" --directory "$T"
	if [ "${LB_MODE:-wglb}" = dnat ]; then
		dnat_up
	elif [ "${LB_MODE:-wglb}" = pair ]; then
		[ "$(type -t topo_before_wglb)" = function ] && { topo_before_wglb || die "topo_before_wglb"; }
		write_wglb_conf "${WGLB_EXTRA:-}"
		pair_up
	elif [ "${LB_MODE:-wglb}" = ecmp ]; then
		[ "$(type -t topo_before_wglb)" = function ] && { topo_before_wglb || die "topo_before_wglb"; }
		write_wglb_conf "${WGLB_EXTRA:-}"
		ecmp_up
	else
		# A test's own set-up of the namespaces before wglb starts (routing).
		[ "$(type -t topo_before_wglb)" = function ] && { topo_before_wglb || die "topo_before_wglb"; }
		write_wglb_conf "${WGLB_EXTRA:-}"
		start_wglb
		wait_for 10 "backends up" sh -c "'$WGLBCTL' -s '$T/control.sock' show backends | grep -c ' up ' | grep -qx ${WGLB_BACKENDS:-$N_BE}" \
			|| { ctl show backends; die "backends not up"; }
	fi
	# Clients start only now: a first initiation must meet a running wglb.
	for i in $(seq 1 "$N_CL"); do client_up "$i"; done
	wait_for 10 "app server" ip netns exec "$NS_APP" curl -sf --max-time 1 "http://$APP:8080/" -o /dev/null || die "app"
	for i in $(seq 1 "$N_CL"); do
		wait_for 20 "client $i reaches the app" app_ok "$i" || { ctl show flows; die "client $i: no tunnel"; }
	done
	log "topology up: $N_CL client(s), $N_BE backends, state in $T"
}

# The NLB-like baseline: kernel DNAT with conntrack pinning each flow.
# Installed before any client sends (an early initiation would be tracked
# un-NATed and its retries would keep that entry alive).
dnat_up() {
	local map="" j
	ip netns exec "$NS_LB" sysctl -qw net.ipv4.ip_forward=1 # the kernel forwards here, not wglb
	for j in $(seq 1 "$N_BE"); do map="$map${map:+, }$((j - 1)) : 10.10.10.$((10 + j))"; done
	dnat_rules "$map" "$N_BE"
}
dnat_rules() { # MAP N
	ip netns exec "$NS_LB" nft -f - <<NFT || die "nft dnat"
table ip nlb
delete table ip nlb
table ip nlb {
	chain pre { type nat hook prerouting priority -100; udp dport 51820 dnat to numgen inc mod $2 map { $1 }; }
	chain post { type nat hook postrouting priority 100; oifname "brb" masquerade; }
}
NFT
}
# NLB marks a dead target unhealthy: new flows avoid it, tracked ones do not.
dnat_remove_backend() { # j
	local map="" k n=0
	for k in $(seq 1 "$N_BE"); do
		[ "$k" = "$1" ] && continue
		map="$map${map:+, }$n : 10.10.10.$((10 + k))"; n=$((n + 1))
	done
	dnat_rules "$map" "$n"
}
# The backend whose WireGuard last heard a handshake from client i.
handshake_backend() { # i
	local j best=0 who="" hs
	for j in $(seq 1 "$N_BE"); do
		[ -S "/var/run/wireguard/$(wg_be "$j").sock" ] || continue
		hs=$(wg show "$(wg_be "$j")" latest-handshakes | awk -v k="$(cat "$T/client$1.pub")" '$1 == k { print $2 }')
		[ -n "$hs" ] && [ "$hs" -gt "$best" ] && { best=$hs; who=b$j; }
	done
	echo "$who"
}

# client_address = preserve: server j routes its WireGuard replies back
# through the balancer's address VIA (10.10.10.1), as an operator does once
# per server (and after every start of its WireGuard, as a wg-quick PostUp).
preserve_route_setup() { # j [via]
	ip netns exec "$(ns_be "$1")" "$WGHEALTH" --device "$(wg_be "$1")" --route-via "${2:-10.10.10.1}" \
		--route-setup --state-dir "$T/route-b$1" >/dev/null
}
# The endpoint server j's WireGuard lists for client i's key.
endpoint_on() { # j i
	wg show "$(wg_be "$1")" endpoints | awk -v k="$(cat "$T/client$2.pub")" '$1 == k { print $2 }'
}

# Ping the app from client i at RATE per second in the background (ping -D timestamps).
ping_start() { # i interval
	bg "$(ns_cl "$1")" "ping$1" ping -D -n -i "${2:-0.2}" -W 1 "$APP"
}
ping_stop() { # i
	kill "$(cat "$T/ping$1.pid")" 2>/dev/null
}
# Seconds from time T0 (epoch, fractional) to the first reply to a ping
# SENT after it (reply time less its round trip): a reply already in
# flight when T0 was taken is evidence of nothing. Empty if none.
ping_first_reply_after() { # i t0
	awk -v t0="$2" '/bytes from/ {
		t = substr($1, 2, length($1) - 2) + 0; rtt = 0
		for (k = 2; k <= NF; k++) if ($k ~ /^time=/) rtt = substr($k, 6) / 1000
		if (t - rtt > t0) { printf "%.2f\n", t - t0; exit } }' "$T/ping$1.log"
}
# The longest silence between consecutive replies after T0 (seconds).
ping_max_gap_after() { # i t0
	awk -v t0="$2" '/bytes from/ { t = substr($1, 2, length($1) - 2) + 0; if (t <= t0) { last = t; next } if (last && t - last > g) g = t - last; last = t } END { printf "%.2f\n", g + 0 }' "$T/ping$1.log"
}
ping_replies() { grep -c 'bytes from' "$T/ping$1.log"; }
pinging() { grep -q 'bytes from' "$T/ping$1.log"; }           # i
replied_after() { [ -n "$(ping_first_reply_after "$1" "$2")" ]; } # i t0
# name state. Read whole, then matched: "ctl | grep -q" fails under pipefail
# when grep quits before ctl has written everything (SIGPIPE).
backend_state_is() { local out; out=$(ctl show backends) && grep -q "^$1 .* $2 " <<<"$out"; }
backend_flows() { ctl show backends | awk -v b="$1" '$1 == b { print $6 }'; }
now() { date +%s.%N; }
stat_json() { # python expression over the stats JSON as s
	ctl --json show stats | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"
}

# serving_backend i: the name (b1..bN) of the backend holding client i's flow.
serving_backend() {
	ctl show flows | awk -v c="198.51.100.$((10 + $1)):" 'index($1, c) == 1 { print $2; exit }'
}

topo_down() {
	trap - EXIT INT TERM
	for pid in "${TOPO_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
	for pid in "${TOPO_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
	pair_down
	ecmp_down
	for ns in "$NS_LB" "$NS_APP" $(for j in $(seq 1 "$N_BE"); do ns_be "$j"; done) \
		$(for i in $(seq 1 "$N_CL"); do ns_cl "$i"; done); do
		ip netns del "$ns" 2>/dev/null
	done
	rm -f /var/run/wireguard/wgs*-"$ID".sock /var/run/wireguard/wgc*-"$ID".sock
	[ -n "${KEEP_LOGS:-}" ] && { log "logs kept in $T"; return; }
	rm -rf "$T"
}
