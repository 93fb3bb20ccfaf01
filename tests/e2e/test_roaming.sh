#!/bin/bash
# A client whose source port changes mid-session (a NAT rebinding, or a
# roaming client) keeps its session: its transport data arrives from a
# source wglb has no flow for, and the receiver index in it names the
# backend session it belongs to, so the new flow joins that backend rather
# than Maglev's choice for the new port (another backend two times in three
# here, which would drop the data until the client re-handshakes, ~15 s).
# Five port changes: every one answered at once, no new handshake.
source "$(dirname "$0")/topo.sh"
flow_from() { # port: prints the backend of the client's flow from that port
	local b
	b=$(ctl show flows | awk -v c="198.51.100.11:$1" '$1 == c { print $2 }')
	[ -n "$b" ] && echo "$b"
}
topo_up 3 1
be=$(serving_backend 1)
hs0=$(wg show "$(wg_cl 1)" latest-handshakes | awk '{print $2}')
ping_start 1 0.1
wait_for 5 "pings flowing" pinging 1 || die "no ping replies"
t0=$(now)
for port in 41001 41002 41003 41004 41005; do
	t=$(now)
	wg set "$(wg_cl 1)" listen-port "$port" || die "wg set listen-port $port"
	wait_for 3 "a flow from port $port" flow_from "$port" || die "no flow from port $port"
	t1=$(now) # replies after this one crossed the new flow
	wait_for 3 "a reply through port $port" replied_after 1 "$t1" ||
		die "no reply within 3 s after moving to port $port"
	on=$(flow_from "$port")
	[ "$on" = "$be" ] || die "port $port went to '$on', not the session's backend $be"
	log "port $port: answered $(ping_first_reply_after 1 "$t") s after the move, on $be"
done
gap=$(ping_max_gap_after 1 "$t0")
ping_stop 1
hs1=$(wg show "$(wg_cl 1)" latest-handshakes | awk '{print $2}')
[ "$hs1" = "$hs0" ] || die "a new handshake happened ($hs0 -> $hs1)"
roamed=$(stat_json 's["flows_roamed"]')
[ "$roamed" = 5 ] || die "flows_roamed is $roamed, want 5"
awk -v g="$gap" 'BEGIN { exit !(g < 1) }' || die "longest ping gap ${gap}s"
log "PASS: 5 source-port changes stayed on $be with the same session (handshake $hs0); longest ping gap ${gap}s; flows_roamed $roamed"
echo "RESULT roaming_max_gap_s=$gap"
