/* SPDX-License-Identifier: MIT */
/*
 * The packet path (lb/fwd.c): classify, check at the edge, route by flow,
 * session index or Maglev, open and reuse upstream sockets, re-pin, relay
 * replies, expire idle flows. The loop hands it every datagram; it queues
 * sends through tx.h. Every drop has a named counter.
 */
#ifndef WGLB_FWD_H
#define WGLB_FWD_H

#include "wglb/loop.h"

/* The edge's checks from a config (start: first, or a reload): mac1 key,
 * cookies, handshake and roam limits. Copies the keys it uses into l->cfg. */
int fwd_configure(struct loop *l, const struct wglb_config *nc, bool first);
void fwd_unconfigure(struct loop *l);
/* Handshakes must prove their source now (cookies on, and under load or "always"). */
bool fwd_under_load(const struct loop *l);
void fwd_client_datagram(struct loop *l, unsigned li, uint8_t *buf, unsigned bid, int res);
void fwd_backend_datagram(struct loop *l, uint32_t fidx, uint16_t gen, uint8_t *buf, unsigned bid,
			  int res, bool more);
void fwd_arm_upstream(struct loop *l, struct flow *f);
/* After pool state changes (end of a batch): rebuild the table, move flows
 * off backends that stopped serving, free the slots of removed ones. */
void fwd_reconcile(struct loop *l);
/* On another worker (workers_call): follow the main thread's pool, whose
 * address arg is, and move this worker's flows as fwd_reconcile did. */
void fwd_follow_pool(struct loop *l, void *pool);
/* On another worker: the keys a reload applies at once, from the main
 * thread's config (arg). */
void fwd_follow_config(struct loop *l, void *cfg);
void fwd_expire(struct loop *l);
/* On the main thread: workers that could have no upstream socket asked for
 * one (workers_want_socket); the oldest unconfirmed flows of all workers
 * give way, as the oldest of one worker's does for its own newcomers. */
void fwd_lend_sockets(struct loop *l);
void fwd_close_flow(struct loop *l, struct flow *f);
/* Re-pin one flow to Maglev's choice now. False if it stayed or closed. */
bool fwd_move_flow(struct loop *l, struct flow *f, enum repin why);
/* A kept backend's new address (same family): its flows' sockets follow. */
void fwd_readdress(struct loop *l, unsigned idx, const struct wglb_addr *a);

#endif
