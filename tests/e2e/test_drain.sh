#!/bin/bash
# Scenario 3: drain the serving backend. New clients avoid it; the existing
# client (the initiator of its session) moves at its next rekey, within
# about 125 s, losing at most one ping; the drained backend ends with no flows.
source "$(dirname "$0")/topo.sh"
# Short idle timeout: client 2's first flow, abandoned below, must expire.
WGLB_EXTRA="flow_idle_timeout = 20" topo_up 3 2
be=$(serving_backend 1)
on_other() { local b; b=$(serving_backend 1); [ -n "$b" ] && [ "$b" != "$be" ]; }
no_flows() { [ "$(backend_flows "$be")" = 0 ]; }
ping_start 1 0.5
wait_for 5 "pings flowing" pinging 1 || die "no ping replies"
ctl backend drain "$be" | grep -q '^ok' || die "drain refused"
backend_state_is "$be" draining || die "$be not shown as draining"
t0=$(now)
# A new client avoids the draining backend (a new session from a new port).
client_renew 2 42002 || die "client 2 renew"
wait_for 20 "client 2 reconnects" app_ok 2 || die "client 2"
c2=$(ctl show flows | awk '$1 == "198.51.100.12:42002" { print $2 }')
[ -n "$c2" ] && [ "$c2" != "$be" ] || die "new client went to draining $be ($c2)"
serving_backend 1 | grep -qx "$be" || die "client 1 left $be before its rekey"
wait_for 150 "client 1 leaves $be at its rekey" on_other || die "client 1 still on $be"
moved_after=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
t1=$(now)
wait_for 5 "pings on the new backend" replied_after 1 "$t1" || die "no replies after the move"
ping_stop 1
gap=$(ping_max_gap_after 1 "$t0")
awk -v g="$gap" 'BEGIN { exit !(g <= 1.6) }' || die "more than one ping lost around the move (gap ${gap}s)"
wait_for 40 "$be empties" no_flows || { ctl show flows; die "$be still has flows"; }
[ "$(stat_json 's["repins"]["initiation"]')" -ge 1 ] || die "no initiation re-pin counted"
log "PASS: drained $be; client 1 moved after ${moved_after}s at its rekey; longest ping gap ${gap}s"
echo "RESULT drain_move_s=$moved_after drain_gap_s=$gap"
