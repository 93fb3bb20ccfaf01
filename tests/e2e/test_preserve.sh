#!/bin/bash
# client_address = preserve with real WireGuard: each server sees its
# clients' own addresses and ports, a server-side rule that admits only
# the clients' prefix (a security group) lets them in and keeps a client
# from another prefix out, and failover (instant, through the agents),
# drain and a restart of wglb keep working. A datagram that claims a
# backend's address as its source is not sent from that address.
source "$(dirname "$0")/topo.sh"
OUTSIDER=203.0.113.10

# Before wglb starts: the balancer delivers replies to clients' addresses
# to wglb; each server routes its WireGuard replies back through the
# balancer (one command each) and admits only 198.51.100.0/24 on 51820.
topo_before_wglb() {
	ip netns exec "$NS_LB" "$TOPO_ROOT/deploy/preserve/wglb-preserve-routing" up >/dev/null || return 1
	for j in $(seq 1 "$N_BE"); do
		preserve_route_setup "$j" || return 1
		ip netns exec "$(ns_be "$j")" nft -f - <<NFT || return 1
table inet sg {
	chain input {
		type filter hook input priority 0; policy accept;
		udp dport 51820 ip saddr != 198.51.100.0/24 counter drop
	}
}
NFT
	done
	wait_for 5 "health answers with the routing in place" \
		ip netns exec "$NS_LB" curl -sf --max-time 1 "http://10.10.10.11:8080/" -o /dev/null
}
AGENT=1 HEALTH_EXTRA="--route-via 10.10.10.1" WGLB_EXTRA=$'client_address = preserve\nlisten = 0.0.0.0:51821' \
	topo_up 3 2

sees_client() { # i: the server holding client i's flow sees its own address and port
	local be
	be=$(serving_backend "$1") && [ -n "$be" ] &&
		[ "$(endpoint_on "${be#b}" "$1")" = "198.51.100.$((10 + $1)):$((40000 + $1))" ]
}
for i in 1 2; do
	wait_for 5 "client $i's server sees its address" sees_client "$i" ||
		{ for j in 1 2 3; do wg show "$(wg_be "$j")" endpoints; done; die "client $i: not its own address"; }
done
log "servers see 198.51.100.11:40001 and 198.51.100.12:40002"
# A client whose own port is the listen port: its flow's socket shares
# wglb's port on the client's address.
client_renew 2 51820 || die "client 2: new port"
sees_client_port() { # i port
	local be
	be=$(ctl show flows | awk -v c="198.51.100.$((10 + $1)):$2" '$1 == c { print $2; exit }') && [ -n "$be" ] &&
		[ "$(endpoint_on "${be#b}" "$1")" = "198.51.100.$((10 + $1)):$2" ]
}
wait_for 10 "client 2 from port 51820 seen as such" sees_client_port 2 51820 ||
	{ ctl show flows; die "client 2 from port 51820: not its own address"; }
wait_for 10 "client 2 reaches the app from port 51820" app_ok 2 || die "client 2: no tunnel from port 51820"
[ "$(stat_json 's["preserve_fallback"]')" = 0 ] || die "a client flow fell back to snat"
log "a client from port 51820 is seen as 198.51.100.12:51820"
[ "$(stat_json 's["flows_preserved"]')" -ge 2 ] || die "flows_preserved < 2"
[ "$(stat_json 's["client_address"]')" = preserve ] || die "client_address not preserve"
ctl --json show flows | python3 -c 'import json, sys
fl = json.load(sys.stdin)["flows"]
mine = [f for f in fl if f["client"].startswith("198.51.100.")]
assert len(mine) >= 2 and all(f["preserved"] for f in mine), fl' ||
	die "show flows: a client flow not preserved"
ip netns exec "$NS_LB" "$WGLB" --check -c "$T/wglb.conf" | grep -q "client addresses preserved" ||
	die "wglb --check does not see the routing"

# A client from another prefix: the servers' rule keeps it out (they see
# its address: in snat mode they would see the balancer's and the rule
# would keep out everyone or no one).
ns_out="wgo-$ID"; wgo="wgo$ID"
trap 'ip netns del "$ns_out" 2>/dev/null; topo_down' EXIT
mkns "$ns_out"
ip -n "$NS_LB" addr add 203.0.113.1/24 dev brc
veth_to_bridge "$ns_out" eth0 "$NS_LB" brc "$OUTSIDER/24"
ip -n "$ns_out" route add default via 203.0.113.1
(umask 077; wg genkey >"$T/outsider.key") && wg pubkey <"$T/outsider.key" >"$T/outsider.pub"
for j in $(seq 1 "$N_BE"); do
	wg set "$(wg_be "$j")" peer "$(cat "$T/outsider.pub")" allowed-ips 10.99.0.200/32 || die "peer"
done
sg_drops() { # packets server j's rule dropped
	ip netns exec "$(ns_be "$1")" nft list table inet sg | awk '/counter packets/ { for (k = 1; k <= NF; k++) if ($k == "packets") print $(k + 1) }'
}
bg "$ns_out" wg-outsider wireguard-go -f "$wgo"
wait_for 5 "wireguard-go $wgo" test -S "/var/run/wireguard/$wgo.sock" || die "wireguard-go $wgo"
wg set "$wgo" listen-port 40100 private-key "$T/outsider.key" peer "$(cat "$T/server.pub")" \
	endpoint "$LB_PUBLIC:51820" allowed-ips 10.99.0.0/24 persistent-keepalive 25 || die "wg set $wgo"
ip -n "$ns_out" addr add 10.99.0.200/32 dev "$wgo"
ip -n "$ns_out" link set "$wgo" up
outsider_dropped() {
	local j
	for j in $(seq 1 "$N_BE"); do [ "$(sg_drops "$j")" -gt 0 ] && return 0; done
	return 1
}
wait_for 10 "a server's rule drops the outsider's handshake" outsider_dropped || die "outsider not dropped"
for j in $(seq 1 "$N_BE"); do
	hs=$(wg show "$(wg_be "$j")" latest-handshakes | awk -v k="$(cat "$T/outsider.pub")" '$1 == k { print $2 }')
	[ "${hs:-0}" = 0 ] || die "the outsider completed a handshake with b$j"
done
ctl --json show flows | python3 -c 'import json, sys
fl = [f for f in json.load(sys.stdin)["flows"] if f["client"].startswith(sys.argv[1] + ":")]
assert fl and fl[0]["preserved"], fl' "$OUTSIDER" ||
	die "the outsider's flow was not sent from its own address"
wait_for 5 "client 1 reaches the app while the outsider knocks" app_ok 1 ||
	{ ctl show flows; die "client 1 lost the app while the outsider knocked"; }
log "the servers' rule admits 198.51.100.0/24 and drops $OUTSIDER"

# Spoofed sources. spoof SRC SPORT DPORT: one initiation-shaped datagram
# (it would open a flow) from SRC:SPORT to the balancer's DPORT.
spoof() {
	ip netns exec "$(ns_cl 1)" python3 - "$@" <<'PY'
import socket, struct, sys
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
src, dst = socket.inet_aton(sys.argv[1]), socket.inet_aton("198.51.100.1")
payload = struct.pack("<I", 1) + b"\1" * 144
udp = struct.pack("!HHHH", int(sys.argv[2]), int(sys.argv[3]), 8 + len(payload), 0) + payload
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src, dst)
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(ip + udp, ("198.51.100.1", 0))
PY
}
# A source that claims a backend's address is no client's: dropped and
# counted, never sent as b2, nor as the balancer.
bad0=$(stat_json 's["drops_in"]["bad_source"]')
spoof 10.10.10.12 51820 51820 || die "spoofed send"
wait_for 5 "the spoofed source counted as bad_source" \
	sh -c "[ \"\$(cd / && '$WGLBCTL' -s '$T/control.sock' --json show stats | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"drops_in\"][\"bad_source\"])')\" -gt $bad0 ]" ||
	die "a datagram from a backend's address was not dropped as bad_source"
ctl --json show flows | python3 -c 'import json, sys
sys.exit(any(f["client"].startswith("10.10.10.12:") for f in json.load(sys.stdin)["flows"]))' ||
	die "a flow opened for a backend's address"
log "a source claiming backend b2's address was dropped (bad_source)"
# Client 1's own address and port, to the second listener: the second flow
# may not bind them again (the kernel would hand it client 1's replies);
# it goes from the balancer's address and client 1 keeps its tunnel.
fb0=$(stat_json 's["preserve_fallback"]')
spoof 198.51.100.11 40001 51821 || die "spoofed send"
dup_seen() {
	ctl --json show flows | python3 -c 'import json, sys
fl = [f for f in json.load(sys.stdin)["flows"] if f["client"] == "198.51.100.11:40001"]
sys.exit(0 if len(fl) == 2 and sum(f["preserved"] for f in fl) == 1 else 1)'
}
wait_for 5 "a second flow for client 1's source, not preserved" dup_seen ||
	{ ctl show flows; die "the second listener's flow took client 1's address"; }
[ "$(stat_json 's["preserve_fallback"]')" -gt "$fb0" ] || die "the fallback was not counted"
# Replies stolen by a duplicate would stay stolen for as long as it lives
# (flow_idle_timeout): a client that reaches the app kept its own.
wait_for 5 "client 1 reaches the app" app_ok 1 || die "client 1 lost its tunnel to a spoofed duplicate"
wait_for 5 "client 1's server still sees it" sees_client 1 || die "client 1's server lost its address"
log "client 1's address on the second listener went from the balancer's; client 1 undisturbed"

# Failover with agents: the new server sends to the client's own address
# through the balancer, and the client is back at once.
ping_start 1 0.1
wait_for 5 "pings flowing" pinging 1 || die "no ping replies"
knows_peer() { [ "$(stat_json "s['backends']['$(serving_backend 1)']['peers_known']")" -ge 1 ]; }
be=$(serving_backend 1)
wait_for 5 "wglb knows the peer on $be" knows_peer || die "the agent's report did not join the flow"
ctl --json show flows | python3 -c 'import json, sys
fl = [f for f in json.load(sys.stdin)["flows"] if f["client"] == "198.51.100.11:40001"]
assert fl and fl[0]["peer"] == sys.argv[1], fl' "$(cat "$T/client1.pub")" ||
	die "show flows does not name client 1's peer"
kill_backend_wg "${be#b}"
t0=$(now)
wait_for 10 "client 1 back after $be died" replied_after 1 "$t0" || die "no recovery"
rec=$(ping_first_reply_after 1 "$t0")
awk -v r="$rec" 'BEGIN { exit !(r < 3) }' || die "recovery took ${rec}s"
wait_for 5 "the new server sees client 1's address" sees_client 1 || die "new server: not its address"
log "killed $be: client 1 back on $(serving_backend 1) after ${rec}s, its own address kept"
start_backend_wg "${be#b}"
preserve_route_setup "${be#b}" || die "route setup on $be"
wait_for 10 "$be up again" backend_state_is "$be" up || die "$be did not come back"

# Drain: client 1 moves at its next handshake, from its own address.
be=$(serving_backend 1)
ctl backend drain "$be" now >/dev/null || die "drain"
t0=$(now)
wait_for 10 "client 1 off drained $be" sh -c "[ \"\$(cd / && '$WGLBCTL' -s '$T/control.sock' show flows | awk -v c='198.51.100.11:' 'index(\$1, c) == 1 { print \$2 }')\" != '$be' ]" ||
	die "client 1 still on $be"
wait_for 10 "client 1 answered after the drain" replied_after 1 "$t0" || die "no traffic after drain"
wait_for 5 "its new server sees its address" sees_client 1 || die "after drain: not its address"
ctl backend enable "$be" >/dev/null
log "drained $be: client 1 on $(serving_backend 1), its own address kept"

# A restart of wglb: the flows come back preserved.
stop_wglb
start_wglb
t0=$(now)
wait_for 20 "client 1 answered after the restart" replied_after 1 "$t0" || die "no traffic after restart"
wait_for 5 "after the restart, its server sees its address" sees_client 1 || die "after restart: not its address"
[ "$(stat_json 's["flows_preserved"]')" -ge 1 ] || die "no preserved flow after restart"
ping_stop 1
log "restart: client 1 back, its own address kept"
ip netns del "$ns_out" 2>/dev/null
log "PASS"
