// SPDX-License-Identifier: MIT
/*
 * HTTP/1.1 health probes on the loop's ring: a non-blocking connect, one
 * small request, a bounded read of the status line and headers, all under
 * a deadline. One probe in flight per backend; start times are spread over
 * the interval. A slow or hostile health server costs a socket and a poll,
 * never a blocked loop.
 */
#include "wglb/clock.h"
#include "wglb/probe.h"
#include "wglb/loop.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define POKE_MIN_GAP_MS 200 /* passive signals cannot turn into a probe flood */

enum phase { PH_IDLE, PH_CONNECT, PH_READ };

struct probe_be {
	int fd, watch;
	enum phase phase;
	uint64_t next_ms, deadline_ms, started_ms;
	uint32_t ok_streak, fail_streak;
	uint32_t gen;     /* the backend's generation last seen (pool.h) */
	char rbuf[1024];
	size_t rlen;
	struct probe_result last;
};

struct prober {
	struct probe_be be[CONFIG_MAX_BACKENDS];
};

int probe_parse_status(const char *buf, size_t len, bool final, int *drain)
{
	static const char ver[] = "HTTP/1.";
	const char *hdr_end, *p;
	int status;

	*drain = 0;
	for (size_t i = 0; i < len && i < sizeof(ver) - 1; i++)
		if (buf[i] != ver[i])
			return -1;
	if (len < 13)
		return final ? -1 : 0;
	if (!isdigit((unsigned char)buf[7]) || buf[8] != ' ' || !isdigit((unsigned char)buf[9]) ||
	    !isdigit((unsigned char)buf[10]) || !isdigit((unsigned char)buf[11]) ||
	    (buf[12] != ' ' && buf[12] != '\r'))
		return -1;
	status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	if (status < 100 || status > 599)
		return -1;
	/* Headers are complete at the blank line; until then ask for more. */
	hdr_end = NULL;
	for (p = buf; p + 4 <= buf + len; p++)
		if (!memcmp(p, "\r\n\r\n", 4)) {
			hdr_end = p;
			break;
		}
	if (!hdr_end)
		return final ? status : 0; /* closed early: the status line decides */
	for (p = buf; p + 17 <= hdr_end; p++) {
		static const char h[] = "\r\nx-wglb-drain:";
		size_t k;
		for (k = 0; k < sizeof(h) - 1 && tolower((unsigned char)p[k]) == h[k]; k++)
			;
		if (k == sizeof(h) - 1) {
			const char *v = p + k;
			while (v < hdr_end && (*v == ' ' || *v == '\t'))
				v++;
			*drain = v < hdr_end && *v == '1';
			break;
		}
	}
	return status;
}

static void pb_reset(struct loop *l, struct probe_be *pb)
{
	if (pb->watch >= 0)
		loop_unwatch(l, pb->watch);
	if (pb->fd >= 0)
		close(pb->fd);
	pb->fd = pb->watch = -1;
	pb->phase = PH_IDLE;
	pb->rlen = 0;
}

static void finish(struct loop *l, unsigned i, bool pass, const char *reason, int status,
		   int drain)
{
	struct prober *pr = l->prober;
	struct probe_be *pb = &pr->be[i];
	struct backend *b = &l->pool.be[i];
	const struct health_conf *hc = &l->cfg.health;

	pb->last.when_ms = clock_realtime_ms();
	pb->last.status = status;
	pb->last.reason = reason;
	pb->last.latency_ms = (uint32_t)(l->now_ms - pb->started_ms);
	pb_reset(l, pb);
	pb->next_ms = pb->started_ms + hc->interval_ms;
	if (pass) {
		pb->fail_streak = 0;
		pb->ok_streak++;
		if (b->health != HEALTH_UP && pb->ok_streak >= hc->rise) {
			log_info("backend %s: up (%s %d, %u passes)", b->name, reason, status,
				 pb->ok_streak);
			pool_set_health(&l->pool, i, HEALTH_UP);
		}
	} else {
		pb->ok_streak = 0;
		pb->fail_streak++;
		b->st.failed_probes++;
		if (b->health != HEALTH_DOWN && pb->fail_streak >= hc->fall) {
			log_warn("backend %s: down (%s%s%.0d, %u failures)", b->name, reason,
				 status ? " " : "", status, pb->fail_streak);
			pool_set_health(&l->pool, i, HEALTH_DOWN);
		}
	}
	/* The agent's drain header: graceful, unlike a failure. */
	if (drain && !b->agent_drain && b->admin == ADMIN_ENABLED)
		log_info("backend %s: draining (its agent asks, X-Wglb-Drain)", b->name);
	else if (!drain && b->agent_drain && b->admin == ADMIN_DRAINING)
		log_info("backend %s: agent drain lifted", b->name);
	pool_agent_drain(&l->pool, i, drain);
}

static unsigned pb_index(struct loop *l, struct probe_be *pb)
{
	return (unsigned)(pb - l->prober->be);
}

static void on_io(struct loop *l, void *ctx, uint32_t revents);

static void watch(struct loop *l, struct probe_be *pb, uint32_t ev)
{
	pb->watch = loop_watch(l, pb->fd, ev, on_io, pb);
	if (pb->watch < 0)
		finish(l, pb_index(l, pb), false, "no_watch", 0, 0);
}

static void send_request(struct loop *l, struct probe_be *pb)
{
	const struct health_conf *hc = &l->cfg.health;
	struct backend *b = &l->pool.be[pb_index(l, pb)];
	char req[512], host[ADDR_STRLEN];
	int n;

	addr_fmt_ip(&b->addr.u, host, sizeof(host));
	n = snprintf(req, sizeof(req),
		     "%s %s HTTP/1.1\r\nHost: %s%s%s\r\nUser-Agent: wglb-probe\r\n"
		     "Connection: close\r\n\r\n",
		     hc->head ? "HEAD" : "GET", hc->path, b->addr.u.sa.sa_family == AF_INET6 ? "[" : "",
		     host, b->addr.u.sa.sa_family == AF_INET6 ? "]" : "");
	/* A fresh socket's buffer always takes a request this small. */
	if (n < 0 || send(pb->fd, req, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) != n) {
		finish(l, pb_index(l, pb), false, errno == ECONNRESET ? "reset" : "send", 0, 0);
		return;
	}
	pb->phase = PH_READ;
	watch(l, pb, POLLIN);
}

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

static void on_io(struct loop *l, void *ctx, uint32_t revents)
{
	struct probe_be *pb = ctx;
	unsigned i = pb_index(l, pb);
	int err = 0, drain, status;
	socklen_t el = sizeof(err);
	ssize_t n;

	pb->watch = -1;
	if (pb->phase == PH_CONNECT) {
		if (getsockopt(pb->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
		if (err || (revents & POLLERR)) {
			finish(l, i, false, conn_reason(err ? err : ECONNREFUSED), 0, 0);
			return;
		}
		send_request(l, pb);
		return;
	}
	n = recv(pb->fd, pb->rbuf + pb->rlen, sizeof(pb->rbuf) - pb->rlen, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		watch(l, pb, POLLIN);
		return;
	}
	if (n < 0) {
		finish(l, i, false, errno == ECONNRESET ? "reset" : "recv", 0, 0);
		return;
	}
	pb->rlen += (size_t)n;
	status = probe_parse_status(pb->rbuf, pb->rlen, n == 0 || pb->rlen == sizeof(pb->rbuf),
				    &drain);
	if (status < 0) {
		finish(l, i, false, n == 0 && pb->rlen == 0 ? "closed" : "garbage", 0, 0);
		return;
	}
	if (status == 0) {
		watch(l, pb, POLLIN);
		return;
	}
	{
		const struct health_conf *hc = &l->cfg.health;
		bool pass = status >= hc->match_lo && status <= hc->match_hi;
		/* A server asking to drain is alive: graceful, never "down". */
		finish(l, i, pass || drain, drain ? "drain" : pass ? "ok" : "status", status, drain);
	}
}

static void start(struct loop *l, unsigned i)
{
	struct probe_be *pb = &l->prober->be[i];
	struct backend *b = &l->pool.be[i];
	union wglb_sa sa = b->addr.u;
	uint16_t port = b->health_port ? b->health_port : l->cfg.health.port;

	pb->started_ms = l->now_ms;
	pb->deadline_ms = l->now_ms + l->cfg.health.timeout_ms;
	addr_set_port(&sa, port);
	pb->fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (pb->fd < 0) {
		finish(l, i, false, "socket", 0, 0);
		return;
	}
	if (connect(pb->fd, &sa.sa, b->addr.len) < 0 && errno != EINPROGRESS) {
		finish(l, i, false, conn_reason(errno), 0, 0);
		return;
	}
	pb->phase = PH_CONNECT;
	watch(l, pb, POLLOUT);
}

static void backend_changed(struct loop *l, unsigned i)
{
	struct probe_be *pb = &l->prober->be[i];

	pb_reset(l, pb);
	pb->ok_streak = pb->fail_streak = 0;
	pb->next_ms = l->now_ms;
	if (!l->pool.be[i].in_use)
		memset(&pb->last, 0, sizeof(pb->last));
}

void probe_tick(struct loop *l)
{
	struct prober *pr = l->prober;

	if (!pr)
		return;
	for (unsigned i = 0; i < l->pool.n; i++) {
		struct probe_be *pb = &pr->be[i];
		if (pb->gen != l->pool.be[i].gen) {
			/* Added, deleted, re-addressed or re-administered since
			 * we last looked: start that backend afresh. */
			backend_changed(l, i);
			pb->gen = l->pool.be[i].gen;
		}
		if (!l->pool.be[i].in_use || l->pool.be[i].removing)
			continue;
		if (pb->phase != PH_IDLE && l->now_ms >= pb->deadline_ms)
			finish(l, i, false, "timeout", 0, 0);
		else if (pb->phase == PH_IDLE && l->now_ms >= pb->next_ms)
			start(l, i);
	}
}

void probe_poke(struct loop *l, unsigned i)
{
	struct probe_be *pb;

	if (!l->prober || i >= CONFIG_MAX_BACKENDS)
		return;
	pb = &l->prober->be[i];
	if (pb->phase == PH_IDLE && l->now_ms >= pb->started_ms + POKE_MIN_GAP_MS &&
	    pb->next_ms > l->now_ms)
		pb->next_ms = l->now_ms;
}


const struct probe_result *probe_last(const struct loop *l, unsigned i)
{
	return l->prober && i < CONFIG_MAX_BACKENDS ? &l->prober->be[i].last : NULL;
}

int probe_init(struct loop *l)
{
	struct prober *pr;
	unsigned n = l->pool.n ? l->pool.n : 1;

	if (!l->cfg.health.enabled)
		return 0;
	pr = calloc(1, sizeof(*pr));
	if (!pr)
		return -ENOMEM;
	for (unsigned i = 0; i < CONFIG_MAX_BACKENDS; i++) {
		pr->be[i].fd = pr->be[i].watch = -1;
		/* Spread first probes over the interval: no synchronized bursts. */
		pr->be[i].next_ms = l->now_ms + (uint64_t)l->cfg.health.interval_ms * (i % n) / n;
	}
	l->prober = pr;
	return 0;
}

void probe_fini(struct loop *l)
{
	if (!l->prober)
		return;
	for (unsigned i = 0; i < CONFIG_MAX_BACKENDS; i++)
		pb_reset(l, &l->prober->be[i]);
	free(l->prober);
	l->prober = NULL;
}

const struct loop_part probe_part = {.name = "prober", .open = probe_init, .tick = probe_tick, .close = probe_fini};
