/* SPDX-License-Identifier: MIT */
/*
 * One WireGuard interface, whichever configuration interface serves it:
 * wireguard-go's UAPI socket (/var/run/wireguard/IFNAME.sock, uapi.h) when
 * it exists, else the kernel's generic netlink family (wgnl.h). This is
 * the choice wireguard-tools makes. Used by wg-health for its health check
 * and its agent commands. No shelling out to `wg`.
 */
#ifndef WGLB_WGDEV_H
#define WGLB_WGDEV_H

#include <stdint.h>

#define WGDEV_MAX_PEERS 16384

struct wgdev_peer {
	uint8_t pub[32];
	char endpoint[64];    /* "IP:PORT" or "[IP6]:PORT"; "" when none */
	uint64_t handshake_s; /* last handshake, Unix seconds; 0 = never */
	uint64_t rx_bytes, tx_bytes;
};

/* The interface's own settings that wg-health checks. */
struct wgdev_conf {
	int listen_port; /* 0: not listening */
	uint32_t fwmark; /* the mark on WireGuard's own packets; 0: none */
};

/* "uapi" or "kernel": which interface wgdev_* will use for ifname. */
const char *wgdev_kind(const char *ifname);
/* The listen port: >0 the port, 0 not listening, -errno when it cannot be
 * asked (ENOENT/EPROTONOSUPPORT: no such interface; EACCES/EPERM: no right). */
int wgdev_listen_port(const char *ifname);
/* The listen port and fwmark in one read. 0 or -errno, as above. */
int wgdev_conf(const char *ifname, struct wgdev_conf *conf);
/* Mark WireGuard's own packets with mark (0: no mark), so a policy rule
 * can route them (`wg set IF fwmark MARK`). 0 or -errno. */
int wgdev_set_fwmark(const char *ifname, uint32_t mark);
/* Fill peers[0..max). Returns the count or -errno. */
int wgdev_peers(const char *ifname, struct wgdev_peer *peers, int max);
/* A peer to point at a new endpoint and make initiate (wgdev_rehandshake). */
struct wgdev_move {
	uint8_t pub[32];
	char endpoint[64]; /* "IP:PORT" or "[IP6]:PORT" */
	int result;        /* out: 0, -ENOENT for an unknown peer, or -errno */
};

/* Point each peer of mv[0..n) at its endpoint and make it initiate a
 * handshake now: remove and re-add it (no stale session can swallow the
 * trigger) with a persistent keepalive, whose 0 -> 1 change sends at once,
 * then restore the operator's keepalive. One read of the interface and two
 * changes for the whole batch, however many peers. 0 when the interface
 * could be asked (each peer's outcome in its result), or -errno (then in
 * every result too). */
int wgdev_rehandshake(const char *ifname, struct wgdev_move *mv, int n);

#endif
