#!/bin/bash
# Issue 7: two wglb instances with keepalived (unicast VRRP) hold the
# address clients use. Kill the active wglb: the address moves, the
# client's WireGuard session continues without a new handshake (same
# Maglev choice on both; WireGuard roams to the new source), and the
# takeover script asks `aws` to move the Elastic IP with the right words.
source "$(dirname "$0")/topo.sh"
command -v keepalived >/dev/null || { echo "SKIP: needs keepalived"; exit 77; }
LB_MODE=pair topo_up 3 1
be_a=$(ctl_pair A show flows | awk 'NR > 1 { print $2; exit }')
[ -n "$be_a" ] || die "no flow on A"
hs0=$(wg show "$(wg_cl 1)" latest-handshakes | awk '{print $2}')
ping_start 1 0.2
wait_for 5 "pings flowing" pinging 1 || die "no ping replies"
t0=$(now)
log "killing the active wglb (A)"
kill -9 "$(cat "$T/wglbA.pid")"
wait_for 15 "VIP moves to B" vip_on B || { tail -20 "$T/keepalivedB.log"; die "VIP never moved"; }
t_vip=$(now)
wait_for 15 "traffic through B" replied_after 1 "$t_vip" || die "no traffic after the takeover"
sleep 1 # a few more pings through B before measuring
ping_stop 1
gap=$(ping_max_gap_after 1 "$t0")
vip_s=$(awk -v a="$t0" -v b="$t_vip" 'BEGIN { printf "%.2f", b - a }')
be_b=$(ctl_pair B show flows | awk 'NR > 1 { print $2; exit }')
[ "$be_b" = "$be_a" ] || die "B chose $be_b, A had chosen $be_a"
hs1=$(wg show "$(wg_cl 1)" latest-handshakes | awk '{print $2}')
[ "$hs1" = "$hs0" ] || die "a new handshake happened ($hs0 -> $hs1)"
want="ec2 associate-address --region us-test-1 --instance-id i-standinB --allocation-id eipalloc-test --allow-reassociation"
wait_for 10 "takeover script ran" grep -qxF "$want" "$T/aws-callsB" \
	|| { cat "$T/aws-callsB" "$T/keepalivedB.log" 2>&1 | tail -20; die "aws not called as expected"; }
awk -v g="$gap" 'BEGIN { exit !(g < 8) }' || die "outage ${gap}s"
log "PASS: VIP moved in ${vip_s}s; session kept on $be_a (no new handshake); longest ping gap ${gap}s; aws called: $want"
echo "RESULT pair_vip_move_s=$vip_s pair_gap_s=$gap"
