#!/bin/bash
# The deploy files are checked by the tools that consume them: systemd
# units by systemd-analyze verify, keepalived.conf by keepalived -t, the
# cloud-init user data by cloud-init's schema, BIRD's configs by bird -p, the IAM policy as JSON with
# exactly the one action the takeover needs, scripts by sh -n, and the
# configurations inside them by wglb --check.
set -uo pipefail
cd "$(dirname "$0")/../.."
B=$(cd "${WGLB_BUILD:-build}" && pwd) || exit 1 # absolute: the units name binaries by full path
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
check() { # description command...
	local what=$1; shift
	if "$@" >"$T/out" 2>&1; then echo "ok   $what"; else echo "FAIL $what"; cat "$T/out"; fails=$((fails + 1)); fi
}
have() { command -v "$1" >/dev/null || { echo "SKIP: $1 not installed (deploy/install-deps.sh installs it)"; exit 77; }; }
have systemd-analyze; have keepalived; have cloud-init; have python3

# Units: verify copies whose binaries point into the build tree (verify
# insists that ExecStart programs exist).
mkdir -p "$T/units"
for u in deploy/systemd/*.service; do
	sed -e "s|/usr/sbin/wglb|$B/lb/wglb|g" -e "s|/usr/sbin/wg-health|$B/health/wg-health|g" \
		"$u" >"$T/units/$(basename "$u")"
done
# It must exit 0 and say nothing. (It once read "! verify | grep -v | grep -q .",
# which under pipefail passed whenever verify itself failed, as it did: the man
# pages are not installed. --man=no skips that lookup; the pages are checked below.)
verify() {
	local out
	out=$(SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "$@" 2>&1) || { echo "$out"; return 1; }
	echo "$out"
	[ -z "$(grep -v "^$" <<<"$out")" ]
}
man_pages() { # every Documentation=man:NAME(8) of a unit is a page we ship
	local p
	for p in $(grep -ho 'man:[a-z-]*(8)' deploy/systemd/*.service deploy/bgp/*.service); do
		p=${p#man:}; p=${p%(8)}
		[ -f "deploy/man/$p.8" ] || { echo "no deploy/man/$p.8"; return 1; }
	done
}
check "systemd-analyze verify wglb.service" verify "$T/units/wglb.service"
check "systemd-analyze verify wg-health.service" verify "$T/units/wg-health.service"
check "systemd-analyze verify wg-health-agent.service" verify "$T/units/wg-health-agent.service"
# wglb.service with the preserve drop-in, merged as systemd merges it.
cat deploy/systemd/wglb.service deploy/systemd/wglb-preserve.conf |
	sed -e "s|/usr/sbin/wglb-preserve-routing|$PWD/deploy/preserve/wglb-preserve-routing|g" \
		-e "s|/usr/sbin/wglb |$B/lb/wglb |g" >"$T/units/wglb-preserve.service"
check "systemd-analyze verify wglb.service + wglb-preserve.conf" verify "$T/units/wglb-preserve.service"
# wglb.service with the fast path's drop-in.
cat deploy/systemd/wglb.service deploy/systemd/wglb-fast-path.conf |
	sed -e "s|/usr/sbin/wglb |$B/lb/wglb |g" >"$T/units/wglb-fast-path.service"
check "systemd-analyze verify wglb.service + wglb-fast-path.conf" verify "$T/units/wglb-fast-path.service"
cat deploy/systemd/wg-health.service deploy/systemd/wg-health-preserve.conf |
	sed -e "s|/usr/sbin/wg-health|$B/health/wg-health|g" >"$T/units/wg-health-preserve.service"
check "systemd-analyze verify wg-health.service + wg-health-preserve.conf" verify "$T/units/wg-health-preserve.service"
# Restarted with wg0 (a new wg0 has lost its fwmark), and the rp_filter it
# saves in the default state dir, which outlives the service (/run/wg-health
# does not).
preserve_dropin() {
	local f=deploy/systemd/wg-health-preserve.conf
	sed -n '/^\[Unit\]/,/^\[/p' $f | grep -qx 'PartOf=wg-quick@wg0.service' &&
		grep -q '^ExecStartPre=+/usr/sbin/wg-health .*--route-setup$' $f && ! grep -q -- '--state-dir' $f
}
check "wg-health-preserve.conf: PartOf=wg-quick@wg0.service, setup with the default state dir" preserve_dropin
check "the units' man pages are shipped" man_pages
check "wglb.service is Type=notify with a watchdog" grep -q '^Type=notify' deploy/systemd/wglb.service
check "wglb.service allows io_uring through its syscall filter" grep -q 'io_uring_setup io_uring_enter io_uring_register' deploy/systemd/wglb.service
# Its ExecCondition= (unescaped as systemd does, pointed at a copy): the
# example passes; the same without its [backend] sections, as the Debian
# package ships it, is skipped with the line that says why (exit 1).
exec_condition() {
	local line rc msg
	line=$(sed -n 's/^ExecCondition=//p' deploy/systemd/wglb.service | sed -e 's/\\\\/\\/g' -e "s|/etc/wglb/wglb.conf|$T/cond.conf|g")
	cp deploy/wglb.conf.example "$T/cond.conf"
	eval "$line" || return 1
	awk '/^\[/ { inb = ($0 ~ /^\[backend /) } inb { print ";" $0; next } { print }' deploy/wglb.conf.example >"$T/cond.conf"
	msg=$(eval "$line" 2>&1); rc=$?
	echo "$msg"
	[ $rc = 1 ] && grep -q 'not started: .* has no \[backend NAME\] section yet' <<<"$msg"
}
check "wglb.service's ExecCondition= passes the example and skips a config without backends" exec_condition

# keepalived: the shipped file with the placeholders cloud-init fills in.
sed -e 's/@SELF@/10.10.1.10/' -e 's/@PEER@/10.10.2.10/' \
	-e 's/@PRIORITY@/150/' -e "s|/usr/libexec/wglb/|$PWD/deploy/keepalived/|" deploy/keepalived/keepalived.conf >"$T/k.conf"
kt() { # keepalived -t exits 5 when an instance has no VIP, which is the design on
	# AWS (the Elastic IP moves through the API, subnets are per-AZ): accept
	# exactly that complaint and nothing else.
	keepalived -t -l -f "$T/k.conf" >"$T/kt" 2>&1
	local rc=$?
	cat "$T/kt"
	[ $rc = 0 ] || { [ $rc = 5 ] && grep -q "No VIP specified" "$T/kt"; } || return 1
	[ -z "$(grep -v "No VIP specified" "$T/kt")" ]
}
check "keepalived -t accepts keepalived.conf" kt
check "notify_master_rx_lower_pri handles split brain" grep -q notify_master_rx_lower_pri deploy/keepalived/keepalived.conf
check "scripts parse (sh -n)" sh -n deploy/keepalived/wglb-check deploy/keepalived/wglb-eip-takeover deploy/install-deps.sh .ci/run

# BGP (ECMP): BIRD parses the shipped configurations with their placeholders filled.
if command -v bird >/dev/null; then
	sed -e 's/@ROUTER_ID@/192.0.2.11/' -e 's/@LOCAL_AS@/65001/' -e 's/@ROUTER@/192.0.2.1/' \
		-e 's/@ROUTER_AS@/65000/' -e 's/@SERVICE_IF@/wglb0/' -e 's/@SERVICE_V4@/203.0.113.10/' \
		deploy/bgp/bird.conf >"$T/bird.conf"
	check "bird -p accepts bgp/bird.conf" bird -p -c "$T/bird.conf"
	check "bird -p accepts bgp/router-bird.conf.example" bird -p -c deploy/bgp/router-bird.conf.example
	sed -e "s|/usr/libexec/wglb/wglb-announce|$PWD/deploy/bgp/wglb-announce|" deploy/bgp/wglb-announce.service \
		>"$T/units/wglb-announce.service"
	check "systemd-analyze verify wglb-announce.service" verify "$T/units/wglb-announce.service"
	check "wglb-announce parses (sh -n)" sh -n deploy/bgp/wglb-announce
fi
check "cloud-init schema accepts user-data.yaml" cloud-init schema --config-file deploy/aws/user-data.yaml
iam() {
	python3 - deploy/aws/iam-policy.json <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
actions = sorted(a for s in p["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
assert p["Version"] == "2012-10-17", p["Version"]
assert actions == ["ec2:AssociateAddress"], actions
assert all(s["Effect"] == "Allow" and "*" not in s["Action"] for s in p["Statement"])
PY
}
check "IAM policy: valid JSON, exactly ec2:AssociateAddress" iam
iam_preserve() {
	python3 - deploy/aws/iam-policy-preserve.json <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
actions = sorted(a for s in p["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
assert p["Version"] == "2012-10-17", p["Version"]
assert actions == ["ec2:AssignPrivateIpAddresses"], actions
assert all(s["Effect"] == "Allow" and "*" not in s["Action"] for s in p["Statement"])
PY
}
check "IAM policy for preserve: valid JSON, exactly ec2:AssignPrivateIpAddresses" iam_preserve
check "wglb-preserve-routing parses (sh -n)" sh -n deploy/preserve/wglb-preserve-routing
ud_conf() {
	python3 - deploy/aws/user-data.yaml "$T/ud.conf" <<'PY'
import sys
# The embedded wglb.conf, cut out of the YAML without a YAML library.
lines = open(sys.argv[1]).read().split("\n")
i = lines.index("  - path: /etc/wglb/wglb.conf")
body = []
for l in lines[i + 3:]:
    if l.startswith("      ") or l == "":
        body.append(l[6:])
    else:
        break
open(sys.argv[2], "w").write("\n".join(body) + "\n")
PY
	"$B/lb/wglb" --check -c "$T/ud.conf"
}
check "the user data's wglb.conf passes wglb --check" ud_conf
check "the example config passes wglb --check" "$B/lb/wglb" --check -c deploy/wglb.conf.example
[ $fails = 0 ] || { echo "$fails deploy check(s) failed"; exit 1; }
echo "PASS: deploy files"
