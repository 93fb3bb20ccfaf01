/* SPDX-License-Identifier: MIT */
/*
 * WireGuard's cross-platform configuration protocol (UAPI), as wireguard-go
 * serves it on /var/run/wireguard/IFNAME.sock: wgdev.h's questions and
 * changes, made to a userspace interface.
 */
#ifndef WGLB_UAPI_H
#define WGLB_UAPI_H

#include "wglb/wgdev.h"

#include <stddef.h>
#include <stdint.h>

/* As wgdev_conf(), wgdev_set_fwmark(), wgdev_peers(), wgdev_rehandshake(). */
int uapi_conf(const char *ifname, struct wgdev_conf *conf);
int uapi_set_fwmark(const char *ifname, uint32_t mark);
int uapi_peers(const char *ifname, struct wgdev_peer *peers, int max);
int uapi_rehandshake(const char *ifname, struct wgdev_move *mv, int n);

/* The device's listen port and fwmark from a `get=1` reply (wireguard-go
 * omits either when it is 0). 0, or -EPROTO for a value that is not a
 * number in range. */
int uapi_parse_conf(const char *reply, struct wgdev_conf *conf);
/* The parsers behind them, pure (they cut reply up with strtok_r), for tests
 * and fuzzing. Peers from a `get=1` reply: the count kept (at most max). */
int uapi_parse_peers(char *reply, struct wgdev_peer *peers, int max);
/* From a `get=1` reply (not changed), the one `set=1` request that
 * removes each peer of mv[0..n) and re-adds it exactly as it was, with its
 * endpoint and a keepalive of 1; each old keepalive goes to keepalive[i]
 * and mv[i].result is 0, or -ENOENT for a peer the reply does not have.
 * The request's length, 0 when no peer was found, -E2BIG or -ENOMEM. */
int uapi_readd_batch(const char *reply, struct wgdev_move *mv, int n, char *req, size_t cap,
		     char (*keepalive)[16]);
/* The same for one peer whose key is hex: the length, -ENOENT or -E2BIG. */
int uapi_readd_request(const char *reply, const char *hex, const char *endpoint, char *req,
		       size_t cap, char keepalive[16]);

#endif
