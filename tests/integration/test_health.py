# SPDX-License-Identifier: MIT
"""The prober against real HTTP servers: 200, 302, 404, 503, garbage,
reset, timeout, one byte a second, refused; the agent's drain header;
rise/fall without flapping; fail-open; a dead health server takes its
backend out of the table within fall * interval + timeout and its flows
move; a hostile health server never slows the data plane."""
import os
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from wglbtest import Backend, Client, Wglb, free_port, initiation, transport, wait_until

INTERVAL, TIMEOUT = 200, 150


class HealthServer:
    """A TCP server on 127.0.0.1 answering probes the way `mode` says."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.hits = 0
        self.running = True
        self.toggle = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.hits += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        mode = self.mode
        try:
            c.settimeout(2)
            c.recv(4096)
            if mode == "flap":
                self.toggle = not self.toggle
                mode = 200 if self.toggle else 503
            if isinstance(mode, int):
                c.sendall(f"HTTP/1.1 {mode} X\r\nContent-Length: 0\r\n\r\n".encode())
            elif mode == "drain":
                c.sendall(b"HTTP/1.1 503 Service Unavailable\r\nX-Wglb-Drain: 1\r\n\r\ndraining")
            elif mode == "garbage":
                c.sendall(b"SSH-2.0-OpenSSH_9.2\r\n" + os.urandom(64))
            elif mode == "reset":
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif mode == "timeout":
                time.sleep(1)
            elif mode == "slow":
                for ch in b"HTTP/1.1 200 OK\r\n\r\n":
                    c.send(bytes([ch]))
                    time.sleep(1)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.running = False
        self.sock.close()


def health_config(lb_port, pairs, rise=2, fall=2, interval=INTERVAL, timeout=TIMEOUT):
    text = f"[balancer]\ncontrol = @CONTROL@\nlisten = 127.0.0.1:{lb_port}\n"
    for be, hs in pairs:
        port = hs.port if hs else free_port()  # refused: nothing listens
        text += f"\n[backend {be.name}]\naddress = {be.address}\nhealth_port = {port}\n"
    text = text.replace("listen =", "handshake_rate = 0\nlisten =", 1)
    text += (f"\n[health]\ninterval_ms = {interval}\ntimeout_ms = {timeout}\n"
             f"rise = {rise}\nfall = {fall}\n")
    return text


class TestProber(unittest.TestCase):
    def start(self, modes, **kw):
        self.bes = [Backend(f"b{i}") for i in range(len(modes))]
        self.hss = [HealthServer(m) if m != "refused" else None for m in modes]
        self.port = free_port()
        self.lb = Wglb(health_config(self.port, zip(self.bes, self.hss), **kw)).start()
        return self.lb

    def tearDown(self):
        rc = self.lb.stop()
        for b in self.bes:
            b.close()
        for h in self.hss:
            if h:
                h.close()
        self.assertEqual(rc, 0, self.lb.read_log())

    def test_verdicts_and_reasons(self):
        modes = [200, 302, 404, 503, "garbage", "reset", "timeout", "slow", "refused"]
        want = {0: ("up", "ok"), 1: ("up", "ok"), 2: ("down", "status"), 3: ("down", "status"),
                4: ("down", "garbage"), 5: ("down", "reset"), 6: ("down", "timeout"),
                7: ("down", "timeout"), 8: ("down", "refused")}
        lb = self.start(modes)
        settled = lambda: all(b["health"] != "checking" for b in lb.backends().values())
        wait_until(settled, 5, "every backend decided")
        bs = lb.backends()
        for i, (health, reason) in want.items():
            b = bs[f"b{i}"]
            self.assertEqual((b["health"], b["last_check"]["result"]), (health, reason),
                             f"mode {modes[i]}")
        self.assertEqual(bs["b2"]["last_check"]["status"], 404)
        self.assertRegex(bs["b0"]["last_check"]["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        log = lb.read_log()
        self.assertIn("backend b2: down (status 404, 2 failures)", log)
        self.assertIn("backend b0: up (ok 200, 2 passes)", log)
        # The slow and silent servers never held up forwarding.
        c = Client(("127.0.0.1", self.port))
        for _ in range(50):
            t = time.monotonic()
            m = transport(100)
            self.assertEqual(c.roundtrip(m)[0], m)
            self.assertLess(time.monotonic() - t, 0.2)
        c.close()

    def test_drain_header_is_graceful(self):
        lb = self.start([200, 200])
        wait_until(lambda: all(b["state"] == "up" for b in lb.backends().values()), 5, "up")
        c = Client(("127.0.0.1", self.port))
        c.roundtrip(initiation())
        serving = lb.flows()[0]["backend"]
        self.hss[int(serving[1:])].mode = "drain"
        wait_until(lambda: lb.backends()[serving]["state"] == "draining", 3, "drain seen")
        b = lb.backends()[serving]
        self.assertEqual(b["health"], "up", "a draining server is alive, not down")
        self.assertEqual(b["flows"], 1, "its flow stays until the next initiation")
        self.assertEqual(lb.stats()["repins"]["down"], 0)
        c.roundtrip(initiation())
        self.assertNotEqual(lb.flows()[0]["backend"], serving)
        self.hss[int(serving[1:])].mode = 200
        wait_until(lambda: lb.backends()[serving]["state"] == "up", 3, "drain lifted")
        c.close()

    def test_no_flapping(self):
        # Alternating answers must never reach rise or fall. A probe that
        # times out is a failure too, so this test gives the (threaded,
        # Python) health server the time a busy machine can take.
        lb = self.start([200, "flap"], rise=2, fall=2, interval=600, timeout=500)
        wait_until(lambda: self.hss[1].hits >= 8, 10, "eight alternating probes")
        self.assertNotIn("backend b1: down", lb.read_log())
        self.assertNotIn("backend b1: up", lb.read_log(), "never two passes in a row either")

    def test_fail_open_when_all_down(self):
        lb = self.start([503, 503])
        wait_until(lambda: all(b["health"] == "down" for b in lb.backends().values()), 5, "down")
        self.assertTrue(lb.json("show info")["failopen"])
        c = Client(("127.0.0.1", self.port))
        m = initiation()
        self.assertEqual(c.roundtrip(m)[0], m, "fail-open still forwards")
        self.assertGreaterEqual(lb.stats()["failopen"], 1)
        self.assertIn("failing open", lb.read_log())
        c.close()

    def test_dead_health_server_moves_flows(self):
        lb = self.start([200, 200, 200])
        wait_until(lambda: all(b["state"] == "up" for b in lb.backends().values()), 5, "up")
        clients = [Client(("127.0.0.1", self.port)) for _ in range(12)]
        for c in clients:
            c.roundtrip(initiation())
        victim = max(lb.backends().values(), key=lambda b: b["flows"])["name"]
        n = lb.backends()[victim]["flows"]
        t0 = time.monotonic()
        self.hss[int(victim[1:])].close()
        wait_until(lambda: lb.backends()[victim]["health"] == "down", 3, "down")
        detect = time.monotonic() - t0
        limit = (2 * INTERVAL + TIMEOUT) / 1000 + 0.3  # fall * interval + timeout, + polling
        print(f"detection {detect:.2f}s (limit {limit:.2f}s), {n} flows moved", file=sys.stderr)
        self.assertLess(detect, limit)
        self.assertEqual(lb.backends()[victim]["flows"], 0)
        self.assertEqual(lb.stats()["repins"]["down"], n)
        for c in clients:
            m = transport(64)
            self.assertEqual(c.roundtrip(m)[0], m)
            c.close()

    def test_port_unreachable_confirms_a_failure_at_once(self):
        """The server's WireGuard port closes and its health check fails: one
        port unreachable (the kernel may send no more for a second) starts a
        probe, and the failure it finds is confirmed 40 ms later, not one
        interval later."""
        lb = self.start([200, 200], interval=3000, timeout=500)
        wait_until(lambda: all(b["state"] == "up" for b in lb.backends().values()), 8, "up")
        c = Client(("127.0.0.1", self.port))
        c.roundtrip(initiation())
        victim = max(lb.backends().values(), key=lambda b: b["flows"])["name"]
        i = int(victim[1:])
        self.hss[i].mode = 503
        self.bes[i].close()  # its port is closed: the next datagram draws an ICMP error
        t0 = time.monotonic()
        c.send(transport(64))
        wait_until(lambda: lb.backends()[victim]["health"] == "down", 2.5, "down")
        took = time.monotonic() - t0
        print(f"down {took:.2f}s after one port unreachable (interval 3 s)", file=sys.stderr)
        self.assertLess(took, 1.5)
        c.close()

    def test_forged_unreachables_alone_probe_at_most_5_a_second(self):
        """A stream of port unreachables (they can be forged) against a
        backend whose health check passes: probes at most every 200 ms."""
        lb = self.start([200, 200], interval=3000, timeout=500)
        wait_until(lambda: all(b["state"] == "up" for b in lb.backends().values()), 8, "up")
        c = Client(("127.0.0.1", self.port))
        c.roundtrip(initiation())
        victim = max(lb.backends().values(), key=lambda b: b["flows"])["name"]
        i = int(victim[1:])
        self.bes[i].close()
        before, t0 = self.hss[i].hits, time.monotonic()
        for _ in range(100):  # bounded: 100 datagrams over about 2 s
            c.send(transport(64))
            time.sleep(0.02)
        hits, took = self.hss[i].hits - before, time.monotonic() - t0
        print(f"{hits} probes in {took:.2f}s of unreachables", file=sys.stderr)
        self.assertLessEqual(hits, took / 0.2 + 2)
        self.assertGreater(hits, 2, "the hints do start probes")
        self.assertEqual(lb.backends()[victim]["health"], "up")
        c.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
