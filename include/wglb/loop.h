/* SPDX-License-Identifier: MIT */
/*
 * The event loop: one thread, one io_uring. Listeners and every flow's
 * upstream socket carry a multishot recvmsg on one provided-buffer ring;
 * a datagram is sent onward straight from the buffer it arrived in, and
 * the buffer returns to the ring when the send completes. Steady state:
 * no allocation, no syscall per packet, one io_uring_enter per batch.
 */
#ifndef WGLB_LOOP_H
#define WGLB_LOOP_H

#include "wglb/config.h"
#include "wglb/cookie.h"
#include "wglb/flow.h"
#include "wglb/log.h"
#include "wglb/mac.h"
#include "wglb/ratelimit.h"
#include "wglb/srvidx.h"
#include "wglb/pool.h"
#include "wglb/stats.h"
#include "wglb/tx.h"

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

struct ctl;
struct prober;
struct workers;
struct agent;

/*
 * A part of wglb that runs beside the packet path on the loop's thread: the
 * control socket, the prober, the agent client, reload. main.c attaches
 * them; the loop calls them at known points and knows nothing else of them.
 */
struct loop_part {
	const char *name;
	int (*open)(struct loop *l);    /* at start; -errno stops wglb */
	void (*tick)(struct loop *l);   /* every batch, before the pool is reconciled */
	void (*reload)(struct loop *l); /* SIGHUP or "wglbctl reload" */
	void (*close)(struct loop *l);  /* at the end, in reverse order */
};
#define LOOP_MAX_PARTS 8

struct loop {
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	uint8_t *bufs;
	uint8_t *buf_refs;   /* per buffer: its receive, and each send that carries a part */
	uint32_t nbufs, bufsz;
	uint32_t br_added; /* buffers returned since the last advance */
	bool recv_starved; /* some multishot receive stopped on -ENOBUFS */
	struct tx tx;
	struct listener lst[CONFIG_MAX_LISTEN];
	unsigned n_lst;
	struct msghdr up_rmsg; /* recvmsg template for upstream sockets: all zero, no name or cmsg */
	uint32_t *rearm;       /* flows whose receive must be re-armed */
	uint32_t n_rearm;
	struct flow_table ft;
	struct srvidx si; /* backend session index -> flow (roaming clients) */
	struct pool pool;
	struct wglb_config cfg; /* the running config, read-only between reloads */
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
	struct ratelimit rl_table_full, rl_no_socket;
	/* Initiations per client source: hs_limit for sources as claimed
	 * (past it, a source must prove itself with a cookie), hs_proven for
	 * sources that did (mac2): a spoofer can spend only the former. */
	struct ratelimit_table hs_limit, hs_proven;
	struct ratelimit_table roam_limit; /* roams per session index */
	struct ratelimit_table cookie_limit; /* cookie replies per destination address */
	struct mac1_key mac1;
	bool check_mac1;
	bool cookies; /* server_public_key set and handshake_cookies != off */
	struct cookie_checker cookie;
	struct cookie_load load;
	uint32_t flows_share; /* this worker's share of max_flows (its table) */
	uint32_t unconf_cap; /* unconfirmed flows at most: 3/4 of the share */
	struct workers *ws;  /* NULL with one worker */
	unsigned worker_id, n_workers;
	const struct loop_part *parts[LOOP_MAX_PARTS];
	unsigned n_parts;
	struct ctl *ctl;       /* the parts' own state, for the modules that read it */
	struct prober *prober;
	struct agent *agent;
};

static inline uint32_t loop_now_s(const struct loop *l)
{
	return (uint32_t)((l->now_ms - l->start_ms) / 1000);
}

/* Set up ring, buffers, listeners, flow table and pool from cfg (which the
 * loop takes over). Errors are logged; returns 0 or -errno. */
int loop_init(struct loop *l, struct wglb_config *cfg);
/* The same for worker id (workers.c, on the worker's own thread). */
int loop_init_worker(struct loop *l, struct wglb_config *cfg, struct workers *ws, unsigned id,
		     uint32_t unconf_cap);
/* Open a part and attach it to the loop. 0, or its -errno (then its close
 * has cleaned up whatever the failed open left, and it is not attached). */
int loop_attach(struct loop *l, const struct loop_part *p);
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

/* user_data: op in the top byte, a generation, and an index. */
enum loop_op {
	OP_RECV_LISTEN = 1,
	OP_RECV_UP,
	OP_SEND, /* gen field: 1 = toward the client */
	OP_WATCH,
	OP_IGNORE, /* cancels, poll removals */
};
static inline uint64_t ud_pack(enum loop_op op, uint16_t gen, uint32_t idx)
{
	return (uint64_t)op << 56 | (uint64_t)gen << 32 | idx;
}
static inline enum loop_op ud_op(uint64_t ud)
{
	return (enum loop_op)(ud >> 56);
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
