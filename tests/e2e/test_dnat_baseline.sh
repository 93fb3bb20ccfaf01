#!/bin/bash
# Scenario 2, NLB-like: kernel DNAT with conntrack in place of wglb. When
# the serving backend dies and is taken out of the DNAT map (as NLB marks
# a target unhealthy), the client's tracked flow stays pinned to the dead
# server for as long as the client keeps sending. Bounded observation.
source "$(dirname "$0")/topo.sh"
OBSERVE=${OBSERVE_S:-40}
LB_MODE=dnat topo_up 3 1
ping_start 1 0.2
wait_for 5 "pings flowing" pinging 1 || die "no ping replies"
be=$(handshake_backend 1)
[ -n "$be" ] || die "cannot tell the serving backend"
kill_backend_wg "${be#b}"
t0=$(now) # the server is gone: recovery counts from pings sent after this
dnat_remove_backend "${be#b}"
log "killed $be and removed it from the DNAT map; watching for ${OBSERVE}s"
sleep "$OBSERVE" # a bounded observation window, not a wait for a condition
rec=$(ping_first_reply_after 1 "$t0")
ping_stop 1
[ -z "$rec" ] || die "DNAT recovered after ${rec}s: the baseline no longer shows the NLB problem"
log "PASS: with conntrack-pinned DNAT the client was still cut off after ${OBSERVE}s"
echo "RESULT failover_dnat_recovery_s=never(>${OBSERVE})"
