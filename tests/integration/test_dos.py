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
import signal
import socket
import struct
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from wglbtest import (Backend, Client, Wglb, _b2s, config, confirm, initiation, open_cookie,
                      seal_cookie, signed_initiation, transport, wait_until, worker_of)

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


class TestNoFlowMessages(Base):
    """A response or a cookie reply only answers a message sent on a flow
    (the backend's initiation, the backend's cookie reply's trigger): from a
    source with no flow it opens nothing, in every cookie mode. A type-3
    datagram used to open a flow past every edge check: no mac1, no budget,
    not counted as load."""

    def flood(self, mode):
        lb = self.start(f"server_public_key = {PUB}\nhandshake_cookies = {mode}\n"
                        "max_flows = 1024\nhandshake_rate = 0\n")
        sent = 0
        for i in range(2000):  # 250 addresses x 8 ports, each sends once and never reads
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((f"127.0.14.{i % 250 + 1}", 21000 + i // 250))
                if i % 2:
                    s.sendto(b"\x03\0\0\0" + os.urandom(60), ("127.0.0.1", self.port))
                else:  # a response with a valid mac1: anyone with the public key
                    s.sendto(signed_initiation(PUB, size=92), ("127.0.0.1", self.port))
                sent += 1
            finally:
                s.close()
        st = wait_until(lambda: (lambda s: s if s["packets_in"] >= sent else None)(lb.stats()),
                        10, "the flood")
        print(f"\nno flow, cookies {mode}: {sent} responses and cookie replies: "
              f"{st['flows_active']} flows, {st['drops_in'].get('no_flow')} dropped as no_flow",
              file=sys.stderr)
        self.assertEqual(st["flows_active"], 0, "a response or cookie reply opened a flow")
        self.assertEqual(st["flows_new"], 0)
        self.assertEqual(self.bes[0].count(), 0, "something reached the backend")
        self.assertEqual(st["drops_in"]["no_flow"], sent)
        self.assertEqual(st["edge"]["cookies_sent"], 0, "answered a spoofer")
        # A real client still gets in, and its cookie reply on its flow passes.
        c = self.client("127.0.15.1")
        idx = confirm_signed(c)
        m = b"\x03\0\0\0" + struct.pack("<I", idx) + os.urandom(56)
        c.send(m)
        wait_until(lambda: lb.stats()["messages_in"]["cookie"] >= 1, 5, "the cookie reply forwarded")

    def test_cookies_always(self):
        self.flood("always")

    def test_cookies_auto(self):
        self.flood("auto")

    def test_cookies_off(self):
        self.flood("off")


class TestDepartedClients(Base):
    """Anyone who knows a departed client's address and port can keep its
    confirmed flow alive with well-formed transport. Only the backend's
    answers show a live session: a confirmed flow whose backend said
    nothing for backend_silence seconds gives way to newcomers again."""

    def test_silent_confirmed_flows_give_way(self):
        workers = int(os.environ.get("WGLB_TEST_WORKERS", "1"))
        lb = self.start("max_flows = 8\nhandshake_rate = 0\nbackend_silence = 2\n")
        cap = lb.json("show info")["max_flows"] // workers  # each worker's table
        # Everyone on worker 0, whose table they fill.
        seed = lb.steer_seed()
        ips = [ip for ip in (f"127.0.16.{i}" for i in range(1, 255)) if worker_of(ip, workers, seed) == 0]
        departed = [self.client(ip) for ip in ips[:cap]]
        idx = [confirm(c) for c in departed]
        self.assertEqual(lb.stats()["flows_confirmed"], cap)
        self.bes[0].mute = True  # the clients left: their sessions are dead at the server
        newcomer = self.client(ips[cap])
        newcomer.send(initiation(silent=True))
        wait_until(lambda: lb.stats()["drops_in"]["table_full"] >= 1, 5,
                   "a full table of confirmed flows refusing the newcomer")
        # The attacker keeps every dead flow alive with datagrams it can
        # forge (their index too), and never hears an answer.
        def demoted():
            for c, i in zip(departed, idx):
                c.send(transport(40, receiver=i))
            return lb.stats()["flows_demoted"] >= cap
        wait_until(demoted, 10, "the silent flows demoted")
        for c, i in zip(departed, idx):  # naming the old index confirms nothing now
            c.send(transport(40, receiver=i))
        wait_until(lambda: lb.stats()["packets_in"] >= 3 * cap + 1 + 2 * cap, 5, "the forgeries")
        # The backend has read every forgery wglb sent on before it answers
        # again: an echo of a late one would reach whoever holds that
        # flow's socket now (an evicted flow's socket is the newcomer's).
        wait_until(lambda: self.bes[0].count() >= lb.stats()["forwarded_in"], 5,
                   "the backend read what was forwarded")
        self.bes[0].mute = False
        m = initiation()
        got, _ = newcomer.roundtrip(m)
        self.assertEqual(got, m, "the newcomer got in")
        st = lb.stats()
        self.assertEqual(st["flows_confirmed"], cap, "a forged index confirmed a demoted flow again")
        self.assertGreaterEqual(st["flows_evicted"], 1)
        self.assertEqual(st["flows_active"], cap)


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
        workers = int(os.environ.get("WGLB_TEST_WORKERS", "1"))
        lb = self.start("handshake_rate = 0\n", prefix=["prlimit", "--nofile=64:64"])
        # Clients that never prove anything hold sockets, as many on each
        # worker (the steering seed is random): a newcomer's own worker has
        # an unconfirmed flow to give way. (Where it has none, the flow of
        # another worker gives way at its retry: test_ports_taken_by_others.)
        seed = lb.steer_seed()
        holders = [ip for w in range(workers) for ip in
                   [ip for ip in (f"127.0.7.{200 + i}" for i in range(50))
                    if worker_of(ip, workers, seed) == w][:8 // workers]]
        for ip in holders:
            c = self.client(ip)
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
    """confirm() with a valid-mac1 initiation (server_public_key set),
    proving the source with wglb's cookie when it asks for one."""
    idx = struct.unpack("<I", os.urandom(4))[0]
    m = signed_initiation(PUB, sender=idx)
    got, _ = c.roundtrip(m)
    if got[:4] == b"\x03\0\0\0" and got != m:
        c.roundtrip(signed_initiation(PUB, sender=idx, cookie=open_cookie(PUB, got, m[116:132])))
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

    def test_forged_roam_cannot_take_the_index(self):
        """A forged roam of a known index used to take the session-index
        entry, and its expiry removed it: the real client's next NAT change
        then went by Maglev instead of to its session."""
        lb = self.start("handshake_rate = 0\nflow_idle_timeout = 2\n")
        real = self.client("127.0.18.1")
        idx = confirm(real)
        forger = self.client("127.0.18.2")
        forger.send(transport(40, receiver=idx, silent=True))
        wait_until(lambda: lb.stats()["flows_roamed"] == 1, 5, "the forged roam")

        def forger_gone():  # the real client stays active meanwhile
            real.roundtrip(transport(40, receiver=idx))
            return lb.stats()["flows_expired"] >= 1
        wait_until(forger_gone, 10, "the forged flow's expiry")
        self.assertEqual(lb.stats()["flows_active"], 1)
        moved = self.client("127.0.18.3")  # the real client's NAT changed
        m = transport(64, receiver=idx)
        self.assertEqual(moved.roundtrip(m)[0], m)
        self.assertEqual(lb.stats()["flows_roamed"], 2, "the real client lost its session's index")

    def test_forged_initiation_keeps_the_server_initiated_mark(self):
        """A session the backend initiated is rekeyed by the backend only,
        so a drain moves it (the agent); a forged initiation from the
        client's address used to clear that mark."""
        lb = self.start("handshake_rate = 0\n")
        c = self.client("127.0.19.1")
        c.roundtrip(initiation())  # the echo is the backend's initiation on this flow
        self.assertTrue(lb.flows()[0]["server_initiated"])
        self.bes[0].mute = True  # the backend cannot read a forgery: it never answers
        c.send(initiation())
        wait_until(lambda: self.bes[0].count() == 2, 5, "the forgery at the backend")
        self.assertTrue(lb.flows()[0]["server_initiated"], "a forged initiation cleared it")
        self.bes[0].mute = False
        r = b"\x02\0\0\0" + os.urandom(88)  # echoed: the backend answers a client's initiation
        self.assertEqual(c.roundtrip(r)[0], r)
        self.assertFalse(lb.flows()[0]["server_initiated"], "the backend's response clears it")

UDP_SEGMENT = 103


def gso_send(sock, segs, addr):
    """One UDP GSO send: on loopback it reaches wglb's UDP_GRO listener as
    one train (test_gro.py), as a NIC's GRO would hand it over."""
    sock.sendmsg([b"".join(segs)], [(socket.SOL_UDP, UDP_SEGMENT, struct.pack("H", len(segs[0])))],
                 0, addr)


class TestCookieReplies(Base):
    """Cookie replies to GRO trains of initiations (handshake_cookies =
    always): they used to take one send group each, so ~64 trains in one
    batch took all 4096 and forwarding in that batch failed as send_error;
    and wglb answered every initiation spoofed "from" a victim."""

    def test_trains_of_initiations_leave_forwarding_alone(self):
        # Four listeners: a batch takes up to 32 receives from each (the
        # kernel's multishot retry limit); 90 trains on three of them fill
        # it past 64 trains before the real client's data on the fourth.
        self.port = 30000 + os.getpid() % 1000
        ports = [self.port + i for i in range(4)]
        self.bes = [Backend("b0")]
        self.lb = lb = Wglb(config([f"127.0.0.1:{p}" for p in ports], self.bes,
                                   balancer_extra=f"server_public_key = {PUB}\n"
                                   "handshake_cookies = always\nudp_gro = on\n")).start()
        real = client(ports[3], "127.0.14.1")  # on the listener the batch reads last
        self.addCleanup(real.close)
        m = signed_initiation(PUB, sender=1)
        cookie = open_cookie(PUB, real.roundtrip(m)[0], m[116:132])
        m = signed_initiation(PUB, sender=2, cookie=cookie)
        self.assertEqual(real.roundtrip(m)[0], m, "the real client passed the edge")
        data = [transport(1200, receiver=2, silent=True) for _ in range(40)]
        trains = []
        for i in range(120):  # 120 sources x 64 initiations, a train each
            s = self.client(f"127.0.15.{i + 1}")
            trains.append((s, [signed_initiation(PUB) for _ in range(64)]))
        # Stop wglb so that everything waits in its socket and is taken in
        # one batch when it runs again: the trains, then the real traffic.
        before = lb.stats()
        lb.proc.send_signal(signal.SIGSTOP)
        try:
            for i, (s, t) in enumerate(trains[:90]):
                gso_send(s.sock, t, ("127.0.0.1", ports[i % 3]))
            for d in data:
                real.send(d)
            for s, t in trains[90:]:
                gso_send(s.sock, t, ("127.0.0.1", ports[3]))
        finally:
            lb.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: lb.stats()["packets_in"] - before["packets_in"] >= 120 * 64 + 40, 10,
                   "the trains and the data")
        wait_until(lambda: self.bes[0].count() >= 1 + 40 or
                   lb.stats()["drops_in"]["send_error"], 5, "the data at the backend")
        st = lb.stats()
        self.assertEqual(st["drops_in"]["send_error"], 0, "forwarding starved by cookie replies")
        self.assertEqual(self.bes[0].count(), 1 + 40, "every data datagram forwarded")
        # Each reply counted as needs_cookie goes out (no silent loss).
        wait_until(lambda: lb.stats()["edge"]["cookies_sent"] - before["edge"]["cookies_sent"] >=
                   lb.stats()["drops_in"]["needs_cookie"] - before["drops_in"]["needs_cookie"],
                   5, "the replies' sends to complete")
        st = lb.stats()
        self.assertGreaterEqual(st["edge"]["cookies_sent"] - before["edge"]["cookies_sent"], 120,
                                "each train answered")
        self.assertEqual(st["drops_out"]["send_error"], 0, "a reply's send failed")
        # A train's replies (one GSO send of 64-byte segments) arrive as
        # cookie replies, each one opened with its own initiation's mac1.
        s, t = trains[0]
        mac1 = {m[4:8]: m[116:132] for m in t}
        got = [s.sock.recvfrom(2048)[0] for _ in range(50)]
        self.assertTrue(all(open_cookie(PUB, r, mac1[r[4:8]]) for r in got))
        # Every initiation is accounted for: answered, or unanswered by a named counter.
        # (Deltas of all three: the real client's initiation, retried by
        # roundtrip() on a slow machine, may have been capped before.)
        self.assertEqual(sum(st["drops_in"][k] - before["drops_in"][k]
                             for k in ("needs_cookie", "cookie_capped", "cookie_unsent")),
                         120 * 64)

    def test_spoofed_victim_gets_a_bounded_number_of_replies(self):
        lb = self.start(f"server_public_key = {PUB}\nhandshake_cookies = always\n"
                        "handshake_rate = 0\n")
        # The spoofer sends "from" eight of the victim's ports; the
        # sockets bound there are the victim, counting what reaches it.
        victim = [self.client("127.0.16.1") for _ in range(8)]
        for i in range(1000):
            victim[i % 8].send(signed_initiation(PUB))
        wait_until(lambda: lb.stats()["packets_in"] >= 1000, 5, "the spoofed initiations")
        st = lb.stats()
        got = 0
        for s in victim:
            s.sock.settimeout(0.2)
            try:
                while True:
                    s.sock.recvfrom(2048)
                    got += 1
            except socket.timeout:
                pass
        # Burst 50, then 20 a second, for the address as a whole.
        self.assertLessEqual(st["edge"]["cookies_sent"], 80, "replies reflected at the victim")
        self.assertLessEqual(got, 80)
        self.assertGreaterEqual(st["drops_in"]["cookie_capped"], 900)
        self.assertEqual(self.bes[0].count(), 0)


class LoadedServer(Backend):
    """A WireGuard server under load, as far as cookies go (whitepaper
    5.4.7): an initiation without a valid mac2 under its own secret gets
    its own cookie reply, bound to the source it sees (wglb's upstream
    socket); one with a valid mac2 is accepted (counted: this stand-in
    holds no private key, so no handshake follows)."""

    def __init__(self, name):
        self.secret = os.urandom(32)
        self.accepted = 0
        self.cookies = 0
        super().__init__(name)

    def _run(self):
        while self.running:
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.received.append((src, data))
            if len(data) != 148 or data[0] != 1:
                continue
            cookie = _b2s(socket.inet_aton(src[0]) + struct.pack(">H", src[1]), key=self.secret)
            if data[132:] == _b2s(data[:132], key=cookie):
                self.accepted += 1
                continue
            self.cookies += 1
            self.sock.sendto(seal_cookie(PUB, data, cookie), src)


class TestCookiePingPong(Base):
    """wglb and its backend both under load, each with its own cookie: a
    real wireguard-go client carried wglb's cookie to the backend (which
    rejected it and sent its own), then the backend's to wglb (which
    rejected it and sent its own), and so on: it never got through. Now
    wglb leaves the judging to the backend once the backend speaks cookies
    on a flow whose source passed wglb's edge."""

    def test_real_client_gets_through_both_cookies(self):
        if subprocess.run(["which", "wireguard-go"], capture_output=True).returncode:
            self.skipTest("needs wireguard-go")
        be = LoadedServer("loaded")
        lb = self.start(f"server_public_key = {PUB}\nhandshake_cookies = always\n"
                        "handshake_rate = 0\n", [be])
        name = f"wgpp{os.getpid() % 100000}"
        wg = subprocess.Popen(["wireguard-go", "-f", name], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        self.addCleanup(wg.wait)
        self.addCleanup(wg.terminate)
        wait_until(lambda: os.path.exists(f"/var/run/wireguard/{name}.sock"), 5, "wireguard-go")
        key = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout
        kf = os.path.join(lb.dir, "client.key")
        with open(os.open(kf, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(key)
        subprocess.run(["wg", "set", name, "private-key", kf, "peer", PUB, "endpoint",
                        f"127.0.0.1:{self.port}", "allowed-ips", "10.99.0.1/32"], check=True)
        subprocess.run(["ip", "addr", "add", "10.99.0.2/24", "dev", name], check=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        # From 0 to a value: wireguard-go sends a keepalive at once, which
        # starts a handshake; it retries every 5 s (REKEY_TIMEOUT).
        subprocess.run(["wg", "set", name, "peer", PUB, "persistent-keepalive", "1"], check=True)
        try:
            wait_until(lambda: be.accepted, 17, "an initiation the backend accepts")
        finally:
            st = lb.stats()
            print(f"\nping-pong: backend saw {be.count()} initiations, accepted {be.accepted}, "
                  f"sent {be.cookies} cookie replies; wglb sent {st['edge']['cookies_sent']}, "
                  f"mac2 valid {st['edge']['mac2_valid']} invalid {st['edge']['mac2_invalid']}",
                  file=sys.stderr)


if __name__ == "__main__":
    private_netns()
    unittest.main(verbosity=2)
