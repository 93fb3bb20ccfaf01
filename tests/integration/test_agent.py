# SPDX-License-Identifier: MIT
"""wg-health as an attacker sees it (issue 13, findings 4 and 5), on
loopback with no WireGuard interface (a request that passes every check
is answered with a signed "err wg_..." from the interface lookup, which
tells it apart from a refusal):

- the agent port: a captured request replayed, sent to another server,
  or replayed after the agent restarts, is refused; a request signed with
  another backend's key (a server broken into) or the master key is
  refused (security finding "agent channel": one key per backend);
- the health port: a thousand silent connections, or many from one
  source, do not shut the probe out; a listener at EMFILE does not spin.
"""
import base64
import ctypes
import hashlib
import hmac
import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from wglbtest import BUILD, wait_until

WG_HEALTH = os.path.join(BUILD, "health", "wg-health")


def free_tcp_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Agent:
    def __init__(self, args, prefix=()):
        self.dir = tempfile.mkdtemp(prefix="wg-health-test-")
        self.err = os.path.join(self.dir, "err")
        self.args, self.prefix = args, list(prefix)
        self.proc = None

    def start(self, ready_port):
        with open(self.err, "ab") as e:
            self.proc = subprocess.Popen(self.prefix + [WG_HEALTH] + self.args,
                                         stdout=subprocess.DEVNULL, stderr=e)

        def up():
            if self.proc.poll() is not None:
                raise AssertionError(f"wg-health exited: {open(self.err).read()}")
            try:
                socket.create_connection(("127.0.0.1", ready_port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(up, 5, "wg-health listening")
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)


def derive(master, name):
    """A backend's agent key, as wglb derives it (crypto_generichash)."""
    return hashlib.blake2b(b"wglb agent key v2\0" + name.encode(), key=master,
                           digest_size=32).digest()


class TestAgentPort(unittest.TestCase):
    NAME = "b2"

    def setUp(self):
        self.master = os.urandom(32)
        self.key = derive(self.master, self.NAME)  # all this agent holds
        self.keyfile = os.path.join(tempfile.mkdtemp(prefix="wg-health-key-"), "agent.key")
        with open(self.keyfile, "w") as f:
            f.write(base64.b64encode(self.key).decode() + "\n")
        self.port = free_tcp_port()
        self.to = f"to {self.NAME} 127.0.0.1:{self.port}"

    def agent(self, name=NAME):
        a = Agent(["--device", f"wgh{os.getpid()}", "--agent-only", "--listen", "127.0.0.1",
                   "--agent-port", str(self.port), "--agent-key", self.keyfile]
                  + (["--name", name] if name else []))
        self.addCleanup(a.stop)
        return a.start(self.port)

    def line(self, words, t=None, key=None):
        body = f"v2 {t if t is not None else int(time.time() * 1000)} {os.urandom(8).hex()} {words}"
        mac = hmac.new(key or self.key, body.encode(), hashlib.sha512).digest()[:32].hex()
        return f"{body} {mac}\n"

    def ask(self, text):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=3)
        s.sendall(text.encode())
        out = b""
        while (d := s.recv(4096)):
            out += d
        s.close()
        return out.decode()

    def test_replay_target_and_restart(self):
        a = self.agent()
        req = self.line(f"{self.to} peers")
        r = self.ask(req)
        self.assertIn(" err wg_", r, "a good request passes every check")
        self.assertTrue(self.ask(req).startswith("refused replay"), "replayed at once")
        r = self.ask(self.line(f"to {self.NAME} 127.0.0.2:{self.port} peers"))
        self.assertIn("err wrong_target", r, "meant for another address")
        r = self.ask(self.line("peers"))
        self.assertIn("err wrong_target", r, "a request that names no target")
        captured = self.line(f"{self.to} rehandshake {base64.b64encode(os.urandom(32)).decode()} "
                             "127.0.0.1:9")
        time.sleep(0.01)  # the capture is older than the restart below
        a.stop()
        self.agent()
        self.assertTrue(self.ask(captured).startswith("refused stale"),
                        "a request signed before the agent started")
        self.assertIn(" err wg_", self.ask(self.line(f"{self.to} peers")), "fresh ones pass")

    def test_key_of_another_backend_is_refused(self):
        """Backend b1's server was broken into: its agent key signs nothing b2 accepts."""
        self.agent()
        peer = base64.b64encode(os.urandom(32)).decode()
        stolen = derive(self.master, "b1")
        for key, who in ((stolen, "b1's key"), (self.master, "the master key"),
                         (os.urandom(32), "a random key")):
            r = self.ask(self.line(f"{self.to} rehandshake {peer} 127.0.0.1:9", key=key))
            self.assertTrue(r.startswith("refused bad_mac"), f"{who}: {r!r}")
        r = self.ask(self.line(f"to b1 127.0.0.1:{self.port} peers"))
        self.assertIn("err wrong_target", r, "b2's own key, but meant for b1")
        # Past every check, the lookup of the (absent) interface answers.
        self.assertIn(" err wg ", self.ask(self.line(f"{self.to} rehandshake {peer} 127.0.0.1:9")),
                      "b2's key passes every check")

    def test_batch_of_rehandshakes(self):
        """Many peers in one signed request: one reply line each, in order;
        a line that is not a key and an address fails alone; a head whose
        count lies is refused whole."""
        self.agent()
        peer = base64.b64encode(os.urandom(32)).decode()

        def batch(lines, n):
            body = f"v2 {int(time.time() * 1000)} {os.urandom(8).hex()} {self.to} rehandshake peers {n}"
            body += "".join(f"\n{x}" for x in lines) + f"\nend {len(lines)}"
            mac = hmac.new(self.key, body.encode(), hashlib.sha512).digest()[:32].hex()
            return f"{body} {mac}\n"
        lines = [f"r {peer} 127.0.0.1:9", "r notakey 127.0.0.1:9", f"r {peer} [::1]:10"]
        r = self.ask(batch(lines, 3))
        self.assertRegex(r, r"^v2 \d+ [0-9a-f]{16} re [0-9a-f]{16} moved\nr wg\nr bad_arguments\nr wg\n"
                         r"end 3 [0-9a-f]{64}\n$", "the (absent) interface answers each peer")
        self.assertTrue(self.ask(batch(lines, 4)).startswith("refused bad_format"), "a lying count")
        self.assertTrue(self.ask(batch(["c 10.0.0.1:1 10.0.0.2:2"], 1)).startswith("refused bad_format"),
                        "a line of another request")

    def told(self, n_lines, end=True):
        """A peers request telling n_lines clients, signed; without its end
        line (and so without its MAC) when end is False."""
        body = f"v2 {int(time.time() * 1000)} {os.urandom(8).hex()} {self.to} peers clients {n_lines}"
        body += "".join(f"\nc 10.0.0.1:{40000 + i} 198.51.100.7:{1000 + i}" for i in range(n_lines))
        if not end:
            return body + "\n"
        body += f"\nend {n_lines}"
        mac = hmac.new(self.key, body.encode(), hashlib.sha512).digest()[:32].hex()
        return f"{body} {mac}\n"

    def test_long_requests_before_their_mac(self):
        """A request telling clients is longer than a line and arrives before
        the MAC that vouches for it: one such buffer per source, and a
        sender trickling lines costs each byte one look."""
        a = self.agent()
        r = self.ask(self.told(300))  # ~11 KB: past the line buffer
        self.assertIn(" err wg_", r, "a long signed request is framed, verified and answered")

        def opened(src, text):
            s = socket.socket()
            s.bind((src, 0))
            s.settimeout(3)
            s.connect(("127.0.0.1", self.port))
            s.sendall(text.encode())
            self.addCleanup(s.close)
            return s

        def closed(s):
            s.settimeout(0.5)
            try:
                return s.recv(64) == b""
            except socket.timeout:
                return False
            except ConnectionResetError:  # closed with our bytes unread
                return True
        partial = self.told(300, end=False)
        first = opened("127.0.0.1", partial)
        second = opened("127.0.0.1", partial)
        other = opened("127.0.0.2", partial)
        wait_until(lambda: closed(second), 5, "a second big buffer from one source is refused")
        self.assertFalse(closed(first), "the source's first long request is still being read")
        self.assertFalse(closed(other), "another source has room of its own")
        # Newlines trickled after a head: each read scans only what is new.
        cpu0 = cpu_seconds(a.proc.pid)
        s = opened("127.0.0.3", self.told(1, end=False).split("\n", 1)[0] + "\n")
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(4000):  # paced, so the agent reads each piece on its own
            try:
                s.send(b"\n" * 200)
            except OSError:
                break  # closed at AP_MAX_MSG: fine
            time.sleep(0.0005)
        spent = cpu_seconds(a.proc.pid) - cpu0
        self.assertLess(spent, 0.5, f"the agent spent {spent:.2f} s of CPU on 800 KB of newlines")
        self.assertIn(" err wg_", self.ask(self.line(f"{self.to} peers")), "still answering")

    def test_name_is_required(self):
        """An agent without its name cannot tell which key it holds: it refuses to start."""
        p = subprocess.run([WG_HEALTH, "--device", "wgh0", "--agent-only", "--agent-port",
                            str(self.port), "--agent-key", self.keyfile],
                           capture_output=True, text=True, timeout=5)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("--name", p.stderr)


class TestHealthPort(unittest.TestCase):
    def setUp(self):
        self.port = free_tcp_port()

    def agent(self, prefix=()):
        a = Agent(["--device", f"wgh{os.getpid()}", "--listen", "127.0.0.1", "--port",
                   str(self.port)], prefix)
        self.addCleanup(a.stop)
        return a.start(self.port)

    def probe(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        out = b""
        while (d := s.recv(4096)):
            out += d
        s.close()
        return out.split(b"\r\n", 1)[0].decode()

    def hold(self, n, src):
        socks = []
        for i in range(n):
            s = socket.socket()
            s.bind((src(i), 0))
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            socks.append(s)
        self.addCleanup(lambda: [s.close() for s in socks])
        return socks

    def test_silent_connections_do_not_shut_the_probe_out(self):
        a = self.agent()
        # 1100 silent connections from 110 addresses (10 each), more than the table holds.
        self.hold(1100, lambda i: f"127.1.0.{i // 10 + 1}")
        time.sleep(0.3)
        self.assertTrue(self.probe().startswith("HTTP/1.1 503"), "the probe got its answer")
        # One source holds at most 64: the rest are closed at once.
        socks = self.hold(100, lambda i: "127.2.0.1")

        def closed():
            n = 0
            for s in socks:
                try:
                    n += s.recv(1, socket.MSG_PEEK) == b""
                except BlockingIOError:
                    pass
                except OSError:
                    n += 1
            return n if n >= 100 - 64 else None
        wait_until(closed, 10, "the connections past 64 from one source closed")
        self.assertTrue(self.probe().startswith("HTTP/1.1 503"))
        a.stop()

    def fresh_netns(self):
        """This thread into a network namespace of its own (wg-health and the
        clients follow it): IPv6 /64s and many sources without touching the
        machine's. Back to the old one at cleanup."""
        libc = ctypes.CDLL(None, use_errno=True)
        old = os.open("/proc/self/ns/net", os.O_RDONLY)
        if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
            os.close(old)
            self.skipTest(f"unshare(CLONE_NEWNET): {os.strerror(ctypes.get_errno())} (needs root)")
        self.addCleanup(lambda: (libc.setns(old, 0x40000000), os.close(old)))
        for cmd in (["ip", "link", "set", "lo", "up"],
                    ["ip", "-6", "addr", "add", "fd00:1::1/128", "dev", "lo", "nodad"],
                    ["ip", "-6", "addr", "add", "fd00:2::1/128", "dev", "lo", "nodad"],
                    # Every address of fd00:64::/64 is local: one host with a /64.
                    ["ip", "-6", "route", "add", "local", "fd00:64::/64", "dev", "lo"]):
            subprocess.run(cmd, check=True)

    def agent_both(self, extra=()):
        """Health port and agent port (its 5 s deadline outlives a flood on a
        loaded machine: what closes a flood connection early is a refusal)."""
        self.aport = free_tcp_port()
        keyfile = os.path.join(tempfile.mkdtemp(prefix="wg-health-key-"), "agent.key")
        with open(keyfile, "w") as f:
            f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
        a = Agent(["--device", f"wgh{os.getpid()}", "--listen", "::", "--port", str(self.port),
                   "--agent-port", str(self.aport), "--agent-key", keyfile, "--name", "b1",
                   *extra])
        self.addCleanup(a.stop)
        return a.start(self.port)

    @staticmethod
    def closed_by_server(socks):
        """How many of socks the server has closed (EOF or reset), without waiting."""
        n = 0
        for s in socks:
            try:
                n += s.recv(1) == b""
            except BlockingIOError:
                pass
            except OSError:
                n += 1
        return n

    def flood(self, n, src, port, family=socket.AF_INET, dst="127.0.0.1"):
        """n idle connections, non-blocking, src(i) the source address of the i-th."""
        socks = []
        for i in range(n):
            s = socket.socket(family)
            s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND: any address of a local route
            s.bind((src(i), 0))
            s.setblocking(False)
            try:
                s.connect((dst, port))
            except BlockingIOError:
                pass
            socks.append(s)
        self.addCleanup(lambda: [s.close() for s in socks])
        return socks

    def probe_from(self, src, family, dst):
        s = socket.socket(family)
        s.settimeout(3)
        s.bind((src, 0))
        s.connect((dst, self.port))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        out = b""
        while (d := s.recv(4096)):
            out += d
        s.close()
        return out.split(b"\r\n", 1)[0].decode()

    def test_one_ipv6_64_is_one_source(self):
        """The attack: one host with a /64 uses 300 of its addresses, one idle
        connection each, to take slots a per-address cap would not stop. The
        /64 must count as one source: all but 64 are closed at once, long
        before the agent port's 5 s deadline could close any, and a prober
        from another /64 is answered meanwhile."""
        self.fresh_netns()
        self.agent_both()
        t0 = time.monotonic()
        socks = self.flood(300, lambda i: f"fd00:64::{i + 1:x}", self.aport, socket.AF_INET6, "fd00:1::1")
        open_now = lambda: len(socks) - self.closed_by_server(socks)  # noqa: E731
        wait_until(lambda: open_now() <= 64 or time.monotonic() - t0 > 4, 6, "flood seen")
        held = open_now()
        self.assertLess(time.monotonic() - t0, 4.5, "measured before any deadline (5 s)")
        self.assertLessEqual(held, 64, f"one /64 holds {held} slots")
        self.assertGreater(held, 0, "the /64 was refused, not timed out")
        self.assertTrue(self.probe_from("fd00:2::1", socket.AF_INET6, "fd00:1::1").startswith("HTTP/1.1 503"),
                        "another source answered while the /64 holds its slots")
        self.assertEqual(open_now(), held, "the flood still held its slots when the probe was answered")

    def test_full_table_never_sheds_the_prober(self):
        """The attack: the prober has connected and sent its request line; before
        the rest of its request arrives, 20 sources open 1100 idle connections,
        more than the table's 1024. Shedding 'the oldest' closed the prober's
        own connection. The prober must be answered on the connection it has."""
        self.fresh_netns()
        self.agent_both()
        prober = socket.create_connection(("127.0.0.1", self.port), timeout=3)
        prober.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        socks = self.flood(1100, lambda i: f"127.1.0.{i % 20 + 1}", self.aport)
        # The table overflowed: 1100 + 1 - 1024 connections were closed for room.
        wait_until(lambda: self.closed_by_server(socks) >= 1100 + 1 - 1024 - 1, 5, "table full")
        if time.monotonic() - t0 >= 0.9:
            self.skipTest("the flood took longer than the probe's own 1 s deadline here: "
                          "its connection may have been closed for that, not shed")
        prober.sendall(b"\r\n")
        out = b""
        try:
            while (d := prober.recv(4096)):
                out += d
        except OSError as e:
            self.fail(f"the prober's connection was shed: {e}")
        self.assertTrue(out.startswith(b"HTTP/1.1 503"), f"the prober got {out[:40]!r}")
        self.assertGreaterEqual(self.closed_by_server(socks), 1100 + 1 - 1024,
                                "the flood, not the prober, made the room")

    def test_emfile_does_not_spin(self):
        a = self.agent(prefix=["prlimit", "--nofile=24:24"])
        self.hold(60, lambda i: f"127.3.0.{i + 1}")  # one each: past the descriptor limit
        time.sleep(0.3)
        t0, c0 = time.monotonic(), cpu_seconds(a.proc.pid)
        time.sleep(1.0)
        cpu = (cpu_seconds(a.proc.pid) - c0) / (time.monotonic() - t0)
        self.assertLess(cpu, 0.25, "wg-health spins at EMFILE")


if __name__ == "__main__":
    unittest.main(verbosity=2)
