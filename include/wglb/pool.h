/* SPDX-License-Identifier: MIT */
/*
 * Backends: identity, operator (admin) state, health state, and the Maglev
 * table built over the usable ones. The prober, the control socket and
 * reloads change states only through these functions, which mark the pool
 * dirty; at the end of the batch the packet path (its settle hook)
 * rebuilds the table, re-pins the flows of backends that stopped serving
 * and forgets removed ones. Besides these, only the packet path writes a
 * backend: its flow count and traffic counters, in its worker's copy.
 */
#ifndef WGLB_POOL_H
#define WGLB_POOL_H

#include "wglb/addr.h"
#include "wglb/config.h"
#include "wglb/maglev.h"
#include "wglb/stats.h"

#include <stdbool.h>
#include <stdint.h>

enum be_admin { ADMIN_ENABLED, ADMIN_DRAINING, ADMIN_DISABLED };
enum be_health { HEALTH_CHECKING, HEALTH_UP, HEALTH_DOWN };

struct backend {
	bool in_use;
	bool in_table; /* in the current Maglev table: may take new flows */
	bool removing; /* being deleted: its flows move, then the slot is freed */
	bool drain_now; /* draining, and its flows move now (instant failover) */
	bool agent_drain; /* draining because its agent asks (X-Wglb-Drain) */
	uint8_t admin;  /* enum be_admin */
	uint8_t health; /* enum be_health */
	char name[BACKEND_NAME_MAX];
	struct wglb_addr addr;
	uint16_t weight;
	uint16_t health_port;
	uint32_t gen; /* bumped by every change made outside the prober (add, delete,
		       * admin, health port): the prober starts that backend afresh */
	uint64_t health_since_ms; /* realtime ms of the last health transition */
};

struct pool {
	struct backend be[CONFIG_MAX_BACKENDS];
	unsigned n; /* slots used so far (high-water mark) */
	uint16_t *table;
	bool failopen; /* nothing up: the table holds every non-disabled backend */
	bool dirty;    /* a state changed since the last pool_rebuild() */
	bool probing;  /* health checks configured: new backends start in checking */
	uint32_t gens; /* last generation handed out (struct backend.gen) */
};

int pool_init(struct pool *p, bool probing);
void pool_free(struct pool *p);
/* Add a backend; returns its index or -EEXIST / -ENOSPC / -EINVAL. */
int pool_add(struct pool *p, const struct backend_conf *bc);
/* A backend by name (not one being removed), or -1. */
int pool_find(const struct pool *p, const char *name);
/* Forget a backend. The loop must have moved its flows away first. */
void pool_del(struct pool *p, unsigned idx);
void pool_set_admin(struct pool *p, unsigned idx, enum be_admin a);
/* The agent's X-Wglb-Drain header, from the prober: on drains an enabled
 * backend; off lifts a drain it started. */
void pool_agent_drain(struct pool *p, unsigned idx, bool on);
/* Drain, and move its flows at the end of the batch (instant failover). */
void pool_drain_now(struct pool *p, unsigned idx);
/* Remove: its flows move at the end of the batch, then its slot is freed. */
void pool_remove(struct pool *p, unsigned idx);
/* Weight and health port from a (re)loaded config. */
void pool_configure(struct pool *p, unsigned idx, const struct backend_conf *bc);
/* A new address of the same family (the loop reconnects the flows). */
void pool_set_addr(struct pool *p, unsigned idx, const struct wglb_addr *a);
void pool_set_health(struct pool *p, unsigned idx, enum be_health h);
/* Rebuild the Maglev table. 0 or -ENOMEM (then the old table stays). */
int pool_rebuild(struct pool *p, struct wglb_stats *st);
/* The backend for a client hash, or -1 when there is none. */
static inline int pool_pick(const struct pool *p, uint64_t client_hash)
{
	uint16_t id = p->table[client_hash % MAGLEV_SIZE];
	return id == 0xffff ? -1 : (int)id;
}
/* May an initiation stay on this backend? (in the table and not draining) */
bool pool_keeps(const struct pool *p, unsigned idx);
/* May existing flows stay on it? If not, why (enum repin); -1 when they may. */
int pool_evicts(const struct pool *p, unsigned idx);
const char *pool_admin_name(enum be_admin a);
const char *pool_health_name(enum be_health h);
/* The state shown to people: disabled > draining > down/checking/up. */
const char *pool_state_name(const struct backend *b);

#endif
