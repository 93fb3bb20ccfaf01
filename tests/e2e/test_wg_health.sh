#!/bin/bash
# Issue 3: wg-health against a real wireguard-go interface: up, link down,
# drain file, deleted; GET and HEAD; many concurrent probes; a silent and
# a garbage client do not hold anyone up; nothing answers on the tunnel's
# own address; --test.
source "$(dirname "$0")/topo.sh"
topo_require
NS=wgh-$ID
IFN=wgh$ID
trap 'kill_all; ip netns del "$NS" 2>/dev/null; rm -f "/var/run/wireguard/$IFN.sock"; rm -rf "$T"' EXIT
kill_all() { for p in "${TOPO_PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; }
mkns "$NS"
bg "$NS" wg wireguard-go -f "$IFN"
wait_for 5 "wireguard-go" test -S "/var/run/wireguard/$IFN.sock" || die "wireguard-go"
(umask 077; wg genkey >"$T/k")
wg set "$IFN" listen-port 51820 private-key "$T/k"
ip -n "$NS" link set "$IFN" up
head -c 32 /dev/urandom | base64 >"$T/agent.key"
bg "$NS" health "$WGHEALTH" --device "$IFN" --port 18080 --listen 127.0.0.1 --drain-file "$T/drain" \
	--agent-port 18090 --agent-key "$T/agent.key"
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

# Bound to the wildcard, as the shipped unit is: a connection to the
# WireGuard interface's own address (a VPN client through the tunnel) is
# refused; the server's other addresses answer.
ip -n "$NS" addr add 10.77.0.1/24 dev "$IFN"
bg "$NS" health-any "$WGHEALTH" --device "$IFN" --port 18081
code() { ip netns exec "$NS" curl -s --max-time 2 -o /dev/null -w '%{http_code}' "http://$1:18081/"; }
wait_for 5 "wildcard agent answers" sh -c "[ \"\$(ip netns exec $NS curl -s --max-time 2 -o /dev/null -w '%{http_code}' http://127.0.0.1:18081/)\" = 200 ]" ||
	die "wildcard agent"
[ "$(code 10.77.0.1)" = 000 ] || die "a connection through the tunnel address was answered"
[ "$(code 127.0.0.1)" = 200 ] || die "the server's own address was refused"

kill_backend() { kill "$(cat "$T/wg.pid")"; wait "$(cat "$T/wg.pid")" 2>/dev/null; }
kill_backend
# The interface goes with the process, but not necessarily before wait returns.
wait_for 5 "503 once the interface is gone" is 503 "interface missing" || die "503 when the interface is gone"
ip netns exec "$NS" "$WGHEALTH" --device "$IFN" --test >/dev/null && die "--test says up without an interface"
log "PASS: wg-health: up 200, link down 503, drain 503 + X-Wglb-Drain, 200 concurrent probes, each probe answered while a silent client held its connection, garbage 400, tunnel address refused, deleted 503"
