// SPDX-License-Identifier: MIT
/*
 * Applying pool changes to flows: on the main thread after the parts'
 * ticks (dp_reconcile: rebuild Maglev, move flows off backends that
 * stopped serving, free removed slots), then on each other worker
 * (dp_follow_pool); a reload's keys (dp_follow_config) and addresses.
 */
#include "dp.h"

#include <errno.h>
#include <string.h>

/* Move every flow off the backends that stopped serving; count by backend. */
static void move_flows(struct loop *l, struct fwd *dp, const int why_of[], unsigned moved[], unsigned *closed)
{
	for (uint32_t i = 0; i < dp->ft.cap; i++) {
		struct flow *f = &dp->ft.flows[i];
		unsigned from;
		int nb;
		if (!(f->flags & FLOW_F_USED) || why_of[f->backend] < 0)
			continue;
		from = f->backend;
		nb = pool_pick(&l->pool, client_hash(&f->key));
		if (nb < 0) {
			dp_close_flow(l, dp, f);
			(*closed)++;
		} else if (dp_repin(l, dp, f, (unsigned)nb, (enum repin)why_of[from])) {
			moved[from]++;
			/* A dead or drained-now server's sessions: have the new one
			 * initiate, instead of waiting ~15 s for the client to. */
			if (why_of[from] == REPIN_DOWN || why_of[from] == REPIN_DRAINED)
				EMIT(l, dp, moved, f);
		}
	}
}

/* Backend idx moved to address a (same family): its flows' sockets follow.
 * A socket that cannot closes its flow (counted): left connected to the
 * old address it would send there. */
static void reconnect_flows(struct loop *l, struct fwd *dp, unsigned idx, const struct wglb_addr *a)
{
	for (uint32_t i = 0; i < dp->ft.cap; i++) {
		struct flow *f = &dp->ft.flows[i];
		if (!(f->flags & FLOW_F_USED) || f->backend != idx)
			continue;
		dp_fast_del(l, dp, f); /* its entries name the old address */
		if (connect(f->fd, &a->u.sa, a->len) == 0) {
			l->st.repins[REPIN_CHANGED]++;
			dp_fast_put(l, dp, f, &a->u); /* the pool may not have it yet (a worker following) */
		} else {
			l->st.move_errors++;
			dp_close_flow(l, dp, f);
		}
	}
}

void dp_reconcile(struct loop *l, struct fwd *dp)
{
	unsigned moved[CONFIG_MAX_BACKENDS] = {0}, closed = 0;
	int why_of[CONFIG_MAX_BACKENDS];
	bool any = false;

	if (pool_rebuild(&l->pool, &l->st) < 0) {
		log_err("Maglev rebuild failed (out of memory); keeping the old table");
		return;
	}
	for (unsigned i = 0; i < l->pool.n; i++) {
		why_of[i] = pool_evicts(&l->pool, i);
		any |= why_of[i] >= 0 && dp->be[i].flows;
	}
	if (any)
		move_flows(l, dp, why_of, moved, &closed);
	for (unsigned i = 0; i < l->pool.n; i++) {
		if (moved[i])
			log_info("re-pinned %u flows off backend %s (%s)", moved[i],
				 l->pool.be[i].name, stats_repin_name((enum repin)why_of[i]));
		/* A removed backend's slot is free once its flows have moved
		 * (the other workers move theirs when they follow, after). */
		if (l->pool.be[i].in_use && l->pool.be[i].removing && !dp->be[i].flows)
			pool_del(&l->pool, i);
	}
	if (closed)
		log_warn("closed %u flows: no backend left to move them to", closed);
}

/* On another worker: take the main thread's pool whole (states, addresses,
 * the Maglev table) and move this worker's flows as the main thread moved
 * its own. The flows and counters per backend stay this worker's; a slot
 * that now holds another backend (or none) sends its flows away first. */
void dp_follow_pool(struct loop *l, struct fwd *dp, void *arg)
{
	const struct pool *src = arg;
	unsigned moved[CONFIG_MAX_BACKENDS] = {0}, closed = 0;
	int why_of[CONFIG_MAX_BACKENDS];
	bool gone[CONFIG_MAX_BACKENDS], any = false;
	unsigned n = src->n > l->pool.n ? src->n : l->pool.n;

	for (unsigned i = 0; i < n; i++) {
		struct backend *d = &l->pool.be[i];
		const struct backend *s = &src->be[i];
		bool same = d->in_use && s->in_use && !strcmp(d->name, s->name) &&
			    d->addr.u.sa.sa_family == s->addr.u.sa.sa_family;
		gone[i] = d->in_use && !same;
		if (same && !addr_equal(&d->addr, &s->addr))
			reconnect_flows(l, dp, i, &s->addr);
	}
	for (unsigned i = 0; i < n; i++) {
		struct backend *d = &l->pool.be[i];
		struct backend was = *d;
		*d = src->be[i]; /* flows and counters stay this worker's, in dp */
		if (gone[i]) { /* a freed slot (never picked): its flows leave from where they are */
			d->addr = was.addr;
			memcpy(d->name, was.name, sizeof(d->name));
		}
	}
	memcpy(l->pool.table, src->table, MAGLEV_SIZE * sizeof(*src->table));
	l->pool.n = src->n;
	l->pool.failopen = src->failopen;
	l->pool.dirty = false;
	for (unsigned i = 0; i < n; i++) {
		why_of[i] = gone[i] ? REPIN_REMOVED : pool_evicts(&l->pool, i);
		any |= why_of[i] >= 0 && dp->be[i].flows;
	}
	if (any)
		move_flows(l, dp, why_of, moved, &closed);
	for (unsigned i = 0; i < n; i++)
		if (moved[i])
			log_info("worker %u: re-pinned %u flows off backend %s (%s)", l->worker_id,
				 moved[i], l->pool.be[i].name, stats_repin_name((enum repin)why_of[i]));
	if (closed)
		log_warn("worker %u: closed %u flows: no backend left to move them to", l->worker_id,
			 closed);
	for (unsigned i = 0; i < n; i++)
		if (gone[i]) { /* the slot as the main thread has it, counters from zero */
			l->pool.be[i] = src->be[i];
			memset(&dp->be[i], 0, sizeof(dp->be[i]));
		}
}

/* On another worker: the keys a reload applies at once. */
void dp_follow_config(struct loop *l, struct fwd *dp, void *arg)
{
	const struct wglb_config *src = arg;
	struct wglb_config c;

	/* The main thread's new running config, whole, as this worker's. */
	if (config_copy(&c, src) < 0 || dp_configure(l, dp, &c, &l->cfg) < 0) {
		log_warn("worker %u: out of memory for the new config; keeping the old one",
			 l->worker_id);
		config_free(&c);
		return;
	}
	dp_preserve_configure(l, dp, &c);
	dp_fast_allow(l, dp, &c);
	config_free(&l->cfg);
	l->cfg = c;
}

/* A kept backend's new address (same family): its flows' sockets follow. */
void dp_readdress(struct loop *l, struct fwd *dp, unsigned idx, const struct wglb_addr *a)
{
	pool_set_addr(&l->pool, idx, a);
	reconnect_flows(l, dp, idx, a);
}

bool dp_move_flow(struct loop *l, struct fwd *dp, struct flow *f, enum repin why)
{
	int nb = pool_pick(&l->pool, client_hash(&f->key));

	if (nb < 0 || nb == f->backend)
		return false;
	return dp_repin(l, dp, f, (unsigned)nb, why);
}
