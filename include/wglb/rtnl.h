/* SPDX-License-Identifier: MIT */
/* rtnetlink through libmnl: the one question wg-health asks the kernel. */
#ifndef WGLB_RTNL_H
#define WGLB_RTNL_H

#include <stdbool.h>

/* Look the interface up by name (RTM_GETLINK with IFLA_IFNAME).
 * 0 with *up set (IFF_UP), -ENODEV when it does not exist, or -errno. */
int nl_link_state(const char *ifname, bool *up);


#endif
