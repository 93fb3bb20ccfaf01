// SPDX-License-Identifier: MIT
/*
 * Worker threads, the call that runs a function on one of them, listener
 * steering, and the little the workers share (workers.h).
 */
#include "wglb/workers.h"
#include "wglb/clock.h"
#include "wglb/log.h"
#include "wglb/loop.h"
#include "wglb/totals.h"

#include <errno.h>
#include <linux/filter.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <stdio.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SESSDIR_SLOTS (1u << 16)
/* A call waits this long for a worker to take it: a worker answers within
 * its batch (milliseconds) and wakes at least every LOOP_SCAN_MS. */
#define WORKERS_CALL_MS 1000
/* A worker whose heartbeat (its scan, every LOOP_SCAN_MS) is this old has
 * stalled: stopped, descheduled for ages, or its loop ended. */
#define WORKERS_STALL_MS 2000
#define SNAP_WORDS ((sizeof(struct totals) + sizeof(uint64_t) - 1) / sizeof(uint64_t))

struct worker {
	struct workers *ws;
	unsigned id;
	pthread_t th;
	bool started;
	int call_fd, done_fd; /* eventfds: main -> worker, worker -> main */
	worker_fn fn;         /* the pending call, published by call_seq */
	void *arg;
	_Atomic uint64_t call_seq, done_seq;
	/* The last call resolved: taken by the worker, or given up by the main
	 * thread after WORKERS_CALL_MS. Whoever moves it from seq - 1 to seq
	 * owns call seq, so a worker that wakes late never runs fn on the
	 * frame of a call its caller has left. */
	_Atomic uint64_t taken;
	_Atomic uint64_t beat_ms; /* the worker's clock at its last scan: its heartbeat */
	_Atomic bool exited;      /* its loop ended (an error): it will never answer */
	/* Its counters, published at every scan for the main thread to read
	 * without calling it (a seqlock: odd while the worker writes). */
	_Atomic uint64_t snap_seq;
	_Atomic uint64_t snap[SNAP_WORDS];
	struct totals mine; /* the worker's: where it adds up before publishing */
	struct totals last; /* the main thread's: the last consistent copy it read */
	/* The main thread's view: the heartbeat when a call went unanswered
	 * (UINT64_MAX: none), and whether it reported the worker stalled. */
	uint64_t hung_beat;
	bool stalled, missed;
	int init_ret;
	struct wglb_config cfg; /* the worker's copy until its loop takes it */
	const struct loop_part *const *parts;
	size_t n_parts;
	struct loop *l;
};

struct workers {
	unsigned n;
	/* Steering's secret, drawn at start and kept for the process's life
	 * (a reload keeps the listener groups, so it must keep their spread):
	 * an address is XORed with key and multiplied by mult (odd). With a
	 * public constant a spoofer could pick sources that all land on one
	 * worker and exhaust its share of flows, ports and load budget. */
	uint32_t steer_key, steer_mult;
	/* Roams per session index, for all workers at once: a GCRA per slot,
	 * index << 32 | theoretical arrival time (ms, 32 bits, wrapping). */
	_Atomic uint64_t roam[SESSDIR_SLOTS];
	struct worker *w[CONFIG_MAX_WORKERS]; /* [0] unused: the main loop */
	_Atomic uint8_t poke[CONFIG_MAX_BACKENDS];
	_Atomic uint32_t want_socket; /* asks for a flow of another worker to give way */
	bool left_running; /* a stuck worker was not joined: nothing of ours may be freed */
	workers_collect_fn collect; /* what a worker publishes: its counters */
	/* index -> (index << 32 | backend + 1); a collision forgets the older */
	_Atomic uint64_t sess[SESSDIR_SLOTS];
};

static uint32_t sess_slot(uint32_t index)
{
	return (index * 2654435761u) >> 16;
}

void workers_session_put(struct loop *w, uint32_t index, unsigned backend)
{
	if (w->ws)
		atomic_store_explicit(&w->ws->sess[sess_slot(index)],
				      (uint64_t)index << 32 | (backend + 1), memory_order_relaxed);
}

void workers_session_forget(struct loop *w, uint32_t index, unsigned backend)
{
	uint64_t want = (uint64_t)index << 32 | (backend + 1);

	if (w->ws) /* only if it still says so: another worker may have taken it over */
		atomic_compare_exchange_strong_explicit(&w->ws->sess[sess_slot(index)], &want, 0,
							memory_order_relaxed, memory_order_relaxed);
}

int workers_session_get(const struct loop *w, uint32_t index)
{
	uint64_t v;

	if (!w->ws)
		return -1;
	v = atomic_load_explicit(&w->ws->sess[sess_slot(index)], memory_order_relaxed);
	return v >> 32 == index && (v & 0xffff) ? (int)(v & 0xffff) - 1 : -1;
}

/* GCRA: a roam is allowed when now >= tat - (burst - 1) * interval; it
 * moves tat to max(tat, now) + interval. Times wrap at 2^32 ms (49 days);
 * differences are taken modulo that. */
static bool roam_ok(uint64_t v, uint32_t index, uint32_t now, uint32_t interval, uint32_t burst)
{
	uint32_t tat = (uint32_t)v;

	if (v >> 32 != index)
		return true; /* a slot for another index (or none): a fresh budget */
	return (int32_t)(now - (tat - (burst - 1) * interval)) >= 0;
}

bool workers_roam_peek(const struct loop *w, uint32_t index, uint32_t interval_ms, uint32_t burst)
{
	uint64_t v = atomic_load_explicit(&w->ws->roam[sess_slot(index)], memory_order_relaxed);

	return roam_ok(v, index, (uint32_t)w->now_ms, interval_ms, burst);
}

void workers_roam_spend(struct loop *w, uint32_t index, uint32_t interval_ms)
{
	_Atomic uint64_t *slot = &w->ws->roam[sess_slot(index)];
	uint64_t v = atomic_load_explicit(slot, memory_order_relaxed), nv;
	uint32_t now = (uint32_t)w->now_ms;

	do {
		uint32_t tat = v >> 32 == index ? (uint32_t)v : now;
		if ((int32_t)(tat - now) < 0)
			tat = now;
		nv = (uint64_t)index << 32 | (uint32_t)(tat + interval_ms);
	} while (!atomic_compare_exchange_weak_explicit(slot, &v, nv, memory_order_relaxed,
							memory_order_relaxed));
}

void workers_poke(struct loop *w, unsigned backend, unsigned kind)
{
	if (w->ws && backend < CONFIG_MAX_BACKENDS)
		atomic_fetch_or_explicit(&w->ws->poke[backend], (uint8_t)kind, memory_order_relaxed);
}

unsigned workers_poked(struct loop *main, unsigned backend)
{
	return main->ws && backend < CONFIG_MAX_BACKENDS
		       ? atomic_exchange_explicit(&main->ws->poke[backend], 0, memory_order_relaxed)
		       : 0;
}

void workers_want_socket(struct loop *w)
{
	if (w->ws)
		atomic_fetch_add_explicit(&w->ws->want_socket, 1, memory_order_relaxed);
}

unsigned workers_sockets_wanted(struct loop *main, unsigned max)
{
	uint32_t n;

	/* Read first: the main thread asks every batch, the workers rarely write. */
	if (!main->ws || !atomic_load_explicit(&main->ws->want_socket, memory_order_relaxed))
		return 0;
	n = atomic_exchange_explicit(&main->ws->want_socket, 0, memory_order_relaxed);
	return n < max ? n : max;
}

static void signal_fd(int fd)
{
	uint64_t one = 1;

	while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void drain_fd(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
}

/* On the worker: a call arrived. */
static void on_call(struct loop *l, void *ctx, uint32_t revents)
{
	struct worker *w = ctx;
	uint64_t seq, prev;

	(void)revents;
	drain_fd(w->call_fd);
	seq = atomic_load_explicit(&w->call_seq, memory_order_acquire);
	prev = seq - 1;
	if (seq != atomic_load_explicit(&w->done_seq, memory_order_relaxed) &&
	    atomic_compare_exchange_strong_explicit(&w->taken, &prev, seq, memory_order_acq_rel,
						    memory_order_relaxed)) {
		w->fn(l, w->arg);
		atomic_store_explicit(&w->done_seq, seq, memory_order_release);
		signal_fd(w->done_fd);
	}
	if (!l->stop && loop_watch(l, w->call_fd, POLLIN, on_call, w) < 0)
		log_err("worker %u: cannot watch for calls", w->id);
}

/* Still the heartbeat it had when a call went unanswered: do not wait again. */
static bool hung(const struct worker *w)
{
	return atomic_load_explicit(&w->exited, memory_order_acquire) ||
	       (w->hung_beat != UINT64_MAX &&
		atomic_load_explicit(&w->beat_ms, memory_order_relaxed) == w->hung_beat);
}

/* Wait for call seq until deadline (ms, CLOCK_MONOTONIC; 0: forever). */
static bool wait_done(struct worker *w, uint64_t seq, uint64_t deadline)
{
	bool logged = false;

	for (;;) {
		struct pollfd p = {.fd = w->done_fd, .events = POLLIN};
		uint64_t now = clock_monotonic_ms();
		int left = 1000;

		if (atomic_load_explicit(&w->done_seq, memory_order_acquire) == seq)
			return true;
		if (deadline) {
			if (now >= deadline)
				return false;
			left = (int)(deadline - now);
		}
		if (poll(&p, 1, left) > 0) {
			drain_fd(w->done_fd);
		} else if (!deadline && !logged) {
			log_err("worker %u is still running a call it took late", w->id);
			logged = true;
		}
	}
}

int workers_call(struct loop *main, unsigned i, worker_fn fn, void *arg)
{
	struct worker *w;
	uint64_t seq, prev;

	if (main->worker_id) { /* workers never call: only the main thread waits */
		log_err("worker %u tried to call worker %u", main->worker_id, i);
		return -EPERM;
	}
	if (i == 0 || !main->ws) {
		fn(main, arg);
		return 0;
	}
	if (i >= main->ws->n || !(w = main->ws->w[i]))
		return -EINVAL;
	if (hung(w)) /* one wait per stall, not one per call: the scan calls often */
		return -ETIMEDOUT;
	w->fn = fn;
	w->arg = arg;
	seq = atomic_load_explicit(&w->call_seq, memory_order_relaxed) + 1;
	atomic_store_explicit(&w->call_seq, seq, memory_order_release);
	signal_fd(w->call_fd);
	if (wait_done(w, seq, clock_monotonic_ms() + WORKERS_CALL_MS))
		return 0;
	prev = seq - 1;
	if (atomic_compare_exchange_strong_explicit(&w->taken, &prev, seq, memory_order_acq_rel,
						    memory_order_relaxed)) {
		/* Given up before the worker took it: it never will. */
		w->hung_beat = atomic_load_explicit(&w->beat_ms, memory_order_relaxed);
		if (!w->missed)
			log_err("worker %u has not answered a call for %d ms: calls to it fail "
				"until it runs again", i, WORKERS_CALL_MS);
		w->missed = true;
		return -ETIMEDOUT;
	}
	/* It took the call late and runs fn on arg, which lives in our
	 * caller's frame: going on would leave it a dead frame. */
	(void)wait_done(w, seq, 0);
	return 0;
}

int workers_each(struct loop *main, worker_fn fn, void *arg)
{
	unsigned n = main->ws ? main->ws->n : 1;
	int ret = 0;

	for (unsigned i = 0; i < n; i++) {
		int r = workers_call(main, i, fn, arg);
		ret = ret ? ret : r; /* the others still get it */
	}
	return ret;
}

int workers_others(struct loop *main, worker_fn fn, void *arg)
{
	int ret = 0;

	if (main->worker_id)
		return -EPERM; /* only the main thread calls (a worker's pool is a copy) */
	for (unsigned i = 1; main->ws && i < main->ws->n; i++) {
		int r = workers_call(main, i, fn, arg);
		ret = ret ? ret : r;
	}
	return ret;
}

/* On a worker: publish its counters (seqlock writer; relaxed word stores
 * between release fences, so the reader needs no lock and never waits). */
static void publish(struct loop *l, void *arg)
{
	struct worker *w = l->ws->w[l->worker_id];
	uint64_t seq = atomic_load_explicit(&w->snap_seq, memory_order_relaxed);
	const unsigned char *src = (const unsigned char *)&w->mine;

	(void)arg;
	memset(&w->mine, 0, sizeof(w->mine));
	l->ws->collect(&w->mine, l);
	atomic_store_explicit(&w->snap_seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	for (size_t k = 0; k < SNAP_WORDS; k++) {
		uint64_t v = 0;
		size_t off = k * sizeof(v), n = sizeof(w->mine) - off;
		memcpy(&v, src + off, n < sizeof(v) ? n : sizeof(v));
		atomic_store_explicit(&w->snap[k], v, memory_order_relaxed);
	}
	atomic_store_explicit(&w->snap_seq, seq + 2, memory_order_release);
}

/* On the main thread: a consistent copy of worker w's snapshot, or false
 * (none yet, or the worker is stopped halfway through writing one). */
static bool snap_read(struct worker *w, struct totals *out)
{
	unsigned char *dst = (unsigned char *)out;

	for (int tries = 0; tries < 16; tries++) {
		uint64_t s1 = atomic_load_explicit(&w->snap_seq, memory_order_acquire);
		if (!s1)
			return false;
		if (s1 & 1) {
			(void)sched_yield(); /* a copy takes microseconds */
			continue;
		}
		for (size_t k = 0; k < SNAP_WORDS; k++) {
			uint64_t v = atomic_load_explicit(&w->snap[k], memory_order_relaxed);
			size_t off = k * sizeof(v), n = sizeof(*out) - off;
			memcpy(dst + off, &v, n < sizeof(v) ? n : sizeof(v));
		}
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&w->snap_seq, memory_order_relaxed) == s1)
			return true;
	}
	return false;
}

int workers_totals(struct loop *main, unsigned i, bool fresh, struct totals *out)
{
	struct worker *w;
	int ret = 0;

	if (main->worker_id || !main->ws || i == 0 || i >= main->ws->n || !(w = main->ws->w[i]))
		return -EINVAL;
	if (fresh) /* bounded: a stalled worker's last snapshot serves */
		ret = workers_call(main, i, publish, NULL);
	if (snap_read(w, out)) {
		memcpy(&w->last, out, sizeof(*out));
		return ret;
	}
	memcpy(out, &w->last, sizeof(*out)); /* what a torn read left in out is discarded */
	return ret ? ret : -EAGAIN;
}

bool workers_stalled(struct loop *main, unsigned i)
{
	struct worker *w;
	uint64_t beat;

	if (main->worker_id || !main->ws || i == 0 || i >= main->ws->n || !(w = main->ws->w[i]))
		return false;
	beat = atomic_load_explicit(&w->beat_ms, memory_order_relaxed);
	return hung(w) || (main->now_ms > beat && main->now_ms - beat > WORKERS_STALL_MS);
}

/* The main thread at its scan: report each worker that stalls or runs
 * again, once per change. A worker that missed calls follows the pool
 * again (its copy may be stale). */
static void watch_workers(struct loop *main)
{
	for (unsigned i = 1; i < main->ws->n; i++) {
		struct worker *w = main->ws->w[i];
		bool st;
		if (!w)
			continue;
		st = workers_stalled(main, i);
		if (w->hung_beat != UINT64_MAX && !hung(w))
			w->hung_beat = UINT64_MAX; /* its heartbeat moved: calls wait again */
		if (st == w->stalled)
			continue;
		w->stalled = st;
		if (st) {
			uint64_t beat = atomic_load_explicit(&w->beat_ms, memory_order_relaxed);
			log_err("worker %u stalled: %s, last heartbeat %llu ms ago", i,
				hung(w) ? "a call went unanswered" : "no heartbeat",
				(unsigned long long)(main->now_ms > beat ? main->now_ms - beat : 0));
		} else {
			log_info("worker %u runs again%s", i,
				 w->missed ? "; it missed calls: following the pool again" : "");
			if (w->missed)
				main->pool.dirty = true;
			w->missed = false;
		}
	}
}

/* At every scan, on each loop: a worker bumps its heartbeat and publishes
 * its counters; the main thread notes workers that stall or run again. */
static void workers_tick(struct loop *l)
{
	if (!l->ws)
		return;
	if (l->worker_id) {
		struct worker *w = l->ws->w[l->worker_id];
		publish(l, NULL);
		atomic_store_explicit(&w->beat_ms, l->now_ms, memory_order_relaxed);
	} else {
		watch_workers(l);
	}
}

static const struct loop_part workers_part = {.name = "workers", .scan = workers_tick};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct loop *l = w->l;
	int ret;

	ret = loop_init(l, &w->cfg, w->ws, w->id, w->ws->n);
	for (size_t i = 0; i < w->n_parts && ret == 0; i++)
		ret = loop_attach(l, w->parts[i]);
	if (ret == 0)
		ret = loop_attach(l, &workers_part);
	if (ret == 0 && loop_watch(l, w->call_fd, POLLIN, on_call, w) < 0)
		ret = -ENOSPC;
	w->init_ret = ret;
	atomic_store_explicit(&w->beat_ms, l->now_ms, memory_order_relaxed);
	atomic_store_explicit(&w->done_seq, 0, memory_order_release);
	signal_fd(w->done_fd); /* the main thread waits for each worker's listeners in turn */
	if (ret == 0 && loop_run(l) < 0)
		log_err("worker %u stopped forwarding", w->id);
	atomic_store_explicit(&w->exited, true, memory_order_release);
	loop_fini(l);
	return NULL;
}

static void stop_one(struct loop *l, void *arg)
{
	(void)arg;
	l->stop = true;
}

size_t workers_steer_prog(int family, unsigned n, uint64_t seed, void *prog, size_t cap)
{
	/* The client's address (IPv6: its /64, the unit per-source limits
	 * use), keyed (seed: key << 32 | odd multiplier) and mixed by a
	 * multiply, an xor-shift and a multiply again, its top 16 bits modulo
	 * n: the index of the socket in the group, in the order the workers
	 * bound them. One multiply alone left addresses of one /24 correlated
	 * (16 chosen addresses landed on one worker under 1.7% of seeds; with
	 * the xor-shift, as by chance). */
	const uint32_t key = (uint32_t)(seed >> 32), mult = (uint32_t)seed | 1u;
	const struct sock_filter v4[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 12),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_K, key),
		BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, mult),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, mult),
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
		BPF_STMT(BPF_RET | BPF_A, 0),
	};
	const struct sock_filter v6[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 8),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 12),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_K, key),
		BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, mult),
		BPF_STMT(BPF_MISC | BPF_TAX, 0),
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0),
		BPF_STMT(BPF_ALU | BPF_MUL | BPF_K, mult),
		BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16),
		BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, n),
		BPF_STMT(BPF_RET | BPF_A, 0),
	};
	const struct sock_filter *p = family == AF_INET6 ? v6 : v4;
	size_t len = family == AF_INET6 ? sizeof(v6) : sizeof(v4);

	if (len > cap)
		return 0;
	memcpy(prog, p, len);
	return len / sizeof(struct sock_filter);
}

uint64_t workers_steer_seed(const struct workers *ws)
{
	return ws ? (uint64_t)ws->steer_key << 32 | ws->steer_mult : 0;
}

static int steer(struct loop *main)
{
	for (unsigned i = 0; i < main->n_lst; i++) {
		struct sock_filter code[16];
		struct sock_fprog fp = {.filter = code};
		fp.len = (unsigned short)workers_steer_prog(main->lst[i].addr.u.sa.sa_family,
							    main->ws->n, workers_steer_seed(main->ws),
							    code, sizeof(code));
		if (setsockopt(main->lst[i].fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fp,
			       sizeof(fp)) < 0) {
			int e = errno;
			log_err("steering listener %u to its workers: %s", i, strerror(e));
			return -e;
		}
	}
	return 0;
}

int workers_start(struct loop *main, const struct loop_part *const *parts, size_t n_parts,
		  workers_collect_fn collect)
{
	struct workers *ws = main->ws;
	int ret = 0;

	if (!ws)
		return 0;
	ws->collect = collect;
	ret = loop_attach(main, &workers_part);
	for (unsigned i = 1; i < ws->n && ret == 0; i++) {
		struct worker *w = calloc(1, sizeof(*w));
		if (!w || !(w->l = calloc(1, sizeof(*w->l)))) {
			free(w);
			return -ENOMEM;
		}
		ws->w[i] = w;
		w->ws = ws;
		w->id = i;
		w->parts = parts;
		w->n_parts = n_parts;
		w->hung_beat = UINT64_MAX;
		w->call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		w->done_fd = eventfd(0, EFD_CLOEXEC);
		atomic_store(&w->done_seq, UINT64_MAX);
		if (w->call_fd < 0 || w->done_fd < 0 || config_copy(&w->cfg, &main->cfg) < 0)
			return -ENOMEM;
		ret = pthread_create(&w->th, NULL, worker_main, w);
		if (ret) {
			log_err("worker %u: %s", i, strerror(ret));
			return -ret;
		}
		w->started = true;
		{ /* "wglb-w1": findable in /proc/PID/task/TID/comm and top -H */
			char name[16];
			(void)snprintf(name, sizeof(name), "wglb-w%u", i & 0xffu); /* < 64 */
			ret = pthread_setname_np(w->th, name);
			if (ret)
				log_warn("worker %u: naming its thread: %s", i, strerror(ret));
			ret = 0;
		}
		/* One at a time: each joins the listener groups in its place. */
		while (atomic_load_explicit(&w->done_seq, memory_order_acquire) != 0)
			drain_fd(w->done_fd);
		ret = w->init_ret;
	}
	if (ret == 0)
		ret = steer(main);
	if (ret == 0) {
		log_info("%u workers forwarding", ws->n);
		/* Whatever changed while they started, they follow at the end of
		 * this batch (the packet path settles the pool). */
		main->pool.dirty = true;
	}
	return ret;
}

void workers_stop(struct loop *main)
{
	struct workers *ws = main->ws;

	if (!ws)
		return;
	for (unsigned i = 1; i < ws->n; i++) {
		struct worker *w = ws->w[i];
		if (!w)
			continue;
		if (w->started) {
			if (w->init_ret == 0 && workers_call(main, i, stop_one, NULL) < 0 &&
			    !atomic_load_explicit(&w->exited, memory_order_acquire)) {
				/* Stuck: joining would hang the exit, freeing would pull
				 * its loop from under it. The process's exit ends it. */
				log_err("worker %u does not answer: left to the exit", i);
				ws->left_running = true; /* its ws and w stay: it may run again */
				continue;
			}
			pthread_join(w->th, NULL);
		}
		if (w->call_fd >= 0)
			close(w->call_fd);
		if (w->done_fd >= 0)
			close(w->done_fd);
		config_free(&w->cfg);
		free(w->l);
		free(w);
		ws->w[i] = NULL;
	}
}

unsigned workers_wanted(unsigned configured)
{
	long c;

	if (configured)
		return configured;
	c = sysconf(_SC_NPROCESSORS_ONLN); /* auto: one per CPU */
	return c < 1 ? 1 : c > CONFIG_MAX_WORKERS ? CONFIG_MAX_WORKERS : (unsigned)c;
}

struct workers *workers_new(unsigned n)
{
	struct workers *ws;

	if (n < 2)
		return NULL;
	ws = calloc(1, sizeof(*ws));
	if (!ws)
		return NULL;
	ws->n = n;
	/* libsodium is initialised before the loop (main.c). */
	randombytes_buf(&ws->steer_key, sizeof(ws->steer_key));
	randombytes_buf(&ws->steer_mult, sizeof(ws->steer_mult));
	ws->steer_mult |= 1u; /* odd: a bijection on 32 bits, no address class collapses */
	return ws;
}

void workers_free(struct workers *ws)
{
	if (ws && !ws->left_running)
		free(ws);
}

unsigned workers_count(const struct workers *ws)
{
	return ws ? ws->n : 1;
}
