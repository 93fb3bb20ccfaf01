/* SPDX-License-Identifier: MIT */
/*
 * The kernel fast path (lb/fastpath/): a BPF program at tc ingress that
 * forwards confirmed flows' WireGuard transport datagrams itself, from a
 * map of flows that only wglb writes. The flow table stays the truth; the
 * map is a cache of it (docs/fast-path.md).
 *
 * Built with -Dfast_path (clang, bpftool, libbpf); without it every
 * function here is still there and returns -ENOTSUP, so a caller needs no
 * #if. Functions return 0 or -errno. One struct fastpath per process:
 * open, attach, detach and close from one thread; the flow and event
 * functions from any thread at once (each is bpf() system calls on the
 * maps' descriptors, which the kernel serialises, and reads nothing the
 * others write).
 */
#ifndef WGLB_FASTPATH_H
#define WGLB_FASTPATH_H

#include <stdbool.h>
#include <stdint.h>

#include "wglb/addr.h"

struct fastpath;

struct fastpath_opts {
	/* Tests only: rewrite, then return FASTPATH_RET_REWRITTEN instead of
	 * looking up the next hop and redirecting (BPF_PROG_TEST_RUN has no
	 * route to look up). Never set in the daemon. */
	bool fib_bypass;
};

/* The program's verdict under fib_bypass after a rewrite (not a TC_ACT_*). */
#define FASTPATH_RET_REWRITTEN 0x7f57

/* One flow as the data plane sees it: all four addresses of one family,
 * ports included. client -> listen becomes upstream -> backend; backend ->
 * upstream becomes listen -> client. */
struct fastpath_flow {
	union wglb_sa client;   /* the client's address and port */
	union wglb_sa listen;   /* where the client sent to (the listener's address) */
	union wglb_sa upstream; /* the flow's upstream socket's own address and port */
	union wglb_sa backend;  /* the backend's address and port */
	bool confirmed;         /* false: the entry exists and the program ignores it */
};

/* What the program forwarded in one direction since the entry was made. */
struct fastpath_counters {
	uint64_t packets; /* WireGuard datagrams (a GRO train counts its segments) */
	uint64_t bytes;   /* their UDP payload */
	uint64_t last_ns; /* CLOCK_MONOTONIC ns of the last one, jiffy grain; 0: none yet */
};

/* The program's own events: datagrams it would have forwarded but passed
 * up (no route, no neighbour yet, over the MTU, forwarding off), and those
 * it dropped because a helper failed half way through a rewrite. */
struct fastpath_events {
	uint64_t fib_failed, no_neigh, frag_needed, fwd_disabled, rewrite_failed;
};

/* Open and load the program and its maps (root or CAP_BPF + CAP_NET_ADMIN).
 * opts may be NULL. -ENOTSUP when built without the fast path. */
int fastpath_open(struct fastpath **out, const struct fastpath_opts *opts);
/* Detach from every interface it was attached to, then free. NULL is fine. */
void fastpath_close(struct fastpath *fp);

/* Attach at tc ingress of ifname (clsact, created if missing), or take it
 * off. -ENODEV: no such interface; -EOPNOTSUPP: not an Ethernet device
 * (the program reads an Ethernet header); -EEXIST: attached already. */
int fastpath_attach(struct fastpath *fp, const char *ifname);
int fastpath_detach(struct fastpath *fp, const char *ifname);
/* Take off a filter of ours that no struct fastpath holds: one a wglb
 * left attached when it died. Needs no program. -ENOENT when none. */
int fastpath_clear(const char *ifname);

/* Insert or update both directions of a flow; an update keeps what the
 * entries counted. -EAFNOSUPPORT: the four addresses are not of one
 * family; -E2BIG: the map is full (it holds 32768 flows). */
int fastpath_flow_put(struct fastpath *fp, const struct fastpath_flow *f);
/* Delete both directions; -ENOENT when neither was there. */
int fastpath_flow_del(struct fastpath *fp, const struct fastpath_flow *f);
/* What each direction counted; -ENOENT when the flow has no entries. */
int fastpath_flow_counters(struct fastpath *fp, const struct fastpath_flow *f,
			   struct fastpath_counters *to_backend,
			   struct fastpath_counters *to_client);

int fastpath_events(struct fastpath *fp, struct fastpath_events *out);

/* The program's descriptor, for BPF_PROG_TEST_RUN in the tests. */
int fastpath_prog_fd(const struct fastpath *fp);

#endif
