/* SPDX-License-Identifier: MIT */
/*
 * The fast path's maps as both sides see them: the BPF program
 * (fastpath.bpf.c) and its loader (fastpath.c). Types only, in the
 * kernel's <linux/types.h> vocabulary so that clang -target bpf reads it
 * too. Nothing outside lb/fastpath/ includes it; callers use
 * wglb/fastpath.h.
 */
#ifndef WGLB_FASTPATH_MAPS_H
#define WGLB_FASTPATH_MAPS_H

#include <linux/types.h>

/* Address families as the key stores them: Linux's AF_INET and AF_INET6
 * (fastpath.c asserts they agree; the BPF side has no <sys/socket.h>). */
#define FP_AF_INET  2
#define FP_AF_INET6 10

/* A flow direction as it arrives: the datagram's own 5-tuple (UDP). */
struct fp_key {
	__u8 family; /* FP_AF_INET or FP_AF_INET6 */
	__u8 pad[3]; /* zero: the key is hashed whole */
	__be16 sport;
	__be16 dport;
	__u8 saddr[16]; /* IPv4 in the first 4 bytes, the rest zero */
	__u8 daddr[16];
};

#define FP_F_CONFIRMED (1U << 0) /* forward; without it the entry is ignored */

/* What the datagram leaves with, and what the program counted. The loader
 * writes the first four fields; only the program writes the counters
 * (the loader carries them over when it replaces an entry). The address
 * family is the key's: the fast path never changes it. Each pair
 * (sport, dport) and (saddr, daddr) is laid out like the key's so that one
 * checksum difference covers both. */
struct fp_val {
	__u32 flags; /* FP_F_* */
	__be16 sport;
	__be16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
	__u64 packets; /* WireGuard datagrams (each segment of a GRO train) */
	__u64 bytes;   /* their UDP payload */
	__u64 last_ns; /* bpf_ktime_get_coarse_ns(): CLOCK_MONOTONIC, jiffy grain */
};

#define FP_MAX_FLOWS 65536 /* directions: two per flow */

/* Why the program did not forward what it otherwise would have, or dropped
 * one it had begun to rewrite (a per-CPU array, indexed by these). Only the
 * uncommon paths count: forwarded datagrams are in the flows' own counters. */
enum fp_event {
	FP_EV_FIB_FAILED = 0, /* no route, local destination, blackhole...: passed up */
	FP_EV_FIB_NO_NEIGH,   /* route but no neighbour entry yet: passed up */
	FP_EV_FIB_FRAG,       /* larger than the route's MTU: passed up */
	FP_EV_FWD_DISABLED,   /* forwarding off on the receiving interface: passed up */
	FP_EV_REWRITE_FAILED, /* a helper failed mid-rewrite: dropped, never passed up half done */
	FP_EV__COUNT,
};

/* What the program returns, under test only (rodata fib_bypass), after a
 * rewrite that skipped the FIB lookup and the redirect. Not a TC_ACT_*. */
#define FP_RET_REWRITTEN 0x7f57

#endif
