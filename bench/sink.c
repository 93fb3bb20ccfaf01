// SPDX-License-Identifier: MIT
/*
 * wglb-sink: a WireGuard-shaped backend for benchmarks. Answers each
 * 148-byte initiation with a 92-byte response (receiver = the initiator's
 * sender index), echoes transport messages, ignores anything else. Several
 * ports per process; recvmmsg/sendmmsg batches of 64 so that the sink is
 * never the bottleneck it measures.
 */
#include "wglb/addr.h"
#include "wglb/wgmsg.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH    64
#define MAXPORTS 64
#define DGRAM    2048

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
	uint8_t buf[BATCH][DGRAM];
};

static uint64_t answered, echoed, ignored;

static void serve(int fd, struct batch *b)
{
	struct mmsghdr out[BATCH];
	int n, k = 0;

	for (int i = 0; i < BATCH; i++) {
		b->iov[i].iov_base = b->buf[i];
		b->iov[i].iov_len = DGRAM;
		memset(&b->msg[i].msg_hdr, 0, sizeof(b->msg[i].msg_hdr));
		b->msg[i].msg_hdr.msg_iov = &b->iov[i];
		b->msg[i].msg_hdr.msg_iovlen = 1;
		b->msg[i].msg_hdr.msg_name = &b->name[i];
		b->msg[i].msg_hdr.msg_namelen = sizeof(b->name[i]);
	}
	n = recvmmsg(fd, b->msg, BATCH, MSG_DONTWAIT, NULL);
	for (int i = 0; i < n; i++) {
		struct wg_info wi;
		size_t len = b->msg[i].msg_len;
		uint8_t *p = b->buf[i];
		if (wgmsg_classify(p, len, &wi) != WG_DROP_NONE) {
			ignored++;
			continue;
		}
		if (wi.type == WG_T_INITIATION) {
			uint32_t me = (uint32_t)rand();
			memset(p + 12, 0, WG_RESPONSE_SIZE - 12);
			p[0] = WG_T_RESPONSE;
			memcpy(p + 8, p + 4, 4); /* receiver = their sender */
			memcpy(p + 4, &me, 4);
			len = WG_RESPONSE_SIZE;
			answered++;
		} else if (wi.type == WG_T_TRANSPORT) {
			echoed++;
		} else {
			ignored++;
			continue;
		}
		out[k] = b->msg[i];
		b->iov[i].iov_len = len;
		out[k].msg_hdr.msg_iov = &b->iov[i];
		k++;
	}
	if (k && sendmmsg(fd, out, (unsigned)k, MSG_DONTWAIT) < 0 && errno != EAGAIN)
		perror("wglb-sink: sendmmsg");
}

int main(int argc, char **argv)
{
	int fds[MAXPORTS], n = 0, ep;
	struct batch *b = calloc(1, sizeof(*b));
	struct epoll_event evs[MAXPORTS];

	if (argc < 2 || !b) {
		fprintf(stderr, "usage: wglb-sink IP:PORT...   (answers WireGuard-shaped traffic)\n");
		return 2;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	for (int i = 1; i < argc && n < MAXPORTS; i++) {
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
			serve(evs[i].data.fd, b);
	}
	fprintf(stderr, "wglb-sink: %llu responses, %llu echoes, %llu ignored\n",
		(unsigned long long)answered, (unsigned long long)echoed,
		(unsigned long long)ignored);
	free(b);
	return 0;
}
