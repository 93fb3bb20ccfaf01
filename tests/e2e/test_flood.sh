#!/bin/bash
# Issue 8 with real WireGuard: while 10x max_flows spoofed-source
# initiations with a VALID mac1 (anyone with a client config can make
# them) hit wglb, the real client's confirmed flow survives, memory stays
# flat, and the real client completes a fresh handshake and reaches the app.
source "$(dirname "$0")/topo.sh"
MAX_FLOWS=256 WGLB_EXTRA="server_public_key = @SERVER_PUB@" topo_up 3 2
lbpid=$(cat "$T/wglb.pid")
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$(pgrep -P "$lbpid" -n 2>/dev/null || echo "$lbpid")/status"; }
ping_start 1 0.2
wait_for 5 "pings" pinging 1 || die "no pings"
flood() { # N spoofed initiations from client 2's namespace, raw socket, valid mac1
	ip netns exec "$(ns_cl 2)" python3 - "$(cat "$T/server.pub")" "$LB_PUBLIC" "$1" <<'PY'
import base64, hashlib, os, random, socket, struct, sys
pub, dst, n = base64.b64decode(sys.argv[1]), sys.argv[2], int(sys.argv[3])
k = hashlib.blake2s(b"mac1----" + pub).digest()
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
rnd = random.Random()
for i in range(n):
    m = bytearray(os.urandom(148)); m[0:4] = b"\x01\0\0\0"
    m[116:132] = hashlib.blake2s(bytes(m[:116]), key=k, digest_size=16).digest()
    m[132:148] = bytes(16)
    src = bytes([203, 0, rnd.randrange(256), rnd.randrange(1, 255)])
    udp = struct.pack("!HHHH", rnd.randrange(1024, 65535), 51820, 8 + 148, 0) + bytes(m)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i & 0xffff, 0, 64, 17, 0, src, socket.inet_aton(dst))
    s.sendto(ip + udp, (dst, 0))
PY
}
flood 500 # first wave: buffers and tables are populated at start, but warm the rest
wait_for 10 "first wave seen" sh -c "[ \$('$WGLBCTL' -s '$T/control.sock' --json show stats | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"flows_new\"])') -ge 500 ]"
rss0=$(rss)
conf0=$(ctl show flows | awk '$6 == "yes"' | wc -l)
# The real client starts a fresh handshake in the middle of the flood.
hs0=$(wg show "$(wg_cl 1)" latest-handshakes | awk '{print $2}')
flood 2560 &
fp=$!
sleep 0.3 # mid-flood
wg set "$(wg_cl 1)" peer "$(cat "$T/server.pub")" remove
wg set "$(wg_cl 1)" peer "$(cat "$T/server.pub")" endpoint "$LB_PUBLIC:51820" \
	allowed-ips 10.99.0.0/24,10.10.21.0/24 persistent-keepalive 25
wait "$fp"
new_hs() { local h; h=$(wg show "$(wg_cl 1)" latest-handshakes | awk '{print $2}'); [ -n "$h" ] && [ "$h" != 0 ] && [ "$h" != "$hs0" ]; }
wait_for 20 "fresh handshake during the flood" new_hs || die "the real client could not handshake"
app_ok 1 || wait_for 10 "app" app_ok 1 || die "app unreachable after the flood"
st=$(ctl --json show stats)
evicted=$(echo "$st" | python3 -c 'import json,sys; print(json.load(sys.stdin)["flows_evicted"])')
full=$(echo "$st" | python3 -c 'import json,sys; print(json.load(sys.stdin)["drops_in"]["table_full"])')
rss1=$(rss)
ping_stop 1
conf1=$(ctl show flows | awk '$6 == "yes"' | wc -l)
[ "$full" = 0 ] || die "$full datagrams refused for a full table"
[ "$evicted" -ge 2000 ] || die "only $evicted evictions"
[ $((rss1 - rss0)) -le 256 ] || die "RSS grew $rss0 -> $rss1 kB"
[ "$conf1" -ge "$conf0" ] || die "confirmed flows lost ($conf0 -> $conf1)"
log "PASS: 3060 spoofed valid-mac1 initiations at max_flows 256: $evicted evicted, none refused; RSS $rss0 -> $rss1 kB; confirmed flows $conf0 -> $conf1; the real client re-handshook and reached the app"
echo "RESULT flood_evicted=$evicted rss_kb=$rss0:$rss1"
