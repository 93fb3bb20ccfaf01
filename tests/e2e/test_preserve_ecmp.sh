#!/bin/bash
# client_address = preserve behind ECMP: three active balancers, each
# sending to an address of its own on every server (balancer k to
# 10.10.10.(k+2)J on server J); each server routes WireGuard's replies from
# that address back via that balancer (wg-health --route-via/--route-from,
# one command per server). WireGuard answers from the address a client's
# packets last arrived on, so each reply reaches the balancer holding the
# client's flow:
#   1. nine clients spread over the balancers all reach the app, and each
#      server sees its clients' own addresses and ports;
#   2. wglb dies on the busiest balancer: its clients are back through the
#      others with no new handshake, their servers still see their own
#      addresses, and replies follow them;
#   3. it comes back: the clients the router hashes there again recover.
source "$(dirname "$0")/topo.sh"
command -v bird >/dev/null || { echo "SKIP: needs bird (Debian's bird2)"; exit 77; }
N=${CLIENTS:-9}
LB_PUBLIC=203.0.113.10
be_addr() { echo "10.10.10.$(($1 + 2))$2"; } # k j: balancer k's address for server j

# Servers: an address per balancer and one rule/table each, before wglb.
topo_before_wglb() {
	local j k args
	for j in $(seq 1 "$N_BE"); do
		args=()
		for k in 1 2 3; do
			ip -n "$(ns_be "$j")" addr add "$(be_addr "$k" "$j")/24" dev eth0 || return 1
			args+=(--route-via "10.10.10.$((100 + k))" --route-from "$(be_addr "$k" "$j")")
		done
		ip netns exec "$(ns_be "$j")" "$WGHEALTH" --device "$(wg_be "$j")" "${args[@]}" \
			--route-setup --state-dir "$T/route-b$j" >"$T/route-b$j.log" 2>&1 || return 1
	done
}
# Balancer k: replies to its transparent sockets delivered to wglb, and its
# own addresses for the servers.
ecmp_balancer_hook() {
	local k=$1
	ip netns exec "$(ns_ecmp "$k")" "$TOPO_ROOT/deploy/preserve/wglb-preserve-routing" up >/dev/null || return 1
	sed -i -E "s/^address = 10\.10\.10\.1([0-9]):51820/address = 10.10.10.$((k + 2))\1:51820/" "$T/wglb-e$k.conf"
}
HEALTH_EXTRA="--listen 0.0.0.0 --route-via 10.10.10.101 --route-from 10.10.10.3@J@ --route-via 10.10.10.102 --route-from 10.10.10.4@J@ --route-via 10.10.10.103 --route-from 10.10.10.5@J@" \
	WGLB_EXTRA="client_address = preserve" LB_MODE=ecmp topo_up 3 "$N"

hs_all() { for i in $(seq 1 "$N"); do wg show "$(wg_cl "$i")" latest-handshakes | awk '{print $2}'; done | tr '\n' ' '; }
hs_early() { # OLD NEW: handshakes between the two that are not 120 s rekeys
	python3 -c 'import sys
old, new = sys.argv[1].split(), sys.argv[2].split()
print(sum(1 for a, b in zip(old, new) if a != b and (int(a) == 0 or int(b) - int(a) < 115)))' "$1" "$2"
}
sees_own() { # i: client i's server lists its own address and port
	local be; be=$(handshake_backend "$1")
	[ -n "$be" ] && [ "$(endpoint_on "${be#b}" "$1")" = "198.51.100.$((10 + $1)):$((40000 + $1))" ]
}
all_see_own() { for i in $(seq 1 "$N"); do sees_own "$i" || return 1; done; }
for k in 1 2 3; do
	[ "$(ctl_ecmp "$k" --json show stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_address"])')" = preserve ] ||
		die "balancer $k is not in preserve mode"
done
for i in $(seq 1 "$N"); do ping_start "$i" 0.1; done
all_pinging() { for i in $(seq 1 "$N"); do pinging "$i" || return 1; done; }
wait_for 10 "all clients pinging" all_pinging || die "pings"
all_carried() { ! carriers | awk 'NF < 2 { f = 1 } END { exit !f }'; }
wait_for 5 "every client on a balancer" all_carried || { carriers; die "a client has no flow"; }
wait_for 5 "servers see the clients' own addresses" all_see_own ||
	{ for j in 1 2 3; do wg show "$(wg_be "$j")" endpoints; done; die "a server does not see its client"; }
spread=$(carriers | awk '{ print $2 }' | sort -u | wc -l)
[ "$spread" -ge 2 ] || die "the router put every client on one balancer: nothing tested"
for k in 1 2 3; do
	[ "$(ctl_ecmp "$k" --json show stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["preserve_fallback"])')" = 0 ] ||
		die "balancer $k fell back to snat"
done
log "$N clients on $spread balancers ($(carriers | awk '{ n[$2]++ } END { for (k in n) printf "balancer %s: %d; ", k, n[k] }')), every server sees its clients' own addresses"

# 2. wglb dies on the busiest balancer; 3. it comes back.
k=$(busiest)
before=$(carriers)
hs0=$(hs_all)
kill -9 "$(cat "$T/wglb-e$k.pid")"
t0=$(now)
wait_for 5 "the router drops balancer $k" sh -c "! ip -n $NS_LB route show $LB_PUBLIC | grep -q 'via 192.0.2.$((10 + k)) '" ||
	die "balancer $k still announced"
worst=0
for i in $(echo "$before" | awk -v k="$k" '$2 == k { print $1 }'); do
	wait_for 5 "client $i back" replied_after "$i" "$t0" || die "client $i never recovered"
	worst=$(python3 -c "print(max($worst, $(ping_first_reply_after "$i" "$t0")))")
	[ "$(carrier "$i")" != "$k" ] || die "client $i still carried by dead balancer $k"
done
all_see_own || die "a server lost a client's own address after the move"
hs1=$(hs_all)
[ "$(hs_early "$hs0" "$hs1")" = 0 ] || die "new handshakes after balancer $k died: $hs0 -> $hs1"
n_k=$(echo "$before" | awk -v k="$k" '$2 == k' | wc -l)
log "balancer $k died: its $n_k clients back within ${worst}s through the others, no handshake, own addresses kept"
python3 -c "import sys; sys.exit(not ($worst <= ${ECMP_BOUND:-2.0}))" || die "recovery ${worst}s"
bg "$(ns_ecmp "$k")" "wglb-e$k" "$WGLB" -c "$T/wglb-e$k.conf"
t1=$(now)
wait_for 20 "balancer $k announced again" sh -c "ip -n $NS_LB route show $LB_PUBLIC | grep -q 'via 192.0.2.$((10 + k)) '" ||
	die "balancer $k not back"
sleep 2 # the router has rehashed: every client must be answered wherever it is now
t2=$(now)
for i in $(seq 1 "$N"); do
	wait_for 5 "client $i answered after balancer $k returned" replied_after "$i" "$t2" ||
		{ carriers; die "client $i lost after balancer $k returned"; }
done
gap=0
for i in $(seq 1 "$N"); do gap=$(python3 -c "print(max($gap, $(ping_max_gap_after "$i" "$t1")))"); done
log "balancer $k back: $(carriers | awk -v k="$k" '$2 == k' | wc -l) clients on it again, longest gap ${gap}s"
for i in $(seq 1 "$N"); do ping_stop "$i"; done
log "PASS: preserve behind ECMP: replies reach the balancer holding each flow, through a balancer's loss and return"
echo "RESULT preserve_ecmp clients=$N spread=$spread moved=$n_k worst_s=$worst rejoin_gap_s=$gap"
