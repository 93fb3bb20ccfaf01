#!/bin/bash
# Scenario 4: restart wglb under traffic. The same Maglev choice and
# WireGuard's roaming keep the session: no new handshake, pings lost only
# during the gap.
source "$(dirname "$0")/topo.sh"
topo_up 3 1
be=$(serving_backend 1)
hs0=$(wg show "$(wg_cl 1)" latest-handshakes | awk '{print $2}')
ping_start 1 0.2
wait_for 5 "pings flowing" pinging 1 || die "no ping replies"
t0=$(now)
stop_wglb
sleep 1 # the outage being measured
start_wglb
t1=$(now)
wait_for 10 "reply after restart" replied_after 1 "$t1" || die "no traffic after the restart"
gap=$(ping_max_gap_after 1 "$t0")
ping_stop 1
hs1=$(wg show "$(wg_cl 1)" latest-handshakes | awk '{print $2}')
[ "$hs1" = "$hs0" ] || die "a new handshake happened ($hs0 -> $hs1)"
after=$(serving_backend 1)
[ "$after" = "$be" ] || die "restarted wglb chose $after, not $be"
awk -v g="$gap" 'BEGIN { exit !(g < 4) }' || die "gap ${gap}s"
log "PASS: restart kept $be and the session (handshake $hs0 unchanged); longest gap ${gap}s"
echo "RESULT restart_gap_s=$gap"
