// SPDX-License-Identifier: MIT
/*
 * wglb-sink: a WireGuard-shaped backend for benchmarks. Answers each
 * 148-byte initiation with a 92-byte response (receiver = the initiator's
 * sender index), echoes transport messages, ignores anything else. Several
 * ports per process; recvmmsg/sendmmsg batches of 64 so that the sink is
 * never the bottleneck it measures. With --gro it takes coalesced trains
 * (UDP_GRO) and echoes each train's transport messages in one UDP GSO send,
 * as a modern WireGuard server (wireguard-go since 2023, or the kernel's
 * own batching) spends little per datagram: the bulk bench's sink then
 * leaves the CPU to the forwarder it measures.
 */
#include "wglb/addr.h"
#include "wglb/wgmsg.h"

#include <sodium.h>

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/udp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH    64
#define MAXPORTS 64
#define DGRAM    2048
#define TRAIN    65536 /* one GRO train at most */
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

struct batch {
	struct mmsghdr msg[BATCH];
	struct iovec iov[BATCH];
	union wglb_sa name[BATCH];
	_Alignas(struct cmsghdr) char ctl[BATCH][CMSG_SPACE(sizeof(int))];
	unsigned bufsz;
	uint8_t *buf[BATCH];
};

static int gro;

static uint64_t answered, echoed, ignored, unknown;

/* Receiver indices this sink handed out. Like a WireGuard server, it drops
 * transport data for a session it does not have: after a re-pin a client
 * must handshake again, which is what the failover scenario measures. */
#define IDX_SLOTS (1u << 18)
static uint32_t idx_set[IDX_SLOTS];

static uint32_t idx_slot(uint32_t idx)
{
	return (idx * 2654435761u) >> 14; /* top 18 bits of a multiplicative hash */
}

static void idx_add(uint32_t idx)
{
	idx_set[idx_slot(idx)] = idx; /* a collision forgets the older session */
}

static int idx_known(uint32_t idx)
{
	return idx && idx_set[idx_slot(idx)] == idx;
}

/* Answer or echo one datagram in place: its new length, or 0 to drop it. */
static size_t answer(uint8_t *p, size_t len)
{
	struct wg_info wi;

	if (wgmsg_classify(p, len, &wi) != WG_DROP_NONE) {
		ignored++;
		return 0;
	}
	if (wi.type == WG_T_INITIATION) {
		uint32_t me = randombytes_random() | 1u; /* random per sink, never 0 (empty slot) */
		memset(p + 12, 0, WG_RESPONSE_SIZE - 12);
		p[0] = WG_T_RESPONSE;
		memcpy(p + 8, p + 4, 4); /* receiver = their sender */
		memcpy(p + 4, &me, 4);
		idx_add(me);
		answered++;
		return WG_RESPONSE_SIZE;
	}
	if (wi.type == WG_T_TRANSPORT) {
		if (!idx_known(wi.receiver)) {
			unknown++;
			return 0;
		}
		echoed++;
		return len;
	}
	ignored++;
	return 0;
}

/* The GRO segment size of a receive, or 0 when it holds one datagram. */
static unsigned gro_size(struct msghdr *m)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c))
		if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
			int v;
			memcpy(&v, CMSG_DATA(c), sizeof(v));
			return v > 0 ? (unsigned)v : 0;
		}
	return 0;
}

/* A train (gro): echo its transport segments that keep the train's size
 * together in one GSO send; answer anything else alone. */
static void serve_train(int fd, struct msghdr *m, uint8_t *p, size_t len)
{
	unsigned seg = gro_size(m);
	size_t keep = 0, off, n;
	struct msghdr out = {.msg_name = m->msg_name, .msg_namelen = m->msg_namelen};
	struct iovec iov;
	_Alignas(struct cmsghdr) char ctl[CMSG_SPACE(sizeof(uint16_t))] = {0};

	if (!seg || seg >= len)
		seg = (unsigned)len;
	out.msg_iov = &iov;
	out.msg_iovlen = 1;
	for (off = 0; off < len; off += seg) {
		size_t sl = len - off < seg ? len - off : seg;
		n = answer(p + off, sl);
		if (n == sl && n == seg) {
			if (keep != off)
				memmove(p + keep, p + off, n);
			keep += n;
		} else if (n) { /* a response, or a short last segment: alone */
			iov.iov_base = p + off;
			iov.iov_len = n;
			if (sendmsg(fd, &out, MSG_DONTWAIT) < 0 && errno != EAGAIN)
				perror("wglb-sink: sendmsg");
		}
	}
	if (!keep)
		return;
	iov.iov_base = p;
	iov.iov_len = keep;
	if (keep > seg) {
		struct cmsghdr *c;
		uint16_t s16 = (uint16_t)seg;
		out.msg_control = ctl;
		out.msg_controllen = sizeof(ctl);
		c = CMSG_FIRSTHDR(&out);
		c->cmsg_level = SOL_UDP;
		c->cmsg_type = UDP_SEGMENT;
		c->cmsg_len = CMSG_LEN(sizeof(s16));
		memcpy(CMSG_DATA(c), &s16, sizeof(s16));
	}
	if (sendmsg(fd, &out, MSG_DONTWAIT) < 0 && errno != EAGAIN)
		perror("wglb-sink: sendmsg (GSO)");
}

static void serve(int fd, struct batch *b)
{
	struct mmsghdr out[BATCH];
	int n, k = 0;

	for (int i = 0; i < BATCH; i++) {
		b->iov[i].iov_base = b->buf[i];
		b->iov[i].iov_len = b->bufsz;
		memset(&b->msg[i].msg_hdr, 0, sizeof(b->msg[i].msg_hdr));
		b->msg[i].msg_hdr.msg_iov = &b->iov[i];
		b->msg[i].msg_hdr.msg_iovlen = 1;
		b->msg[i].msg_hdr.msg_name = &b->name[i];
		b->msg[i].msg_hdr.msg_namelen = sizeof(b->name[i]);
		if (gro) {
			b->msg[i].msg_hdr.msg_control = b->ctl[i];
			b->msg[i].msg_hdr.msg_controllen = sizeof(b->ctl[i]);
		}
	}
	n = recvmmsg(fd, b->msg, BATCH, MSG_DONTWAIT, NULL);
	for (int i = 0; i < n; i++) {
		size_t len = b->msg[i].msg_len;
		if (gro) {
			serve_train(fd, &b->msg[i].msg_hdr, b->buf[i], len);
			continue;
		}
		len = answer(b->buf[i], len);
		if (!len)
			continue;
		out[k] = b->msg[i];
		b->iov[i].iov_len = len;
		out[k].msg_hdr.msg_iov = &b->iov[i];
		k++;
	}
	if (k && sendmmsg(fd, out, (unsigned)k, MSG_DONTWAIT) < 0 && errno != EAGAIN)
		perror("wglb-sink: sendmmsg");
}

/* --health PORT: a minimal HTTP 200 responder, so a killed sink also
 * fails wglb's probes (the failover scenario). */
static int health_fd = -1;

static void health_accept(void)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n";
	char req[512];
	int c;

	while ((c = accept4(health_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
		struct timeval tv = {.tv_usec = 100000};
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		(void)!recv(c, req, sizeof(req), 0);
		(void)!send(c, ok, sizeof(ok) - 1, MSG_NOSIGNAL);
		close(c);
	}
}

int main(int argc, char **argv)
{
	int fds[MAXPORTS], n = 0, ep;
	struct batch *b = calloc(1, sizeof(*b));
	struct epoll_event evs[MAXPORTS];

	if (argc < 2 || !b) {
		fprintf(stderr, "usage: wglb-sink [--gro] [--health TCPPORT] IP:PORT...   (answers WireGuard-shaped traffic)\n");
		return 2;
	}
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--gro"))
			gro = 1;
	b->bufsz = gro ? TRAIN : DGRAM;
	for (int i = 0; i < BATCH; i++)
		if (!(b->buf[i] = malloc(b->bufsz)))
			return 2;
	ep = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 1; i < argc && n < MAXPORTS; i++) {
		if (!strcmp(argv[i], "--gro"))
			continue;
		if (!strcmp(argv[i], "--health") && i + 1 < argc) {
			struct sockaddr_in hs = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[++i])),
						 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
			struct epoll_event hev = {.events = EPOLLIN, .data.fd = -2};
			int one = 1;
			health_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
			setsockopt(health_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (bind(health_fd, (struct sockaddr *)&hs, sizeof(hs)) < 0 || listen(health_fd, 64) < 0) {
				fprintf(stderr, "wglb-sink: health port: %s\n", strerror(errno));
				return 3;
			}
			epoll_ctl(ep, EPOLL_CTL_ADD, health_fd, &hev);
			continue;
		}
		struct wglb_addr a;
		struct epoll_event ev = {.events = EPOLLIN};
		int sz = 4 << 20;
		if (addr_parse(argv[i], &a) < 0) {
			fprintf(stderr, "wglb-sink: bad address %s\n", argv[i]);
			return 2;
		}
		fds[n] = socket(a.u.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		setsockopt(fds[n], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
		setsockopt(fds[n], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		if (gro && setsockopt(fds[n], SOL_UDP, UDP_GRO, &(int){1}, sizeof(int)) < 0) {
			fprintf(stderr, "wglb-sink: UDP_GRO: %s\n", strerror(errno));
			return 3;
		}
		if (fds[n] < 0 || bind(fds[n], &a.u.sa, a.len) < 0) {
			fprintf(stderr, "wglb-sink: %s: %s\n", argv[i], strerror(errno));
			return 3;
		}
		ev.data.fd = fds[n];
		epoll_ctl(ep, EPOLL_CTL_ADD, fds[n], &ev);
		n++;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	while (!stop) {
		int r = epoll_wait(ep, evs, MAXPORTS, 200);
		for (int i = 0; i < r; i++)
			if (evs[i].data.fd == -2)
				health_accept();
			else
				serve(evs[i].data.fd, b);
	}
	fprintf(stderr, "wglb-sink: %llu responses, %llu echoes, %llu for unknown sessions, %llu ignored\n",
		(unsigned long long)answered, (unsigned long long)echoed, (unsigned long long)unknown,
		(unsigned long long)ignored);
	for (int i = 0; i < BATCH; i++)
		free(b->buf[i]);
	free(b);
	return 0;
}
