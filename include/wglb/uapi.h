/* SPDX-License-Identifier: MIT */
/*
 * WireGuard's cross-platform configuration protocol (UAPI), as wireguard-go
 * serves it on /var/run/wireguard/IFNAME.sock: wgdev.h's three questions,
 * asked of a userspace interface.
 */
#ifndef WGLB_UAPI_H
#define WGLB_UAPI_H

#include "wglb/wgdev.h"

#include <stddef.h>
#include <stdint.h>

/* As wgdev_listen_port(), wgdev_peers(), wgdev_rehandshake(). */
int uapi_listen_port(const char *ifname);
int uapi_peers(const char *ifname, struct wgdev_peer *peers, int max);
int uapi_rehandshake(const char *ifname, const uint8_t pub[32], const char *endpoint);

/* The parsers behind them, pure (they cut reply up with strtok_r), for tests
 * and fuzzing. Peers from a `get=1` reply: the count kept (at most max). */
int uapi_parse_peers(char *reply, struct wgdev_peer *peers, int max);
/* From a `get=1` reply, the one `set=1` request that removes the peer whose
 * key is hex and re-adds it exactly as it was, with endpoint and a
 * keepalive of 1; its old
 * keepalive goes to keepalive. The request's length, -ENOENT, or -E2BIG. */
int uapi_readd_request(char *reply, const char *hex, const char *endpoint, char *req, size_t cap,
		       char keepalive[16]);

#endif
