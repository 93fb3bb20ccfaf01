/* SPDX-License-Identifier: MIT */
/*
 * The per-client flow table: client address+port+listener -> backend and
 * upstream socket. Fixed capacity, keyed SipHash (fresh key each start, so
 * nobody can aim collisions at a bucket), index-linked so that one flow is
 * at most 104 bytes plus its bucket. No I/O: the loop owns the sockets.
 */
#ifndef WGLB_FLOW_H
#define WGLB_FLOW_H

#include "wglb/addr.h"

#include <stdbool.h>
#include <stdint.h>

#define FLOW_NONE UINT32_MAX

enum {
	FLOW_F_USED = 1U << 0,
	FLOW_F_CONFIRMED = 1U << 1, /* the client proved it receives: never evicted */
	FLOW_F_PRESERVED = 1U << 2, /* its upstream socket sends from the client's own address and
				     * port (client_address = preserve): up_port is not indexed */
	FLOW_F_INIT_PENDING = 1U << 3, /* initiation sent, no response seen yet */
	FLOW_F_REARM = 1U << 4,        /* receive stopped on -ENOBUFS, re-arm when buffers return */
	FLOW_F_PROOF = 1U << 5,        /* srv_index came from the backend's handshake on this flow:
					* a client that names it has received that message */
	FLOW_F_SRV_INIT = 1U << 6,     /* the session was initiated by the backend: only it rekeys */
	FLOW_F_INDEXED = 1U << 7,      /* srv_index is in the session index (srvidx.h) */
};

/* A flow's cookie state (flow.edge). */
enum {
	FLOW_E_PROVEN = 1U << 0,    /* an initiation on it carried wglb's valid mac2 */
	FLOW_E_BE_COOKIE = 1U << 1, /* its backend sent the client a cookie reply: it speaks
				     * cookies on this flow (until a response, or a re-pin) */
};

struct flow_key {
	uint8_t addr[16]; /* IPv4 in the first 4 bytes, rest zero */
	uint16_t port;    /* network byte order */
	uint8_t family;   /* AF_INET / AF_INET6 */
	uint8_t listener;
};

struct flow {
	struct flow_key key;
	uint8_t laddr[16]; /* local address the client sent to (IP_PKTINFO) */
	uint8_t flags;
	uint8_t edge; /* FLOW_E_*: what the edge learnt about the source's cookies */
	uint16_t gen; /* bumped on every reuse, guards stale completions */
	uint16_t backend;
	uint16_t up_port; /* upstream socket's local port, host order */
	int32_t fd;       /* upstream socket, connected to the backend */
	uint32_t hnext;   /* hash chain */
	uint32_t uprev, unext; /* unconfirmed list, oldest first (eviction order) */
	uint32_t created; /* seconds, loop clock */
	uint32_t last_rx; /* seconds, last datagram either way */
	uint16_t init_ds; /* deciseconds, mod 2^16 (109 min; checked every second): when the
			   * pending initiation was sent */
	uint8_t quiet;    /* expiry scans (about seconds) since the backend last sent here; saturates */
	uint8_t pad;
	uint32_t srv_index; /* the backend session's index, when FLOW_F_INDEXED */
	uint32_t pkts_in, pkts_out; /* in = client->backend; wrap after 2^32 (display only) */
	uint64_t bytes_in, bytes_out;
};
/* The 128-byte budget per flow: this, its hash bucket (at most 2 per flow)
 * and its session-index slots (srvidx.h, at most 4 per flow). */
_Static_assert(sizeof(struct flow) <= 104, "flow state budget: 128 bytes with its buckets");

struct flow_table {
	struct flow *flows;
	uint32_t *buckets;
	uint32_t mask;
	uint32_t cap, count, unconfirmed;
	uint32_t free_head;
	uint32_t uhead, utail; /* unconfirmed list */
	uint32_t hand;         /* expiry clock hand */
	uint32_t *by_port;     /* upstream port -> flow index + 1 (each snat socket has its own port) */
	uint8_t key[16];       /* SipHash key, random per start */
};

int flow_table_init(struct flow_table *ft, uint32_t cap);
void flow_table_free(struct flow_table *ft);
uint32_t flow_hash(const struct flow_table *ft, const struct flow_key *k);
struct flow *flow_lookup(struct flow_table *ft, const struct flow_key *k, uint32_t hash);
/* Insert a new flow (caller checked it is absent). NULL when full: then
 * flow_victim() names the flow that may be evicted (never a confirmed one). */
struct flow *flow_insert(struct flow_table *ft, const struct flow_key *k, uint32_t hash,
			 uint32_t now);
struct flow *flow_victim(struct flow_table *ft);
/* The client's address as a sockaddr (for replies and for display). */
socklen_t flow_client_sa(const struct flow_key *k, union wglb_sa *sa);
void flow_remove(struct flow_table *ft, struct flow *f);
/* The flow's upstream socket now has local port `port` (host order);
 * indexed for flow_by_port unless the flow is FLOW_F_PRESERVED (set the
 * flag first). */
void flow_set_port(struct flow_table *ft, struct flow *f, uint16_t port);
/* The flow whose upstream socket has this local port, or NULL: joins a
 * backend's report of its peers' endpoints to flows in O(1). */
struct flow *flow_by_port(struct flow_table *ft, uint16_t port);
/* A FLOW_F_PRESERVED flow of k's address and port on any of the first
 * n_listeners listeners (k->listener ignored), or NULL: such a flow's
 * socket holds that address and port on this host. */
struct flow *flow_find_preserved(struct flow_table *ft, const struct flow_key *k,
				 unsigned n_listeners);
void flow_confirm(struct flow_table *ft, struct flow *f);
/* A confirmed flow loses its confirmation and its proof (it must prove
 * receipt anew, at its next handshake): it goes first in eviction order. */
void flow_demote(struct flow_table *ft, struct flow *f);
static inline uint32_t flow_index(const struct flow_table *ft, const struct flow *f)
{
	return (uint32_t)(f - ft->flows);
}
/* Visit up to budget slots from the clock hand, calling cb for each used
 * flow; cb may flow_remove() it (idle expiry). */
typedef void (*flow_visit_fn)(struct flow *f, void *ctx);
void flow_scan(struct flow_table *ft, uint32_t budget, flow_visit_fn cb, void *ctx);

#endif
