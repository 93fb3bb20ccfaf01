/* SPDX-License-Identifier: MIT */
/*
 * Send groups: a batch's datagrams for one flow and direction go out in
 * one send. Equal-sized datagrams (all but the last) ride one UDP GSO
 * send (UDP_SEGMENT), so the kernel builds one route and one socket
 * round for the lot. Groups are prepared at the end of each batch; the
 * buffers return to the ring when the send completes.
 */
#ifndef WGLB_TX_H
#define WGLB_TX_H

#include "wglb/addr.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define TX_GSO_MAX 64 /* datagrams per group: UDP_MAX_SEGMENTS of kernels before 6.9 */

struct txgroup {
	struct msghdr msg;
	/* One iovec per run of datagrams that lie back to back in one buffer
	 * (a coalesced receive's segments), one buffer hold each. */
	struct iovec iov[TX_GSO_MAX];
	union wglb_sa name;
	_Alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(struct in6_pktinfo)) +
					  CMSG_SPACE(sizeof(uint16_t))];
	uint16_t bids[TX_GSO_MAX];
	uint32_t flow;
	uint32_t bytes;
	uint32_t next; /* free list */
	int fd;
	uint16_t seg; /* size of every datagram but the last */
	uint16_t backend;
	uint8_t n;    /* iovecs */
	uint8_t segs; /* datagrams */
	uint8_t pi_len; /* control bytes before UDP_SEGMENT: the pktinfo, if any */
	uint8_t to_client;
	uint8_t sealed; /* a shorter datagram ended the run: no more appends */
	uint8_t listener;
	uint8_t own; /* wglb's own reply (a cookie), not a forwarded datagram */
};

struct flow;
struct flow_key;
struct loop;

struct flow_table;
struct tx {
	const struct flow_table *ft; /* the flows it sends for (per-flow group slots) */
	unsigned op;                 /* the loop op of its sends */
	struct txgroup *g;
	uint32_t ng, free_head;
	uint32_t *open; /* groups opened in this batch, in order */
	uint32_t n_open;
	uint32_t *by_flow[2]; /* per flow and direction: open group + 1, or 0 */
	bool gso_off[2];      /* the kernel refused GSO on this path (-EIO): plain sends */
	uint32_t reply_open;  /* the open group of wglb's own replies + 1, or 0 */
	uint32_t n_reply;     /* groups wglb's own replies hold (at most TX_REPLY_GROUPS) */
};

/* Groups for the flows of ft, whose sends complete under loop op op. */
int tx_init(struct tx *t, const struct flow_table *ft, unsigned op);
void tx_fini(struct tx *t);
/* Queue a datagram (at p, inside buffer bid, which the send holds) for the
 * flow's backend or its client. */
void tx_queue(struct tx *t, struct loop *l, struct flow *f, bool to_client, unsigned bid,
	      uint8_t *p, unsigned len);
/* Queue wglb's own reply (at p, in buffer bid) to a client that need have
 * no flow, from the local address laddr it sent to (wildcard listeners).
 * The replies to one receive (a GRO train) share one GSO send. 0, or
 * -ENOBUFS when the groups replies may use are all taken: forwarding
 * keeps the rest. */
int tx_reply(struct tx *t, struct loop *l, const struct flow_key *k, const uint8_t laddr[16],
	     unsigned bid, uint8_t *p, unsigned len);
/* Prepare the sends of every open group (end of a batch). */
void tx_flush(struct tx *t, struct loop *l);
/* Hand everything queued to the kernel now: before closing a socket, so
 * that a prepared send cannot meet a reused descriptor number. */
void tx_sync(struct tx *t, struct loop *l);
/* A send completed: count it, let go of its buffers. The backend that
 * refused it (ICMP port unreachable), or -1. */
int tx_done(struct tx *t, struct loop *l, uint32_t group, int res);

#endif
