# SPDX-License-Identifier: MIT
"""Coalesced receives (UDP_GRO) and segmented sends (UDP GSO). On loopback a UDP GSO send reaches a UDP_GRO socket as
one train, so a test can hand wglb exactly the train a NIC's GRO would:
every segment is judged alone (a bad one dropped and counted, the rest
forwarded, a handshake in a train routed as a handshake), a backend's
train reaches the client whole and in order, and udp_gro = off takes the
same traffic datagram by datagram.

Not here: a GSO send the kernel refuses (-EIO). Since Linux 6.11 only an
IPsec (xfrm) route or UDP-Lite does that, and this machine has no ESP;
tx.c sends such a group's datagrams again one by one."""
import os
import socket
import struct
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from wglbtest import LoopbackLb, confirm, initiation, transport, wait_until

UDP_SEGMENT, UDP_GRO = 103, 104


def gso_send(sock, segs, addr=None):
    """One UDP GSO send: equal-sized datagrams, the last may be shorter."""
    anc = [(socket.SOL_UDP, UDP_SEGMENT, struct.pack("H", len(segs[0])))]
    if addr is None:
        sock.sendmsg([b"".join(segs)], anc)
    else:
        sock.sendmsg([b"".join(segs)], anc, 0, addr)


def delta(after, before, *path):
    a, b = after, before
    for p in path:
        a, b = a[p], b[p]
    return a - b


class Family(LoopbackLb):
    backend_names = ("a",)
    gro = "on"

    @property
    def balancer_extra(self):
        return f"max_flows = 64\nudp_gro = {self.gro}\n"

    def test_client_train_each_segment_judged_alone(self):
        c = self.client()
        idx = confirm(c, size=160)
        be = self.backends[0]
        n0, before = be.count(), self.lb.stats()
        good1, good2 = transport(160, receiver=idx), transport(160, receiver=idx)
        bad = b"\x07" + good1[1:]  # an unknown message type, the train's size
        hs = initiation(sender=idx)  # 148 bytes: the train's shorter last segment
        gso_send(c.sock, [good1, bad, good2, hs], self.addr)
        wait_until(lambda: be.count() >= n0 + 3, what="the train's good segments at the backend")
        self.assertEqual(be.payloads()[n0:], [good1, good2, hs], "in order, the bad one left out")
        for want in (good1, good2, hs):  # the backend echoes each
            self.assertEqual(c.sock.recvfrom(65535)[0], want)
        after = self.lb.stats()
        expect_receives = 1 if self.gro == "on" else 4
        self.assertEqual(delta(after, before, "receives_in"), expect_receives)
        self.assertEqual(delta(after, before, "packets_in"), 4)
        self.assertEqual(delta(after, before, "drops_in", "unknown_type"), 1)
        self.assertEqual(delta(after, before, "messages_in", "transport"), 2)
        self.assertEqual(delta(after, before, "messages_in", "initiation"), 1)
        self.assertEqual(delta(after, before, "forwarded_in"), 3)

    def test_backend_train_reaches_client_whole(self):
        c = self.client()
        idx = confirm(c, size=1440)
        be = self.backends[0]
        upstream = next(iter(be.sources()))
        before = self.lb.stats()
        segs = [transport(1440, receiver=idx) for _ in range(40)] + [transport(700, receiver=idx)]
        bad = b"\x04\x01" + segs[5][2:]  # reserved bytes set: dropped alone
        train = segs[:5] + [bad] + segs[5:]
        gso_send(be.sock, train, upstream)
        got = [c.sock.recvfrom(65535)[0] for _ in segs]
        self.assertEqual(got, segs, "every good segment, in order, unchanged")
        c.expect_nothing(0.2)
        after = self.lb.stats()
        self.assertEqual(delta(after, before, "packets_out"), len(train))
        self.assertEqual(delta(after, before, "drops_out", "bad_reserved"), 1)
        self.assertEqual(delta(after, before, "forwarded_out"), len(segs))
        if self.gro == "on":
            self.assertEqual(delta(after, before, "receives_out"), 1)
            # 40 x 1440 in one GSO send, the shorter last one closing it
            self.assertLessEqual(delta(after, before, "sends_out"), 2)
        else:
            self.assertEqual(delta(after, before, "receives_out"), len(train))

    def test_show_info_names_the_buffers(self):
        info = self.lb.json("show info")
        self.assertEqual(info["udp_gro"], self.gro == "on")
        if self.gro == "on":
            self.assertEqual((info["buffers"], info["buffer_size"]), (1024, 65536 + 4096))
        else:
            self.assertEqual((info["buffers"], info["buffer_size"]), (4096, 2048))


class TestIPv4(Family, unittest.TestCase):
    pass


class TestIPv6(Family, unittest.TestCase):
    family = socket.AF_INET6
    host = "::1"


class TestGroOff(Family, unittest.TestCase):
    gro = "off"


if __name__ == "__main__":
    unittest.main(verbosity=2)
