#!/bin/bash
# With real WireGuard: a spoofed flood from many forged sources (valid-mac1
# initiations, which anyone with a client config can make, and as many
# again of the other types: valid-mac1 responses, cookie replies and blind
# transport data) while a real client pings the app through its tunnel and
# a newcomer starts a fresh session mid-flood.
#   - no spoofed flow is ever confirmed; with always, none is even opened;
#   - handshake_cookies = always: no flood initiation reaches a backend;
#     auto: under 1% of them after the first second;
#   - the pinging client keeps its pings, the newcomer's handshake completes
#     (through wglb's cookie: wireguard-go retries after REKEY_TIMEOUT, 5 s);
#   - no proven client is refused for want of a port, a socket or room.
# CI runs both modes at a bounded rate; bench/dos runs it at the
# generator's full rate and reports the figures (FLOOD_PPS=0).
# Env: MODE=auto|always (default: both, one after the other), FLOOD_PPS
# (default 20000; 0 = as fast as the generator goes), FLOOD_S (default 8),
# PRESERVE=1 (client_address = preserve: the same promises hold).
source "$(dirname "$0")/topo.sh"
SPOOF=$WGLB_BUILD/bench/wglb-spoof
[ -x "$SPOOF" ] || { echo "SKIP: needs $SPOOF"; exit 77; }
if [ -z "${MODE:-}" ]; then # each mode in a topology of its own
	MODE=auto bash "$0" || exit 1
	exec env MODE=always bash "$0"
fi
PPS=${FLOOD_PPS:-20000} DUR=${FLOOD_S:-8}
extra="" ca=snat
if [ -n "${PRESERVE:-}" ]; then
	# The balancer delivers replies to clients' addresses to wglb; each
	# server routes WireGuard's replies back through it.
	topo_before_wglb() {
		ip netns exec "$NS_LB" "$TOPO_ROOT/deploy/preserve/wglb-preserve-routing" up >/dev/null || return 1
		for j in $(seq 1 "$N_BE"); do preserve_route_setup "$j" || return 1; done
	}
	export HEALTH_EXTRA="--route-via 10.10.10.1"
	extra="client_address = preserve" ca=preserve
fi
MAX_FLOWS=4096 WGLB_EXTRA="server_public_key = @SERVER_PUB@
handshake_cookies = $MODE
$extra" topo_up 3 2
log "mode $MODE: flood ${DUR}s at ${PPS:-max} pps"

# The attacker sits beside client 2 (a raw socket in its namespace: a new
# port on the bridge would change the bridge's MAC under the clients),
# forging sources in 203.0.0.0/16. wglb's answers to those go toward a
# neighbour that never answers ARP, inside these namespaces, and die there.
NS_ATK=$(ns_cl 2)
ip -n "$NS_LB" route add 203.0.0.0/16 via 198.51.100.254 dev brc

inits_fwd() { stat_json 's["messages_in"]["initiation"]'; }
ping_start 1 0.05
wait_for 10 "pings" pinging 1 || { cat "$T/ping1.log"; wg show "$(wg_cl 1)"; ps aux | grep "[p]ing -D"; ctl show flows; die "no pings"; }
sleep 0.5 # a few pings before the flood, so the window below starts with replies
t_start=$(now)
ip netns exec "$NS_ATK" "$SPOOF" -t "$LB_PUBLIC:51820" -s 203.0.0.0/16 -k "$(cat "$T/server.pub")" \
	-i 50 -a -d "$DUR" ${PPS:+-r "$PPS"} -n 100000000 >"$T/spoof.out" 2>&1 &
spid=$!
# After the first second: what reached the backends from here on is what the edge let through.
wait_for 3 "the flood started" sh -c "[ \$('$WGLBCTL' -s '$T/control.sock' --json show stats | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"packets_in\"])') -gt 1000 ]"
sleep 1
i1=$(inits_fwd) t1=$(now)
# The newcomer: client 2 forgets its session and starts anew from a new port.
hs0=$(wg show "$(wg_cl 2)" latest-handshakes | awk '{print $2}')
t_new=$(now)
client_renew 2 41002 || die "client 2 renew"
new_hs() { local h; h=$(wg show "$(wg_cl 2)" latest-handshakes | awk '{print $2}'); [ -n "$h" ] && [ "$h" != 0 ] && [ "$h" != "$hs0" ]; }
wait_for 20 "the newcomer's handshake during the flood" new_hs || { ctl show stats; die "the newcomer could not handshake"; }
t_hs=$(python3 -c "print(f'{$(now) - $t_new:.1f}')")
wait "$spid"
i2=$(inits_fwd) t2=$(now)
ping_stop 1
read -r sent sent_inits pps < <(sed -n 's/^sent \([0-9]*\) datagrams (\([0-9]*\) initiations) in .*: \([0-9]*\) pps$/\1 \2 \3/p' "$T/spoof.out")
[ -n "${sent:-}" ] || die "generator: $(cat "$T/spoof.out")"
app_ok 2 || wait_for 10 "newcomer reaches the app" app_ok 2 || die "the newcomer cannot reach the app"

# Pings sent and answered while the flood ran (ping -D stamps each reply).
read -r ping_ok ping_sent < <(python3 - "$T/ping1.log" "$t_start" "$t2" <<'PY'
import re, sys
t0, t1 = float(sys.argv[2]), float(sys.argv[3])
seqs = [int(m.group(2)) for m in (re.search(r"^\[(\d+\.\d+)\].*icmp_seq=(\d+)", l) for l in open(sys.argv[1]))
        if m and t0 <= float(m.group(1)) <= t1]
print(len(seqs), (max(seqs) - min(seqs) + 1) if seqs else 0)
PY
)
st=$(ctl --json show stats)
j() { echo "$st" | python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"; }
read -r spoofed_confirmed spoofed_flows < <(ctl --json show flows | python3 -c 'import json,sys
fl = [f for f in json.load(sys.stdin)["flows"] if f["client"].startswith("203.0.")]
print(sum(1 for f in fl if f["confirmed"]), len(fl))')
no_flow=$(j 's["drops_in"]["no_flow"]')
late_inits=$(python3 -c "print(round($sent_inits * ($t2 - $t1) / ($t2 - $t_start)))")
through=$((i2 - i1))
pct=$(python3 -c "print(f'{100 * $through / max($late_inits, 1):.3f}')")
ping_pct=$(python3 -c "print(f'{100 * $ping_ok / max($ping_sent, 1):.1f}')")
no_socket=$(j 's["drops_in"]["no_socket"]') table_full=$(j 's["drops_in"]["table_full"]')
log "flood: $sent datagrams ($sent_inits initiations) at $pps pps; spoofed flows open $spoofed_flows, confirmed $spoofed_confirmed;" \
	"responses and cookie replies from no flow dropped: $no_flow;" \
	"initiations through after 1 s: $through of ~$late_inits ($pct%); cookies $(j 's["edge"]["cookies_sent"]');" \
	"pings $ping_ok/$ping_sent ($ping_pct%); newcomer handshake ${t_hs}s; no_socket $no_socket, table_full $table_full"

[ "$spoofed_confirmed" = 0 ] || die "$spoofed_confirmed spoofed flows confirmed"
[ "$no_flow" -gt 0 ] || die "no response or cookie reply of the flood was counted as no_flow"
if [ "$MODE" = always ]; then
	# Every real handshake went through wglb's cookie: wireguard-go took it.
	[ "$(j 's["edge"]["mac2_valid"]')" -ge 3 ] || die "real clients did not come back with mac2"
	# The newcomer's own proven initiation (and a retry) are all that may pass.
	[ "$through" -le 3 ] || die "$through initiations reached the backends in always mode"
	[ "$spoofed_flows" = 0 ] || die "$spoofed_flows spoofed flows opened in always mode"
else
	python3 -c "import sys; sys.exit(not ($through <= 3 or $through < 0.01 * $late_inits))" ||
		die "$through of ~$late_inits flood initiations passed after the first second"
fi
[ "$no_socket" = 0 ] && [ "$table_full" = 0 ] || die "proven clients refused: no_socket $no_socket, table_full $table_full"
# CI bounds, looser than the bench goals (99% of pings, 7 s) for a busy machine.
python3 -c "import sys; sys.exit(not ($ping_sent >= 20 and $ping_ok >= 0.95 * $ping_sent))" ||
	die "the established client lost pings: $ping_ok/$ping_sent"
python3 -c "import sys; sys.exit(not ($t_hs <= 15))" || die "newcomer took ${t_hs}s"
log "PASS: mode $MODE"
echo "RESULT dos mode=$MODE client_address=$ca pps=$pps sent=$sent spoofed_confirmed=$spoofed_confirmed inits_through_after_1s=$through of=$late_inits pct=$pct pings=$ping_ok/$ping_sent newcomer_hs_s=$t_hs no_socket=$no_socket table_full=$table_full spoofed_flows=$spoofed_flows no_flow=$no_flow"
