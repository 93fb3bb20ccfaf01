# SPDX-License-Identifier: MIT
"""The status page on metrics_listen: /status.json and / show each backend
with its state and since when, its last probes, flows and traffic; a
backend that fails shows as down with where its flows went; /ready follows
whether any backend takes new flows; nothing but GET of the three pages
and /metrics is answered; the page renders in headless Chromium (Debian's
chromium) and a fresh load shows the new state."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from test_health import HealthServer, health_config
from wglbtest import Backend, Client, Wglb, free_port, initiation, transport, wait_until
from test_control import tcp_free_port


class TestStatusPage(unittest.TestCase):
    def setUp(self):
        self.bes = [Backend(f"b{i}") for i in range(3)]
        self.hss = [HealthServer(200) for _ in range(3)]
        self.port, self.mport = free_port(), tcp_free_port()
        text = health_config(self.port, zip(self.bes, self.hss))
        text = text.replace("listen =", f"metrics_listen = 127.0.0.1:{self.mport}\nlisten =", 1)
        self.lb = Wglb(text).start()
        wait_until(lambda: all(b["state"] == "up" for b in self.lb.backends().values()), 8, "up")

    def tearDown(self):
        rc = self.lb.stop()
        for b in self.bes:
            b.close()
        for h in self.hss:
            h.close()
        self.assertEqual(rc, 0, self.lb.read_log())

    def get(self, path, method="GET"):
        """One answer; a 429 (all scrapers share 10 answers a second, burst
        20) is asked again as its Retry-After says, at most 30 times."""
        req = urllib.request.Request(f"http://127.0.0.1:{self.mport}{path}", method=method)
        for _ in range(30):
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    return r.status, r.headers["Content-Type"], r.read().decode()
            except urllib.error.HTTPError as e:
                if e.code != 429:
                    return e.code, e.headers["Content-Type"], e.read().decode()
                time.sleep(0.2)
        self.fail(f"{path}: 429 thirty times")

    def status(self):
        code, ctype, body = self.get("/status.json")
        self.assertEqual(code, 200)
        self.assertEqual(ctype, "application/json")
        return json.loads(body)

    def test_failure_shows_which_backend_since_when_and_where_its_flows_went(self):
        clients = [Client(("127.0.0.1", self.port)) for _ in range(9)]
        for c in clients:
            c.roundtrip(initiation())
            c.roundtrip(transport(100))
        st = self.status()
        by = {b["name"]: b for b in st["backends"]}
        self.assertEqual(sorted(by), ["b0", "b1", "b2"])
        self.assertTrue(st["ready"])
        self.assertEqual(st["flows"]["total"], 9)
        self.assertEqual(sum(b["flows"] for b in by.values()), 9)
        self.assertEqual(sum(b["packets_in"] for b in by.values()), 18)
        self.assertEqual(st["handshakes"]["initiations"], 9)
        for b in by.values():
            self.assertEqual(b["state"], "up")
            self.assertRegex(b["since"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
            # Up after rise (2) passes in a row; a probe of a busy
            # machine's health server may have failed before.
            self.assertRegex(b["probes"], r"^[+-]*\+\+$")
            self.assertEqual(b["last_check"]["status"], 200)
        victim = max(by.values(), key=lambda b: b["flows"])
        n = victim["flows"]
        self.assertGreater(n, 0)
        t0 = time.time()
        self.hss[int(victim["name"][1:])].mode = 503
        wait_until(lambda: {b["name"]: b for b in self.status()["backends"]}[victim["name"]]["state"]
                   == "down", 5, "down on the page")
        by = {b["name"]: b for b in self.status()["backends"]}
        v = by[victim["name"]]
        self.assertTrue(v["probes"].endswith("--"), v["probes"])
        self.assertEqual(v["last_check"]["status"], 503)
        self.assertEqual(v["flows"], 0)
        self.assertEqual(v["repins_out"], n, "where its clients went: moved out")
        self.assertEqual(sum(b["repins_in"] for b in by.values()), n, "... and in elsewhere")
        self.assertLessEqual(v["since_s"], time.time() - t0 + 1)
        since = time.strptime(v["since"], "%Y-%m-%dT%H:%M:%SZ")
        self.assertLess(abs(time.mktime(since) - time.timezone - t0), 5)
        code, ctype, html = self.get("/")
        self.assertEqual((code, ctype), (200, "text/html; charset=utf-8"))
        self.assertIn(f'<tr class="down"><td>{victim["name"]}</td>', html)
        self.assertIn('<meta http-equiv="refresh"', html)
        self.assertNotIn("<script", html)
        self.assertNotIn("http://", html.replace(f"http://127.0.0.1:{self.mport}", ""),
                         "no external asset")
        self.assertEqual(self.get("/ready")[0], 200, "two backends still take flows")
        for c in clients:
            c.close()

    def test_ready_and_read_only(self):
        code, _, body = self.get("/ready")
        self.assertEqual((code, body), (200, "ready\n"))
        for h in self.hss:
            h.mode = 503
        wait_until(lambda: self.get("/ready")[0] == 503, 5, "not ready")
        self.assertIn("failing open", self.get("/ready")[2])
        self.assertTrue(self.status()["failopen"])
        before = self.lb.ctl("show backends")
        for path, method in (("/", "POST"), ("/status.json", "PUT"), ("/backend", "GET"),
                             ("/ready/../metrics", "GET")):
            self.assertEqual(self.get(path, method)[0], 404, f"{method} {path}")
        self.assertEqual(self.lb.ctl("show backends").split("\n")[0], before.split("\n")[0])
        # A storm of scrapes gets 429s; /ready, a health check's, never does.
        codes = set()
        for _ in range(40):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.mport}/status.json", timeout=5):
                    pass
            except urllib.error.HTTPError as e:
                codes.add(e.code)
        self.assertIn(429, codes)
        for _ in range(40):
            req = urllib.request.Request(f"http://127.0.0.1:{self.mport}/ready")
            try:
                urllib.request.urlopen(req, timeout=5).close()
            except urllib.error.HTTPError as e:
                self.assertEqual(e.code, 503, "not ready (all down), never limited")


@unittest.skipUnless(shutil.which("chromium"), "needs chromium (Debian package chromium)")
class TestStatusPageInChromium(TestStatusPage):
    """The page as a browser renders it: the backends in their states, and
    after a backend fails a new load shows it down. A screenshot goes to
    $WGLB_STATUS_SHOT when set (the README's picture)."""

    def chromium(self, *args):
        home = tempfile.mkdtemp(prefix="wglb-chromium-")
        try:
            r = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                                "--disable-dev-shm-usage", f"--user-data-dir={home}", *args],
                               capture_output=True, text=True, timeout=60)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        return r.stdout

    def test_renders_and_follows_a_failure(self):
        url = f"http://127.0.0.1:{self.mport}/"
        clients = [Client(("127.0.0.1", self.port)) for _ in range(12)]
        for c in clients:
            c.roundtrip(initiation())
            c.roundtrip(transport(200))
        dom = self.chromium("--dump-dom", url)
        for i in range(3):
            self.assertIn(f'<tr class="up"><td>b{i}</td>', dom)
        victim = max(self.status()["backends"], key=lambda b: b["flows"])["name"]
        self.hss[int(victim[1:])].mode = 503
        wait_until(lambda: {b["name"]: b for b in self.status()["backends"]}[victim]["state"]
                   == "down", 5, "down")
        for c in clients:
            c.roundtrip(transport(200))  # on their new backends
        dom = self.chromium("--dump-dom", url)
        self.assertIn(f'<tr class="down"><td>{victim}</td>', dom)
        shot = os.environ.get("WGLB_STATUS_SHOT")
        if shot:
            self.chromium(f"--screenshot={shot}", "--window-size=1360,600", "--hide-scrollbars", url)
            self.assertTrue(os.path.getsize(shot) > 1000)
        for c in clients:
            c.close()

    # The plain tests run once, in the class above.
    test_failure_shows_which_backend_since_when_and_where_its_flows_went = None
    test_ready_and_read_only = None


if __name__ == "__main__":
    unittest.main(verbosity=2)
