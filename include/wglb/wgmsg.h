/* SPDX-License-Identifier: MIT */
/*
 * WireGuard message classifier: the only code that looks inside datagrams.
 * Pure functions, no state; also used by the bench tools and the fuzzers.
 */
#ifndef WGLB_WGMSG_H
#define WGLB_WGMSG_H

#include <stddef.h>
#include <stdint.h>

/* Wire sizes from the WireGuard paper / wireguard-go (device/noise-protocol.go). */
#define WG_INITIATION_SIZE 148
#define WG_RESPONSE_SIZE   92
#define WG_COOKIE_SIZE     64
#define WG_TRANSPORT_MIN   32 /* header 16 + empty payload + 16-byte tag (keepalive) */

#define WG_INIT_MAC1_OFF 116 /* mac1 covers bytes [0, 116) of an initiation */
#define WG_RESP_MAC1_OFF 60  /* mac1 covers bytes [0, 60) of a response */
#define WG_MAC_LEN       16

enum wg_type {
	WG_T_INITIATION = 1,
	WG_T_RESPONSE = 2,
	WG_T_COOKIE = 3,
	WG_T_TRANSPORT = 4,
};

/* Why a datagram is not a well-formed WireGuard message. Order is ABI for counters. */
enum wg_drop {
	WG_DROP_NONE = 0,
	WG_DROP_TOO_SHORT,     /* fewer than 4 bytes: no type word */
	WG_DROP_BAD_RESERVED,  /* bytes 1..3 not zero */
	WG_DROP_UNKNOWN_TYPE,  /* type byte not 1..4 */
	WG_DROP_BAD_LENGTH,    /* handshake message of the wrong size, transport < 32 */
	WG_DROP__COUNT,
};

struct wg_info {
	enum wg_type type;
	uint32_t sender;   /* initiation, response: sender index; else 0 */
	uint32_t receiver; /* response, cookie, transport: receiver index; else 0 */
};

/* Classify one datagram. Returns WG_DROP_NONE and fills *info, or the drop reason. */
enum wg_drop wgmsg_classify(const uint8_t *buf, size_t len, struct wg_info *info);

const char *wgmsg_drop_name(enum wg_drop reason);
const char *wgmsg_type_name(enum wg_type type);

static inline uint32_t wgmsg_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif
