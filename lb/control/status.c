// SPDX-License-Identifier: MIT
/*
 * The status page on metrics_listen, read-only: GET / (one small HTML page,
 * no script, no external asset, refreshing itself), GET /status.json (the
 * same figures for scripts) and GET /ready (200 while some backend takes
 * new flows, else 503: for a health check of wglb itself). Nothing here
 * changes state; the first two are under the scrapers' limit (ctl.c),
 * /ready, a few bytes from the pool, is not.
 */
#include "wglb/addr.h"
#include "wglb/cookie.h"
#include "wglb/ctl.h"
#include "wglb/fwd.h"
#include "wglb/loop.h"
#include "wglb/probe.h"
#include "wglb/status.h"
#include "wglb/totals.h"
#include "wglb/version.h"
#include "wglb/wgmsg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define STATUS_REFRESH_S 2

/* One backend's row, from the pool, the summed counters and the prober. */
struct row {
	const struct backend *b;
	const struct backend_stats *s;
	const struct probe_result *pr;
	uint32_t flows, peers;
	char addr[ADDR_STRLEN], since[32], probes[17];
	uint64_t since_s; /* seconds in this state; 0 when unknown */
};

static void row_of(struct loop *l, const struct totals *t, unsigned i, struct row *r)
{
	uint64_t now = (uint64_t)time(NULL) * 1000;
	time_t when;
	struct tm tm;
	unsigned n;

	r->b = &l->pool.be[i];
	r->s = &t->be[i];
	r->pr = probe_last(l, i);
	r->flows = t->be_flows[i];
	r->peers = t->has_agent ? t->be_peers[i] : 0;
	addr_fmt(&r->b->addr.u, r->addr, sizeof(r->addr));
	r->since[0] = '\0';
	r->since_s = 0;
	if (r->b->health_since_ms) {
		when = (time_t)(r->b->health_since_ms / 1000);
		if (gmtime_r(&when, &tm))
			strftime(r->since, sizeof(r->since), "%Y-%m-%dT%H:%M:%SZ", &tm);
		r->since_s = now > r->b->health_since_ms ? (now - r->b->health_since_ms) / 1000 : 0;
	}
	/* Oldest first, as a timeline reads: '+' passed, '-' failed. */
	n = r->pr ? r->pr->history_n : 0;
	for (unsigned k = 0; k < n; k++)
		r->probes[k] = (r->pr->history >> (n - 1 - k)) & 1 ? '+' : '-';
	r->probes[n] = '\0';
}

#define EACH_ROW(l, t, r)                                                                        \
	for (unsigned _i = 0; _i < (l)->pool.n; _i++)                                            \
		if ((l)->pool.be[_i].in_use && !(l)->pool.be[_i].removing && (row_of(l, t, _i, &r), 1))

static bool ready(const struct loop *l)
{
	for (unsigned i = 0; i < l->pool.n; i++)
		if (l->pool.be[i].in_use && l->pool.be[i].in_table && !l->pool.failopen)
			return true;
	return false;
}

static uint64_t drops_total(const uint64_t *d)
{
	uint64_t n = 0;

	for (int r = 0; r < DROP__COUNT; r++)
		n += d[r];
	return n;
}

static int page_json(struct loop *l, struct ctl_client *c)
{
	const struct totals *t = totals_collect(l, 0); /* exact: pages are few (the scrapers' limit) */
	const struct wglb_stats *s = &t->st;
	static const char *const dirs[2] = {"in", "out"};
	const uint64_t *drops[2] = {s->drops_in, s->drops_out};
	struct row r;
	bool first = true;

	ctl_printf(c, "{\"version\": \"%s\", \"uptime_s\": %llu, \"workers\": %u, \"ready\": %s, "
		      "\"failopen\": %s, \"edge\": {\"handshake_cookies\": \"%s\", \"cookies_active\": %s, "
		      "\"under_load\": %s}, ",
		   WGLB_VERSION, (unsigned long long)((l->now_ms - l->start_ms) / 1000), l->n_workers,
		   ready(l) ? "true" : "false", l->pool.failopen ? "true" : "false",
		   cookie_mode_name((enum cookie_mode)l->cfg.handshake_cookies),
		   fwd_of(l)->cookies ? "true" : "false", t->under_load ? "true" : "false");
	ctl_printf(c, "\"flows\": {\"total\": %u, \"confirmed\": %u, \"unconfirmed\": %u, \"max\": %u}, ",
		   t->flows, t->flows - t->unconfirmed, t->unconfirmed, t->max_flows);
	ctl_printf(c, "\"backends\": [");
	EACH_ROW(l, t, r)
	{
		ctl_printf(c, "%s{\"name\": ", first ? "" : ", ");
		ctl_json_str(c, r.b->name);
		ctl_printf(c, ", \"address\": \"%s\", \"state\": \"%s\", \"since\": \"%s\", "
			      "\"since_s\": %llu, \"probes\": \"%s\", \"last_check\": ",
			   r.addr, pool_state_name(r.b), r.since, (unsigned long long)r.since_s, r.probes);
		if (r.pr && r.pr->when_ms) {
			ctl_printf(c, "{\"status\": %d, \"reason\": ", r.pr->status);
			ctl_json_str(c, r.pr->reason ? r.pr->reason : "");
			ctl_printf(c, ", \"latency_ms\": %u}", r.pr->latency_ms);
		} else {
			ctl_printf(c, "null");
		}
		ctl_printf(c, ", \"flows\": %u, \"packets_in\": %llu, \"packets_out\": %llu, "
			      "\"bytes_in\": %llu, \"bytes_out\": %llu, \"repins_in\": %llu, "
			      "\"repins_out\": %llu, \"agent_peers\": ",
			   r.flows, (unsigned long long)r.s->pkts_in, (unsigned long long)r.s->pkts_out,
			   (unsigned long long)r.s->bytes_in, (unsigned long long)r.s->bytes_out,
			   (unsigned long long)r.s->repins_in, (unsigned long long)r.s->repins_out);
		if (t->has_agent)
			ctl_printf(c, "%u}", r.peers);
		else
			ctl_printf(c, "null}");
		first = false;
	}
	ctl_printf(c, "], \"drops\": {");
	for (int d = 0; d < 2; d++) {
		first = true;
		ctl_printf(c, "%s\"%s\": {", d ? ", " : "", dirs[d]);
		for (int k = 0; k < DROP__COUNT; k++) {
			if (!drops[d][k])
				continue;
			ctl_printf(c, "%s\"%s\": %llu", first ? "" : ", ", stats_drop_name((enum drop)k),
				   (unsigned long long)drops[d][k]);
			first = false;
		}
		ctl_printf(c, "}");
	}
	ctl_printf(c, "}, \"handshakes\": {\"initiations\": %llu, \"responses\": %llu, "
		      "\"server_initiations\": %llu, \"cookie_replies_sent\": %llu, "
		      "\"mac2_valid\": %llu, \"mac2_invalid\": %llu}}\n",
		   (unsigned long long)s->msgs_in[WG_T_INITIATION],
		   (unsigned long long)s->msgs_out[WG_T_RESPONSE],
		   (unsigned long long)s->msgs_out[WG_T_INITIATION], (unsigned long long)s->cookies_sent,
		   (unsigned long long)s->mac2_valid, (unsigned long long)s->mac2_invalid);
	return 200;
}

/* "3 s", "4 min", "2 h", "5 d": how long, as a person reads it. */
static const char *ago(uint64_t s, char *buf, size_t size)
{
	if (s < 120)
		snprintf(buf, size, "%llu s", (unsigned long long)s);
	else if (s < 7200)
		snprintf(buf, size, "%llu min", (unsigned long long)(s / 60));
	else if (s < 172800)
		snprintf(buf, size, "%llu h", (unsigned long long)(s / 3600));
	else
		snprintf(buf, size, "%llu d", (unsigned long long)(s / 86400));
	return buf;
}

static int page_html(struct loop *l, struct ctl_client *c)
{
	const struct totals *t = totals_collect(l, 0); /* exact: pages are few (the scrapers' limit) */
	const struct wglb_stats *s = &t->st;
	const uint64_t *drops[2] = {s->drops_in, s->drops_out};
	struct row r;
	char buf[32];

	ctl_printf(c,
		   "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		   "<meta http-equiv=\"refresh\" content=\"%d\">"
		   "<meta name=\"viewport\" content=\"width=device-width\"><title>wglb status</title>"
		   "<style>body{font:14px system-ui,sans-serif;margin:1em 2em;color:#222}"
		   "table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{padding:.25em .7em;"
		   "border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}th{background:#f3f3f3}"
		   "td:first-child,th:first-child{text-align:left}.up{background:#d8f5d8}"
		   ".down{background:#f9d0d0}.draining,.checking{background:#fcefc7}"
		   ".disabled{background:#e4e4e4}.mono{font-family:monospace;text-align:left}"
		   "</style></head><body>\n",
		   STATUS_REFRESH_S);
	ctl_printf(c, "<h1>wglb %s</h1>\n<p>up %s, %u worker%s; %s; handshake cookies %s%s%s. "
		      "Refreshes every %d s.</p>\n",
		   WGLB_VERSION, ago((l->now_ms - l->start_ms) / 1000, buf, sizeof(buf)), l->n_workers,
		   l->n_workers == 1 ? "" : "s",
		   l->pool.failopen ? "<strong>no backend up: failing open to all</strong>"
		   : ready(l)	    ? "ready"
				    : "<strong>not ready</strong>",
		   cookie_mode_name((enum cookie_mode)l->cfg.handshake_cookies),
		   fwd_of(l)->cookies ? "" : " (inactive: no server_public_key)",
		   t->under_load ? ", <strong>under load</strong>" : "", STATUS_REFRESH_S);
	ctl_printf(c, "<h2>Backends</h2>\n<table><tr><th>backend</th><th>address</th><th>state</th>"
		      "<th>since</th><th>last probes (oldest first)</th><th>last check</th><th>flows</th>"
		      "<th>packets in / out</th><th>bytes in / out</th><th>flows moved in / out</th>"
		      "<th>agent peers</th></tr>\n");
	EACH_ROW(l, t, r)
	{
		ctl_printf(c, "<tr class=\"%s\"><td>%s</td><td>%s</td><td>%s</td><td title=\"%s\">%s%s</td>"
			      "<td class=\"mono\">%s</td><td>",
			   pool_state_name(r.b), r.b->name, r.addr, pool_state_name(r.b), r.since,
			   r.since[0] ? ago(r.since_s, buf, sizeof(buf)) : "", r.since[0] ? " ago" : "",
			   r.probes);
		if (r.pr && r.pr->when_ms)
			ctl_printf(c, "%s %d, %u ms", r.pr->reason ? r.pr->reason : "", r.pr->status,
				   r.pr->latency_ms);
		ctl_printf(c, "</td><td>%u</td><td>%llu / %llu</td><td>%llu / %llu</td>"
			      "<td>%llu / %llu</td><td>",
			   r.flows, (unsigned long long)r.s->pkts_in, (unsigned long long)r.s->pkts_out,
			   (unsigned long long)r.s->bytes_in, (unsigned long long)r.s->bytes_out,
			   (unsigned long long)r.s->repins_in, (unsigned long long)r.s->repins_out);
		if (t->has_agent)
			ctl_printf(c, "%u", r.peers);
		else
			ctl_printf(c, "no agents");
		ctl_printf(c, "</td></tr>\n");
	}
	ctl_printf(c, "</table>\n<h2>Flows</h2>\n<table><tr><th>confirmed</th><th>unconfirmed</th>"
		      "<th>in the table</th><th>capacity</th></tr><tr><td>%u</td><td>%u</td>"
		      "<td>%u</td><td>%u</td></tr></table>\n",
		   t->flows - t->unconfirmed, t->unconfirmed, t->flows, t->max_flows);
	ctl_printf(c, "<h2>Handshakes</h2>\n<table><tr><th>initiations from clients</th>"
		      "<th>responses from backends</th><th>initiations from backends</th>"
		      "<th>cookie replies sent</th><th>mac2 valid / invalid</th></tr><tr><td>%llu</td>"
		      "<td>%llu</td><td>%llu</td><td>%llu</td><td>%llu / %llu</td></tr></table>\n",
		   (unsigned long long)s->msgs_in[WG_T_INITIATION],
		   (unsigned long long)s->msgs_out[WG_T_RESPONSE],
		   (unsigned long long)s->msgs_out[WG_T_INITIATION], (unsigned long long)s->cookies_sent,
		   (unsigned long long)s->mac2_valid, (unsigned long long)s->mac2_invalid);
	ctl_printf(c, "<h2>Dropped datagrams</h2>\n<table><tr><th>reason</th><th>from clients</th>"
		      "<th>from backends</th></tr>\n");
	for (int k = 0; k < DROP__COUNT; k++)
		if (s->drops_in[k] || s->drops_out[k])
			ctl_printf(c, "<tr><td>%s</td><td>%llu</td><td>%llu</td></tr>\n",
				   stats_drop_name((enum drop)k), (unsigned long long)s->drops_in[k],
				   (unsigned long long)s->drops_out[k]);
	ctl_printf(c, "<tr><th>all</th><th>%llu</th><th>%llu</th></tr></table>\n",
		   (unsigned long long)drops_total(drops[0]), (unsigned long long)drops_total(drops[1]));
	ctl_printf(c, "<p>The same as JSON: <a href=\"/status.json\">/status.json</a>; "
		      "for Prometheus: <a href=\"/metrics\">/metrics</a>; this page changes "
		      "nothing.</p>\n</body></html>\n");
	return 200;
}

static int page_ready(struct loop *l, struct ctl_client *c)
{
	if (ready(l)) {
		ctl_printf(c, "ready\n");
		return 200;
	}
	ctl_printf(c, "not ready: %s\n", l->pool.failopen ? "no backend is up (failing open)"
							  : "no backend takes new flows");
	return 503;
}

static int status_open(struct loop *l)
{
	if (!ctl_of(l))
		return 0;
	if (ctl_on_page(l, "/", "text/html; charset=utf-8", page_html, false) < 0 ||
	    ctl_on_page(l, "/status.json", "application/json", page_json, false) < 0 ||
	    ctl_on_page(l, "/ready", "text/plain", page_ready, true) < 0)
		return -ENOSPC;
	return 0;
}

const struct loop_part status_part = {.name = "status page", .open = status_open};
