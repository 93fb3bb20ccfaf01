# SPDX-License-Identifier: MIT
"""Issue 13, the attacker's side: each finding of the security review as an
attack on the real wglb, asserting what the attacker must NOT get.

The whole file runs in a private network namespace of its own (made at
import: loopback only, nothing leaves it) whose ephemeral port range is 40
ports wide, so port exhaustion takes 40 datagrams instead of 28,000.
Clients bind ports outside that range so that they do not use it up.

- blind confirmation: a backend that answers with cookie replies, a spoofer
  that sends one blind transport datagram after it, never confirmed;
- exhaustion: ports taken by someone else, descriptors at the limit, a
  control listener at EMFILE: new clients still get flows (the oldest
  unconfirmed flow gives way and lends its socket), nothing spins;
- a spoofer spending a victim's handshake budget: the victim proves itself
  with wglb's cookie and gets through;
- WireGuard's cookie exchange at the edge (always / auto under load), mac2
  bound to the source address and port;
- one session index repeated from many sources: one entry, bounded roams.
"""
import ctypes
import os
import socket
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from wglbtest import (Backend, Client, Wglb, config, confirm, initiation, open_cookie,
                      signed_initiation, transport, wait_until, worker_of)

VEC = os.path.join(os.path.dirname(__file__), "..", "unit", "vectors")
with open(os.path.join(VEC, "server.pub")) as f:
    PUB = f.read().strip()
PORT_LO, PORT_HI = 40000, 40039  # the namespace's ephemeral range: 40 ports


def private_netns():
    if os.geteuid() != 0:
        print("SKIP: needs root for a private network namespace", file=sys.stderr)
        sys.exit(77)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
        print(f"SKIP: unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        sys.exit(77)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with open("/proc/sys/net/ipv4/ip_local_port_range", "w") as f:
        f.write(f"{PORT_LO} {PORT_HI}\n")


_next_port = [20000]


def client(lb_port, host="127.0.0.1"):
    """A client on a fixed port outside the ephemeral range."""
    _next_port[0] += 1
    return Client((("127.0.0.1"), lb_port), bind=(host, _next_port[0]))


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CookieBackend(Backend):
    """A WireGuard server under load: answers every initiation with a
    cookie reply (type 3, its receiver = the initiation's sender)."""

    def reply(self, data):
        if len(data) == 148 and data[0] == 1:
            return b"\x03\0\0\0" + data[4:8] + os.urandom(56)
        return None


class Base(unittest.TestCase):
    def start(self, extra, backends=None, prefix=None):
        self.bes = backends or [Backend("b0")]
        self.port = 30000 + os.getpid() % 1000  # outside the ephemeral range
        self.lb = Wglb(config([f"127.0.0.1:{self.port}"], self.bes, balancer_extra=extra,
                              rate_limit=True), prefix=prefix).start()
        return self.lb

    def tearDown(self):
        if not hasattr(self, "lb"):
            return  # skipped before starting
        rc = self.lb.stop()
        for b in self.bes:
            b.close()
        self.assertEqual(rc, 0, self.lb.read_log())

    def client(self, host="127.0.0.1"):
        c = client(self.port, host)
        self.addCleanup(c.close)
        return c


class TestBlindConfirmation(Base):
    """Finding 1: a cookie reply from a loaded backend, then one blind
    transport datagram, used to confirm a spoofed flow for good."""

    def test_cookie_reply_and_blind_transport_never_confirm(self):
        lb = self.start("max_flows = 8\nhandshake_rate = 0\n", [CookieBackend("loaded")])
        spoofers = [self.client(f"127.0.3.{i + 1}") for i in range(20)]
        for i, s in enumerate(spoofers):
            s.send(initiation())
            wait_until(lambda: lb.stats()["messages_out"]["cookie"] >= i + 1 or
                       lb.stats()["drops_in"]["table_full"], 5, "the backend's cookie reply")
            s.send(transport(32))  # blind: it never read the reply
        self.assertFalse([f for f in lb.flows() if f["confirmed"]], "blind sources confirmed")
        self.assertEqual(lb.stats()["flows_confirmed"], 0)
        newcomer = self.client("127.0.4.1")
        m = initiation()
        got, _ = newcomer.roundtrip(m)
        self.assertEqual(got[:4], b"\x03\0\0\0", "the newcomer reached the backend")
        self.assertEqual(lb.stats()["drops_in"]["table_full"], 0)


class TestExhaustion(Base):
    """Finding 2: when no port or descriptor can be had, the oldest
    unconfirmed flow gives way (its socket is reused); a listener at EMFILE
    backs off instead of spinning."""

    def test_ports_taken_by_others(self):
        workers = int(os.environ.get("WGLB_TEST_WORKERS", "1"))
        lb = self.start("handshake_rate = 0\n")
        hog = []  # another program takes all but 6 of the range
        try:
            while True:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind(("127.0.0.1", 0))
                hog.append(s)
        except OSError:
            s.close()
        for s in hog[:6]:
            s.close()
        self.addCleanup(lambda: [s.close() for s in hog])
        # The attack on workers: every blind source on worker 0, which then
        # holds every port left, and the newcomers on the last worker, which
        # has no flow of its own to give way.
        seed = lb.steer_seed()  # the attack as the operator can stage it: root knows the seed
        blind_ips = [ip for ip in (f"127.0.5.{i}" for i in range(1, 255))
                     if worker_of(ip, workers, seed) == 0][:60]
        new_ips = [ip for ip in (f"127.0.6.{i}" for i in range(1, 255))
                   if worker_of(ip, workers, seed) == workers - 1][:5]
        blind = [self.client(ip) for ip in blind_ips]
        for c in blind:  # forged transport from 60 sources: no mac1, no limit
            c.send(transport(40, silent=True))
        wait_until(lambda: lb.stats()["packets_in"] >= 60, 5, "the blind datagrams")
        answered = 0
        for i in range(5):
            # A newcomer retries its initiation as WireGuard does (every
            # 5 s; here every second, three times). With one worker the
            # first is answered. With workers, a worker whose blind flows
            # hold no port asks the others for one: the oldest unconfirmed
            # flow of all workers gives way, and the retry gets in.
            c = self.client(new_ips[i])
            c.sock.settimeout(1)
            m = initiation()
            for _ in range(3):
                try:
                    if c.roundtrip(m)[0] == m:
                        answered += 1
                        break
                except socket.timeout:
                    pass
        st = lb.stats()
        print(f"\nports: 60 blind sources with 6 free ports, {workers} workers: "
              f"{st['flows_evicted']} evicted, {st['drops_in']['no_socket']} refused; "
              f"{answered}/5 newcomers answered", file=sys.stderr)
        self.assertEqual(answered, 5, "real newcomers locked out")
        # One worker: never refused. Workers: at most each newcomer's first
        # initiation, while another worker's flow gives way.
        self.assertLessEqual(st["drops_in"]["no_socket"], 0 if workers == 1 else 5)
        self.assertGreaterEqual(st["flows_evicted"], 55)
        self.assertIn("max_flows 40 (ephemeral ports 40", lb.read_log(), "sized to the ports")

    def test_descriptors_at_the_limit_and_emfile(self):
        lb = self.start("handshake_rate = 0\n", prefix=["prlimit", "--nofile=64:64"])
        for i in range(8):  # clients that never prove anything hold sockets
            c = self.client(f"127.0.7.{200 + i}")
            m = initiation()
            self.assertEqual(c.roundtrip(m)[0], m)
        conns = []
        for _ in range(80):  # control connections until wglb runs out of descriptors
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(lb.sock)
            conns.append(s)
        self.addCleanup(lambda: [s.close() for s in conns])
        time.sleep(0.3)  # let it accept what it can (and hit EMFILE)
        t0, c0 = time.monotonic(), cpu_seconds(lb.proc.pid)
        time.sleep(1.0)
        cpu = (cpu_seconds(lb.proc.pid) - c0) / (time.monotonic() - t0)
        answered = 0
        for i in range(20):  # new clients while no descriptor is free
            c = self.client(f"127.0.7.{i + 1}")
            m = initiation()
            try:
                answered += c.roundtrip(m)[0] == m
            except socket.timeout:
                pass
        for s in conns:
            s.close()
        conns.clear()
        st = wait_until(lambda: lb.stats(), 5, "the control socket again")
        print(f"\nfds: wglb CPU at EMFILE {cpu:.2f} s/s; {answered}/20 new clients answered, "
              f"{st['flows_evicted']} evicted, {st['drops_in']['no_socket']} refused",
              file=sys.stderr)
        self.assertLess(cpu, 0.25, "the control listener spins at EMFILE")
        self.assertEqual(answered, 20)
        self.assertEqual(st["drops_in"]["no_socket"], 0)


class TestSpoofedBudget(Base):
    """Finding 3: initiations spoofed from a victim's address used to spend
    its handshake budget; now the victim proves itself with a cookie."""

    def test_victim_gets_through_with_a_cookie(self):
        lb = self.start(f"server_public_key = {PUB}\nhandshake_rate = 20\nhandshake_burst = 5\n")
        spoof = self.client("127.0.8.1")  # same address as the victim, other port
        for _ in range(50):
            spoof.send(signed_initiation(PUB))
        victim = self.client("127.0.8.1")
        m = signed_initiation(PUB, sender=0x1234)
        got, src = victim.roundtrip(m)
        self.assertEqual(src[1], self.port)
        cookie = open_cookie(PUB, got, m[116:132])
        self.assertIsNotNone(cookie, f"expected wglb's cookie reply, got {got[:8].hex()}")
        self.assertEqual(got[4:8], struct.pack("<I", 0x1234), "receiver = our sender index")
        m2 = signed_initiation(PUB, sender=0x1235, cookie=cookie)
        self.assertEqual(victim.roundtrip(m2)[0], m2, "the proven victim reaches the backend")
        st = lb.stats()
        self.assertGreaterEqual(st["edge"]["mac2_valid"], 1)
        self.assertGreaterEqual(st["drops_in"]["needs_cookie"], 1)


class TestCookies(Base):
    def test_always_mode(self):
        lb = self.start(f"server_public_key = {PUB}\nhandshake_cookies = always\n"
                        "handshake_rate = 0\n")
        c = self.client("127.0.9.1")
        m = signed_initiation(PUB, sender=7)
        reply, _ = c.roundtrip(m)
        cookie = open_cookie(PUB, reply, m[116:132])
        self.assertIsNotNone(cookie)
        self.assertEqual(self.bes[0].count(), 0, "nothing reached the backend without mac2")
        # The cookie is bound to this address and port: another port cannot use it.
        other = self.client("127.0.9.1")
        other.send(signed_initiation(PUB, sender=8, cookie=cookie))
        self.assertEqual(other.sock.recvfrom(2048)[0][:4], b"\x03\0\0\0", "asked again")
        bad = bytearray(signed_initiation(PUB, sender=9, cookie=cookie))
        bad[140] ^= 1  # a wrong mac2
        c.send(bytes(bad))
        self.assertEqual(c.sock.recvfrom(2048)[0][:4], b"\x03\0\0\0")
        m2 = signed_initiation(PUB, sender=10, cookie=cookie)
        self.assertEqual(c.roundtrip(m2)[0], m2)
        self.assertEqual(self.bes[0].count(), 1)
        # Transport from an unknown source, naming no session we carry: no flow.
        blind = self.client("127.0.9.2")
        blind.send(transport(64))
        blind.expect_nothing()
        st = lb.stats()
        self.assertEqual(st["drops_in"]["unproven"], 1)
        self.assertEqual(st["drops_in"]["needs_cookie"], 3)
        self.assertEqual(st["edge"]["cookies_sent"], 3)
        self.assertEqual(st["edge"]["mac2_valid"], 1)
        self.assertEqual(st["edge"]["mac2_invalid"], 2)
        self.assertTrue(st["edge"]["under_load"])
        self.assertEqual(st["flows_active"], 1)

    def test_auto_mode_under_a_flood(self):
        lb = self.start(f"server_public_key = {PUB}\nunder_load_rate = 50\nhandshake_rate = 0\n")
        real = self.client("127.0.10.1")
        idx = confirm_signed(real)
        self.assertFalse(lb.stats()["edge"]["under_load"])
        flood = [self.client(f"127.0.11.{i % 250 + 1}") for i in range(400)]
        for s in flood:
            s.send(signed_initiation(PUB))
        wait_until(lambda: lb.stats()["packets_in"] >= 402, 5, "the flood")
        st = lb.stats()
        reached = self.bes[0].count() - 1
        print(f"\nauto: 400 unproven initiations, under_load_rate 50: {reached} reached the "
              f"backend, {st['edge']['cookies_sent']} cookies", file=sys.stderr)
        self.assertTrue(st["edge"]["under_load"])
        self.assertLessEqual(reached, 60, "load should start after ~50 new sources")
        self.assertGreaterEqual(st["drops_in"]["needs_cookie"], 340)
        m = transport(64, receiver=idx)  # the confirmed client carries on
        self.assertEqual(real.roundtrip(m)[0], m)


def confirm_signed(c):
    """confirm() with a valid-mac1 initiation (server_public_key set)."""
    idx = struct.unpack("<I", os.urandom(4))[0]
    c.roundtrip(signed_initiation(PUB, sender=idx))
    c.roundtrip(transport(48, receiver=idx))
    return idx


class TestIndexRepeats(Base):
    """Finding 6: one known index named from many sources (a client key's
    holder repeating it): bounded roams, one session-index entry."""

    def test_repeated_index_roams_are_bounded(self):
        lb = self.start("handshake_rate = 0\n")
        real = self.client("127.0.12.1")
        idx = confirm(real)
        for i in range(300):
            c = client(self.port, f"127.0.13.{i % 250 + 1}")
            c.send(transport(40, receiver=idx, silent=True))
            c.close()
        wait_until(lambda: lb.stats()["packets_in"] >= 302, 5, "the repeats")
        st = lb.stats()
        self.assertLessEqual(st["flows_roamed"], 4)
        self.assertGreaterEqual(st["drops_in"]["rate_limited"], 295)
        m = transport(64, receiver=idx)
        self.assertEqual(real.roundtrip(m)[0], m, "the real client is unaffected")


if __name__ == "__main__":
    private_netns()
    unittest.main(verbosity=2)
