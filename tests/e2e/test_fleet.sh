#!/bin/bash
# A hundred emulated WireGuard clients (bench/wglb-fleet: real handshakes
# and encrypted pings) on three real wireguard-go servers through wglb
# with the agents; one server is killed under them: every client it held
# must come back (instant failover: the new server initiates, the
# emulator answers as WireGuard does), each within 5 s. The short form of
# bench/scenario fleet-failover, which it runs.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bash "$ROOT/bench/scenario" fleet-failover --clients "${FLEET_CLIENTS:-100}" --mode instant --out "$out" >"$out/log" 2>&1
rc=$?
[ $rc = 77 ] && { cat "$out/log"; exit 77; }
line=$(tail -1 "$out/log")
echo "$line"
[ $rc = 0 ] || { cat "$out/log"; echo "FAIL: the scenario failed ($rc)"; exit 1; }
python3 - "$line" "$out/fleet-failover.json" <<'PY' || { cat "$out/log"; exit 1; }
import json, sys
kv = dict(w.split("=") for w in sys.argv[1].split())
r = json.load(open(sys.argv[2]))["runs"]["instant"]
n, k, dmax = int(kv["clients"]), int(kv["recovered"]), float(kv["dark_max"])
assert r["handshakes"] >= r["clients"], f"only {r['handshakes']} of {r['clients']} clients handshook"
assert r["bad"] == 0, f"{r['bad']} datagrams the clients could not authenticate, by type {r['bad_by_type']}"
assert n >= 10, f"only {n} clients were on the killed server: nothing tested"
assert k == n, f"{n - k} of {n} clients never came back"
assert r["server_handshakes"] >= n, f"{r['server_handshakes']} server-initiated handshakes for {n} clients"
assert dmax <= 5, f"a client was dark {dmax} s"
print(f"PASS: {n} clients on the killed server all back (instant failover), dark p50 {kv['dark_p50']} s, max {dmax} s")
PY
