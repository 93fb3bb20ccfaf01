// SPDX-License-Identifier: MIT
/*
 * wglb-bench: N emulated WireGuard clients, each with its own UDP socket
 * (its own flow), speaking WireGuard's message shapes: a 148-byte
 * initiation, then transport messages closed-loop with a window W or
 * open-loop at a total rate R. Clients follow WireGuard's timers: an
 * unanswered initiation is retried after 5 s (REKEY_TIMEOUT); data
 * unanswered for 15 s (KEEPALIVE + REKEY_TIMEOUT) starts a new handshake,
 * and the time until traffic flows again is that client's recovery time.
 *
 * One io_uring: multishot recv on every client socket from one provided
 * buffer ring, sends from per-slot buffers. Reports round trips per
 * second, Gbit/s, loss, latency percentiles, handshakes and recoveries as
 * JSON and a human summary; a progress line each second on stderr.
 *
 * --gso (closed loop, one size): clients take their replies as GRO trains
 * (UDP_GRO) and send each batch's messages in one UDP GSO send, as a
 * modern WireGuard peer does; the bulk bench uses it so that the load
 * generator, on the same two cores, leaves the CPU to what it measures.
 */
#include "wglb/addr.h"
#include "wglb/wgmsg.h"

#include <sodium.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <liburing.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NBUFS       8192
#define BUFSZ       2048
#define NBUFS_GSO   512
#define BUFSZ_GSO   (65536 + 256) /* a GRO train, its header and cmsg */
#define GSO_SEGS    64
#define GSO_BYTES   65507
#define HIST_US     20000 /* 1 us buckets up to 20 ms, then an overflow bucket */
#define STALL_NS    (1000 * 1000000ull) /* a window with no reply for 1 s is lost */
#define REKEY_MS    5000  /* REKEY_TIMEOUT */
#define DEAD_MS     15000 /* KEEPALIVE_TIMEOUT + REKEY_TIMEOUT */
#define MAX_RECOV   65536

enum { OP_RECV = 1, OP_SEND };
enum { PH_HANDSHAKE, PH_DATA };

struct client {
	int fd;
	uint8_t phase;
	bool recovering;
	uint32_t sender, receiver, inflight;
	uint32_t pending; /* --gso: messages owed, sent at the end of the batch */
	uint64_t counter;
	uint64_t last_rx, last_init, outage_start;
};

struct opts {
	struct wglb_addr target;
	unsigned clients, size, window, duration, warmup;
	bool imix, gso;
	uint64_t rate; /* 0 = closed loop */
	uint64_t rekey_ns, dead_ns; /* WireGuard's timers; shorter only for smoke tests */
	const char *json, *label;
	char *bind; /* comma-separated source addresses, clients round robin; NULL: any */
};

struct bench {
	struct opts o;
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	uint8_t *bufs;
	unsigned br_added, nbufs, bufsz;
	struct client *cl;
	uint8_t *txbuf; /* per send slot */
	uint32_t *txfree, ntxfree, ntx, txsz;
	struct gso_tx { /* --gso: a slot's send */
		struct msghdr m;
		struct iovec iov;
		_Alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(uint16_t))];
	} *gtx;
	struct msghdr rmsg; /* --gso: recvmsg template, room for the UDP_GRO cmsg */
	uint32_t *dirty, ndirty; /* --gso: clients with messages pending */
	uint64_t t0, t_measure, t_end;
	bool measuring;
	uint64_t sent, recv, lost, handshakes, init_retries, new_handshakes;
	uint64_t m_recv, m_bytes, m_sent;
	uint32_t hist[HIST_US + 1];
	uint64_t recov_ns[MAX_RECOV];
	unsigned n_recov;
	uint64_t next_open_ns, open_cursor;
	unsigned handshaked;   /* clients that completed their first handshake */
	uint64_t t_all_handshaked;
};

static volatile sig_atomic_t interrupted;
static void on_signal(int s)
{
	(void)s;
	interrupted = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct io_uring_sqe *sqe_get(struct bench *b)
{
	struct io_uring_sqe *s = io_uring_get_sqe(&b->ring);

	if (!s) {
		io_uring_submit(&b->ring);
		s = io_uring_get_sqe(&b->ring);
	}
	return s;
}

static unsigned msg_size(struct bench *b)
{
	static const unsigned imix[12] = {32, 32, 32, 32, 32, 32, 32, 160, 160, 160, 160, 1452};
	static unsigned k;

	if (!b->o.imix)
		return b->o.size;
	return imix[k++ % 12]; /* 7:4:1 small:medium:full, the classic IMIX shape */
}

static void send_msg(struct bench *b, unsigned ci, bool init)
{
	struct client *c = &b->cl[ci];
	uint64_t t = now_ns();
	unsigned len = init ? WG_INITIATION_SIZE : msg_size(b);
	uint8_t *p;
	uint32_t slot;
	struct io_uring_sqe *s;

	if (!b->ntxfree)
		return; /* every slot in flight: the kernel is behind; skip */
	slot = b->txfree[--b->ntxfree];
	p = b->txbuf + (size_t)slot * b->txsz;
	memset(p, 0, 32);
	p[0] = init ? WG_T_INITIATION : WG_T_TRANSPORT;
	if (init) {
		c->sender = randombytes_random();
		memcpy(p + 4, &c->sender, 4);
		c->last_init = t;
	} else {
		memcpy(p + 4, &c->receiver, 4);
		memcpy(p + 8, &c->counter, 8);
		c->counter++;
		c->inflight++;
	}
	memcpy(p + 16, &t, 8); /* send time: latency without a table */
	s = sqe_get(b);
	io_uring_prep_send(s, c->fd, p, len, MSG_DONTWAIT);
	io_uring_sqe_set_data64(s, (uint64_t)OP_SEND << 56 | (uint64_t)len << 32 | slot);
	b->sent++;
	if (b->measuring && !init)
		b->m_sent++;
}

/* --gso: owe client ci one more message; flush_gso() sends them. */
static void send_data(struct bench *b, unsigned ci)
{
	if (!b->o.gso) {
		send_msg(b, ci, false);
		return;
	}
	if (!b->cl[ci].pending++)
		b->dirty[b->ndirty++] = ci;
}

/* --gso: each client's owed messages, back to back in one slot, one send
 * with UDP_SEGMENT; a client left without a slot keeps what it is owed. */
static void flush_gso(struct bench *b)
{
	uint32_t keep = 0, per = GSO_BYTES / b->o.size;

	if (per > GSO_SEGS)
		per = GSO_SEGS;
	for (uint32_t i = 0; i < b->ndirty; i++) {
		unsigned ci = b->dirty[i];
		struct client *c = &b->cl[ci];
		while (c->pending && b->ntxfree) {
			uint32_t slot = b->txfree[--b->ntxfree], k = c->pending < per ? c->pending : per;
			uint8_t *p = b->txbuf + (size_t)slot * b->txsz;
			struct gso_tx *g = &b->gtx[slot];
			uint64_t t = now_ns();
			struct io_uring_sqe *s;
			for (uint32_t j = 0; j < k; j++) {
				uint8_t *q = p + (size_t)j * b->o.size;
				memset(q, 0, 32);
				q[0] = WG_T_TRANSPORT;
				memcpy(q + 4, &c->receiver, 4);
				memcpy(q + 8, &c->counter, 8);
				memcpy(q + 16, &t, 8);
				c->counter++;
			}
			memset(&g->m, 0, sizeof(g->m));
			g->iov.iov_base = p;
			g->iov.iov_len = (size_t)k * b->o.size;
			g->m.msg_iov = &g->iov;
			g->m.msg_iovlen = 1;
			if (k > 1) {
				uint16_t seg = (uint16_t)b->o.size;
				struct cmsghdr *cm;
				g->m.msg_control = g->cbuf;
				g->m.msg_controllen = sizeof(g->cbuf);
				cm = CMSG_FIRSTHDR(&g->m);
				cm->cmsg_level = SOL_UDP;
				cm->cmsg_type = UDP_SEGMENT;
				cm->cmsg_len = CMSG_LEN(sizeof(seg));
				memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
			}
			s = sqe_get(b);
			io_uring_prep_sendmsg(s, c->fd, &g->m, MSG_DONTWAIT);
			io_uring_sqe_set_data64(s, (uint64_t)OP_SEND << 56 | (uint64_t)k << 32 | slot);
			c->pending -= k;
			c->inflight += k;
			b->sent += k;
			if (b->measuring)
				b->m_sent += k;
		}
		if (c->pending)
			b->dirty[keep++] = ci;
	}
	b->ndirty = keep;
}

static void arm(struct bench *b, unsigned ci)
{
	struct io_uring_sqe *s = sqe_get(b);

	if (b->o.gso)
		io_uring_prep_recvmsg_multishot(s, b->cl[ci].fd, &b->rmsg, 0);
	else
		io_uring_prep_recv_multishot(s, b->cl[ci].fd, NULL, 0, 0);
	s->flags |= IOSQE_BUFFER_SELECT;
	s->buf_group = 0;
	io_uring_sqe_set_data64(s, (uint64_t)OP_RECV << 56 | ci);
}

static void recycle(struct bench *b, unsigned bid)
{
	io_uring_buf_ring_add(b->br, b->bufs + (size_t)bid * b->bufsz, b->bufsz, (unsigned short)bid,
			      io_uring_buf_ring_mask(b->nbufs), (int)b->br_added++);
}

static void on_reply(struct bench *b, unsigned ci, const uint8_t *p, unsigned len)
{
	struct client *c = &b->cl[ci];
	uint64_t t = now_ns(), sent;
	struct wg_info wi;

	if (wgmsg_classify(p, len, &wi) != WG_DROP_NONE)
		return;
	b->recv++;
	if (c->recovering && (wi.type == WG_T_RESPONSE || wi.type == WG_T_TRANSPORT)) {
		if (b->n_recov < MAX_RECOV)
			b->recov_ns[b->n_recov++] = t - c->outage_start;
		c->recovering = false;
	}
	c->last_rx = t;
	if (wi.type == WG_T_RESPONSE) {
		if (wi.receiver != c->sender)
			return; /* an answer to an older initiation */
		b->handshakes++;
		c->receiver = wi.sender;
		if (c->phase == PH_HANDSHAKE) {
			if (!c->counter && ++b->handshaked == b->o.clients)
				b->t_all_handshaked = t;
			c->phase = PH_DATA;
			c->inflight = 0;
			if (!b->o.rate)
				for (unsigned w = 0; w < b->o.window; w++)
					send_data(b, ci);
		}
		return;
	}
	if (wi.type != WG_T_TRANSPORT || len < 24)
		return;
	memcpy(&sent, p + 16, 8);
	if (c->inflight)
		c->inflight--;
	if (b->measuring) {
		uint64_t us = (t - sent) / 1000;
		b->hist[us < HIST_US ? us : HIST_US]++;
		b->m_recv++;
		b->m_bytes += len;
	}
	if (!b->o.rate && c->phase == PH_DATA)
		send_data(b, ci);
}

/* --gso: a receive of one reply or a GRO train of them. */
static void on_train(struct bench *b, unsigned ci, uint8_t *buf, int res)
{
	struct io_uring_recvmsg_out *out = io_uring_recvmsg_validate(buf, res, &b->rmsg);
	unsigned seg = 0, len;
	uint8_t *p;

	if (!out)
		return;
	p = io_uring_recvmsg_payload(out, &b->rmsg);
	len = io_uring_recvmsg_payload_length(out, res, &b->rmsg);
	for (struct cmsghdr *c = io_uring_recvmsg_cmsg_firsthdr(out, &b->rmsg); c;
	     c = io_uring_recvmsg_cmsg_nexthdr(out, &b->rmsg, c))
		if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
			int v;
			memcpy(&v, CMSG_DATA(c), sizeof(v));
			seg = v > 0 ? (unsigned)v : 0;
		}
	if (!seg || seg > len)
		seg = len;
	for (unsigned off = 0; seg && off < len; off += seg)
		on_reply(b, ci, p + off, len - off < seg ? len - off : seg);
}

static void on_cqe(struct bench *b, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	unsigned op = (unsigned)(ud >> 56);

	if (op == OP_SEND) {
		uint32_t slot = (uint32_t)ud;
		b->txfree[b->ntxfree++] = slot;
		if (cqe->res < 0) /* refused by the kernel: counts as lost */
			b->lost += b->o.gso ? (ud >> 32 & 0xffffff) : 1;
		return;
	}
	unsigned ci = (unsigned)(ud & 0xffffffff);
	if (cqe->flags & IORING_CQE_F_BUFFER) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		if (cqe->res > 0 && b->o.gso)
			on_train(b, ci, b->bufs + (size_t)bid * b->bufsz, cqe->res);
		else if (cqe->res > 0)
			on_reply(b, ci, b->bufs + (size_t)bid * b->bufsz, (unsigned)cqe->res);
		recycle(b, bid);
	}
	if (!(cqe->flags & IORING_CQE_F_MORE))
		arm(b, ci); /* -ENOBUFS, -ECONNREFUSED (ICMP): keep listening */
}

/* WireGuard's timers, and the closed loop's stall detection. */
static void timers(struct bench *b, uint64_t t)
{
	for (unsigned i = 0; i < b->o.clients; i++) {
		struct client *c = &b->cl[i];
		if (c->phase == PH_HANDSHAKE) {
			if (t - c->last_init >= b->o.rekey_ns) {
				b->init_retries++;
				send_msg(b, i, true);
			}
			continue;
		}
		if (b->o.window && t - c->last_rx >= b->o.dead_ns) {
			/* Data unanswered for 15 s: the client starts over. */
			b->new_handshakes++;
			b->lost += c->inflight;
			c->inflight = 0;
			c->phase = PH_HANDSHAKE;
			if (!c->recovering) {
				c->recovering = true;
				c->outage_start = c->last_rx;
			}
			send_msg(b, i, true);
		} else if (!b->o.rate && c->inflight && t - c->last_rx >= STALL_NS &&
			   t - c->last_init >= STALL_NS) {
			b->lost += c->inflight;
			c->inflight = 0;
			c->last_init = t; /* at most one refill per second while silent */
			for (unsigned w = 0; w < b->o.window; w++)
				send_msg(b, i, false);
		}
	}
}

static void open_loop(struct bench *b, uint64_t t)
{
	/* Send what the rate owes up to now, round robin over ready clients. */
	while (b->next_open_ns <= t) {
		for (unsigned k = 0; k < b->o.clients; k++) {
			unsigned i = (unsigned)(b->open_cursor++ % b->o.clients);
			if (b->cl[i].phase == PH_DATA) {
				send_msg(b, i, false);
				break;
			}
		}
		b->next_open_ns += 1000000000ull / b->o.rate;
	}
}

static double pct(const struct bench *b, double q)
{
	uint64_t total = 0, acc = 0;

	for (unsigned i = 0; i <= HIST_US; i++)
		total += b->hist[i];
	if (!total)
		return 0;
	for (unsigned i = 0; i <= HIST_US; i++) {
		acc += b->hist[i];
		if ((double)acc >= q * (double)total)
			return i;
	}
	return HIST_US;
}

static int cmp_u64(const void *a, const void *c)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)c;
	return x < y ? -1 : x > y;
}

static void report(struct bench *b)
{
	double secs = (double)(b->t_end - b->t_measure) / 1e9;
	double rps = secs > 0 ? (double)b->m_recv / secs : 0;
	double gbps = secs > 0 ? (double)b->m_bytes * 8 / secs / 1e9 : 0;
	double loss = b->m_sent ? 1.0 - (double)b->m_recv / (double)b->m_sent : 0;
	double r50 = 0, r99 = 0, rmax = 0;
	FILE *j;

	if (loss < 0)
		loss = 0;
	if (b->n_recov) {
		qsort(b->recov_ns, b->n_recov, sizeof(b->recov_ns[0]), cmp_u64);
		r50 = (double)b->recov_ns[b->n_recov / 2] / 1e9;
		r99 = (double)b->recov_ns[(size_t)(b->n_recov * 0.99)] / 1e9;
		rmax = (double)b->recov_ns[b->n_recov - 1] / 1e9;
	}
	printf("%s: %u clients, %s%u B, %s: %.0f round trips/s, %.3f Gbit/s each way, "
	       "loss %.4f%%, latency p50 %.0f us p99 %.0f us p99.9 %.0f us; "
	       "%llu handshakes, %llu init retries, %llu new handshakes, %u recoveries "
	       "(p50 %.2f s, max %.2f s)\n",
	       b->o.label, b->o.clients, b->o.imix ? "IMIX " : "", b->o.imix ? 0 : b->o.size,
	       b->o.rate ? "open loop" : "closed loop", rps, gbps, loss * 100, pct(b, 0.5),
	       pct(b, 0.99), pct(b, 0.999), (unsigned long long)b->handshakes,
	       (unsigned long long)b->init_retries, (unsigned long long)b->new_handshakes,
	       b->n_recov, r50, rmax);
	if (!b->o.json)
		return;
	j = fopen(b->o.json, "w");
	if (!j) {
		perror("wglb-bench: json");
		return;
	}
	fprintf(j,
		"{\"label\": \"%s\", \"clients\": %u, \"size\": %u, \"imix\": %s, \"window\": %u, "
		"\"rate\": %llu, \"seconds\": %.3f, \"round_trips_per_s\": %.1f, "
		"\"gbit_per_s\": %.4f, \"sent\": %llu, \"received\": %llu, \"loss\": %.6f, "
		"\"latency_us\": {\"p50\": %.0f, \"p99\": %.0f, \"p999\": %.0f}, "
		"\"handshakes\": %llu, \"init_retries\": %llu, \"new_handshakes\": %llu, "
		"\"all_handshaked_s\": %.3f, "
		"\"recoveries\": %u, \"recovery_s\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}, "
		"\"recovery_all_s\": [",
		b->o.label, b->o.clients, b->o.size, b->o.imix ? "true" : "false", b->o.window,
		(unsigned long long)b->o.rate, secs, rps, gbps, (unsigned long long)b->m_sent,
		(unsigned long long)b->m_recv, loss, pct(b, 0.5), pct(b, 0.99), pct(b, 0.999),
		(unsigned long long)b->handshakes, (unsigned long long)b->init_retries,
		(unsigned long long)b->new_handshakes,
		b->t_all_handshaked ? (double)(b->t_all_handshaked - b->t0) / 1e9 : -1.0, b->n_recov,
		r50, r99, rmax);
	for (unsigned i = 0; i < b->n_recov; i++)
		fprintf(j, "%s%.3f", i ? ", " : "", (double)b->recov_ns[i] / 1e9);
	fprintf(j, "]}\n");
	fclose(j);
}

/* Client i's source: the (i mod n)th address of --bind, any port. */
static int bind_source(struct bench *b, unsigned i, int fd)
{
	char list[1024], *save = NULL, *tok;
	unsigned n = 0, k;
	union wglb_sa sa;

	snprintf(list, sizeof(list), "%s", b->o.bind);
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		n++;
	snprintf(list, sizeof(list), "%s", b->o.bind);
	tok = strtok_r(list, ",", &save);
	for (k = 0; tok && n && k < i % n; k++)
		tok = strtok_r(NULL, ",", &save);
	memset(&sa, 0, sizeof(sa));
	if (tok && inet_pton(AF_INET, tok, &sa.in4.sin_addr) == 1) {
		sa.in4.sin_family = AF_INET;
		return bind(fd, &sa.sa, sizeof(sa.in4));
	}
	if (tok && inet_pton(AF_INET6, tok, &sa.in6.sin6_addr) == 1) {
		sa.in6.sin6_family = AF_INET6;
		return bind(fd, &sa.sa, sizeof(sa.in6));
	}
	errno = EINVAL;
	return -1;
}

static int setup(struct bench *b)
{
	struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
					     IORING_SETUP_CQSIZE,
				    .cq_entries = 65536};
	struct io_uring_buf_reg reg = {0};
	struct rlimit rl;
	int ret;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	ret = io_uring_queue_init_params(4096, &b->ring, &p);
	if (ret < 0) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = 65536;
		ret = io_uring_queue_init_params(4096, &b->ring, &p);
	}
	if (ret < 0) {
		fprintf(stderr, "wglb-bench: io_uring: %s\n", strerror(-ret));
		return ret;
	}
	b->nbufs = b->o.gso ? NBUFS_GSO : NBUFS;
	b->bufsz = b->o.gso ? BUFSZ_GSO : BUFSZ;
	b->txsz = b->o.gso ? GSO_BYTES + 1 : BUFSZ;
	b->br = mmap(NULL, b->nbufs * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
		     MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	b->bufs = malloc((size_t)b->nbufs * b->bufsz);
	/* --gso: a client has a few sends in flight, not one per message */
	b->ntx = b->o.gso ? b->o.clients * 4 + 64 : b->o.clients * (b->o.window + 1) + 1024;
	b->txbuf = malloc((size_t)b->ntx * b->txsz);
	b->txfree = malloc(b->ntx * sizeof(*b->txfree));
	b->cl = calloc(b->o.clients, sizeof(*b->cl));
	b->gtx = b->o.gso ? calloc(b->ntx, sizeof(*b->gtx)) : NULL;
	b->dirty = b->o.gso ? calloc(b->o.clients, sizeof(*b->dirty)) : NULL;
	b->rmsg.msg_controllen = CMSG_SPACE(sizeof(int));
	if (b->br == MAP_FAILED || !b->bufs || !b->txbuf || !b->txfree || !b->cl ||
	    (b->o.gso && (!b->gtx || !b->dirty)))
		return -ENOMEM;
	for (uint32_t i = 0; i < b->ntx; i++)
		b->txfree[b->ntxfree++] = i;
	reg.ring_addr = (unsigned long)b->br;
	reg.ring_entries = b->nbufs;
	ret = io_uring_register_buf_ring(&b->ring, &reg, 0);
	if (ret < 0)
		return ret;
	io_uring_buf_ring_init(b->br);
	for (unsigned i = 0; i < b->nbufs; i++)
		recycle(b, i);
	io_uring_buf_ring_advance(b->br, (int)b->br_added);
	b->br_added = 0;
	for (unsigned i = 0; i < b->o.clients; i++) {
		struct client *c = &b->cl[i];
		c->fd = socket(b->o.target.u.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c->fd >= 0 && b->o.gso &&
		    setsockopt(c->fd, SOL_UDP, UDP_GRO, &(int){1}, sizeof(int)) < 0) {
			fprintf(stderr, "wglb-bench: UDP_GRO: %s\n", strerror(errno));
			return -errno;
		}
		if (c->fd >= 0 && b->o.bind && bind_source(b, i, c->fd) < 0) {
			fprintf(stderr, "wglb-bench: --bind: %s\n", strerror(errno));
			return -errno;
		}
		if (c->fd < 0 || connect(c->fd, &b->o.target.u.sa, b->o.target.len) < 0) {
			fprintf(stderr, "wglb-bench: client %u: %s (open-file limit?)\n", i,
				strerror(errno));
			return -errno;
		}
		arm(b, i);
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: wglb-bench -t IP:PORT [-c CLIENTS] [-s SIZE|--imix] [-w WINDOW | -r RATE]\n"
		"                  [-d SECONDS] [--warmup SECONDS] [--json FILE] [--label NAME]\n"
		"Closed loop (default): each client keeps WINDOW transport messages in flight.\n"
		"Open loop (-r): RATE messages per second in total, round robin over clients.\n"
		"-w 0: handshakes only (the handshake-storm scenario).\n"
		"--bind A,B,...: clients send from these addresses in turn (many sources, as\n"
		"       the internet's are: wglb steers workers by source address).\n"
		"--gso: replies taken as GRO trains, each batch's messages sent as one UDP GSO send\n"
		"       (closed loop, one size: the bulk bench's generator).\n"
		"--rekey-timeout-ms, --dead-after-ms: WireGuard's 5 s and 15 s timers (smoke tests only).\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"target", required_argument, NULL, 't'}, {"clients", required_argument, NULL, 'c'},
		{"size", required_argument, NULL, 's'},   {"imix", no_argument, NULL, 'i'},
		{"window", required_argument, NULL, 'w'}, {"rate", required_argument, NULL, 'r'},
		{"duration", required_argument, NULL, 'd'}, {"warmup", required_argument, NULL, 'W'},
		{"json", required_argument, NULL, 'j'},   {"label", required_argument, NULL, 'l'},
		{"rekey-timeout-ms", required_argument, NULL, 'K'},
		{"dead-after-ms", required_argument, NULL, 'D'}, {"gso", no_argument, NULL, 'G'},
		{"bind", required_argument, NULL, 'B'},
		{"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
	};
	static struct bench b;
	uint64_t next_tick = 0, next_progress;
	int opt;

	b.o.clients = 64;
	b.o.size = 160;
	b.o.window = 1;
	b.o.duration = 10;
	b.o.warmup = 1;
	b.o.label = "wglb-bench";
	b.o.rekey_ns = REKEY_MS * 1000000ull;
	b.o.dead_ns = DEAD_MS * 1000000ull;
	while ((opt = getopt_long(argc, argv, "t:c:s:w:r:d:j:l:h", lo, NULL)) != -1) {
		switch (opt) {
		case 't':
			if (addr_parse(optarg, &b.o.target) < 0) {
				fprintf(stderr, "wglb-bench: bad target %s\n", optarg);
				return 2;
			}
			break;
		case 'c': b.o.clients = (unsigned)atoi(optarg); break;
		case 's': b.o.size = (unsigned)atoi(optarg); break;
		case 'i': b.o.imix = true; break;
		case 'w': b.o.window = (unsigned)atoi(optarg); break;
		case 'r': b.o.rate = strtoull(optarg, NULL, 10); break;
		case 'd': b.o.duration = (unsigned)atoi(optarg); break;
		case 'W': b.o.warmup = (unsigned)atoi(optarg); break;
		case 'j': b.o.json = optarg; break;
		case 'l': b.o.label = optarg; break;
		case 'K': b.o.rekey_ns = strtoull(optarg, NULL, 10) * 1000000ull; break;
		case 'D': b.o.dead_ns = strtoull(optarg, NULL, 10) * 1000000ull; break;
		case 'G': b.o.gso = true; break;
		case 'B': b.o.bind = optarg; break;
		default: usage(); return opt == 'h' ? 0 : 2;
		}
	}
	if (!b.o.target.len || !b.o.clients || b.o.size < 32 || b.o.size > 1452 || !b.o.duration) {
		usage();
		fprintf(stderr, "wglb-bench: need -t; sizes 32..1452; clients and duration > 0\n");
		return 2;
	}
	if (b.o.gso && (b.o.rate || b.o.imix)) {
		fprintf(stderr, "wglb-bench: --gso is for the closed loop with one size\n");
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	srand((unsigned)now_ns());
	if (setup(&b) < 0)
		return 3;
	b.t0 = now_ns();
	b.t_measure = b.t0 + (uint64_t)b.o.warmup * 1000000000ull;
	b.t_end = b.t_measure + (uint64_t)b.o.duration * 1000000000ull;
	next_progress = b.t0 + 1000000000ull;
	b.next_open_ns = b.t0;
	for (unsigned i = 0; i < b.o.clients; i++)
		send_msg(&b, i, true);
	for (;;) {
		struct __kernel_timespec ts = {.tv_nsec = 1000000};
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		uint64_t t;

		io_uring_buf_ring_advance(b.br, (int)b.br_added);
		b.br_added = 0;
		io_uring_submit_and_wait_timeout(&b.ring, &cqe, 1, &ts, NULL);
		io_uring_for_each_cqe(&b.ring, head, cqe)
		{
			on_cqe(&b, cqe);
			n++;
		}
		io_uring_cq_advance(&b.ring, n);
		if (b.o.gso)
			flush_gso(&b);
		t = now_ns();
		if (!b.measuring && t >= b.t_measure)
			b.measuring = true;
		if (b.o.rate && b.measuring)
			open_loop(&b, t);
		else if (b.o.rate)
			b.next_open_ns = t;
		if (t >= next_tick) {
			timers(&b, t);
			next_tick = t + 100000000ull;
		}
		if (t >= next_progress) {
			fprintf(stderr, "\r%s: %4.0fs %10llu sent %10llu received %6llu handshakes ",
				b.o.label, (double)(t - b.t0) / 1e9, (unsigned long long)b.sent,
				(unsigned long long)b.recv, (unsigned long long)b.handshakes);
			next_progress = t + 1000000000ull;
		}
		if (t >= b.t_end || interrupted) {
			b.t_end = t;
			break;
		}
	}
	fprintf(stderr, "\n");
	report(&b);
	return b.m_recv || (!b.o.window && b.handshaked) ? 0 : 1;
}
