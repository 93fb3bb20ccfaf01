// SPDX-License-Identifier: MIT
/* Prometheus text exposition (version 0.0.4) of every counter: names
 * wglb_*, _total for counters, units in names, labels for backend,
 * direction, type and reason. Checked by `promtool check metrics` in tests. */
#include "wglb/agent.h"
#include "wglb/ctl.h"
#include "wglb/totals.h"
#include "wglb/fwd.h"
#include "wglb/metrics.h"
#include "wglb/loop.h"
#include "wglb/version.h"
#include "wglb/wgmsg.h"

#include <string.h>

static const char *const dirs[2] = {"in", "out"};

static void head(struct ctl_client *c, const char *name, const char *type, const char *help)
{
	ctl_printf(c, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* fast_path = tc: what the kernel forwarded (also in the received and
 * forwarded totals), and what its program passed up or refused. */
static void fast_path(struct ctl_client *c, const struct wglb_stats *s)
{
	const uint64_t pk[2] = {s->fast_pkts_in, s->fast_pkts_out};
	const uint64_t by[2] = {s->fast_bytes_in, s->fast_bytes_out};
	struct fwd_fast_events ev;
	bool on = fwd_fast_events(&ev) == 0;
	const struct {
		const char *reason;
		uint64_t v;
	} up[] = {{"no_route", ev.fib_failed}, {"no_neighbour", ev.no_neigh},
		  {"over_mtu", ev.frag_needed}, {"forwarding_off", ev.fwd_disabled}};

	head(c, "wglb_fast_path", "gauge", "1 while the kernel fast path is attached (fast_path = tc).");
	ctl_printf(c, "wglb_fast_path %d\n", on);
	head(c, "wglb_fast_path_packets_total", "counter",
	     "Transport datagrams of confirmed flows forwarded by the kernel fast path.");
	for (int d = 0; d < 2; d++)
		ctl_printf(c, "wglb_fast_path_packets_total{direction=\"%s\"} %llu\n", dirs[d],
			   (unsigned long long)pk[d]);
	head(c, "wglb_fast_path_bytes_total", "counter", "Their UDP payload bytes.");
	for (int d = 0; d < 2; d++)
		ctl_printf(c, "wglb_fast_path_bytes_total{direction=\"%s\"} %llu\n", dirs[d],
			   (unsigned long long)by[d]);
	head(c, "wglb_fast_path_refused_total", "counter",
	     "Confirmed flows the fast path's map would not take (they use the sockets).");
	ctl_printf(c, "wglb_fast_path_refused_total %llu\n", (unsigned long long)s->fast_refused);
	head(c, "wglb_fast_path_passed_up_total", "counter",
	     "Datagrams the fast path would have forwarded but passed up to wglb, by reason.");
	for (size_t i = 0; i < sizeof(up) / sizeof(up[0]); i++)
		ctl_printf(c, "wglb_fast_path_passed_up_total{reason=\"%s\"} %llu\n", up[i].reason,
			   (unsigned long long)up[i].v);
	head(c, "wglb_fast_path_rewrite_failed_total", "counter",
	     "Datagrams the fast path dropped after a helper failed half way through a rewrite.");
	ctl_printf(c, "wglb_fast_path_rewrite_failed_total %llu\n", (unsigned long long)ev.rewrite_failed);
}

static void global(struct loop *l, const struct totals *t, struct ctl_client *c)
{
	const struct wglb_stats *s = &t->st;
	const uint64_t pk[2] = {s->pkts_in, s->pkts_out}, by[2] = {s->bytes_in, s->bytes_out};
	const uint64_t fw[2] = {s->fwd_in, s->fwd_out};
	const uint64_t *msgs[2] = {s->msgs_in, s->msgs_out}, *drops[2] = {s->drops_in, s->drops_out};

	head(c, "wglb_build_info", "gauge", "Version of the running wglb.");
	ctl_printf(c, "wglb_build_info{version=\"%s\"} 1\n", WGLB_VERSION);
	head(c, "wglb_uptime_seconds", "gauge", "Seconds since wglb started.");
	ctl_printf(c, "wglb_uptime_seconds %llu\n",
		   (unsigned long long)((l->now_ms - l->start_ms) / 1000));
	head(c, "wglb_flows", "gauge", "Flows in the flow table.");
	ctl_printf(c, "wglb_flows %u\n", t->flows);
	head(c, "wglb_flows_max", "gauge", "Capacity of the flow table (max_flows).");
	ctl_printf(c, "wglb_flows_max %u\n", t->max_flows);
	head(c, "wglb_failopen", "gauge", "1 while no backend is up and all non-disabled serve.");
	ctl_printf(c, "wglb_failopen %d\n", l->pool.failopen);
	head(c, "wglb_received_packets_total", "counter",
	     "Datagrams received; in = from clients, out = from backends.");
	for (int d = 0; d < 2; d++)
		ctl_printf(c, "wglb_received_packets_total{direction=\"%s\"} %llu\n", dirs[d],
			   (unsigned long long)pk[d]);
	head(c, "wglb_received_bytes_total", "counter", "UDP payload bytes received.");
	for (int d = 0; d < 2; d++)
		ctl_printf(c, "wglb_received_bytes_total{direction=\"%s\"} %llu\n", dirs[d],
			   (unsigned long long)by[d]);
	head(c, "wglb_forwarded_packets_total", "counter", "Datagrams sent on.");
	for (int d = 0; d < 2; d++)
		ctl_printf(c, "wglb_forwarded_packets_total{direction=\"%s\"} %llu\n", dirs[d],
			   (unsigned long long)fw[d]);
	head(c, "wglb_send_calls_total", "counter",
	     "Send operations carrying the forwarded datagrams (UDP GSO batches several).");
	ctl_printf(c, "wglb_send_calls_total{direction=\"in\"} %llu\n", (unsigned long long)s->sends_in);
	ctl_printf(c, "wglb_send_calls_total{direction=\"out\"} %llu\n", (unsigned long long)s->sends_out);
	head(c, "wglb_receive_calls_total", "counter",
	     "Receives carrying the received datagrams (UDP GRO coalesces several).");
	ctl_printf(c, "wglb_receive_calls_total{direction=\"in\"} %llu\n", (unsigned long long)s->recvs_in);
	ctl_printf(c, "wglb_receive_calls_total{direction=\"out\"} %llu\n",
		   (unsigned long long)s->recvs_out);
	head(c, "wglb_gso_split_total", "counter",
	     "Datagrams of a UDP GSO send the kernel refused, sent again one by one.");
	ctl_printf(c, "wglb_gso_split_total %llu\n", (unsigned long long)s->gso_split);
	head(c, "wglb_messages_total", "counter", "Well-formed WireGuard messages by type.");
	for (int d = 0; d < 2; d++)
		for (int ty = 1; ty <= 4; ty++)
			ctl_printf(c, "wglb_messages_total{direction=\"%s\",type=\"%s\"} %llu\n",
				   dirs[d], wgmsg_type_name((enum wg_type)ty),
				   (unsigned long long)msgs[d][ty]);
	head(c, "wglb_dropped_packets_total", "counter", "Datagrams dropped, by reason.");
	for (int d = 0; d < 2; d++)
		for (int r = 0; r < DROP__COUNT; r++)
			ctl_printf(c, "wglb_dropped_packets_total{direction=\"%s\",reason=\"%s\"} %llu\n",
				   dirs[d], stats_drop_name((enum drop)r),
				   (unsigned long long)drops[d][r]);
	head(c, "wglb_repins_total", "counter", "Flows moved to another backend, by reason.");
	for (int r = 0; r < REPIN__COUNT; r++)
		ctl_printf(c, "wglb_repins_total{reason=\"%s\"} %llu\n",
			   stats_repin_name((enum repin)r), (unsigned long long)s->repins[r]);
	head(c, "wglb_flows_created_total", "counter", "Flows created.");
	ctl_printf(c, "wglb_flows_created_total %llu\n", (unsigned long long)s->flows_new);
	head(c, "wglb_flows_expired_total", "counter", "Flows closed after flow_idle_timeout.");
	ctl_printf(c, "wglb_flows_expired_total %llu\n", (unsigned long long)s->flows_expired);
	head(c, "wglb_flows_evicted_total", "counter",
	     "Unconfirmed flows evicted to make room in a full table.");
	ctl_printf(c, "wglb_flows_evicted_total %llu\n", (unsigned long long)s->flows_evicted);
	head(c, "wglb_flows_roamed_total", "counter",
	     "New flows sent to their session's backend by its index (a client's address changed).");
	ctl_printf(c, "wglb_flows_roamed_total %llu\n", (unsigned long long)s->flows_roamed);
	head(c, "wglb_flows_preserved_total", "counter",
	     "Flows sent to their backend from the client's own address (client_address = preserve).");
	ctl_printf(c, "wglb_flows_preserved_total %llu\n", (unsigned long long)s->flows_preserved);
	head(c, "wglb_preserve_fallback_total", "counter",
	     "Flows that could not keep the client's address and went from the balancer's instead.");
	ctl_printf(c, "wglb_preserve_fallback_total %llu\n", (unsigned long long)s->preserve_fallback);
	head(c, "wglb_flows_confirmed_total", "counter",
	     "Flows whose client proved it receives (named the backend's session index).");
	ctl_printf(c, "wglb_flows_confirmed_total %llu\n", (unsigned long long)s->flows_confirmed);
	head(c, "wglb_flows_demoted_total", "counter",
	     "Confirmed flows that lost their confirmation: their backend sent nothing for backend_silence seconds.");
	ctl_printf(c, "wglb_flows_demoted_total %llu\n", (unsigned long long)s->flows_demoted);
	head(c, "wglb_flows_unconfirmed", "gauge", "Flows open for sources not yet proven.");
	ctl_printf(c, "wglb_flows_unconfirmed %u\n", t->unconfirmed);
	head(c, "wglb_cookie_replies_total", "counter",
	     "Cookie replies wglb sent to handshakes without a valid mac2.");
	ctl_printf(c, "wglb_cookie_replies_total %llu\n", (unsigned long long)s->cookies_sent);
	head(c, "wglb_mac2_total", "counter", "Handshakes carrying a mac2, by result.");
	ctl_printf(c, "wglb_mac2_total{result=\"valid\"} %llu\n", (unsigned long long)s->mac2_valid);
	ctl_printf(c, "wglb_mac2_total{result=\"invalid\"} %llu\n",
		   (unsigned long long)s->mac2_invalid);
	head(c, "wglb_under_load", "gauge", "1 while handshakes must prove their source (cookies).");
	ctl_printf(c, "wglb_under_load %d\n", t->under_load); /* any worker's, as show stats */
	head(c, "wglb_failopen_total", "counter", "Times wglb entered fail-open.");
	ctl_printf(c, "wglb_failopen_total %llu\n", (unsigned long long)s->failopen);
	head(c, "wglb_receive_buffer_exhausted_total", "counter",
	     "Receives paused because every buffer was in flight.");
	ctl_printf(c, "wglb_receive_buffer_exhausted_total %llu\n", (unsigned long long)s->enobufs);
	head(c, "wglb_ring_full_total", "counter",
	     "Operations that found no io_uring submission entry (retried or counted where they failed).");
	ctl_printf(c, "wglb_ring_full_total %llu\n", (unsigned long long)s->ring_full);
	head(c, "wglb_cancel_failed_total", "counter",
	     "Upstream receives that could not be cancelled (their socket lingers).");
	ctl_printf(c, "wglb_cancel_failed_total %llu\n", (unsigned long long)s->cancel_failed);
	head(c, "wglb_move_errors_total", "counter",
	     "Flows closed because their socket could not follow their backend's new address.");
	ctl_printf(c, "wglb_move_errors_total %llu\n", (unsigned long long)s->move_errors);
	fast_path(c, s);
	head(c, "wglb_maglev_rebuilds_total", "counter", "Maglev table rebuilds.");
	ctl_printf(c, "wglb_maglev_rebuilds_total %llu\n", (unsigned long long)s->rebuilds);
	head(c, "wglb_maglev_rebuild_seconds", "gauge", "Duration of the last Maglev rebuild.");
	ctl_printf(c, "wglb_maglev_rebuild_seconds %.6f\n", (double)s->last_rebuild_us / 1e6);
	head(c, "wglb_control_commands_total", "counter", "Control socket commands run.");
	ctl_printf(c, "wglb_control_commands_total %llu\n", (unsigned long long)ctl_of(l)->commands);
	head(c, "wglb_control_errors_total", "counter", "Control socket commands refused.");
	ctl_printf(c, "wglb_control_errors_total %llu\n", (unsigned long long)ctl_of(l)->errors);
	head(c, "wglb_metrics_scrapes_refused_total", "counter",
	     "Scrapes answered 429: more than 10 a second (burst 20) from all scrapers.");
	ctl_printf(c, "wglb_metrics_scrapes_refused_total %llu\n",
		   (unsigned long long)ctl_of(l)->scrapes_refused);
}

/* A per-backend counter with an in and an out direction. */
static void pair(struct ctl_client *c, const char *name, const char *be, uint64_t in, uint64_t out)
{
	ctl_printf(c, "%s{backend=\"%s\",direction=\"in\"} %llu\n", name, be, (unsigned long long)in);
	ctl_printf(c, "%s{backend=\"%s\",direction=\"out\"} %llu\n", name, be, (unsigned long long)out);
}

#define EACH_BACKEND(b)                                                                      \
	for (unsigned _i = 0; _i < l->pool.n; _i++)                                          \
		for (const struct backend *b = &l->pool.be[_i]; b && b->in_use && !b->removing; \
		     b = NULL)

static void per_backend(struct loop *l, const struct totals *t, struct ctl_client *c)
{
	static const char *const states[] = {"up", "down", "checking", "draining", "disabled"};

	head(c, "wglb_backend_state", "gauge", "1 for the backend's effective state.");
	EACH_BACKEND(b)
	{
		for (size_t s = 0; s < sizeof(states) / sizeof(states[0]); s++)
			ctl_printf(c, "wglb_backend_state{backend=\"%s\",state=\"%s\"} %d\n",
				   b->name, states[s], !strcmp(states[s], pool_state_name(b)));
	}
	head(c, "wglb_backend_in_table", "gauge", "1 when the backend takes new flows.");
	EACH_BACKEND(b)
	ctl_printf(c, "wglb_backend_in_table{backend=\"%s\"} %d\n", b->name, b->in_table);
	head(c, "wglb_backend_weight", "gauge", "Configured Maglev weight.");
	EACH_BACKEND(b)
	ctl_printf(c, "wglb_backend_weight{backend=\"%s\"} %u\n", b->name, b->weight);
	head(c, "wglb_backend_flows", "gauge", "Flows pinned to the backend.");
	EACH_BACKEND(b)
	ctl_printf(c, "wglb_backend_flows{backend=\"%s\"} %u\n", b->name, t->be_flows[_i]);
	head(c, "wglb_backend_packets_total", "counter",
	     "Datagrams to (in) and from (out) the backend.");
	EACH_BACKEND(b)
	pair(c, "wglb_backend_packets_total", b->name, t->be[_i].pkts_in, t->be[_i].pkts_out);
	head(c, "wglb_backend_bytes_total", "counter", "UDP payload bytes to and from the backend.");
	EACH_BACKEND(b)
	pair(c, "wglb_backend_bytes_total", b->name, t->be[_i].bytes_in, t->be[_i].bytes_out);
	head(c, "wglb_backend_flows_created_total", "counter", "Flows created on the backend.");
	EACH_BACKEND(b)
	ctl_printf(c, "wglb_backend_flows_created_total{backend=\"%s\"} %llu\n", b->name,
		   (unsigned long long)t->be[_i].flows_new);
	head(c, "wglb_backend_repins_total", "counter",
	     "Flows moved onto (in) or off (out) the backend.");
	EACH_BACKEND(b)
	pair(c, "wglb_backend_repins_total", b->name, t->be[_i].repins_in, t->be[_i].repins_out);
	head(c, "wglb_backend_icmp_unreachable_total", "counter",
	     "ICMP port unreachable seen on upstream sockets (a hint only).");
	EACH_BACKEND(b)
	ctl_printf(c, "wglb_backend_icmp_unreachable_total{backend=\"%s\"} %llu\n", b->name,
		   (unsigned long long)t->be[_i].icmp_unreach);
	head(c, "wglb_backend_unanswered_initiations_total", "counter",
	     "Handshake initiations with no response within 5 s (a hint only).");
	EACH_BACKEND(b)
	ctl_printf(c, "wglb_backend_unanswered_initiations_total{backend=\"%s\"} %llu\n",
		   b->name, (unsigned long long)t->be[_i].init_unanswered);
	head(c, "wglb_backend_failed_probes_total", "counter", "Health probes that failed.");
	EACH_BACKEND(b)
	ctl_printf(c, "wglb_backend_failed_probes_total{backend=\"%s\"} %llu\n", b->name,
		   (unsigned long long)t->be[_i].failed_probes);
}

static void agent_metrics(struct loop *l, const struct totals *t, struct ctl_client *c)
{
	static const char *const le[AGENT_HIST] = {"0.5", "1", "1.5", "2", "3", "5", "10"};
	const struct agent_stats *as = &t->agent;

	if (!t->has_agent)
		return;
	head(c, "wglb_agent_peers_known", "gauge", "WireGuard peers the backend's agent reports behind flows.");
	EACH_BACKEND(b)
	ctl_printf(c, "wglb_agent_peers_known{backend=\"%s\"} %u\n", b->name, t->be_peers[_i]);
	head(c, "wglb_agent_rehandshakes_total", "counter", "Re-handshake requests to agents, by outcome.");
	ctl_printf(c, "wglb_agent_rehandshakes_total{outcome=\"requested\"} %llu\n", (unsigned long long)as->requested);
	ctl_printf(c, "wglb_agent_rehandshakes_total{outcome=\"accepted\"} %llu\n", (unsigned long long)as->requested_ok);
	ctl_printf(c, "wglb_agent_rehandshakes_total{outcome=\"completed\"} %llu\n", (unsigned long long)as->completed);
	ctl_printf(c, "wglb_agent_rehandshakes_total{outcome=\"failed\"} %llu\n", (unsigned long long)as->failed);
	head(c, "wglb_agent_recovery_seconds", "histogram",
	     "From moving a flow to the client's handshake response on the new backend.");
	for (unsigned i = 0; i < AGENT_HIST; i++)
		ctl_printf(c, "wglb_agent_recovery_seconds_bucket{le=\"%s\"} %llu\n", le[i],
			   (unsigned long long)as->hist[i]);
	ctl_printf(c, "wglb_agent_recovery_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)as->hist[AGENT_HIST]);
	ctl_printf(c, "wglb_agent_recovery_seconds_sum %.3f\n", (double)as->recovery_ms_sum / 1000);
	ctl_printf(c, "wglb_agent_recovery_seconds_count %llu\n", (unsigned long long)as->completed);
}

static void worker_metrics(struct loop *l, const struct totals *t, struct ctl_client *c)
{
	head(c, "wglb_worker_stalled", "gauge",
	     "1 while the forwarding worker has no heartbeat or left a call unanswered.");
	for (unsigned i = 0; i < l->n_workers; i++)
		ctl_printf(c, "wglb_worker_stalled{worker=\"%u\"} %d\n", i, t->worker_stalled[i]);
}

static void metrics_write(struct loop *l, struct ctl_client *c, unsigned max_age_ms)
{
	const struct totals *t = totals_collect(l, max_age_ms); /* every worker's, summed */

	global(l, t, c);
	worker_metrics(l, t, c);
	per_backend(l, t, c);
	agent_metrics(l, t, c);
}

static void cmd_metrics(struct loop *l, struct ctl_client *c, const struct ctl_req *r)
{
	(void)r;
	metrics_write(l, c, 0); /* the control socket's users get exact counters */
}

static int metrics_open(struct loop *l)
{
	static const struct ctl_cmd cmd = {{"metrics", NULL}, "metrics", cmd_metrics, 0, 0, 0};

	ctl_on_scrape(l, metrics_write);
	return ctl_register(l, &cmd, 1);
}

const struct loop_part metrics_part = {.name = "metrics", .open = metrics_open};
