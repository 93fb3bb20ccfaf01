#!/bin/bash
# Scenario 2: the serving backend's WireGuard dies under active traffic.
# Traffic must resume within 20 s (WireGuard's own ~15 s retry + detection),
# on another backend, with the re-pin counted.
source "$(dirname "$0")/topo.sh"
topo_up 3 1
ping_start 1 0.2
wait_for 5 "pings flowing" pinging 1 || die "no ping replies"
be=$(serving_backend 1)
j=${be#b}
log "killing wireguard-go on $be under traffic"
kill_backend_wg "$j"
t0=$(now) # the server is gone: recovery counts from pings sent after this
wait_for 10 "$be marked down" backend_state_is "$be" down || { ctl show backends; die "$be never marked down"; }
t_down=$(now)
new=$(serving_backend 1)
[ -n "$new" ] && [ "$new" != "$be" ] || die "flow not re-pinned (still on '$new')"
wait_for 25 "traffic resumes" replied_after 1 "$t0" || die "no reply within 25 s of the kill"
rec=$(ping_first_reply_after 1 "$t0")
ping_stop 1
detect=$(awk -v a="$t0" -v b="$t_down" 'BEGIN { printf "%.2f", b - a }')
downs=$(stat_json 's["repins"]["down"]')
[ "$downs" -ge 1 ] || die "repins.down = $downs"
[ "$(handshake_backend 1)" = "$new" ] || die "client did not re-handshake with $new"
awk -v r="$rec" 'BEGIN { exit !(r < 20) }' || die "recovery took $rec s (limit 20)"
log "PASS: $be killed; detected down in ${detect}s; flow moved to $new; traffic back after ${rec}s"
echo "RESULT failover_wglb_detect_s=$detect recovery_s=$rec"
