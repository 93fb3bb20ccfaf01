// SPDX-License-Identifier: MIT
/* Server session index -> flow (see srvidx.h). */
#include "wglb/srvidx.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>

static uint32_t slot_of(const struct srvidx *t, uint32_t idx)
{
	return ((idx ^ t->seed) * 2654435761u) >> t->shift;
}

int srvidx_init(struct srvidx *t, uint32_t flow_cap)
{
	uint32_t n = 2;
	unsigned bits = 1;

	while (n < 2ull * flow_cap && bits < 31) {
		n <<= 1;
		bits++;
	}
	t->slots = malloc(sizeof(*t->slots) * n);
	if (!t->slots)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++)
		t->slots[i] = FLOW_NONE;
	t->mask = n - 1;
	t->shift = 32 - bits;
	t->seed = randombytes_random();
	t->count = 0;
	return 0;
}

void srvidx_free(struct srvidx *t)
{
	free(t->slots);
	t->slots = NULL;
}

struct flow *srvidx_find(const struct srvidx *t, struct flow_table *ft, uint32_t idx)
{
	for (uint32_t i = slot_of(t, idx);; i = (i + 1) & t->mask) {
		uint32_t fi = t->slots[i];
		if (fi == FLOW_NONE)
			return NULL;
		if (ft->flows[fi].srv_index == idx)
			return &ft->flows[fi];
	}
}

void srvidx_del(struct srvidx *t, struct flow_table *ft, struct flow *f)
{
	uint32_t fi = flow_index(ft, f), i, j;

	if (!(f->flags & FLOW_F_INDEXED))
		return;
	f->flags &= (uint8_t)~FLOW_F_INDEXED;
	for (i = slot_of(t, f->srv_index); t->slots[i] != fi; i = (i + 1) & t->mask)
		if (t->slots[i] == FLOW_NONE)
			return; /* not reached: an indexed flow is in its probe run */
	/* Backward shift: pull later members of the run into the hole unless
	 * their home slot lies cyclically in (hole, their slot]. */
	for (j = i;;) {
		uint32_t home;
		j = (j + 1) & t->mask;
		if (t->slots[j] == FLOW_NONE)
			break;
		home = slot_of(t, ft->flows[t->slots[j]].srv_index);
		if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
			t->slots[i] = t->slots[j];
			i = j;
		}
	}
	t->slots[i] = FLOW_NONE;
	t->count--;
}

void srvidx_set(struct srvidx *t, struct flow_table *ft, struct flow *f, uint32_t idx)
{
	uint32_t i, fi = flow_index(ft, f);

	if ((f->flags & FLOW_F_INDEXED) && f->srv_index == idx)
		return;
	srvidx_del(t, ft, f);
	f->srv_index = idx;
	/* One entry per (index, backend): a flow that names an index already
	 * held for its backend (a roamed client, or anyone repeating the
	 * index from new sources) takes the entry over, so repeats never
	 * lengthen a probe run. Never full: at most one entry per flow. */
	for (i = slot_of(t, idx); t->slots[i] != FLOW_NONE; i = (i + 1) & t->mask) {
		struct flow *g = &ft->flows[t->slots[i]];
		if (g->srv_index == idx && g->backend == f->backend) {
			g->flags &= (uint8_t)~FLOW_F_INDEXED;
			t->slots[i] = fi;
			f->flags |= FLOW_F_INDEXED;
			return;
		}
	}
	t->slots[i] = fi;
	f->flags |= FLOW_F_INDEXED;
	t->count++;
}
