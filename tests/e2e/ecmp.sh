#!/bin/bash
# SPDX-License-Identifier: MIT
# N active balancers behind ECMP (issue 15), sourced by topo.sh for
# LB_MODE=ecmp. The lb namespace becomes the clients' router: 198.51.100.1
# on the clients' bridge, 192.0.2.1 on the balancers' bridge (brl), BIRD
# with BFD and one eBGP session per balancer, and the kernel hashing flows
# by their 4-tuple over the equal-cost next hops. Balancer k (192.0.2.1k,
# 10.10.10.10k toward the backends) runs the same wglb.conf, the shipped
# deploy/bgp/bird.conf and wglb-announce, and holds the service address
# (LB_PUBLIC, here 203.0.113.10) while wglb is healthy.

ns_ecmp() { echo "wglbe$1-$ID"; }
ctl_ecmp() { local k=$1; shift; ip netns exec "$(ns_ecmp "$k")" "$WGLBCTL" -s "$T/control-e$k.sock" "$@"; }
birdc_rt() { birdc -s "$T/bird-rt.ctl" "$@"; }
# The next hops the router's kernel has for the service address.
rt_nexthops() { ip -n "$NS_LB" route show "$LB_PUBLIC" | grep -o 'via 192\.0\.2\.[0-9]*' | awk '{print $2}' | sort | tr '\n' ' '; }

carrier() { # i: the balancer client i's packets reach now (its flow there is the least idle)
	local k idle best=99999 who=""
	for k in $(seq 1 "$N_LBS"); do
		idle=$(ctl_ecmp "$k" show flows 2>/dev/null |
			awk -v c="198.51.100.$((10 + $1)):" 'index($1, c) == 1 { print $5; exit }')
		[ -n "$idle" ] && [ "$idle" -lt "$best" ] && { best=$idle; who=$k; }
	done
	echo "$who"
}
# "i k" for every client: its carrier now.
carriers() { for i in $(seq 1 "$N_CL"); do echo "$i $(carrier "$i")"; done; }
busiest() { carriers | awk '{ n[$2]++ } END { for (k in n) if (n[k] > m) { m = n[k]; b = k } print b }'; }

ecmp_router() {
	ip -n "$NS_LB" addr add 198.51.100.1/24 dev brc
	ip -n "$NS_LB" link add brl address 02:00:00:00:0b:04 type bridge && ip -n "$NS_LB" link set brl up
	ip -n "$NS_LB" addr add 192.0.2.1/24 dev brl
	ip netns exec "$NS_LB" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1
	{
		sed -e '/^protocol bgp lb/d' -e 's|^log syslog all;|log stderr all;|' \
			"$TOPO_ROOT/deploy/bgp/router-bird.conf.example"
		for k in $(seq 1 "$N_LBS_MAX"); do
			printf 'protocol bgp lb%d from balancer { neighbor 192.0.2.%d as 65001; }\n' "$k" $((10 + k))
		done
	} >"$T/bird-rt.conf"
	bg "$NS_LB" bird-rt bird -f -c "$T/bird-rt.conf" -s "$T/bird-rt.ctl"
	wait_for 5 "router BIRD" test -S "$T/bird-rt.ctl" || { cat "$T/bird-rt.log"; die "router BIRD"; }
	# Clients reach the service address through the router.
	for i in $(seq 1 "$N_CL"); do
		ip -n "$(ns_cl "$i")" route add "$LB_PUBLIC/32" via 198.51.100.1 || die "client $i route"
	done
}

ecmp_balancer() { # k: start balancer k and its announcement
	local k=$1 ns
	ns=$(ns_ecmp "$k")
	mkns "$ns"
	veth_to_bridge "$ns" eth0 "$NS_LB" brl "192.0.2.$((10 + k))/24"
	veth_to_bridge "$ns" eth1 "$NS_LB" brb "10.10.10.$((100 + k))/24"
	ip -n "$ns" route add default via 192.0.2.1
	sed -e "s|^control = .*|control = $T/control-e$k.sock|" "$T/wglb.conf" >"$T/wglb-e$k.conf"
	# A test's own set-up of balancer k before its wglb starts.
	[ "$(type -t ecmp_balancer_hook)" = function ] && { ecmp_balancer_hook "$k" || die "ecmp_balancer_hook $k"; }
	bg "$ns" "wglb-e$k" "$WGLB" -c "$T/wglb-e$k.conf"
	wait_for 5 "wglb on balancer $k" test -S "$T/control-e$k.sock" || { cat "$T/wglb-e$k.log"; die "wglb e$k"; }
	sed -e "s/@ROUTER_ID@/192.0.2.$((10 + k))/" -e 's/@LOCAL_AS@/65001/' -e 's/@ROUTER@/192.0.2.1/' \
		-e 's/@ROUTER_AS@/65000/' -e 's/@SERVICE_IF@/lo/' -e "s/@SERVICE_V4@/$LB_PUBLIC/" \
		-e 's|^log syslog all;|log stderr all;|' \
		"$TOPO_ROOT/deploy/bgp/bird.conf" >"$T/bird-e$k.conf"
	bg "$ns" "bird-e$k" bird -f -c "$T/bird-e$k.conf" -s "$T/bird-e$k.ctl"
	# No dummy driver here (no modules): the address goes on lo.
	bg "$ns" "announce-e$k" env SERVICE_V4="$LB_PUBLIC" WGLB_ANNOUNCE_IF=lo WGLB_SOCKET="$T/control-e$k.sock" \
		WGLBCTL="$WGLBCTL" WGLB_ANNOUNCE_INTERVAL=0.1 "$TOPO_ROOT/deploy/bgp/wglb-announce"
}

ecmp_up() {
	N_LBS=${N_LBS:-3}
	N_LBS_MAX=$((N_LBS + 1)) # the router knows a spare neighbour, for the one added later
	command -v bird >/dev/null || { echo "SKIP: needs bird (bird2)"; exit 77; }
	ecmp_router
	for k in $(seq 1 "$N_LBS"); do ecmp_balancer "$k"; done
	wait_for 20 "ECMP over $N_LBS balancers" sh -c "[ \$(ip -n $NS_LB route show $LB_PUBLIC | grep -c 'via 192.0.2') = $N_LBS ]" ||
		{ ip -n "$NS_LB" route; birdc_rt show protocols all; die "the router has no ECMP route"; }
	# Every balancer must pin a client where the others would (the same
	# health view): its clients start only once each sees every backend up.
	for k in $(seq 1 "$N_LBS"); do
		wait_for 10 "balancer $k sees its backends up" sh -c \
			"[ \$(ip netns exec $(ns_ecmp "$k") '$WGLBCTL' -s '$T/control-e$k.sock' show backends | grep -c ' up ') = ${WGLB_BACKENDS:-$N_BE} ]" ||
			{ ctl_ecmp "$k" show backends; die "balancer $k: backends not up"; }
	done
	log "router: $LB_PUBLIC via $(rt_nexthops)"
}

ecmp_down() {
	for k in $(seq 1 "${N_LBS_MAX:-0}"); do ip netns del "$(ns_ecmp "$k")" 2>/dev/null; done
}
