/* SPDX-License-Identifier: MIT */
/*
 * The packet path (lb/dataplane/): classify, check at the edge, route by flow,
 * session index or Maglev, open and reuse upstream sockets, re-pin, relay
 * replies, expire idle flows. A part of the loop: it takes the listeners'
 * datagrams and registers ops for its upstream receives and its sends
 * (tx.h). Every drop has a named counter.
 */
#ifndef WGLB_FWD_H
#define WGLB_FWD_H

#include "wglb/config.h"
#include "wglb/cookie.h"
#include "wglb/flow.h"
#include "wglb/loop.h"
#include "wglb/mac.h"
#include "wglb/ratelimit.h"
#include "wglb/srvidx.h"
#include "wglb/tx.h"

/* What the parts above the packet path hear of flows (fwd_subscribe): the
 * agent client keeps per-flow state by them. */
struct flow_events {
	void (*closed)(struct loop *l, void *ctx, struct flow *f);
	void (*moved)(struct loop *l, void *ctx, struct flow *f); /* re-pinned by a pool change */
	void (*client_response)(struct loop *l, void *ctx, struct flow *f); /* a handshake completed */
};
#define FWD_MAX_SUBSCRIBERS 2

struct dp_fast;

/* The packet path's state, one per worker: its flow table, session index,
 * sends, the edge's checks and budgets. The part's context (fwd_of). */
struct fwd {
	struct tx tx;
	struct msghdr up_rmsg; /* recvmsg template for upstream sockets: all zero, no name or cmsg */
	unsigned op_up, op_send; /* its ops: upstream receives, sends (ud's gen: 1 = to the client) */
	uint32_t *rearm;       /* flows whose receive must be re-armed */
	uint32_t n_rearm;
	struct flow_table ft;
	struct srvidx si; /* backend session index -> flow (roaming clients) */
	struct ratelimit rl_table_full, rl_no_socket, rl_preserve, rl_bad_source;
	/* Initiations per client source: hs_limit for sources as claimed
	 * (past it, a source must prove itself with a cookie), hs_proven for
	 * sources that did (mac2): a spoofer can spend only the former. */
	struct ratelimit_table hs_limit, hs_proven;
	struct ratelimit_table roam_limit; /* roams per session index */
	struct ratelimit_table cookie_limit; /* cookie replies per destination address */
	struct mac1_key mac1;
	bool check_mac1;
	bool cookies; /* server_public_key set and handshake_cookies != off */
	bool preserve_ok; /* client_address = preserve, and this host can (fwd_preserve_check) */
	struct cookie_checker cookie;
	struct cookie_load load;
	uint32_t flows_share; /* this worker's share of max_flows (its table) */
	uint32_t unconf_cap; /* unconfirmed flows at most: 3/4 of the share */
	/* Hints for the prober (an ICMP unreachable, a handshake left
	 * unanswered), on the main thread; other workers leave theirs with
	 * workers_poke. fwd_hint_take collects both. */
	uint8_t hint[CONFIG_MAX_BACKENDS];
	/* Per backend slot, this worker's: its flows and traffic. The pool's
	 * backends are the main thread's, copied whole when a worker follows. */
	struct {
		struct backend_stats st;
		uint32_t flows;
	} be[CONFIG_MAX_BACKENDS];
	struct {
		const struct flow_events *ev;
		void *ctx;
	} sub[FWD_MAX_SUBSCRIBERS];
	unsigned n_sub;
	struct dp_fast *fast; /* this worker's flows in the fast path's map; NULL: off */
};

/* The mark the balancer's nftables rule gives backends' replies to
 * clients' addresses, routed to a local table (wglb-preserve-routing). */
#define WGLB_PRESERVE_MARK 0xca6c

/* client_address = preserve can work on this host with cfg's listeners:
 * 0, or -1 with the reason and the command that fixes it in why. */
int fwd_preserve_check(const struct wglb_config *cfg, char *why, size_t size);

/* The part (attach it first: the others read its state). */
extern const struct loop_part fwd_part;
static inline struct fwd *fwd_of(const struct loop *l)
{
	return (struct fwd *)loop_ctx(l, &fwd_part);
}
/* Before the loop: raise the open-file limit, size max_flows when the
 * config leaves it to wglb (0: what ports and descriptors allow, up to
 * CONFIG_AUTO_MAX_FLOWS), and say when it is set past either. */
void fwd_size(struct wglb_config *cfg);
/* Hear of this loop's flows' events. 0 or -ENOSPC. */
int fwd_subscribe(struct loop *l, const struct flow_events *ev, void *ctx);
/* The hints the packet path left for backend i since the last call (on
 * the main thread: its own and the other workers'), as FWD_HINT_* bits:
 * an ICMP port unreachable on an upstream socket (only a host on the
 * path can forge one), an initiation left unanswered (anyone with the
 * server's public key can cause one). */
#define FWD_HINT_ICMP       1u
#define FWD_HINT_UNANSWERED 2u
unsigned fwd_hint_take(struct loop *l, unsigned i);

/* A reload: the edge's checks from config nc (mac1 key, cookies,
 * handshake limits) where it differs from the running one; the caller
 * then makes nc the running config. 0, or -ENOMEM (the old limits stay). */
int fwd_configure(struct loop *l, const struct wglb_config *nc);
/* Handshakes must prove their source now (cookies on, and under load or "always"). */
bool fwd_under_load(const struct loop *l);
/* On another worker (workers_call): follow the main thread's pool, whose
 * address arg is, and move this worker's flows as the main thread did. */
void fwd_follow_pool(struct loop *l, void *pool);
/* On another worker: the keys a reload applies at once, from the main
 * thread's config (arg). */
void fwd_follow_config(struct loop *l, void *cfg);
/* Re-pin one flow to Maglev's choice now. False if it stayed or closed. */
bool fwd_move_flow(struct loop *l, struct flow *f, enum repin why);
/* A kept backend's new address (same family): its flows' sockets follow. */
void fwd_readdress(struct loop *l, unsigned idx, const struct wglb_addr *a);

/* The kernel fast path (fast_path = tc, docs/fast-path.md), one program
 * and map per process. On the main thread: fwd_fast_start before the
 * loops open (loads and attaches it, or logs why not and leaves the
 * socket path), fwd_fast_detach once the loop has stopped, fwd_fast_stop
 * after every worker has. */
void fwd_fast_start(const struct wglb_config *cfg);
void fwd_fast_detach(void);
/* Not running (wglb --fast-path-clear, the unit's ExecStopPost): take off a
 * program a wglb that died left on the interfaces cfg names (its listen
 * addresses' and its backends' routes'). How many it removed, with what
 * it did in out, or -errno. */
int fwd_fast_clear(const struct wglb_config *cfg, char *out, size_t size);
void fwd_fast_stop(void);
/* For show info: "off", where it is attached, or why it is not. */
const char *fwd_fast_status(void);
/* The program's own counts (fastpath.h's, process-wide): datagrams it
 * would have forwarded but passed up, and rewrites it abandoned.
 * -ENOENT when the fast path is not in use. */
struct fwd_fast_events {
	uint64_t fib_failed, no_neigh, frag_needed, fwd_disabled, rewrite_failed;
};
int fwd_fast_events(struct fwd_fast_events *out);
/* For wglb --check: what fast_path = tc would do on this host, in out.
 * -ENOTSUP: a build without it; a negative from finding the interfaces. */
int fwd_fast_check(const struct wglb_config *cfg, char *out, size_t size);
/* On f's worker: fold what the program counted for f into its counters
 * (show flows reads it fresh; the expiry scan does it once a second). */
void fwd_fast_fold(struct loop *l, struct flow *f);

#endif
