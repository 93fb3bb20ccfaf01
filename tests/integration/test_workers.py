# SPDX-License-Identifier: MIT
"""workers = 2 on loopback: clients from many addresses spread over both
workers and stay there (every port of an address on one worker), show
info/flows/stats see every worker, a disabled, drained or deleted backend
loses its flows on both, a reload reaches both, a client whose address
changes to one the other worker serves keeps its session's backend, the
per-source handshake limit and the roaming budget hold across workers as
they do with one, and a second wglb cannot share the port."""
import ctypes
import os
import socket
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from wglbtest import (WGLB, Backend, Client, Wglb, config, confirm, free_port, initiation,
                      transport, wait_until, worker_of)

N = 2

# A scrape storm from another process (the GIL would otherwise make the
# scrapes and the measured round trips take turns): back-to-back GET
# /metrics over fresh connections until stdin closes, 20000 scrapes or 10 s,
# whichever comes first; says when under way, then how many it made.
SCRAPER = r"""
import socket, sys, threading, time
port, stop, n = int(sys.argv[1]), threading.Event(), 0
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
end = time.monotonic() + 10  # the holds take about 2 s; a fast machine scrapes 10,000 a second
while n < 500000 and not stop.is_set() and time.monotonic() < end:
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
    while s.recv(65536):
        pass
    s.close()
    n += 1
    if n == 1:
        print("under way", flush=True)
print(n, flush=True)
"""


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


class Freeze:
    """Stop one thread of another process, and only that one: SIGSTOP, even
    sent to one thread (tgkill), stops every thread of the process (job
    control is per process). ptrace's PTRACE_SEIZE + PTRACE_INTERRUPT stops
    just the tracee thread; PTRACE_DETACH lets it run again. The tracer is
    the calling thread: freeze and thaw from the same one."""
    SEIZE, INTERRUPT, DETACH, WALL = 0x4206, 0x4207, 17, 0x40000000

    def __init__(self, tid):
        self.tid = tid
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                                     ctypes.c_void_p]
        self.libc.ptrace.restype = ctypes.c_long
        self.frozen = False

    def _pt(self, req):
        if self.libc.ptrace(req, self.tid, None, None) < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"ptrace({req:#x}, {self.tid}): {os.strerror(e)}")

    def freeze(self):
        self._pt(self.SEIZE)
        self._pt(self.INTERRUPT)
        os.waitpid(self.tid, self.WALL)  # it is stopped now
        self.frozen = True

    def thaw(self):
        if self.frozen:
            self.frozen = False
            self._pt(self.DETACH)


class TestStalledWorker(Base):
    extra = ""

    def setUp(self):
        with socket.socket() as s:  # a free TCP port
            s.bind(("127.0.0.1", 0))
            self.mport = s.getsockname()[1]
        self.extra = f"metrics_listen = 127.0.0.1:{self.mport}\n"
        super().setUp()

    def worker_tid(self, i):
        """Worker i's thread, by the name wglb gives it (comm)."""
        pid = self.lb.proc.pid
        for tid in sorted(int(t) for t in os.listdir(f"/proc/{pid}/task")):
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if f.read().strip() == f"wglb-w{i}":
                    return tid
        self.fail(f"no thread named wglb-w{i}: {os.listdir(f'/proc/{pid}/task')}")

    def timed(self, what, fn, bound=3.0):
        """fn() must answer within bound seconds (wglb waits a second at most
        for a worker that does not answer, then never again for it)."""
        t = time.monotonic()
        r = fn()
        took = time.monotonic() - t
        self.assertLess(took, bound, f"{what} took {took:.1f} s")
        return r

    def scrape(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.mport}/metrics", timeout=5) as r:
            return r.read().decode()

    def worst_round_trip(self, c, storm):
        """The slowest round trip through c (on worker 0) while worker 1 is
        held still four times for 400 ms (as a busy or descheduled worker
        is), with or without a scrape storm. Returns (seconds, round trips,
        scrapes)."""
        worst, count, done = [0.0], [0], threading.Event()

        def traffic():
            while not done.is_set():
                m = transport(90, receiver=0)
                t = time.monotonic()
                try:
                    got = c.roundtrip(m)[0]
                except socket.timeout:
                    got = None
                worst[0] = max(worst[0], time.monotonic() - t)
                if got == m:
                    count[0] += 1
        proc = None
        if storm:
            proc = subprocess.Popen([sys.executable, "-c", SCRAPER, str(self.mport)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            self.assertEqual(proc.stdout.readline(), "under way\n")
        th = threading.Thread(target=traffic)
        th.start()
        try:
            tid = self.worker_tid(1)
            for _ in range(4):
                fr = Freeze(tid)  # the tracer is this thread, for both ends
                fr.freeze()
                try:
                    time.sleep(0.4)  # the stall being simulated, not a wait for state
                finally:
                    fr.thaw()
                time.sleep(0.1)
            if proc:
                self.assertIsNone(proc.poll(), "the storm lasted through every hold")
        finally:
            done.set()
            th.join()
            scrapes = int(proc.communicate("", timeout=30)[0]) if proc else 0
        return worst[0], count[0], scrapes

    def test_scrape_storm_never_makes_worker0_wait(self):
        """The attack: /metrics is unauthenticated, and each scrape made the
        main thread, which forwards too, call every other worker and wait
        for it: a storm of scrapes while another worker is slow (busy,
        descheduled) stalls worker 0's forwarding for as long. Round trips
        through worker 0 while worker 1 is held still, without and then
        with a storm of scrapes: the storm must not add a stall (a scrape
        now reads what the workers publish, summed once a second)."""
        ip0 = next(ip for ip in addresses(60, "127.0.16.") if worker_of(ip, N, self.seed) == 0)
        c0 = self.client(ip0)
        confirm(c0)
        quiet, n_quiet, _ = self.worst_round_trip(c0, False)
        stormy, n_stormy, scrapes = self.worst_round_trip(c0, True)
        print(f"\nworker 0's slowest round trip while worker 1 is held still 4 x 400 ms: "
              f"{quiet * 1000:.0f} ms quiet ({n_quiet} round trips), {stormy * 1000:.0f} ms "
              f"under {scrapes} scrapes ({n_stormy} round trips)", file=sys.stderr)
        self.assertGreater(scrapes, 100, "a storm, not a drizzle")
        self.assertGreater(n_stormy, 100, "traffic flowed through worker 0")
        # A stall is the length of a hold (400 ms); the machine's own noise
        # (two cores, shared) stays far below: the quiet run is the reference.
        self.assertLess(stormy, max(0.2, 2 * quiet), "a scrape made worker 0 wait for worker 1")

    def test_stopped_worker_is_reported_and_never_hangs_the_main_thread(self):
        """The attack's end state: a worker that stops answering (stopped,
        starved, its loop dead). workers_call waited forever for it, so the
        next scrape, control command or pool change froze the main thread,
        and with it worker 0's forwarding and every operator. Now: calls
        time out once and then fail at once, the worker is reported stalled
        (show info, show stats, wglb_worker_stalled), forwarding on worker 0
        goes on, and when the worker runs again it follows the pool."""
        ip0 = next(ip for ip in addresses(60, "127.0.15.") if worker_of(ip, N, self.seed) == 0)
        ip1 = next(ip for ip in addresses(60, "127.0.15.") if worker_of(ip, N, self.seed) == 1)
        c0, c1 = self.client(ip0), self.client(ip1)
        confirm(c0)
        confirm(c1)
        be1 = self.by_client()[f"{ip1}:{c1.port}"]["backend"]
        self.assertIn('wglb_worker_stalled{worker="1"} 0\n', self.scrape())
        fr = Freeze(self.worker_tid(1))
        fr.freeze()
        try:
            # Every reader of the workers' counters, at once after the stop.
            info = self.timed("show info", lambda: self.lb.json("show info"))
            self.timed("show stats", self.lb.stats)
            self.timed("a scrape", self.scrape)
            self.timed("metrics", lambda: self.lb.ctl("metrics"))
            wait_until(lambda: self.lb.json("show info")["workers"][1]["stalled"], 5,
                       "worker 1 reported stalled")
            info = self.timed("show info", lambda: self.lb.json("show info"))
            self.assertEqual([w["stalled"] for w in info["workers"]], [False, True])
            self.assertEqual(self.timed("show stats", self.lb.stats)["workers_stalled"], [1])
            wait_until(lambda: 'wglb_worker_stalled{worker="1"} 1\n' in self.scrape(), 3,
                       "the stall in /metrics (answered from a sum up to 1 s old)")
            self.assertRegex(self.timed("show info", lambda: self.lb.ctl("show info")),
                             r"stalled: +worker 1 \(no heartbeat")
            flows = self.timed("show flows", lambda: self.lb.json("show flows"))
            self.assertEqual(flows["workers_stalled"], [1])
            self.assertEqual([f["client"].split(":")[0] for f in flows["flows"]], [ip0])
            # A pool change: the backend of worker 1's flow. Worker 0 takes
            # it; nothing waits on worker 1.
            self.timed("backend disable", lambda: self.lb.ctl(f"backend disable {be1}"))
            self.assertTrue(all(f["backend"] != be1 for f in self.lb.flows()))
            # Worker 0 forwards all along.
            for _ in range(20):
                m = transport(90, receiver=0)
                self.assertEqual(self.timed("a round trip on worker 0",
                                            lambda: c0.roundtrip(m)[0], 1.0), m)
            self.assertIn("worker 1 has not answered a call", self.lb.read_log())
        finally:
            fr.thaw()
        wait_until(lambda: not self.lb.json("show info")["workers"][1]["stalled"], 5,
                   "worker 1 running again")
        wait_until(lambda: "worker 1 runs again" in self.lb.read_log(), 3, "the log of it")
        # It missed the disable while stopped, and follows the pool again:
        # its flow leaves the disabled backend too.
        wait_until(lambda: self.by_client()[f"{ip1}:{c1.port}"]["backend"] != be1, 3,
                   "worker 1 following the pool it missed")
        m = transport(90, receiver=0)
        self.assertEqual(c1.roundtrip(m)[0], m)


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
