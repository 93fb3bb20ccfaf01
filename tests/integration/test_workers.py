# SPDX-License-Identifier: MIT
"""workers = 2 on loopback: clients from many addresses spread over both
workers and stay there (every port of an address on one worker), show
info/flows/stats see every worker, a disabled, drained or deleted backend
loses its flows on both, a reload reaches both, a client whose address
changes to one the other worker serves keeps its session's backend, the
per-source handshake limit and the roaming budget hold across workers as
they do with one, and a second wglb cannot share the port."""
import os
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from wglbtest import (WGLB, Backend, Client, Wglb, config, confirm, free_port, initiation,
                      transport, wait_until, worker_of)

N = 2


def addresses(n, prefix="127.0.9."):
    return [f"{prefix}{i}" for i in range(1, n + 1)]


class Base(unittest.TestCase):
    extra = ""

    def setUp(self):
        self.bes = [Backend(n) for n in ("a", "b", "c")]
        self.port = free_port()
        self.lb = Wglb(config([f"127.0.0.1:{self.port}"], self.bes,
                              balancer_extra=f"workers = {N}\nmax_flows = 256\n" + self.extra,
                              rate_limit="handshake_rate" in self.extra)).start()
        self._seed = None

    @property
    def seed(self):
        """The running wglb's steering seed, asked for when first needed."""
        if self._seed is None:
            self._seed = self.lb.steer_seed()
        return self._seed

    def tearDown(self):
        rc = self.lb.stop()
        for b in self.bes:
            b.close()
        self.assertEqual(rc, 0, self.lb.read_log())

    def client(self, host):
        c = Client(("127.0.0.1", self.port), bind=(host, 0))
        self.addCleanup(c.close)
        return c

    def balanced(self, n, prefix="127.0.9."):
        """n addresses, n / N on each worker: the steering seed is random,
        so a fixed list could put all of some subset on one worker."""
        pool = addresses(250, prefix)
        per = [[ip for ip in pool if worker_of(ip, N, self.seed) == w][:n // N] for w in range(N)]
        self.assertTrue(all(len(p) == n // N for p in per), per)
        return [ip for group in zip(*per) for ip in group]  # alternating workers

    def per_worker(self):
        return [w["flows"] for w in self.lb.json("show info")["workers"]]

    def by_client(self):
        return {f["client"]: f for f in self.lb.flows()}


class TestSpread(Base):
    def test_spread_sticky_and_seen_whole(self):
        ips = addresses(16)
        want = [sum(worker_of(ip, N, self.seed) == w for ip in ips) for w in range(N)]
        self.assertTrue(all(want), f"the test's addresses cover both workers: {want}")
        clients = [self.client(ip) for ip in ips]
        for c in clients:
            confirm(c)
        self.assertEqual(self.per_worker(), want, "each address on the worker steering names")
        # A second port of an address: the same worker (per-source state stays whole).
        extra = self.client(ips[0])
        confirm(extra)
        want[worker_of(ips[0], N, self.seed)] += 1
        self.assertEqual(self.per_worker(), want)
        flows = self.lb.flows()
        self.assertEqual(len(flows), 17, "show flows lists every worker's flows")
        st = self.lb.stats()
        self.assertEqual(st["flows_active"], 17)
        self.assertEqual(st["forwarded_in"], 34, "counters summed over workers")
        self.assertEqual(sum(b["flows"] for b in st["backends"].values()), 17)
        self.assertEqual(sum(b["flows"] for b in self.lb.json("show backends")["backends"]), 17)
        info = self.lb.json("show info")
        self.assertEqual(info["flows"], 17)
        self.assertEqual(info["max_flows"], 256)
        metrics = self.lb.ctl("metrics")
        self.assertIn("wglb_flows 17\n", metrics)
        # Traffic goes on through each client's flow, wherever it lives.
        for c in clients:
            m = transport(100, receiver=0)
            c.send(m)
        wait_until(lambda: self.lb.stats()["packets_in"] >= 34 + 16, what="data on every worker")


class TestSteeringSeed(Base):
    def test_steering_is_secret_and_differs_per_start(self):
        """The attack: a spoofer who knows the steering arithmetic picks
        sources that all land on one worker, which then goes under load at
        under_load_rate / N and spends its share of flows and ports while the
        others idle. With the old public multiplier these 16 addresses were
        all worker 0's; seeded at start, they spread, and differently on
        each start."""
        def old_worker_of(ip):  # the former fixed arithmetic: no key, 0x9e3779b1
            a = int.from_bytes(socket.inet_aton(ip), "big")
            return (((a * 0x9e3779B1) & 0xFFFFFFFF) >> 16) % N

        ips = [ip for ip in addresses(250, "127.0.12.") if old_worker_of(ip) == 0][:16]
        self.assertEqual(len(ips), 16)

        def landed(lb):
            """Datagrams from clients per worker after one initiation from each ip."""
            before = [w["flows"] for w in lb.json("show info")["workers"]]
            for ip in ips:
                c = Client(("127.0.0.1", lb_port[lb]), bind=(ip, 0))
                self.addCleanup(c.close)
                c.roundtrip(initiation())
            after = [w["flows"] for w in lb.json("show info")["workers"]]
            return [a - b for a, b in zip(after, before)]

        lb_port = {self.lb: self.port}
        first = landed(self.lb)
        self.assertEqual(sum(first), 16)
        self.assertLess(max(first), 16, f"the old arithmetic's worker-0 set spread: {first}")
        # What landed is what the seed the control socket reports predicts.
        self.assertEqual(first, [sum(worker_of(ip, N, self.seed) == w for ip in ips)
                                 for w in range(N)])
        packets = [w["packets_in"] for w in self.lb.json("show info")["workers"]]
        self.assertEqual(packets, first, "one datagram from each address, on its worker")
        # A second start draws another seed: the steering is not a constant.
        port = free_port()
        other = Wglb(config([f"127.0.0.1:{port}"], self.bes,
                            balancer_extra=f"workers = {N}\nmax_flows = 256\n")).start()
        self.addCleanup(other.stop)
        lb_port[other] = port
        seed2 = other.steer_seed()
        self.assertNotEqual(seed2, self.seed, "a new seed for each start")
        second = landed(other)
        self.assertEqual(second, [sum(worker_of(ip, N, seed2) == w for ip in ips)
                                  for w in range(N)])
        # Over 200 addresses two independent seeds disagree about some.
        many = addresses(200, "127.0.13.")
        self.assertNotEqual([worker_of(ip, N, self.seed) for ip in many],
                            [worker_of(ip, N, seed2) for ip in many])


class TestPoolChanges(Base):
    def test_disable_drain_delete_on_every_worker(self):
        clients = [self.client(ip) for ip in self.balanced(24)]
        for c in clients:
            confirm(c)
        flows = self.lb.flows()
        on = {b: sum(f["backend"] == b for f in flows) for b in ("a", "b", "c")}
        victim = max(on, key=on.get)
        vic = {worker_of(f["client"].split(":")[0], N, self.seed) for f in flows if f["backend"] == victim}
        self.assertEqual(len(vic), N, "the victim has flows on both workers")
        # disable: every flow on it moves now, on both workers
        self.lb.ctl(f"backend disable {victim}")
        wait_until(lambda: all(f["backend"] != victim for f in self.lb.flows()), 3,
                   "flows off the disabled backend on every worker")
        st = self.lb.stats()
        self.assertEqual(st["repins"]["disabled"], on[victim])
        self.assertEqual(st["backends"][victim]["flows"], 0)
        self.lb.ctl(f"backend enable {victim}")
        # delete with flows is refused, counting flows on every worker
        busy = max(("a", "b", "c"), key=lambda b: sum(f["backend"] == b for f in self.lb.flows()))
        n_busy = sum(f["backend"] == busy for f in self.lb.flows())
        out = self.lb.ctl(f"backend del {busy}")
        self.assertIn(f"still has {n_busy} flows", out)
        self.lb.ctl(f"backend del {busy} force")
        wait_until(lambda: all(f["backend"] != busy for f in self.lb.flows()), 3,
                   "flows off the deleted backend on every worker")
        self.assertEqual(len(self.lb.flows()), 24, "moved, not closed")
        self.assertNotIn(busy, [b["name"] for b in self.lb.json("show backends")["backends"]])

    def test_drain_moves_at_initiation_on_every_worker(self):
        ips = self.balanced(24)
        clients = {ip: self.client(ip) for ip in ips}
        for c in clients.values():
            confirm(c)
        flows = self.by_client()
        on = {b: [k for k, f in flows.items() if f["backend"] == b] for b in ("a", "b", "c")}
        victim = max(on, key=lambda b: len(on[b]))
        moving = [k.split(":")[0] for k in on[victim]]
        self.assertEqual(len({worker_of(ip, N, self.seed) for ip in moving}), N,
                         f"the drained backend has flows on both workers: {moving}")
        self.lb.ctl(f"backend drain {victim}")
        time.sleep(0.2)  # nothing moves on its own: a drain waits for initiations
        self.assertEqual(sum(f["backend"] == victim for f in self.lb.flows()), len(moving))
        for ip in moving:
            clients[ip].roundtrip(initiation())
        self.assertEqual(sum(f["backend"] == victim for f in self.lb.flows()), 0,
                         "each client left at its initiation, on either worker")


class TestReload(Base):
    def test_reload_reaches_every_worker(self):
        ips = self.balanced(12)  # alternating workers: both allow and refuse on each
        allowed = ips[:6]
        for ip in ips:
            confirm(self.client(ip))
        with open(self.lb.conf) as f:
            text = f.read()
        rules = "".join(f"allow = {ip}/32\n" for ip in allowed)
        self.lb.write_config(text.replace("[balancer]\n", "[balancer]\n" + rules, 1))
        self.lb.hup()
        wait_until(lambda: "reloaded" in self.lb.read_log(), what="the reload")
        before = self.lb.stats()["drops_in"]["not_allowed"]
        for ip in ips:
            self.client(ip).send(initiation())
        wait_until(lambda: self.lb.stats()["drops_in"]["not_allowed"] >= before + 6,
                   what="sources outside allow dropped")
        refused = {ip for ip in ips if ip not in allowed}
        self.assertEqual(len({worker_of(ip, N, self.seed) for ip in refused}), N,
                         "refused on both workers")


class TestRoaming(Base):
    def test_new_address_on_the_other_worker_keeps_the_backend(self):
        first = next(ip for ip in addresses(40) if worker_of(ip, N, self.seed) == 0)
        later = next(ip for ip in addresses(40, "127.0.10.") if worker_of(ip, N, self.seed) == 1)
        c = self.client(first)
        idx = confirm(c)
        backend = self.by_client()[f"{first}:{c.port}"]["backend"]
        moved = self.client(later)  # the same session from a new address
        m = transport(80, receiver=idx)
        self.assertEqual(moved.roundtrip(m)[0], m)
        f = self.by_client()[f"{later}:{moved.port}"]
        self.assertEqual(f["backend"], backend, "the session's backend, found across workers")
        self.assertEqual(self.lb.stats()["flows_roamed"], 1)


class TestLimitsAcrossWorkers(Base):
    extra = "handshake_rate = 20\nhandshake_burst = 5\n"

    def test_per_source_limit_counts_every_port(self):
        flood = [self.client("127.0.0.1") for _ in range(50)]
        for c in flood:  # 50 ports of one address: one worker, one budget
            c.send(initiation())
        wait_until(lambda: self.lb.stats()["packets_in"] >= 50, what="the initiations")
        st = self.lb.stats()
        self.assertLessEqual(st["messages_in"]["initiation"], 11)
        self.assertGreaterEqual(st["drops_in"]["rate_limited"], 39)

    def test_roaming_budget_is_shared(self):
        c = self.client("127.0.0.1")
        idx = confirm(c)
        # The session index from 40 addresses, both workers: the budget
        # (one a second, three in a burst) is one for all of them.
        for ip in addresses(40, "127.0.11."):
            self.client(ip).send(transport(64, receiver=idx))
        wait_until(lambda: self.lb.stats()["packets_in"] >= 42, what="the roams")
        self.assertLessEqual(self.lb.stats()["flows_roamed"], 4)


class TestSecondInstance(unittest.TestCase):
    def test_port_in_use_is_refused(self):
        be = Backend("a")
        port = free_port()
        cfg = config([f"127.0.0.1:{port}"], [be], balancer_extra=f"workers = {N}\n")
        first = Wglb(cfg).start()
        try:
            second = Wglb(cfg)  # its own control socket; the same listen port
            p = subprocess.run([WGLB, "-c", second.conf], capture_output=True, text=True,
                               timeout=10)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("address already in use", p.stderr + p.stdout)
        finally:
            self.assertEqual(first.stop(), 0)
            be.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
