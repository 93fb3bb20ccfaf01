# SPDX-License-Identifier: MIT
"""The kernel fast path (fast_path = tc) on veths between network
namespaces: a client's, the balancer's and a backend's, joined by plain
veth pairs (no bridge), so the program at tc ingress of the balancer's two
interfaces sees every datagram. Once a handshake has confirmed a flow, its
transport goes through in the kernel both ways: wglb's own receives do not
move, the program's counts do and are folded into wglb's counters; a
handshake still goes up; idle expiry does not close a flow the kernel
carries; a re-pin (disable the backend) and a backend's new address take
effect on the next datagram; a reload's narrower allow list and a
demotion (backend_silence) send the flow's transport up again; a program a
killed wglb left is removed at the next start; with fast_path = off
nothing is attached. Every case over IPv4 and IPv6.

Root only; exits 77 with the reason when namespaces, BPF or tc are not to
be had, or when this wglb was built without the fast path."""
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
from wglbtest import WGLB, Backend, Client, Wglb, initiation, transport, wait_until

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)
TAG = str(os.getpid() % 100000)
NS = {k: f"wglbfp-{k}-{TAG}" for k in ("c", "l", "b")}
IF = {k: f"fp{k}{TAG}" for k in ("c", "l1", "l2", "b")}  # at most 15 characters
CL_IP, LB1_IP, LB2_IP, BE_IP = "10.77.1.2", "10.77.1.1", "10.77.2.1", "10.77.2.2"
CL6, LB1_6, LB2_6, BE6 = "fd77:1::2", "fd77:1::1", "fd77:2::1", "fd77:2::2"
FP_HANDLE = "handle 0x5767"  # the loader's filter (lb/fastpath/fastpath.c)


def skip(why):
    print(f"SKIP: {why}", file=sys.stderr)
    sys.exit(77)


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def in_ns(ns, *args, check=True):
    return sh("ip", "netns", "exec", NS[ns], *args, check=check)


class netns:
    """Sockets made inside are the namespace's for their whole life."""

    def __init__(self, key):
        self.path = f"/run/netns/{NS[key]}"

    def __enter__(self):
        self.old = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open(self.path, os.O_RDONLY)
        rc = libc.setns(fd, CLONE_NEWNET)
        os.close(fd)
        if rc != 0:
            raise OSError(ctypes.get_errno(), "setns")

    def __exit__(self, *exc):
        libc.setns(self.old, CLONE_NEWNET)
        os.close(self.old)


def topology():
    for n in NS.values():
        sh("ip", "netns", "add", n)
    sh("ip", "link", "add", IF["c"], "netns", NS["c"], "type", "veth", "peer", "name", IF["l1"],
       "netns", NS["l"])
    sh("ip", "link", "add", IF["l2"], "netns", NS["l"], "type", "veth", "peer", "name", IF["b"],
       "netns", NS["b"])
    for ns, ifname, addr in (("c", IF["c"], CL_IP), ("l", IF["l1"], LB1_IP),
                             ("l", IF["l2"], LB2_IP), ("b", IF["b"], BE_IP)):
        in_ns(ns, "ip", "addr", "add", addr + "/24", "dev", ifname)
    for ns, ifname, addr in (("c", IF["c"], CL6), ("l", IF["l1"], LB1_6),
                             ("l", IF["l2"], LB2_6), ("b", IF["b"], BE6)):
        in_ns(ns, "ip", "-6", "addr", "add", addr + "/64", "dev", ifname, "nodad")
        in_ns(ns, "ip", "link", "set", ifname, "up")
        in_ns(ns, "ip", "link", "set", "lo", "up")
    # The program's FIB lookup is a forwarding lookup from the ingress.
    in_ns("l", "sysctl", "-qw", "net.ipv4.ip_forward=1")
    in_ns("l", "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")


def teardown():
    for n in NS.values():
        sh("ip", "netns", "del", n, check=False)


def filters(ifname):
    return in_ns("l", "tc", "filter", "show", "dev", ifname, "ingress", check=False).stdout


class FastPath(unittest.TestCase):
    family = socket.AF_INET
    listen = (LB1_IP, 51820)
    lb2, be, cl_net, other_net = LB2_IP, BE_IP, "10.77.1.0/24", "10.99.0.0/16"

    def setUp(self):
        with netns("b"):
            self.b1 = Backend("b1", self.family, host=self.be)
            self.b2 = Backend("b2", self.family, host=self.be)
        self.addCleanup(self.b1.close)
        self.addCleanup(self.b2.close)

    def conf(self, mode="tc", backends=(), extra=""):
        h, port = self.listen
        text = "[balancer]\ncontrol = @CONTROL@\nhandshake_rate = 0\n"
        text += f"listen = {f'[{h}]' if ':' in h else h}:{port}\nfast_path = {mode}\nflow_idle_timeout = 2\n"
        text += extra
        for b in backends:
            text += f"\n[backend {b.name}]\naddress = {b.address}\n"
        return text

    def reload(self, w, text):
        n = w.read_log().count("reloaded:")
        w.write_config(text)
        w.hup()
        wait_until(lambda: w.read_log().count("reloaded:") > n, 5, "the reload")

    def kernel_carries(self, w, c, idx, be):
        """One transport round trip, through the kernel both ways."""
        before = w.stats()
        d = transport(60, receiver=idx)
        got, src = c.roundtrip(d)
        self.assertEqual((got, src[:2]), (d, self.listen))
        self.assertEqual(be.payloads()[-1], d)
        wait_until(lambda: w.stats()["fast_path_packets_out"] > before["fast_path_packets_out"],
                   5, "the round trip counted by the program")
        self.assertEqual(w.stats()["receives_in"], before["receives_in"])

    def start(self, mode="tc", backends=None, extra=""):
        text = self.conf(mode, backends or [self.b1], extra)
        w = Wglb(text, prefix=["ip", "netns", "exec", NS["l"]])
        w.start()
        self.addCleanup(w.stop)
        return w

    def client(self):
        with netns("c"):
            c = Client(self.listen, self.family)
        self.addCleanup(c.close)
        return c

    def confirm(self, c):
        """A handshake through the echo backend (its echo is a backend
        handshake naming our index), then transport naming that index."""
        idx = struct.unpack("<I", os.urandom(4))[0]
        c.roundtrip(initiation(sender=idx))
        got, src = c.roundtrip(transport(48, receiver=idx))
        self.assertEqual(src[:2], self.listen)
        return idx

    def one_flow(self, w):
        flows = w.flows()
        self.assertEqual(len(flows), 1, flows)
        return flows[0]

    def test_transport_in_kernel(self):
        w = self.start()
        info = w.json("show info")
        self.assertTrue(info["fast_path"].startswith("tc at ingress of"), info["fast_path"])
        for i in ("l1", "l2"):
            self.assertIn(IF[i], info["fast_path"])
            self.assertIn(FP_HANDLE, filters(IF[i]))
        c = self.client()
        idx = self.confirm(c)
        f = self.one_flow(w)
        self.assertTrue(f["confirmed"])
        before = w.stats()
        sent = []
        for i in range(20):
            d = transport(100 + i, receiver=idx)
            got, src = c.roundtrip(d)
            self.assertEqual((got, src[:2]), (d, self.listen))
            sent.append(d)
        # The backend saw them from the flow's upstream socket, rewritten.
        upstream = (self.lb2, f["upstream_port"])
        self.assertEqual([p for s, p in self.b1.payloads_from()[-20:]], sent)
        self.assertEqual({s[:2] for s, _ in self.b1.payloads_from()[-20:]}, {upstream})
        # Folded in at the scan (once a second), from the program's counts.
        after = wait_until(lambda: (lambda s: s if s["fast_path_packets_in"] >= 20 and
                                    s["fast_path_packets_out"] >= 21 else None)(w.stats()),
                           5, "the program's counts folded in")
        self.assertEqual(after["receives_in"], before["receives_in"])
        self.assertEqual(after["receives_out"], before["receives_out"])
        self.assertEqual(after["fast_path_packets_in"], 20)
        # The entries are put as the confirming datagram goes up, before the
        # backend echoes it: that echo came back in the kernel too.
        self.assertEqual(after["fast_path_packets_out"], 21)
        self.assertEqual(after["fast_path_bytes_in"], sum(map(len, sent)))
        self.assertEqual(after["packets_in"] - before["packets_in"], 20)
        self.assertEqual(after["messages_in"]["transport"] - before["messages_in"]["transport"], 20)
        f2 = self.one_flow(w)
        self.assertEqual(f2["packets_in"] - f["packets_in"], 20)
        self.assertEqual(f2["bytes_out"] - f["bytes_out"], sum(map(len, sent)))
        # A handshake still goes up, to wglb's socket.
        c.roundtrip(initiation(sender=idx))
        s = wait_until(lambda: (lambda s: s if s["receives_in"] > after["receives_in"] else None)(
            w.stats()), 3, "the initiation received by wglb")
        self.assertEqual(s["messages_in"]["initiation"] - after["messages_in"]["initiation"], 1)
        # flow_idle_timeout = 2: transport the kernel carries keeps it open.
        for _ in range(8):
            d = transport(64, receiver=idx)
            self.assertEqual(c.roundtrip(d)[0], d)
            time.sleep(0.5)
        f3 = self.one_flow(w)
        self.assertEqual(f3["upstream_port"], f["upstream_port"])
        self.assertLessEqual(f3["idle_s"], 1)
        self.assertEqual(w.stats()["flows_expired"], 0)
        # Off the interfaces at exit.
        self.assertEqual(w.stop(), 0)
        for i in ("l1", "l2"):
            self.assertNotIn(FP_HANDLE, filters(IF[i]))

    def test_repin_next_datagram(self):
        w = self.start(backends=[self.b1, self.b2])
        c = self.client()
        idx = self.confirm(c)
        f = self.one_flow(w)
        old, new = (self.b1, self.b2) if f["backend"] == "b1" else (self.b2, self.b1)
        d = transport(80, receiver=idx)
        self.assertEqual(c.roundtrip(d)[0], d)
        self.assertEqual(old.payloads()[-1], d)
        wait_until(lambda: w.stats()["fast_path_packets_in"] >= 1, 5, "fast path in use")
        before = w.stats()
        n_old = old.count()
        w.ctl(f"backend disable {old.name}")
        wait_until(lambda: self.one_flow(w)["backend"] == new.name, 5, "the flow re-pinned")
        d = transport(90, receiver=idx)
        got, src = c.roundtrip(d)
        self.assertEqual((got, src[:2]), (d, self.listen))
        last = new.payloads_from()[-1]
        self.assertEqual((last[0][:2], last[1]), ((self.lb2, f["upstream_port"]), d))
        self.assertEqual(old.count(), n_old)
        after = wait_until(lambda: (lambda s: s if s["fast_path_packets_in"] >=
                                    before["fast_path_packets_in"] + 1 else None)(w.stats()),
                           5, "the re-pinned flow's datagram in the kernel")
        self.assertEqual(after["receives_in"], before["receives_in"])
        self.assertEqual(after["repins"]["disabled"] - before["repins"]["disabled"], 1)

    def test_readdress_follows(self):
        """A reload moves backend b1 to b2's address: the entries follow
        the socket, the next datagram goes to the new address in the kernel."""
        w = self.start()
        c = self.client()
        idx = self.confirm(c)
        up = self.one_flow(w)["upstream_port"]
        self.kernel_carries(w, c, idx, self.b1)
        n1 = self.b1.count()
        moved = type("B", (), {"name": "b1", "address": self.b2.address})
        self.reload(w, self.conf(backends=[moved]))
        self.kernel_carries(w, c, idx, self.b2)
        self.assertEqual(self.b2.payloads_from()[-1][0][:2], (self.lb2, up))
        self.assertEqual(self.b1.count(), n1)
        self.assertEqual(w.stats()["repins"]["changed"], 1)

    def test_allow_narrowed_stops_the_kernel(self):
        """A reload's allow list that shuts a confirmed client out: its flow
        stays (the socket path drops its datagrams one by one), so its
        entries must go, or the kernel would go on forwarding for it."""
        w = self.start(extra=f"allow = {self.cl_net}\n")
        c = self.client()
        idx = self.confirm(c)
        self.kernel_carries(w, c, idx, self.b1)
        n1 = self.b1.count()
        before = w.stats()
        self.reload(w, self.conf(backends=[self.b1], extra=f"allow = {self.other_net}\n"))
        c.send(transport(60, receiver=idx))
        c.expect_nothing(0.5)
        self.assertEqual(self.b1.count(), n1)
        st = wait_until(lambda: (lambda s: s if s["drops_in"]["not_allowed"] >
                                 before["drops_in"]["not_allowed"] else None)(w.stats()),
                        5, "the datagram dropped by wglb")
        self.assertEqual(st["receives_in"] - before["receives_in"], 1)

    def test_demoted_goes_up(self):
        """backend_silence: a confirmed flow whose backend says nothing is
        demoted (the kernel's client-to-backend datagrams do not count as
        the backend's), and its transport goes up again."""
        # 2, not 1: the scan counts quiet up after folding, so at 1 a flow
        # is demoted at its next scan whatever its backend said.
        w = self.start(extra="backend_silence = 2\n")
        c = self.client()
        idx = self.confirm(c)
        self.kernel_carries(w, c, idx, self.b1)
        self.b1.mute = True
        c.send(transport(60, receiver=idx))  # through the kernel, unanswered
        wait_until(lambda: w.stats()["flows_demoted"] >= 1, 8, "the flow demoted")
        self.assertFalse(self.one_flow(w)["confirmed"])
        before = w.stats()
        n1 = self.b1.count()
        c.send(transport(60, receiver=idx))
        wait_until(lambda: self.b1.count() > n1, 3, "the datagram at the backend")
        st = wait_until(lambda: (lambda s: s if s["receives_in"] > before["receives_in"]
                                 else None)(w.stats()), 3, "the datagram through wglb")
        self.assertEqual(st["fast_path_packets_in"], before["fast_path_packets_in"])

    def test_off_attaches_nothing(self):
        w = self.start(mode="off")
        self.assertEqual(w.json("show info")["fast_path"], "off")
        for i in ("l1", "l2"):
            self.assertNotIn(FP_HANDLE, filters(IF[i]))
        c = self.client()
        idx = self.confirm(c)
        before = w.stats()
        d = transport(70, receiver=idx)
        self.assertEqual(c.roundtrip(d)[0], d)
        after = wait_until(lambda: (lambda s: s if s["receives_out"] > before["receives_out"]
                                    else None)(w.stats()), 3, "the socket path")
        self.assertEqual(after["receives_in"] - before["receives_in"], 1)
        self.assertEqual(after["fast_path_packets_in"], 0)

    def test_leftover_removed_at_start(self):
        w = self.start()
        w.proc.send_signal(signal.SIGKILL)  # no detach: the hazard
        w.proc.wait()
        self.assertIn(FP_HANDLE, filters(IF["l1"]))
        w2 = self.start()
        self.assertIn("removed a program an earlier wglb left on " + IF["l1"], w2.read_log())
        self.assertIn(FP_HANDLE, filters(IF["l1"]))  # its own now
        self.assertEqual(w2.stop(), 0)
        self.assertNotIn(FP_HANDLE, filters(IF["l1"]))

    def test_fast_path_clear(self):
        """wglb --fast-path-clear (the unit's ExecStopPost) takes off what a
        killed wglb left, on the listen address's and the backends' interfaces."""
        w = self.start()
        w.proc.send_signal(signal.SIGKILL)
        w.proc.wait()
        for i in ("l1", "l2"):
            self.assertIn(FP_HANDLE, filters(IF[i]))
        out = in_ns("l", WGLB, "--fast-path-clear", "-c", w.conf).stdout
        self.assertEqual(out, f"fast path: removed a program left on {IF['l1']}, {IF['l2']}\n")
        for i in ("l1", "l2"):
            self.assertNotIn(FP_HANDLE, filters(IF[i]))
        out = in_ns("l", WGLB, "--fast-path-clear", "-c", w.conf).stdout
        self.assertEqual(out, f"fast path: nothing left on {IF['l1']}, {IF['l2']}\n")


class FastPath6(FastPath):
    """The same over IPv6 (the program's BPF_F_IPV6 checksums: Linux 6.16+)."""
    family = socket.AF_INET6
    listen = (LB1_6, 51820)
    lb2, be, cl_net, other_net = LB2_6, BE6, "fd77:1::/64", "fd99::/16"


def preflight():
    if os.geteuid() != 0:
        skip("needs root (network namespaces, BPF, tc)")
    try:
        topology()
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        teardown()
        skip(f"cannot build the namespaces and veths: {getattr(e, 'stderr', e)}")
    conf = f"/tmp/wglb-fp-check-{TAG}.conf"
    with open(conf, "w") as f:
        f.write(f"[balancer]\nlisten = {LB1_IP}:51820\nfast_path = tc\n"
                f"[backend a]\naddress = {BE_IP}:51820\n")
    out = in_ns("l", WGLB, "--check", "-c", conf, check=False).stdout
    os.unlink(conf)
    if "built without the fast path" in out or "does not load" in out:
        teardown()
        skip(out.strip().splitlines()[-1])
    if f"fast path: tc at ingress of {IF['l1']}, {IF['l2']}" not in out:
        teardown()
        raise SystemExit(f"wglb --check did not find the interfaces: {out}")


if __name__ == "__main__":
    preflight()
    try:
        result = unittest.main(verbosity=2, exit=False).result
    finally:
        teardown()
    sys.exit(0 if result.wasSuccessful() else 1)
