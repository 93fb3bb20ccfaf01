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
bg "$NS" health "$WGHEALTH" --device "$IFN" --port 18080 --listen 127.0.0.1 --drain-file "$T/drain"
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

# A silent client and a garbage client, then 200 probes, 50 at a time.
ip netns exec "$NS" python3 -c "
import socket, time
s = socket.create_connection(('127.0.0.1', 18080)); time.sleep(4)" &
silent=$!
g=$(ip netns exec "$NS" python3 -c "
import socket
s = socket.create_connection(('127.0.0.1', 18080)); s.sendall(b'\x00\xff garbage\r\n\r\n')
print(s.recv(100).split(b' ')[1].decode())")
[ "$g" = 400 ] || die "garbage got $g"
t0=$SECONDS
ok=$(seq 1 200 | xargs -P 50 -I{} ip netns exec "$NS" curl -s --max-time 3 -o /dev/null -w '%{http_code}\n' \
	http://127.0.0.1:18080/ | grep -c '^200$')
[ "$ok" = 200 ] || die "only $ok of 200 concurrent probes answered 200"
[ $((SECONDS - t0)) -lt 4 ] || die "probes waited on the silent client"
kill "$silent" 2>/dev/null

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
is 503 "interface missing" || die "503 when the interface is gone"
ip netns exec "$NS" "$WGHEALTH" --device "$IFN" --test >/dev/null && die "--test says up without an interface"
log "PASS: wg-health: up 200, link down 503, drain 503 + X-Wglb-Drain, 200 concurrent probes with a silent and a garbage client, tunnel address refused, deleted 503"
