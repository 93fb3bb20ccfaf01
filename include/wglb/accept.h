/* SPDX-License-Identifier: MIT */
/*
 * wg-health's admission of TCP connections: which interface a connection
 * arrived on (a WireGuard interface means a VPN client, never the
 * balancer), which source it counts against (an IPv4 address, an IPv6
 * /64: one host's allocation), and, when the table is full, which
 * connection makes room. acc_admit is a pure function, tested as a table.
 */
#ifndef WGLB_ACCEPT_H
#define WGLB_ACCEPT_H

#include "wglb/addr.h"

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#define ACC_KEY_LEN 9 /* family byte + an IPv4 address or an IPv6 /64 */

enum {
	ACC_F_PROBER = 1U << 0,  /* from a --prober prefix: never shed */
	ACC_F_REQUEST = 1U << 1, /* sent a valid request line: shed after idle ones */
};

struct acc_slot {
	uint8_t key[ACC_KEY_LEN];
	uint8_t flags;
	uint64_t born; /* ms, monotonic: the oldest of a source goes first */
};

enum acc_verdict {
	ACC_ADMIT,         /* there is room */
	ACC_SHED,          /* room made by closing *victim */
	ACC_REFUSE_SOURCE, /* the source already holds per_src */
	ACC_REFUSE_FULL,   /* full, and no one holds more than the newcomer's source */
};

/* The source a peer address counts against: IPv4 (and IPv4-mapped IPv6)
 * by address, IPv6 by its /64. */
void acc_key(const union wglb_sa *sa, uint8_t key[ACC_KEY_LEN]);
bool acc_is_prober(const struct wglb_cidr *probers, unsigned n, const union wglb_sa *sa);

/* May nc join slots[0..n) (at most max, per_src per source)? On ACC_SHED,
 * *victim is the connection to close first: never a prober's; an idle one
 * before one that sent its request line; from the source holding the most
 * (ties: the one with the oldest connection); that source's oldest. A
 * newcomer whose source holds as many as that source is refused instead,
 * unless it is a prober. */
enum acc_verdict acc_admit(const struct acc_slot *slots, unsigned n, unsigned max,
			   unsigned per_src, const struct acc_slot *nc, unsigned *victim);

/* Ask the kernel to record each connection's ingress interface (IP_PKTINFO,
 * and IPV6_RECVPKTINFO for IPv6 sockets). 0 or -errno. */
int acc_listen_opts(int lfd, int family);
/* The interface an accepted connection arrived on (IP_PKTOPTIONS /
 * IPV6_2292PKTOPTIONS). 0, -ENOENT when the kernel kept none, or -errno. */
int acc_ingress_ifindex(int fd, const union wglb_sa *peer, int *ifindex);

/* Which interfaces are WireGuard's: the --device, a kernel "wireguard" link
 * or a wireguard-go one (its UAPI socket). Cached per ifindex for a second:
 * the kernel does not reuse an ifindex for another device soon. */
#define ACC_IFCACHE 16
struct acc_ifcache {
	struct {
		int ifindex;
		bool tunnel;
		uint64_t until_ms;
	} e[ACC_IFCACHE];
	unsigned next;
};
/* 0 with *tunnel set, or -errno (the interface is gone: refuse). */
int acc_ingress_is_tunnel(struct acc_ifcache *c, const char *device, int ifindex, uint64_t now_ms,
			  bool *tunnel);

#endif
