#!/bin/bash
# The Debian package, end to end: build it from a copy of the tree (the tree
# is never written to), lint it, then install, upgrade and purge it in a
# throwaway root and check what each step leaves.
#
# The throwaway root is this host's own root under an overlay (lower: /,
# upper: a tmpfs) in a private mount namespace, entered with chroot: it has
# every run-time library the package needs without a Debian mirror, and all
# it writes vanishes with the namespace, so the host's dpkg database, users
# and /etc are never touched. systemd is not PID 1 in it (nor on this
# machine): the maintainer scripts see /run/systemd/system and run
# deb-systemd-invoke as on a systemd host, and a systemctl first on PATH
# stands in for the service manager: it records start, stop and restart,
# answers is-enabled from the unit files (offline, --root=/) and says
# nothing is active. What a real host adds is in docs/packaging.md.
#
# Root; dpkg-dev, debhelper, lintian and the build dependencies
# (deploy/install-deps.sh); exit 77 = skip.
set -uo pipefail
cd "$(dirname "$0")/../.."
SRC=$PWD
skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (a mount namespace, an overlay and chroot)"
for t in dpkg-buildpackage dpkg-checkbuilddeps dh lintian unshare chroot setpriv; do
	command -v $t >/dev/null || skip "$t not installed (deploy/install-deps.sh installs it)"
done
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
grep -qw overlay /proc/filesystems || skip "no overlay filesystem in this kernel"
missing=$(dpkg-checkbuilddeps 2>&1) || skip "build dependencies missing: ${missing#*: }"

W=$(mktemp -d /tmp/wglb-pkg.XXXXXX)
trap 'rm -rf "$W"' EXIT
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
check() { # description command...
	local what=$1; shift
	if "$@" >"$W/out" 2>&1; then ok "$what"; else bad "$what"; cat "$W/out"; fi
}

# A copy of what git tracks plus what it would track (uncommitted changes
# count, build directories do not), or the whole tree without build output.
copy_tree() { # dest
	mkdir -p "$1"
	if git -C "$SRC" rev-parse --git-dir >/dev/null 2>&1; then
		git -C "$SRC" ls-files -z -co --exclude-standard |
			tar -C "$SRC" --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -C "$1" -xf -
	else
		tar -C "$SRC" --exclude=./build\* --exclude=./obj-\* --exclude=./debian/tmp -cf - . | tar -C "$1" -xf -
	fi
}
build() { # dir: the .debs land in dir, the tree in dir/src
	copy_tree "$1/src" || return 1
	(cd "$1/src" && DEB_BUILD_OPTIONS="nocheck parallel=${WGLB_PKG_JOBS:-2}" \
		dpkg-buildpackage -b -us -uc) >"$1/build.log" 2>&1 || { tail -40 "$1/build.log"; return 1; }
	ls "$1"/*.deb
}
start=$(date +%s)
tree_state() { git -C "$SRC" status --porcelain --ignored 2>/dev/null; }
before=$(tree_state)
check "dpkg-buildpackage -b -us -uc (from a copy of the tree)" build "$W/b1"
[ $fails = 0 ] || exit 1
echo "     built in $(($(date +%s) - start)) s: $(cd "$W/b1" && echo *.deb)"
[ "$(tree_state)" = "$before" ] || bad "the source tree changed during the build"

# lintian: no error and no warning; overrides carry their reason in debian/.
lint() {
	lintian --pedantic --display-info "$W"/b1/*.changes >"$W/lintian" 2>&1
	cat "$W/lintian"
	! grep -E '^(E|W): ' "$W/lintian"
}
check "lintian: no errors, no warnings" lint
grep -E '^[EWIP]: ' "$W/lintian" | sed 's/^/     /'

# The upgrade: the same version, rebuilt from its own fresh copy.
check "a second build of the same version, for the upgrade" build "$W/b2"
[ $fails = 0 ] || exit 1

# Everything after this runs inside the private namespace: $T/root is the
# throwaway root.
cat >"$W/inroot.sh" <<'EOF'
set -uo pipefail
T=$1 R=$1/root W=$2
fails=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fails=$((fails + 1)); }
check() {
	local what=$1; shift
	if "$@" >"$T/out" 2>&1; then ok "$what"; else bad "$what"; cat "$T/out"; fi
}
# The stand-in systemctl is in /usr/local/sbin, first on this PATH (apt
# gives dpkg its own, DPkg::Path, without it: set that too).
STANDIN_PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin
in_root() { chroot "$R" env -i PATH=$STANDIN_PATH LC_ALL=C.UTF-8 \
	DEBIAN_FRONTEND=noninteractive "$@"; }
as_wglb() { in_root setpriv --reuid=wglb --regid=wglb --clear-groups "$@"; }

mount -t tmpfs -o size=512m wglb-pkg "$T" && mkdir "$T/upper" "$T/work" "$R" &&
	mount -t overlay overlay -o "lowerdir=/,upperdir=$T/upper,workdir=$T/work" "$R" &&
	mount -t proc proc "$R/proc" && mount --rbind /dev "$R/dev" && mount -t sysfs sysfs "$R/sys" &&
	mount -t tmpfs tmpfs "$R/run" && mount -t tmpfs tmpfs "$R/tmp" || { echo "FAIL the overlay root"; exit 1; }
A=$(dpkg --print-architecture)
cp "$W"/b1/*.deb "$R/tmp/" && mkdir "$R/tmp/b2" && cp "$W"/b2/*.deb "$R/tmp/b2/"
# The maintainer scripts act as on a host running systemd; the stand-in
# systemctl records what the service manager is asked to do.
mkdir -p "$R/run/systemd/system"
cat >"$R/usr/local/sbin/systemctl" <<'S'
#!/bin/sh
for a; do case $a in -*) ;; *) verb=$a; break ;; esac; done
case ${verb:-} in
is-enabled) exec /usr/bin/systemctl --root=/ "$@" ;;
is-active) exit 3 ;;
start|stop|restart|try-restart|reload|daemon-reload|reset-failed) echo "$*" >>/run/wglb-test-invoke.log ;;
*) exec /usr/bin/systemctl "$@" ;;
esac
S
chmod 755 "$R/usr/local/sbin/systemctl"
# A container image's policy-rc.d (exit 101: start nothing) would stop
# deb-systemd-invoke before it asks anything: this root is a host's.
rm -f "$R/usr/sbin/policy-rc.d"
rm -f "$R/var/lib/man-db/auto-update" # no index rebuild at every step: CPU
invoked() { # VERB UNIT: the service manager was asked to VERB UNIT
	grep -Eq "(^| )$1 (.* )?$2( |\$)" "$R/run/wglb-test-invoke.log" 2>/dev/null
}
show_invoked() { grep -v daemon-reload "$R/run/wglb-test-invoke.log" | sed 's/^/     systemctl /'; }
: >"$R/run/wglb-test-invoke.log"

# 1. Install, the README's way.
check "apt-get install ./wglb_*.deb ./wglb-agent_*.deb (the host has their libraries: no download)" \
	in_root apt-get install -y -q --no-install-recommends -o DPkg::Path="$STANDIN_PATH" \
		/tmp/wglb_0.1.0-1_$A.deb /tmp/wglb-agent_0.1.0-1_$A.deb
installed() { in_root dpkg-query -W -f='${db:Status-Status}\n' "$1" | grep -qx installed; }
for p in wglb wglb-agent; do check "$p is installed" installed $p; done
files_ok() {
	local f
	for f in /usr/sbin/wglb /usr/bin/wglbctl /usr/sbin/wglb-preserve-routing /usr/libexec/wglb/wglb-check \
		/usr/libexec/wglb/wglb-eip-takeover /usr/libexec/wglb/wglb-announce /usr/sbin/wg-health; do
		[ -x "$R$f" ] || { echo "missing or not executable: $f"; return 1; }
	done
	for f in /lib/systemd/system/wglb.service /lib/systemd/system/wglb-announce.service \
		/lib/systemd/system/wg-health.service /lib/systemd/system/wg-health-agent.service \
		/usr/lib/sysusers.d/wglb.conf /usr/share/man/man8/wglb.8.gz /usr/share/man/man8/wglbctl.8.gz \
		/usr/share/man/man8/wg-health.8.gz /usr/share/man/man8/wglb-preserve-routing.8.gz \
		/usr/share/doc/wglb/wglb.conf.example /usr/share/doc/wglb/bgp/README.md \
		/usr/share/doc/wglb/copyright /usr/share/doc/wglb-agent/wg-health-preserve.conf; do
		[ -f "$R$f" ] || { echo "missing: $f"; return 1; }
	done
}
check "binaries, helper scripts, units, man pages, sysusers.d and docs in place" files_ok
version_ok() { in_root wglb --version | grep -qx 'wglb 0.1.0'; }
check "wglb --version says 0.1.0" version_ok
conffile_ok() { in_root dpkg-query -W -f='${Conffiles}\n' wglb | grep -q '^ /etc/wglb/wglb.conf '; }
check "/etc/wglb/wglb.conf is a conffile of wglb" conffile_ok
user_ok() {
	local e
	e=$(in_root getent passwd wglb) || { echo "no user wglb"; return 1; }
	echo "$e"
	IFS=: read -r _ _ uid _ _ home shell <<<"$e"
	[ "$uid" -lt 1000 ] && [ "$home" = /nonexistent ] && [ "${shell##*/}" = nologin ] &&
		in_root getent group wglb >/dev/null
}
check "a system user and group wglb (sysusers.d): uid < 1000, home /nonexistent, no shell" user_ok

# The shipped configuration: rejected by --check for want of backends, and
# the unit's ExecCondition= (run as systemd would: as wglb) skips the start
# with one clear line.
cond() { # the installed wglb.service's ExecCondition=, unescaped as systemd does
	local line
	line=$(sed -n 's/^ExecCondition=//p' "$R/lib/systemd/system/wglb.service" | sed 's/\\\\/\\/g')
	[ -n "$line" ] || { echo "no ExecCondition= in wglb.service"; return 2; }
	eval "as_wglb $line"
}
shipped_check() {
	as_wglb wglb --check -c /etc/wglb/wglb.conf; local rc=$?
	[ $rc = 1 ] && grep -q 'no \[backend NAME\] section' "$T/out"
}
check "wglb --check on the shipped config: exit 1, no [backend NAME] section" shipped_check
shipped_cond() {
	cond; local rc=$?
	[ $rc = 1 ] && grep -q 'not started: /etc/wglb/wglb.conf has no \[backend NAME\] section yet' "$T/out"
}
check "wglb.service's ExecCondition= skips the shipped config, saying why (exit 1: inactive, no restart)" shipped_cond
verify_units() {
	local out
	out=$(in_root env SYSTEMD_LOG_LEVEL=warning systemd-analyze verify /lib/systemd/system/wglb.service \
		/lib/systemd/system/wglb-announce.service /lib/systemd/system/wg-health.service \
		/lib/systemd/system/wg-health-agent.service 2>&1) || { echo "$out"; return 1; }
	echo "$out"
	[ -z "$(grep -v '^$' <<<"$out")" ]
}
check "systemd-analyze verify the installed units (their man pages resolve too)" verify_units
enabled_ok() {
	local u wants=$R/etc/systemd/system/multi-user.target.wants
	for u in wglb.service wg-health.service; do
		[ "$(readlink "$wants/$u")" = /lib/systemd/system/$u ] || { echo "$u not enabled"; return 1; }
	done
	for u in wglb-announce.service wg-health-agent.service; do
		[ ! -e "$wants/$u" ] && [ ! -L "$wants/$u" ] || { echo "$u enabled"; return 1; }
	done
	in_root /usr/bin/systemctl --root=/ is-enabled wglb.service wg-health.service
}
check "wglb and wg-health enabled (multi-user.target.wants), wglb-announce and wg-health-agent not" enabled_ok
started_ok() {
	invoked start wglb.service && invoked start wg-health.service &&
		! grep -q -e announce -e agent "$R/run/wglb-test-invoke.log"
}
check "postinst started wglb.service and wg-health.service, not the two disabled units" started_ok
show_invoked

# 2. The operator configures a backend; the unit would now start.
printf '\n[backend b1]\naddress = 192.0.2.10:51820\n' >>"$R/etc/wglb/wglb.conf"
check "with a backend: the ExecCondition= passes" cond
check "with a backend: wglb --check passes (as wglb)" as_wglb wglb --check -c /etc/wglb/wglb.conf

# 3. Upgrade to the same version rebuilt: the conffile keeps the change, the
# service is restarted.
: >"$R/run/wglb-test-invoke.log"
check "dpkg -i the rebuilt packages (an upgrade to the same version)" \
	in_root dpkg -i /tmp/b2/wglb_0.1.0-1_$A.deb /tmp/b2/wglb-agent_0.1.0-1_$A.deb
kept_ok() { grep -q '^\[backend b1\]' "$R/etc/wglb/wglb.conf" && ! ls "$R/etc/wglb" | grep -q dpkg; }
check "the upgrade kept the operator's conffile, and left no .dpkg-* beside it" kept_ok
upgraded_ok() { invoked restart wglb.service && ! invoked stop '[^ ]*'; }
check "the upgrade restarted wglb.service (postinst: deb-systemd-invoke restart), stopped nothing" upgraded_ok
show_invoked
for p in wglb wglb-agent; do check "$p still installed after the upgrade" installed $p; done

# 4. Purge: nothing of the packages is left; the user stays (Debian policy:
# files it owned may remain; sysusers.d never removes users).
in_root dpkg -L wglb wglb-agent >"$T/listed" 2>&1
: >"$R/run/wglb-test-invoke.log"
check "dpkg --purge wglb wglb-agent" in_root dpkg --purge wglb wglb-agent
removed_ok() {
	local u
	for u in wglb.service wglb-announce.service wg-health.service wg-health-agent.service; do
		invoked stop $u || { echo "$u not stopped"; return 1; }
	done
}
check "prerm stopped all four units" removed_ok
show_invoked
purged() {
	local f left=0
	in_root dpkg-query -W -f='${db:Status-Status}\n' wglb wglb-agent 2>/dev/null | grep -qx installed && { echo "still installed"; return 1; }
	while read -r f; do # what was there before (in the lower layer, /) stays
		[ -n "$f" ] && [ ! -e "$f" ] && [ ! -L "$f" ] || continue
		[ -e "$R$f" ] || [ -L "$R$f" ] && { echo "left: $f"; left=1; }
	done <"$T/listed"
	[ ! -e "$R/etc/wglb" ] || { echo "left: /etc/wglb"; ls -la "$R/etc/wglb"; left=1; }
	ls "$R"/var/lib/dpkg/info/wglb* 2>/dev/null && left=1
	find "$R/etc/systemd" "$R/var/lib/systemd" -name '*wglb*' -o -name 'wg-health*' | grep . && left=1
	return $left
}
check "after purge: no file dpkg listed, no /etc/wglb, no enablement links or state" purged
# The strongest form: everything the whole install-upgrade-purge cycle wrote
# is in the overlay's upper layer. New paths there, other than dpkg's and
# apt's own records and logs, are files left behind.
leftovers() {
	local p new
	new=$(cd "$T/upper" && find . -mindepth 1 ! -type c -printf '%P\n' | while read -r p; do
		[ -e "/$p" ] || [ -L "/$p" ] || echo "$p"
	done | grep -Ev '^(var/lib/dpkg|var/lib/apt|var/cache|var/log|var/backups)(/|$)' |
		grep -vx 'usr/local/sbin/systemctl')
	[ -z "$new" ] || { echo "new on the root after purge:"; echo "$new"; return 1; }
}
check "after purge: nothing new on the root but dpkg's and apt's own records" leftovers
check "the user wglb stays after purge, as Debian policy has it" in_root getent passwd wglb
[ $fails = 0 ]
EOF
mkdir "$W/ns"
unshare --mount --propagation private bash "$W/inroot.sh" "$W/ns" "$W" 2>&1 || fails=$((fails + 1))
echo "     the whole test took $(($(date +%s) - start)) s"
[ $fails = 0 ] || { echo "package check(s) failed"; exit 1; }
echo "PASS: the Debian package builds, lints clean, installs, upgrades and purges"
