/* SPDX-License-Identifier: MIT */
/*
 * The kernel's WireGuard generic-netlink family ("wireguard", version 1)
 * through libmnl: what wg-health's agent asks of a kernel interface.
 *
 * The message builders and the parser are pure, so unit tests compare the
 * builders byte for byte with what wireguard-tools' `wg` sends for the same
 * change (tests/unit/vectors/wgnl) and fuzz the parser. The builders follow
 * wg's order of attributes and its way of splitting a peer whose allowed
 * IPs do not fit one message (the rest follow under the same public key,
 * without WGPEER_F_REPLACE_ALLOWEDIPS).
 */
#ifndef WGLB_WGNL_H
#define WGLB_WGNL_H

#include "wglb/addr.h"
#include "wglb/wgdev.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds on what a dump may make us hold. */
#define WGNL_MAX_PEERS (1u << 20)
#define WGNL_MAX_AIPS (1u << 16) /* per peer */

struct wgnl_aip {
	uint16_t family; /* AF_INET or AF_INET6 */
	uint8_t cidr;
	uint8_t addr[16];
};

struct wgnl_peer {
	uint8_t pub[32];
	uint32_t flags; /* WGPEER_F_*: sent as given, never parsed */
	bool has_psk;
	uint8_t psk[32];
	union wglb_sa ep;   /* ep.sa.sa_family 0: no endpoint */
	int keepalive;       /* seconds; -1: not sent / not reported */
	int64_t handshake_s; /* parsed: last handshake, Unix seconds; 0 = never */
	uint64_t rx_bytes, tx_bytes; /* parsed */
	struct wgnl_aip *aips;
	size_t n_aips;
};

struct wgnl_device {
	int listen_port; /* -1 until reported */
	uint32_t fwmark; /* 0 until reported */
	struct wgnl_peer *peers;
	size_t n, cap;
};

/* Where the next WG_CMD_SET_DEVICE message resumes. Zero it to start. */
struct wgnl_cursor {
	size_t peer;
	size_t aip;
	bool in_aips; /* resuming inside peer's allowed IPs */
};

/* Each builder zeroes buf (size bytes) first; padding is part of the bytes. */
/* CTRL_CMD_GETFAMILY for "wireguard". Returns the message length. */
size_t wgnl_msg_family(void *buf, size_t size, uint32_t seq);
/* WG_CMD_GET_DEVICE dump of one interface. Returns the message length. */
size_t wgnl_msg_get(void *buf, size_t size, uint16_t family, uint32_t seq, const char *ifname);
/* WG_CMD_SET_DEVICE of the device's fwmark alone, as `wg set IF fwmark M`.
 * Returns the message length. */
size_t wgnl_msg_fwmark(void *buf, size_t size, uint16_t family, uint32_t seq, const char *ifname,
		       uint32_t mark);
/* The next WG_CMD_SET_DEVICE message for peers[] into buf (size bytes,
 * MNL_SOCKET_BUFFER_SIZE as wg uses): its length, 0 when everything has
 * been sent, or -E2BIG when one attribute cannot fit an empty message. */
long wgnl_msg_set(void *buf, size_t size, uint16_t family, uint32_t seq, const char *ifname,
		  const struct wgnl_peer *peers, size_t n, struct wgnl_cursor *cur);

/* The re-handshake's change for a peer as the kernel reported it, in one
 * WG_CMD_SET_DEVICE: out[0] removes the peer (dropping any session),
 * out[1] re-adds it as it was with endpoint ep and a keepalive of 1 (aips
 * shared with old). Returns the operator's keepalive, to restore after. */
int wgnl_readd(const struct wgnl_peer *old, const union wglb_sa *ep, struct wgnl_peer out[2]);

/* Feed one datagram of a WG_CMD_GET_DEVICE answer into dev (coalescing a
 * peer split over messages). >0: more to read; 0: complete; <0: -errno
 * (an error from the kernel or a malformed message). */
int wgnl_parse(const void *buf, size_t len, uint32_t seq, uint32_t portid,
	       struct wgnl_device *dev);
void wgnl_device_init(struct wgnl_device *dev);
void wgnl_device_free(struct wgnl_device *dev);

/* Read the whole interface (peers with keys, endpoints, keepalives,
 * allowed IPs). 0 or -errno; dev is initialised either way. */
int wgnl_get_device(const char *ifname, struct wgnl_device *dev);
/* As wgdev_conf(), wgdev_set_fwmark(), wgdev_peers(), wgdev_rehandshake(). */
int wgnl_conf(const char *ifname, struct wgdev_conf *conf);
int wgnl_set_fwmark(const char *ifname, uint32_t mark);
int wgnl_peers(const char *ifname, struct wgdev_peer *peers, int max);
int wgnl_rehandshake(const char *ifname, struct wgdev_move *mv, int n);

#endif
