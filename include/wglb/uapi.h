/* SPDX-License-Identifier: MIT */
/*
 * WireGuard's cross-platform configuration protocol (UAPI), as wireguard-go
 * serves it on /var/run/wireguard/IFNAME.sock: list peers, and make one
 * peer start a handshake toward a given endpoint now. Used by wg-health's
 * agent for instant failover. No shelling out to `wg`.
 */
#ifndef WGLB_UAPI_H
#define WGLB_UAPI_H

#include <stddef.h>
#include <stdint.h>

#define UAPI_MAX_PEERS 4096

struct uapi_peer {
	uint8_t pub[32];
	char endpoint[64];   /* "" when none */
	uint64_t handshake_s; /* last handshake, Unix seconds; 0 = never */
};

/* The listen port: >0 the port, 0 not listening, -errno when the socket
 * cannot be asked (absent: a kernel interface; EACCES: unprivileged). */
int uapi_listen_port(const char *ifname);
/* Fill peers[0..max) from `get=1`. Returns the count or -errno. */
int uapi_peers(const char *ifname, struct uapi_peer *peers, int max);
/* Point the peer at endpoint and make it initiate a handshake now: remove
 * and re-add it (no stale session can swallow the trigger) with a
 * persistent keepalive, whose 0 -> N change sends at once, then restore
 * the operator's keepalive. 0, -ENOENT for an unknown peer, or -errno. */
int uapi_rehandshake(const char *ifname, const uint8_t pub[32], const char *endpoint);

#endif
