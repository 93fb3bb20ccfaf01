/* SPDX-License-Identifier: MIT */
/*
 * WireGuard's cross-platform configuration protocol (UAPI), as wireguard-go
 * serves it on /var/run/wireguard/IFNAME.sock: wgdev.h's three questions,
 * asked of a userspace interface.
 */
#ifndef WGLB_UAPI_H
#define WGLB_UAPI_H

#include "wglb/wgdev.h"

#include <stdint.h>

/* As wgdev_listen_port(), wgdev_peers(), wgdev_rehandshake(). */
int uapi_listen_port(const char *ifname);
int uapi_peers(const char *ifname, struct wgdev_peer *peers, int max);
int uapi_rehandshake(const char *ifname, const uint8_t pub[32], const char *endpoint);

#endif
