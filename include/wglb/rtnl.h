/* SPDX-License-Identifier: MIT */
/* rtnetlink through libmnl: the questions wg-health asks the kernel about links. */
#ifndef WGLB_RTNL_H
#define WGLB_RTNL_H

#include <net/if.h>
#include <stdbool.h>

/* Look the interface up by name (RTM_GETLINK with IFLA_IFNAME).
 * 0 with *up set (IFF_UP), -ENODEV when it does not exist, or -errno. */
int nl_link_state(const char *ifname, bool *up);
/* The name of link ifindex and whether its kind is the kernel's
 * "wireguard". 0, -ENODEV when there is none, or -errno. */
int nl_link_by_index(int ifindex, char name[IFNAMSIZ], bool *wireguard);


#endif
