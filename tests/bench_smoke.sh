#!/bin/bash
# A short, bounded run of every bench scenario, asserting the tools' own
# correctness (counts add up, a killed sink shows in the failover report,
# JSON parses, the plot exists). Speed is not asserted here: bench/compare
# reports it.
set -uo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
for s in flows handshake-storm failover churn; do
	timeout 120 bash bench/scenario "$s" --quick --out "$OUT" || fail "scenario $s"
done
# The bulk case on the NIC-like veth path: GRO trains reach wglb and leave
# as GSO sends (how much is bench/compare's business, not this test's).
timeout 120 bash bench/bulk --rounds 1 --duration 1 --peers "wglb dnat" --out "$OUT" || fail "bulk"
python3 - "$OUT" <<'PY' || exit 1
import json, sys, os
d = sys.argv[1]
j = lambda n: json.load(open(os.path.join(d, n + ".json")))
f = j("flows")
for st in f["steps"]:
    assert st["handshakes"] == st["clients"], st
    assert st["flows_in_table"] >= st["clients"], st
    assert st["round_trips_per_s"] > 0, st
h = j("handshake-storm")
assert h["handshakes"] == h["clients"] == 500, h
assert h["flows_in_table"] == h["clients"], h
assert h["new_flows_per_s"] and h["new_flows_per_s"] > 0, h
fo = j("failover")
assert fo["clients_on_killed_sink"] >= 1, fo
assert fo["recoveries"] == fo["clients_on_killed_sink"], fo
assert fo["new_handshakes"] >= fo["clients_on_killed_sink"], fo
assert fo["dead_after_s"] <= fo["recovery_s"]["p50"] <= fo["dead_after_s"] + 2, fo
assert len(fo["recovery_all_s"]) == fo["recoveries"], fo
c = j("churn")
assert c["flows_left"] == 0, c
assert c["fds"]["end"] == c["fds"]["start"], c
assert c["rss_kb"]["end"] <= c["rss_kb"]["after_first_wave"] * 1.1, c
b = j("bulk")
for p in ("wglb", "dnat"):
    assert b["summary"][p]["gbit_s_each_way"] > 0, b
w = [r for r in b["runs"] if r["peer"] == "wglb"][0]
assert w["datagrams_per_receive"][0] > 1 and w["datagrams_per_receive"][1] > 1, w  # GRO trains arrived
assert w["datagrams_per_send"][0] > 1 and w["datagrams_per_send"][1] > 1, w  # and left as GSO sends
print(f"bulk: wglb {w['gbit_s_each_way']:.2f} Gbit/s, {w['datagrams_per_receive']} datagrams per receive")
print(f"bench smoke: flows {f['steps'][-1]['flows_in_table']}, storm {h['new_flows_per_s']}/s, "
      f"failover {fo['recoveries']}/{fo['clients_on_killed_sink']} recovered, churn flat")
PY
timeout 300 bash bench/compare --rounds 1 --duration 1 --cases "8:160" --bulk "" --out "$OUT" >"$OUT/compare.log" 2>&1 \
	|| { cat "$OUT/compare.log"; fail "compare"; }
python3 - "$OUT/results.json" <<'PY' || exit 1
import json, sys
r = json.load(open(sys.argv[1]))
row = r["summary"][0]
for p in ("wglb", "wglb-w2", "nginx", "nft"):
    assert row[p]["round_trips_per_s"] > 0, (p, row)
assert row["nft"]["nat_rule_in_namespace"] and not row["wglb"]["nat_rule_in_namespace"], row
assert all(k in row for k in ("wglb_vs_nginx", "wglb_vs_nft", "wglb-w2_vs_nginx", "wglb-w2_vs_nft")), row
assert len(r["runs"]) == 4, r["runs"]
print(f"compare smoke: wglb {row['wglb']['round_trips_per_s']:.0f}, nginx {row['nginx']['round_trips_per_s']:.0f}, "
      f"nft {row['nft']['round_trips_per_s']:.0f} rt/s")
PY
if command -v gnuplot >/dev/null; then [ -s "$OUT/throughput.png" ] || fail "no plot"; fi
"${WGLB_BUILD:-build}/bench/wglb-microbench" | python3 -c '
import json, sys
m = json.load(sys.stdin)
assert all(m[k] > 0 for k in ("classify_ns", "flow_lookup_ns", "mac1_check_ns", "rate_limit_ns")), m
assert all(v > 0 for v in m["maglev_rebuild_ms"].values()), m
print("microbench:", m)' || fail "microbench"
echo "PASS: bench smoke"
