// SPDX-License-Identifier: MIT
/*
 * The packet path: classify, route by flow then Maglev, open upstream
 * sockets, re-pin, relay replies from the address the client used, and
 * expire idle flows. Every drop has a named counter; nothing here logs
 * per packet (table-full and socket exhaustion are rate limited).
 */
#include "wglb/fwd.h"
#include "wglb/loop.h"
#include "wglb/maglev.h"
#include "wglb/route.h"
#include "wglb/wgmsg.h"
#include "wglb/workers.h"

#include <errno.h>
#include <netinet/udp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

_Static_assert(DROP_TOO_SHORT == WG_DROP_TOO_SHORT - 1 && DROP_BAD_LENGTH == WG_DROP_BAD_LENGTH - 1,
	       "enum drop mirrors enum wg_drop");

#define UPSTREAM_RCVBUF    (1 << 20)
#define INIT_UNANSWERED_DS 50 /* WireGuard's REKEY_TIMEOUT, 5 s, in deciseconds */
/* A session index may open a flow from a new source (roaming) once a
 * second, three in a burst: a real client roams when its network changes;
 * one that holds a valid key and repeats its index from spoofed sources
 * gets no more. */
#define ROAM_RATE  1
#define ROAM_BURST 3
/* Cookie replies to one address (IPv6: its /64), whatever its ports: an
 * initiation "from" a victim must not make wglb a reflector at it. 20 a
 * second (WireGuard's handshake rate per source) after a burst of 50 (a
 * NAT address whose clients all ask at once when load begins); 64-byte
 * replies, so at most 3.2 KB at once and 1.3 KB/s after. */
#define COOKIE_REPLY_RATE  20
#define COOKIE_REPLY_BURST 50

/* Tell the subscribers (the agent client) of a flow's event. */
#define EMIT(l, dp, what, f)                                                   \
	do {                                                                   \
		for (unsigned s_ = 0; s_ < (dp)->n_sub; s_++)                  \
			if ((dp)->sub[s_].ev->what)                             \
				(dp)->sub[s_].ev->what(l, (dp)->sub[s_].ctx, f); \
	} while (0)

int fwd_subscribe(struct loop *l, const struct flow_events *ev, void *ctx)
{
	struct fwd *dp = fwd_of(l);

	if (!dp || dp->n_sub == FWD_MAX_SUBSCRIBERS)
		return -ENOSPC;
	dp->sub[dp->n_sub].ev = ev;
	dp->sub[dp->n_sub].ctx = ctx;
	dp->n_sub++;
	return 0;
}

/* A hint for the prober: probe backend i soon (the main thread's prober
 * takes it with fwd_hint_take; other workers hand it over atomically). */
void fwd_hint(struct loop *l, unsigned i)
{
	struct fwd *dp = fwd_of(l);

	if (i >= CONFIG_MAX_BACKENDS)
		return;
	if (l->worker_id)
		workers_poke(l, i);
	else
		dp->hint[i] = 1;
}

bool fwd_hint_take(struct loop *l, unsigned i)
{
	struct fwd *dp = fwd_of(l);
	bool mine;

	if (i >= CONFIG_MAX_BACKENDS)
		return false;
	mine = dp->hint[i];
	dp->hint[i] = 0;
	return workers_poked(l, i) || mine;
}

static inline void drop_in(struct loop *l, enum drop d)
{
	l->st.drops_in[d]++;
}

static inline void drop_out(struct loop *l, enum drop d)
{
	l->st.drops_out[d]++;
}

int fwd_configure(struct loop *l, const struct wglb_config *nc, bool first)
{
	struct fwd *dp = fwd_of(l);
	bool rates = first || nc->handshake_rate != l->cfg.handshake_rate ||
		     nc->handshake_burst != l->cfg.handshake_burst;
	bool key = first || strcmp(nc->server_public_key, l->cfg.server_public_key);

	if (rates) {
		struct ratelimit_table claimed, proven;
		if (rl_init(&claimed, nc->handshake_rate, nc->handshake_burst) < 0)
			return -ENOMEM;
		if (rl_init(&proven, nc->handshake_rate, nc->handshake_burst) < 0) {
			rl_free(&claimed);
			return -ENOMEM;
		}
		if (!first) {
			rl_free(&dp->hs_limit);
			rl_free(&dp->hs_proven);
		}
		dp->hs_limit = claimed;
		dp->hs_proven = proven;
		l->cfg.handshake_rate = nc->handshake_rate;
		l->cfg.handshake_burst = nc->handshake_burst;
	}
	if (first && rl_init(&dp->roam_limit, ROAM_RATE, ROAM_BURST) < 0)
		return -ENOMEM;
	if (first && rl_init(&dp->cookie_limit, COOKIE_REPLY_RATE, COOKIE_REPLY_BURST) < 0)
		return -ENOMEM;
	if (key) {
		if (nc != &l->cfg)
			memcpy(l->cfg.server_public_key, nc->server_public_key,
			       sizeof(nc->server_public_key));
		dp->check_mac1 = l->cfg.server_public_key[0] &&
				mac1_key_from_base64(l->cfg.server_public_key, &dp->mac1) == 0;
		/* A new key: cookies given under the old one are void. */
		if (!dp->check_mac1 || cookie_init(&dp->cookie, l->cfg.server_public_key) < 0)
			cookie_fini(&dp->cookie);
	}
	l->cfg.handshake_cookies = nc->handshake_cookies;
	l->cfg.under_load_rate = nc->under_load_rate;
	/* A flood from many addresses spreads over the workers: each judges
	 * load against its share of the rate. */
	dp->load.rate = l->n_workers > 1 ? nc->under_load_rate / l->n_workers : nc->under_load_rate;
	if (!dp->load.rate)
		dp->load.rate = 1;
	dp->cookies = dp->check_mac1 && l->cfg.handshake_cookies != COOKIE_OFF;
	return 0;
}

void fwd_unconfigure(struct loop *l)
{
	struct fwd *dp = fwd_of(l);
	rl_free(&dp->hs_limit);
	rl_free(&dp->hs_proven);
	rl_free(&dp->roam_limit);
	rl_free(&dp->cookie_limit);
	sodium_memzero(&dp->mac1, sizeof(dp->mac1));
	cookie_fini(&dp->cookie);
}

static uint32_t now_ds(const struct loop *l)
{
	return (uint32_t)((l->now_ms - l->start_ms) / 100);
}

static uint64_t client_hash(const struct flow_key *k)
{
	return maglev_client_hash(k->family, k->addr, k->port);
}

static void defer_rearm(struct loop *l, struct flow *f)
{
	struct fwd *dp = fwd_of(l);
	l->recv_starved = true;
	if (f->flags & FLOW_F_REARM)
		return;
	f->flags |= FLOW_F_REARM;
	if (dp->n_rearm < dp->ft.cap)
		dp->rearm[dp->n_rearm++] = flow_index(&dp->ft, f);
}

static void fwd_arm_upstream(struct loop *l, struct flow *f)
{
	struct fwd *dp = fwd_of(l);
	struct io_uring_sqe *sqe = loop_sqe(l);

	if (!sqe) { /* armed with the starved receives, after this batch */
		defer_rearm(l, f);
		return;
	}
	f->flags &= (uint8_t)~FLOW_F_REARM;
	io_uring_prep_recvmsg_multishot(sqe, f->fd, &dp->up_rmsg, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = 0;
	io_uring_sqe_set_data64(sqe, ud_pack(dp->op_up, f->gen, flow_index(&dp->ft, f)));
}

/* A connected UDP socket toward the backend; its local port is the flow's
 * identity at the backend (and for the agent, later). -errno on failure. */
static int upstream_open(const struct loop *l, const struct backend *b, uint16_t *port)
{
	union wglb_sa local;
	socklen_t sl = sizeof(local);
	int fd, e;

	fd = socket(b->addr.u.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* A backend's burst for one flow (a bulk transfer) must not overflow
	 * the default ~208 KiB; memory is charged only while datagrams wait. */
	loop_set_bufsize(fd, SO_RCVBUFFORCE, SO_RCVBUF, UPSTREAM_RCVBUF);
	/* A backend's bulk replies arrive as GRO trains where its path
	 * coalesces (the receive buffers hold them whole). */
	if (l->cfg.udp_gro && loop_set_gro(fd) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	if (connect(fd, &b->addr.u.sa, b->addr.len) < 0 ||
	    getsockname(fd, &local.sa, &sl) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	*port = addr_port(&local);
	return fd;
}

static void log_exhaustion(struct loop *l, struct ratelimit *rl, const char *what, int err)
{
	struct fwd *dp = fwd_of(l);
	uint64_t sup;

	if (ratelimit_ok(rl, l->now_ms, 10000, &sup))
		log_warn("%s (%s); %llu more refused since the last report; %u flows open", what,
			 err ? strerror(err) : "all flows confirmed", (unsigned long long)sup,
			 dp->ft.count);
}

/* Stop receiving on a flow's upstream socket, before closing or reusing it. */
static void upstream_cancel(struct loop *l, struct flow *f)
{
	struct fwd *dp = fwd_of(l);
	struct io_uring_sqe *sqe = loop_sqe(l);
	uint64_t ud = ud_pack(dp->op_up, f->gen, flow_index(&dp->ft, f));

	/* The multishot receive holds its own reference to the socket:
	 * cancel it, or the socket outlives close(). With no SQE to be had,
	 * cancel it at once through the register call (6.0+). */
	if (sqe) {
		io_uring_prep_cancel64(sqe, ud, 0);
		io_uring_sqe_set_data64(sqe, ud_pack(OP_IGNORE, 0, 0));
	} else {
		struct io_uring_sync_cancel_reg r = {.addr = ud, .timeout = {-1, -1}};
		int e = io_uring_register_sync_cancel(&l->ring, &r);
		if (e < 0 && e != -ENOENT && e != -EALREADY)
			l->st.cancel_failed++;
	}
	/* Sends prepared for this socket must reach the kernel before its
	 * descriptor number is reused, or it is pointed elsewhere. */
	tx_sync(&fwd_of(l)->tx, l);
}

/* Flow f's session answers to index idx: in this worker's index, and in
 * the directory the workers share (a client that roams to another
 * worker's share of addresses keeps its backend). */
static void session_set(struct loop *l, struct flow *f, uint32_t idx)
{
	struct fwd *dp = fwd_of(l);
	srvidx_set(&dp->si, &dp->ft, f, idx);
	workers_session_put(l, idx, f->backend);
}

static void session_del(struct loop *l, struct flow *f)
{
	struct fwd *dp = fwd_of(l);
	if (f->flags & FLOW_F_INDEXED)
		workers_session_forget(l, f->srv_index, f->backend);
	srvidx_del(&dp->si, &dp->ft, f);
}

/* Forget a flow; hand back its upstream socket, receive cancelled. */
static int flow_retire(struct loop *l, struct flow *f)
{
	struct fwd *dp = fwd_of(l);
	int fd = f->fd;

	upstream_cancel(l, f);
	f->fd = -1;
	if (f->backend < l->pool.n && l->pool.be[f->backend].flows)
		l->pool.be[f->backend].flows--;
	EMIT(l, dp, closed, f);
	session_del(l, f);
	flow_remove(&dp->ft, f);
	l->st.flows_closed++;
	return fd;
}

void fwd_close_flow(struct loop *l, struct flow *f)
{
	int fd = flow_retire(l, f);

	if (fd >= 0)
		close(fd);
}

/* Point a retired flow's socket at backend b: no new descriptor and no new
 * port, so it works when neither can be had. Datagrams still queued for
 * the old flow are discarded, not delivered to the new one. */
static int upstream_reuse(int fd, const struct backend *b, uint16_t *port)
{
	union wglb_sa local;
	socklen_t sl = sizeof(local);
	char junk[1];

	if (getsockname(fd, &local.sa, &sl) < 0)
		return -errno;
	if (local.sa.sa_family != b->addr.u.sa.sa_family)
		return -EAFNOSUPPORT;
	if (connect(fd, &b->addr.u.sa, b->addr.len) < 0)
		return -errno;
	for (int i = 0; i < 256 && recv(fd, junk, sizeof(junk), MSG_DONTWAIT | MSG_TRUNC) >= 0; i++)
		;
	*port = addr_port(&local);
	return 0;
}

/* The oldest unconfirmed flow gives way to a new one on backend b: returns
 * its socket pointed at b (or a new one), -ENOSPC when every flow is
 * confirmed, or -errno. */
static int evict_for(struct loop *l, const struct backend *b, uint16_t *port)
{
	struct fwd *dp = fwd_of(l);
	struct flow *v = flow_victim(&dp->ft);
	int fd;

	if (!v)
		return -ENOSPC;
	fd = flow_retire(l, v);
	l->st.flows_evicted++;
	if (fd >= 0 && upstream_reuse(fd, b, port) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return upstream_open(l, b, port);
}

/* The oldest unconfirmed flow of each worker, by creation time. */
struct oldest {
	bool any[CONFIG_MAX_WORKERS];
	uint32_t created[CONFIG_MAX_WORKERS];
};

static void find_oldest(struct loop *l, void *arg)
{
	struct fwd *dp = fwd_of(l);
	struct oldest *o = arg;
	const struct flow *v = flow_victim(&dp->ft);

	o->any[l->worker_id] = v != NULL;
	if (v)
		o->created[l->worker_id] = v->created;
}

static void give_way(struct loop *l, void *arg)
{
	struct fwd *dp = fwd_of(l);
	struct flow *v = flow_victim(&dp->ft);

	(void)arg;
	if (v) {
		fwd_close_flow(l, v); /* its port and descriptor are free for any worker */
		l->st.flows_evicted++;
	}
}

static void fwd_lend_sockets(struct loop *l)
{
	/* Each scan (100 ms), at most 16 (each costs a call on every worker):
	 * a spoofer that keeps asking cannot keep the main thread calling. */
	unsigned want = workers_sockets_wanted(l, 16), n = workers_count(l->ws);

	while (want--) {
		struct oldest o = {.any = {false}};
		int best = -1;
		workers_each(l, find_oldest, &o);
		for (unsigned i = 0; i < n; i++)
			if (o.any[i] && (best < 0 || (int32_t)(o.created[i] - o.created[best]) < 0))
				best = (int)i;
		if (best < 0)
			return; /* every flow is confirmed: nothing may give way */
		workers_call(l, (unsigned)best, give_way, NULL);
	}
}

/* A new flow, on backend bi when bi >= 0, else on Maglev's choice. */
static struct flow *flow_open(struct loop *l, const struct flow_key *k, uint32_t h, int bi)
{
	struct fwd *dp = fwd_of(l);
	struct flow *f;
	struct backend *b;
	int fd;
	uint16_t port;
	bool full;

	if (bi < 0)
		bi = pool_pick(&l->pool, client_hash(k));
	if (bi < 0) {
		drop_in(l, DROP_NO_BACKEND);
		return NULL;
	}
	b = &l->pool.be[bi];
	if (dp->cookies && dp->ft.unconfirmed >= dp->unconf_cap / 2)
		cookie_load_pressure(&dp->load, l->now_ms); /* unproven sources fill the table */
	full = dp->ft.count == dp->ft.cap || dp->ft.unconfirmed >= dp->unconf_cap;
	fd = full ? -ENOSPC : upstream_open(l, b, &port);
	if (fd < 0) {
		/* A full table, the unconfirmed share used up, or no socket or
		 * port to be had: all alike, the oldest unconfirmed flow gives
		 * way (a flow whose client never proved it receives). */
		int err = fd;
		fd = evict_for(l, b, &port);
		if (fd == -ENOSPC && full) {
			drop_in(l, DROP_TABLE_FULL);
			log_exhaustion(l, &dp->rl_table_full, "flow table full, new flow refused", 0);
			return NULL;
		}
		if (fd == -ENOSPC)
			workers_want_socket(l); /* no flow of its own to give way: another worker's */
		if (fd < 0) {
			drop_in(l, DROP_NO_SOCKET);
			log_exhaustion(l, &dp->rl_no_socket, "cannot open an upstream socket",
				       fd == -ENOSPC ? -err : -fd);
			return NULL;
		}
	}
	f = flow_insert(&dp->ft, k, h, loop_now_s(l));
	if (!f) { /* not reached: a flow was evicted or there was room */
		close(fd);
		drop_in(l, DROP_TABLE_FULL);
		return NULL;
	}
	f->fd = fd;
	flow_set_port(&dp->ft, f, port);
	f->backend = (uint16_t)bi;
	b->flows++;
	b->st.flows_new++;
	l->st.flows_new++;
	fwd_arm_upstream(l, f);
	return f;
}

/* Point the flow at backend nb, keeping its socket (and so its source
 * port) when the address family allows. False if the flow had to close. */
static bool repin(struct loop *l, struct flow *f, unsigned nb, enum repin why)
{
	struct fwd *dp = fwd_of(l);
	struct backend *to = &l->pool.be[nb];
	struct backend *from = f->backend < l->pool.n ? &l->pool.be[f->backend] : NULL;
	uint16_t port;

	if (from && from->addr.u.sa.sa_family != to->addr.u.sa.sa_family) {
		int fd = upstream_open(l, to, &port);
		if (fd < 0) {
			drop_in(l, DROP_NO_SOCKET);
			fwd_close_flow(l, f);
			return false;
		}
		upstream_cancel(l, f);
		close(f->fd);
		f->gen++; /* completions of the old socket's receive are stale now */
		f->fd = fd;
		flow_set_port(&dp->ft, f, port);
		fwd_arm_upstream(l, f);
	} else if (connect(f->fd, &to->addr.u.sa, to->addr.len) < 0) {
		drop_in(l, DROP_SEND_ERROR);
		fwd_close_flow(l, f);
		return false;
	}
	if (from) {
		from->flows--;
		from->st.repins_out++;
	}
	session_del(l, f); /* its session index belongs to the old backend */
	f->edge &= (uint8_t)~FLOW_E_BE_COOKIE; /* and so did its cookie secret */
	to->flows++;
	to->st.repins_in++;
	l->st.repins[why]++;
	f->backend = (uint16_t)nb;
	return true;
}

static void key_from_name(struct flow_key *k, const union wglb_sa *sa, unsigned li)
{
	memset(k, 0, sizeof(*k));
	k->listener = (uint8_t)li;
	if (sa->sa.sa_family == AF_INET6) {
		k->family = AF_INET6;
		memcpy(k->addr, &sa->in6.sin6_addr, 16);
		k->port = sa->in6.sin6_port;
	} else {
		k->family = AF_INET;
		memcpy(k->addr, &sa->in4.sin_addr, 4);
		k->port = sa->in4.sin_port;
	}
}

/* What came with a receive: the address the client sent to (IP(V6)_PKTINFO,
 * when laddr is given) and the GRO segment size (UDP_GRO; 0 when the
 * receive holds one datagram). */
static unsigned rx_cmsgs(struct io_uring_recvmsg_out *out, struct msghdr *m, uint8_t *laddr)
{
	unsigned seg = 0;

	for (struct cmsghdr *c = io_uring_recvmsg_cmsg_firsthdr(out, m); c;
	     c = io_uring_recvmsg_cmsg_nexthdr(out, m, c)) {
		if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
			int v;
			memcpy(&v, CMSG_DATA(c), sizeof(v));
			seg = v > 0 ? (unsigned)v : 0;
		} else if (laddr && c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			memcpy(laddr, &pi.ipi_addr, 4);
		} else if (laddr && c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			memcpy(laddr, &pi.ipi6_addr, 16);
		}
	}
	return seg;
}

static bool allowed(const struct loop *l, const struct flow_key *k)
{
	if (!l->cfg.n_allow)
		return true;
	for (unsigned i = 0; i < l->cfg.n_allow; i++)
		if (cidr_match(&l->cfg.allow[i], k->family, k->addr))
			return true;
	return false;
}

bool fwd_under_load(const struct loop *l)
{
	struct fwd *dp = fwd_of(l);
	return dp->cookies && (l->cfg.handshake_cookies == COOKIE_ALWAYS ||
			      cookie_under_load(&dp->load, l->now_ms));
}

/* Answer a handshake with wglb's cookie reply, built over the handshake
 * in its buffer and sent from the address the client sent to. Returns
 * what the handshake counts as: answered (needs_cookie) or why not. */
static enum drop send_cookie(struct loop *l, const struct flow_key *k, const uint8_t laddr[16],
			     unsigned bid, uint8_t *p, unsigned len)
{
	struct fwd *dp = fwd_of(l);
	uint8_t src[COOKIE_SRC_MAX], reply[WG_COOKIE_SIZE];
	size_t sl = cookie_source(k->family, k->addr, k->port, src);

	/* The source address may be a spoofed victim's: a bounded rate of
	 * replies to it, whatever the ports and however many initiations. */
	if (!rl_allow(&dp->cookie_limit, k->family, k->addr, l->now_ms * 1000000ull))
		return DROP_COOKIE_CAPPED;
	if (cookie_reply(&dp->cookie, l->now_ms, p, len, src, sl, reply) < 0)
		return DROP_COOKIE_UNSENT; /* not reached: the classifier passed a handshake */
	memcpy(p, reply, sizeof(reply)); /* the reply is shorter than any handshake */
	if (tx_reply(&dp->tx, l, k, laddr, bid, p, sizeof(reply)) < 0)
		return DROP_COOKIE_UNSENT;
	return DROP_NEEDS_COOKIE;
}

/* What the decision needs about this datagram (route.h): only what the
 * rules ask of its kind, and rate limits peeked at, not spent. */
static void gather(struct loop *l, const struct flow_key *k, const struct wg_info *wi,
		   const uint8_t *p, unsigned len, const struct flow *f, struct route_in *in)
{
	struct fwd *dp = fwd_of(l);
	uint64_t now_ns = l->now_ms * 1000000ull;

	memset(in, 0, sizeof(*in));
	in->type = wi->type;
	in->receiver = wi->receiver;
	in->cookies = dp->cookies;
	in->under_load = fwd_under_load(l);
	in->session_backend = -1;
	/* A response with no flow is dropped before its macs matter. */
	if (wi->type == WG_T_INITIATION || (wi->type == WG_T_RESPONSE && f)) {
		in->mac1_bad = dp->check_mac1 && !mac1_valid(&dp->mac1, p, len);
		if (dp->cookies && !in->mac1_bad) {
			uint8_t src[COOKIE_SRC_MAX];
			size_t sl = cookie_source(k->family, k->addr, k->port, src);
			in->mac2_ok = cookie_mac2_valid(&dp->cookie, l->now_ms, p, len, src, sl);
			if (in->mac2_ok)
				l->st.mac2_valid++;
			in->mac2_set = !sodium_is_zero(p + len - WG_MAC_LEN, WG_MAC_LEN);
			if (!in->mac2_ok && in->mac2_set)
				l->st.mac2_invalid++;
		}
		/* route_decide() reads the proven budget when mac2 proved the
		 * source, the claimed one otherwise: look up only that one. */
		if (wi->type == WG_T_INITIATION && in->mac2_ok)
			in->proven_budget = rl_peek(&dp->hs_proven, k->family, k->addr, now_ns);
		else if (wi->type == WG_T_INITIATION)
			in->claimed_budget = rl_peek(&dp->hs_limit, k->family, k->addr, now_ns);
	}
	if (f) {
		in->has_flow = true;
		in->flow_keeps = pool_keeps(&l->pool, f->backend);
		in->flow_confirmed = f->flags & FLOW_F_CONFIRMED;
		in->flow_proof = f->flags & FLOW_F_PROOF;
		in->flow_srv_index = f->srv_index;
		in->flow_backend_cookie = (f->edge & FLOW_E_BE_COOKIE) &&
					  ((f->edge & FLOW_E_PROVEN) || (f->flags & FLOW_F_CONFIRMED));
	} else if (wi->type == WG_T_TRANSPORT) {
		const struct flow *g = srvidx_find(&dp->si, &dp->ft, wi->receiver);
		int sb = g ? g->backend : workers_session_get(l, wi->receiver);
		if (sb >= 0 && pool_evicts(&l->pool, (unsigned)sb) < 0) {
			in->session_backend = sb;
			in->roam_budget =
				l->ws ? workers_roam_peek(l, wi->receiver, 1000 / ROAM_RATE, ROAM_BURST)
				      : rl_peek(&dp->roam_limit, AF_INET, (const uint8_t *)&wi->receiver,
						now_ns);
		}
	}
}

/* Spend the budget the verdict used. */
static void spend(struct loop *l, const struct flow_key *k, const struct wg_info *wi,
		  enum route_spend s)
{
	struct fwd *dp = fwd_of(l);
	uint64_t now_ns = l->now_ms * 1000000ull;

	if (s == SPEND_CLAIMED)
		rl_allow(&dp->hs_limit, k->family, k->addr, now_ns);
	else if (s == SPEND_PROVEN)
		rl_allow(&dp->hs_proven, k->family, k->addr, now_ns);
	else if (s == SPEND_ROAM && l->ws) /* one budget for all workers */
		workers_roam_spend(l, wi->receiver, 1000 / ROAM_RATE);
	else if (s == SPEND_ROAM)
		rl_allow(&dp->roam_limit, AF_INET, (const uint8_t *)&wi->receiver, now_ns);
}

/* A client receive: where from, to which local address; then each of its
 * datagrams (a GRO train has several, all from the same source) in turn. */
struct rx {
	uint8_t *p;
	unsigned len;
	struct flow_key k;
	struct wg_info wi;
	uint8_t laddr[16];
};

/* Validate a receive; false when it was dropped (and counted). Sets the
 * payload, its length and the segment size (the length when there is
 * one datagram). */
static bool client_rx(struct loop *l, unsigned li, uint8_t *buf, int res, struct rx *rx,
		      unsigned *seg)
{
	struct listener *ls = &l->lst[li];
	struct io_uring_recvmsg_out *out;

	out = res > 0 ? io_uring_recvmsg_validate(buf, res, &ls->rmsg) : NULL;
	if (!out || out->namelen < sizeof(struct sockaddr_in)) {
		drop_in(l, DROP_TOO_SHORT);
		return false;
	}
	rx->p = io_uring_recvmsg_payload(out, &ls->rmsg);
	rx->len = io_uring_recvmsg_payload_length(out, res, &ls->rmsg);
	if (out->flags & MSG_TRUNC) {
		l->st.pkts_in++;
		ls->st.pkts_in++;
		drop_in(l, DROP_TRUNCATED);
		return false;
	}
	memset(rx->laddr, 0, sizeof(rx->laddr));
	*seg = rx_cmsgs(out, &ls->rmsg, ls->wildcard ? rx->laddr : NULL);
	if (!*seg || *seg > rx->len)
		*seg = rx->len;
	key_from_name(&rx->k, io_uring_recvmsg_name(out), li);
	return true;
}

/* Carry out the verdict: the flow to forward on, or NULL when the datagram
 * was answered (a cookie) or dropped (counted). */
static struct flow *act(struct loop *l, struct rx *rx, struct flow *f, uint32_t h,
			const struct route_out *v, unsigned bid)
{
	int nb;

	if (v->action == ROUTE_COOKIE) {
		drop_in(l, send_cookie(l, &rx->k, rx->laddr, bid, rx->p, rx->len));
		return NULL;
	}
	if (v->action == ROUTE_DROP) {
		drop_in(l, v->why);
		return NULL;
	}
	l->st.msgs_in[rx->wi.type]++;
	if (v->action == ROUTE_NEW) {
		f = flow_open(l, &rx->k, h, v->backend);
		/* A roamed flow joins its session's backend but leaves the index
		 * entry with the flow that learned it from the backend: anyone
		 * who knows an index can roam it from a forged source, and that
		 * flow's expiry would take the entry with it. It gets an entry of
		 * its own when its backend next answers a handshake on it. */
		if (f && v->backend >= 0)
			l->st.flows_roamed++;
		return f;
	}
	if (v->action == ROUTE_REPIN) {
		nb = pool_pick(&l->pool, client_hash(&rx->k));
		if (nb >= 0 && nb != f->backend && !repin(l, f, (unsigned)nb, REPIN_INITIATION))
			return NULL;
	}
	return f;
}

/* One client datagram (rx->p, rx->len): classify, decide, forward. */
static void client_segment(struct loop *l, unsigned li, unsigned bid, struct rx *rx)
{
	struct fwd *dp = fwd_of(l);
	struct listener *ls = &l->lst[li];
	struct route_in in;
	struct route_out v;
	struct backend *b;
	struct flow *f;
	enum wg_drop wd;
	uint32_t h;

	l->st.pkts_in++;
	l->st.bytes_in += rx->len;
	ls->st.pkts_in++;
	ls->st.bytes_in += rx->len;
	wd = wgmsg_classify(rx->p, rx->len, &rx->wi);
	if (wd != WG_DROP_NONE) {
		drop_in(l, (enum drop)(wd - 1));
		return;
	}
	h = flow_hash(&dp->ft, &rx->k);
	f = flow_lookup(&dp->ft, &rx->k, h);
	gather(l, &rx->k, &rx->wi, rx->p, rx->len, f, &in);
	v = route_decide(&in);
	if (v.note_load)
		cookie_load_note(&dp->load, l->now_ms);
	spend(l, &rx->k, &rx->wi, v.spend);
	f = act(l, rx, f, h, &v, bid);
	if (!f)
		return;
	if (v.confirm) {
		flow_confirm(&dp->ft, f);
		l->st.flows_confirmed++;
	}
	if (rx->wi.type == WG_T_INITIATION && in.mac2_ok)
		f->edge |= FLOW_E_PROVEN; /* it read wglb's cookie at this address and port */
	if (rx->wi.type == WG_T_INITIATION) {
		if (!(f->flags & FLOW_F_INIT_PENDING))
			f->init_ds = (uint16_t)now_ds(l);
		f->flags |= FLOW_F_INIT_PENDING;
	}
	if (rx->wi.type == WG_T_RESPONSE)
		EMIT(l, dp, client_response, f); /* a requested re-handshake completed */
	if (ls->wildcard)
		memcpy(f->laddr, rx->laddr, sizeof(f->laddr));
	f->last_rx = loop_now_s(l);
	f->pkts_in++;
	f->bytes_in += rx->len;
	b = &l->pool.be[f->backend];
	b->st.pkts_in++;
	b->st.bytes_in += rx->len;
	b->st.msgs_in[rx->wi.type]++;
	tx_queue(&dp->tx, l, f, false, bid, rx->p, rx->len);
}

static void client_datagram(struct loop *l, void *ctx, unsigned li, uint8_t *buf, unsigned bid,
			    int res)
{
	struct rx rx;
	uint8_t *data;
	unsigned seg, total;

	if (client_rx(l, li, buf, res, &rx, &seg)) {
		l->st.recvs_in++;
		if (!allowed(l, &rx.k)) { /* the whole train: every datagram counted */
			unsigned n = rx.len ? (rx.len + seg - 1) / seg : 1;
			l->st.pkts_in += n;
			l->lst[li].st.pkts_in += n;
			l->st.drops_in[DROP_NOT_ALLOWED] += n;
		} else {
			/* A GRO train: every segment is a datagram of its own,
			 * judged alone; a bad one is dropped, the rest go on. */
			data = rx.p;
			total = rx.len;
			unsigned off = 0;
			do { /* once for an empty datagram (seg 0), to count and drop it */
				rx.p = data + off;
				rx.len = total - off < seg ? total - off : seg;
				client_segment(l, li, bid, &rx);
				off += seg;
			} while (off < total);
		}
	}
	loop_recycle(l, bid); /* the receive's hold: sends hold their own */
}

/* A receive on an upstream socket ended in an error. */
static void upstream_error(struct loop *l, struct flow *f, int res, bool more)
{
	if (res == -ENOBUFS) {
		l->st.enobufs++;
		defer_rearm(l, f);
		return;
	}
	if (res == -ECONNREFUSED) {
		/* ICMP port unreachable: a hint, never a verdict (it can be spoofed). */
		l->pool.be[f->backend].st.icmp_unreach++;
		fwd_hint(l, f->backend);
	}
	if (!more && res != -ECANCELED)
		fwd_arm_upstream(l, f);
}

/* One datagram from flow f's backend: classify, learn, relay. */
static void backend_segment(struct loop *l, struct flow *f, unsigned bid, uint8_t *p, unsigned len)
{
	struct backend *b = &l->pool.be[f->backend];
	struct wg_info wi;
	enum wg_drop wd;

	l->st.pkts_out++;
	l->st.bytes_out += len;
	wd = wgmsg_classify(p, len, &wi);
	if (wd != WG_DROP_NONE) {
		drop_out(l, (enum drop)(wd - 1));
		return;
	}
	l->st.msgs_out[wi.type]++;
	/* The index the client will put in this session's transport data
	 * (or, for the backend's initiation, in its response): naming it
	 * proves the client received this message. */
	if (wi.type == WG_T_RESPONSE || wi.type == WG_T_INITIATION) {
		session_set(l, f, wi.sender);
		f->flags |= FLOW_F_PROOF;
	}
	if (wi.type == WG_T_COOKIE) {
		/* The backend asks this client for its cookie: it judges mac2
		 * here until the handshake completes (route.c, backend_judges). */
		f->edge |= FLOW_E_BE_COOKIE;
	} else if (wi.type == WG_T_RESPONSE) {
		/* The backend answered the client's initiation: its cookie did
		 * its work, and the client holds this session and rekeys it.
		 * Only the backend's answer says so (an initiation from the
		 * client's address can be forged, and would leave a
		 * server-initiated session that a drain never moves). */
		f->edge &= (uint8_t)~FLOW_E_BE_COOKIE;
		f->flags &= (uint8_t)~(FLOW_F_INIT_PENDING | FLOW_F_SRV_INIT);
	} else if (wi.type == WG_T_INITIATION) {
		f->flags |= FLOW_F_SRV_INIT; /* the server rekeys this session, the client never will */
	}
	f->last_rx = loop_now_s(l);
	f->quiet = 0;
	f->pkts_out++;
	f->bytes_out += len;
	b->st.pkts_out++;
	b->st.bytes_out += len;
	b->st.msgs_out[wi.type]++;
	tx_queue(&fwd_of(l)->tx, l, f, true, bid, p, len);
}

/* A completion of an upstream socket's multishot receive. */
static void backend_datagram(struct loop *l, void *ctx, uint64_t ud, int res, uint32_t flags)
{
	struct fwd *dp = ctx;
	uint32_t fidx = ud_idx(ud);
	uint16_t gen = ud_gen(ud);
	bool more = flags & IORING_CQE_F_MORE;
	unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;
	uint8_t *buf = flags & IORING_CQE_F_BUFFER ? loop_buf(l, bid) : NULL;
	struct flow *f = fidx < dp->ft.cap ? &dp->ft.flows[fidx] : NULL;
	struct io_uring_recvmsg_out *out;
	uint8_t *payload;
	unsigned len, seg;

	if (!f || !(f->flags & FLOW_F_USED) || f->gen != gen) {
		if (buf) {
			drop_out(l, DROP_STALE);
			loop_recycle(l, bid);
		}
		return;
	}
	if (res < 0) {
		upstream_error(l, f, res, more);
		return;
	}
	if (!more)
		fwd_arm_upstream(l, f);
	if (!buf)
		return;
	out = io_uring_recvmsg_validate(buf, res, &dp->up_rmsg);
	if (!out) {
		drop_out(l, DROP_TOO_SHORT);
		goto recycle;
	}
	payload = io_uring_recvmsg_payload(out, &dp->up_rmsg);
	len = io_uring_recvmsg_payload_length(out, res, &dp->up_rmsg);
	if (out->flags & MSG_TRUNC) {
		l->st.pkts_out++;
		drop_out(l, DROP_TRUNCATED);
		goto recycle;
	}
	l->st.recvs_out++;
	seg = rx_cmsgs(out, &dp->up_rmsg, NULL);
	if (!seg || seg > len)
		seg = len;
	/* A GRO train from one backend socket: one flow, datagram by datagram
	 * (its flow may close on the way only through a send, never here). */
	unsigned off = 0;
	do { /* once for an empty datagram (seg 0), to count and drop it, as for clients */
		backend_segment(l, f, bid, payload + off, len - off < seg ? len - off : seg);
		off += seg;
	} while (off < len);
recycle:
	loop_recycle(l, bid);
}

/* Move every flow off the backends that stopped serving; count by backend. */
static void move_flows(struct loop *l, const int why_of[], unsigned moved[], unsigned *closed)
{
	struct fwd *dp = fwd_of(l);
	for (uint32_t i = 0; i < dp->ft.cap; i++) {
		struct flow *f = &dp->ft.flows[i];
		unsigned from;
		int nb;
		if (!(f->flags & FLOW_F_USED) || why_of[f->backend] < 0)
			continue;
		from = f->backend;
		nb = pool_pick(&l->pool, client_hash(&f->key));
		if (nb < 0) {
			fwd_close_flow(l, f);
			(*closed)++;
		} else if (repin(l, f, (unsigned)nb, (enum repin)why_of[from])) {
			moved[from]++;
			/* A dead or drained-now server's sessions: have the new one
			 * initiate, instead of waiting ~15 s for the client to. */
			if (why_of[from] == REPIN_DOWN || why_of[from] == REPIN_DRAINED)
				EMIT(l, dp, moved, f);
		}
	}
}

/* Backend idx moved to address a (same family): its flows' sockets follow.
 * A socket that cannot closes its flow (counted): left connected to the
 * old address it would send there. */
static void reconnect_flows(struct loop *l, unsigned idx, const struct wglb_addr *a)
{
	struct fwd *dp = fwd_of(l);
	for (uint32_t i = 0; i < dp->ft.cap; i++) {
		struct flow *f = &dp->ft.flows[i];
		if (!(f->flags & FLOW_F_USED) || f->backend != idx)
			continue;
		if (connect(f->fd, &a->u.sa, a->len) == 0) {
			l->st.repins[REPIN_CHANGED]++;
		} else {
			l->st.move_errors++;
			fwd_close_flow(l, f);
		}
	}
}

static void fwd_reconcile(struct loop *l)
{
	unsigned moved[CONFIG_MAX_BACKENDS] = {0}, closed = 0;
	int why_of[CONFIG_MAX_BACKENDS];
	bool any = false;

	if (pool_rebuild(&l->pool, &l->st) < 0) {
		log_err("Maglev rebuild failed (out of memory); keeping the old table");
		return;
	}
	for (unsigned i = 0; i < l->pool.n; i++) {
		why_of[i] = pool_evicts(&l->pool, i);
		any |= why_of[i] >= 0 && l->pool.be[i].flows;
	}
	if (any)
		move_flows(l, why_of, moved, &closed);
	for (unsigned i = 0; i < l->pool.n; i++) {
		if (moved[i])
			log_info("re-pinned %u flows off backend %s (%s)", moved[i],
				 l->pool.be[i].name, stats_repin_name((enum repin)why_of[i]));
		/* A removed backend's slot is free once its flows have moved
		 * (the other workers move theirs when they follow, below). */
		if (l->pool.be[i].in_use && l->pool.be[i].removing && !l->pool.be[i].flows)
			pool_del(&l->pool, i);
	}
	if (closed)
		log_warn("closed %u flows: no backend left to move them to", closed);
	workers_others(l, fwd_follow_pool, &l->pool);
}

/* On another worker: take the main thread's pool whole (states, addresses,
 * the Maglev table) and move this worker's flows as the main thread moved
 * its own. The flows and counters per backend stay this worker's; a slot
 * that now holds another backend (or none) sends its flows away first. */
void fwd_follow_pool(struct loop *l, void *arg)
{
	const struct pool *src = arg;
	unsigned moved[CONFIG_MAX_BACKENDS] = {0}, closed = 0;
	int why_of[CONFIG_MAX_BACKENDS];
	bool gone[CONFIG_MAX_BACKENDS], any = false;
	unsigned n = src->n > l->pool.n ? src->n : l->pool.n;

	for (unsigned i = 0; i < n; i++) {
		struct backend *d = &l->pool.be[i];
		const struct backend *s = &src->be[i];
		bool same = d->in_use && s->in_use && !strcmp(d->name, s->name) &&
			    d->addr.u.sa.sa_family == s->addr.u.sa.sa_family;
		gone[i] = d->in_use && !same;
		if (same && !addr_equal(&d->addr, &s->addr))
			reconnect_flows(l, i, &s->addr);
	}
	for (unsigned i = 0; i < n; i++) {
		struct backend *d = &l->pool.be[i];
		uint32_t flows = d->flows;
		struct backend_stats st = d->st;
		struct backend was = *d;
		*d = src->be[i];
		d->flows = flows; /* flows and counters are this worker's */
		d->st = st;
		if (gone[i]) { /* a freed slot (never picked): its flows leave from where they are */
			d->addr = was.addr;
			memcpy(d->name, was.name, sizeof(d->name));
		}
	}
	memcpy(l->pool.table, src->table, MAGLEV_SIZE * sizeof(*src->table));
	l->pool.n = src->n;
	l->pool.failopen = src->failopen;
	l->pool.dirty = false;
	for (unsigned i = 0; i < n; i++) {
		why_of[i] = gone[i] ? REPIN_REMOVED : pool_evicts(&l->pool, i);
		any |= why_of[i] >= 0 && l->pool.be[i].flows;
	}
	if (any)
		move_flows(l, why_of, moved, &closed);
	for (unsigned i = 0; i < n; i++)
		if (moved[i])
			log_info("worker %u: re-pinned %u flows off backend %s (%s)", l->worker_id,
				 moved[i], l->pool.be[i].name, stats_repin_name((enum repin)why_of[i]));
	if (closed)
		log_warn("worker %u: closed %u flows: no backend left to move them to", l->worker_id,
			 closed);
	for (unsigned i = 0; i < n; i++)
		if (gone[i]) { /* the slot as the main thread has it, counters from zero */
			l->pool.be[i] = src->be[i];
			memset(&l->pool.be[i].st, 0, sizeof(l->pool.be[i].st));
			l->pool.be[i].flows = 0;
		}
}

/* On another worker: the keys a reload applies at once. */
void fwd_follow_config(struct loop *l, void *arg)
{
	const struct wglb_config *src = arg;

	l->cfg.flow_idle_timeout = src->flow_idle_timeout;
	l->cfg.backend_silence = src->backend_silence;
	memcpy(l->cfg.allow, src->allow, sizeof(src->allow));
	l->cfg.n_allow = src->n_allow;
	if (fwd_configure(l, src, false) < 0)
		log_warn("worker %u: out of memory for the handshake limits; keeping the old ones",
			 l->worker_id);
}

/* A kept backend's new address (same family): its flows' sockets follow. */
void fwd_readdress(struct loop *l, unsigned idx, const struct wglb_addr *a)
{
	pool_set_addr(&l->pool, idx, a);
	reconnect_flows(l, idx, a);
}

bool fwd_move_flow(struct loop *l, struct flow *f, enum repin why)
{
	int nb = pool_pick(&l->pool, client_hash(&f->key));

	if (nb < 0 || nb == f->backend)
		return false;
	return repin(l, f, (unsigned)nb, why);
}

static void expire_one(struct flow *f, void *ctx)
{
	struct loop *l = ctx;
	struct fwd *dp = fwd_of(l);
	uint32_t now = loop_now_s(l);

	if ((f->flags & FLOW_F_INIT_PENDING) && (uint16_t)(now_ds(l) - f->init_ds) >= INIT_UNANSWERED_DS) {
		/* WireGuard retries after REKEY_TIMEOUT: a hint that the backend is gone. */
		f->flags &= (uint8_t)~FLOW_F_INIT_PENDING;
		l->pool.be[f->backend].st.init_unanswered++;
		fwd_hint(l, f->backend);
	}
	/* Anyone who knows a departed client's address and port can keep its
	 * flow alive with well-formed transport; only the backend's answers
	 * show a live session. A confirmed flow whose backend said nothing
	 * for backend_silence gives way to newcomers again, until its client
	 * proves receipt anew (its next handshake). The hand comes by about
	 * once a second. */
	if (f->quiet < UINT8_MAX)
		f->quiet++;
	if ((f->flags & FLOW_F_CONFIRMED) && f->quiet >= l->cfg.backend_silence) {
		flow_demote(&dp->ft, f);
		l->st.flows_demoted++;
	}
	/* Times are whole seconds: strictly more than the timeout, so that
	 * a flow is never expired early (>= could cut it up to 1 s short). */
	if (now - f->last_rx > l->cfg.flow_idle_timeout) {
		l->st.flows_expired++;
		fwd_close_flow(l, f);
	}
}

static void fwd_expire(struct loop *l)
{
	struct fwd *dp = fwd_of(l);
	/* The clock hand covers the whole table once a second. */
	flow_scan(&dp->ft, dp->ft.cap / (1000 / LOOP_SCAN_MS) + 1, expire_one, l);
}

static uint32_t ephemeral_ports(void)
{
	unsigned lo = 0, hi = 0;
	FILE *fp = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");

	if (fp) {
		if (fscanf(fp, "%u %u", &lo, &hi) != 2)
			lo = hi = 0;
		fclose(fp);
	}
	return hi >= lo && hi ? hi - lo + 1 : 28232; /* Linux's default range */
}

/* Each flow owns a socket and an ephemeral port: raise the fd limit, size
 * the table to what both allow when max_flows is not set, say when it is
 * set past either, and return how many flows can really have a socket.
 * The other workers (quiet) find the same from the limits the main thread
 * raised and the max_flows it set in the config they copied. */
static uint32_t flow_capacity(struct wglb_config *cfg, bool quiet)
{
	uint32_t ports = ephemeral_ports(), fds = UINT32_MAX, cap;
	struct rlimit rl;

	if (!quiet && getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("cannot raise the open-file limit: %s", strerror(errno));
	}
	/* The rest of wglb (ring, listeners, control and probe connections) needs 256. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		fds = rl.rlim_cur > 256 + 16 ? (uint32_t)rl.rlim_cur - 256 : 16;
	cap = ports < fds ? ports : fds;
	if (quiet)
		return cfg->max_flows < cap ? cfg->max_flows : cap;
	if (!cfg->max_flows) {
		cfg->max_flows = cap < CONFIG_AUTO_MAX_FLOWS ? cap : CONFIG_AUTO_MAX_FLOWS;
		log_info("max_flows %u (ephemeral ports %u, open files %llu)", cfg->max_flows, ports,
			 (unsigned long long)rl.rlim_cur);
		return cfg->max_flows;
	}
	if (cfg->max_flows > fds)
		log_warn("max_flows = %u but the open-file limit is %llu (one socket per flow): "
			 "at most about %u flows will open; raise LimitNOFILE",
			 cfg->max_flows, (unsigned long long)rl.rlim_cur, fds);
	if (cfg->max_flows > ports)
		log_warn("max_flows = %u but net.ipv4.ip_local_port_range has %u ports (one per "
			 "flow): at most %u flows will open; widen the range or lower max_flows",
			 cfg->max_flows, ports, ports);
	return cfg->max_flows < cap ? cfg->max_flows : cap;
}

/* Re-arm the receives of flows that found no SQE or no buffer. */
static void resume(struct loop *l)
{
	struct fwd *dp = fwd_of(l);

	if (dp->n_rearm < dp->ft.cap) {
		for (uint32_t i = 0; i < dp->n_rearm; i++) {
			struct flow *f = &dp->ft.flows[dp->rearm[i]];
			if ((f->flags & FLOW_F_USED) && (f->flags & FLOW_F_REARM))
				fwd_arm_upstream(l, f);
		}
	} else {
		/* The list overflowed: find them by flag. */
		for (uint32_t i = 0; i < dp->ft.cap; i++) {
			struct flow *f = &dp->ft.flows[i];
			if ((f->flags & FLOW_F_USED) && (f->flags & FLOW_F_REARM))
				fwd_arm_upstream(l, f);
		}
	}
	dp->n_rearm = 0;
}

static void scan(struct loop *l)
{
	fwd_expire(l);
	if (!l->worker_id)
		fwd_lend_sockets(l); /* here: its calls are bounded per scan, not per batch */
}

/* Pool changes the parts made in this batch (the prober, the control
 * socket, the agent client, reload) are applied once all have ticked. */
static void settle(struct loop *l)
{
	if (l->pool.dirty)
		fwd_reconcile(l);
}

static void batch_end(struct loop *l)
{
	tx_flush(&fwd_of(l)->tx, l); /* the batch's sends, grouped per flow */
}

static void sent(struct loop *l, void *ctx, uint64_t ud, int res, uint32_t flags)
{
	struct fwd *dp = ctx;
	int refused = tx_done(&dp->tx, l, ud_idx(ud), res);

	(void)flags;
	if (refused >= 0)
		fwd_hint(l, (unsigned)refused);
}

/* Its share of the table on this worker: unconfirmed flows (sources that
 * have not proved they receive) may hold at most three quarters of what
 * can open, the rest is for clients that proved it, whatever a flood does. */
static int fwd_open(struct loop *l)
{
	struct fwd *dp = calloc(1, sizeof(*dp));
	unsigned n = l->n_workers ? l->n_workers : 1;
	int ret;

	if (!dp)
		return -ENOMEM;
	loop_set_ctx(l, &fwd_part, dp);
	dp->unconf_cap = (uint32_t)((uint64_t)flow_capacity(&l->cfg, l->worker_id != 0) * 3 / 4 / n);
	if (!dp->unconf_cap)
		dp->unconf_cap = 1;
	dp->flows_share = l->cfg.max_flows / n ? l->cfg.max_flows / n : 1;
	/* Upstream sockets are connected: no name; the GRO segment size. */
	dp->up_rmsg.msg_controllen = l->cfg.udp_gro ? CMSG_SPACE(sizeof(int)) : 0;
	ret = loop_op_register(l, backend_datagram, dp);
	if (ret < 0)
		return ret;
	dp->op_up = (unsigned)ret;
	ret = loop_op_register(l, sent, dp);
	if (ret < 0)
		return ret;
	dp->op_send = (unsigned)ret;
	ret = flow_table_init(&dp->ft, dp->flows_share);
	if (ret < 0)
		return ret;
	ret = srvidx_init(&dp->si, dp->flows_share);
	if (ret < 0)
		return ret;
	dp->rearm = calloc(dp->flows_share, sizeof(*dp->rearm));
	if (!dp->rearm)
		return -ENOMEM;
	ret = tx_init(&dp->tx, &dp->ft, dp->op_send);
	if (ret < 0)
		return ret;
	ret = fwd_configure(l, &l->cfg, true);
	if (ret < 0)
		return ret;
	loop_on_datagram(l, client_datagram, dp);
	return 0;
}

static void fwd_close(struct loop *l)
{
	struct fwd *dp = fwd_of(l);

	if (!dp)
		return;
	if (!l->worker_id)
		log_info("stopping: %u flows open", dp->ft.count);
	loop_on_datagram(l, NULL, NULL);
	if (dp->ft.flows)
		for (uint32_t i = 0; i < dp->ft.cap; i++)
			if (dp->ft.flows[i].flags & FLOW_F_USED && dp->ft.flows[i].fd >= 0)
				close(dp->ft.flows[i].fd);
	tx_fini(&dp->tx);
	fwd_unconfigure(l);
	free(dp->rearm);
	srvidx_free(&dp->si);
	flow_table_free(&dp->ft);
	loop_set_ctx(l, &fwd_part, NULL);
	free(dp);
}

const struct loop_part fwd_part = {
	.name = "packet path",
	.open = fwd_open,
	.settle = settle,
	.scan = scan,
	.batch_end = batch_end,
	.resume = resume,
	.close = fwd_close,
};
