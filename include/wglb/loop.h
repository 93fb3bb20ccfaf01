/* SPDX-License-Identifier: MIT */
/*
 * The event loop: one thread, one io_uring, and the infrastructure every
 * part of wglb runs on: the ring, the provided-buffer ring, the listener
 * sockets (a multishot recvmsg each), one-shot poll watches, signals, the
 * scan clock and the list of parts. It knows no part by name: the packet
 * path (fwd.h), the control socket, the prober, the agent client and
 * reload attach as parts, keep their state as the part's context, and
 * register the completions they want (loop_op_register) and the hooks
 * they run at (struct loop_part). Steady state: no allocation, no syscall
 * per packet, one io_uring_enter per batch.
 */
#ifndef WGLB_LOOP_H
#define WGLB_LOOP_H

#include "wglb/config.h"
#include "wglb/log.h"
#include "wglb/pool.h"
#include "wglb/stats.h"

#include <liburing.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

/* Receive buffers. Without GRO one holds a datagram of a 1500-byte MTU;
 * with UDP_GRO one must hold what the kernel coalesced (up to 64 KiB of
 * payload: a socket with UDP_GRO never gets a truncated train unless the
 * buffer is short), so there are fewer, larger ones: 1024 x 68 KiB, each
 * starting on a page so that a small datagram touches one page of it. */
#define LOOP_NBUFS       4096 /* power of two, <= 32768 */
#define LOOP_BUFSZ       2048 /* header + name + pktinfo + a 1500-MTU datagram */
#define LOOP_NBUFS_GRO   1024
#define LOOP_BUFSZ_GRO   (65536 + 4096) /* header + name + cmsgs + 65535 bytes, whole pages */
#define LOOP_MAX_WATCH   1024
#define LOOP_SCAN_MS     100  /* expiry clock hand period: full table each second */

struct listener {
	int fd;
	bool wildcard; /* bound to 0.0.0.0 / ::, so replies need IP_PKTINFO */
	bool armed;
	struct wglb_addr addr;
	struct msghdr rmsg; /* recvmsg template: name + pktinfo room */
	struct listener_stats st;
};

struct loop;
typedef void (*watch_fn)(struct loop *l, void *ctx, uint32_t revents);

struct watch {
	watch_fn cb;
	void *ctx;
	int fd;
	uint32_t events;
	uint16_t gen;
	bool used;
	bool pending; /* no SQE when asked: armed after this batch */
};

struct workers;

/*
 * A part of wglb on the loop's thread: the packet path, the control
 * socket, the prober, the agent client, reload. main.c (and workers.c, on
 * each worker) attaches them in order; the loop calls their hooks at
 * known points, in that order, and knows nothing else of them. A part
 * keeps its state as its context (loop_set_ctx in open, loop_ctx after).
 */
struct loop_part {
	const char *name;
	int (*open)(struct loop *l);      /* at attach; -errno stops wglb */
	void (*tick)(struct loop *l);     /* every batch, before the batch waits */
	void (*settle)(struct loop *l);   /* every batch, after every part's tick */
	void (*scan)(struct loop *l);     /* every LOOP_SCAN_MS */
	void (*batch_end)(struct loop *l); /* after a batch's completions are dispatched */
	void (*resume)(struct loop *l);   /* receive buffers are back after running out */
	void (*reload)(struct loop *l);   /* SIGHUP or "wglbctl reload" */
	void (*close)(struct loop *l);    /* at the end, in reverse order */
};
#define LOOP_MAX_PARTS 12

/* A completion of an operation a part submitted under an op number it
 * registered (loop_op_register): its user_data, result and flags. When it
 * carries a provided buffer, the buffer arrives held once for the handler
 * (loop_recycle lets go). */
typedef void (*loop_op_fn)(struct loop *l, void *ctx, uint64_t ud, int res, uint32_t flags);
/* What a listener received (the part registered with loop_on_datagram):
 * the buffer, held once, and the completion's result (<= 0: nothing). */
typedef void (*loop_rx_fn)(struct loop *l, void *ctx, unsigned li, uint8_t *buf, unsigned bid,
			   int res);
#define LOOP_MAX_OPS 16

struct loop {
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	uint8_t *bufs;
	uint8_t *buf_refs;   /* per buffer: its receive, and each send that carries a part */
	uint32_t nbufs, bufsz;
	uint32_t br_added; /* buffers returned since the last advance */
	bool recv_starved; /* some multishot receive stopped on -ENOBUFS */
	struct listener lst[CONFIG_MAX_LISTEN];
	unsigned n_lst;
	struct pool pool;
	/* The running config: taken at loop_init, replaced whole by a reload
	 * (control/reload.c; fwd_follow_config on the other workers), read
	 * by everyone else. */
	struct wglb_config cfg;
	struct wglb_stats st;
	struct watch watch[LOOP_MAX_WATCH];
	uint64_t now_ms;     /* CLOCK_MONOTONIC, refreshed every batch */
	uint64_t start_ms;
	uint64_t start_realtime;
	uint64_t next_scan_ms;
	uint64_t next_watchdog_ms, watchdog_us;
	uint32_t setup_flags; /* io_uring features in use, for show info */
	int sigfd;
	bool stop, reload;
	struct workers *ws;  /* NULL with one worker */
	unsigned worker_id, n_workers;
	const struct loop_part *parts[LOOP_MAX_PARTS];
	void *ctx[LOOP_MAX_PARTS]; /* each part's state */
	unsigned n_parts;
	struct {
		loop_op_fn fn;
		void *ctx;
	} ops[LOOP_MAX_OPS];
	unsigned n_ops;
	loop_rx_fn on_rx; /* listeners' datagrams */
	void *on_rx_ctx;
};

static inline uint32_t loop_now_s(const struct loop *l)
{
	return (uint32_t)((l->now_ms - l->start_ms) / 1000);
}

/* Set up ring, buffers, listeners and pool from cfg (which the loop takes
 * over), as worker id of n (0: the main thread, which also takes the
 * signals; ws: the workers' shared part, NULL with one). Errors are
 * logged; returns 0 or -errno. */
int loop_init(struct loop *l, struct wglb_config *cfg, struct workers *ws, unsigned id,
	      unsigned n);
/* Open a part and attach it to the loop. 0, or its -errno (then its close
 * has cleaned up whatever the failed open left, and it is not attached). */
int loop_attach(struct loop *l, const struct loop_part *p);
/* A part's context: set by its open, read by it and by the parts above it.
 * NULL when the part is not attached to this loop. */
void loop_set_ctx(struct loop *l, const struct loop_part *p, void *ctx);
static inline void *loop_ctx(const struct loop *l, const struct loop_part *p)
{
	for (unsigned i = 0; i < l->n_parts; i++)
		if (l->parts[i] == p)
			return l->ctx[i];
	return NULL;
}
/* A new op number for a part's completions (ud_pack's op), dispatched to
 * fn with ctx. The op, or -ENOSPC. */
int loop_op_register(struct loop *l, loop_op_fn fn, void *ctx);
/* Where the listeners' datagrams go (one part takes them). */
void loop_on_datagram(struct loop *l, loop_rx_fn fn, void *ctx);

int loop_run(struct loop *l);
void loop_fini(struct loop *l);
struct io_uring_sqe *loop_sqe(struct loop *l);
void loop_update_clock(struct loop *l);
/* UDP_GRO on a socket: coalesced trains arrive whole (setsockopt's result). */
int loop_set_gro(int fd);
/* A socket buffer of bytes: opt_force (SO_RCVBUFFORCE/SO_SNDBUFFORCE) where
 * we may, else opt, which the kernel caps at rmem_max/wmem_max. */
void loop_set_bufsize(int fd, int opt_force, int opt, int bytes);

/* One-shot poll on fd; cb runs once when ready. Returns an id or -ENOSPC. */
int loop_watch(struct loop *l, int fd, uint32_t events, watch_fn cb, void *ctx);
/* Cancel a pending watch (before closing its fd). */
void loop_unwatch(struct loop *l, int id);

static inline uint8_t *loop_buf(const struct loop *l, unsigned bid)
{
	return l->bufs + (size_t)bid * l->bufsz;
}
/* A buffer is held while a send carries a part of it; the receive that
 * filled it holds it until its datagrams have all been handled. */
static inline void loop_buf_hold(struct loop *l, unsigned bid)
{
	l->buf_refs[bid]++;
}
/* Let go of a hold; the last returns the buffer to the ring. */
void loop_recycle(struct loop *l, unsigned bid);

/* user_data: op in the top byte, a generation, and an index. The loop's
 * own ops come first; parts register theirs after (loop_op_register). */
enum loop_op {
	OP_RECV_LISTEN = 1,
	OP_WATCH,
	OP_IGNORE, /* cancels, poll removals: a buffer it carries goes back */
	OP_PARTS,  /* the first op a part can register */
};
static inline uint64_t ud_pack(unsigned op, uint16_t gen, uint32_t idx)
{
	return (uint64_t)op << 56 | (uint64_t)gen << 32 | idx;
}
static inline unsigned ud_op(uint64_t ud)
{
	return (unsigned)(ud >> 56);
}
static inline uint16_t ud_gen(uint64_t ud)
{
	return (uint16_t)(ud >> 32);
}
static inline uint32_t ud_idx(uint64_t ud)
{
	return (uint32_t)ud;
}

#endif
