# SPDX-License-Identifier: MIT
"""wglb's data plane on loopback, IPv4 and IPv6: bytes unchanged both ways,
stickiness, malformed datagrams dropped and counted, re-pin on reload,
drain and disable, confirmed-flow protection, wildcard listener replies
from the address the client used, bad reload keeps the running config."""
import os
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from wglbtest import (WGLB, Backend, Client, LoopbackLb, Wglb, config, confirm, free_port,
                      initiation, transport, wait_until)


class Family(LoopbackLb):
    def serving(self, c):
        """The backend that holds client c's flow, from the control socket."""
        flows = [f for f in self.lb.flows() if f["client"].endswith(f":{c.port}")]
        self.assertEqual(len(flows), 1, flows)
        return next(b for b in self.backends if b.name == flows[0]["backend"]), flows[0]

    def test_bytes_unchanged_and_sticky(self):
        c = self.client()
        idx = 0x5eed1d
        msgs = [initiation(sender=idx)] + [transport(n, receiver=idx)
                                           for n in (32, 33, 47, 160, 1000, 1440, 1452)] * 5
        for m in msgs:
            got, src = c.roundtrip(m)
            self.assertEqual(got, m)
            self.assertEqual(src[1], self.port)
        be, flow = self.serving(c)
        self.assertEqual(be.payloads(), msgs, "backend got exactly the client's bytes in order")
        for other in self.backends:
            if other is not be:
                self.assertEqual(other.count(), 0)
        self.assertEqual(len(be.sources()), 1, "one upstream socket per flow")
        self.assertEqual(flow["upstream_port"], next(iter(be.sources()))[1])
        self.assertTrue(flow["confirmed"])
        st = self.lb.stats()
        self.assertEqual(st["forwarded_in"], len(msgs))
        self.assertEqual(st["forwarded_out"], len(msgs))
        self.assertEqual(st["messages_in"]["initiation"], 1)
        self.assertEqual(st["messages_in"]["transport"], len(msgs) - 1)
        self.assertEqual(st["backends"][be.name]["packets_in"], len(msgs))

    def test_burst_in_order_through_gso(self):
        # Back-to-back datagrams of one flow share a batch: wglb sends runs
        # of equal size as one UDP GSO send. Every byte and the order survive.
        c = self.client()
        c.roundtrip(initiation())
        sizes = [1452] * 40 + [900] + [160] * 60 + [33, 1000, 32] + [1200] * 30
        msgs = []
        for i, n in enumerate(sizes * 2):
            m = bytearray(transport(n))
            m[12:16] = i.to_bytes(4, "little")  # a sequence number (byte 8 is the SILENT marker)
            msgs.append(bytes(m))
        for m in msgs:
            c.send(m)
        got = []
        try:
            while len(got) < len(msgs):
                got.append(c.sock.recvfrom(65535)[0])
        except socket.timeout:
            pass
        be, _ = self.serving(c)
        self.assertEqual(be.payloads()[1:], msgs, "backend got every datagram, unchanged, in order")
        self.assertEqual(got, msgs, "client got every echo, unchanged, in order")
        st = self.lb.stats()
        self.assertEqual(st["forwarded_in"], len(msgs) + 1)
        self.assertEqual(st["forwarded_out"], len(msgs) + 1)
        # The burst went out in GSO batches toward the backend at least.
        self.assertLess(st["sends_in"], st["forwarded_in"])
        print(f"\n{st['forwarded_in']} datagrams in {st['sends_in']} sends toward the backend, "
              f"{st['forwarded_out']} in {st['sends_out']} toward the client", file=sys.stderr)

    def test_clients_spread(self):
        clients = [self.client() for _ in range(30)]
        for c in clients:
            m = initiation()
            self.assertEqual(c.roundtrip(m)[0], m)
        used = {f["backend"] for f in self.lb.flows()}
        self.assertGreaterEqual(len(used), 2, "Maglev spreads 30 clients over 3 backends")
        self.assertEqual(self.lb.stats()["flows_active"], 30)

    def test_malformed_dropped_and_counted(self):
        c = self.client()
        bad = {
            "too_short": [b"", b"\x01", b"\x04\x00\x00"],
            "bad_reserved": [b"\x01\x01\x00\x00" + bytes(144), b"\x04\x00\x00\x09" + bytes(40),
                             b"GET / HTTP/1.1\r\n"],  # reserved bytes are checked first
            "unknown_type": [b"\x05\x00\x00\x00" + bytes(60), b"\x00" * 148],
            "bad_length": [b"\x01\x00\x00\x00" + bytes(143), b"\x01\x00\x00\x00" + bytes(145),
                           b"\x02\x00\x00\x00" + bytes(87), b"\x02\x00\x00\x00" + bytes(89),
                           b"\x03\x00\x00\x00" + bytes(59), b"\x03\x00\x00\x00" + bytes(61),
                           b"\x04\x00\x00\x00" + bytes(27)],
        }
        for group in bad.values():
            for d in group:
                c.send(d)
        c.expect_nothing()
        # A good message afterwards still works: the loop did not stall.
        m = transport(48)
        self.assertEqual(c.roundtrip(m)[0], m)
        st = self.lb.stats()
        for reason, group in bad.items():
            self.assertEqual(st["drops_in"][reason], len(group), reason)
        self.assertEqual(sum(b.count() for b in self.backends), 1, "nothing malformed forwarded")
        self.assertEqual(st["flows_active"], 1, "malformed datagrams create no state")

    def test_reload_removal_repins_at_next_initiation(self):
        c = self.client()
        m = initiation()
        c.roundtrip(m)
        be, flow = self.serving(c)
        up_port = flow["upstream_port"]
        self.lb.write_config(config([self.lb_listen(self.port)],
                                    [b for b in self.backends if b is not be],
                                    balancer_extra="max_flows = 64\n"))
        self.lb.hup()
        wait_until(lambda: be.name not in self.lb.backends(), what="backend removed")
        st = self.lb.stats()
        self.assertEqual(st["repins"]["removed"], 1)
        m2 = initiation()
        self.assertEqual(c.roundtrip(m2)[0], m2)
        new, flow2 = self.serving(c)
        self.assertIsNot(new, be)
        self.assertEqual(new.payloads(), [m2])
        self.assertEqual(flow2["upstream_port"], up_port, "a re-pin keeps the flow's source port")
        self.assertEqual(be.count(), 1)

    def test_reload_readdress_that_cannot_connect_closes_the_flow(self):
        """A flow whose socket cannot follow its backend's new address is
        closed and counted: left connected to the old address, it would
        go on sending there."""
        c = self.client()
        c.roundtrip(initiation())
        be, _ = self.serving(c)
        bad = "[ff02::1]:9" if self.family == socket.AF_INET6 else "255.255.255.255:9"
        moved = [type("B", (), {"name": b.name, "address": bad if b is be else b.address})
                 for b in self.backends]
        self.lb.write_config(config([self.lb_listen(self.port)], moved,
                                    balancer_extra="max_flows = 64\n"))
        self.lb.hup()
        st = wait_until(lambda: (lambda s: s if s["move_errors"] else None)(self.lb.stats()),
                        what="the flow that could not follow")
        self.assertEqual(st["move_errors"], 1)
        self.assertEqual(st["flows_active"], 0)
        self.assertEqual(st["repins"]["changed"], 0)

    def test_drain_moves_at_initiation_disable_moves_now(self):
        c = self.client()
        c.roundtrip(initiation())
        be, _ = self.serving(c)
        self.assertTrue(self.lb.ctl(f"backend drain {be.name}").startswith("ok"))
        for _ in range(3):  # transport stays on the draining backend
            c.roundtrip(transport(64))
        self.assertEqual(self.serving(c)[0], be)
        self.assertEqual(be.count(), 4)
        c.roundtrip(initiation())  # a new session moves
        moved, _ = self.serving(c)
        self.assertIsNot(moved, be)
        self.assertEqual(self.lb.stats()["repins"]["initiation"], 1)
        # New clients avoid the draining backend.
        for _ in range(10):
            n = self.client()
            n.roundtrip(initiation())
            self.assertIsNot(self.serving(n)[0], be)
        # Disable moves flows at once, without waiting for an initiation.
        self.lb.ctl(f"backend disable {moved.name}")
        wait_until(lambda: self.serving(c)[0] is not moved, what="re-pin on disable")
        self.assertGreaterEqual(self.lb.stats()["repins"]["disabled"], 1)

    def test_reload_restores_what_the_file_says(self):
        """Runtime drain/disable/add last until the next reload: the file
        wins, as with nginx, HAProxy and ipvsadm."""
        a, b, c = (be.name for be in self.backends)
        self.assertTrue(self.lb.ctl(f"backend disable {a}").startswith("ok"))
        self.assertTrue(self.lb.ctl(f"backend drain {b} now").startswith("ok"))
        extra = Backend("extra", self.family)
        self.addCleanup(extra.close)
        self.assertTrue(self.lb.ctl(f"backend add extra {extra.address}").startswith("ok"))
        bs = self.lb.backends()
        self.assertEqual((bs[a]["admin"], bs[b]["admin"]), ("disabled", "draining"))
        self.lb.hup()
        wait_until(lambda: "extra" not in self.lb.backends(), what="the reload")
        bs = self.lb.backends()
        self.assertEqual({n: bs[n]["admin"] for n in bs}, {a: "enabled", b: "enabled", c: "enabled"})

    def test_bad_reload_keeps_running_config(self):
        self.lb.write_config("[balancer]\nlisten = nonsense\n[backend x]\n")
        self.lb.hup()
        wait_until(lambda: "keeping the running config" in self.lb.read_log(), what="reload error")
        log = self.lb.read_log()
        self.assertIn("wglb.conf:2: listen: 'nonsense' is not IP:PORT", log)
        self.assertIn("wglb.conf:3: [backend x]: address is required", log)
        self.assertEqual(set(self.lb.backends()), {"a", "b", "c"})
        c = self.client()
        m = initiation()
        self.assertEqual(c.roundtrip(m)[0], m)


class TestIPv4(Family, unittest.TestCase):
    pass


class TestIPv6(Family, unittest.TestCase):
    family = socket.AF_INET6
    host = "::1"


class TestWildcardAndLimits(unittest.TestCase):
    def test_wildcard_replies_from_address_used(self):
        be = Backend("a")
        port = free_port()
        lb = Wglb(config([f"0.0.0.0:{port}"], [be])).start()
        try:
            for dst in ("127.0.0.2", "127.0.0.3", "127.0.0.1"):
                c = Client((dst, port))
                m = initiation()
                got, src = c.roundtrip(m)
                self.assertEqual(got, m)
                self.assertEqual(src, (dst, port), "reply from the address the client sent to")
                c.close()
        finally:
            self.assertEqual(lb.stop(), 0)
            be.close()

    def test_confirmed_flows_survive_a_full_table(self):
        be = Backend("a")
        port = free_port()
        lb = Wglb(config([f"127.0.0.1:{port}"], [be], balancer_extra="max_flows = 8\n")).start()
        try:
            real = [Client(("127.0.0.1", port)) for _ in range(4)]
            for c in real:  # a handshake, then data naming the backend's index: confirmed
                confirm(c)
            # 40 clients whose backend never answers (spoof-like): they may
            # only push each other out, never a confirmed flow.
            fakes = [Client(("127.0.0.1", port)) for _ in range(40)]
            for f in fakes:
                f.send(initiation(silent=True))
            wait_until(lambda: lb.stats()["flows_new"] >= 44, what="all flows seen")
            st = lb.stats()
            self.assertEqual(st["flows_active"], 8)
            self.assertEqual(st["flows_evicted"], 36)
            for c in real:
                m = transport(80)
                self.assertEqual(c.roundtrip(m)[0], m)
            confirmed = [f for f in lb.flows() if f["confirmed"]]
            self.assertEqual(len(confirmed), 4)
            # Fill the rest with confirmed flows: then new ones are refused.
            more = [Client(("127.0.0.1", port)) for _ in range(5)]
            for c in more[:4]:
                confirm(c)
            more[4].send(initiation())
            more[4].expect_nothing()
            wait_until(lambda: lb.stats()["drops_in"]["table_full"] >= 1, 5, "the refusal counted")
            self.assertEqual(lb.stats()["drops_in"]["table_full"], 1)
            self.assertIn("flow table full", lb.read_log())
            for c in real + fakes + more:
                c.close()
        finally:
            self.assertEqual(lb.stop(), 0)
            be.close()

    def test_bad_environment_clear_errors(self):
        be = Backend("a")
        port = free_port()
        first = Wglb(config([f"127.0.0.1:{port}"], [be])).start()
        second = Wglb(config([f"127.0.0.1:{port}"], [be]))
        r = subprocess.run([WGLB, "-c", second.conf], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 3)
        self.assertIn(f"listen 127.0.0.1:{port}: address already in use", r.stderr)
        r = subprocess.run([WGLB, "-c", "/nonexistent/wglb.conf"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("/nonexistent/wglb.conf: cannot read: No such file or directory", r.stderr)
        r = subprocess.run([WGLB, "--bogus"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        # A part that cannot open (the control socket) stops the start, and
        # cleans up after itself (the sanitizer build checks for leaks).
        third = Wglb(config([f"127.0.0.1:{free_port()}"], [be]).replace(
            "@CONTROL@", "/nonexistent/control.sock"))
        r = subprocess.run([WGLB, "-c", third.conf], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("control socket /nonexistent/control.sock: No such file or directory", r.stderr)
        self.assertEqual(first.stop(), 0)
        be.close()

    def test_control_path_answers_once_it_exists(self):
        # The socket is bound and listening under a temporary name, then
        # renamed into place: a client that connects the moment the path
        # appears is never refused (it was, once, between bind and listen).
        be = Backend("a")
        self.addCleanup(be.close)
        for _ in range(5):
            lb = Wglb(config([f"127.0.0.1:{free_port()}"], [be]))
            lb.logf = open(lb.log, "ab")
            lb.proc = subprocess.Popen([WGLB, "-c", lb.conf], stdout=lb.logf, stderr=lb.logf)
            deadline = time.monotonic() + 5
            while not os.path.exists(lb.sock):  # no sleep: the first instant it is there
                self.assertIsNone(lb.proc.poll(), lb.read_log())
                self.assertLess(time.monotonic(), deadline, "no control socket in 5 s")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(lb.sock)  # ConnectionRefusedError here is the bug
            s.close()
            self.assertFalse(os.path.exists(lb.sock + ".new"))
            self.assertEqual(lb.stop(), 0)
        # A file that is not a socket at the path is never replaced.
        lb = Wglb(config([f"127.0.0.1:{free_port()}"], [be]))
        with open(lb.sock, "w") as f:
            f.write("operator's file\n")
        r = subprocess.run([WGLB, "-c", lb.conf], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn(f"control socket {lb.sock}: exists and is not a socket", r.stderr)
        with open(lb.sock) as f:
            self.assertEqual(f.read(), "operator's file\n")

    def test_sigint_exits_cleanly_and_removes_socket(self):
        be = Backend("a")
        lb = Wglb(config([f"127.0.0.1:{free_port()}"], [be])).start()
        self.assertEqual(lb.stop(signal.SIGINT), 0)
        self.assertFalse(os.path.exists(lb.sock))
        be.close()


class TestPreserveUnavailable(LoopbackLb, unittest.TestCase):
    """client_address = preserve where it cannot work (this namespace has
    no route for the replies' mark; loopback clients cannot be sent as):
    wglb says why and what fixes it, --check fails, and every flow goes
    from the balancer's address instead, counted, forwarding as ever."""
    balancer_extra = "max_flows = 64\nclient_address = preserve\n"

    def routing_in_place(self):
        out = subprocess.run(["ip", "rule", "show"], capture_output=True, text=True).stdout
        return "0xca6c" in out

    def test_falls_back_and_says_why(self):
        c = self.client()
        m = initiation(sender=7)
        got, _ = c.roundtrip(m)
        self.assertEqual(got, m)
        flow = self.lb.flows()[0]
        self.assertFalse(flow["preserved"])
        st = self.lb.stats()
        self.assertEqual(st["client_address"], "preserve")
        self.assertEqual(st["flows_preserved"], 0)
        self.assertEqual(st["preserve_fallback"], 1)
        if self.routing_in_place():
            self.skipTest("this host has the preserve routing: nothing to say")
        self.assertIn("client_address = preserve cannot work yet", self.lb.read_log())
        chk = subprocess.run([WGLB, "--check", "-c", self.lb.conf], capture_output=True, text=True)
        self.assertEqual(chk.returncode, 1, chk.stdout + chk.stderr)
        self.assertIn("wglb-preserve-routing up", chk.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
