/* SPDX-License-Identifier: MIT */
/*
 * What every worker adds up to (show stats, show info, metrics). Each
 * worker adds its own part on its own thread (totals_add, the collector
 * main.c hands the workers) and publishes it; the main thread merges the
 * parts it reads (totals_collect), one sum for every reader.
 */
#ifndef WGLB_TOTALS_H
#define WGLB_TOTALS_H

#include "wglb/agent.h"
#include "wglb/config.h"
#include "wglb/stats.h"

#include <stdbool.h>
#include <stdint.h>

struct loop;

struct totals {
	struct wglb_stats st;
	struct backend_stats be[CONFIG_MAX_BACKENDS];
	uint32_t be_flows[CONFIG_MAX_BACKENDS];
	uint32_t be_peers[CONFIG_MAX_BACKENDS]; /* peers the backend's agent reports behind flows */
	uint32_t flows, max_flows, unconfirmed, unconf_cap;
	uint32_t worker_flows[CONFIG_MAX_WORKERS];
	uint64_t worker_pkts_in[CONFIG_MAX_WORKERS]; /* from clients: shows how steering spreads */
	uint64_t load_episodes;
	struct agent_stats agent;
	bool under_load; /* on any worker */
	bool has_agent;
	/* Filled by the collector, not the workers: */
	bool worker_stalled[CONFIG_MAX_WORKERS]; /* no heartbeat, or a call went unanswered */
	unsigned stalled;                        /* how many are */
};

/* Add worker w's own counters to t (on w's thread: it reads w's loop). */
void totals_add(struct totals *t, const struct loop *w);
/* Add one worker's published part to t. */
void totals_merge(struct totals *t, const struct totals *part);
/* On the main thread: every worker's counters summed, from what each
 * published: the main thread calls none of them and never waits on the
 * packet path. max_age_ms: a sum that recent is answered again (/metrics:
 * 1000, so a scrape storm costs one sum a second); 0: a new sum for which
 * each worker first publishes (a bounded call: the control socket's exact
 * counters). Stalled workers are marked; their last snapshot counts. The
 * result lives until the next call. Used by show stats, show info and
 * /metrics alike. */
const struct totals *totals_collect(struct loop *l, unsigned max_age_ms);

#endif
