#!/bin/bash
# client_address = preserve on a keepalived pair: the servers send their
# replies to an address that moves with the Elastic IP (10.10.10.1 here,
# a secondary private address on AWS), so the standby takes over without
# touching a server. Kill the active wglb: the client's server keeps
# seeing the client's own address and port, its session goes on without
# a new handshake, and the takeover script moves the reply address too.
source "$(dirname "$0")/topo.sh"
command -v keepalived >/dev/null || { echo "SKIP: needs keepalived"; exit 77; }
topo_before_wglb() {
	local j
	for j in $(seq 1 "$N_BE"); do preserve_route_setup "$j" || return 1; done
}
LB_PRESERVE=1 LB_MODE=pair HEALTH_EXTRA="--route-via 10.10.10.1" \
	WGLB_EXTRA="client_address = preserve" topo_up 3 1
want_ep=198.51.100.11:40001
be_a=$(ctl_pair A show flows | awk 'NR > 1 { print $2; exit }')
[ -n "$be_a" ] || die "no flow on A"
[ "$(endpoint_on "${be_a#b}" 1)" = "$want_ep" ] || die "$be_a sees $(endpoint_on "${be_a#b}" 1), not $want_ep"
hs0=$(wg show "$(wg_cl 1)" latest-handshakes | awk '{print $2}')
ping_start 1 0.2
wait_for 5 "pings flowing" pinging 1 || die "no ping replies"
t0=$(now)
log "killing the active wglb (A)"
kill -9 "$(cat "$T/wglbA.pid")"
wait_for 15 "VIP moves to B" vip_on B || { tail -20 "$T/keepalivedB.log"; die "VIP never moved"; }
t_vip=$(now)
wait_for 15 "traffic through B" replied_after 1 "$t_vip" || die "no traffic after the takeover"
be_b=$(ctl_pair B show flows | awk 'NR > 1 { print $2; exit }')
[ "$be_b" = "$be_a" ] || die "B chose $be_b, A had chosen $be_a"
ctl_pair B --json show flows | python3 -c 'import json, sys
fl = json.load(sys.stdin)["flows"]
assert fl and fl[0]["preserved"], fl' || die "B's flow is not preserved"
[ "$(endpoint_on "${be_b#b}" 1)" = "$want_ep" ] || die "after the takeover $be_b sees $(endpoint_on "${be_b#b}" 1)"
hs1=$(wg show "$(wg_cl 1)" latest-handshakes | awk '{print $2}')
[ "$hs1" = "$hs0" ] || die "a new handshake happened ($hs0 -> $hs1)"
ping_stop 1
gap=$(ping_max_gap_after 1 "$t0")
want="ec2 assign-private-ip-addresses --region us-test-1 --network-interface-id eni-standinB --private-ip-addresses 10.10.10.1 --allow-reassignment"
wait_for 10 "takeover script moved the reply address" grep -qxF "$want" "$T/aws-callsB" \
	|| { cat "$T/aws-callsB" 2>&1 | tail -5; die "aws not called as expected"; }
awk -v g="$gap" 'BEGIN { exit !(g < 8) }' || die "outage ${gap}s"
log "PASS: B took over; $be_b still sees $want_ep; no new handshake; longest ping gap ${gap}s"
