#!/bin/bash
# wg-health's kernel path (generic netlink) end to end, with
# tests/tools/fake_genl.so standing in for the kernel's "wireguard" family
# (no module on these machines) and wireguard-tools' own `wg` as the
# reference:
#  1. the installed `wg` still sends exactly the committed vectors
#     (tests/unit/vectors/wgnl; test_wgnl matches our builders to them);
#  2. we read a kernel dump as `wg show IF dump` does;
#  3. a re-handshake through our socket code sends wg's bytes, in order;
#  4. unknown peer, kernel refusal, missing interface: errors, no change;
#  5. wg-health's agent does 2 and 3 when wglb asks, over its signed port.
set -uo pipefail
B=${WGLB_BUILD:?WGLB_BUILD is the build directory}
here=$(cd "$(dirname "$0")" && pwd)
vec=$here/../unit/vectors/wgnl
shim=$B/tests/libfake_genl.so tool=$B/tests/wgnl-tool
command -v wg >/dev/null || { echo "SKIP: wg (wireguard-tools) is not installed"; exit 77; }
[ -e /var/run/wireguard/wgk0.sock ] && { echo "SKIP: a userspace wgk0 exists here"; exit 77; }
# Preloading beside an ASan build's runtime is fine: the shim is not instrumented.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0
T=$(mktemp -d)
agent_pid=
cleanup() {
	if [ -n "$agent_pid" ]; then
		kill "$agent_pid" 2>/dev/null
		wait "$agent_pid" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT
die() { echo "FAIL: $*"; exit 1; }
under() { FAKE_GENL_DUMP=$vec/dump.bin LD_PRELOAD=$shim "$@"; }
key() { python3 -c "import base64,sys; k=int(sys.argv[1]); print(base64.b64encode(bytes(16*k+i for i in range(32))).decode())" "$1"; }

# Compare two files of netlink messages, all but each message's sequence
# number (wg stamps time(NULL)); optionally drop the family lookups first.
same() { # a b [nofamily]
	python3 - "$@" <<'PY'
import struct, sys
def msgs(path, drop):
    d, off, out = open(path, "rb").read(), 0, []
    while off + 16 <= len(d):
        n, t = struct.unpack_from("<IH", d, off)
        if n < 16: break
        m = bytearray(d[off:off + n]); m[8:12] = b"\0\0\0\0"
        if not (drop and t == 0x10): out.append(bytes(m))
        off += n
    return out
a, b = msgs(sys.argv[1], len(sys.argv) > 3), msgs(sys.argv[2], len(sys.argv) > 3)
if a != b:
    print(f"{sys.argv[1]}: {len(a)} messages, {sys.argv[2]}: {len(b)}")
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            j = next(k for k in range(min(len(x), len(y))) if x[k] != y[k]) if x[:min(len(x), len(y))] != y[:min(len(x), len(y))] else min(len(x), len(y))
            print(f"message {i}: first difference at byte {j} (lengths {len(x)}, {len(y)})")
            break
    sys.exit(1)
PY
}

# 1. wireguard-tools' bytes, now.
bash "$here/../tools/capture_wgnl.sh" "$shim" "$tool" "$T/now" || die "capture from wg failed"
cmp -s "$T/now/dump.bin" "$vec/dump.bin" || die "the fixture changed"
for f in family get readd_1 readd_2 readd_3 readd_4 restore_1 restore_2 restore_3 restore_4 \
	fwmark_set fwmark_clear; do
	same "$T/now/$f.bin" "$vec/$f.bin" || die "wg sends other bytes for $f than tests/unit/vectors/wgnl/$f.bin"
done
echo "ok: $(wg --version | cut -d' ' -f1-2) sends exactly the committed vectors"

# 2. Reading: our view of the dump against `wg show wgk0 dump`.
under wg show wgk0 dump >"$T/wg.dump" || die "wg show failed under the stand-in"
under "$tool" show wgk0 >"$T/our.dump" || die "wgnl-tool show failed"
python3 - "$T/wg.dump" "$T/our.dump" <<'PY' || die "we read the dump differently from wg"
import sys
wg = [l.split("\t") for l in open(sys.argv[1]).read().splitlines()]
ours = [l.split("\t") for l in open(sys.argv[2]).read().splitlines()]
assert wg[0][2] == ours[0][0], (wg[0], ours[0])          # listen port
assert len(wg) == len(ours) == 5, (len(wg), len(ours))
for w, o in zip(wg[1:], ours[1:]):
    # key, preshared key, endpoint, allowed IPs, latest handshake, keepalive
    assert [w[0], w[1], w[2], w[3], w[4], w[7]] == o, (w, o)
print("ok: 4 peers (one split over three messages) read as wg reads them")
PY
under "$tool" peers wgk0 >"$T/peers" || die "wgdev_peers failed"
[ "$(head -1 "$T/peers")" = kernel ] || die "wgk0 was not taken for a kernel interface"
grep -q "^$(key 2) \[fd00::1\]:40002 0$" "$T/peers" || die "peers: $(cat "$T/peers")"

# 3. The re-handshake through our socket code: one dump, then wg's bytes.
eps=(10.0.0.2:41001 '[fd00::2]:41002' 10.0.0.2:41003 10.0.0.2:41004)
for i in 1 2 3 4; do
	rm -f "$T/log"
	FAKE_GENL_LOG=$T/log under "$tool" rehandshake wgk0 "$(key $i)" "${eps[$((i - 1))]}" ||
		die "rehandshake of peer $i failed"
	cat "$vec/get.bin" "$vec/readd_$i.bin" "$vec/restore_$i.bin" >"$T/want"
	same "$T/log" "$T/want" nofamily || die "peer $i: our messages differ from wg's"
done
echo "ok: re-handshake of 4 peers (IPv4, IPv6, preshared key, 300 allowed IPs split over 3 messages, none) sends wg's bytes"

# 3b. The fwmark --route-setup reads and sets, as `wg` sets it.
[ "$(under "$tool" conf wgk0)" = "kernel 51820 0x0" ] || die "conf: $(under "$tool" conf wgk0 2>&1)"
for m in set:0xca6c clear:0; do
	rm -f "$T/log"
	FAKE_GENL_LOG=$T/log under "$tool" fwmark wgk0 "${m#*:}" || die "fwmark ${m#*:} failed"
	same "$T/log" "$vec/fwmark_${m%%:*}.bin" nofamily || die "fwmark ${m#*:}: our message differs from wg's"
done
echo "ok: fwmark read from the dump; set and cleared with wg's bytes"

# 4. Failures change nothing.
rm -f "$T/log"
out=$(FAKE_GENL_LOG=$T/log under "$tool" rehandshake wgk0 "$(key 7)" 10.0.0.2:1 2>&1) &&
	die "an unknown peer was accepted"
grep -q "No such file" <<<"$out" || die "unknown peer: $out"
python3 -c "
import struct, sys
d = open(sys.argv[1], 'rb').read(); off = 0
while off < len(d):
    n, t = struct.unpack_from('<IH', d, off)
    assert not (t != 0x10 and d[off + 16] == 1), 'a SET_DEVICE was sent for an unknown peer'  # genl cmd 1
    off += n" "$T/log" || die "unknown peer changed the interface"
out=$(FAKE_GENL_ERRNO=1 under "$tool" rehandshake wgk0 "$(key 1)" 10.0.0.2:1 2>&1) &&
	die "a refused change was reported as done"
grep -q "not permitted" <<<"$out" || die "EPERM from the kernel: $out"
out=$(FAKE_GENL_DUMP=$T/absent LD_PRELOAD=$shim "$tool" show wgk0 2>&1) && die "a missing interface was read"
grep -q "No such device" <<<"$out" || die "missing interface: $out"
echo "ok: unknown peer (nothing sent), kernel refusal and missing interface are errors"

# 5. The agent, over its signed port, on a kernel interface.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
(umask 077; wg genkey >"$T/agent.key")
rm -f "$T/log"
# Not through under(): $! must be wg-health itself, not a subshell.
FAKE_GENL_LOG=$T/log FAKE_GENL_DUMP=$vec/dump.bin LD_PRELOAD=$shim "$B/health/wg-health" \
	--device wgk0 --agent-only --listen 127.0.0.1 --agent-port "$port" \
	--agent-key "$T/agent.key" --name b1 >/dev/null 2>"$T/agent.err" &
agent_pid=$!
python3 - "$T/agent.key" "$port" "$(key 1)" "$(key 7)" <<'PY' || die "agent: $(cat "$T/agent.err")"
import base64, hashlib, hmac, os, socket, sys, time
key, port, peer, unknown = base64.b64decode(open(sys.argv[1]).read().strip()), int(sys.argv[2]), sys.argv[3], sys.argv[4]
def line(words):
    body = f"v2 {int(time.time() * 1000)} {os.urandom(8).hex()} {words}"
    return f"{body} {hmac.new(key, body.encode(), hashlib.sha512).digest()[:32].hex()}\n"
def ask(text):
    for _ in range(100):  # bounded: the agent may still be starting
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=3)
            break
        except ConnectionRefusedError:
            time.sleep(0.05)
    s.sendall(text.encode())
    out = b""
    while (d := s.recv(4096)):
        out += d
    return out.decode()
to = f"to b1 127.0.0.1:{port}"
r = ask(line(f"{to} peers"))
assert f"\npeer {peer} 10.0.0.1:40001 1764000000\n" in r and "\nend 3 " in r, r  # peer 3 has no endpoint
r = ask(line(f"{to} rehandshake {peer} 10.0.0.2:41001")); assert " ok " in r, r
r = ask(line(f"{to} rehandshake {unknown} 10.0.0.2:41001")); assert "err unknown_peer" in r, r
print("ok: agent lists the kernel interface's peers and re-handshakes over netlink")
PY
grep -q "over kernel" "$T/agent.err" || die "agent did not say it uses the kernel interface"
# What it sent: a dump per command, and wg's re-add and restore in between.
cat "$vec/get.bin" "$vec/get.bin" "$vec/readd_1.bin" "$vec/restore_1.bin" "$vec/get.bin" >"$T/want"
same "$T/log" "$T/want" nofamily || die "the agent's messages differ from wg's"
echo "PASS: kernel path matches wireguard-tools byte for byte, reads dumps as wg does, fails safely"
