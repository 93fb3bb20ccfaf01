// SPDX-License-Identifier: MIT
/*
 * The packet path: classify, route by flow then Maglev, open upstream
 * sockets, re-pin, relay replies from the address the client used, and
 * expire idle flows. Every drop has a named counter; nothing here logs
 * per packet (table-full and socket exhaustion are rate limited).
 */
#include "wglb/agent.h"
#include "wglb/loop.h"
#include "wglb/maglev.h"
#include "wglb/probe.h"
#include "wglb/wgmsg.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

_Static_assert(DROP_TOO_SHORT == WG_DROP_TOO_SHORT - 1 && DROP_BAD_LENGTH == WG_DROP_BAD_LENGTH - 1,
	       "enum drop mirrors enum wg_drop");

#define UPSTREAM_RCVBUF    (1 << 20)
#define INIT_UNANSWERED_DS 50 /* WireGuard's REKEY_TIMEOUT, 5 s, in deciseconds */

static inline void drop_in(struct loop *l, enum drop d)
{
	l->st.drops_in[d]++;
}

static inline void drop_out(struct loop *l, enum drop d)
{
	l->st.drops_out[d]++;
}

static uint32_t now_ds(const struct loop *l)
{
	return (uint32_t)((l->now_ms - l->start_ms) / 100);
}

static uint64_t client_hash(const struct flow_key *k)
{
	return maglev_client_hash(k->family, k->addr, k->port);
}

void fwd_arm_upstream(struct loop *l, struct flow *f)
{
	struct io_uring_sqe *sqe = loop_sqe(l);

	f->flags &= (uint8_t)~FLOW_F_REARM;
	io_uring_prep_recvmsg_multishot(sqe, f->fd, &l->up_rmsg, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = 0;
	io_uring_sqe_set_data64(sqe, ud_pack(OP_RECV_UP, f->gen, flow_index(&l->ft, f)));
}

static void defer_rearm(struct loop *l, struct flow *f)
{
	l->recv_starved = true;
	if (f->flags & FLOW_F_REARM)
		return;
	f->flags |= FLOW_F_REARM;
	if (l->n_rearm < l->ft.cap)
		l->rearm[l->n_rearm++] = flow_index(&l->ft, f);
}

/* A connected UDP socket toward the backend; its local port is the flow's
 * identity at the backend (and for the agent, later). -errno on failure. */
static int upstream_open(const struct backend *b, uint16_t *port)
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
	uint64_t sup;

	if (ratelimit_ok(rl, l->now_ms, 10000, &sup))
		log_warn("%s (%s); %llu more refused since the last report; %u flows open", what,
			 err ? strerror(err) : "all flows confirmed", (unsigned long long)sup,
			 l->ft.count);
}

/* Let go of a flow's upstream socket. */
static void upstream_release(struct loop *l, struct flow *f)
{
	struct io_uring_sqe *sqe = loop_sqe(l);

	/* The multishot receive holds its own reference to the socket:
	 * cancel it, or the socket outlives close(). */
	io_uring_prep_cancel64(sqe, ud_pack(OP_RECV_UP, f->gen, flow_index(&l->ft, f)), 0);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_IGNORE, 0, 0));
	/* Sends prepared for this socket must reach the kernel before its
	 * descriptor number can be reused by the next socket we open. */
	tx_sync(l);
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

void fwd_close_flow(struct loop *l, struct flow *f)
{
	upstream_release(l, f);
	if (f->backend < l->pool.n && l->pool.be[f->backend].flows)
		l->pool.be[f->backend].flows--;
	agent_flow_closed(l, f);
	srvidx_del(&l->si, &l->ft, f);
	flow_remove(&l->ft, f);
	l->st.flows_closed++;
}

/* A new flow, on backend bi when bi >= 0, else on Maglev's choice. */
static struct flow *flow_open(struct loop *l, const struct flow_key *k, uint32_t h, int bi)
{
	struct flow *f;
	struct backend *b;
	int fd;
	uint16_t port;

	if (bi < 0)
		bi = pool_pick(&l->pool, client_hash(k));
	if (bi < 0) {
		drop_in(l, DROP_NO_BACKEND);
		return NULL;
	}
	b = &l->pool.be[bi];
	f = flow_insert(&l->ft, k, h, loop_now_s(l));
	if (!f) {
		/* Full: only a flow whose backend never answered may make room. */
		struct flow *victim = flow_victim(&l->ft);
		if (!victim) {
			drop_in(l, DROP_TABLE_FULL);
			log_exhaustion(l, &l->rl_table_full, "flow table full, new flow refused", 0);
			return NULL;
		}
		fwd_close_flow(l, victim);
		l->st.flows_evicted++;
		f = flow_insert(&l->ft, k, h, loop_now_s(l));
	}
	fd = upstream_open(b, &port);
	if (fd < 0) {
		flow_remove(&l->ft, f);
		drop_in(l, DROP_NO_SOCKET);
		log_exhaustion(l, &l->rl_no_socket, "cannot open an upstream socket", -fd);
		return NULL;
	}
	f->fd = fd;
	f->up_port = port;
	f->backend = (uint16_t)bi;
	if (k->family == AF_INET6)
		f->flags |= FLOW_F_V6;
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
	struct backend *to = &l->pool.be[nb];
	struct backend *from = f->backend < l->pool.n ? &l->pool.be[f->backend] : NULL;
	uint16_t port;

	if (from && from->addr.u.sa.sa_family != to->addr.u.sa.sa_family) {
		int fd = upstream_open(to, &port);
		if (fd < 0) {
			drop_in(l, DROP_NO_SOCKET);
			fwd_close_flow(l, f);
			return false;
		}
		upstream_release(l, f);
		f->gen++; /* completions of the old socket's receive are stale now */
		f->fd = fd;
		f->up_port = port;
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
	srvidx_del(&l->si, &l->ft, f); /* its session index belongs to the old backend */
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

/* The destination address of the client's datagram, from IP(V6)_PKTINFO. */
static void local_addr(struct io_uring_recvmsg_out *out, struct msghdr *m, uint8_t laddr[16])
{
	for (struct cmsghdr *c = io_uring_recvmsg_cmsg_firsthdr(out, m); c;
	     c = io_uring_recvmsg_cmsg_nexthdr(out, m, c)) {
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			memcpy(laddr, &pi.ipi_addr, 4);
			return;
		}
		if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			memcpy(laddr, &pi.ipi6_addr, 16);
			return;
		}
	}
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

void fwd_client_datagram(struct loop *l, unsigned li, uint8_t *buf, unsigned bid, int res)
{
	struct listener *ls = &l->lst[li];
	struct io_uring_recvmsg_out *out;
	struct flow_key k;
	struct wg_info wi;
	enum wg_drop wd;
	struct flow *f;
	struct backend *b;
	uint8_t *payload;
	unsigned len;
	uint32_t h;

	out = res > 0 ? io_uring_recvmsg_validate(buf, res, &ls->rmsg) : NULL;
	if (!out || out->namelen < sizeof(struct sockaddr_in)) {
		drop_in(l, DROP_TOO_SHORT);
		goto recycle;
	}
	payload = io_uring_recvmsg_payload(out, &ls->rmsg);
	len = io_uring_recvmsg_payload_length(out, res, &ls->rmsg);
	l->st.pkts_in++;
	l->st.bytes_in += len;
	ls->st.pkts_in++;
	ls->st.bytes_in += len;
	if (out->flags & MSG_TRUNC) {
		drop_in(l, DROP_TRUNCATED);
		goto recycle;
	}
	key_from_name(&k, io_uring_recvmsg_name(out), li);
	if (!allowed(l, &k)) {
		drop_in(l, DROP_NOT_ALLOWED);
		goto recycle;
	}
	wd = wgmsg_classify(payload, len, &wi);
	if (wd != WG_DROP_NONE) {
		drop_in(l, (enum drop)(wd - 1));
		goto recycle;
	}
	/* Handshakes must be made for these servers (mac1 over the servers'
	 * public key) and come at WireGuard's own per-source rate, checked
	 * before any flow state exists or any re-pin happens. */
	if (l->check_mac1 && (wi.type == WG_T_INITIATION || wi.type == WG_T_RESPONSE) &&
	    !mac1_valid(&l->mac1, payload, len)) {
		drop_in(l, DROP_BAD_MAC1);
		goto recycle;
	}
	if (wi.type == WG_T_INITIATION &&
	    !rl_allow(&l->hs_limit, k.family, k.addr, l->now_ms * 1000000ull)) {
		drop_in(l, DROP_RATE_LIMITED);
		goto recycle;
	}
	l->st.msgs_in[wi.type]++;
	h = flow_hash(&l->ft, &k);
	f = flow_lookup(&l->ft, &k, h);
	if (!f) {
		/* Transport data from a new source for a session we carry: the
		 * client roamed (or its NAT picked a new port). Its session lives
		 * on the backend that owns the index, while that one keeps flows. */
		struct flow *g = wi.type == WG_T_TRANSPORT ? srvidx_find(&l->si, &l->ft, wi.receiver)
							  : NULL;
		int bi = g && pool_evicts(&l->pool, g->backend) < 0 ? g->backend : -1;
		f = flow_open(l, &k, h, bi);
		if (!f)
			goto recycle;
		if (bi >= 0) {
			srvidx_set(&l->si, &l->ft, f, wi.receiver);
			l->st.flows_roamed++;
		}
	} else if (wi.type == WG_T_INITIATION && !pool_keeps(&l->pool, f->backend)) {
		/* A new session may start anywhere: leave a draining or
		 * failed backend now, for Maglev's choice. */
		int nb = pool_pick(&l->pool, client_hash(&k));
		if (nb >= 0 && nb != f->backend && !repin(l, f, (unsigned)nb, REPIN_INITIATION))
			goto recycle;
	}
	if (wi.type == WG_T_INITIATION) {
		f->flags &= (uint8_t)~FLOW_F_SRV_INIT;
		if (!(f->flags & FLOW_F_INIT_PENDING))
			f->init_ds = now_ds(l);
		f->flags |= FLOW_F_INIT_PENDING;
	}
	/* Confirmed = a two-way exchange: the backend answered and the client
	 * then spoke again (its keepalive or data after a response, its
	 * response to a server's initiation). A spoofed source never hears the
	 * answer, so it cannot confirm a flow, even with a valid mac1. */
	if ((f->flags & FLOW_F_REPLIED) && wi.type != WG_T_INITIATION)
		flow_confirm(&l->ft, f);
	if (wi.type == WG_T_RESPONSE)
		agent_client_response(l, f); /* a requested re-handshake completed */
	if (ls->wildcard)
		local_addr(out, &ls->rmsg, f->laddr);
	f->last_rx = loop_now_s(l);
	f->pkts_in++;
	f->bytes_in += len;
	b = &l->pool.be[f->backend];
	b->st.pkts_in++;
	b->st.bytes_in += len;
	b->st.msgs_in[wi.type]++;

	tx_queue(l, f, false, bid, payload, len);
	return;
recycle:
	loop_recycle(l, bid);
}

void fwd_backend_datagram(struct loop *l, uint32_t fidx, uint16_t gen, uint8_t *buf, unsigned bid,
			  int res, bool more)
{
	struct flow *f = fidx < l->ft.cap ? &l->ft.flows[fidx] : NULL;
	struct io_uring_recvmsg_out *out;
	struct backend *b;
	struct wg_info wi;
	enum wg_drop wd;
	uint8_t *payload;
	unsigned len;

	if (!f || !(f->flags & FLOW_F_USED) || f->gen != gen) {
		if (buf) {
			drop_out(l, DROP_STALE);
			loop_recycle(l, bid);
		}
		return;
	}
	b = &l->pool.be[f->backend];
	if (res < 0) {
		if (res == -ENOBUFS) {
			l->st.enobufs++;
			defer_rearm(l, f);
			return;
		}
		if (res == -ECONNREFUSED) {
			/* ICMP port unreachable: a hint, never a verdict (it can be spoofed). */
			b->st.icmp_unreach++;
			probe_poke(l, f->backend);
		}
		if (!more && res != -ECANCELED)
			fwd_arm_upstream(l, f);
		return;
	}
	if (!more)
		fwd_arm_upstream(l, f);
	if (!buf)
		return;
	out = io_uring_recvmsg_validate(buf, res, &l->up_rmsg);
	if (!out) {
		drop_out(l, DROP_TOO_SHORT);
		goto recycle;
	}
	payload = io_uring_recvmsg_payload(out, &l->up_rmsg);
	len = io_uring_recvmsg_payload_length(out, res, &l->up_rmsg);
	l->st.pkts_out++;
	l->st.bytes_out += len;
	if (out->flags & MSG_TRUNC) {
		drop_out(l, DROP_TRUNCATED);
		goto recycle;
	}
	wd = wgmsg_classify(payload, len, &wi);
	if (wd != WG_DROP_NONE) {
		drop_out(l, (enum drop)(wd - 1));
		goto recycle;
	}
	l->st.msgs_out[wi.type]++;
	/* The index the client will put in this session's transport data. */
	if (wi.type == WG_T_RESPONSE || wi.type == WG_T_INITIATION)
		srvidx_set(&l->si, &l->ft, f, wi.sender);
	if (wi.type == WG_T_RESPONSE)
		f->flags &= (uint8_t)~FLOW_F_INIT_PENDING;
	else if (wi.type == WG_T_INITIATION)
		f->flags |= FLOW_F_SRV_INIT; /* the server rekeys this session, the client never will */
	f->flags |= FLOW_F_REPLIED;
	f->last_rx = loop_now_s(l);
	f->pkts_out++;
	f->bytes_out += len;
	b->st.pkts_out++;
	b->st.bytes_out += len;
	b->st.msgs_out[wi.type]++;

	tx_queue(l, f, true, bid, payload, len);
	return;
recycle:
	loop_recycle(l, bid);
}

void fwd_reconcile(struct loop *l)
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
	if (!any)
		return;
	for (uint32_t i = 0; i < l->ft.cap; i++) {
		struct flow *f = &l->ft.flows[i];
		unsigned from;
		int nb;
		if (!(f->flags & FLOW_F_USED) || why_of[f->backend] < 0)
			continue;
		from = f->backend;
		nb = pool_pick(&l->pool, client_hash(&f->key));
		if (nb < 0) {
			fwd_close_flow(l, f);
			closed++;
		} else if (repin(l, f, (unsigned)nb, (enum repin)why_of[from])) {
			moved[from]++;
			/* A dead or drained-now server's sessions: have the new one
			 * initiate, instead of waiting ~15 s for the client to. */
			if (why_of[from] == REPIN_DOWN || why_of[from] == REPIN_DRAINED)
				agent_moved(l, f);
		}
	}
	for (unsigned i = 0; i < l->pool.n; i++)
		if (moved[i])
			log_info("re-pinned %u flows off backend %s (%s)", moved[i],
				 l->pool.be[i].name, stats_repin_name((enum repin)why_of[i]));
	if (closed)
		log_warn("closed %u flows: no backend left to move them to", closed);
}

bool fwd_move_flow(struct loop *l, struct flow *f, enum repin why)
{
	int nb = pool_pick(&l->pool, client_hash(&f->key));

	if (nb < 0 || nb == f->backend)
		return false;
	return repin(l, f, (unsigned)nb, why);
}

void fwd_remove_backend(struct loop *l, unsigned idx)
{
	l->pool.be[idx].removing = true;
	l->pool.dirty = true;
	fwd_reconcile(l); /* moves or closes every flow it had */
	pool_del(&l->pool, idx);
}

static void expire_one(struct flow *f, void *ctx)
{
	struct loop *l = ctx;
	uint32_t now = loop_now_s(l);

	if ((f->flags & FLOW_F_INIT_PENDING) && now_ds(l) - f->init_ds >= INIT_UNANSWERED_DS) {
		/* WireGuard retries after REKEY_TIMEOUT: a hint that the backend is gone. */
		f->flags &= (uint8_t)~FLOW_F_INIT_PENDING;
		l->pool.be[f->backend].st.init_unanswered++;
		probe_poke(l, f->backend);
	}
	/* Times are whole seconds: strictly more than the timeout, so that
	 * a flow is never expired early (>= could cut it up to 1 s short). */
	if (now - f->last_rx > l->cfg.flow_idle_timeout) {
		l->st.flows_expired++;
		fwd_close_flow(l, f);
	}
}

void fwd_expire(struct loop *l)
{
	/* The clock hand covers the whole table once a second. */
	flow_scan(&l->ft, l->ft.cap / (1000 / LOOP_SCAN_MS) + 1, expire_one, l);
}
