#!/bin/bash
# SPDX-License-Identifier: MIT
# A wglb pair (issue 7), sourced by topo.sh for LB_MODE=pair. The lb
# namespace keeps only the two bridges, as a switch; members A and B
# (198.51.100.2/.3 toward clients, 10.10.10.2/.3 toward backends) run the
# same wglb config and keepalived with unicast VRRP. The VIP they hold is
# the address clients use (LB_PUBLIC), standing in for the Elastic IP; the
# shipped takeover script runs against stand-ins for IMDSv2 and `aws`.

PAIR=(A B)
ns_pair() { echo "wglb$1-$ID"; }
ctl_pair() { local m=$1; shift; ip netns exec "$(ns_pair "$m")" "$WGLBCTL" -s "$T/control$m.sock" "$@"; }
vip_on() { ip -n "$(ns_pair "$1")" -4 addr show dev eth0 | grep -q "inet $LB_PUBLIC/"; }

pair_standins() {
	mkdir -p "$T/bin"
	printf '#!/bin/sh\necho "$*" >>"$AWS_CALLS"\n' >"$T/bin/aws"
	chmod +x "$T/bin/aws"
	cat >"$T/imds.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def reply(self, body):
        self.send_response(200); self.end_headers(); self.wfile.write(body.encode())
    def do_PUT(self):
        ok = self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        self.reply("token-standin") if ok else self.send_error(400)
    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") != "token-standin":
            return self.send_error(401)  # IMDSv2 only
        v = {"/latest/meta-data/instance-id": sys.argv[2],
             "/latest/meta-data/placement/region": "us-test-1",
             "/latest/meta-data/mac": "02:00:00:00:00:0" + sys.argv[2][-1:],
             "/latest/meta-data/network/interfaces/macs/02:00:00:00:00:0" + sys.argv[2][-1:] + "/interface-id":
                 "eni-standin" + sys.argv[2][-1:]}.get(self.path)
        self.reply(v) if v else self.send_error(404)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
}

pair_member() { # m n
	local m=$1 n=$2 ns me peer prio
	ns=$(ns_pair "$m")
	mkns "$ns"
	veth_to_bridge "$ns" eth0 "$NS_LB" brc "198.51.100.$n/24"
	veth_to_bridge "$ns" eth1 "$NS_LB" brb "10.10.10.$n/24"
	sed -e "s|^control = .*|control = $T/control$m.sock|" "$T/wglb.conf" >"$T/wglb$m.conf"
	# client_address = preserve: replies to clients' addresses reach wglb,
	# and the backends send them to the address the master holds.
	[ -n "${LB_PRESERVE:-}" ] && { ip netns exec "$ns" "$TOPO_ROOT/deploy/preserve/wglb-preserve-routing" up >/dev/null || die "preserve routing on $m"; }
	bg "$ns" "wglb$m" "$WGLB" -c "$T/wglb$m.conf"
	bg "$ns" "imds$m" python3 "$T/imds.py" 8169 "i-standin$m"
	printf '#!/bin/sh\nexport PATH="%s:$PATH" AWS_CALLS="%s" IMDS_ENDPOINT=http://127.0.0.1:8169 EIP_ALLOCATION_ID=eipalloc-test REPLY_ADDRESS=%s\nexec "%s"\n' \
		"$T/bin" "$T/aws-calls$m" "${LB_PRESERVE:+10.10.10.1}" "$TOPO_ROOT/deploy/keepalived/wglb-eip-takeover" >"$T/takeover$m"
	printf '#!/bin/sh\nexport WGLB_SOCKET="%s"\nexec sh -c "$(sed "s|/usr/bin/wglbctl|%s|" "%s")"\n' \
		"$T/control$m.sock" "$WGLBCTL" "$TOPO_ROOT/deploy/keepalived/wglb-check" >"$T/check$m"
	chmod +x "$T/takeover$m" "$T/check$m"
	me=198.51.100.$n
	peer=198.51.100.$((5 - n))
	prio=$((250 - 50 * n)) # A 150, B 100
	# The shipped keepalived.conf with the test's addresses, script paths,
	# faster timers, and a VIP standing in for the Elastic IP.
	# (enable_script_security would refuse scripts under world-writable /tmp.)
	sed -e "s/@SELF@/$me/" -e "s/@PEER@/$peer/" -e "s/@PRIORITY@/$prio/" \
		-e "s|/usr/libexec/wglb/wglb-check|$T/check$m|" \
		-e "s|/usr/libexec/wglb/wglb-eip-takeover|$T/takeover$m|" \
		-e "/enable_script_security/d" -e "s/^    interval 1$/    interval 0.5/" \
		-e "s|^    advert_int 1$|    advert_int 0.5\n    virtual_ipaddress {\n        $LB_PUBLIC/24 dev eth0\n${LB_PRESERVE:+        10.10.10.1/24 dev eth1\\n}    }|" \
		"$TOPO_ROOT/deploy/keepalived/keepalived.conf" >"$T/keepalived$m.conf"
}

pair_up() {
	pair_standins
	pair_member A 2
	pair_member B 3
	for m in "${PAIR[@]}"; do
		wait_for 5 "wglb $m" test -S "$T/control$m.sock" || { cat "$T/wglb$m.log"; die "wglb $m"; }
		bg "$(ns_pair "$m")" "keepalived$m" keepalived -n -l -D -P -f "$T/keepalived$m.conf" \
			-p "$T/ka-main$m.pid" -r "$T/ka-vrrp$m.pid"
	done
	wait_for 15 "VIP on A" vip_on A || { cat "$T/keepalivedA.log"; die "no VIP"; }
}

pair_down() {
	for m in "${PAIR[@]}"; do ip netns del "$(ns_pair "$m")" 2>/dev/null; done
}
