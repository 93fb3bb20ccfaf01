// SPDX-License-Identifier: MIT
#include "wglb/ratelimit.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int rl_init(struct ratelimit_table *t, unsigned per_second, unsigned burst)
{
	memset(t, 0, sizeof(*t));
	if (!per_second)
		return 0; /* disabled */
	t->e = calloc(RL_SLOTS, sizeof(*t->e));
	if (!t->e)
		return -ENOMEM;
	t->cost_ns = 1000000000ull / per_second;
	t->burst_ns = t->cost_ns * (burst ? burst : 1);
	randombytes_buf(t->sipkey, sizeof(t->sipkey));
	return 0;
}

void rl_free(struct ratelimit_table *t)
{
	free(t->e);
	t->e = NULL;
}

bool rl_allow(struct ratelimit_table *t, int family, const uint8_t *addr, uint64_t now_ns)
{
	uint8_t key[9] = {0}, h[8];
	struct rl_entry *e = NULL, *stalest = NULL;
	uint64_t idx;

	if (!t->cost_ns)
		return true;
	key[0] = family == AF_INET6 ? 6 : 4;
	memcpy(key + 1, addr, family == AF_INET6 ? 8 : 4); /* IPv6: the /64 */
	crypto_shorthash_siphash24(h, key, sizeof(key), t->sipkey);
	memcpy(&idx, h, sizeof(idx));
	for (unsigned p = 0; p < RL_PROBE; p++) {
		struct rl_entry *c = &t->e[(idx + p) & (RL_SLOTS - 1)];
		if (!memcmp(c->key, key, sizeof(key))) {
			e = c;
			break;
		}
		if (!stalest || c->last_ns < stalest->last_ns)
			stalest = c;
	}
	if (!e) {
		/* A new source starts with a full bucket. */
		e = stalest;
		memcpy(e->key, key, sizeof(key));
		e->tokens = t->burst_ns;
		e->last_ns = now_ns;
	}
	e->tokens += now_ns - e->last_ns;
	if (e->tokens > t->burst_ns)
		e->tokens = t->burst_ns;
	e->last_ns = now_ns;
	if (e->tokens < t->cost_ns)
		return false;
	e->tokens -= t->cost_ns;
	return true;
}
