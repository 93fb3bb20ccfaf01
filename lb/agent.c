// SPDX-License-Identifier: MIT
/*
 * Instant failover. Each backend's agent (wg-health --agent-key) tells us,
 * once a second, which WireGuard peer sits behind which endpoint; every
 * endpoint on a server behind wglb is one of our upstream sockets, so the
 * upstream port names the flow. When a backend goes down (or is drained
 * "now"), the loop re-pins its flows and we ask each new backend's agent to
 * point that peer at the flow's upstream address and start a handshake at
 * once: the initiation reaches the client through wglb, the client
 * answers, and the session lives on the new backend about one round trip
 * later, instead of after the client's own ~15 s retry. Requests are paced
 * (rate per second) so no backend is pushed into WireGuard's under-load
 * mode, where it limits handshakes per source and all our clients share
 * one. Completion is the client's handshake response on that flow.
 */
#include "wglb/clock.h"
#include "wglb/agent.h"
#include "wglb/tcpreq.h"
#include "wglb/fwd.h"
#include "wglb/loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define AGENT_MAX_REQ    64
#define AGENT_POLL_MS    1000
#define AGENT_TIMEOUT_MS 1500
#define AGENT_MAX_REPLY  (1 << 20)

enum { REQ_PEERS = 1, REQ_REHANDSHAKE };

struct agent_req {
	struct tcpreq t; /* the signed line out, the whole reply back */
	uint8_t kind;    /* 0: free */
	uint16_t backend;
	uint32_t flow;
	char nonce[17];
};
_Static_assert(AP_MAX_LINE <= sizeof(((struct tcpreq *)0)->out), "a signed request fits");

struct agent {
	struct ap_key key;
	uint16_t port;
	uint32_t rate;
	struct agent_req req[AGENT_MAX_REQ];
	uint64_t next_poll_ms[CONFIG_MAX_BACKENDS];
	uint32_t peers_known[CONFIG_MAX_BACKENDS];
	uint8_t (*peer)[32];  /* per flow: the WireGuard peer behind it */
	/* Per flow: the number of the peers report that last put peer[] behind
	 * it (0: none), and whose report that was. A client the router moved to
	 * another balancer leaves a flow here that the backend's next report no
	 * longer lists: only a flow in the latest complete report of the
	 * backend that listed it is asked about. */
	uint32_t *seen;
	uint16_t *seen_by;
	uint32_t report[CONFIG_MAX_BACKENDS];   /* the latest complete report's number */
	uint32_t building[CONFIG_MAX_BACKENDS]; /* the number of the report being read */
	uint32_t reports;                       /* numbers handed out */
	uint64_t *moved_ms;   /* per flow: when it was moved with a request (0 none) */
	uint32_t *queue, qhead, qlen;
	double tokens;
	uint64_t last_refill_ms;
	uint64_t drain_window_ms; /* drain moves: at most `rate` a second */
	uint32_t drain_budget;
	struct agent_stats st;
};

static void on_done(struct loop *l, struct tcpreq *t, const char *err);

int agent_init(struct loop *l)
{
	struct agent *a;
	uint32_t cap = l->ft.cap;
	int ret;

	if (!l->cfg.agent.key_file[0])
		return 0; /* without keys wglb behaves exactly as before */
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	l->agent = a;
	ret = ap_key_load(l->cfg.agent.key_file, &a->key);
	if (ret < 0) {
		log_err("[agent] key_file %s: %s (want 32 bytes as 64 hex digits or base64)",
			l->cfg.agent.key_file, strerror(-ret));
		return ret;
	}
	a->port = l->cfg.agent.port;
	/* Each worker asks for its own flows: the rate is shared out. */
	a->rate = l->cfg.agent.rate / l->n_workers ? l->cfg.agent.rate / l->n_workers : 1;
	a->peer = calloc(cap, sizeof(*a->peer));
	a->seen = calloc(cap, sizeof(*a->seen));
	a->seen_by = calloc(cap, sizeof(*a->seen_by));
	a->moved_ms = calloc(cap, sizeof(*a->moved_ms));
	a->queue = calloc(cap, sizeof(*a->queue));
	if (!a->peer || !a->seen || !a->seen_by || !a->moved_ms || !a->queue)
		return -ENOMEM;
	for (unsigned i = 0; i < AGENT_MAX_REQ; i++) {
		struct tcpreq *t = &a->req[i].t;
		t->fd = t->watch = -1;
		t->max = AGENT_MAX_REPLY;
		t->on_done = on_done; /* the agent closes after its reply: read to the end */
		t->ctx = &a->req[i];
	}
	if (!l->worker_id)
		log_info("instant failover: agents on port %u, %u re-handshakes/s", a->port,
			 l->cfg.agent.rate);
	return 0;
}

static void req_end(struct loop *l, struct agent_req *r)
{
	tcpreq_cancel(l, &r->t);
	r->kind = 0;
}

void agent_fini(struct loop *l)
{
	struct agent *a = l->agent;

	if (!a)
		return;
	for (unsigned i = 0; i < AGENT_MAX_REQ; i++)
		if (a->req[i].kind)
			req_end(l, &a->req[i]);
	free(a->peer);
	free(a->seen);
	free(a->seen_by);
	free(a->moved_ms);
	free(a->queue);
	sodium_memzero(&a->key, sizeof(a->key));
	free(a);
	l->agent = NULL;
}

static void failed(struct agent *a, struct agent_req *r)
{
	if (r->kind == REQ_REHANDSHAKE) {
		a->st.failed++;
		a->moved_ms[r->flow] = 0;
	}
}

static void queue_rehandshake(struct loop *l, uint32_t fi)
{
	struct agent *a = l->agent;

	if (a->qlen == l->ft.cap)
		return;
	a->moved_ms[fi] = l->now_ms;
	a->queue[(a->qhead + a->qlen++) % l->ft.cap] = fi;
}

/*
 * A plain drain: client-initiated sessions leave at their next rekey by
 * themselves, but a session the server initiated (after an instant
 * failover) is rekeyed by the server only, so its client would never
 * leave. Move those, at most `rate` a second, with a re-handshake each.
 */
static void drain_server_initiated(struct loop *l, struct flow *f)
{
	struct agent *a = l->agent;
	uint32_t fi = flow_index(&l->ft, f);

	if (!(f->flags & FLOW_F_SRV_INIT) || l->pool.be[f->backend].admin != ADMIN_DRAINING ||
	    a->moved_ms[fi])
		return;
	if (l->now_ms - a->drain_window_ms >= 1000) {
		a->drain_window_ms = l->now_ms;
		a->drain_budget = a->rate;
	}
	if (a->drain_budget && fwd_move_flow(l, f, REPIN_DRAINED)) {
		queue_rehandshake(l, fi); /* its peer is in the report being read */
		a->drain_budget--;
	}
}

/* Join "peer KEY ENDPOINT HS" lines to this backend's flows by upstream
 * address and port (the flow table's port index: no scan): an endpoint at
 * another balancer (or one left from before a restart, on an address this
 * one does not use) is not ours. *self, our address toward the backend, is
 * read from the first flow joined. */
static void on_peers(struct loop *l, unsigned backend, struct wglb_addr *self, struct ap_msg *m,
		     unsigned *n)
{
	struct agent *a = l->agent;
	struct wglb_addr ep, mine;
	struct flow *f;
	uint8_t pub[32];
	size_t bin;
	uint16_t port;
	uint32_t fi;

	if (m->n != 6 || strcmp(m->word[2], "peer") || addr_parse(m->word[4], &ep) < 0)
		return;
	port = addr_port(&ep.u);
	f = port ? flow_by_port(&l->ft, port) : NULL;
	if (!f || f->backend != backend)
		return;
	if (!self->len) {
		socklen_t sl = sizeof(self->u);
		if (getsockname(f->fd, &self->u.sa, &sl) < 0)
			return;
		self->len = sl;
	}
	mine = *self;
	addr_set_port(&mine.u, port);
	if (!addr_equal(&ep, &mine) ||
	    sodium_base642bin(pub, sizeof(pub), m->word[3], strlen(m->word[3]), NULL, &bin, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 || bin != 32)
		return;
	fi = flow_index(&l->ft, f);
	memcpy(a->peer[fi], pub, 32);
	a->seen[fi] = a->building[backend];
	a->seen_by[fi] = (uint16_t)backend;
	(*n)++;
	drain_server_initiated(l, f);
}

static void on_reply(struct loop *l, struct agent_req *r)
{
	struct agent *a = l->agent;
	unsigned joined = 0;
	bool ok = false, ended = false;
	char *line = r->t.buf, *nl;
	struct wglb_addr self = {0}; /* our address toward this backend */

	while (line && line < r->t.buf + r->t.len &&
	       (nl = memchr(line, '\n', (size_t)(r->t.buf + r->t.len - line)))) {
		struct ap_msg m;
		enum ap_verdict v = ap_verify(&a->key, NULL, clock_realtime_ms(), line, (size_t)(nl - line), &m);
		line = nl + 1;
		if (v != AP_OK || m.n < 3 || strcmp(m.word[0], "re") || strcmp(m.word[1], r->nonce)) {
			a->st.bad_replies++;
			continue;
		}
		if (r->kind == REQ_PEERS && !strcmp(m.word[2], "end"))
			ended = true;
		else if (r->kind == REQ_PEERS)
			on_peers(l, r->backend, &self, &m, &joined);
		else
			ok = !strcmp(m.word[2], "ok");
	}
	if (r->kind == REQ_PEERS) {
		if (ended) {
			a->peers_known[r->backend] = joined;
			a->report[r->backend] = a->building[r->backend];
		}
	} else if (ok) {
		a->st.requested_ok++;
	} else {
		failed(a, r);
	}
}

static void on_done(struct loop *l, struct tcpreq *t, const char *err)
{
	struct agent_req *r = t->ctx;

	if (err)
		failed(l->agent, r);
	else
		on_reply(l, r);
	r->kind = 0;
}

static struct agent_req *req_start(struct loop *l, unsigned backend, uint8_t kind, const char *words,
				   uint32_t flow)
{
	struct agent *a = l->agent;
	struct agent_req *r = NULL;
	union wglb_sa sa = l->pool.be[backend].addr.u;
	char to[ADDR_STRLEN], signed_words[AP_MAX_LINE];
	int len;

	for (unsigned i = 0; i < AGENT_MAX_REQ && !r; i++)
		if (!a->req[i].kind)
			r = &a->req[i];
	if (!r)
		return NULL;
	addr_set_port(&sa, a->port);
	/* Name the agent this is for: another server sharing the key refuses it. */
	snprintf(signed_words, sizeof(signed_words), "to %s %s", addr_fmt(&sa, to, sizeof(to)),
		 words);
	len = ap_sign(&a->key, clock_realtime_ms(), signed_words, r->t.out, sizeof(r->t.out), r->nonce);
	if (len < 0)
		return NULL;
	r->t.outlen = (size_t)len;
	r->kind = kind;
	r->backend = (uint16_t)backend;
	r->flow = flow;
	if (tcpreq_start(l, &r->t, &sa, l->pool.be[backend].addr.len, AGENT_TIMEOUT_MS) < 0)
		return NULL; /* on_done has counted the failure and freed the slot */
	return r;
}

void agent_moved(struct loop *l, struct flow *f)
{
	struct agent *a = l->agent;
	uint32_t fi;

	if (!a)
		return;
	fi = flow_index(&l->ft, f);
	/* Only a peer still reported behind this flow: another balancer's
	 * request for a client the router has moved there would re-add the
	 * peer under a handshake in progress. */
	if (a->seen[fi] && a->seen[fi] == a->report[a->seen_by[fi]])
		queue_rehandshake(l, fi);
}

void agent_client_response(struct loop *l, struct flow *f)
{
	struct agent *a = l->agent;
	uint32_t fi;
	uint64_t ms;
	static const uint32_t bounds[AGENT_HIST] = {500, 1000, 1500, 2000, 3000, 5000, 10000};

	if (!a)
		return;
	fi = flow_index(&l->ft, f);
	if (!a->moved_ms[fi])
		return;
	ms = l->now_ms - a->moved_ms[fi];
	a->moved_ms[fi] = 0;
	a->st.completed++;
	a->st.recovery_ms_sum += ms;
	for (unsigned i = 0; i < AGENT_HIST; i++)
		if (ms <= bounds[i])
			a->st.hist[i]++;
	a->st.hist[AGENT_HIST]++; /* +Inf: cumulative, as Prometheus wants */
}

void agent_flow_closed(struct loop *l, struct flow *f)
{
	struct agent *a = l->agent;

	if (!a)
		return;
	a->seen[flow_index(&l->ft, f)] = 0;
	a->moved_ms[flow_index(&l->ft, f)] = 0;
}

static void send_rehandshakes(struct loop *l)
{
	struct agent *a = l->agent;
	double per_ms = (double)a->rate / 1000.0;

	a->tokens += (double)(l->now_ms - a->last_refill_ms) * per_ms;
	a->last_refill_ms = l->now_ms;
	if (a->tokens > (double)a->rate / 10 + 1)
		a->tokens = (double)a->rate / 10 + 1; /* bursts of at most 100 ms worth */
	while (a->qlen && a->tokens >= 1) {
		uint32_t fi = a->queue[a->qhead];
		struct flow *f = &l->ft.flows[fi];
		union wglb_sa local;
		socklen_t sl = sizeof(local);
		char b64[64], ep[ADDR_STRLEN], words[256];
		struct agent_req *r;

		if (!(f->flags & FLOW_F_USED) || !a->moved_ms[fi] || !a->seen[fi]) {
			a->qhead = (a->qhead + 1) % l->ft.cap;
			a->qlen--;
			continue;
		}
		/* The new backend must send to this flow's upstream socket. */
		if (getsockname(f->fd, &local.sa, &sl) < 0)
			break;
		sodium_bin2base64(b64, sizeof(b64), a->peer[fi], 32, sodium_base64_VARIANT_ORIGINAL);
		snprintf(words, sizeof(words), "rehandshake %s %s", b64, addr_fmt(&local, ep, sizeof(ep)));
		r = req_start(l, f->backend, REQ_REHANDSHAKE, words, fi);
		if (!r)
			break; /* every slot busy (or the connect failed, counted): next tick */
		a->st.requested++;
		a->tokens -= 1;
		a->qhead = (a->qhead + 1) % l->ft.cap;
		a->qlen--;
	}
}


void agent_tick(struct loop *l)
{
	struct agent *a = l->agent;

	if (!a)
		return;
	for (unsigned i = 0; i < AGENT_MAX_REQ; i++)
		if (a->req[i].kind && l->now_ms >= a->req[i].t.deadline_ms) {
			a->st.timeouts++;
			tcpreq_expire(l, &a->req[i].t); /* on_done counts it failed */
		}
	for (unsigned b = 0; b < l->pool.n; b++) {
		const struct backend *be = &l->pool.be[b];
		if (!be->in_use || be->removing || be->health == HEALTH_DOWN ||
		    l->now_ms < a->next_poll_ms[b])
			continue;
		a->building[b] = ++a->reports;
		if (req_start(l, b, REQ_PEERS, "peers", 0))
			a->next_poll_ms[b] = l->now_ms + AGENT_POLL_MS;
	}
	send_rehandshakes(l);
}

const struct agent_stats *agent_stats(const struct loop *l)
{
	return l->agent ? &l->agent->st : NULL;
}

uint32_t agent_peers_known(const struct loop *l, unsigned backend)
{
	return l->agent && backend < CONFIG_MAX_BACKENDS ? l->agent->peers_known[backend] : 0;
}

const struct loop_part agent_part = {.name = "agent client", .open = agent_init, .tick = agent_tick, .close = agent_fini};
