/* SPDX-License-Identifier: MIT */
/* The control socket's commands (lb/ctl_cmds.c), driven by a command table:
 * they read the loop's state, change backends through pool.h and reply
 * through ctl.h's helpers; they never write a client's fd. */
#ifndef WGLB_CTL_CMDS_H
#define WGLB_CTL_CMDS_H

#include "wglb/agent.h"
#include "wglb/config.h"
#include "wglb/ctl.h"
#include "wglb/stats.h"

void ctl_execute(struct loop *l, struct ctl_client *c, const struct ctl_req *req);
/* The next part of a streamed reply (show flows), as the client reads. */
void ctl_stream_more(struct loop *l, struct ctl_client *c);

/* What every worker adds up to: show stats, show info, metrics. */
struct ctl_totals {
	struct wglb_stats st;
	struct backend_stats be[CONFIG_MAX_BACKENDS];
	uint32_t be_flows[CONFIG_MAX_BACKENDS];
	uint32_t be_peers[CONFIG_MAX_BACKENDS]; /* peers the backend's agent reports behind flows */
	uint32_t flows, max_flows, unconfirmed, unconf_cap;
	uint32_t worker_flows[CONFIG_MAX_WORKERS];
	uint64_t worker_pkts_in[CONFIG_MAX_WORKERS]; /* from clients: shows how steering spreads */
	uint64_t load_episodes;
	bool under_load; /* on any worker */
	bool has_agent;
	struct agent_stats agent;
};
/* Sum every worker's counters (the main thread waits for each in turn).
 * The result lives until the next call. */
const struct ctl_totals *ctl_totals(struct loop *l);

#endif
