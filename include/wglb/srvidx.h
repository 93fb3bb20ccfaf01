/* SPDX-License-Identifier: MIT */
/*
 * Server session index -> flow. A backend's handshake message names the
 * index its session will answer to (the sender index of its response or
 * initiation); the client puts it in every transport datagram. When a
 * client's address or NAT port changes mid-session, its transport data
 * arrives from a source wglb has no flow for: this table finds the flow
 * that carried the session, so the new flow joins the same backend and the
 * session lives on (DESIGN: index routing, roaming part).
 *
 * Open addressing over flow indices (slots: the power of two at or above
 * twice the flow capacity, 2 to 4 per flow, 4 bytes each; each flow holds
 * at most one entry, and each (index, backend) at most one, so the table
 * is never more than half full and a repeated index costs nothing),
 * linear probing, backward-shift deletion: no tombstones, no rehash.
 * Indices are the backends' random numbers, so a multiplicative hash under
 * a random seed spreads them; clients cannot choose them.
 */
#ifndef WGLB_SRVIDX_H
#define WGLB_SRVIDX_H

#include "wglb/flow.h"

#include <stdint.h>

struct srvidx {
	uint32_t *slots; /* flow index, or FLOW_NONE */
	uint32_t mask;
	unsigned shift;  /* 32 - log2(slots) */
	uint32_t seed;
	uint32_t count;
};

int srvidx_init(struct srvidx *t, uint32_t flow_cap);
void srvidx_free(struct srvidx *t);
/* Record that flow f's session answers to index idx (replacing the index
 * f held before, if any). The entry for (idx, f's backend), if another
 * flow held it, passes to f: one entry per index and backend. */
void srvidx_set(struct srvidx *t, struct flow_table *ft, struct flow *f, uint32_t idx);
/* Forget f's index; a no-op when it has none. */
void srvidx_del(struct srvidx *t, struct flow_table *ft, struct flow *f);
/* A flow whose session answers to idx, or NULL. */
struct flow *srvidx_find(const struct srvidx *t, struct flow_table *ft, uint32_t idx);

#endif
