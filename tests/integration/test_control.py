# SPDX-License-Identifier: MIT
"""The control socket and wglbctl against a running wglb with real
traffic: every command in text and JSON, counters that move by exactly
the traffic sent, routing changes, admin checks by credentials,
Prometheus output that promtool accepts, and abuse that never touches
forwarding."""
import json
import os
import shutil
import statistics
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from wglbtest import (WGLBCTL, Backend, Client, Wglb, auto_max_flows, config, free_port,
                      initiation, transport, wait_until)


def tcp_free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TestControl(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bes = [Backend(n) for n in ("a", "b", "c")]
        cls.spare = Backend("d")
        cls.port = free_port()
        cls.mport = tcp_free_port()
        cls.lb = Wglb(config([f"127.0.0.1:{cls.port}"], cls.bes,
                             balancer_extra=f"control_group = nogroup\n"
                                            f"metrics_listen = 127.0.0.1:{cls.mport}\n"))
        cls.lb.start()
        os.chmod(cls.lb.dir, 0o755)  # let an unprivileged caller reach the socket

    @classmethod
    def tearDownClass(cls):
        rc = cls.lb.stop()
        for b in cls.bes + [cls.spare]:
            b.close()
        assert rc == 0, cls.lb.read_log()

    def wglbctl(self, *args, user=None):
        cmd = [WGLBCTL, "-s", self.lb.sock, *args]
        if user:
            cmd = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10)

    def test_help_is_generated(self):
        out = self.lb.ctl("help")
        for usage in ("show info", "show stats", "show backends", "show flows [backend NAME] [limit N]",
                      "backend drain NAME [now]", "backend add NAME ADDR [weight W]",
                      "backend del NAME [force]", "metrics"):
            self.assertIn(usage, out)
        cmds = self.lb.json("help")["commands"]
        self.assertTrue(any(c["usage"] == "backend drain NAME [now]" and c["admin"] for c in cmds))
        self.assertTrue(self.lb.ctl("backend drain a later").startswith("error: usage"))

    def test_every_reply_ends_at_its_only_blank_line(self):
        """A client reads to the first blank line: no reply may hold one
        before its end (show stats had one between counters and backends)."""
        c = Client(("127.0.0.1", self.port))
        c.roundtrip(initiation())
        c.close()
        for cmd in ("help", "show info", "show stats", "show backends", "show flows", "metrics",
                    "show nonsense", "backend drain nobody"):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(self.lb.sock)
            s.sendall(cmd.encode() + b"\n")
            s.settimeout(0.3)
            data = b""
            try:
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    data += d
            except socket.timeout:
                pass
            s.close()
            self.assertTrue(data.endswith(b"\n\n"), cmd)
            self.assertEqual(data.count(b"\n\n"), 1, f"{cmd}: a blank line inside the reply")

    def test_show_info(self):
        info = self.lb.json("show info")
        self.assertEqual(info["listeners"], [f"127.0.0.1:{self.port}"])
        self.assertIn("multishot recvmsg", info["io_uring"])
        self.assertIn("restricted to recvmsg/send/sendmsg/poll/cancel", info["io_uring"])
        self.assertEqual(info["max_flows"], auto_max_flows())
        self.assertIn("flows:", self.lb.ctl("show info"))

    def test_counters_move_by_exactly_the_traffic(self):
        before = self.lb.stats()
        c = Client(("127.0.0.1", self.port))
        sizes = [148] + [32, 100, 1452] * 10
        c.roundtrip(initiation())
        for n in sizes[1:]:
            c.roundtrip(transport(n))
        c.send(b"\x09\x00\x00\x00" + bytes(40))  # unknown type
        c.expect_nothing(0.2)
        # Counted once read (the loop's batch), not after a fixed pause.
        after = wait_until(lambda: (lambda s: s if s["packets_in"] - before["packets_in"]
                                    >= len(sizes) + 1 else None)(self.lb.stats()),
                           5, "every datagram counted")
        d = lambda k: after[k] - before[k]
        self.assertEqual(d("packets_in"), len(sizes) + 1)
        self.assertEqual(d("bytes_in"), sum(sizes) + 44)
        self.assertEqual(d("forwarded_in"), len(sizes))
        self.assertEqual(d("forwarded_out"), len(sizes))
        self.assertEqual(d("bytes_out"), sum(sizes))
        self.assertEqual(d("flows_new"), 1)
        self.assertEqual(after["drops_in"]["unknown_type"] - before["drops_in"]["unknown_type"], 1)
        self.assertEqual(after["messages_in"]["transport"] - before["messages_in"]["transport"], 30)
        flow = [f for f in self.lb.flows() if f["client"].endswith(f":{c.port}")][0]
        self.assertEqual((flow["packets_in"], flow["packets_out"]), (31, 31))
        self.assertEqual(flow["bytes_in"], sum(sizes))
        be = after["backends"][flow["backend"]]
        self.assertEqual(be["packets_in"] - before["backends"][flow["backend"]]["packets_in"], 31)
        text = self.lb.ctl("show stats")
        self.assertIn("drop unknown_type", text)
        c.close()

    def test_show_backends_json_shape(self):
        bs = self.lb.json("show backends")["backends"]
        self.assertEqual(len(bs), 3)
        for b in bs:
            self.assertEqual(set(b), {"name", "address", "state", "admin", "health", "flows",
                                      "weight", "last_check"})
            self.assertIn(b["state"], ("up", "down", "checking", "draining", "disabled"))
            self.assertIn(b["admin"], ("enabled", "draining", "disabled"))
            self.assertIn(b["health"], ("checking", "up", "down"))

    def test_show_flows_filters_and_streams(self):
        clients = [Client(("127.0.0.1", self.port)) for _ in range(40)]
        for c in clients:
            c.roundtrip(initiation())
        flows = self.lb.flows()
        self.assertGreaterEqual(len(flows), 40)
        one = flows[0]["backend"]
        mine = self.lb.json(f"show flows backend {one}")["flows"]
        self.assertTrue(mine and all(f["backend"] == one for f in mine))
        self.assertEqual(len(self.lb.json("show flows limit 3")["flows"]), 3)
        text = self.lb.ctl("show flows limit 2").splitlines()
        self.assertEqual(len(text), 3)  # header + 2
        self.assertTrue(self.lb.ctl("show flows backend nosuch").startswith("error: no backend"))
        self.assertTrue(self.lb.ctl("show flows limit x").startswith("error: usage"))
        for c in clients:
            c.close()

    def test_add_del_and_errors(self):
        self.assertTrue(self.lb.ctl(f"backend add d {self.spare.address} weight 2").startswith("ok"))
        self.assertEqual(self.lb.backends()["d"]["weight"], 2)
        self.assertTrue(self.lb.ctl("backend add d 127.0.0.1:9").startswith("error: cannot add"))
        self.assertTrue(self.lb.ctl("backend add e nowhere").startswith("error: bad address"))
        self.assertTrue(self.lb.ctl("backend add e 127.0.0.1:9 weight 0").startswith("error: usage"))
        self.assertTrue(self.lb.ctl("backend add bad/name 127.0.0.1:9").startswith("error: bad name"))
        # Give d a flow, then: del refused, del force moves it.
        for _ in range(200):
            c = Client(("127.0.0.1", self.port))
            c.roundtrip(initiation())
            if [f for f in self.lb.flows() if f["client"].endswith(f":{c.port}") and f["backend"] == "d"]:
                break
            c.close()
        else:
            self.fail("no client landed on d")
        err = self.lb.ctl("backend del d")
        self.assertTrue(err.startswith("error: backend d still has"), err)
        self.assertEqual(self.lb.json("backend del d")["error"][:24], "backend d still has 1 fl")
        self.assertTrue(self.lb.ctl("backend del d force").startswith("ok"))
        self.assertNotIn("d", self.lb.backends())
        m = transport(70)
        self.assertEqual(c.roundtrip(m)[0], m, "the moved flow still works")
        self.assertGreaterEqual(self.lb.stats()["repins"]["removed"], 1)
        self.assertTrue(self.lb.ctl("backend drain nosuch").startswith("error: no backend named"))
        self.assertTrue(self.lb.ctl("frob").startswith("error: unknown command"))
        self.assertEqual(self.lb.json("frob"), {"error": "unknown command; try 'help'"})
        c.close()

    def test_wglbctl(self):
        r = self.wglbctl("show", "backends")
        self.assertEqual(r.returncode, 0)
        self.assertIn("NAME", r.stdout)
        r = self.wglbctl("--json", "show", "info")
        self.assertEqual(json.loads(r.stdout)["listeners"], [f"127.0.0.1:{self.port}"])
        r = self.wglbctl("backend", "drain", "nosuch")
        self.assertEqual(r.returncode, 1)
        self.assertIn("error: no backend named 'nosuch'", r.stderr)
        r = subprocess.run([WGLBCTL, "-s", "/nonexistent.sock", "help"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot connect", r.stderr)

    def test_non_admin_may_only_read(self):
        if not shutil.which("setpriv"):
            self.skipTest("setpriv (util-linux) not installed")
        r = self.wglbctl("show", "backends", user="nobody")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.wglbctl("backend", "disable", "a", user="nobody")
        self.assertEqual(r.returncode, 1)
        self.assertIn("permission denied", r.stderr)
        self.assertEqual(self.lb.backends()["a"]["admin"], "enabled")

    def test_scrapers_never_evict_an_operator(self):
        """Metrics scrapers hold at most 32 of the 128 slots and only ever
        make room among themselves: 100 idle operators stay connected
        through 60 idle scrapes."""
        ops, scrapes = [], []
        try:
            for _ in range(100):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.lb.sock)
                ops.append(s)
            for _ in range(60):
                scrapes.append(socket.create_connection(("127.0.0.1", self.mport), timeout=2))
            wait_until(lambda: self.lb.json("show info") is not None, what="control socket")
            for s in ops:
                s.settimeout(2)
                s.sendall(b"show info\n")
                self.assertIn(b"version", s.recv(65536), "an operator lost its connection")
        finally:
            for s in ops + scrapes:
                s.close()

    def test_metrics_promtool_and_http(self):
        text = self.lb.ctl("metrics") + "\n"
        self.assertIn('wglb_dropped_packets_total{direction="in",reason="bad_length"}', text)
        self.assertIn('wglb_backend_state{backend="a",state="up"} 1', text)
        with urllib.request.urlopen(f"http://127.0.0.1:{self.mport}/metrics", timeout=5) as r:
            self.assertEqual(r.status, 200)
            self.assertIn("text/plain; version=0.0.4", r.headers["Content-Type"])
            body = r.read().decode()
        self.assertIn(f"wglb_flows_max {auto_max_flows()}\n", body)
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{self.mport}/other", timeout=5)
        self.assertEqual(e.exception.code, 404)
        promtool = shutil.which("promtool")
        if not promtool:
            self.skipTest("promtool (Debian package prometheus) not installed")
        r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def rate(self, c, n=1000):
        """Round trips per second through wglb over n sequential round trips."""
        t = time.monotonic()
        for _ in range(n):
            c.roundtrip(transport(160))
        return n / (time.monotonic() - t)

    def abuse_on(self):
        """200 idle connections and a client that asks for a lot and never
        reads. Returns the sockets and how many idle ones wglb closed."""
        idle = []
        for _ in range(200):
            x = socket.socket(socket.AF_UNIX)
            x.connect(self.lb.sock)
            idle.append(x)
        # An operator still gets in: past 128 the longest idle make room.
        self.assertIn("multishot recvmsg", self.lb.json("show info")["io_uring"])
        refused = 0
        for x in idle:
            x.setblocking(False)
            try:
                if x.recv(100).startswith(b"error: closed: too many control connections"):
                    refused += 1
            except BlockingIOError:
                pass
        hog = socket.socket(socket.AF_UNIX)
        try:
            hog.connect(self.lb.sock)
            hog.setblocking(False)
            for _ in range(2000):
                hog.send(b"metrics\n")
        except (BlockingIOError, OSError):
            pass
        return idle + [hog], refused

    def test_abuse_never_affects_forwarding(self):
        c = Client(("127.0.0.1", self.port))
        c.roundtrip(initiation())
        # Over-long line: an error, then the connection is closed.
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.lb.sock)
        s.sendall(b"x" * 5000)
        reply = s.recv(4096)
        self.assertTrue(reply.startswith(b"error: line longer than"), reply)
        s.settimeout(2)
        try:  # unread input makes the kernel close with a reset: either way, closed
            self.assertEqual(s.recv(4096), b"", "closed after an over-long line")
        except ConnectionResetError:
            pass
        s.close()
        # Binary junk: an error reply.
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.lb.sock)
        s.sendall(os.urandom(200).replace(b"\n", b"x") + b"\n")
        self.assertTrue(s.recv(4096).startswith(b"error: "))
        s.close()
        # Forwarding with and without the abuse, alternating eleven times: the
        # median of each abused sample's ratio to the quiet one just before
        # it, so that the machine's load (two cores, shared with this client
        # and whatever else runs) cancels out pair by pair, and a burst of
        # load elsewhere spoils one pair, not the verdict.
        ratios, quiet, refused = [], [], None
        for _ in range(11):
            q = self.rate(c)
            socks, r = self.abuse_on()
            refused = r if refused is None else refused
            ratios.append(self.rate(c) / q)
            quiet.append(q)
            for x in socks:
                x.close()
        base, ratio = statistics.median(quiet), statistics.median(ratios)
        loaded = ratio * base
        print(f"\nround trips/s: {base:.0f} quiet (median of 11); under control-socket abuse "
              f"{ratio:.2f}x (median of the paired ratios); {refused} of 200 idle "
              f"connections closed", file=sys.stderr)
        self.assertGreaterEqual(refused, 70)
        if os.environ.get("ASAN_OPTIONS") or os.environ.get("WGLB_TEST_WORKERS"):
            # Under AddressSanitizer every control reply costs several times
            # what it does in the real build, which is what this would then
            # measure. With workers, the main thread answers the abuse while
            # another forwards: on two cores, shared with this client, they
            # share CPU time, not a loop. The 10% bound, where the loop that
            # forwards also answers, is asserted in the normal build.
            print("sanitizer build or workers: forwarding only has to stay above half its "
                  "quiet rate", file=sys.stderr)
            self.assertGreaterEqual(loaded, 0.5 * base)
        else:
            self.assertGreaterEqual(loaded, 0.9 * base)
        c.close()

    def test_scrape_budget(self):
        """Even from the cache an answer costs the loop ~15 KB of TCP, so
        full answers are budgeted: 10 a second after a burst of 20, for all
        scrapers together; the rest get a 429 with no body."""
        def scrape():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.mport}/metrics",
                                            timeout=5) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code
        # This wglb serves the whole class: another test's scrape moments
        # ago may have spent part of the burst. The bucket refills at 10 a
        # second and cannot be read without spending it: 2 s make it whole.
        time.sleep(2.1)
        t = time.monotonic()
        codes = [scrape() for _ in range(60)]
        took = time.monotonic() - t
        self.assertEqual(set(codes) - {200, 429}, set(), codes)
        self.assertGreaterEqual(codes.count(200), 20, "the burst")
        self.assertLessEqual(codes.count(200), 20 + 10 * took + 1, f"{codes} in {took:.2f} s")
        self.assertIn(429, codes)
        wait_until(lambda: scrape() == 200, 3, "the budget refilled")
        text = self.lb.ctl("metrics")  # the control socket is not budgeted
        refused = next(int(x.split()[1]) for x in text.splitlines()
                       if x.startswith("wglb_metrics_scrapes_refused_total "))
        self.assertGreaterEqual(refused, codes.count(429))


if __name__ == "__main__":
    unittest.main(verbosity=2)
