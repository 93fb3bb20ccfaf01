/* SPDX-License-Identifier: MIT */
/* Instant failover through the backends' agents (lb/agent.c). */
#ifndef WGLB_AGENT_H
#define WGLB_AGENT_H

#include "wglb/agentproto.h"

#include <stdint.h>

#define AGENT_HIST 7 /* recovery buckets: 0.5 1 1.5 2 3 5 10 s, then +Inf */

struct agent_stats {
	uint64_t requested, requested_ok, completed, failed, timeouts, bad_replies;
	uint64_t recovery_ms_sum;
	uint64_t hist[AGENT_HIST + 1]; /* cumulative counts per bound */
};

struct loop;
struct flow;

int agent_init(struct loop *l);
void agent_fini(struct loop *l);
void agent_tick(struct loop *l);
/* A flow was moved off a failed or drained-now backend: ask its new backend
 * to re-handshake with the peer behind it, when the latest complete peers
 * report of the backend that told us about it still puts it behind this flow. */
void agent_moved(struct loop *l, struct flow *f);
/* The client sent a handshake response on this flow: a request completed. */
void agent_client_response(struct loop *l, struct flow *f);
void agent_flow_closed(struct loop *l, struct flow *f);
const struct agent_stats *agent_stats(const struct loop *l);
uint32_t agent_peers_known(const struct loop *l, unsigned backend);

/* The part main.c attaches to the loop (open, tick, close above). */
extern const struct loop_part agent_part;

#endif
