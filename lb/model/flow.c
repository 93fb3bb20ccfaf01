// SPDX-License-Identifier: MIT
#include "wglb/flow.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int flow_table_init(struct flow_table *ft, uint32_t cap)
{
	uint32_t nb = 1;

	memset(ft, 0, sizeof(*ft));
	if (cap == 0 || cap > (1U << 24))
		return -EINVAL;
	while (nb < cap)
		nb <<= 1;
	ft->flows = calloc(cap, sizeof(*ft->flows));
	ft->buckets = malloc((size_t)nb * sizeof(*ft->buckets));
	ft->by_port = calloc(65536, sizeof(*ft->by_port));
	if (!ft->flows || !ft->buckets || !ft->by_port) {
		flow_table_free(ft);
		return -ENOMEM;
	}
	memset(ft->buckets, 0xff, (size_t)nb * sizeof(*ft->buckets));
	ft->mask = nb - 1;
	ft->cap = cap;
	for (uint32_t i = 0; i < cap; i++) {
		ft->flows[i].hnext = i + 1 < cap ? i + 1 : FLOW_NONE;
		ft->flows[i].fd = -1;
	}
	ft->free_head = 0;
	ft->uhead = ft->utail = FLOW_NONE;
	randombytes_buf(ft->key, sizeof(ft->key));
	return 0;
}

void flow_table_free(struct flow_table *ft)
{
	free(ft->flows);
	free(ft->buckets);
	free(ft->by_port);
	ft->by_port = NULL;
	sodium_memzero(ft->key, sizeof(ft->key));
	ft->flows = NULL;
	ft->buckets = NULL;
}

uint32_t flow_hash(const struct flow_table *ft, const struct flow_key *k)
{
	uint8_t out[crypto_shorthash_siphash24_BYTES];
	uint32_t h;

	crypto_shorthash_siphash24(out, (const uint8_t *)k, sizeof(*k), ft->key);
	memcpy(&h, out, sizeof(h));
	return h;
}

static bool key_eq(const struct flow_key *a, const struct flow_key *b)
{
	return !memcmp(a, b, sizeof(*a));
}

struct flow *flow_lookup(struct flow_table *ft, const struct flow_key *k, uint32_t hash)
{
	for (uint32_t i = ft->buckets[hash & ft->mask]; i != FLOW_NONE; i = ft->flows[i].hnext)
		if (key_eq(&ft->flows[i].key, k))
			return &ft->flows[i];
	return NULL;
}

static void ulist_unlink(struct flow_table *ft, struct flow *f)
{
	uint32_t idx = flow_index(ft, f);

	if (f->uprev != FLOW_NONE)
		ft->flows[f->uprev].unext = f->unext;
	else if (ft->uhead == idx)
		ft->uhead = f->unext;
	if (f->unext != FLOW_NONE)
		ft->flows[f->unext].uprev = f->uprev;
	else if (ft->utail == idx)
		ft->utail = f->uprev;
	f->uprev = f->unext = FLOW_NONE;
	ft->unconfirmed--;
}

struct flow *flow_insert(struct flow_table *ft, const struct flow_key *k, uint32_t hash,
			 uint32_t now)
{
	uint32_t idx = ft->free_head, b = hash & ft->mask;
	struct flow *f;
	uint16_t gen;

	if (idx == FLOW_NONE)
		return NULL;
	f = &ft->flows[idx];
	ft->free_head = f->hnext;
	gen = (uint16_t)(f->gen + 1);
	memset(f, 0, sizeof(*f));
	f->gen = gen;
	f->key = *k;
	f->flags = FLOW_F_USED;
	f->fd = -1;
	f->backend = UINT16_MAX;
	f->created = f->last_rx = now;
	f->hnext = ft->buckets[b];
	ft->buckets[b] = idx;
	/* New flows join the unconfirmed list at its tail. */
	f->unext = FLOW_NONE;
	f->uprev = ft->utail;
	if (ft->utail != FLOW_NONE)
		ft->flows[ft->utail].unext = idx;
	else
		ft->uhead = idx;
	ft->utail = idx;
	ft->unconfirmed++;
	ft->count++;
	return f;
}

socklen_t flow_client_sa(const struct flow_key *k, union wglb_sa *sa)
{
	memset(sa, 0, sizeof(*sa));
	if (k->family == AF_INET6) {
		sa->in6.sin6_family = AF_INET6;
		sa->in6.sin6_port = k->port;
		memcpy(&sa->in6.sin6_addr, k->addr, 16);
		return sizeof(sa->in6);
	}
	sa->in4.sin_family = AF_INET;
	sa->in4.sin_port = k->port;
	memcpy(&sa->in4.sin_addr, k->addr, 4);
	return sizeof(sa->in4);
}

struct flow *flow_victim(struct flow_table *ft)
{
	return ft->uhead == FLOW_NONE ? NULL : &ft->flows[ft->uhead];
}

void flow_confirm(struct flow_table *ft, struct flow *f)
{
	if (f->flags & FLOW_F_CONFIRMED)
		return;
	ulist_unlink(ft, f);
	f->flags |= FLOW_F_CONFIRMED;
}

void flow_demote(struct flow_table *ft, struct flow *f)
{
	uint32_t idx = flow_index(ft, f);

	if (!(f->flags & FLOW_F_CONFIRMED))
		return;
	f->flags &= (uint8_t)~(FLOW_F_CONFIRMED | FLOW_F_PROOF);
	f->uprev = FLOW_NONE;
	f->unext = ft->uhead;
	if (ft->uhead != FLOW_NONE)
		ft->flows[ft->uhead].uprev = idx;
	else
		ft->utail = idx;
	ft->uhead = idx;
	ft->unconfirmed++;
}

void flow_remove(struct flow_table *ft, struct flow *f)
{
	uint32_t idx = flow_index(ft, f);
	uint32_t *pp = &ft->buckets[flow_hash(ft, &f->key) & ft->mask];

	while (*pp != idx && *pp != FLOW_NONE)
		pp = &ft->flows[*pp].hnext;
	if (*pp == idx)
		*pp = f->hnext;
	if (!(f->flags & FLOW_F_CONFIRMED))
		ulist_unlink(ft, f);
	if (ft->by_port[f->up_port] == idx + 1)
		ft->by_port[f->up_port] = 0;
	f->flags = 0;
	f->fd = -1;
	f->hnext = ft->free_head;
	ft->free_head = idx;
	ft->count--;
}

void flow_set_port(struct flow_table *ft, struct flow *f, uint16_t port)
{
	uint32_t idx = flow_index(ft, f);

	if (ft->by_port[f->up_port] == idx + 1)
		ft->by_port[f->up_port] = 0;
	f->up_port = port;
	if (!(f->flags & FLOW_F_PRESERVED)) /* the client's port: not ours, not unique */
		ft->by_port[port] = idx + 1;
}

struct flow *flow_by_port(struct flow_table *ft, uint16_t port)
{
	uint32_t i = ft->by_port[port];

	return i && (ft->flows[i - 1].flags & FLOW_F_USED) ? &ft->flows[i - 1] : NULL;
}

struct flow *flow_find_preserved(struct flow_table *ft, const struct flow_key *k,
				 unsigned n_listeners)
{
	struct flow_key q = *k;

	for (unsigned li = 0; li < n_listeners && li <= UINT8_MAX; li++) {
		struct flow *f;
		q.listener = (uint8_t)li;
		f = flow_lookup(ft, &q, flow_hash(ft, &q));
		if (f && (f->flags & FLOW_F_PRESERVED))
			return f;
	}
	return NULL;
}

void flow_scan(struct flow_table *ft, uint32_t budget, flow_visit_fn cb, void *ctx)
{
	if (budget > ft->cap)
		budget = ft->cap;
	while (budget--) {
		struct flow *f = &ft->flows[ft->hand];
		if (++ft->hand == ft->cap)
			ft->hand = 0;
		if (f->flags & FLOW_F_USED)
			cb(f, ctx);
	}
}
