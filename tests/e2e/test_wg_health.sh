#!/bin/bash
# Issue 3: wg-health against a real wireguard-go interface: up, link down,
# drain file, deleted; GET and HEAD; many concurrent probes; a silent and
# a garbage client do not hold anyone up; nothing answers a connection that
# arrived through the tunnel, whatever address it is for; --test.
source "$(dirname "$0")/topo.sh"
topo_require
NS=wgh-$ID
NSC=wghc-$ID # a WireGuard client of the server (a VPN user)
NSP=wghp-$ID # the balancer's prober, on the server's LAN
IFN=wgh$ID
IFC=wghc$ID
trap 'kill_all; for n in "$NS" "$NSC" "$NSP"; do ip netns del "$n" 2>/dev/null; done
	rm -f "/var/run/wireguard/$IFN.sock" "/var/run/wireguard/$IFC.sock"; rm -rf "$T"' EXIT
kill_all() { for p in "${TOPO_PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
mkns "$NS"
bg "$NS" wg wireguard-go -f "$IFN"
wait_for 5 "wireguard-go" test -S "/var/run/wireguard/$IFN.sock" || die "wireguard-go"
(umask 077; wg genkey >"$T/k")
wg set "$IFN" listen-port 51820 private-key "$T/k"
ip -n "$NS" link set "$IFN" up
head -c 32 /dev/urandom | base64 >"$T/agent.key"
bg "$NS" health "$WGHEALTH" --device "$IFN" --port 18080 --listen 127.0.0.1 --drain-file "$T/drain" \
	--agent-port 18090 --agent-key "$T/agent.key" --name b1
probe() { ip netns exec "$NS" curl -s --max-time 2 -o "$T/body" -D "$T/head" -w '%{http_code}' "$@" http://127.0.0.1:18080/; }
is() { [ "$(probe)" = "$1" ] && grep -q "$2" "$T/body"; }
wait_for 5 "agent answers" is 200 healthy || die "not healthy while up"
[ "$(probe -I)" = 200 ] && grep -q "^Content-Length: 8" "$T/head" || die "HEAD"
[ "$(ip netns exec "$NS" "$WGHEALTH" --device "$IFN" --test)" = "$IFN up" ] || die "--test up"

ip -n "$NS" link set "$IFN" down
is 503 "interface down" || die "503 when the link is down"
ip -n "$NS" link set "$IFN" up
is 200 healthy || die "200 when up again"

touch "$T/drain"
is 503 draining && grep -qi '^X-Wglb-Drain: 1' "$T/head" || die "drain file"
rm "$T/drain"
is 200 healthy || die "drain lifted"

# A garbage client is answered 400; then 200 probes, 50 at a time, are all
# answered (their count, not their wall time: that measured curl's start-up).
g=$(ip netns exec "$NS" python3 -c "
import socket
s = socket.create_connection(('127.0.0.1', 18080)); s.sendall(b'\x00\xff garbage\r\n\r\n')
print(s.recv(100).split(b' ')[1].decode())")
[ "$g" = 400 ] || die "garbage got $g"
ok=$(seq 1 200 | xargs -P 50 -I{} ip netns exec "$NS" curl -s --max-time 10 -o /dev/null -w '%{http_code}\n' \
	http://127.0.0.1:18080/ | grep -c '^200$')
[ "$ok" = 200 ] || die "only $ok of 200 concurrent probes answered 200"

# A silent client does not hold the probes up. The cause, not a clock: for
# each of 20 probes a silent connection (a line and no end) is opened
# first; the probe must get its answer while that connection is still
# open, i.e. before the server closed it. A server that waited on the
# silent client would answer only after closing it at its deadline. The
# silent client uses the agent port (same table, same loop): its 5 s
# deadline outlasts a probe's worst case (the 2 s UAPI timeout), where the
# health port's 1 s does not on a loaded machine.
sil=$(ip netns exec "$NS" python3 -c "
import socket
def open_(s):
    s.setblocking(False)
    try:
        return s.recv(1) != b''
    except BlockingIOError:
        return True
    except OSError:
        return False
bad = []
for i in range(20):
    silent = socket.create_connection(('127.0.0.1', 18090), timeout=5)
    silent.sendall(b'v1 ')
    p = socket.create_connection(('127.0.0.1', 18080), timeout=10)
    p.sendall(b'GET / HTTP/1.0\r\n\r\n')
    out = b''
    while (d := p.recv(4096)):
        out += d
    if not out.startswith(b'HTTP/1.1 200'):
        bad.append(f'probe {i} got {out[:20]!r}')
    elif not open_(silent):
        bad.append(f'probe {i} answered only after the silent connection was closed')
    silent.close(); p.close()
print('; '.join(bad) or 'ok')")
[ "$sil" = ok ] || die "probes waited on the silent client: $sil"

# The attack through the tunnel: a WireGuard client of this server routes
# the server's LAN address (and the tunnel's own) into the tunnel and asks
# the health port there. wg-health decides by the interface a connection
# arrived on, so it must refuse these, whatever address they are for, while
# the balancer's prober on the LAN and the server itself are answered.
ip -n "$NS" addr add 10.77.0.1/24 dev "$IFN"
ip -n "$NS" addr add fd77::1/64 dev "$IFN" nodad
mkns "$NSC"
mkns "$NSP"
ip link add u0 netns "$NS" type veth peer name u1 netns "$NSC" || die "veth underlay"
ip -n "$NS" addr add 192.0.2.1/24 dev u0 && ip -n "$NS" link set u0 up
ip -n "$NSC" addr add 192.0.2.2/24 dev u1 && ip -n "$NSC" link set u1 up
ip link add l0 netns "$NS" type veth peer name l1 netns "$NSP" || die "veth LAN"
ip -n "$NS" addr add 10.78.0.1/24 dev l0 && ip -n "$NS" addr add fd78::1/64 dev l0 nodad && ip -n "$NS" link set l0 up
ip -n "$NSP" addr add 10.78.0.2/24 dev l1 && ip -n "$NSP" addr add fd78::2/64 dev l1 nodad && ip -n "$NSP" link set l1 up
bg "$NSC" wg-client wireguard-go -f "$IFC"
wait_for 5 "client wireguard-go" test -S "/var/run/wireguard/$IFC.sock" || die "client wireguard-go"
(umask 077; wg genkey >"$T/ck")
wg set "$IFC" private-key "$T/ck" peer "$(wg pubkey <"$T/k")" endpoint 192.0.2.1:51820 \
	allowed-ips 10.77.0.0/24,10.78.0.0/24,fd77::/64,fd78::/64 || die "wg set client"
wg set "$IFN" peer "$(wg pubkey <"$T/ck")" allowed-ips 10.77.0.2/32,fd77::2/128 || die "wg set server peer"
ip -n "$NSC" addr add 10.77.0.2/24 dev "$IFC" && ip -n "$NSC" addr add fd77::2/64 dev "$IFC" nodad
ip -n "$NSC" link set "$IFC" up
ip -n "$NSC" route add 10.78.0.0/24 dev "$IFC" && ip -n "$NSC" route add fd78::/64 dev "$IFC"
wait_for 10 "the tunnel carries the client to the server's LAN address" \
	ip netns exec "$NSC" ping -c1 -W1 10.78.0.1 || die "tunnel"
wait_for 5 "... and over IPv6" ip netns exec "$NSC" ping -6 -c1 -W1 fd78::1 || die "tunnel (IPv6)"
bg "$NS" health-any "$WGHEALTH" --device "$IFN" --port 18081
bg "$NS" health-any6 "$WGHEALTH" --device "$IFN" --port 18082 --listen ::
# curl's exit status tells a refusal from a lost path: 52 ("empty reply") or
# 56 (reset: the request met the closed socket) mean a connection was made,
# through the tunnel, and closed unanswered; a lost path would be 7 or 28.
curl_in() { local ns=$1; shift; ip netns exec "$ns" curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$@"; }
wait_for 5 "the wildcard agents answer the prober" sh -c "[ \"\$(ip netns exec $NSP curl -s --max-time 2 -o /dev/null -w '%{http_code}' http://10.78.0.1:18081/)\" = 200 ] &&
	[ \"\$(ip netns exec $NSP curl -s --max-time 2 -o /dev/null -w '%{http_code}' 'http://[fd78::1]:18082/')\" = 200 ]" ||
	die "the wildcard agents do not answer the LAN prober"
for u in http://10.78.0.1:18081/ http://10.77.0.1:18081/ http://10.78.0.1:18082/ 'http://[fd78::1]:18082/' \
	'http://[fd77::1]:18082/'; do
	c=$(curl_in "$NSC" "$u"); rc=$?
	[ "$c" = 000 ] || die "$u through the tunnel was answered $c"
	[ "$rc" = 52 ] || [ "$rc" = 56 ] || die "$u through the tunnel: curl exit $rc, want 52 or 56 (connected, closed unanswered)"
	# The prober keeps being answered right after each refusal.
	[ "$(curl_in "$NSP" http://10.78.0.1:18081/)" = 200 ] || die "the LAN prober was refused after $u"
	[ "$(curl_in "$NSP" 'http://[fd78::1]:18082/')" = 200 ] || die "the LAN prober (IPv6) was refused after $u"
done
[ "$(curl_in "$NS" http://127.0.0.1:18081/)" = 200 ] || die "the server's own loopback was refused"
# (The server's own connection to the tunnel's address is not asserted: the
# kernel reports loopback traffic as arriving on the device holding the
# address, so it is refused too, as it was before.)
kill "$(cat "$T/health-any.pid")" && wait "$(cat "$T/health-any.pid")" 2>/dev/null
grep -q ' 2 refused through the tunnel' "$T/health-any.log" ||
	die "the refusals were not counted: $(tail -2 "$T/health-any.log")"

kill_backend() { kill "$(cat "$T/wg.pid")"; wait "$(cat "$T/wg.pid")" 2>/dev/null; }
kill_backend
# The interface goes with the process, but not necessarily before wait returns.
wait_for 5 "503 once the interface is gone" is 503 "interface missing" || die "503 when the interface is gone"
ip netns exec "$NS" "$WGHEALTH" --device "$IFN" --test >/dev/null && die "--test says up without an interface"
log "PASS: wg-health: up 200, link down 503, drain 503 + X-Wglb-Drain, 200 concurrent probes, each probe answered while a silent client held its connection, garbage 400, a VPN client refused through the tunnel (LAN and tunnel addresses, IPv4 and IPv6) while the LAN prober is answered, deleted 503"
