// SPDX-License-Identifier: MIT
/* A non-blocking TCP request on the loop (see tcpreq.h). */
#include "wglb/tcpreq.h"
#include "wglb/loop.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *conn_reason(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return "refused";
	case ECONNRESET:
		return "reset";
	case EHOSTUNREACH:
	case ENETUNREACH:
		return "unreachable";
	default:
		return "connect";
	}
}

void tcpreq_cancel(struct loop *l, struct tcpreq *t)
{
	if (t->watch >= 0)
		loop_unwatch(l, t->watch);
	if (t->fd >= 0)
		close(t->fd);
	free(t->buf);
	t->buf = NULL;
	t->len = t->cap = 0;
	t->fd = t->watch = -1;
	t->busy = t->sent = false;
}

static void end(struct loop *l, struct tcpreq *t, const char *err)
{
	if (t->watch >= 0)
		loop_unwatch(l, t->watch);
	if (t->fd >= 0)
		close(t->fd);
	t->fd = t->watch = -1;
	t->busy = false;
	t->on_done(l, t, err); /* may start the next request on t: keep buf until it returns */
	if (!t->busy) {
		free(t->buf);
		t->buf = NULL;
		t->len = t->cap = 0;
	}
}

static void on_io(struct loop *l, void *ctx, uint32_t revents);

static void watch(struct loop *l, struct tcpreq *t, uint32_t ev)
{
	t->watch = loop_watch(l, t->fd, ev, on_io, t);
	if (t->watch < 0)
		end(l, t, "no_watch");
}

/* Room for more of the reply: false when it is at max. */
static bool grow(struct tcpreq *t)
{
	size_t nc;
	char *nb;

	if (t->len < t->cap)
		return true;
	if (t->cap >= t->max)
		return false;
	nc = t->cap ? t->cap * 2 : 1024;
	if (nc > t->max)
		nc = t->max;
	nb = realloc(t->buf, nc);
	if (!nb)
		return false;
	t->buf = nb;
	t->cap = nc;
	return true;
}

/* Send what is left of the request (a long one may take several turns),
 * then wait for the reply. */
static void send_rest(struct loop *l, struct tcpreq *t)
{
	const char *p = t->long_out ? t->long_out : t->out;
	ssize_t n;

	while (t->outoff < t->outlen) {
		n = send(t->fd, p + t->outoff, t->outlen - t->outoff, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
			watch(l, t, POLLOUT);
			return;
		}
		if (n < 0) {
			end(l, t, errno == ECONNRESET ? "reset" : "send");
			return;
		}
		t->outoff += (size_t)n;
	}
	t->sent = true;
	watch(l, t, POLLIN);
}

static void on_connected(struct loop *l, struct tcpreq *t, uint32_t revents)
{
	int err = 0;
	socklen_t el = sizeof(err);

	if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		err = errno;
	if (err || (revents & POLLERR)) {
		end(l, t, conn_reason(err ? err : ECONNREFUSED));
		return;
	}
	t->connected = true;
	send_rest(l, t);
}

static void on_io(struct loop *l, void *ctx, uint32_t revents)
{
	struct tcpreq *t = ctx;
	bool eof;
	ssize_t n;

	t->watch = -1;
	if (!t->connected) {
		on_connected(l, t, revents);
		return;
	}
	if (!t->sent) {
		if (revents & POLLERR)
			end(l, t, "send");
		else
			send_rest(l, t);
		return;
	}
	if (!grow(t)) { /* a close-waiter's reply past max, or out of memory */
		end(l, t, "too_long");
		return;
	}
	n = recv(t->fd, t->buf + t->len, t->cap - t->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		watch(l, t, POLLIN);
		return;
	}
	if (n < 0) {
		end(l, t, errno == ECONNRESET ? "reset" : "recv");
		return;
	}
	t->len += (size_t)n;
	/* A validator sees a full buffer as the end: it has all it will get. */
	eof = n == 0 || (t->on_read && t->len == t->max);
	if (t->on_read ? t->on_read(l, t, eof) || eof : eof) {
		end(l, t, NULL);
		return;
	}
	watch(l, t, POLLIN);
}

int tcpreq_start(struct loop *l, struct tcpreq *t, const union wglb_sa *to, socklen_t tolen,
		 uint32_t timeout_ms)
{
	t->started_ms = l->now_ms;
	t->deadline_ms = l->now_ms + timeout_ms;
	t->len = 0;
	t->outoff = 0;
	t->connected = t->sent = false;
	t->watch = -1;
	t->busy = true;
	t->fd = socket(to->sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd < 0) {
		int e = -errno;
		end(l, t, "socket");
		return e;
	}
	if (connect(t->fd, &to->sa, tolen) < 0 && errno != EINPROGRESS) {
		int e = -errno;
		end(l, t, conn_reason(errno));
		return e;
	}
	watch(l, t, POLLOUT);
	return 0;
}

void tcpreq_expire(struct loop *l, struct tcpreq *t)
{
	if (t->busy && l->now_ms >= t->deadline_ms)
		end(l, t, "timeout");
}
