#!/bin/bash
# Scenarios 5 and 6: twenty clients spread over three backends and all
# reach the app; then a backend added at run time takes new clients while
# nobody existing moves.
source "$(dirname "$0")/topo.sh"
WGLB_BACKENDS=2 topo_up 3 20
declare -A before
for i in $(seq 1 20); do before[$i]=$(serving_backend "$i"); done
n1=$(printf '%s\n' "${before[@]}" | grep -cx b1)
n2=$(printf '%s\n' "${before[@]}" | grep -cx b2)
log "20 clients over 2 backends: b1=$n1 b2=$n2"
[ $((n1 + n2)) = 20 ] || die "not every client has a flow"
# 20 draws at p=1/2: Maglev keeps each share within 5..15 (>99% of spreads).
[ "$n1" -ge 5 ] && [ "$n2" -ge 5 ] || die "unbalanced: b1=$n1 b2=$n2"

ctl backend add b3 10.10.10.13:51820 >/dev/null || die "backend add"
wait_for 10 "b3 up" backend_state_is b3 up || die "b3 never up"
for i in $(seq 1 20); do
	[ "$(serving_backend "$i")" = "${before[$i]}" ] || die "client $i moved after the add"
done
[ "$(stat_json 'sum(s["repins"].values())')" = 0 ] || die "re-pins after an add"
for i in $(seq 1 20); do app_ok "$i" || die "client $i lost the app after the add"; done
# New clients: five clients start new sessions from new ports = new flows.
moved=0
for i in $(seq 16 20); do
	client_renew "$i" $((41000 + i)) || die "client $i renew"
	app_ok "$i" || wait_for 20 "client $i back" app_ok "$i" || die "client $i after port change"
	[ "$(ctl show flows | awk -v c="198.51.100.$((10 + i)):$((41000 + i))" '$1 == c { print $2 }')" = b3 ] && moved=$((moved + 1))
done
log "new flows on b3: $moved of 5"
[ "$moved" -ge 1 ] || die "the added backend took no new client"
log "PASS: 20 clients b1=$n1 b2=$n2, all reach the app; b3 added: nobody moved, $moved/5 new flows on b3"
