// SPDX-License-Identifier: MIT
#include "wglb/clock.h"
#include "wglb/pool.h"
#include "wglb/log.h"
#include "wglb/maglev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int pool_init(struct pool *p, bool probing)
{
	memset(p, 0, sizeof(*p));
	p->probing = probing;
	p->table = malloc(MAGLEV_SIZE * sizeof(*p->table));
	if (!p->table)
		return -ENOMEM;
	memset(p->table, 0xff, MAGLEV_SIZE * sizeof(*p->table));
	return 0;
}

void pool_free(struct pool *p)
{
	free(p->table);
	p->table = NULL;
}

/* A change the prober must see: a pool-wide counter, so that a reused slot
 * never repeats the generation its previous backend had. */
static void changed(struct pool *p, struct backend *b)
{
	b->gen = ++p->gens;
}

int pool_find(const struct pool *p, const char *name)
{
	for (unsigned i = 0; i < p->n; i++)
		if (p->be[i].in_use && !p->be[i].removing && !strcmp(p->be[i].name, name))
			return (int)i;
	return -1;
}

int pool_add(struct pool *p, const struct backend_conf *bc)
{
	unsigned i;

	if (!config_name_valid(bc->name) || !bc->addr.len || bc->weight < 1 ||
	    bc->weight > WEIGHT_MAX)
		return -EINVAL;
	if (pool_find(p, bc->name) >= 0)
		return -EEXIST;
	for (i = 0; i < p->n && p->be[i].in_use; i++)
		;
	if (i == CONFIG_MAX_BACKENDS)
		return -ENOSPC;
	if (i == p->n)
		p->n++;
	memset(&p->be[i], 0, sizeof(p->be[i]));
	p->be[i].in_use = true;
	strcpy(p->be[i].name, bc->name);
	p->be[i].addr = bc->addr;
	p->be[i].weight = bc->weight;
	p->be[i].health_port = bc->health_port;
	p->be[i].admin = ADMIN_ENABLED;
	/* Without probes a backend is trusted to be up, as with a static NLB target. */
	p->be[i].health = p->probing ? HEALTH_CHECKING : HEALTH_UP;
	p->be[i].health_since_ms = clock_realtime_ms();
	changed(p, &p->be[i]);
	p->dirty = true;
	return (int)i;
}

void pool_del(struct pool *p, unsigned idx)
{
	changed(p, &p->be[idx]);
	p->be[idx].in_use = false;
	p->be[idx].in_table = false;
	while (p->n && !p->be[p->n - 1].in_use)
		p->n--;
	p->dirty = true;
}

void pool_set_admin(struct pool *p, unsigned idx, enum be_admin a)
{
	struct backend *b = &p->be[idx];

	b->drain_now = false;
	b->agent_drain = false; /* the operator's word; the agent's next probe may drain again */
	if (b->admin == a)
		return;
	changed(p, b);
	/* Re-enabling a disabled backend makes it prove itself again. */
	if (b->admin == ADMIN_DISABLED && a != ADMIN_DISABLED && p->probing)
		b->health = HEALTH_CHECKING;
	b->admin = (uint8_t)a;
	p->dirty = true;
}

void pool_agent_drain(struct pool *p, unsigned idx, bool on)
{
	struct backend *b = &p->be[idx];

	if (on && !b->agent_drain && b->admin == ADMIN_ENABLED) {
		b->admin = ADMIN_DRAINING;
		b->agent_drain = true;
		p->dirty = true;
	} else if (!on && b->agent_drain) {
		b->agent_drain = false;
		if (b->admin == ADMIN_DRAINING) {
			b->admin = ADMIN_ENABLED;
			p->dirty = true;
		}
	}
}

void pool_drain_now(struct pool *p, unsigned idx)
{
	pool_set_admin(p, idx, ADMIN_DRAINING);
	p->be[idx].drain_now = true; /* after pool_set_admin, which clears it */
	p->dirty = true;
}

void pool_remove(struct pool *p, unsigned idx)
{
	p->be[idx].removing = true;
	p->dirty = true;
}

void pool_configure(struct pool *p, unsigned idx, const struct backend_conf *bc)
{
	struct backend *b = &p->be[idx];

	if (b->weight != bc->weight)
		p->dirty = true;
	if (b->health_port != bc->health_port)
		changed(p, b);
	b->weight = bc->weight;
	b->health_port = bc->health_port;
}

void pool_set_addr(struct pool *p, unsigned idx, const struct wglb_addr *a)
{
	p->be[idx].addr = *a;
	changed(p, &p->be[idx]); /* probe the new address from scratch */
	p->dirty = true;         /* and the other workers' flows follow it */
}

void pool_set_health(struct pool *p, unsigned idx, enum be_health h)
{
	if (p->be[idx].health == h)
		return;
	p->be[idx].health = (uint8_t)h;
	p->be[idx].health_since_ms = clock_realtime_ms();
	p->dirty = true;
}

int pool_rebuild(struct pool *p, struct wglb_stats *st)
{
	struct maglev_input in[CONFIG_MAX_BACKENDS];
	uint16_t *table;
	struct timespec t0, t1;
	size_t n = 0;
	bool failopen = false;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned i = 0; i < p->n; i++) {
		const struct backend *b = &p->be[i];
		if (b->in_use && !b->removing && b->admin == ADMIN_ENABLED &&
		    b->health == HEALTH_UP)
			n++;
	}
	/* Nothing healthy (also right after start, before the first probes
	 * finish): fail open to every non-disabled backend, as NLB does, so
	 * that a restart never blackholes traffic. */
	failopen = n == 0;
	n = 0;
	for (unsigned i = 0; i < p->n; i++) {
		struct backend *b = &p->be[i];
		bool use = b->in_use && !b->removing &&
			   (failopen ? b->admin != ADMIN_DISABLED
				     : b->admin == ADMIN_ENABLED && b->health == HEALTH_UP);
		b->in_table = use;
		if (!use)
			continue;
		maglev_backend_hash(b->name, &in[n].offset_hash, &in[n].skip_hash);
		in[n].weight = b->weight;
		in[n].id = (uint16_t)i;
		n++;
	}
	table = malloc(MAGLEV_SIZE * sizeof(*table));
	if (!table)
		return -ENOMEM;
	ret = maglev_build(in, n, table, MAGLEV_SIZE);
	if (ret < 0) {
		free(table);
		return ret;
	}
	free(p->table);
	p->table = table;
	if (failopen && !p->failopen && n) {
		st->failopen++;
		log_warn("no backend is up: failing open to all %zu non-disabled backends", n);
	} else if (!failopen && p->failopen) {
		log_info("a backend is up again: fail-open ends");
	}
	p->failopen = failopen && n;
	p->dirty = false;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	st->rebuilds++;
	st->last_rebuild_us = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000 +
					 (t1.tv_nsec - t0.tv_nsec) / 1000);
	return 0;
}

bool pool_keeps(const struct pool *p, unsigned idx)
{
	const struct backend *b = &p->be[idx];

	return b->in_use && b->in_table && b->admin == ADMIN_ENABLED;
}

int pool_evicts(const struct pool *p, unsigned idx)
{
	const struct backend *b = &p->be[idx];

	if (!b->in_use || b->removing)
		return REPIN_REMOVED;
	if (b->admin == ADMIN_DISABLED)
		return REPIN_DISABLED;
	if (b->admin == ADMIN_DRAINING && b->drain_now)
		return REPIN_DRAINED;
	/* Draining keeps its flows until their next initiation. In fail-open
	 * a down backend is as good as any other. */
	if (b->health == HEALTH_DOWN && !p->failopen)
		return REPIN_DOWN;
	return -1;
}

const char *pool_admin_name(enum be_admin a)
{
	static const char *const n[] = {"enabled", "draining", "disabled"};
	return (unsigned)a < 3 ? n[a] : "invalid";
}

const char *pool_health_name(enum be_health h)
{
	static const char *const n[] = {"checking", "up", "down"};
	return (unsigned)h < 3 ? n[h] : "invalid";
}

const char *pool_state_name(const struct backend *b)
{
	if (b->admin == ADMIN_DISABLED)
		return "disabled";
	if (b->admin == ADMIN_DRAINING)
		return "draining";
	return pool_health_name((enum be_health)b->health);
}
