/* SPDX-License-Identifier: MIT */
/*
 * Forwarding workers (workers = N). Each worker is a thread with a loop of
 * its own: ring, buffers, listener sockets, flows, upstream sockets, rate
 * limits, cookies and statistics. A listen address is one SO_REUSEPORT
 * group of N sockets, steered by a classic BPF program on the client's
 * address (IPv6: its /64), so that a client, every port of its address and
 * so its per-source budgets and cookies stay on one worker while N is
 * unchanged.
 *
 * Worker 0 is the main thread: it forwards too, and runs the parts (control
 * socket, prober, reload) and owns the backend pool. The others learn of
 * changes through workers_call(), which runs a function on a worker's own
 * thread, with its loop, while the main thread waits (a second at most): a
 * worker copies the pool and its Maglev table whole, re-pins its own flows.
 * Counters go the other way: each worker publishes them at its scan with a
 * heartbeat, and the main thread reads them without calling it, so that a
 * scrape never holds up the packet path and a stalled worker is noticed. Nothing on the packet path takes a lock; what the threads share
 * while they run is atomic (the session directory for clients that roam to
 * another worker, and the prober's hints).
 */
#ifndef WGLB_WORKERS_H
#define WGLB_WORKERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct loop_part;
typedef void (*worker_fn)(struct loop *w, void *arg);

struct totals;
/* What each worker publishes at its scan (its counters, on its thread). */
typedef void (*workers_collect_fn)(struct totals *t, const struct loop *w);
/* How many workers: the config's workers, or one per CPU for 0 (auto). */
unsigned workers_wanted(unsigned configured);
/* The shared part for n workers (NULL when n < 2): main.c makes it before
 * the main loop (loop_init) and frees it after loop_fini. */
struct workers *workers_new(unsigned n);
void workers_free(struct workers *ws);
unsigned workers_count(const struct workers *ws);

/* Start workers 1..n-1 (the main loop is worker 0 and already set up),
 * each with a copy of the main loop's configuration and the given parts
 * attached, then steer the listener groups. Each loop also gets the
 * workers' own part (heartbeats, counters published with collect). 0 or
 * -errno (logged). */
int workers_start(struct loop *main, const struct loop_part *const *parts, size_t n_parts,
		  workers_collect_fn collect);
/* Stop and join the workers. */
void workers_stop(struct loop *main);
/* Run fn on worker i's thread with its loop and wait for it (i = 0: here).
 * 0, or -ETIMEDOUT when the worker did not take the call within a second
 * (logged once; fn has not run and never will), and at once while that
 * worker's heartbeat has not moved since. Never waits forever, except for
 * a call the worker took and is running (fn's arg is the caller's). */
int workers_call(struct loop *main, unsigned i, worker_fn fn, void *arg);
/* workers_call on every worker, the main one first: the first error. */
int workers_each(struct loop *main, worker_fn fn, void *arg);
/* workers_call on every worker but the main one: the first error. */
int workers_others(struct loop *main, worker_fn fn, void *arg);

/* Worker i's (> 0) counters as it last published them, read without
 * calling it; fresh: ask it to publish first (a bounded call). 0, or
 * -errno with the last copy read (-ETIMEDOUT: it did not answer). */
int workers_totals(struct loop *main, unsigned i, bool fresh, struct totals *out);
/* No heartbeat for two seconds, or a call to it went unanswered since its
 * last one: it is stopped, starved, or its loop ended. */
bool workers_stalled(struct loop *main, unsigned i);
/* The classic BPF steering program for a listener of this family over n
 * sockets with this seed (workers_steer_seed). Returns its length. */
size_t workers_steer_prog(int family, unsigned n, uint64_t seed, void *prog, size_t cap);
/* The random steering seed of this process (key << 32 | multiplier), for
 * the control socket; 0 with one worker. */
uint64_t workers_steer_seed(const struct workers *ws);

/* A hint for the prober from any worker (kind: FWD_HINT_* bits, an ICMP
 * unreachable or a handshake left unanswered); the main thread takes them
 * (all the bits left since) on its next batch. */
void workers_poke(struct loop *w, unsigned backend, unsigned kind);
unsigned workers_poked(struct loop *main, unsigned backend);

/* Ports and descriptors are the process's, eviction is each worker's: a
 * worker that can have no upstream socket and has no unconfirmed flow of
 * its own to give way asks here; the main thread takes the count (capped)
 * and has the oldest unconfirmed flows of all workers give way. */
void workers_want_socket(struct loop *w);
unsigned workers_sockets_wanted(struct loop *main, unsigned max);

/* Which backend holds a WireGuard session, by the index its client puts in
 * transport data, across workers: a client whose new address lands on
 * another worker keeps its session. -1 when unknown. */
void workers_session_put(struct loop *w, uint32_t index, unsigned backend);
void workers_session_forget(struct loop *w, uint32_t index, unsigned backend);
int workers_session_get(const struct loop *w, uint32_t index);
/* Roams per session index across workers (a token bucket of interval_ms
 * per roam and burst, one for all workers): may it roam now, and spend. */
bool workers_roam_peek(const struct loop *w, uint32_t index, uint32_t interval_ms, uint32_t burst);
void workers_roam_spend(struct loop *w, uint32_t index, uint32_t interval_ms);

#endif
