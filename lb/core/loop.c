// SPDX-License-Identifier: MIT
/*
 * Ring setup, the provided-buffer ring, listeners, one-shot poll watches,
 * signals, the parts' hooks and ops, and the batch loop. What the ring
 * carries for the parts (the packet path's upstream receives and sends,
 * the listeners' datagrams) goes to the handlers they registered.
 */
#include "wglb/loop.h"
#include "wglb/clock.h"

#include <errno.h>
#include <netinet/udp.h>
#include <sys/syscall.h>
#include <poll.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#define RING_ENTRIES 4096

void loop_update_clock(struct loop *l)
{
	l->now_ms = clock_monotonic_ms();
}

struct io_uring_sqe *loop_sqe(struct loop *l)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&l->ring);

	/* SQ full mid-batch: hand what we have to the kernel and go on. The
	 * kernel can refuse (-EBUSY while completions overflow, -EAGAIN):
	 * then there is none, counted, and each caller has a way back. */
	for (int i = 0; !sqe && i < 2; i++)
		if (io_uring_submit(&l->ring) >= 0)
			sqe = io_uring_get_sqe(&l->ring);
	if (!sqe)
		l->st.ring_full++;
	return sqe;
}

static int ring_setup(struct loop *l)
{
	static const uint32_t tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, /* 6.1+ */
		IORING_SETUP_COOP_TASKRUN,                              /* 5.19+ */
		0,
	};
	struct io_uring_params p;
	int ret = -EINVAL;

	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		memset(&p, 0, sizeof(p));
		/* Disabled until ring_lock() has restricted it (5.10+). */
		p.flags = tries[i] | IORING_SETUP_CQSIZE | IORING_SETUP_R_DISABLED;
		p.cq_entries = RING_ENTRIES * 4;
		ret = io_uring_queue_init_params(RING_ENTRIES, &l->ring, &p);
		if (ret == 0) {
			l->setup_flags = tries[i];
			break;
		}
		if (ret == -EPERM || ret == -ENOSYS)
			break;
	}
	if (ret == -EPERM || ret == -ENOSYS) {
		log_err("io_uring refused (%s): check the sysctl kernel.io_uring_disabled "
			"(must be 0, or 1 with the group in kernel.io_uring_group) and any "
			"seccomp profile (container runtimes often block io_uring_setup)",
			strerror(-ret));
		return ret;
	}
	if (ret < 0) {
		log_err("io_uring_queue_init: %s", strerror(-ret));
		return ret;
	}
	if (!(p.features & IORING_FEAT_EXT_ARG)) {
		log_err("kernel too old: io_uring lacks IORING_FEAT_EXT_ARG (need Linux 5.11+)");
		return -ENOSYS;
	}
	return 0;
}

static int bufring_setup(struct loop *l)
{
	struct io_uring_buf_reg reg = {0};
	size_t ring_size = l->nbufs * sizeof(struct io_uring_buf);
	/* Populated now: the ring hands buffers out in FIFO order, so under
	 * load every page is touched sooner or later; better that RSS is flat
	 * from the start and a shortage shows at start-up. Of a GRO buffer
	 * only the first page (all a datagram up to 4 KiB touches, headers
	 * included): the rest fills with bulk trains alone, up to 68 MiB. */
	int populate = l->bufsz > LOOP_BUFSZ ? 0 : MAP_POPULATE;
	int ret;

	l->buf_refs = calloc(l->nbufs, 1);
	if (!l->buf_refs)
		return -ENOMEM;
	/* liburing 2.3 has no io_uring_setup_buf_ring(): register by hand,
	 * as its examples/io_uring-udp.c does. */
	l->br = mmap(NULL, ring_size, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (l->br == MAP_FAILED) {
		l->br = NULL;
		return -errno;
	}
	l->bufs = mmap(NULL, (size_t)l->nbufs * l->bufsz, PROT_READ | PROT_WRITE,
		       MAP_ANONYMOUS | MAP_PRIVATE | populate, -1, 0);
	if (l->bufs == MAP_FAILED) {
		l->bufs = NULL;
		return -errno;
	}
	if (!populate)
		for (unsigned i = 0; i < l->nbufs; i++)
			*(volatile uint8_t *)loop_buf(l, i) = 0;
	reg.ring_addr = (unsigned long)l->br;
	reg.ring_entries = l->nbufs;
	reg.bgid = 0;
	ret = io_uring_register_buf_ring(&l->ring, &reg, 0);
	if (ret < 0) {
		log_err("registering the buffer ring failed (%s): need Linux 5.19+",
			strerror(-ret));
		return ret;
	}
	io_uring_buf_ring_init(l->br);
	for (unsigned i = 0; i < l->nbufs; i++)
		io_uring_buf_ring_add(l->br, loop_buf(l, i), l->bufsz, (unsigned short)i,
				      io_uring_buf_ring_mask(l->nbufs), (int)i);
	io_uring_buf_ring_advance(l->br, (int)l->nbufs);
	return 0;
}

/* io_uring submissions bypass the unit's seccomp filter: restrict this
 * ring to the operations wglb uses (and no more registrations), then
 * enable it. A bug or an exploit in the packet path gets recvmsg, send,
 * sendmsg, poll and cancel on sockets it already holds, nothing else. */
static int ring_lock(struct loop *l)
{
	static const uint8_t ops[] = {IORING_OP_RECVMSG,  IORING_OP_SEND,        IORING_OP_SENDMSG,
				      IORING_OP_POLL_ADD, IORING_OP_POLL_REMOVE, IORING_OP_ASYNC_CANCEL};
	struct io_uring_restriction res[sizeof(ops) + 1];
	int ret;

	memset(res, 0, sizeof(res));
	for (size_t i = 0; i < sizeof(ops); i++) {
		res[i].opcode = IORING_RESTRICTION_SQE_OP;
		res[i].sqe_op = ops[i];
	}
	res[sizeof(ops)].opcode = IORING_RESTRICTION_SQE_FLAGS_ALLOWED;
	res[sizeof(ops)].sqe_flags = IOSQE_BUFFER_SELECT;
	/* Debian's liburing 2.3 declares io_uring_register_restrictions() and
	 * io_uring_enable_rings() but does not export them: the syscall. */
	if (syscall(__NR_io_uring_register, l->ring.ring_fd, IORING_REGISTER_RESTRICTIONS, res,
		    (unsigned)(sizeof(res) / sizeof(res[0]))) < 0) {
		ret = -errno;
		log_err("io_uring restrictions: %s", strerror(-ret));
		return ret;
	}
	if (syscall(__NR_io_uring_register, l->ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0) {
		ret = -errno;
		log_err("io_uring enable: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

void loop_recycle(struct loop *l, unsigned bid)
{
	if (l->buf_refs[bid] && --l->buf_refs[bid])
		return; /* a send still carries part of it */
	io_uring_buf_ring_add(l->br, loop_buf(l, bid), l->bufsz, (unsigned short)bid,
			      io_uring_buf_ring_mask(l->nbufs), (int)l->br_added++);
}

static void bufring_flush(struct loop *l)
{
	if (l->br_added) {
		io_uring_buf_ring_advance(l->br, (int)l->br_added);
		l->br_added = 0;
	}
}

int loop_set_gro(int fd)
{
	int one = 1;

	return setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one));
}

void loop_set_bufsize(int fd, int opt_force, int opt, int bytes)
{
	/* FORCE needs CAP_NET_ADMIN; without it the kernel caps at rmem_max. */
	if (setsockopt(fd, SOL_SOCKET, opt_force, &bytes, sizeof(bytes)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof(bytes));
}

/* Would a plain bind of this address fail? (another socket holds it) */
static bool port_taken(const struct wglb_addr *addr)
{
	int one = 1, fd = socket(addr->u.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool taken;

	if (fd < 0)
		return false;
	(void)setsockopt(fd, SOL_IP, IP_FREEBIND, &one, sizeof(one));
	if (addr->u.sa.sa_family == AF_INET6)
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	taken = bind(fd, &addr->u.sa, addr->len) < 0 && errno == EADDRINUSE;
	close(fd);
	return taken;
}

static int listener_open(struct loop *l, unsigned i)
{
	struct listener *ls = &l->lst[i];
	int one = 1, fam = ls->addr.u.sa.sa_family, fd;
	char a[ADDR_STRLEN];

	addr_fmt(&ls->addr.u, a, sizeof(a));
	fd = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_err("listen %s: socket: %s", a, strerror(errno));
		return -errno;
	}
	ls->fd = fd;
	/* FREEBIND: a standby may bind the floating address before it holds it. */
	if (setsockopt(fd, SOL_IP, IP_FREEBIND, &one, sizeof(one)) < 0)
		log_warn("listen %s: IP_FREEBIND: %s", a, strerror(errno));
	if (l->n_workers > 1 || l->cfg.client_address == CLIENT_PRESERVE) {
		/* One socket per worker in one group; with client_address =
		 * preserve, a client whose own port is this one has its flow's
		 * socket bound to its address and this port beside us. A port
		 * another process holds (or would share: SO_REUSEPORT lets the
		 * same user in) is refused first, with the same words as
		 * without workers. */
		if (l->worker_id == 0 && port_taken(&ls->addr)) {
			log_err("listen %s: address already in use (another wglb, or a "
				"WireGuard interface on this port?)",
				a);
			return -EADDRINUSE;
		}
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
			log_err("listen %s: SO_REUSEPORT: %s", a, strerror(errno));
			return -errno;
		}
	}
	if (fam == AF_INET6) {
		ls->wildcard = IN6_IS_ADDR_UNSPECIFIED(&ls->addr.u.in6.sin6_addr);
		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0 ||
		    setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) < 0) {
			log_err("listen %s: setsockopt: %s", a, strerror(errno));
			return -errno;
		}
	} else {
		ls->wildcard = ls->addr.u.in4.sin_addr.s_addr == htonl(INADDR_ANY);
		if (setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) < 0) {
			log_err("listen %s: setsockopt: %s", a, strerror(errno));
			return -errno;
		}
	}
	loop_set_bufsize(fd, SO_RCVBUFFORCE, SO_RCVBUF, 8 << 20);
	loop_set_bufsize(fd, SO_SNDBUFFORCE, SO_SNDBUF, 8 << 20);
	if (l->cfg.udp_gro && loop_set_gro(fd) < 0)
		log_warn("listen %s: UDP_GRO: %s (datagrams arrive one by one)", a, strerror(errno));
	if (bind(fd, &ls->addr.u.sa, ls->addr.len) < 0) {
		int e = errno;
		if (e == EADDRINUSE)
			log_err("listen %s: address already in use (another wglb, or a "
				"WireGuard interface on this port?)",
				a);
		else
			log_err("listen %s: bind: %s", a, strerror(e));
		return -e;
	}
	memset(&ls->rmsg, 0, sizeof(ls->rmsg));
	/* io_uring lays out header | name | control | payload using these
	 * lengths: round the name area up so that the cmsghdr after it is
	 * aligned (28-byte sockaddr_in6 would misalign it; UBSan caught it). */
	ls->rmsg.msg_namelen = (sizeof(struct sockaddr_in6) + 7) & ~7u;
	ls->rmsg.msg_controllen = CMSG_SPACE(sizeof(struct in6_pktinfo)) +
				  (l->cfg.udp_gro ? CMSG_SPACE(sizeof(int)) : 0);
	if (!l->worker_id)
		log_info("listening on %s%s", a, l->n_workers > 1 ? " (a socket per worker)" : "");
	return 0;
}

static void arm_listener(struct loop *l, unsigned i)
{
	struct io_uring_sqe *sqe = loop_sqe(l);

	if (!sqe) { /* tried again with the starved receives, after this batch */
		l->lst[i].armed = false;
		l->recv_starved = true;
		return;
	}
	io_uring_prep_recvmsg_multishot(sqe, l->lst[i].fd, &l->lst[i].rmsg, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = 0;
	io_uring_sqe_set_data64(sqe, ud_pack(OP_RECV_LISTEN, 0, i));
	l->lst[i].armed = true;
}

/* A watch is one poll at a time, asked again after each: one that finds
 * no SQE is asked after this batch (a lost signal watch would never stop). */
static void arm_watch(struct loop *l, int i)
{
	struct watch *w = &l->watch[i];
	struct io_uring_sqe *sqe = loop_sqe(l);

	w->pending = !sqe;
	if (!sqe) {
		l->recv_starved = true;
		return;
	}
	io_uring_prep_poll_add(sqe, w->fd, w->events);
	io_uring_sqe_set_data64(sqe, ud_pack(OP_WATCH, w->gen, (uint32_t)i));
}

int loop_watch(struct loop *l, int fd, uint32_t events, watch_fn cb, void *ctx)
{
	for (int i = 0; i < LOOP_MAX_WATCH; i++) {
		struct watch *w = &l->watch[i];
		if (w->used)
			continue;
		w->used = true;
		w->cb = cb;
		w->ctx = ctx;
		w->fd = fd;
		w->events = events;
		w->gen++;
		arm_watch(l, i);
		return i;
	}
	return -ENOSPC;
}

void loop_unwatch(struct loop *l, int id)
{
	struct watch *w;
	struct io_uring_sqe *sqe;

	if (id < 0 || id >= LOOP_MAX_WATCH || !l->watch[id].used)
		return;
	w = &l->watch[id];
	sqe = w->pending ? NULL : loop_sqe(l);
	w->pending = false;
	if (sqe) { /* without one the poll stays armed; its completion no longer matches */
		io_uring_prep_poll_remove(sqe, ud_pack(OP_WATCH, w->gen, (uint32_t)id));
		io_uring_sqe_set_data64(sqe, ud_pack(OP_IGNORE, 0, 0));
	}
	w->used = false;
	w->gen++; /* a late completion of the removed poll no longer matches */
}

static void on_watch(struct loop *l, uint64_t ud, int res)
{
	uint32_t i = ud_idx(ud);
	struct watch *w;
	watch_fn cb;

	if (i >= LOOP_MAX_WATCH)
		return;
	w = &l->watch[i];
	if (!w->used || w->gen != ud_gen(ud))
		return;
	w->used = false; /* one-shot: the callback re-watches if it wants more */
	cb = w->cb;
	cb(l, w->ctx, res < 0 ? POLLERR : (uint32_t)res);
}

static void on_signal(struct loop *l, void *ctx, uint32_t revents)
{
	struct signalfd_siginfo si;

	(void)ctx;
	(void)revents;
	while (read(l->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP)
			l->reload = true;
		else
			l->stop = true;
	}
	if (loop_watch(l, l->sigfd, POLLIN, on_signal, NULL) < 0)
		log_err("cannot watch signals any more");
}

static int signals_setup(struct loop *l)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	l->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (l->sigfd < 0)
		return -errno;
	return loop_watch(l, l->sigfd, POLLIN, on_signal, NULL) < 0 ? -ENOSPC : 0;
}

/* The usable ephemeral ports: each flow's upstream socket takes one. */
/* Everything a worker's loop has; the main one (id 0) also takes the
 * signals and makes sure no one else has the listen ports before it opens
 * them to its workers. */
int loop_init(struct loop *l, struct wglb_config *cfg, struct workers *ws, unsigned id,
	      unsigned n)
{
	int ret;

	memset(l, 0, sizeof(*l));
	l->sigfd = -1;
	for (unsigned i = 0; i < CONFIG_MAX_LISTEN; i++)
		l->lst[i].fd = -1;
	l->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg)); /* the loop owns it now */
	l->ws = ws;
	l->worker_id = id;
	l->n_workers = n;
	l->n_ops = OP_PARTS;
	loop_update_clock(l);
	l->start_ms = l->now_ms;
	l->start_realtime = (uint64_t)time(NULL);
	l->nbufs = l->cfg.udp_gro ? LOOP_NBUFS_GRO : LOOP_NBUFS;
	l->bufsz = l->cfg.udp_gro ? LOOP_BUFSZ_GRO : LOOP_BUFSZ;
	ret = ring_setup(l);
	if (ret < 0)
		return ret;
	ret = bufring_setup(l);
	if (ret < 0)
		return ret;
	ret = ring_lock(l);
	if (ret < 0)
		return ret;
	ret = pool_init(&l->pool, l->cfg.health.enabled);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < l->cfg.n_backends; i++) {
		ret = pool_add(&l->pool, &l->cfg.backends[i]);
		if (ret < 0)
			return ret;
	}
	ret = pool_rebuild(&l->pool, &l->st);
	if (ret < 0)
		return ret;
	for (unsigned i = 0; i < l->cfg.n_listen; i++) {
		l->lst[i].addr = l->cfg.listen[i];
		ret = listener_open(l, i);
		if (ret < 0)
			return ret;
		l->n_lst++;
	}
	if (id == 0) {
		ret = signals_setup(l);
		if (ret < 0)
			return ret;
	}
	return 0;
}

int loop_attach(struct loop *l, const struct loop_part *p)
{
	unsigned i = l->n_parts;
	int ret;

	if (i == LOOP_MAX_PARTS)
		return -ENOSPC;
	l->parts[i] = p; /* attached while it opens: it can set its context */
	l->ctx[i] = NULL;
	l->n_parts++;
	ret = p->open ? p->open(l) : 0;
	if (ret < 0) {
		if (p->close)
			p->close(l); /* what a failed open left half made */
		l->n_parts--;
		return ret;
	}
	return 0;
}

void loop_set_ctx(struct loop *l, const struct loop_part *p, void *ctx)
{
	for (unsigned i = 0; i < l->n_parts; i++)
		if (l->parts[i] == p)
			l->ctx[i] = ctx;
}

int loop_op_register(struct loop *l, loop_op_fn fn, void *ctx)
{
	if (l->n_ops == LOOP_MAX_OPS)
		return -ENOSPC;
	l->ops[l->n_ops].fn = fn;
	l->ops[l->n_ops].ctx = ctx;
	return (int)l->n_ops++;
}

void loop_on_datagram(struct loop *l, loop_rx_fn fn, void *ctx)
{
	l->on_rx = fn;
	l->on_rx_ctx = ctx;
}

static void dispatch(struct loop *l, struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	unsigned op = ud_op(ud);
	unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	bool has_buf = cqe->flags & IORING_CQE_F_BUFFER;

	if (has_buf)
		l->buf_refs[bid] = 1; /* the receive's own hold, for its handler */
	switch (op) {
	case OP_RECV_LISTEN: {
		unsigned li = ud_idx(ud);
		if (!(cqe->flags & IORING_CQE_F_MORE))
			l->lst[li].armed = false;
		if (cqe->res == -ENOBUFS) {
			l->st.enobufs++;
			l->recv_starved = true;
		} else if (cqe->res < 0 && cqe->res != -ECANCELED) {
			log_warn("receive on listener %u: %s", li, strerror(-cqe->res));
		}
		if (has_buf) {
			if (l->on_rx)
				l->on_rx(l, l->on_rx_ctx, li, loop_buf(l, bid), bid, cqe->res);
			else
				loop_recycle(l, bid);
		}
		if (!l->lst[li].armed && cqe->res != -ENOBUFS && !l->stop)
			arm_listener(l, li);
		break;
	}
	case OP_WATCH:
		on_watch(l, ud, cqe->res);
		break;
	case OP_IGNORE:
		if (has_buf)
			loop_recycle(l, bid);
		break;
	default:
		if (op < l->n_ops && l->ops[op].fn) {
			l->ops[op].fn(l, l->ops[op].ctx, ud, cqe->res, cqe->flags);
		} else if (has_buf) {
			loop_recycle(l, bid);
		}
		break;
	}
}

/* Receives that stopped for want of buffers resume once buffers are back;
 * they, and watches, that found no SQE are asked again: the loop's own,
 * then each part's (resume). */
static void rearm_starved(struct loop *l)
{
	if (!l->recv_starved)
		return;
	l->recv_starved = false;
	for (int i = 0; i < LOOP_MAX_WATCH; i++)
		if (l->watch[i].used && l->watch[i].pending)
			arm_watch(l, i);
	for (unsigned i = 0; i < l->n_lst; i++)
		if (!l->lst[i].armed)
			arm_listener(l, i);
	for (unsigned i = 0; i < l->n_parts; i++)
		if (l->parts[i]->resume)
			l->parts[i]->resume(l);
}

static void timers(struct loop *l)
{
	unsigned i;

	if (l->now_ms >= l->next_scan_ms) {
		for (i = 0; i < l->n_parts; i++)
			if (l->parts[i]->scan)
				l->parts[i]->scan(l);
		l->next_scan_ms = l->now_ms + LOOP_SCAN_MS;
	}
	for (i = 0; i < l->n_parts; i++)
		if (l->parts[i]->tick)
			l->parts[i]->tick(l);
	if (l->watchdog_us && l->now_ms >= l->next_watchdog_ms) {
		sd_notify(0, "WATCHDOG=1");
		l->next_watchdog_ms = l->now_ms + l->watchdog_us / 2000;
	}
	for (i = 0; i < l->n_parts; i++)
		if (l->parts[i]->settle)
			l->parts[i]->settle(l);
}

int loop_run(struct loop *l)
{
	struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = LOOP_SCAN_MS * 1000000L};
	struct io_uring_cqe *cqe;
	unsigned head, n;
	int ret;

	if (l->worker_id || sd_watchdog_enabled(0, &l->watchdog_us) <= 0)
		l->watchdog_us = 0;
	for (unsigned i = 0; i < l->n_lst; i++)
		if (!l->lst[i].armed)
			arm_listener(l, i);
	if (!l->worker_id)
		sd_notify(0, "READY=1\nSTATUS=forwarding");
	while (!l->stop) {
		timers(l);
		bufring_flush(l);
		rearm_starved(l);
		ret = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts, NULL);
		if (ret < 0 && ret != -ETIME && ret != -EINTR && ret != -EBUSY) {
			log_err("io_uring_enter: %s", strerror(-ret));
			return ret;
		}
		loop_update_clock(l);
		n = 0;
		io_uring_for_each_cqe(&l->ring, head, cqe)
		{
			dispatch(l, cqe);
			n++;
		}
		io_uring_cq_advance(&l->ring, n);
		for (unsigned i = 0; i < l->n_parts; i++)
			if (l->parts[i]->batch_end)
				l->parts[i]->batch_end(l); /* the packet path: the batch's sends */
		if (l->reload) {
			l->reload = false;
			sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
				   (unsigned long long)l->now_ms * 1000);
			for (unsigned i = 0; i < l->n_parts; i++)
				if (l->parts[i]->reload)
					l->parts[i]->reload(l);
			sd_notify(0, "READY=1");
		}
	}
	if (!l->worker_id)
		sd_notify(0, "STOPPING=1");
	return 0;
}

void loop_fini(struct loop *l)
{
	/* In reverse order, each still attached while it closes (its
	 * context is found, as are those of the parts below it). */
	for (; l->n_parts; l->n_parts--)
		if (l->parts[l->n_parts - 1]->close)
			l->parts[l->n_parts - 1]->close(l);
	for (unsigned i = 0; i < CONFIG_MAX_LISTEN; i++)
		if (l->lst[i].fd >= 0)
			close(l->lst[i].fd);
	if (l->sigfd >= 0)
		close(l->sigfd);
	if (l->ring.ring_fd > 0)
		io_uring_queue_exit(&l->ring);
	if (l->br)
		munmap(l->br, l->nbufs * sizeof(struct io_uring_buf));
	if (l->bufs)
		munmap(l->bufs, (size_t)l->nbufs * l->bufsz);
	free(l->buf_refs);
	pool_free(&l->pool);
	config_free(&l->cfg);
	l->ws = NULL;
}
