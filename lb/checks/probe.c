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
#include "wglb/probe_verdict.h"
#include "wglb/fwd.h"
#include "wglb/loop.h"
#include "wglb/tcpreq.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define POKE_MIN_GAP_MS 200 /* passive signals cannot turn into a probe flood */
/* ... but once a probe of a backend that is up has failed, a passive
 * signal may confirm it this soon (HAProxy's "fastinter"): a server whose
 * WireGuard port is closed is down in about this long, not in
 * POKE_MIN_GAP_MS. Only a real probe failure opens it, so a forged
 * signal alone still gets at most one probe per POKE_MIN_GAP_MS. */
#define POKE_FAST_GAP_MS 40
/* A failed probe confirms at once (after POKE_FAST_GAP_MS) when a port
 * unreachable came this recently: the kernel sends them in a burst of 6 and
 * then 1 a second per destination, so none may follow. Only an ICMP error
 * counts here: an unanswered initiation is a signal anyone with the
 * server's public key can cause, and must not speed up a verdict. */
#define POKE_FRESH_MS 1000

#define PROBE_READ_MAX 1024 /* status line and headers; more is not read */

struct probe_be {
	struct tcpreq req; /* busy while a probe is in flight */
	uint64_t next_ms;
	struct probe_streak streak;
	uint32_t gen;     /* the backend's generation last seen (pool.h) */
	bool poked;       /* a passive signal waits for the probe it may start */
	uint64_t poke_ms; /* the last port unreachable */
	struct probe_result last;
};

struct prober {
	struct probe_be be[CONFIG_MAX_BACKENDS];
};

static struct prober *prober_of(const struct loop *l)
{
	return loop_ctx(l, &probe_part);
}

static void finish(struct loop *l, unsigned i, bool pass, const char *reason, int status,
		   int drain)
{
	struct prober *pr = prober_of(l);
	struct probe_be *pb = &pr->be[i];
	struct backend *b = &l->pool.be[i];
	const struct health_conf *hc = &l->cfg.health;

	pb->last.when_ms = clock_realtime_ms();
	pb->last.status = status;
	pb->last.reason = reason;
	pb->last.latency_ms = (uint32_t)(l->now_ms - pb->req.started_ms);
	pb->next_ms = pb->req.started_ms + hc->interval_ms;
	if (!pass)
		pb->last.failed++;
	pb->last.history = (uint16_t)(pb->last.history << 1 | pass);
	if (pb->last.history_n < 16)
		pb->last.history_n++;
	if (!pass && b->health == HEALTH_UP && pb->poke_ms && l->now_ms - pb->poke_ms <= POKE_FRESH_MS)
		pb->next_ms = pb->req.started_ms + POKE_FAST_GAP_MS;
	switch (probe_judge(&pb->streak, pass, b->health == HEALTH_UP, b->health == HEALTH_DOWN,
			    hc->rise, hc->fall)) {
	case PROBE_UP:
		log_info("backend %s: up (%s %d, %u passes)", b->name, reason, status, pb->streak.ok);
		pool_set_health(&l->pool, i, HEALTH_UP);
		break;
	case PROBE_DOWN:
		log_warn("backend %s: down (%s%s%.0d, %u failures)", b->name, reason,
			 status ? " " : "", status, pb->streak.fail);
		pool_set_health(&l->pool, i, HEALTH_DOWN);
		break;
	case PROBE_SAME:
		break;
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
	return (unsigned)(pb - prober_of(l)->be);
}

/* Settled as soon as the status line (and the drain header) is in. */
static bool on_read(struct loop *l, struct tcpreq *t, bool eof)
{
	int drain;

	(void)l;
	return probe_parse_status(t->buf, t->len, eof, &drain) != 0;
}

static void on_done(struct loop *l, struct tcpreq *t, const char *err)
{
	struct probe_be *pb = t->ctx;
	unsigned i = pb_index(l, pb);
	const struct health_conf *hc = &l->cfg.health;
	int drain, status;
	bool pass;

	if (err) {
		finish(l, i, false, err, 0, 0);
		return;
	}
	status = probe_parse_status(t->buf, t->len, true, &drain);
	if (status <= 0) {
		finish(l, i, false, t->len == 0 ? "closed" : "garbage", 0, 0);
		return;
	}
	pass = status >= hc->match_lo && status <= hc->match_hi;
	/* A server asking to drain is alive: graceful, never "down". */
	finish(l, i, pass || drain, drain ? "drain" : pass ? "ok" : "status", status, drain);
}

static void start(struct loop *l, unsigned i)
{
	struct probe_be *pb = &prober_of(l)->be[i];
	const struct health_conf *hc = &l->cfg.health;
	const struct backend *b = &l->pool.be[i];
	union wglb_sa sa = b->addr.u;
	char host[ADDR_STRLEN];
	bool v6 = b->addr.u.sa.sa_family == AF_INET6;
	int n;

	addr_fmt_ip(&b->addr.u, host, sizeof(host));
	n = snprintf(pb->req.out, sizeof(pb->req.out),
		     "%s %s HTTP/1.1\r\nHost: %s%s%s\r\nUser-Agent: wglb-probe\r\n"
		     "Connection: close\r\n\r\n",
		     hc->head ? "HEAD" : "GET", hc->path, v6 ? "[" : "", host, v6 ? "]" : "");
	pb->req.outlen = n > 0 && (size_t)n < sizeof(pb->req.out) ? (size_t)n : 0;
	addr_set_port(&sa, b->health_port ? b->health_port : hc->port);
	(void)tcpreq_start(l, &pb->req, &sa, b->addr.len, hc->timeout_ms); /* errors end in on_done */
}

static void backend_changed(struct loop *l, unsigned i)
{
	struct probe_be *pb = &prober_of(l)->be[i];

	tcpreq_cancel(l, &pb->req);
	pb->streak = (struct probe_streak){0, 0};
	pb->poked = false;
	pb->poke_ms = 0;
	pb->next_ms = l->now_ms;
	if (!l->pool.be[i].in_use)
		memset(&pb->last, 0, sizeof(pb->last));
}

/* A passive signal (ICMP unreachable, unanswered initiation): probe now,
 * or as soon as the probe in flight is done and the gap has passed. A
 * signal is kept, not dropped, while it waits: the kernel limits port
 * unreachables to a burst of 6 and then 1 a second per destination, so
 * the ones that came during the first probe may be the last for a second. */
static void poke(struct loop *l, struct prober *pr, unsigned i, unsigned signal)
{
	struct probe_be *pb = &pr->be[i];
	bool failing = pb->streak.fail && l->pool.be[i].health == HEALTH_UP;
	uint64_t gap = failing ? POKE_FAST_GAP_MS : POKE_MIN_GAP_MS;

	if (signal)
		pb->poked = true;
	if (signal & FWD_HINT_ICMP)
		pb->poke_ms = l->now_ms;
	if (!pb->poked || pb->req.busy || l->now_ms < pb->req.started_ms + gap)
		return;
	pb->poked = false;
	if (pb->next_ms > l->now_ms)
		pb->next_ms = l->now_ms;
}


static void probe_tick(struct loop *l)
{
	struct prober *pr = prober_of(l);

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
		poke(l, pr, i, fwd_hint_take(l, i)); /* the packet path's hint (any worker's) */
		if (pb->req.busy)
			tcpreq_expire(l, &pb->req);
		else if (l->now_ms >= pb->next_ms)
			start(l, i);
	}
}

const struct probe_result *probe_last(const struct loop *l, unsigned i)
{
	const struct prober *pr = prober_of(l);

	return pr && i < CONFIG_MAX_BACKENDS ? &pr->be[i].last : NULL;
}

static int probe_init(struct loop *l)
{
	struct prober *pr;
	unsigned n = l->pool.n ? l->pool.n : 1;

	if (!l->cfg.health.enabled)
		return 0;
	pr = calloc(1, sizeof(*pr));
	if (!pr)
		return -ENOMEM;
	for (unsigned i = 0; i < CONFIG_MAX_BACKENDS; i++) {
		struct tcpreq *t = &pr->be[i].req;
		t->fd = t->watch = -1;
		t->max = PROBE_READ_MAX;
		t->on_read = on_read;
		t->on_done = on_done;
		t->ctx = &pr->be[i];
		/* Spread first probes over the interval: no synchronized bursts. */
		pr->be[i].next_ms = l->now_ms + (uint64_t)l->cfg.health.interval_ms * (i % n) / n;
	}
	loop_set_ctx(l, &probe_part, pr);
	return 0;
}

static void probe_fini(struct loop *l)
{
	struct prober *pr = prober_of(l);

	if (!pr)
		return;
	for (unsigned i = 0; i < CONFIG_MAX_BACKENDS; i++)
		tcpreq_cancel(l, &pr->be[i].req);
	free(pr);
	loop_set_ctx(l, &probe_part, NULL);
}

const struct loop_part probe_part = {
	.name = "prober", .open = probe_init, .tick = probe_tick, .close = probe_fini};
