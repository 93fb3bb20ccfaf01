// SPDX-License-Identifier: MIT
/*
 * Flows and their upstream sockets: open (or reuse an evicted flow's
 * socket), arm their receives, re-pin, retire, and expire idle ones. The
 * session index follows the flows it names.
 */
#include "dp.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

void dp_defer_rearm(struct loop *l, struct fwd *dp, struct flow *f)
{
	l->recv_starved = true;
	if (f->flags & FLOW_F_REARM)
		return;
	f->flags |= FLOW_F_REARM;
	if (dp->n_rearm < dp->ft.cap)
		dp->rearm[dp->n_rearm++] = flow_index(&dp->ft, f);
}

void dp_arm_upstream(struct loop *l, struct fwd *dp, struct flow *f)
{
	struct io_uring_sqe *sqe = loop_sqe(l);

	if (!sqe) { /* armed with the starved receives, after this batch */
		dp_defer_rearm(l, dp, f);
		return;
	}
	f->flags &= (uint8_t)~FLOW_F_REARM;
	io_uring_prep_recvmsg_multishot(sqe, f->fd, &dp->up_rmsg, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = 0;
	io_uring_sqe_set_data64(sqe, ud_pack(dp->op_up, f->gen, flow_index(&dp->ft, f)));
}

/* Set up a new upstream socket and connect it to backend b: receive
 * buffers, GRO, then connect. Closes fd and returns -errno on failure. */
static int upstream_connect(const struct loop *l, int fd, const struct backend *b)
{
	int e;

	/* A backend's burst for one flow (a bulk transfer) must not overflow
	 * the default ~208 KiB; memory is charged only while datagrams wait. */
	loop_set_bufsize(fd, SO_RCVBUFFORCE, SO_RCVBUF, UPSTREAM_RCVBUF);
	/* A backend's bulk replies arrive as GRO trains where its path
	 * coalesces (the receive buffers hold them whole). */
	if ((l->cfg.udp_gro && loop_set_gro(fd) < 0) || connect(fd, &b->addr.u.sa, b->addr.len) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

/* A connected UDP socket toward the backend, from the balancer's address;
 * its local port is the flow's identity at the backend (and for the
 * agent, later). -errno on failure. */
static int upstream_open_snat(const struct loop *l, const struct backend *b, uint16_t *port)
{
	union wglb_sa local;
	socklen_t sl = sizeof(local);
	int fd, e;

	fd = socket(b->addr.u.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	fd = upstream_connect(l, fd, b);
	if (fd < 0)
		return fd;
	if (getsockname(fd, &local.sa, &sl) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	*port = addr_port(&local);
	return fd;
}

/* client_address = preserve: why source k can be no client's (NULL when
 * it can): not unicast, port 0, an IPv4-mapped address, a backend's own
 * address, or the address it was sent to (this balancer's own: IPv6 input
 * does not refuse it). A flow from such a source is dropped: sent as it
 * claims, the balancer would speak to a backend as itself or as a backend. */
static const char *source_refused(const struct loop *l, const struct flow_key *k,
				  const uint8_t dst[16])
{
	size_t n = k->family == AF_INET ? 4 : 16;

	if (!k->port)
		return "port 0";
	if (k->family == AF_INET) {
		uint32_t a = ((uint32_t)k->addr[0] << 24) | ((uint32_t)k->addr[1] << 16) |
			     ((uint32_t)k->addr[2] << 8) | k->addr[3];
		/* 0/8, loopback, link-local, multicast and 240/4 (broadcast in it) */
		if (a >> 24 == 0 || a >> 24 == 127 || a >> 16 == 0xa9fe || a >> 28 >= 0xe)
			return "not a unicast address";
	} else {
		static const uint8_t lo6[16] = {[15] = 1};
		static const uint8_t any6[16];
		static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};
		if (!memcmp(k->addr, lo6, 16) || !memcmp(k->addr, any6, 16) || k->addr[0] == 0xff ||
		    (k->addr[0] == 0xfe && (k->addr[1] & 0xc0) == 0x80))
			return "not a unicast address";
		if (!memcmp(k->addr, mapped, sizeof(mapped)))
			return "an IPv4-mapped address";
	}
	if (!memcmp(k->addr, dst, n))
		return "this balancer's own address";
	for (unsigned i = 0; i < l->pool.n; i++) {
		const struct backend *o = &l->pool.be[i];
		if (!o->in_use || o->addr.u.sa.sa_family != k->family)
			continue;
		if (!memcmp(k->addr,
			    k->family == AF_INET ? (const void *)&o->addr.u.in4.sin_addr
						 : (const void *)&o->addr.u.in6.sin6_addr,
			    n))
			return "a backend's address";
	}
	return NULL;
}

/* The client's port is one of our listen ports (a client whose own port
 * is 51820): its socket must share the port with the listener. */
static bool is_listen_port(const struct loop *l, uint16_t port_be)
{
	for (unsigned i = 0; i < l->cfg.n_listen; i++)
		if (htons(addr_port(&l->cfg.listen[i].u)) == port_be)
			return true;
	return false;
}

/* A connected UDP socket toward the backend that sends from the client's
 * own address and port (a transparent socket), so that the backend sees
 * who its client is. -errno on failure; the caller falls back to snat. */
static int upstream_open_preserve(const struct loop *l, const struct backend *b,
				  const struct flow_key *k)
{
	union wglb_sa src;
	socklen_t sl = flow_client_sa(k, &src);
	int one = 1, fd, e;

	fd = socket(k->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (k->family == AF_INET)
		e = setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
	else
		e = setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one));
	/* SO_REUSEADDR: a socket of the process before a restart (closed,
	 * but held until its ring is torn down) or another worker's flow for
	 * the same client (a client steered anew while workers start) may
	 * still hold this address and port; the newest socket gets the
	 * backend's replies, and either flow sends them to the same client
	 * from the same listener. A second flow of the same client on another
	 * listener is refused before (flow_find_preserved: each address is
	 * steered to one worker for every listener). A client whose own port
	 * is a listen port also shares it with the listener (SO_REUSEPORT,
	 * this user only: the listeners of a preserve wglb set it); the
	 * backend's replies pick the connected socket over the listener. */
	if (e < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (is_listen_port(l, k->port) &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) ||
	    bind(fd, &src.sa, sl) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return upstream_connect(l, fd, b);
}

/* An upstream socket for client k's flow on backend b: from the client's
 * own address when the config asks for it and it can be (*preserved), else
 * from the balancer's (its port in *port). -errno on failure. */
static int upstream_open(struct loop *l, struct fwd *dp, const struct backend *b,
			 const struct flow_key *k, uint16_t *port, bool *preserved)
{
	*preserved = false;
	if (l->cfg.client_address == CLIENT_PRESERVE) {
		const char *why = NULL;
		int fd = -EADDRNOTAVAIL;
		uint64_t sup;

		if (!dp->preserve_ok)
			why = "this host cannot yet: see wglb --check";
		else if (k->family != b->addr.u.sa.sa_family)
			why = "client and backend differ in address family";
		else if (flow_find_preserved(&dp->ft, k, l->n_lst))
			why = "another flow holds that address and port";
		else
			fd = upstream_open_preserve(l, b, k);
		if (fd >= 0) {
			*preserved = true;
			*port = ntohs(k->port);
			return fd;
		}
		if (ratelimit_ok(&dp->rl_preserve, l->now_ms, 10000, &sup)) {
			char a[ADDR_STRLEN];
			union wglb_sa sa;
			flow_client_sa(k, &sa);
			addr_fmt(&sa, a, sizeof(a));
			log_warn("client_address: %s goes from the balancer's address (%s%s); "
				 "%llu more since the last report",
				 a, why ? why : strerror(-fd),
				 fd == -EPERM ? ": wglb needs CAP_NET_RAW or CAP_NET_ADMIN" : "",
				 (unsigned long long)sup);
		}
	}
	return upstream_open_snat(l, b, port);
}

static void log_exhaustion(struct loop *l, struct fwd *dp, struct ratelimit *rl, const char *what, int err)
{
	uint64_t sup;

	if (ratelimit_ok(rl, l->now_ms, 10000, &sup))
		log_warn("%s (%s); %llu more refused since the last report; %u flows open", what,
			 err ? strerror(err) : "all flows confirmed", (unsigned long long)sup,
			 dp->ft.count);
}

/* Stop receiving on a flow's upstream socket, before closing or reusing it. */
static void upstream_cancel(struct loop *l, struct fwd *dp, struct flow *f)
{
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
	tx_sync(&dp->tx, l);
}

/* Flow f's session answers to index idx: in this worker's index, and in
 * the directory the workers share (a client that roams to another
 * worker's share of addresses keeps its backend). */
void dp_session_set(struct loop *l, struct fwd *dp, struct flow *f, uint32_t idx)
{
	srvidx_set(&dp->si, &dp->ft, f, idx);
	workers_session_put(l, idx, f->backend);
}

static void session_del(struct loop *l, struct fwd *dp, struct flow *f)
{
	if (f->flags & FLOW_F_INDEXED)
		workers_session_forget(l, f->srv_index, f->backend);
	srvidx_del(&dp->si, &dp->ft, f);
}

/* Forget a flow; hand back its upstream socket, receive cancelled. */
static int flow_retire(struct loop *l, struct fwd *dp, struct flow *f)
{
	int fd = f->fd;

	dp_fast_del(l, dp, f); /* before its socket or port can be anyone else's */
	upstream_cancel(l, dp, f);
	f->fd = -1;
	if (f->backend < l->pool.n && dp->be[f->backend].flows)
		dp->be[f->backend].flows--;
	EMIT(l, dp, closed, f);
	session_del(l, dp, f);
	flow_remove(&dp->ft, f);
	l->st.flows_closed++;
	return fd;
}

void dp_close_flow(struct loop *l, struct fwd *dp, struct flow *f)
{
	int fd = flow_retire(l, dp, f);

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

/* The oldest unconfirmed flow gives way to client k's new one on backend
 * b: returns its socket pointed at b (or a new one), -ENOSPC when every
 * flow is confirmed, or -errno. A socket bound to its client's own
 * address (preserve) serves no other client: it closes and a new one opens. */
static int evict_for(struct loop *l, struct fwd *dp, const struct backend *b,
		     const struct flow_key *k, uint16_t *port, bool *preserved)
{
	struct flow *v = flow_victim(&dp->ft);
	bool reusable;
	int fd;

	if (!v)
		return -ENOSPC;
	reusable = !(v->flags & FLOW_F_PRESERVED) && l->cfg.client_address == CLIENT_SNAT;
	fd = flow_retire(l, dp, v);
	l->st.flows_evicted++;
	*preserved = false;
	if (fd >= 0 && reusable && upstream_reuse(fd, b, port) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return upstream_open(l, dp, b, k, port, preserved);
}

/* A new flow, on backend bi when bi >= 0, else on Maglev's choice. */
struct flow *dp_flow_open(struct loop *l, struct fwd *dp, const struct flow_key *k, uint32_t h, int bi,
			  const uint8_t dst[16])
{
	struct flow *f;
	struct backend *b;
	int fd;
	uint16_t port;
	bool full, preserved = false;

	if (l->cfg.client_address == CLIENT_PRESERVE && dp->preserve_ok) {
		const char *why = source_refused(l, k, dst);
		uint64_t sup;
		if (why) {
			drop_in(l, DROP_BAD_SOURCE);
			if (ratelimit_ok(&dp->rl_bad_source, l->now_ms, 10000, &sup)) {
				char a[ADDR_STRLEN];
				union wglb_sa sa;
				flow_client_sa(k, &sa);
				addr_fmt(&sa, a, sizeof(a));
				log_warn("client_address: dropped a datagram from %s (%s); %llu more "
					 "since the last report", a, why, (unsigned long long)sup);
			}
			return NULL;
		}
	}
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
	fd = full ? -ENOSPC : upstream_open(l, dp, b, k, &port, &preserved);
	if (fd < 0) {
		/* A full table, the unconfirmed share used up, or no socket or
		 * port to be had: all alike, the oldest unconfirmed flow gives
		 * way (a flow whose client never proved it receives). */
		int err = fd;
		fd = evict_for(l, dp, b, k, &port, &preserved);
		if (fd == -ENOSPC && full) {
			drop_in(l, DROP_TABLE_FULL);
			log_exhaustion(l, dp, &dp->rl_table_full, "flow table full, new flow refused", 0);
			return NULL;
		}
		if (fd == -ENOSPC)
			workers_want_socket(l); /* no flow of its own to give way: another worker's */
		if (fd < 0) {
			drop_in(l, DROP_NO_SOCKET);
			log_exhaustion(l, dp, &dp->rl_no_socket, "cannot open an upstream socket",
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
	if (preserved) {
		f->flags |= FLOW_F_PRESERVED;
		l->st.flows_preserved++;
	} else if (l->cfg.client_address == CLIENT_PRESERVE) {
		l->st.preserve_fallback++;
	}
	flow_set_port(&dp->ft, f, port);
	f->backend = (uint16_t)bi;
	dp->be[bi].flows++;
	dp->be[bi].st.flows_new++;
	l->st.flows_new++;
	dp_arm_upstream(l, dp, f);
	return f;
}

/* Point the flow at backend nb, keeping its socket (and so its source
 * port) when the address family allows. False if the flow had to close. */
bool dp_repin(struct loop *l, struct fwd *dp, struct flow *f, unsigned nb, enum repin why)
{
	struct backend *to = &l->pool.be[nb];
	struct backend *from = f->backend < l->pool.n ? &l->pool.be[f->backend] : NULL;
	uint16_t port;

	/* Its entries name the old backend (and maybe the old socket): out
	 * before the move, so that the next datagram goes where this one will. */
	dp_fast_del(l, dp, f);
	if (from && from->addr.u.sa.sa_family != to->addr.u.sa.sa_family) {
		bool preserved;
		int fd = upstream_open(l, dp, to, &f->key, &port, &preserved);
		if (fd < 0) {
			drop_in(l, DROP_NO_SOCKET);
			dp_close_flow(l, dp, f);
			return false;
		}
		upstream_cancel(l, dp, f);
		close(f->fd);
		f->gen++; /* completions of the old socket's receive are stale now */
		f->fd = fd;
		f->flags = (uint8_t)((f->flags & ~FLOW_F_PRESERVED) | (preserved ? FLOW_F_PRESERVED : 0));
		flow_set_port(&dp->ft, f, port);
		dp_arm_upstream(l, dp, f);
	} else if (connect(f->fd, &to->addr.u.sa, to->addr.len) < 0) {
		drop_in(l, DROP_SEND_ERROR);
		dp_close_flow(l, dp, f);
		return false;
	}
	if (from) {
		dp->be[f->backend].flows--;
		dp->be[f->backend].st.repins_out++;
	}
	session_del(l, dp, f); /* its session index belongs to the old backend */
	f->edge &= (uint8_t)~FLOW_E_BE_COOKIE; /* and so did its cookie secret */
	dp->be[nb].flows++;
	dp->be[nb].st.repins_in++;
	l->st.repins[why]++;
	f->backend = (uint16_t)nb;
	dp_fast_put(l, dp, f, NULL); /* still confirmed: the socket path forwards it there at once */
	return true;
}

struct scan_ctx {
	struct loop *l;
	struct fwd *dp;
};

static void expire_one(struct flow *f, void *ctx)
{
	struct loop *l = ((struct scan_ctx *)ctx)->l;
	struct fwd *dp = ((struct scan_ctx *)ctx)->dp;
	uint32_t now = loop_now_s(l);

	dp_fast_fold(l, dp, f); /* what the kernel forwarded counts as heard, both ways */
	if ((f->flags & FLOW_F_INIT_PENDING) && (uint16_t)(now_ds(l) - f->init_ds) >= INIT_UNANSWERED_DS) {
		/* WireGuard retries after REKEY_TIMEOUT: a hint that the backend is gone. */
		f->flags &= (uint8_t)~FLOW_F_INIT_PENDING;
		dp->be[f->backend].st.init_unanswered++;
		dp_hint(l, dp, f->backend, FWD_HINT_UNANSWERED);
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
		dp_fast_del(l, dp, f); /* unconfirmed: its transport goes up again */
		flow_demote(&dp->ft, f);
		l->st.flows_demoted++;
	}
	/* Times are whole seconds: strictly more than the timeout, so that
	 * a flow is never expired early (>= could cut it up to 1 s short). */
	if (now - f->last_rx > l->cfg.flow_idle_timeout) {
		l->st.flows_expired++;
		dp_close_flow(l, dp, f);
	}
}

void dp_expire(struct loop *l, struct fwd *dp)
{
	struct scan_ctx c = {l, dp};

	/* The clock hand covers the whole table once a second. */
	flow_scan(&dp->ft, dp->ft.cap / (1000 / LOOP_SCAN_MS) + 1, expire_one, &c);
}
