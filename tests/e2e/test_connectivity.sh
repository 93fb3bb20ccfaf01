#!/bin/bash
# Scenario 1: a real WireGuard client reaches the internal app through wglb.
source "$(dirname "$0")/topo.sh"
topo_up 3 1
ip netns exec "$(ns_cl 1)" curl -sf --max-time 3 "http://$APP:8080/" | grep -q "Directory listing" \
	|| die "curl through the tunnel"
hs=$(wg show "$(wg_cl 1)" latest-handshakes | awk '{print $2}')
[ "${hs:-0}" -gt 0 ] || die "client reports no handshake"
be=$(serving_backend 1)
[ -n "$be" ] || die "no flow for the client"
[ "$(handshake_backend 1)" = "$be" ] || die "the flow's backend ($be) is not the one that shook hands"
[ "$(stat_json 's["messages_in"]["initiation"] >= 1 and s["messages_out"]["response"] >= 1')" = True ] \
	|| die "handshake not counted"
log "PASS: client -> wglb -> $be -> app; handshake at $hs"
