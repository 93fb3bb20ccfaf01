#!/bin/bash
# wg-health --route-setup / --route-check / --route-undo and the health
# answer's routing check (client address preservation), on a wireguard-go
# backend in a namespace with a veth toward a stand-in balancer:
#
#   [balancer ns] vl 10.77.0.1/24 ---- vb 10.77.0.2/24 [backend ns: wireguard-go,
#                                            uplink ua 192.0.2.2/24, default via 192.0.2.1]
#
#  1. setup puts in place: the device's fwmark, exactly one rule, the
#     table's default via the balancer, rp_filter 2 on vb (1 before, saved);
#  2. a second setup changes nothing; --route-check says it is in place;
#  3. WireGuard's own packets (a handshake initiation to 198.51.100.50)
#     leave via vb toward the balancer, while unmarked traffic keeps the
#     main table's way;
#  4. the health answer: 200, then 503 with the reason once the rule is
#     gone (and once the mark is), 200 after setup again;
#  5. undo removes all of it and restores rp_filter, also with the balancer
#     unreachable (its link down); twice is fine;
#  6. a device with another nonzero fwmark, or a table with another default
#     route (wg-quick's), is refused, and nothing changes;
#  7. a state dir with no room (a full tmpfs): setup fails before rp_filter
#     changes and leaves no empty state file behind, so with room again
#     it saves the real value and undo restores it;
#  8. the same with an IPv6 balancer: IPv6 rule and route;
# 10. the port closed (wireguard-go gone): the kernel's port unreachable to a
#     client goes back via the balancer (the failover hint wglb relies on),
#     and undo removes the mark and restores fwmark_reflect;
#  9. two balancers at once (ECMP): each sends to an address of its own on
#     the server, and replies from that address leave via that balancer
#     (rule "from LOCAL fwmark MARK", a table each); a probe is answered
#     for its own balancer's routing; undo takes both away.
set -uo pipefail
B=${WGLB_BUILD:?WGLB_BUILD is the build directory}
WGH=$B/health/wg-health
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (namespaces, routes)"; exit 77; }
command -v wireguard-go >/dev/null || { echo "SKIP: wireguard-go is not installed"; exit 77; }
for t in ip wg curl python3; do
	command -v $t >/dev/null || { echo "FAIL: $t is missing"; exit 1; }
done
NB=wgrsb-$$ NL=wgrsl-$$
IFN=wgrs$$ VB=vb$$ VL=vl$$ UA=ua$$ UB=ub$$
LB=10.77.0.1 BE=10.77.0.2 PORT=18480
T=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	ip netns del "$NB" 2>/dev/null
	ip netns del "$NL" 2>/dev/null
	rm -f "/var/run/wireguard/$IFN.sock"
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM # meson's timeout: clean up too
die() { echo "FAIL: $*"; exit 1; }
# "cmd | grep -q" under pipefail: grep quitting at its match can kill cmd
# with SIGPIPE, which reads as no match. Read it all, then match.
holds() { local all; all=$(cat); grep -q "$@" <<<"$all"; }
# wait_for SECONDS WHAT CMD...: poll until CMD succeeds.
wait_for() {
	local deadline=$(($(date +%s%N) + $1 * 1000000000)) what=$2
	shift 2
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s%N)" -ge "$deadline" ] && { echo "timed out after $1 s: $what"; return 1; }
		sleep 0.1
	done
}
inb() { ip netns exec "$NB" "$@"; }
wgh() { inb "$WGH" --device "$IFN" --route-via "$LB" --state-dir "$T/state" "$@"; }
rules() { ip -n "$NB" rule show | grep -c 'fwmark 0xca6c lookup 51820'; }
rp() { inb cat "/proc/sys/net/ipv4/conf/$VB/rp_filter"; }

ip netns add "$NB" || die "ip netns add"
ip netns add "$NL" || die "ip netns add"
ip -n "$NB" link set lo up
ip -n "$NL" link set lo up
ip link add "$VB" netns "$NB" type veth peer name "$VL" netns "$NL" || die "veth"
ip -n "$NB" addr add "$BE/24" dev "$VB"
ip -n "$NL" addr add "$LB/24" dev "$VL"
ip -n "$NB" link set "$VB" up
ip -n "$NL" link set "$VL" up
# The backend's own way out, which its unmarked traffic must keep.
ip -n "$NB" link add "$UA" type veth peer name "$UB" || die "uplink veth"
ip -n "$NB" addr add 192.0.2.2/24 dev "$UA"
ip -n "$NB" link set "$UA" up
ip -n "$NB" link set "$UB" up
ip -n "$NB" route add default via 192.0.2.1 dev "$UA" || die "default route"
inb sh -c "echo 0 >/proc/sys/net/ipv4/conf/all/rp_filter; echo 1 >/proc/sys/net/ipv4/conf/$VB/rp_filter"
[ "$(rp)" = 1 ] || die "could not set rp_filter to 1 first"

# Not through inb(): $! must be the process itself, not a subshell that a
# kill would leave it running behind.
ip netns exec "$NB" wireguard-go -f "$IFN" >"$T/wg.log" 2>&1 &
pids+=($!)
wait_for 5 "wireguard-go's socket" test -S "/var/run/wireguard/$IFN.sock" || die "wireguard-go: $(cat "$T/wg.log")"
(umask 077; wg genkey >"$T/key"; wg genkey >"$T/peer.key")
peer=$(wg pubkey <"$T/peer.key")
wg set "$IFN" listen-port 51820 private-key "$T/key" peer "$peer" allowed-ips 10.99.0.2/32 \
	endpoint 198.51.100.50:51820 || die "wg set"
ip -n "$NB" addr add 10.99.0.1/24 dev "$IFN"
ip -n "$NB" link set "$IFN" up

# 1. Setup.
wgh --route-setup >"$T/setup1" 2>&1 || die "setup: $(cat "$T/setup1")"
cat "$T/setup1"
[ "$(rules)" = 1 ] || die "want one fwmark rule: $(ip -n "$NB" rule show)"
ip -n "$NB" route show table 51820 | holds "^default via $LB dev $VB" ||
	die "table 51820: $(ip -n "$NB" route show table 51820)"
[ "$(wg show "$IFN" fwmark)" = 0xca6c ] || die "fwmark: $(wg show "$IFN" fwmark)"
[ "$(rp)" = 2 ] || die "rp_filter of $VB is $(rp), want 2"
[ "$(cat "$T/state/rp_filter.$VB")" = 1 ] || die "saved rp_filter: $(cat "$T/state/rp_filter.$VB")"
[ "$(stat -c %a "$T/state")" = 700 ] || die "state dir mode $(stat -c %a "$T/state")"
inb nft list table inet wglb_reply | holds 'udp dport 51820 meta mark set 0x0000ca6c' ||
	die "no mark for datagrams to WireGuard's port: $(inb nft list ruleset)"
[ "$(inb cat /proc/sys/net/ipv4/fwmark_reflect)" = 1 ] || die "fwmark_reflect not set"
echo "ok: setup: fwmark 0xca6c, one rule, default via $LB in table 51820, rp_filter 1 -> 2 (saved)"

# 2. Again: nothing changes.
wgh --route-setup >"$T/setup2" 2>&1 || die "second setup: $(cat "$T/setup2")"
[ "$(grep -c 'in place\|accepts client sources already' "$T/setup2")" = 7 ] ||
	die "second setup changed something: $(cat "$T/setup2")"
[ "$(rules)" = 1 ] || die "second setup: $(rules) rules"
[ "$(cat "$T/state/rp_filter.$VB")" = 1 ] || die "second setup overwrote the saved rp_filter"
wgh --route-check >"$T/check" 2>&1 || die "route-check: $(cat "$T/check")"
grep -q "is in place" "$T/check" || die "route-check: $(cat "$T/check")"
echo "ok: setup twice leaves one rule; --route-check exits 0"

# 3. WireGuard's own packets leave toward the balancer; nothing else moves.
inb ip route get 198.51.100.50 mark 0xca6c | holds "via $LB dev $VB" ||
	die "marked: $(inb ip route get 198.51.100.50 mark 0xca6c)"
inb ip route get 198.51.100.50 | holds "via 192.0.2.1 dev $UA" ||
	die "unmarked traffic moved: $(inb ip route get 198.51.100.50)"
if command -v nft >/dev/null; then
	# A handshake initiation, sent by wireguard-go itself (a keepalive
	# going from 0 to 1 starts one), counted where it reaches the balancer.
	ip netns exec "$NL" nft add table inet rs || die "nft table"
	ip netns exec "$NL" nft add chain inet rs pre '{ type filter hook prerouting priority 0; }'
	ip netns exec "$NL" nft add rule inet rs pre iifname "$VL" ip saddr "$BE" ip daddr 198.51.100.50 \
		udp sport 51820 udp dport 51820 counter
	seen() { ip netns exec "$NL" nft list chain inet rs pre | grep -Eq 'counter packets [1-9]'; }
	wg set "$IFN" peer "$peer" persistent-keepalive 1
	wait_for 10 "an initiation from wireguard-go at the balancer" seen ||
		die "wireguard-go's packet did not reach the balancer: $(ip netns exec "$NL" nft list chain inet rs pre)"
	wg set "$IFN" peer "$peer" persistent-keepalive 0
	echo "ok: wireguard-go's handshake initiation to 198.51.100.50 left via $VB to the balancer"
fi
echo "ok: marked lookups go via $LB dev $VB, unmarked ones via the uplink as before"

# 4. The health answer checks it every time.
ip netns exec "$NB" "$WGH" --device "$IFN" --route-via "$LB" --port "$PORT" --listen "$BE" \
	>"$T/health.log" 2>&1 &
pids+=($!)
probe() { ip netns exec "$NL" curl -s --max-time 3 -o "$T/body" -w '%{http_code}' "http://$BE:$PORT/"; }
is() { [ "$(probe)" = "$1" ] && grep -qF "$2" "$T/body"; }
wait_for 10 "200 while in place" is 200 healthy || die "not 200 while in place: $(cat "$T/body" "$T/health.log")"
ip -n "$NB" rule del fwmark 0xca6c lookup 51820 || die "ip rule del"
fix="client address routing not in place: run wg-health --device $IFN --route-via $LB --route-setup"
wait_for 10 "503 without the rule" is 503 "$fix" || die "without the rule: $(cat "$T/body")"
grep -q "marked packets go via 192.0.2.1" "$T/body" || die "reason: $(cat "$T/body")"
echo "  the 503's body: $(cat "$T/body")"
out=$(inb "$WGH" --device "$IFN" --route-via "$LB" --test 2>"$T/test.err") && die "--test exited 0"
[ "$out" = "$IFN down" ] && grep -qF "$fix" "$T/test.err" || die "--test: $out $(cat "$T/test.err")"
wgh --route-check >"$T/check" 2>&1 && die "route-check passed without the rule"
grep -q "missing: rule" "$T/check" || die "route-check: $(cat "$T/check")"
wgh --route-setup >/dev/null 2>&1 || die "setup again"
wait_for 10 "200 again" is 200 healthy || die "not 200 after setup: $(cat "$T/body")"
wg set "$IFN" fwmark 0
wait_for 10 "503 without the mark" is 503 "fwmark is 0x0, not 0xca6c" || die "without the mark: $(cat "$T/body")"
wgh --route-setup >/dev/null 2>&1 || die "setup after the mark was cleared"
wait_for 10 "200 again" is 200 healthy || die "not 200 after setup: $(cat "$T/body")"
echo "ok: health 200 in place, 503 with the reason without the rule or the mark, 200 after setup"

# 5. Undo, twice, with the balancer unreachable ($VB down: the way to $LB is
# the uplink's gateway now): the saved file names the interface. A file
# whose name is not an interface's is left alone.
[ "$(rp)" = 2 ] || die "rp_filter of $VB is $(rp) before undo, want 2"
echo 2 >"$T/state/rp_filter.all"
ip -n "$NB" link set "$VB" down || die "ip link set $VB down"
inb ip route get "$LB" | holds "via 192.0.2.1" || die "$LB still on-link: $(inb ip route get "$LB")"
wgh --route-undo >"$T/undo1" 2>&1 || die "undo: $(cat "$T/undo1")"
cat "$T/undo1"
[ "$(rules)" = 0 ] || die "undo left a rule: $(ip -n "$NB" rule show)"
[ -z "$(ip -n "$NB" route show table 51820 2>/dev/null)" ] || die "undo left $(ip -n "$NB" route show table 51820)"
[ "$(wg show "$IFN" fwmark)" = off ] || die "undo left fwmark $(wg show "$IFN" fwmark)"
[ "$(rp)" = 1 ] || die "rp_filter not restored: $(rp)"
[ ! -e "$T/state/rp_filter.$VB" ] || die "undo left the state file"
[ "$(inb cat /proc/sys/net/ipv4/conf/all/rp_filter)" = 0 ] || die "undo wrote conf/all"
[ -e "$T/state/rp_filter.all" ] || die "undo removed rp_filter.all"
rm "$T/state/rp_filter.all"
wgh --route-undo >"$T/undo2" 2>&1 || die "second undo: $(cat "$T/undo2")"
grep -q "not there" "$T/undo2" && grep -q "rp_filter: nothing saved" "$T/undo2" ||
	die "second undo: $(cat "$T/undo2")"
[ "$(rp)" = 1 ] || die "second undo: rp_filter $(rp)"
ip -n "$NB" link set "$VB" up || die "ip link set $VB up"
wgh --route-check >/dev/null 2>&1 && die "route-check passed after undo"
wait_for 10 "503 after undo" is 503 "$fix" || die "after undo: $(cat "$T/body")"
echo "ok: undo with $LB unreachable removes rule, route and fwmark, restores rp_filter 1; twice is fine"

# 6. Somebody else's mark is not ours to replace.
wg set "$IFN" fwmark 0x1234
wgh --route-setup >"$T/refused" 2>&1 && die "setup replaced fwmark 0x1234"
grep -q "already has fwmark 0x1234" "$T/refused" || die "refusal: $(cat "$T/refused")"
[ "$(wg show "$IFN" fwmark)" = 0x1234 ] || die "fwmark changed to $(wg show "$IFN" fwmark)"
[ "$(rules)" = 0 ] && [ "$(rp)" = 1 ] || die "a refused setup changed the routing"
wgh --route-undo >/dev/null 2>&1 || die "undo with another mark"
[ "$(wg show "$IFN" fwmark)" = 0x1234 ] || die "undo cleared somebody else's mark"
wg set "$IFN" fwmark 0
ip -n "$NB" route add default dev "$UA" table 51820 || die "a foreign route"
wgh --route-setup >"$T/refused" 2>&1 && die "setup replaced table 51820's default route"
grep -q "table 51820 already has a default route dev $UA" "$T/refused" || die "refusal: $(cat "$T/refused")"
[ "$(wg show "$IFN" fwmark)" = off ] && [ "$(rules)" = 0 ] && [ "$(rp)" = 1 ] ||
	die "a refused setup changed something"
ip -n "$NB" route del default dev "$UA" table 51820
echo "ok: another nonzero fwmark, or another default route in the table, is refused with nothing changed"

# 7. Saving rp_filter fails on a full state dir: in a mount namespace of its
# own, a tmpfs of four pages, filled. No file may be left that a later setup
# takes for a saved value (and undo fails to read).
mkdir "$T/full"
inb unshare -m --propagation private sh -c '
	d=$1 wgh=$2 dev=$3 via=$4 rp=/proc/sys/net/ipv4/conf/$5/rp_filter o=$6
	w() { "$wgh" --device "$dev" --route-via "$via" --state-dir "$d" "$@"; }
	fail() { echo "FAIL: $*"; exit 1; }
	mount -t tmpfs -o size=16k,mode=0700 wglb-full "$d" || fail "mount tmpfs"
	head -c 16384 /dev/zero >"$d/fill" 2>/dev/null
	w --route-setup >"$o/full1" 2>&1 && fail "setup passed on a full state dir: $(cat "$o/full1")"
	grep -q "No space left" "$o/full1" || fail "setup on a full state dir: $(cat "$o/full1")"
	[ "$(ls -A "$d")" = fill ] || fail "a failed save left: $(ls -A "$d")"
	[ "$(cat "$rp")" = 1 ] || fail "rp_filter changed with nothing saved: $(cat "$rp")"
	rm "$d/fill"
	w --route-setup >"$o/full2" 2>&1 || fail "setup with room again: $(cat "$o/full2")"
	[ "$(cat "$d/rp_filter.$5")" = 1 ] || fail "saved: $(cat "$d/rp_filter.$5")"
	w --route-undo >"$o/full3" 2>&1 || fail "undo: $(cat "$o/full3")"
	[ -z "$(ls -A "$d")" ] || fail "undo left: $(ls -A "$d")"
' sh "$T/full" "$WGH" "$IFN" "$LB" "$VB" "$T" || die "full state dir"
[ "$(rp)" = 1 ] && [ "$(rules)" = 0 ] && [ "$(wg show "$IFN" fwmark)" = off ] ||
	die "after the full state dir: rp_filter $(rp), $(rules) rules, fwmark $(wg show "$IFN" fwmark)"
echo "ok: a full state dir fails setup with rp_filter unchanged and no state file; then saved and restored"

# 8. An IPv6 balancer: the rule and route are IPv6 ones; no rp_filter.
ip -n "$NB" addr add fd77::2/64 dev "$VB" nodad
ip -n "$NL" addr add fd77::1/64 dev "$VL" nodad
w6() { inb "$WGH" --device "$IFN" --route-via fd77::1 --state-dir "$T/state" "$@"; }
w6 --route-setup >"$T/setup6" 2>&1 || die "IPv6 setup: $(cat "$T/setup6")"
[ "$(ip -6 -n "$NB" rule show | grep -c 'fwmark 0xca6c lookup 51820')" = 1 ] || die "IPv6 rule"
[ "$(rules)" = 0 ] || die "an IPv6 setup added an IPv4 rule"
ip -6 -n "$NB" route show table 51820 | holds "^default via fd77::1 dev $VB" || die "IPv6 route"
inb ip -6 route get 2001:db8::7 mark 0xca6c | holds "via fd77::1 dev $VB" || die "IPv6 marked lookup"
w6 --route-check >/dev/null 2>&1 || die "IPv6 route-check"
w6 --route-undo >/dev/null 2>&1 || die "IPv6 undo"
[ "$(ip -6 -n "$NB" rule show | grep -c 'fwmark 0xca6c')" = 0 ] || die "IPv6 undo left the rule"
[ "$(wg show "$IFN" fwmark)" = off ] || die "IPv6 undo left the mark"
echo "ok: an IPv6 balancer gets IPv6 rule and route, checked and undone"

# 9. Two balancers (ECMP): 10.77.0.1 sends to 10.77.0.21, 10.77.0.3 to .22.
ip -n "$NL" addr add 10.77.0.3/24 dev "$VL"
ip -n "$NB" addr add 10.77.0.21/24 dev "$VB"
ip -n "$NB" addr add 10.77.0.22/24 dev "$VB"
two=(--route-via 10.77.0.1 --route-from 10.77.0.21 --route-via 10.77.0.3 --route-from 10.77.0.22)
inb "$WGH" --device "$IFN" --route-via 10.77.0.1 --route-via 10.77.0.3 --route-setup >/dev/null 2>&1 &&
	die "two --route-via without --route-from were accepted"
inb "$WGH" --device "$IFN" "${two[@]}" --state-dir "$T/state" --route-setup >"$T/setup-e" 2>&1 ||
	die "two balancers: $(cat "$T/setup-e")"
ip -n "$NB" rule show | holds 'from 10.77.0.21 fwmark 0xca6c lookup 51820' &&
	ip -n "$NB" rule show | holds 'from 10.77.0.22 fwmark 0xca6c lookup 51821' ||
	die "rules: $(ip -n "$NB" rule show)"
[ "$(ip -n "$NB" rule show | grep -c 'from all fwmark 0xca6c')" = 0 ] ||
	die "a rule without a source was added beside the two"
inb ip route get 198.51.100.50 from 10.77.0.21 mark 0xca6c | holds "via 10.77.0.1 dev $VB" ||
	die "from .21: $(inb ip route get 198.51.100.50 from 10.77.0.21 mark 0xca6c)"
inb ip route get 198.51.100.50 from 10.77.0.22 mark 0xca6c | holds "via 10.77.0.3 dev $VB" ||
	die "from .22: $(inb ip route get 198.51.100.50 from 10.77.0.22 mark 0xca6c)"
inb "$WGH" --device "$IFN" "${two[@]}" --state-dir "$T/state" --route-check >/dev/null 2>&1 ||
	die "two balancers: route-check"
ip netns exec "$NB" "$WGH" --device "$IFN" "${two[@]}" --port $((PORT + 1)) --listen 0.0.0.0 \
	>"$T/health-e.log" 2>&1 &
pids+=($!)
probe_at() { ip netns exec "$NL" curl -s --max-time 3 -o /dev/null -w '%{http_code}' "http://$1:$((PORT + 1))/"; }
wait_for 5 "health answers for both balancers" sh -c "[ \"\$(ip netns exec $NL curl -s --max-time 3 -o /dev/null -w '%{http_code}' http://10.77.0.22:$((PORT + 1))/)\" = 200 ]" ||
	die "health for the second balancer: $(probe_at 10.77.0.22) $(cat "$T/health-e.log")"
ip -n "$NB" rule del from 10.77.0.22 fwmark 0xca6c lookup 51821 || die "rule del"
[ "$(probe_at 10.77.0.22)" = 503 ] || die "the second balancer's probe passed without its rule"
[ "$(probe_at 10.77.0.21)" = 200 ] || die "the first balancer's probe failed for the second's rule"
inb "$WGH" --device "$IFN" "${two[@]}" --state-dir "$T/state" --route-undo >/dev/null 2>&1 ||
	die "two balancers: undo"
[ "$(ip -n "$NB" rule show | grep -c 'fwmark 0xca6c')" = 0 ] || die "undo left rules: $(ip -n "$NB" rule show)"
[ -z "$(ip -n "$NB" route show table 51820)$(ip -n "$NB" route show table 51821)" ] || die "undo left routes"
echo "ok: two balancers: a rule and table each by the server's address, probes answered per balancer, undone"

# 10. WireGuard's port closed: its ICMP errors go back via the balancer.
reflect0=$(inb cat /proc/sys/net/ipv4/fwmark_reflect)
wgh --route-setup >/dev/null 2>&1 || die "setup before the port closes"
ip -n "$NL" addr add 198.51.100.50/32 dev lo
ip netns exec "$NL" nft add table inet icmp10 && ip netns exec "$NL" nft add chain inet icmp10 pre \
	'{ type filter hook prerouting priority 0; }' && ip netns exec "$NL" nft add rule inet icmp10 pre \
	iifname "$VL" ip daddr 198.51.100.50 icmp type destination-unreachable counter || die "nft counter"
kill "${pids[0]}" && wait "${pids[0]}" 2>/dev/null
ip netns exec "$NL" python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("198.51.100.50", 40000)); [s.sendto(b"x" * 32, ("10.77.0.2", 51820)) for _ in range(3)]'
unreach() { ip netns exec "$NL" nft list chain inet icmp10 pre | grep -Eq 'counter packets [1-9]'; }
wait_for 5 "the port unreachable at the balancer" unreach ||
	die "the server's ICMP error did not come back via the balancer: $(ip netns exec "$NL" nft list chain inet icmp10 pre)"
wgh --route-undo >/dev/null 2>&1 || die "undo after the port closed"
inb nft list table inet wglb_reply >/dev/null 2>&1 && die "undo left table inet wglb_reply"
[ "$(inb cat /proc/sys/net/ipv4/fwmark_reflect)" = "$reflect0" ] || die "fwmark_reflect not restored"
echo "ok: with WireGuard's port closed, its port unreachable reached the balancer; undo removed the mark"
echo "PASS: route setup, check, health answers and undo"
