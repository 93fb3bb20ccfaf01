#!/bin/bash
# Capture, with fake_genl.so preloaded, the generic-netlink messages that
# wireguard-tools' `wg` sends for the changes wg-health's kernel path makes
# (tests/unit/vectors/wgnl is this script's output, committed):
#   family.bin get.bin     `wg show wgk0 dump` (CTRL_CMD_GETFAMILY, WG_CMD_GET_DEVICE)
#   readd_N.bin            re-handshake of fixture peer N: remove and re-add
#                          with a new endpoint and keepalive 1 (WG_CMD_SET_DEVICE,
#                          one or more messages)
#   restore_N.bin          then restoring its keepalive (peer 2: 25, others off)
#   fwmark_set.bin         `wg set wgk0 fwmark 0xca6c` (--route-setup's mark)
#   fwmark_clear.bin       `wg set wgk0 fwmark 0` (--route-undo)
#   dump.bin               the fixture the kernel stand-in answers GET with
# Sequence numbers are zeroed; everything else is wg's, byte for byte.
# Usage: capture_wgnl.sh SHIM WGNL_TOOL OUTDIR
set -euo pipefail
shim=$1 tool=$2 out=$3
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$tool" fixture "$out/dump.bin"
# The fixture's keys (see tests/tools/wgnl_tool.c): byte i of key k is 16k+i.
key() { python3 -c "import base64,sys; k=int(sys.argv[1]); print(base64.b64encode(bytes(16*k+i for i in range(32))).decode())" "$1"; }
K1=$(key 1) K2=$(key 2) K3=$(key 3) K4=$(key 4)
key 9 >"$work/psk1" # peer 1's preshared key

# Run wg under the stand-in; keep the messages (without the family lookup
# unless asked) in OUT.
capture() { # out keep-family wg args...
	local dest=$1 family=$2; shift 2
	rm -f "$work/log"
	FAKE_GENL_LOG=$work/log FAKE_GENL_DUMP=$out/dump.bin LD_PRELOAD=$shim wg "$@" >/dev/null
	python3 - "$work/log" "$dest" "$family" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
out, off, family = b"", 0, sys.argv[3] == "1"
while off < len(data):
    n, t = struct.unpack_from("<IH", data, off)
    if t != 0x10 or family:  # GENL_ID_CTRL
        m = bytearray(data[off:off + n])
        m[8:12] = bytes(4)  # wg's sequence number is time(NULL): keep the files stable
        out += m
    off += n
open(sys.argv[2], "wb").write(out)
PY
}
capture "$work/show" 1 show wgk0 dump
python3 - "$work/show" "$out" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
n = struct.unpack_from("<I", data)[0]
open(sys.argv[2] + "/family.bin", "wb").write(data[:n])
open(sys.argv[2] + "/get.bin", "wb").write(data[n:])
PY
aips3=$(python3 -c "print(','.join(f'10.20.{i // 250}.{i % 250 + 1}/32' for i in range(300)))")
capture "$out/readd_1.bin" 0 set wgk0 peer "$K1" remove peer "$K1" preshared-key "$work/psk1" \
	endpoint 10.0.0.2:41001 persistent-keepalive 1 allowed-ips 10.9.0.2/32
capture "$out/readd_2.bin" 0 set wgk0 peer "$K2" remove peer "$K2" \
	endpoint '[fd00::2]:41002' persistent-keepalive 1 allowed-ips fd10::2/128,10.9.0.3/32
capture "$out/readd_3.bin" 0 set wgk0 peer "$K3" remove peer "$K3" \
	endpoint 10.0.0.2:41003 persistent-keepalive 1 allowed-ips "$aips3"
capture "$out/readd_4.bin" 0 set wgk0 peer "$K4" remove peer "$K4" \
	endpoint 10.0.0.2:41004 persistent-keepalive 1 allowed-ips ''
capture "$out/restore_1.bin" 0 set wgk0 peer "$K1" persistent-keepalive off
capture "$out/restore_2.bin" 0 set wgk0 peer "$K2" persistent-keepalive 25
capture "$out/restore_3.bin" 0 set wgk0 peer "$K3" persistent-keepalive off
capture "$out/restore_4.bin" 0 set wgk0 peer "$K4" persistent-keepalive off
capture "$out/fwmark_set.bin" 0 set wgk0 fwmark 0xca6c
capture "$out/fwmark_clear.bin" 0 set wgk0 fwmark 0
