/* SPDX-License-Identifier: MIT */
/* Instant failover through the backends' agents (lb/checks/agent.c). */
#ifndef WGLB_AGENT_H
#define WGLB_AGENT_H

#include "wglb/agentproto.h"

#include <stdbool.h>
#include <stdint.h>

#define AGENT_HIST 7 /* recovery buckets: 0.5 1 1.5 2 3 5 10 s, then +Inf */

struct agent_stats {
	uint64_t requested, requested_ok, completed, failed, timeouts, bad_replies;
	uint64_t recovery_ms_sum;
	uint64_t hist[AGENT_HIST + 1]; /* cumulative counts per bound */
};

struct loop;

const struct agent_stats *agent_stats(const struct loop *l);
uint32_t agent_peers_known(const struct loop *l, unsigned backend);
struct flow;
/* The WireGuard peer (public key) flow f's backend last reported behind
 * it, on the loop that holds f: false when no agent has said. */
bool agent_flow_peer(const struct loop *l, const struct flow *f, uint8_t pub[32]);

/* The part main.c (and each worker) attaches after the packet path: it
 * hears of flows moved, closed and answered through fwd_subscribe, polls
 * the agents' peer reports and asks them for re-handshakes at its tick. */
extern const struct loop_part agent_part;

#endif
