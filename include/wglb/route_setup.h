/* SPDX-License-Identifier: MIT */
/*
 * A backend's half of client address preservation: wglb sends each
 * client's datagrams from the client's own address, so this server's
 * WireGuard replies must go back through the balancer, and nothing else
 * of its traffic may change. WireGuard's own packets carry a mark; a
 * policy rule sends marked packets to a table whose default route is the
 * balancer; the interface facing the balancer loosens its reverse-path
 * filter (IPv4 only; IPv6 has none) so that client sources arriving from
 * the balancer are accepted. wg-health --route-setup / --route-undo /
 * --route-check do and show this, and its health answers fail while it is
 * not in place (a server that would answer clients directly must not get
 * them).
 *
 * Several balancers at once (ECMP): each sends to an address of its own on
 * this server (from), and the rule becomes "from FROM fwmark MARK lookup
 * TABLE", one table per balancer. WireGuard answers from the address a
 * peer's packets last arrived on (the kernel's endpoint source, wireguard-
 * go's sticky sockets), so each reply leaves via the balancer that holds
 * the client's flow now.
 */
#ifndef WGLB_ROUTE_SETUP_H
#define WGLB_ROUTE_SETUP_H

#include "wglb/wgdev.h"

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RSETUP_MARK      0xca6cu /* 51820 */
#define RSETUP_TABLE     51820u
/* rp_filter.IFNAME: the value before setup. Not under /run/wg-health:
 * that is wg-health.service's RuntimeDirectory, which systemd removes when
 * the service stops, and undo would find nothing to restore. */
#define RSETUP_STATE_DIR "/var/lib/wg-health"
#define RSETUP_WHY_MAX   384 /* a health answer's reason */

struct rsetup {
	const char *device;  /* the WireGuard interface */
	int family;          /* the balancer's address family */
	uint8_t via[16];     /* the balancer's address, 4 or 16 bytes */
	char via_str[INET6_ADDRSTRLEN];
	uint32_t mark, table;
	bool has_from;       /* the rule selects by source address too */
	uint8_t from[16];    /* this server's address that balancer sends to */
	char from_str[INET6_ADDRSTRLEN];
	const char *state_dir;
};

/* Fill rs for the balancer at via ("10.0.0.5", "fd00::5"). mark and table
 * must not be 0, table not one of the kernel's own (253-255). 0 or -EINVAL. */
int rsetup_init(struct rsetup *rs, const char *device, const char *via, uint32_t mark,
		uint32_t table, const char *state_dir);
/* Select by source too: from is this server's address, of via's family,
 * that the balancer sends to. 0 or -EINVAL. */
int rsetup_from(struct rsetup *rs, const char *from);

/* Put everything in place, or leave what already is; one line to out for
 * each thing done or found in place, a message naming what failed to
 * stderr. Refuses (-EEXIST) a device that already has another nonzero
 * fwmark. 0 or -errno. */
int rsetup_setup(const struct rsetup *rs, FILE *out);
/* Take it away again: the device's mark (only if it is ours), the rule,
 * the table's default route, and (IPv4) each rp_filter saved in the state
 * dir, by the interface its file names: no route to the balancer needed.
 * Idempotent. 0 or -errno. */
int rsetup_undo(const struct rsetup *rs, FILE *out);
/* Report each part: 0 all in place, 1 something missing, -errno when it
 * could not be asked. */
int rsetup_check(const struct rsetup *rs, FILE *out);

/* The health check's part, cheap (the caller has read the device's conf
 * already: conf_err 0 and its fwmark, or the -errno of that read; then one
 * route lookup): WireGuard's packets are marked with the mark and marked
 * packets leave via the balancer. 0, or -1 with the reason for the 503 in
 * why (RSETUP_WHY_MAX bytes). */
int rsetup_verify(const struct rsetup *rs, int conf_err, uint32_t fwmark, char *why, size_t size);

#endif
