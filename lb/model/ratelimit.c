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

static inline void key_of(const struct ratelimit_table *t, int family, const uint8_t *addr,
		   uint8_t key[9], uint64_t *idx)
{
	uint8_t h[8];

	memset(key, 0, 9);
	key[0] = family == AF_INET6 ? 6 : 4;
	memcpy(key + 1, addr, family == AF_INET6 ? 8 : 4); /* IPv6: the /64 */
	crypto_shorthash_siphash24(h, key, 9, t->sipkey);
	memcpy(idx, h, sizeof(*idx));
}

/* The source's entry (its key in key), or NULL with *stalest the slot a
 * new one would take. */
static inline struct rl_entry *find(const struct ratelimit_table *t, int family, const uint8_t *addr,
				    uint8_t key[9], struct rl_entry **stalest)
{
	uint64_t idx;

	key_of(t, family, addr, key, &idx);
	*stalest = NULL;
	for (unsigned p = 0; p < RL_PROBE; p++) {
		struct rl_entry *c = &t->e[(idx + p) & (RL_SLOTS - 1)];
		if (!memcmp(c->key, key, 9))
			return c;
		if (!*stalest || c->last_ns < (*stalest)->last_ns)
			*stalest = c;
	}
	return NULL;
}

static inline uint64_t tokens_at(const struct ratelimit_table *t, const struct rl_entry *e, uint64_t now_ns)
{
	uint64_t tok = e->tokens + (now_ns - e->last_ns);

	return tok > t->burst_ns ? t->burst_ns : tok;
}

bool rl_peek(const struct ratelimit_table *t, int family, const uint8_t *addr, uint64_t now_ns)
{
	uint8_t key[9];
	struct rl_entry *e, *stalest;

	if (!t->cost_ns)
		return true;
	e = find(t, family, addr, key, &stalest);
	return !e || tokens_at(t, e, now_ns) >= t->cost_ns; /* a new source starts full */
}

bool rl_allow(struct ratelimit_table *t, int family, const uint8_t *addr, uint64_t now_ns)
{
	uint8_t key[9];
	struct rl_entry *e, *stalest;

	if (!t->cost_ns)
		return true;
	e = find(t, family, addr, key, &stalest);
	if (!e) {
		/* A new source starts with a full bucket. */
		e = stalest;
		memcpy(e->key, key, sizeof(key));
		e->tokens = t->burst_ns;
		e->last_ns = now_ns;
	}
	e->tokens = tokens_at(t, e, now_ns);
	e->last_ns = now_ns;
	if (e->tokens < t->cost_ns)
		return false;
	e->tokens -= t->cost_ns;
	return true;
}
