// SPDX-License-Identifier: MIT
/*
 * The receive paths: a client's datagram (a GRO train, datagram by
 * datagram) is classified, judged by route_decide() and queued to its
 * flow's backend; a backend's reply is relayed to the client from the
 * address the client used. Every drop has a named counter; nothing here
 * logs per packet.
 */
#include "dp.h"

#include <errno.h>
#include <netinet/udp.h>
#include <string.h>

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

/* The local address rx was sent to: from IP_PKTINFO on a wildcard
 * listener, else the listener's own. */
static const uint8_t *local_addr(const struct loop *l, struct rx *rx)
{
	const struct listener *ls = &l->lst[rx->k.listener];

	if (!ls->wildcard) {
		if (ls->addr.u.sa.sa_family == AF_INET6)
			memcpy(rx->laddr, &ls->addr.u.in6.sin6_addr, 16);
		else
			memcpy(rx->laddr, &ls->addr.u.in4.sin_addr, 4);
	}
	return rx->laddr;
}

/* Carry out the verdict: the flow to forward on, or NULL when the datagram
 * was answered (a cookie) or dropped (counted). */
static struct flow *act(struct loop *l, struct fwd *dp, struct rx *rx, struct flow *f, uint32_t h,
			const struct route_out *v, unsigned bid)
{
	int nb;

	if (v->action == ROUTE_COOKIE) {
		drop_in(l, dp_send_cookie(l, dp, &rx->k, rx->laddr, bid, rx->p, rx->len));
		return NULL;
	}
	if (v->action == ROUTE_DROP) {
		drop_in(l, v->why);
		return NULL;
	}
	l->st.msgs_in[rx->wi.type]++;
	if (v->action == ROUTE_NEW) {
		f = dp_flow_open(l, dp, &rx->k, h, v->backend, local_addr(l, rx));
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
		if (nb >= 0 && nb != f->backend && !dp_repin(l, dp, f, (unsigned)nb, REPIN_INITIATION))
			return NULL;
	}
	return f;
}

/* One client datagram (rx->p, rx->len): classify, decide, forward. */
static void client_segment(struct loop *l, struct fwd *dp, unsigned li, unsigned bid, struct rx *rx)
{
	struct listener *ls = &l->lst[li];
	struct route_in in;
	struct route_out v;
	struct backend_stats *bs;
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
	dp_gather(l, dp, &rx->k, &rx->wi, rx->p, rx->len, f, &in);
	v = route_decide(&in);
	if (v.note_load)
		cookie_load_note(&dp->load, l->now_ms);
	dp_spend(l, dp, &rx->k, &rx->wi, v.spend);
	f = act(l, dp, rx, f, h, &v, bid);
	if (!f)
		return;
	if (v.confirm) {
		flow_confirm(&dp->ft, f);
		l->st.flows_confirmed++;
		dp_fast_put(l, dp, f, NULL); /* its next transport may take the kernel's path */
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
	bs = &dp->be[f->backend].st;
	bs->pkts_in++;
	bs->bytes_in += rx->len;
	bs->msgs_in[rx->wi.type]++;
	tx_queue(&dp->tx, l, f, false, bid, rx->p, rx->len);
}

void dp_client_datagram(struct loop *l, void *ctx, unsigned li, uint8_t *buf, unsigned bid,
			int res)
{
	struct fwd *dp = ctx;
	struct rx rx;
	uint8_t *data;
	unsigned seg, total;

	if (client_rx(l, li, buf, res, &rx, &seg)) {
		l->st.recvs_in++;
		if (!dp_allowed(l, &rx.k)) { /* the whole train: every datagram counted */
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
				client_segment(l, dp, li, bid, &rx);
				off += seg;
			} while (off < total);
		}
	}
	loop_recycle(l, bid); /* the receive's hold: sends hold their own */
}

/* A receive on an upstream socket ended in an error. */
static void upstream_error(struct loop *l, struct fwd *dp, struct flow *f, int res, bool more)
{
	if (res == -ENOBUFS) {
		l->st.enobufs++;
		dp_defer_rearm(l, dp, f);
		return;
	}
	if (res == -ECONNREFUSED) {
		/* ICMP port unreachable: a hint, never a verdict (it can be spoofed). */
		dp->be[f->backend].st.icmp_unreach++;
		dp_hint(l, dp, f->backend, FWD_HINT_ICMP);
	}
	if (!more && res != -ECANCELED)
		dp_arm_upstream(l, dp, f);
}

/* One datagram from flow f's backend: classify, learn, relay. */
static void backend_segment(struct loop *l, struct fwd *dp, struct flow *f, unsigned bid,
			    uint8_t *p, unsigned len)
{
	struct backend_stats *bs = &dp->be[f->backend].st;
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
		dp_session_set(l, dp, f, wi.sender);
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
	bs->pkts_out++;
	bs->bytes_out += len;
	bs->msgs_out[wi.type]++;
	tx_queue(&dp->tx, l, f, true, bid, p, len);
}

/* A completion of an upstream socket's multishot receive. */
void dp_backend_datagram(struct loop *l, void *ctx, uint64_t ud, int res, uint32_t flags)
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
		upstream_error(l, dp, f, res, more);
		return;
	}
	if (!more)
		dp_arm_upstream(l, dp, f);
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
		backend_segment(l, dp, f, bid, payload + off, len - off < seg ? len - off : seg);
		off += seg;
	} while (off < len);
recycle:
	loop_recycle(l, bid);
}
