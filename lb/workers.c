// SPDX-License-Identifier: MIT
/*
 * Worker threads, the call that runs a function on one of them, listener
 * steering, and the little the workers share (workers.h).
 */
#include "wglb/workers.h"
#include "wglb/log.h"
#include "wglb/loop.h"

#include <errno.h>
#include <linux/filter.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SESSDIR_SLOTS (1u << 16)

struct worker {
	struct workers *ws;
	unsigned id;
	pthread_t th;
	bool started;
	int call_fd, done_fd; /* eventfds: main -> worker, worker -> main */
	worker_fn fn;         /* the pending call, published by call_seq */
	void *arg;
	_Atomic uint64_t call_seq, done_seq;
	int init_ret;
	uint32_t unconf_cap;
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

void workers_poke(struct loop *w, unsigned backend)
{
	if (w->ws && backend < CONFIG_MAX_BACKENDS)
		atomic_store_explicit(&w->ws->poke[backend], 1, memory_order_relaxed);
}

bool workers_poked(struct loop *main, unsigned backend)
{
	return main->ws && backend < CONFIG_MAX_BACKENDS &&
	       atomic_exchange_explicit(&main->ws->poke[backend], 0, memory_order_relaxed);
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
	uint64_t seq;

	(void)revents;
	drain_fd(w->call_fd);
	seq = atomic_load_explicit(&w->call_seq, memory_order_acquire);
	if (seq != atomic_load_explicit(&w->done_seq, memory_order_relaxed)) {
		w->fn(l, w->arg);
		atomic_store_explicit(&w->done_seq, seq, memory_order_release);
		signal_fd(w->done_fd);
	}
	if (!l->stop && loop_watch(l, w->call_fd, POLLIN, on_call, w) < 0)
		log_err("worker %u: cannot watch for calls", w->id);
}

void workers_call(struct loop *main, unsigned i, worker_fn fn, void *arg)
{
	struct worker *w;
	uint64_t seq;

	if (main->worker_id) { /* workers never call: only the main thread waits */
		log_err("worker %u tried to call worker %u", main->worker_id, i);
		return;
	}
	if (i == 0 || !main->ws) {
		fn(main, arg);
		return;
	}
	w = main->ws->w[i];
	w->fn = fn;
	w->arg = arg;
	seq = atomic_load_explicit(&w->call_seq, memory_order_relaxed) + 1;
	atomic_store_explicit(&w->call_seq, seq, memory_order_release);
	signal_fd(w->call_fd);
	/* A worker answers within its batch; one that does not is stuck, and
	 * going on without it would leave it to run fn on a dead frame. */
	for (int waited = 0;; waited++) {
		struct pollfd p = {.fd = w->done_fd, .events = POLLIN};
		if (poll(&p, 1, 1000) > 0) {
			drain_fd(w->done_fd);
			if (atomic_load_explicit(&w->done_seq, memory_order_acquire) == seq)
				return;
		} else if (waited) {
			log_err("worker %u has not answered a call for %d s", i, waited);
		}
	}
}

void workers_each(struct loop *main, worker_fn fn, void *arg)
{
	unsigned n = main->ws ? main->ws->n : 1;

	for (unsigned i = 0; i < n; i++)
		workers_call(main, i, fn, arg);
}

void workers_others(struct loop *main, worker_fn fn, void *arg)
{
	if (main->worker_id)
		return; /* only the main thread calls (a worker's pool is a copy) */
	for (unsigned i = 1; main->ws && i < main->ws->n; i++)
		workers_call(main, i, fn, arg);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct loop *l = w->l;
	int ret;

	ret = loop_init_worker(l, &w->cfg, w->ws, w->id, w->unconf_cap);
	for (size_t i = 0; i < w->n_parts && ret == 0; i++)
		ret = loop_attach(l, w->parts[i]);
	if (ret == 0 && loop_watch(l, w->call_fd, POLLIN, on_call, w) < 0)
		ret = -ENOSPC;
	w->init_ret = ret;
	atomic_store_explicit(&w->done_seq, 0, memory_order_release);
	signal_fd(w->done_fd); /* the main thread waits for each worker's listeners in turn */
	if (ret == 0)
		(void)loop_run(l);
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
	 * use), keyed and mixed by a multiplicative hash (seed: key << 32 |
	 * odd multiplier), its top 16 bits modulo n: the index of the socket
	 * in the group, in the order the workers bound them. */
	const uint32_t key = (uint32_t)(seed >> 32), mult = (uint32_t)seed | 1u;
	const struct sock_filter v4[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)SKF_NET_OFF + 12),
		BPF_STMT(BPF_ALU | BPF_XOR | BPF_K, key),
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

int workers_start(struct loop *main, const struct loop_part *const *parts, size_t n_parts)
{
	struct workers *ws = main->ws;
	int ret = 0;

	if (!ws)
		return 0;
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
		w->unconf_cap = main->unconf_cap;
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
		 * this batch (fwd_reconcile). */
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
			if (w->init_ret == 0)
				workers_call(main, i, stop_one, NULL);
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
	free(ws);
}

unsigned workers_count(const struct workers *ws)
{
	return ws ? ws->n : 1;
}
