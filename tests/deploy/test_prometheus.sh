#!/bin/bash
# The monitoring files (docs/monitoring.md) checked by the tools that consume
# them: the alert rules by promtool check rules and their unit tests
# (promtool test rules, every alert firing and not), the dashboard's JSON and
# every PromQL expression in it by promtool; then against a running wglb on
# loopback: promtool check metrics on its scrape, and Debian's prometheus
# scraping it, where every dashboard query must return data
# (tests/deploy/prometheus/live.py).
set -uo pipefail
cd "$(dirname "$0")/../.."
export WGLB_BUILD=$(cd "${WGLB_BUILD:-build}" && pwd) || exit 1
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
check() { # description command...
	local what=$1; shift
	if "$@" >"$T/out" 2>&1; then echo "ok   $what"; else echo "FAIL $what"; cat "$T/out"; fails=$((fails + 1)); fi
}
have() { command -v "$1" >/dev/null || { echo "SKIP: $1 not installed (Debian's prometheus package; deploy/install-deps.sh installs it)"; exit 77; }; }
have promtool; have prometheus; have python3

RULES=deploy/prometheus/wglb-alerts.yml
TESTS=tests/deploy/prometheus/wglb-alerts.test.yml
DASH=deploy/grafana/wglb-dashboard.json
LIVE=tests/deploy/prometheus/live.py

check "promtool check rules $RULES" promtool check rules "$RULES"
check "promtool test rules $TESTS" promtool test rules "$TESTS"
every_alert_tested() { # each alert has an eval where it fires and one where it does not
	python3 - "$RULES" "$TESTS" <<'PY'
import re, sys
alerts = re.findall(r"^\s*- alert: (\w+)$", open(sys.argv[1]).read(), re.M)
fires, quiet, name = set(), set(), None
for line in open(sys.argv[2]):
    m = re.match(r"\s*alertname: (\w+)", line)
    if m:
        name = m.group(1)
    m = re.match(r"\s*exp_alerts:(.*)$", line)
    if m:
        (quiet if m.group(1).strip() == "[]" else fires).add(name)
missing = [a for a in alerts if a not in fires or a not in quiet]
assert len(alerts) >= 9 and not missing, f"alerts {alerts}; not tested both ways: {missing}"
PY
}
check "every alert is tested firing and not firing" every_alert_tested
check "the dashboard's JSON parses, with its datasource and instance variables" \
	python3 "$LIVE" exprs "$DASH"
dash_exprs() {
	python3 "$LIVE" exprs "$DASH" >"$T/dash-rules.yml" && promtool check rules "$T/dash-rules.yml"
}
check "every dashboard expression parses (promtool check rules)" dash_exprs

installed() { grep -q "'prometheus/wglb-alerts.yml'" deploy/meson.build && grep -q "'grafana/wglb-dashboard.json'" deploy/meson.build; }
check "meson install ships the rules and the dashboard" installed

# The live part prints its own ok/FAIL lines.
python3 "$LIVE" run "$DASH" "$RULES" "$T" || fails=$((fails + 1))
[ $fails = 0 ] || { echo "$fails monitoring check(s) failed"; exit 1; }
echo "PASS: monitoring files"
