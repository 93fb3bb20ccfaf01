/* SPDX-License-Identifier: MIT */
/*
 * The routing decision for one client datagram, as a pure function of what
 * the packet path gathered about it (lb/model/route.c): every rule of the README's
 * "How it routes" and of the edge (mac1, cookies, per-source limits, proof
 * of receipt) in one place, tested as a table (tests/unit/test_route.c).
 * The caller does the lookups beforehand (peeking at rate limits without
 * spending them) and the I/O afterwards: it spends the budget the verdict
 * names, counts, opens, re-pins, queues or answers with a cookie.
 */
#ifndef WGLB_ROUTE_H
#define WGLB_ROUTE_H

#include "wglb/stats.h"
#include "wglb/wgmsg.h"

#include <stdbool.h>
#include <stdint.h>

struct route_in {
	enum wg_type type;
	uint32_t receiver;   /* response, transport: the receiver index */
	bool mac1_bad;       /* a handshake whose mac1 is not for these servers */
	bool cookies;        /* the edge can ask for cookies (server key, mode not off) */
	bool under_load;     /* ... and asks now ("always", or under load) */
	bool mac2_ok;        /* a handshake whose mac2 proves its source */
	bool claimed_budget; /* an initiation within the claimed source's budget (read when !mac2_ok) */
	bool proven_budget;  /* an initiation within the proven source's budget (read when mac2_ok) */
	/* The source's flow, if it has one. */
	bool has_flow;
	bool flow_keeps;     /* its backend may keep initiations (up, not draining) */
	bool flow_confirmed;
	bool flow_proof;     /* it holds the index its backend chose (FLOW_F_PROOF) */
	uint32_t flow_srv_index;
	bool mac2_set;       /* the handshake's mac2 is not zero (made with some cookie) */
	/* Its backend speaks cookies on it (sent a cookie reply) and its source
	 * proved itself to the edge (wglb's mac2, or a confirmed flow). */
	bool flow_backend_cookie;
	/* No flow: a transport datagram's receiver index names a session we carry. */
	int session_backend; /* that session's backend while it keeps flows, else -1 */
	bool roam_budget;    /* that index may open another flow now */
};

enum route_action {
	ROUTE_FORWARD, /* on the source's flow, as it is */
	ROUTE_NEW,     /* a new flow: on `backend` (a roaming session's), or -1 for Maglev's choice */
	ROUTE_REPIN,   /* the flow moves to Maglev's choice first (its backend stopped keeping it) */
	ROUTE_COOKIE,  /* answer with wglb's cookie reply; nothing goes on */
	ROUTE_DROP,    /* counted as `why` */
};

enum route_spend { SPEND_NONE, SPEND_CLAIMED, SPEND_PROVEN, SPEND_ROAM };

struct route_out {
	enum route_action action;
	enum drop why;          /* ROUTE_DROP and ROUTE_COOKIE (needs_cookie) */
	int backend;            /* ROUTE_NEW: see above */
	enum route_spend spend; /* the budget this datagram uses */
	bool confirm;           /* it proves the flow's client receives */
	bool note_load;         /* an unproven new source: counts toward "under load" */
};

struct route_out route_decide(const struct route_in *in);
const char *route_action_name(enum route_action a);

#endif
