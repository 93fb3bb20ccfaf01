// SPDX-License-Identifier: MIT
/*
 * Control commands: a table of {words, usage, handler, admin}; `help` is
 * generated from it. Verb first ("backend drain NAME") so no backend name
 * can collide with a command. Handlers read the loop's state, change
 * backends only through pool.h and may ask for a reload; the loop applies
 * the changes at the end of the batch.
 */
#include "wglb/agent.h"
#include "wglb/ctl.h"
#include "wglb/ctl_cmds.h"
#include "wglb/workers.h"
#include "wglb/fwd.h"
#include "wglb/totals.h"
#include "wglb/loop.h"
#include "wglb/probe.h"
#include "wglb/version.h"
#include "wglb/wgmsg.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- helpers ---- */

static void ok(struct ctl_client *c, const struct ctl_req *r, const char *what, const char *name)
{
	if (r->json) {
		ctl_printf(c, "{\"ok\": true, \"action\": \"%s\", \"backend\": ", what);
		ctl_json_str(c, name);
		ctl_printf(c, "}\n");
	} else {
		ctl_printf(c, "ok: %s %s\n", what, name);
	}
}

static void rfc3339(uint64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int find_backend(struct loop *l, struct ctl_client *c, const struct ctl_req *r,
			const char *name)
{
	int i = pool_find(&l->pool, name);

	if (i < 0 || l->pool.be[i].removing) {
		ctl_of(l)->errors++;
		ctl_error(c, r->json, "no backend named '%s'", name);
		return -1;
	}
	return i;
}

/* ---- commands ---- */

static void io_uring_features(const struct loop *l, const char *out[5], int *n)
{
	*n = 0;
	out[(*n)++] = "multishot recvmsg";
	out[(*n)++] = "provided buffer ring";
	out[(*n)++] = "restricted to recvmsg/send/sendmsg/poll/cancel"; /* ring_lock() or no start */
	if (l->setup_flags & IORING_SETUP_DEFER_TASKRUN)
		out[(*n)++] = "single issuer + deferred task run";
	else if (l->setup_flags & IORING_SETUP_COOP_TASKRUN)
		out[(*n)++] = "cooperative task run";
}

static void cmd_show_info(struct loop *l, struct ctl_client *c, const struct ctl_req *r)
{
	const struct totals *t = totals_collect(l, 0);
	const char *feat[5];
	char a[ADDR_STRLEN];
	int nf;

	io_uring_features(l, feat, &nf);
	if (r->json) {
		ctl_printf(c, "{\"version\": \"%s\", \"uptime_s\": %llu, \"config\": ", WGLB_VERSION,
			   (unsigned long long)((l->now_ms - l->start_ms) / 1000));
		ctl_json_str(c, l->cfg.path);
		ctl_printf(c, ", \"listeners\": [");
		for (unsigned i = 0; i < l->n_lst; i++)
			ctl_printf(c, "%s\"%s\"", i ? ", " : "",
				   addr_fmt(&l->lst[i].addr.u, a, sizeof(a)));
		ctl_printf(c, "], \"flows\": %u, \"max_flows\": %u, \"backends\": %u, "
			      "\"failopen\": %s, \"io_uring\": [",
			   t->flows, t->max_flows, l->pool.n, l->pool.failopen ? "true" : "false");
		for (int i = 0; i < nf; i++)
			ctl_printf(c, "%s\"%s\"", i ? ", " : "", feat[i]);
		/* The steering seed tells which worker serves an address: root-only
		 * here, never in /metrics, whose readers are not authenticated. */
		ctl_printf(c, "], \"buffers\": %u, \"buffer_size\": %u, \"udp_gro\": %s, "
			      "\"fast_path\": ",
			   l->nbufs, l->bufsz, l->cfg.udp_gro ? "true" : "false");
		ctl_json_str(c, fwd_fast_status());
		ctl_printf(c, ", \"steer_seed\": \"%016llx\", \"workers\": [",
			   (unsigned long long)workers_steer_seed(l->ws));
		for (unsigned i = 0; i < l->n_workers; i++)
			ctl_printf(c, "%s{\"worker\": %u, \"flows\": %u, \"packets_in\": %llu, "
				      "\"stalled\": %s}",
				   i ? ", " : "", i, t->worker_flows[i],
				   (unsigned long long)t->worker_pkts_in[i],
				   t->worker_stalled[i] ? "true" : "false");
		ctl_printf(c, "]}\n");
		return;
	}
	ctl_printf(c, "version:    %s\n", WGLB_VERSION);
	ctl_printf(c, "uptime:     %llus\n", (unsigned long long)((l->now_ms - l->start_ms) / 1000));
	ctl_printf(c, "config:     %s\n", l->cfg.path);
	for (unsigned i = 0; i < l->n_lst; i++)
		ctl_printf(c, "listener:   %s\n", addr_fmt(&l->lst[i].addr.u, a, sizeof(a)));
	ctl_printf(c, "flows:      %u / %u\n", t->flows, t->max_flows);
	ctl_printf(c, "workers:    %u (flows:", l->n_workers);
	for (unsigned i = 0; i < l->n_workers; i++)
		ctl_printf(c, " %u", t->worker_flows[i]);
	ctl_printf(c, ")\n");
	if (t->stalled) {
		ctl_printf(c, "stalled:   ");
		for (unsigned i = 0; i < l->n_workers; i++)
			if (t->worker_stalled[i])
				ctl_printf(c, " worker %u", i);
		ctl_printf(c, " (no heartbeat: counters as last published)\n");
	}
	ctl_printf(c, "failopen:   %s\n", l->pool.failopen ? "yes (no backend is up)" : "no");
	ctl_printf(c, "io_uring:  ");
	for (int i = 0; i < nf; i++)
		ctl_printf(c, "%s %s", i ? "," : "", feat[i]);
	ctl_printf(c, " (%u buffers of %u bytes per worker)\n", l->nbufs, l->bufsz);
	ctl_printf(c, "udp_gro:    %s\n", l->cfg.udp_gro ? "on (coalesced receives, GSO sends)" : "off");
	ctl_printf(c, "fast_path:  %s\n", fwd_fast_status());
}

static void stats_json_types(struct ctl_client *c, const char *key, const uint64_t v[5])
{
	ctl_printf(c, "\"%s\": {", key);
	for (int t = 1; t <= 4; t++)
		ctl_printf(c, "%s\"%s\": %llu", t > 1 ? ", " : "", wgmsg_type_name((enum wg_type)t),
			   (unsigned long long)v[t]);
	ctl_printf(c, "}");
}

static void stats_json_drops(struct ctl_client *c, const char *key, const uint64_t v[DROP__COUNT])
{
	ctl_printf(c, "\"%s\": {", key);
	for (int d = 0; d < DROP__COUNT; d++)
		ctl_printf(c, "%s\"%s\": %llu", d ? ", " : "", stats_drop_name((enum drop)d),
			   (unsigned long long)v[d]);
	ctl_printf(c, "}");
}

static void cmd_show_stats_json(struct loop *l, struct ctl_client *c)
{
	const struct totals *t = totals_collect(l, 0);
	const struct wglb_stats *s = &t->st;

	ctl_printf(c, "{\"packets_in\": %llu, \"bytes_in\": %llu, \"packets_out\": %llu, "
		      "\"bytes_out\": %llu, \"forwarded_in\": %llu, \"forwarded_out\": %llu, "
		      "\"sends_in\": %llu, \"sends_out\": %llu, \"receives_in\": %llu, "
		      "\"receives_out\": %llu, \"gso_split\": %llu, \"fast_path_packets_in\": %llu, "
		      "\"fast_path_bytes_in\": %llu, \"fast_path_packets_out\": %llu, "
		      "\"fast_path_bytes_out\": %llu, \"fast_path_refused\": %llu, ",
		   (unsigned long long)s->pkts_in, (unsigned long long)s->bytes_in,
		   (unsigned long long)s->pkts_out, (unsigned long long)s->bytes_out,
		   (unsigned long long)s->fwd_in, (unsigned long long)s->fwd_out,
		   (unsigned long long)s->sends_in, (unsigned long long)s->sends_out,
		   (unsigned long long)s->recvs_in, (unsigned long long)s->recvs_out,
		   (unsigned long long)s->gso_split, (unsigned long long)s->fast_pkts_in,
		   (unsigned long long)s->fast_bytes_in, (unsigned long long)s->fast_pkts_out,
		   (unsigned long long)s->fast_bytes_out, (unsigned long long)s->fast_refused);
	ctl_printf(c, "\"flows_active\": %u, \"flows_new\": %llu, \"flows_expired\": %llu, "
		      "\"flows_evicted\": %llu, \"flows_roamed\": %llu, \"failopen\": %llu, "
		      "\"recv_buffer_exhausted\": %llu, \"ring_full\": %llu, \"cancel_failed\": %llu, "
		      "\"move_errors\": %llu, \"client_address\": \"%s\", \"flows_preserved\": %llu, "
		      "\"preserve_fallback\": %llu, ",
		   t->flows, (unsigned long long)s->flows_new,
		   (unsigned long long)s->flows_expired, (unsigned long long)s->flows_evicted,
		   (unsigned long long)s->flows_roamed,
		   (unsigned long long)s->failopen, (unsigned long long)s->enobufs,
		   (unsigned long long)s->ring_full, (unsigned long long)s->cancel_failed,
		   (unsigned long long)s->move_errors,
		   l->cfg.client_address == CLIENT_PRESERVE ? "preserve" : "snat",
		   (unsigned long long)s->flows_preserved, (unsigned long long)s->preserve_fallback);
	ctl_printf(c, "\"flows_confirmed\": %llu, \"flows_demoted\": %llu, \"flows_unconfirmed\": %u, "
		      "\"unconfirmed_cap\": %u, \"edge\": {\"handshake_cookies\": \"%s\", "
		      "\"cookies_active\": %s, \"under_load\": %s, \"load_episodes\": %llu, "
		      "\"cookies_sent\": %llu, \"mac2_valid\": %llu, \"mac2_invalid\": %llu}, ",
		   (unsigned long long)s->flows_confirmed, (unsigned long long)s->flows_demoted,
		   t->unconfirmed, t->unconf_cap, cookie_mode_name((enum cookie_mode)l->cfg.handshake_cookies), fwd_of(l)->cookies ? "true" : "false",
		   t->under_load ? "true" : "false",
		   (unsigned long long)t->load_episodes, (unsigned long long)s->cookies_sent,
		   (unsigned long long)s->mac2_valid, (unsigned long long)s->mac2_invalid);
	stats_json_types(c, "messages_in", s->msgs_in);
	ctl_printf(c, ", ");
	stats_json_types(c, "messages_out", s->msgs_out);
	ctl_printf(c, ", ");
	stats_json_drops(c, "drops_in", s->drops_in);
	ctl_printf(c, ", ");
	stats_json_drops(c, "drops_out", s->drops_out);
	ctl_printf(c, ", \"repins\": {");
	for (int r = 0; r < REPIN__COUNT; r++)
		ctl_printf(c, "%s\"%s\": %llu", r ? ", " : "", stats_repin_name((enum repin)r),
			   (unsigned long long)s->repins[r]);
	ctl_printf(c, "}, ");
	if (t->has_agent) {
		const struct agent_stats *as = &t->agent;
		ctl_printf(c, "\"agent\": {\"rehandshakes_requested\": %llu, \"accepted\": %llu, "
			      "\"completed\": %llu, \"failed\": %llu, \"timeouts\": %llu, "
			      "\"bad_replies\": %llu, \"recovery_ms_sum\": %llu}, ",
			   (unsigned long long)as->requested, (unsigned long long)as->requested_ok,
			   (unsigned long long)as->completed, (unsigned long long)as->failed,
			   (unsigned long long)as->timeouts, (unsigned long long)as->bad_replies,
			   (unsigned long long)as->recovery_ms_sum);
	}
	ctl_printf(c, "\"workers_stalled\": [");
	for (unsigned i = 0, n = 0; i < l->n_workers; i++)
		if (t->worker_stalled[i])
			ctl_printf(c, "%s%u", n++ ? ", " : "", i);
	ctl_printf(c, "], \"backends\": {");
	for (unsigned i = 0, n = 0; i < l->pool.n; i++) {
		const struct backend *b = &l->pool.be[i];
		if (!b->in_use)
			continue;
		ctl_printf(c, "%s", n++ ? ", " : "");
		ctl_json_str(c, b->name);
		ctl_printf(c, ": {\"packets_in\": %llu, \"bytes_in\": %llu, \"packets_out\": %llu, "
			      "\"bytes_out\": %llu, \"flows\": %u, \"flows_new\": %llu, "
			      "\"repins_in\": %llu, \"repins_out\": %llu, \"icmp_unreachable\": %llu, "
			      "\"initiations_unanswered\": %llu, \"peers_known\": %u, ",
			   (unsigned long long)t->be[i].pkts_in, (unsigned long long)t->be[i].bytes_in,
			   (unsigned long long)t->be[i].pkts_out, (unsigned long long)t->be[i].bytes_out,
			   t->be_flows[i], (unsigned long long)t->be[i].flows_new,
			   (unsigned long long)t->be[i].repins_in, (unsigned long long)t->be[i].repins_out,
			   (unsigned long long)t->be[i].icmp_unreach,
			   (unsigned long long)t->be[i].init_unanswered, t->be_peers[i]);
		stats_json_types(c, "messages_in", t->be[i].msgs_in);
		ctl_printf(c, ", ");
		stats_json_types(c, "messages_out", t->be[i].msgs_out);
		ctl_printf(c, "}");
	}
	ctl_printf(c, "}}\n");
}

static void cmd_show_stats(struct loop *l, struct ctl_client *c, const struct ctl_req *r)
{
	const struct totals *t;
	const struct wglb_stats *s;
	struct fwd_fast_events fe;

	if (r->json) {
		cmd_show_stats_json(l, c);
		return;
	}
	t = totals_collect(l, 0);
	s = &t->st;
	ctl_printf(c, "%-26s %14s %14s\n", "", "in (client)", "out (backend)");
	ctl_printf(c, "%-26s %14llu %14llu\n", "packets received", (unsigned long long)s->pkts_in,
		   (unsigned long long)s->pkts_out);
	ctl_printf(c, "%-26s %14llu %14llu\n", "bytes received", (unsigned long long)s->bytes_in,
		   (unsigned long long)s->bytes_out);
	ctl_printf(c, "%-26s %14llu %14llu\n", "packets forwarded", (unsigned long long)s->fwd_in,
		   (unsigned long long)s->fwd_out);
	ctl_printf(c, "%-26s %14llu %14llu\n", "receives (GRO trains)",
		   (unsigned long long)s->recvs_in, (unsigned long long)s->recvs_out);
	ctl_printf(c, "%-26s %14llu %14llu\n", "send calls (GSO batches)",
		   (unsigned long long)s->sends_in, (unsigned long long)s->sends_out);
	ctl_printf(c, "%-26s %14llu %14llu\n", "fast path packets", (unsigned long long)s->fast_pkts_in,
		   (unsigned long long)s->fast_pkts_out);
	ctl_printf(c, "%-26s %14llu %14llu\n", "fast path bytes", (unsigned long long)s->fast_bytes_in,
		   (unsigned long long)s->fast_bytes_out);
	if (fwd_fast_events(&fe) == 0)
		ctl_printf(c, "fast path: passed up %llu no route, %llu no neighbour, %llu over the MTU, "
			      "%llu forwarding off; %llu rewrites abandoned; %llu flows refused by its "
			      "map\n",
			   (unsigned long long)fe.fib_failed, (unsigned long long)fe.no_neigh,
			   (unsigned long long)fe.frag_needed, (unsigned long long)fe.fwd_disabled,
			   (unsigned long long)fe.rewrite_failed, (unsigned long long)s->fast_refused);
	for (int ty = 1; ty <= 4; ty++)
		ctl_printf(c, "%-26s %14llu %14llu\n", wgmsg_type_name((enum wg_type)ty),
			   (unsigned long long)s->msgs_in[ty], (unsigned long long)s->msgs_out[ty]);
	for (int d = 0; d < DROP__COUNT; d++)
		ctl_printf(c, "drop %-21s %14llu %14llu\n", stats_drop_name((enum drop)d),
			   (unsigned long long)s->drops_in[d], (unsigned long long)s->drops_out[d]);
	ctl_printf(c, "flows: %u active, %llu new, %llu expired, %llu evicted, %llu roamed\n",
		   t->flows, (unsigned long long)s->flows_new, (unsigned long long)s->flows_expired,
		   (unsigned long long)s->flows_evicted, (unsigned long long)s->flows_roamed);
	ctl_printf(c, "client address: %s; %llu flows from the client's own address, %llu from the "
		      "balancer's instead\n",
		   l->cfg.client_address == CLIENT_PRESERVE ? "preserve" : "snat",
		   (unsigned long long)s->flows_preserved, (unsigned long long)s->preserve_fallback);
	ctl_printf(c, "confirmed: %llu flows proved receipt, %llu lost it (backend silent); "
		      "%u unconfirmed now (at most %u)\n",
		   (unsigned long long)s->flows_confirmed, (unsigned long long)s->flows_demoted,
		   t->unconfirmed, t->unconf_cap);
	ctl_printf(c, "edge: handshake_cookies %s%s, under load %s (%llu times); %llu cookies sent; "
		      "mac2 %llu valid, %llu invalid\n",
		   cookie_mode_name((enum cookie_mode)l->cfg.handshake_cookies), fwd_of(l)->cookies ? "" : " (inactive: no server_public_key)",
		   t->under_load ? "yes" : "no",
		   (unsigned long long)t->load_episodes, (unsigned long long)s->cookies_sent,
		   (unsigned long long)s->mac2_valid, (unsigned long long)s->mac2_invalid);
	ctl_printf(c, "re-pins:");
	for (int i = 0; i < REPIN__COUNT; i++)
		ctl_printf(c, " %s %llu", stats_repin_name((enum repin)i),
			   (unsigned long long)s->repins[i]);
	/* No blank line inside a reply: a blank line ends it (ctl.h). */
	ctl_printf(c, "\nfail-open events: %llu; receive paused for buffers: %llu; ring full: %llu; "
		      "cancels failed: %llu; flows lost moving: %llu\n",
		   (unsigned long long)s->failopen, (unsigned long long)s->enobufs,
		   (unsigned long long)s->ring_full, (unsigned long long)s->cancel_failed,
		   (unsigned long long)s->move_errors);
	if (t->stalled) {
		ctl_printf(c, "stalled workers (counters as last published):");
		for (unsigned i = 0; i < l->n_workers; i++)
			if (t->worker_stalled[i])
				ctl_printf(c, " %u", i);
		ctl_printf(c, "\n");
	}
	ctl_printf(c, "%-16s %10s %10s %12s %12s %8s %8s %8s %6s %6s\n", "BACKEND", "PKTS_IN",
		   "PKTS_OUT", "BYTES_IN", "BYTES_OUT", "FLOWS", "REPIN_IN", "REPIN_OUT", "ICMP",
		   "UNANS");
	for (unsigned i = 0; i < l->pool.n; i++) {
		const struct backend *b = &l->pool.be[i];
		if (!b->in_use)
			continue;
		ctl_printf(c, "%-16s %10llu %10llu %12llu %12llu %8u %8llu %8llu %6llu %6llu\n",
			   b->name, (unsigned long long)t->be[i].pkts_in,
			   (unsigned long long)t->be[i].pkts_out, (unsigned long long)t->be[i].bytes_in,
			   (unsigned long long)t->be[i].bytes_out, t->be_flows[i],
			   (unsigned long long)t->be[i].repins_in, (unsigned long long)t->be[i].repins_out,
			   (unsigned long long)t->be[i].icmp_unreach,
			   (unsigned long long)t->be[i].init_unanswered);
	}
}

static void cmd_show_backends(struct loop *l, struct ctl_client *c, const struct ctl_req *r)
{
	const struct totals *t = totals_collect(l, 0);
	char a[ADDR_STRLEN], when[32];
	unsigned n = 0;

	if (r->json)
		ctl_printf(c, "{\"backends\": [");
	else
		ctl_printf(c, "%-16s %-24s %-9s %-8s %-8s %7s %6s  %s\n", "NAME", "ADDRESS",
			   "STATE", "ADMIN", "HEALTH", "FLOWS", "WEIGHT", "LAST CHECK");
	for (unsigned i = 0; i < l->pool.n; i++) {
		const struct backend *b = &l->pool.be[i];
		const struct probe_result *pr = probe_last(l, i);
		if (!b->in_use || b->removing)
			continue;
		addr_fmt(&b->addr.u, a, sizeof(a));
		if (pr && pr->when_ms)
			rfc3339(pr->when_ms, when, sizeof(when));
		if (r->json) {
			ctl_printf(c, "%s{\"name\": ", n++ ? ", " : "");
			ctl_json_str(c, b->name);
			ctl_printf(c, ", \"address\": \"%s\", \"state\": \"%s\", \"admin\": \"%s\", "
				      "\"health\": \"%s\", \"flows\": %u, \"weight\": %u, "
				      "\"last_check\": ",
				   a, pool_state_name(b), pool_admin_name((enum be_admin)b->admin),
				   pool_health_name((enum be_health)b->health), t->be_flows[i], b->weight);
			if (pr && pr->when_ms)
				ctl_printf(c, "{\"time\": \"%s\", \"result\": \"%s\", \"status\": %d, "
					      "\"latency_ms\": %u}}",
					   when, pr->reason, pr->status, pr->latency_ms);
			else
				ctl_printf(c, "null}");
		} else {
			ctl_printf(c, "%-16s %-24s %-9s %-8s %-8s %7u %6u  ", b->name, a,
				   pool_state_name(b), pool_admin_name((enum be_admin)b->admin),
				   pool_health_name((enum be_health)b->health), t->be_flows[i], b->weight);
			if (pr && pr->when_ms)
				ctl_printf(c, "%s %s %d %ums\n", when, pr->reason, pr->status,
					   pr->latency_ms);
			else
				ctl_printf(c, "-\n");
		}
	}
	if (r->json)
		ctl_printf(c, "]}\n");
}

static void flow_line(struct loop *l, struct ctl_client *c, const struct flow *f, bool json,
		      bool first)
{
	union wglb_sa sa;
	char a[ADDR_STRLEN], peer[48] = "null";
	uint32_t now = loop_now_s(l);
	const char *be = l->pool.be[f->backend].name;
	uint8_t pub[32];

	flow_client_sa(&f->key, &sa);
	addr_fmt(&sa, a, sizeof(a));
	if (json && agent_flow_peer(l, f, pub)) { /* who its backend says is behind it */
		peer[0] = '"';
		sodium_bin2base64(peer + 1, sizeof(peer) - 2, pub, 32, sodium_base64_VARIANT_ORIGINAL);
		strcat(peer, "\"");
	}
	if (json)
		ctl_printf(c, "%s{\"client\": \"%s\", \"backend\": \"%s\", \"upstream_port\": %u, "
			      "\"preserved\": %s, \"peer\": %s, "
			      "\"age_s\": %u, \"idle_s\": %u, \"confirmed\": %s, "
			      "\"server_initiated\": %s, \"packets_in\": %llu, "
			      "\"packets_out\": %llu, \"bytes_in\": %llu, \"bytes_out\": %llu}",
			   first ? "" : ", ", a, be, f->up_port,
			   f->flags & FLOW_F_PRESERVED ? "true" : "false", peer, now - f->created,
			   now - f->last_rx, f->flags & FLOW_F_CONFIRMED ? "true" : "false",
			   f->flags & FLOW_F_SRV_INIT ? "true" : "false",
			   (unsigned long long)f->pkts_in, (unsigned long long)f->pkts_out,
			   (unsigned long long)f->bytes_in, (unsigned long long)f->bytes_out);
	else
		ctl_printf(c, "%-46s %-16s %6u %6u %6u %-9s %10llu %10llu\n", a, be, f->up_port,
			   now - f->created, now - f->last_rx,
			   f->flags & FLOW_F_CONFIRMED ? "yes" : "no",
			   (unsigned long long)f->pkts_in, (unsigned long long)f->pkts_out);
}

/* One chunk of a flow listing, on the worker whose table it reads. */
struct chunk {
	struct ctl_client *c;
	unsigned lines, slots;
	bool end; /* that worker's table is done */
};

static void stream_chunk(struct loop *w, void *arg)
{
	struct chunk *ch = arg;
	struct ctl_stream *s = &ch->c->stream;

	while (ch->lines && ch->slots && s->cursor < fwd_of(w)->ft.cap && s->remaining) {
		struct flow *f = &fwd_of(w)->ft.flows[s->cursor++];
		ch->slots--;
		if (!(f->flags & FLOW_F_USED) || (s->backend >= 0 && f->backend != s->backend))
			continue;
		fwd_fast_fold(w, f); /* what the kernel forwarded for it, fresh */
		flow_line(w, ch->c, f, s->json, s->first);
		s->first = false;
		s->remaining--;
		ch->lines--;
	}
	ch->end = s->cursor >= fwd_of(w)->ft.cap;
}

static void stream_more(struct loop *l, struct ctl_client *c)
{
	struct ctl_stream *s = &c->stream;
	/* Per chunk: at most 256 lines or 8192 slots looked at, so the loop
	 * goes on forwarding between chunks of a 65536-flow dump. */
	struct chunk ch = {.c = c, .lines = 256, .slots = 8192};

	while (ch.lines && ch.slots && s->worker < l->n_workers && s->remaining) {
		ch.end = false;
		if (workers_call(l, s->worker, stream_chunk, &ch) < 0) {
			/* A stalled worker: its flows cannot be read; say so in
			 * the listing's place and go on with the next worker. */
			if (!s->json)
				ctl_printf(c, "(worker %u stalled: its flows are not listed)\n",
					   s->worker);
			ctl_of(l)->errors++;
			s->stalled |= 1ull << s->worker;
			ch.end = true;
		}
		if (ch.end) {
			s->worker++;
			s->cursor = 0;
		}
	}
	if (s->worker >= l->n_workers || !s->remaining) {
		s->active = false;
		if (s->json) {
			ctl_printf(c, "], \"workers_stalled\": [");
			for (unsigned i = 0, n = 0; i < l->n_workers; i++)
				if (s->stalled >> i & 1)
					ctl_printf(c, "%s%u", n++ ? ", " : "", i);
		}
		ctl_printf(c, "%s\n", s->json ? "]}\n" : "");
	}
}

static void cmd_show_flows(struct loop *l, struct ctl_client *c, const struct ctl_req *r)
{
	struct ctl_stream *s = &c->stream;
	int backend = -1;
	uint32_t limit = UINT32_MAX;

	for (int i = 0; i < r->argc; i += 2) {
		if (i + 1 >= r->argc)
			goto usage;
		if (!strcmp(r->argv[i], "backend")) {
			backend = find_backend(l, c, r, r->argv[i + 1]);
			if (backend < 0)
				return;
		} else if (!strcmp(r->argv[i], "limit")) {
			char *end;
			unsigned long v = strtoul(r->argv[i + 1], &end, 10);
			if (*end || !*r->argv[i + 1] || v == 0 || v > UINT32_MAX)
				goto usage;
			limit = (uint32_t)v;
		} else {
			goto usage;
		}
	}
	memset(s, 0, sizeof(*s));
	s->active = s->started = true;
	s->more = stream_more;
	s->json = r->json;
	s->first = true;
	s->backend = backend;
	s->remaining = limit;
	if (r->json)
		ctl_printf(c, "{\"flows\": [");
	else
		ctl_printf(c, "%-46s %-16s %6s %6s %6s %-9s %10s %10s\n", "CLIENT", "BACKEND",
			   "UPORT", "AGE", "IDLE", "CONFIRMED", "PKTS_IN", "PKTS_OUT");
	stream_more(l, c);
	return;
usage:
	ctl_of(l)->errors++;
	ctl_error(c, r->json, "usage: %s", r->cmd->usage);
}

static void set_admin(struct loop *l, struct ctl_client *c, const struct ctl_req *r,
		      enum be_admin a, const char *verb)
{
	int i = find_backend(l, c, r, r->argv[0]);

	if (i < 0)
		return;
	pool_set_admin(&l->pool, (unsigned)i, a);
	log_info("backend %s: %s by the operator", l->pool.be[i].name, verb);
	ok(c, r, verb, l->pool.be[i].name);
}

static void cmd_drain(struct loop *l, struct ctl_client *c, const struct ctl_req *r)
{
	int i;

	if (r->argc == 2 && strcmp(r->argv[1], "now")) {
		ctl_of(l)->errors++;
		ctl_error(c, r->json, "usage: %s", r->cmd->usage);
		return;
	}
	if (r->argc == 1) {
		set_admin(l, c, r, ADMIN_DRAINING, "drained");
		return;
	}
	/* "now": every flow moves at the end of this batch; with agents each
	 * new backend initiates. */
	i = find_backend(l, c, r, r->argv[0]);
	if (i < 0)
		return;
	pool_drain_now(&l->pool, (unsigned)i);
	log_info("backend %s: drained now by the operator", l->pool.be[i].name);
	ok(c, r, "drained", l->pool.be[i].name);
}

static void cmd_enable(struct loop *l, struct ctl_client *c, const struct ctl_req *r)
{
	set_admin(l, c, r, ADMIN_ENABLED, "enabled");
}

static void cmd_disable(struct loop *l, struct ctl_client *c, const struct ctl_req *r)
{
	set_admin(l, c, r, ADMIN_DISABLED, "disabled");
}

static void cmd_add(struct loop *l, struct ctl_client *c, const struct ctl_req *r)
{
	struct backend_conf bc = {.weight = 1};
	int i;

	if (!config_name_valid(r->argv[0])) {
		ctl_of(l)->errors++;
		ctl_error(c, r->json, "bad name '%s': 1-%d of A-Z a-z 0-9 . _ -", r->argv[0],
			  BACKEND_NAME_MAX - 1);
		return;
	}
	strcpy(bc.name, r->argv[0]);
	if (addr_parse(r->argv[1], &bc.addr) < 0) {
		ctl_of(l)->errors++;
		ctl_error(c, r->json, "bad address '%s': expected IP:PORT or [IPv6]:PORT",
			  r->argv[1]);
		return;
	}
	if (r->argc == 4) {
		char *end;
		unsigned long w = strtoul(r->argv[3], &end, 10);
		if (strcmp(r->argv[2], "weight") || *end || w < 1 || w > WEIGHT_MAX) {
			ctl_of(l)->errors++;
			ctl_error(c, r->json, "usage: %s (weight 1-%d)", r->cmd->usage,
				  WEIGHT_MAX);
			return;
		}
		bc.weight = (uint16_t)w;
	} else if (r->argc != 2) {
		ctl_of(l)->errors++;
		ctl_error(c, r->json, "usage: %s", r->cmd->usage);
		return;
	}
	i = pool_add(&l->pool, &bc);
	if (i < 0) {
		ctl_of(l)->errors++;
		ctl_error(c, r->json, "cannot add '%s': %s", bc.name,
			  i == -EEXIST ? "a backend has that name" : "no room for more backends");
		return;
	}
	log_info("backend %s added by the operator", bc.name);
	ok(c, r, "added", bc.name);
}

static void cmd_del(struct loop *l, struct ctl_client *c, const struct ctl_req *r)
{
	bool force = r->argc == 2 && !strcmp(r->argv[1], "force");
	const struct totals *t;
	int i;

	if (r->argc == 2 && !force) {
		ctl_of(l)->errors++;
		ctl_error(c, r->json, "usage: %s", r->cmd->usage);
		return;
	}
	i = find_backend(l, c, r, r->argv[0]);
	if (i < 0)
		return;
	t = totals_collect(l, 0);
	if (t->stalled && !force) {
		/* A stalled worker's flows are counted as last published. */
		ctl_of(l)->errors++;
		ctl_error(c, r->json, "%u worker(s) stalled: their flows on backend %s are not "
			  "known; add 'force' to remove it anyway", t->stalled, r->argv[0]);
		return;
	}
	if (t->be_flows[i] && !force) {
		ctl_of(l)->errors++;
		ctl_error(c, r->json,
			  "backend %s still has %u flows: drain it first, or add 'force' to "
			  "move them now",
			  r->argv[0], t->be_flows[i]);
		return;
	}
	/* Its flows move, and its slot is freed, at the end of this batch. */
	pool_remove(&l->pool, (unsigned)i);
	log_info("backend %s deleted by the operator", l->pool.be[i].name);
	ok(c, r, "deleted", l->pool.be[i].name);
}

static void cmd_reload(struct loop *l, struct ctl_client *c, const struct ctl_req *r)
{
	l->reload = true;
	if (r->json)
		ctl_printf(c, "{\"ok\": true, \"action\": \"reload\"}\n");
	else
		ctl_printf(c, "ok: reload scheduled (check the log for config errors)\n");
}

static const struct ctl_cmd cmds[] = {
	{{"show", "info"}, "show info", cmd_show_info, 0, 0, 0},
	{{"show", "stats"}, "show stats", cmd_show_stats, 0, 0, 0},
	{{"show", "backends"}, "show backends", cmd_show_backends, 0, 0, 0},
	{{"show", "flows"}, "show flows [backend NAME] [limit N]", cmd_show_flows, CMD_F_STREAM, 0, 4},
	{{"backend", "drain"}, "backend drain NAME [now]", cmd_drain, CMD_F_ADMIN, 1, 2},
	{{"backend", "enable"}, "backend enable NAME", cmd_enable, CMD_F_ADMIN, 1, 1},
	{{"backend", "disable"}, "backend disable NAME", cmd_disable, CMD_F_ADMIN, 1, 1},
	{{"backend", "add"}, "backend add NAME ADDR [weight W]", cmd_add, CMD_F_ADMIN, 2, 4},
	{{"backend", "del"}, "backend del NAME [force]", cmd_del, CMD_F_ADMIN, 1, 2},
	{{"reload", NULL}, "reload", cmd_reload, CMD_F_ADMIN, 0, 0},
};

static int cmds_open(struct loop *l)
{
	return ctl_register(l, cmds, sizeof(cmds) / sizeof(cmds[0]));
}

const struct loop_part ctl_cmds_part = {.name = "control commands", .open = cmds_open};
