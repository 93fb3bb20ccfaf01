# SPDX-License-Identifier: MIT
"""Helpers for wglb's integration tests: run the real daemon, echo
backends, WireGuard-shaped datagrams, control-socket calls, polling."""
import json
import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time

BUILD = os.environ.get("WGLB_BUILD", os.path.join(os.path.dirname(__file__), "..", "..", "build"))
WGLB = os.path.join(BUILD, "lb", "wglb")
WGLBCTL = os.path.join(BUILD, "lb", "wglbctl")

SILENT = 0xEE  # byte 8 of a datagram: echo backends do not answer it


def auto_max_flows():
    """max_flows when the config sets none: 65536, or fewer where the
    ephemeral ports or the open-file limit (less 256) allow fewer."""
    import resource
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = map(int, f.read().split())
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    fds = hard - 256 if hard > 256 + 16 else 16
    return min(65536, hi - lo + 1, fds)


def wait_until(cond, timeout=5.0, what="condition"):
    """Poll cond() until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def initiation(sender=None, silent=False):
    b = bytearray(os.urandom(148))
    b[0:4] = b"\x01\x00\x00\x00"
    if sender is not None:
        b[4:8] = struct.pack("<I", sender)
    b[8] = SILENT if silent else 0
    return bytes(b)


def transport(size=64, silent=False, receiver=None):
    b = bytearray(os.urandom(size))
    b[0:4] = b"\x04\x00\x00\x00"
    if receiver is not None:
        b[4:8] = struct.pack("<I", receiver)
    b[8] = SILENT if silent else 0
    return bytes(b)


def confirm(c, size=48):
    """Prove client c receives: a handshake through an echo backend (the
    echo is a backend handshake naming our sender index), then data naming
    that index, as a real client names the backend's. Returns the index."""
    idx = struct.unpack("<I", os.urandom(4))[0]
    c.roundtrip(initiation(sender=idx))
    c.roundtrip(transport(size, receiver=idx))
    return idx


def free_port(family=socket.AF_INET):
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
        return s.getsockname()[1]


SO_RCVBUFFORCE, SO_SNDBUFFORCE = 33, 32


def big_buffers(sock, size=8 << 20):
    """Bursts in the tests must not overflow the harness's own sockets."""
    for force, plain in ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)  # root: past rmem_max
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, plain, size)


class Backend:
    """A UDP echo server that records what it received and from where."""

    def __init__(self, name, family=socket.AF_INET, host=None):
        self.name = name
        self.family = family
        host = host or ("::1" if family == socket.AF_INET6 else "127.0.0.1")
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        big_buffers(self.sock)
        self.sock.bind((host, 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.host = host
        self.received = []  # (source address, payload)
        self.lock = threading.Lock()
        self.running = True
        self.mute = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def address(self):
        if self.family == socket.AF_INET6:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"

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
            out = None if self.mute else self.reply(data)
            if out is not None:
                try:
                    self.sock.sendto(out, src)
                except OSError:
                    pass

    def reply(self, data):
        """What to answer a datagram with: an echo, unless marked silent."""
        return None if len(data) > 8 and data[8] == SILENT else data

    def count(self):
        with self.lock:
            return len(self.received)

    def sources(self):
        with self.lock:
            return {src for src, _ in self.received}

    def payloads(self):
        with self.lock:
            return [d for _, d in self.received]

    def payloads_from(self):
        with self.lock:
            return list(self.received)

    def close(self):
        self.running = False
        self.sock.close()
        self.thread.join(1)


class LoopbackLb:
    """A unittest.TestCase mixin: wglb on loopback (family, host) in front
    of echo backends named backend_names, started for each test."""
    family = socket.AF_INET
    host = "127.0.0.1"
    backend_names = ("a", "b", "c")
    balancer_extra = "max_flows = 64\n"

    def lb_listen(self, port):
        return f"[{self.host}]:{port}" if self.family == socket.AF_INET6 else f"{self.host}:{port}"

    def setUp(self):
        self.backends = [Backend(n, self.family) for n in self.backend_names]
        self.port = free_port(self.family)
        self.lb = Wglb(config([self.lb_listen(self.port)], self.backends,
                              balancer_extra=self.balancer_extra))
        self.lb.start()
        self.addr = (self.host, self.port)

    def tearDown(self):
        rc = self.lb.stop()
        for b in self.backends:
            b.close()
        self.assertEqual(rc, 0, self.lb.read_log())

    def client(self):
        c = Client(self.addr, self.family)
        self.addCleanup(c.close)
        return c


def worker_of(ip, n, seed):
    """The worker that serves an IPv4 client address, by the steering
    program's arithmetic (lb/core/workers.c, workers_steer_prog) with the running
    wglb's random seed (Wglb.steer_seed: key << 32 | multiplier): the
    address XOR key, times the multiplier (odd), XOR itself shifted right
    16, times the multiplier again, its top 16 bits, modulo n."""
    a = int.from_bytes(socket.inet_aton(ip), "big")
    key, mult = seed >> 32, (seed & 0xFFFFFFFF) | 1
    x = ((a ^ key) * mult) & 0xFFFFFFFF
    x = ((x ^ (x >> 16)) * mult) & 0xFFFFFFFF
    return (x >> 16) % n


def with_test_workers(text):
    """The suites run again with WGLB_TEST_WORKERS=2 (tests/meson.build):
    the first config of every wglb a test starts gets that many workers, at
    the end of [balancer] (the lines a test expects in error messages stay
    put), and max_flows times as many, since a test's clients all send from
    one address and so reach one worker, whose share then is what the test
    meant. Reloaded configs are the test's own."""
    workers = os.environ.get("WGLB_TEST_WORKERS")
    if not workers or "\nworkers =" in text or not text.startswith("[balancer]\n"):
        return text
    n = int(workers)
    text = re.sub(r"^max_flows = (\d+)$", lambda m: f"max_flows = {int(m.group(1)) * n}", text,
                  flags=re.M)
    end = text.find("\n[", len("[balancer]"))
    end = len(text) if end < 0 else end + 1
    return text[:end] + f"workers = {n}\n" + text[end:]


class Wglb:
    def __init__(self, config_text, name="wglb", prefix=None):
        self.prefix = prefix or []
        self.dir = tempfile.mkdtemp(prefix="wglb-test-")
        self.conf = os.path.join(self.dir, "wglb.conf")
        self.sock = os.path.join(self.dir, "control.sock")
        self.log = os.path.join(self.dir, "wglb.log")
        self.write_config(with_test_workers(config_text))
        self.proc = None

    def write_config(self, text):
        text = text.replace("@CONTROL@", self.sock)
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, self.conf)

    def start(self):
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(self.prefix + [WGLB, "-c", self.conf], stdout=self.logf,
                                     stderr=self.logf)
        wait_until(lambda: self.proc.poll() is not None or os.path.exists(self.sock), 5,
                   "control socket")
        if self.proc.poll() is not None:
            raise AssertionError(f"wglb exited {self.proc.returncode}: {self.read_log()}")
        return self

    def read_log(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")

    def ctl(self, cmd, timeout=5):
        """Send one command; return the reply without the final blank line."""
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        # With a timeout set, a Unix connect does not wait for room in a full
        # listen backlog (a burst of connections wglb has not accepted yet):
        # it fails at once with EAGAIN, where wglbctl's blocking connect
        # would wait. Wait like it, within the same timeout. (ECONNREFUSED is
        # not retried: wglb listens before the path appears.)
        deadline = time.monotonic() + timeout
        while True:
            try:
                s.connect(self.sock)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        s.sendall(cmd.encode() + b"\n")
        buf = b""
        while not (buf.endswith(b"\n\n") or buf == b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        s.close()
        return buf.decode()[:-1]

    def json(self, cmd):
        return json.loads(self.ctl(cmd + " json"))

    def stats(self):
        return self.json("show stats")

    def steer_seed(self):
        """The seed this wglb drew for steering clients to workers (0 with one)."""
        return int(self.json("show info")["steer_seed"], 16)

    def flows(self):
        return self.json("show flows")["flows"]

    def backends(self):
        return {b["name"]: b for b in self.json("show backends")["backends"]}

    def hup(self):
        self.proc.send_signal(signal.SIGHUP)

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "logf", None):
            self.logf.close()
        return self.proc.returncode if self.proc else None


class Client:
    def __init__(self, lb_addr, family=socket.AF_INET, bind=None):
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        big_buffers(self.sock)
        if bind:
            self.sock.bind(bind)
        self.sock.settimeout(2)
        self.lb = lb_addr

    @property
    def port(self):
        return self.sock.getsockname()[1]

    def send(self, data):
        self.sock.sendto(data, self.lb)

    def roundtrip(self, data):
        self.send(data)
        got, src = self.sock.recvfrom(65535)
        return got, src

    def expect_nothing(self, wait=0.3):
        self.sock.settimeout(wait)
        try:
            got = self.sock.recvfrom(65535)
        except socket.timeout:
            return True
        finally:
            self.sock.settimeout(2)
        raise AssertionError(f"unexpected datagram {got!r}")

    def close(self):
        self.sock.close()


def config(listen, backends, extra="", balancer_extra="", rate_limit=False):
    # Every test client sends from 127.0.0.1: WireGuard's per-source
    # handshake limit (20/s) would throttle them together, so tests that are
    # not about it switch it off.
    text = f"[balancer]\ncontrol = @CONTROL@\n{balancer_extra}"
    if not rate_limit:
        text += "handshake_rate = 0\n"
    for l in listen:
        text += f"listen = {l}\n"
    for b in backends:
        text += f"\n[backend {b.name}]\naddress = {b.address}\n"
    return text + extra


# --- The client half of WireGuard's macs and cookies (whitepaper 5.4.4, 5.4.7) ---

def _b2s(data, key=b"", size=16):
    import hashlib
    return hashlib.blake2s(data, key=key, digest_size=size).digest()


def wg_keys(server_pub_b64):
    """(mac1 key, cookie key) from the servers' base64 public key."""
    import base64
    pub = base64.b64decode(server_pub_b64)
    return _b2s(b"mac1----" + pub, size=32), _b2s(b"cookie--" + pub, size=32)


def signed_initiation(server_pub_b64, sender=None, cookie=None, size=148):
    """An initiation (or, size 92, a response) with a valid mac1 and, given
    the cookie from a cookie reply, a valid mac2; otherwise mac2 is zero."""
    k1, _ = wg_keys(server_pub_b64)
    m = bytearray(os.urandom(size))
    m[0:4] = (b"\x01" if size == 148 else b"\x02") + b"\0\0\0"
    if sender is not None:
        m[4:8] = struct.pack("<I", sender)
    m[8] = 0
    m[size - 32:size - 16] = _b2s(bytes(m[:size - 32]), key=k1)
    m[size - 16:] = _b2s(bytes(m[:size - 16]), key=cookie) if cookie else bytes(16)
    return bytes(m)


_sodium = None


def open_cookie(server_pub_b64, reply, mac1):
    """Decrypt a cookie reply as a WireGuard client does (XChaCha20-Poly1305,
    the cookie key, our last mac1 as associated data); None if it fails."""
    import ctypes
    global _sodium
    if _sodium is None:
        _sodium = ctypes.CDLL("libsodium.so.23")
        assert _sodium.sodium_init() >= 0
    if len(reply) != 64 or reply[0:4] != b"\x03\0\0\0":
        return None
    _, key = wg_keys(server_pub_b64)
    out = ctypes.create_string_buffer(16)
    outlen = ctypes.c_ulonglong(0)
    ct = reply[32:64]
    r = _sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
        out, ctypes.byref(outlen), None, ct, ctypes.c_ulonglong(len(ct)), mac1,
        ctypes.c_ulonglong(len(mac1)), reply[8:32], key)
    return out.raw if r == 0 and outlen.value == 16 else None


def seal_cookie(server_pub_b64, msg, cookie):
    """The cookie reply a WireGuard server under load sends to handshake msg:
    cookie sealed under the cookie key, msg's mac1 as associated data."""
    import ctypes
    global _sodium
    if _sodium is None:
        _sodium = ctypes.CDLL("libsodium.so.23")
        assert _sodium.sodium_init() >= 0
    _, key = wg_keys(server_pub_b64)
    nonce = os.urandom(24)
    mac1 = msg[len(msg) - 32:len(msg) - 16]
    out = ctypes.create_string_buffer(32)
    outlen = ctypes.c_ulonglong(0)
    r = _sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        out, ctypes.byref(outlen), cookie, ctypes.c_ulonglong(16), mac1, ctypes.c_ulonglong(16),
        None, nonce, key)
    assert r == 0 and outlen.value == 32
    return b"\x03\0\0\0" + msg[4:8] + nonce + out.raw
