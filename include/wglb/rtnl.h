/* SPDX-License-Identifier: MIT */
/* rtnetlink through libmnl: the questions wg-health asks the kernel about
 * links and routes, and the policy routing --route-setup puts in place.
 * Addresses are raw: 4 bytes for AF_INET, 16 for AF_INET6. */
#ifndef WGLB_RTNL_H
#define WGLB_RTNL_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

/* Look the interface up by name (RTM_GETLINK with IFLA_IFNAME).
 * 0 with *up set (IFF_UP), -ENODEV when it does not exist, or -errno. */
int nl_link_state(const char *ifname, bool *up);
/* The name of link ifindex and whether its kind is the kernel's
 * "wireguard". 0, -ENODEV when there is none, or -errno. */
int nl_link_by_index(int ifindex, char name[IFNAMSIZ], bool *wireguard);

/* What the kernel answered for a route lookup. */
struct nl_route {
	int family;
	bool found;
	uint8_t type;    /* RTN_UNICAST, RTN_LOCAL, RTN_UNREACHABLE, ... */
	uint8_t dst_len; /* the route's prefix length */
	uint32_t table;  /* the table the route came from */
	int oif;         /* 0: none */
	bool has_gw;
	uint8_t gw[16];
};

/* The route a packet from this host to dst takes, carrying mark (0: no
 * mark) as WireGuard's own packets do (RTM_GETROUTE, RTA_MARK), from the
 * local address src (NULL: the kernel's choice; RTA_SRC).
 * 0, or -errno (-ENETUNREACH when there is no route). */
int nl_route_get(int family, const void *dst, const void *src, uint32_t mark, struct nl_route *out);
/* Table T's default route (a dump of that table). 0, -ENOENT when it has
 * none, or -errno. */
int nl_route_table_default(int family, uint32_t table, struct nl_route *out);
/* Add or replace "default via gw [dev oif] table T" (oif 0: the kernel
 * finds it). 0 or -errno. */
int nl_route_default_set(int family, const void *gw, int oif, uint32_t table);
/* Remove "default via gw table T". 0, -ESRCH when there is none, or -errno. */
int nl_route_default_del(int family, const void *gw, uint32_t table);
/* How many rules "[from SRC] fwmark MARK lookup TABLE" (no other
 * selector; src NULL: no source selector, else a host address) family has. */
int nl_rule_count(int family, const void *src, uint32_t mark, uint32_t table);
/* Add one such rule (priority chosen by the kernel). 0 or -errno. */
int nl_rule_add(int family, const void *src, uint32_t mark, uint32_t table);
/* Remove one such rule. 0, -ENOENT when there is none, or -errno. */
int nl_rule_del(int family, const void *src, uint32_t mark, uint32_t table);

#endif
