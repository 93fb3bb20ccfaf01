/* SPDX-License-Identifier: MIT */
/*
 * Handshake initiations per client source, as WireGuard's own ratelimiter
 * does (token bucket, 20/s, burst 5; IPv6 by /64). Backends see every
 * client through wglb's address, so their own per-source limit would
 * throttle all clients together: wglb applies it per real client first.
 * A fixed table with keyed hashing; under pressure the stalest entry in a
 * probe window is reused (which only ever makes a source's limit laxer,
 * never blocks a new one).
 */
#ifndef WGLB_RATELIMIT_H
#define WGLB_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#define RL_SLOTS 16384 /* power of two */
#define RL_PROBE 8

struct rl_entry {
	uint8_t key[9]; /* family byte + IPv4 address or IPv6 /64 */
	uint64_t last_ns;
	uint64_t tokens; /* nanoseconds of credit, as in WireGuard */
};

struct ratelimit_table {
	struct rl_entry *e;
	uint64_t cost_ns, burst_ns; /* 0 cost = disabled */
	uint8_t sipkey[16];
};

int rl_init(struct ratelimit_table *t, unsigned per_second, unsigned burst);
void rl_free(struct ratelimit_table *t);
/* True when an initiation from this source may pass now; spends a token. */
bool rl_allow(struct ratelimit_table *t, int family, const uint8_t *addr, uint64_t now_ns);
/* Would rl_allow() say true now? Spends nothing (route.h decides first). */
bool rl_peek(const struct ratelimit_table *t, int family, const uint8_t *addr, uint64_t now_ns);

#endif
