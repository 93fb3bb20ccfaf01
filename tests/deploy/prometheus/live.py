# SPDX-License-Identifier: MIT
"""The monitoring files against a running wglb (tests/deploy/test_prometheus.sh).

  live.py exprs DASHBOARD          the dashboard's PromQL as a rules file (stdout),
                                   variables substituted, for promtool check rules
  live.py run DASHBOARD ALERTS DIR a wglb on loopback with echo backends: promtool
                                   check metrics on its scrape (only the known
                                   complaints below allowed), then Debian's
                                   prometheus scraping it every second, a little
                                   traffic, and every dashboard query must return
                                   data; prints ok/FAIL lines, exits 1 on a FAIL

Every wait is bounded; every process started here is stopped on the way out."""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "integration"))
import wglbtest  # noqa: E402  (Backend, Client, Wglb, confirm, free_port, wait_until)

# What `promtool check metrics` says about wglb's exposition and we accept:
# none today. A new complaint fails the test; if one is ever accepted (a
# rename is a compatibility decision), list its exact line here with why.
KNOWN_METRIC_COMPLAINTS = set()

# The rate window Grafana's $__rate_interval gives at a 15 s scrape interval
# (4 x scrape): long enough here to hold samples from before the traffic.
RATE_INTERVAL = "1m"

# Dashboard queries allowed to come back empty, with why. Every other one
# must return data (zeros count: a counter at 0 is data). None today: the
# re-pin and agent counters exist at 0 from the start, and "Drops by
# reason" (only reasons above 0) gets the malformed datagrams sent below.
MAY_BE_EMPTY = {}


def dashboard_exprs(path):
    with open(path) as f:
        dash = json.load(f)
    out = []

    def walk(panels):
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                out.append((p["title"], t["expr"]))
    walk(dash["panels"])
    assert dash["schemaVersion"] >= 36, dash["schemaVersion"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), f"panel ids repeat: {ids}"
    for p in dash["panels"]:
        for t in [p] + p.get("targets", []):
            if "datasource" in t:
                assert t["datasource"]["uid"] == "${datasource}", (p["title"], t["datasource"])
    names = {v["name"] for v in dash["templating"]["list"]}
    assert names >= {"datasource", "instance"}, names
    assert any(i["name"] == "DS_PROMETHEUS" for i in dash["__inputs"]), dash["__inputs"]
    return out


def substitute(expr, instance):
    """As Grafana would: $__rate_interval, and $instance regex-escaped."""
    e = expr.replace("$__rate_interval", RATE_INTERVAL)
    e = e.replace("$instance", re.escape(instance).replace("\\", "\\\\"))
    if "$" in e:
        raise AssertionError(f"unsubstituted variable in {expr}")
    return e


def exprs_as_rules(path):
    lines = ["groups:", "  - name: wglb-dashboard", "    rules:"]
    for i, (title, expr) in enumerate(dashboard_exprs(path)):
        lines.append(f"      - record: dashboard:expr_{i}")
        lines.append(f"        expr: {json.dumps(substitute(expr, '127.0.0.1:9851'))}")
    return "\n".join(lines) + "\n"


class Checks:
    def __init__(self):
        self.fails = 0

    def ok(self, what, good, detail=""):
        print(("ok   " if good else "FAIL ") + what, flush=True)
        if not good:
            if detail:
                print(detail, flush=True)
            self.fails += 1
        return good


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def query(port, expr):
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    r = json.loads(http_get(url))
    if r.get("status") != "success":
        raise AssertionError(f"{expr}: {r}")
    return r["data"]["result"]


def check_metrics(c, text):
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=30)
    said = {l.strip() for l in (r.stdout + r.stderr).splitlines() if l.strip()}
    new = said - KNOWN_METRIC_COMPLAINTS
    c.ok("promtool check metrics on a real scrape: no complaint but the known ones "
         f"({len(KNOWN_METRIC_COMPLAINTS)})", not new and (r.returncode == 0 or said),
         "new complaints:\n  " + "\n  ".join(sorted(new)) + f"\n(promtool exit {r.returncode})")
    gone = KNOWN_METRIC_COMPLAINTS - said
    c.ok("every known complaint still made (else drop it from the list)", not gone,
         "no longer said:\n  " + "\n  ".join(sorted(gone)))


def traffic(addr, bad):
    """A few clients through wglb: confirmed flows (a handshake through an
    echo backend, then data naming the index), and malformed datagrams,
    dropped and counted by reason."""
    for _ in range(4):
        cl = wglbtest.Client(addr)
        try:
            wglbtest.confirm(cl)
            for _ in range(5):
                cl.roundtrip(wglbtest.transport(200))
            for _ in range(bad):
                cl.send(b"\x04\0\0")  # too short for any WireGuard message
        finally:
            cl.close()


def run(dash, alerts, tmp):
    c = Checks()
    exprs = dashboard_exprs(dash)
    backends = [wglbtest.Backend(n) for n in ("a", "b")]
    lport, mport, aport, pport = (wglbtest.free_port() for _ in range(4))
    key = os.path.join(tmp, "agent.key")
    with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
        f.write("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")  # a test key
    conf = wglbtest.config([f"127.0.0.1:{lport}"], backends,
                           balancer_extra=f"metrics_listen = 127.0.0.1:{mport}\nworkers = 2\n",
                           extra=f"\n[agent]\nkey_file = {key}\nport = {aport}\n")
    lb = wglbtest.Wglb(conf)
    prom = None
    try:
        lb.start()

        def scrape():
            try:
                return http_get(f"http://127.0.0.1:{mport}/metrics")
            except OSError:
                return None
        text = wglbtest.wait_until(scrape, 10, "wglb's /metrics")
        check_metrics(c, text)
        instance = f"127.0.0.1:{mport}"
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            f.write(f"""global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{json.dumps(os.path.abspath(alerts))}]
scrape_configs:
  - job_name: wglb
    static_configs:
      - targets: ["{instance}"]
        labels: {{pair: "test"}}
""")
        plog = open(os.path.join(tmp, "prometheus.log"), "wb")
        prom = subprocess.Popen(["prometheus", "--config.file", os.path.join(tmp, "prometheus.yml"),
                                 "--storage.tsdb.path", os.path.join(tmp, "tsdb"),
                                 "--web.listen-address", f"127.0.0.1:{pport}", "--log.level", "warn"],
                                stdout=plog, stderr=plog)

        def ready():
            if prom.poll() is not None:
                raise AssertionError(f"prometheus exited {prom.returncode}")
            try:
                return http_get(f"http://127.0.0.1:{pport}/-/ready", 1) is not None
            except OSError:
                return False
        wglbtest.wait_until(ready, 30, "prometheus ready")
        # A scrape before the traffic, so rates have a sample on each side.
        wglbtest.wait_until(lambda: query(pport, 'up{job="wglb"} == 1'), 30, "a first scrape")
        traffic(("127.0.0.1", lport), bad=3)
        done = time.time()
        wglbtest.wait_until(lambda: query(
            pport, f'timestamp(wglb_uptime_seconds{{job="wglb"}}) > {done:.3f}'
            f' and on() sum(wglb_dropped_packets_total{{reason="too_short"}}) > 0'), 30,
            "a scrape after the traffic")
        groups = json.loads(http_get(f"http://127.0.0.1:{pport}/api/v1/rules"))["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        bad = [f"{r['name']}: {r['health']} {r.get('lastError', '')}" for r in rules if r["health"] != "ok"]
        c.ok(f"prometheus loaded the alert rules ({len(rules)}) and evaluates them without error",
             rules and not bad, "\n".join(bad))
        empty = []
        for title, expr in exprs:
            e = substitute(expr, instance)
            res = query(pport, e)
            if not res and expr not in MAY_BE_EMPTY:
                empty.append(f"  {title}: {e}")
        c.ok(f"every dashboard query ({len(exprs)}) returns data from prometheus scraping wglb",
             not empty, "empty:\n" + "\n".join(empty))
        alerting = [a["labels"] for a in query(pport, "ALERTS")]
        c.ok("no alert pending or firing on a healthy wglb", not alerting, f"{alerting}")
    finally:
        if prom and prom.poll() is None:
            prom.terminate()
            try:
                prom.wait(10)
            except subprocess.TimeoutExpired:
                prom.kill()
                prom.wait()
        rc = lb.stop()
        for b in backends:
            b.close()
        log = lb.read_log() if os.path.exists(lb.log) else ""
        shutil.rmtree(lb.dir, ignore_errors=True)
    c.ok("wglb stopped cleanly", rc == 0, log)
    return c.fails


def main():
    # meson's timeout sends SIGTERM: stop what was started on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    if sys.argv[1] == "exprs":
        sys.stdout.write(exprs_as_rules(sys.argv[2]))
        return 0
    return 1 if run(sys.argv[2], sys.argv[3], sys.argv[4]) else 0


if __name__ == "__main__":
    sys.exit(main())
