// SPDX-License-Identifier: MIT
#include "wglb/tx.h"
#include "wglb/flow.h"
#include "wglb/loop.h"

#include <errno.h>
#include <linux/udp.h>
#include <stdlib.h>
#include <string.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#define GSO_MAX_BYTES 65507 /* the largest UDP payload over IPv4 (IPv6 allows 65527) */
#define TX_GROUPS     4096  /* >= buffers: a group holds at least one */
/* Groups that wglb's own replies may hold at once: one per GRO receive
 * buffer (the replies to one train share a group). Forwarding keeps the
 * rest, two per GRO buffer (a train that passes GSO_MAX_BYTES splits), so
 * a flood of initiations that wants cookies never starves it. */
#define TX_REPLY_GROUPS (TX_GROUPS / 4)

int tx_init(struct tx *t, const struct flow_table *ft, unsigned op)
{
	/* A group holds a buffer: at least as many groups as buffers means
	 * forwarding never runs dry (only splitting a refused GSO send, one
	 * group per datagram, can; those are counted as send errors). */
	_Static_assert(TX_GROUPS >= LOOP_NBUFS && TX_GROUPS >= LOOP_NBUFS_GRO, "a group per buffer");
	_Static_assert(TX_REPLY_GROUPS >= LOOP_NBUFS_GRO &&
			       TX_GROUPS - TX_REPLY_GROUPS >= 2 * LOOP_NBUFS_GRO,
		       "replies get a group per train, forwarding keeps two per buffer");
	t->ft = ft;
	t->op = op;
	t->ng = TX_GROUPS;
	t->g = calloc(t->ng, sizeof(*t->g));
	t->open = calloc(t->ng, sizeof(*t->open));
	t->by_flow[0] = calloc(t->ft->cap, sizeof(uint32_t));
	t->by_flow[1] = calloc(t->ft->cap, sizeof(uint32_t));
	if (!t->g || !t->open || !t->by_flow[0] || !t->by_flow[1])
		return -ENOMEM;
	for (uint32_t i = 0; i < t->ng; i++)
		t->g[i].next = i + 1 < t->ng ? i + 1 : UINT32_MAX;
	t->free_head = 0;
	return 0;
}

void tx_fini(struct tx *t)
{
	free(t->g);
	free(t->open);
	free(t->by_flow[0]);
	free(t->by_flow[1]);
	memset(t, 0, sizeof(*t));
}

static struct cmsghdr *add_cmsg(struct txgroup *g, struct cmsghdr *prev, int level, int type,
				const void *data, size_t len)
{
	struct cmsghdr *c;

	g->msg.msg_control = g->cbuf;
	g->msg.msg_controllen += CMSG_SPACE(len);
	c = prev ? CMSG_NXTHDR(&g->msg, prev) : CMSG_FIRSTHDR(&g->msg);
	c->cmsg_level = level;
	c->cmsg_type = type;
	c->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(c), data, len);
	return c;
}

/* Answer from the exact address the client sent to (a floating IP on a
 * wildcard listener), or the client drops the reply as foreign. */
static struct cmsghdr *add_pktinfo(struct txgroup *g, const struct flow_key *k,
				   const uint8_t laddr[16])
{
	if (k->family == AF_INET6) {
		struct in6_pktinfo pi = {0};
		memcpy(&pi.ipi6_addr, laddr, 16);
		return add_cmsg(g, NULL, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof(pi));
	}
	struct in_pktinfo pi = {0};
	memcpy(&pi.ipi_spec_dst, laddr, 4);
	return add_cmsg(g, NULL, IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
}

static struct txgroup *take_group(struct tx *t, struct loop *l)
{
	uint32_t gi = t->free_head;
	struct txgroup *g;

	if (gi == UINT32_MAX)
		return NULL; /* only where a refused GSO send is split (resend_singly) */
	g = &t->g[gi];
	t->free_head = g->next;
	memset(&g->msg, 0, sizeof(g->msg));
	g->n = 0;
	g->segs = 0;
	g->bytes = 0;
	g->seg = 0;
	g->sealed = 0;
	g->own = 0;
	g->pi_len = 0;
	return g;
}

/* Address a group to a client, from the address it sent to. */
static void to_client(struct tx *t, struct loop *l, struct txgroup *g, const struct flow_key *k,
		      const uint8_t laddr[16])
{
	g->fd = l->lst[k->listener].fd;
	g->listener = k->listener;
	g->msg.msg_namelen = flow_client_sa(k, &g->name);
	g->msg.msg_name = &g->name;
	if (l->lst[k->listener].wildcard) {
		add_pktinfo(g, k, laddr);
		g->pi_len = (uint8_t)g->msg.msg_controllen;
	}
}

static struct txgroup *open_group(struct tx *t, struct loop *l, struct flow *f, bool client)
{
	uint32_t fi = flow_index(t->ft, f);
	struct txgroup *g = take_group(t, l);

	if (!g)
		return NULL;
	g->flow = fi;
	g->to_client = client;
	g->backend = f->backend;
	if (client)
		to_client(t, l, g, &f->key, f->laddr);
	else
		g->fd = f->fd;
	t->open[t->n_open++] = (uint32_t)(g - t->g);
	t->by_flow[client][fi] = (uint32_t)(g - t->g) + 1;
	return g;
}

static void prep(struct tx *t, struct loop *l, uint32_t gi)
{
	struct txgroup *g = &t->g[gi];
	struct io_uring_sqe *sqe = loop_sqe(l);

	if (g->flow != UINT32_MAX)
		t->by_flow[g->to_client][g->flow] = 0;
	if (t->reply_open == gi + 1)
		t->reply_open = 0;
	if (!sqe) { /* counted as a refused send: its buffers and group come back */
		tx_done(t, l, gi, -EBUSY);
		return;
	}
	if (g->segs == 1 && !g->to_client) {
		io_uring_prep_send(sqe, g->fd, g->iov[0].iov_base, g->iov[0].iov_len, MSG_DONTWAIT);
	} else {
		g->msg.msg_iov = g->iov;
		g->msg.msg_iovlen = g->n;
		if (g->segs > 1) {
			/* One GSO send: the kernel cuts it into seg-sized datagrams. */
			uint16_t seg = g->seg;
			struct cmsghdr *last = NULL;
			if (g->msg.msg_controllen)
				last = CMSG_FIRSTHDR(&g->msg);
			add_cmsg(g, last, IPPROTO_UDP, UDP_SEGMENT, &seg, sizeof(seg));
		}
		io_uring_prep_sendmsg(sqe, g->fd, &g->msg, MSG_DONTWAIT);
	}
	io_uring_sqe_set_data64(sqe, ud_pack(t->op, g->to_client, gi));
}

void tx_queue(struct tx *t, struct loop *l, struct flow *f, bool to_client, unsigned bid, uint8_t *p,
	      unsigned len)
{
	uint32_t open = t->by_flow[to_client][flow_index(t->ft, f)];
	struct txgroup *g = open ? &t->g[open - 1] : NULL;
	struct iovec *last;

	/* Join the flow's open group when GSO can carry it: same size as the
	 * run so far (or shorter, which ends the run), room left. */
	if (g && (t->gso_off[to_client] || g->sealed || len > g->seg || g->segs == TX_GSO_MAX ||
		  g->bytes + len > GSO_MAX_BYTES)) {
		prep(t, l, open - 1); /* send the run as it is; start another */
		g = NULL;
	}
	if (!g) {
		g = open_group(t, l, f, to_client);
		if (!g) {
			l->st.drops_in[DROP_SEND_ERROR]++;
			return;
		}
		g->seg = (uint16_t)len;
	}
	if (len < g->seg)
		g->sealed = 1;
	last = g->n ? &g->iov[g->n - 1] : NULL;
	if (last && g->bids[g->n - 1] == bid && (uint8_t *)last->iov_base + last->iov_len == p) {
		last->iov_len += len; /* the next segment of the same coalesced receive */
	} else {
		g->iov[g->n].iov_base = p;
		g->iov[g->n].iov_len = len;
		g->bids[g->n++] = (uint16_t)bid;
		loop_buf_hold(l, bid);
	}
	g->segs++;
	g->bytes += len;
}

int tx_reply(struct tx *t, struct loop *l, const struct flow_key *k, const uint8_t laddr[16], unsigned bid,
	     uint8_t *p, unsigned len)
{
	struct txgroup *g = t->reply_open ? &t->g[t->reply_open - 1] : NULL;

	/* The replies to one receive (a GRO train: one source, one local
	 * address) ride one GSO send. Its buffer is held until the send
	 * completes, so the same bid means the same receive. */
	if (g && (g->bids[0] != bid || t->gso_off[1] || g->segs == TX_GSO_MAX || len != g->seg)) {
		prep(t, l, t->reply_open - 1);
		g = NULL;
	}
	if (!g) {
		if (t->n_reply >= TX_REPLY_GROUPS)
			return -ENOBUFS; /* the rest are forwarding's */
		g = take_group(t, l);
		if (!g)
			return -ENOBUFS;
		t->n_reply++;
		g->flow = UINT32_MAX; /* no flow: only this receive's replies join it */
		g->to_client = 1;
		g->own = 1;
		g->backend = UINT16_MAX;
		g->seg = (uint16_t)len;
		to_client(t, l, g, k, laddr);
		t->reply_open = (uint32_t)(g - t->g) + 1;
	}
	/* One iovec each: a reply sits over its own initiation, not next to
	 * the previous one. */
	g->iov[g->n].iov_base = p;
	g->iov[g->n].iov_len = len;
	g->bids[g->n++] = (uint16_t)bid;
	loop_buf_hold(l, bid);
	g->segs++;
	g->bytes += len;
	return 0;
}

void tx_flush(struct tx *t, struct loop *l)
{

	for (uint32_t i = 0; i < t->n_open; i++) {
		struct txgroup *g = &t->g[t->open[i]];
		if (t->by_flow[g->to_client][g->flow] == t->open[i] + 1)
			prep(t, l, t->open[i]);
	}
	t->n_open = 0;
	if (t->reply_open)
		prep(t, l, t->reply_open - 1);
}

void tx_sync(struct tx *t, struct loop *l)
{
	tx_flush(t, l);
	io_uring_submit(&l->ring);
}

/* The kernel refused a GSO send (-EIO: no checksum offload on the route):
 * send its datagrams again one by one, as wireguard-go does. */
static void resend_singly(struct tx *t, struct loop *l, const struct txgroup *g)
{
	for (unsigned i = 0; i < g->n; i++) {
		uint8_t *p = g->iov[i].iov_base;
		size_t left = g->iov[i].iov_len;
		while (left) {
			unsigned len = left < g->seg ? (unsigned)left : g->seg;
			struct txgroup *s = g->own && t->n_reply >= TX_REPLY_GROUPS ? NULL
											: take_group(t, l);
			if (!s) {
				(g->to_client ? l->st.drops_out : l->st.drops_in)[DROP_SEND_ERROR]++;
			} else {
				s->flow = UINT32_MAX;
				s->own = g->own;
				t->n_reply += g->own;
				s->to_client = g->to_client;
				s->listener = g->listener;
				s->backend = g->backend;
				s->fd = g->fd;
				s->name = g->name;
				s->msg.msg_name = g->msg.msg_name ? &s->name : NULL;
				s->msg.msg_namelen = g->msg.msg_namelen;
				if (g->pi_len) {
					memcpy(s->cbuf, g->cbuf, g->pi_len);
					s->msg.msg_control = s->cbuf;
					s->msg.msg_controllen = g->pi_len;
					s->pi_len = g->pi_len;
				}
				s->iov[0].iov_base = p;
				s->iov[0].iov_len = len;
				s->bids[0] = g->bids[i];
				loop_buf_hold(l, g->bids[i]);
				s->n = s->segs = 1;
				s->seg = (uint16_t)len;
				s->bytes = len;
				prep(t, l, (uint32_t)(s - t->g));
				l->st.gso_split++;
			}
			p += len;
			left -= len;
		}
	}
}

int tx_done(struct tx *t, struct loop *l, uint32_t gi, int res)
{
	int refused = -1;
	struct txgroup *g;

	if (gi >= t->ng)
		return -1;
	g = &t->g[gi];
	if (res == -EIO && g->segs > 1) {
		if (!t->gso_off[g->to_client]) {
			t->gso_off[g->to_client] = true;
			log_warn("UDP GSO refused by the kernel (%s path): sending datagrams one by one",
				 g->to_client ? "client" : "backend");
		}
		resend_singly(t, l, g);
	} else if (g->own) {
		/* wglb's own replies (cookies): not part of the forwarding counts. */
		if (res >= 0)
			l->st.cookies_sent += g->segs;
		else
			l->st.drops_out[DROP_SEND_ERROR] += g->segs;
	} else if (res < 0) {
		if (g->to_client) {
			l->st.drops_out[DROP_SEND_ERROR] += g->segs;
		} else {
			l->st.drops_in[DROP_SEND_ERROR] += g->segs;
			if (res == -ECONNREFUSED && g->backend < l->pool.n)
				refused = g->backend;
		}
	} else if (g->to_client) {
		struct listener *ls = &l->lst[g->listener];
		l->st.fwd_out += g->segs;
		l->st.sends_out++;
		ls->st.pkts_out += g->segs;
		ls->st.bytes_out += g->bytes;
	} else {
		l->st.fwd_in += g->segs;
		l->st.sends_in++;
	}
	for (unsigned i = 0; i < g->n; i++)
		loop_recycle(l, g->bids[i]);
	t->n_reply -= g->own;
	g->own = 0;
	g->n = 0;
	g->next = t->free_head;
	t->free_head = gi;
	return refused;
}
