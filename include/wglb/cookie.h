/* SPDX-License-Identifier: MIT */
/*
 * WireGuard's cookie mechanism at the edge (whitepaper 5.4.7), and when to
 * use it. Under load a WireGuard server answers an initiation that has no
 * valid mac2 with a cookie reply instead of doing work: the cookie is a
 * MAC of the sender's address under a secret R (rotated every 2 minutes),
 * sealed so that only the holder of the initiation's mac1 can open it. A
 * client that can read it retries with mac2 = MAC(cookie, message): proof
 * that it receives at the address it claims. wglb needs only the servers'
 * public key to do the same on their behalf, so a spoofed source never
 * creates state here and never reaches a backend while wglb is under load.
 *
 * Pure apart from the random secret and nonces; the caller passes the
 * clock. BLAKE2s comes from libb2, XChaCha20-Poly1305 from libsodium.
 */
#ifndef WGLB_COOKIE_H
#define WGLB_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COOKIE_SECRET_MS  120000 /* WireGuard's COOKIE_SECRET_MAX_AGE */
#define COOKIE_SRC_MAX    18     /* IPv6 address + port */
#define COOKIE_LOAD_MS    1000   /* "under load" lasts at least this long (WireGuard: 1 s) */

enum cookie_mode {
	COOKIE_AUTO,   /* ask for cookies only under load (default) */
	COOKIE_ALWAYS, /* every handshake without a valid mac2 gets a cookie reply */
	COOKIE_OFF,    /* never: handshakes pass on mac1 alone */
};

/* "auto", "always", "off"; NULL for anything else. */
const char *cookie_mode_name(enum cookie_mode m);

struct cookie_checker {
	uint8_t enc_key[32]; /* BLAKE2s-256("cookie--" || server public key) */
	uint8_t secret[32];  /* R */
	uint64_t secret_ms;  /* when R was drawn; 0 = never */
};

/* Derive the cookie key from the servers' base64 public key. 0 or -EINVAL. */
int cookie_init(struct cookie_checker *c, const char *server_pub_b64);
void cookie_fini(struct cookie_checker *c);

/* The bytes a cookie is bound to: the source address then its port
 * (network order). Returns their length. */
size_t cookie_source(int family, const uint8_t *addr, uint16_t port_be,
		     uint8_t out[COOKIE_SRC_MAX]);

/* True when the handshake message (initiation or response) carries a
 * valid mac2 for this source under the current secret. */
bool cookie_mac2_valid(const struct cookie_checker *c, uint64_t now_ms, const uint8_t *msg,
		       size_t len, const uint8_t *src, size_t src_len);

/* Build the 64-byte cookie reply to a handshake message from src. Draws a
 * new secret when the current one is older than 2 minutes. 0 or -EINVAL. */
int cookie_reply(struct cookie_checker *c, uint64_t now_ms, const uint8_t *msg, size_t len,
		 const uint8_t *src, size_t src_len, uint8_t out[64]);

/*
 * "Under load": the edge asks for cookies while new sources without proof
 * arrive faster than `rate` per second, or while unconfirmed flows fill
 * more than half of their share; once on, it stays on for COOKIE_LOAD_MS
 * after the last second that met the condition (WireGuard's own is
 * sticky for a second too).
 */
struct cookie_load {
	uint32_t rate;       /* unproven new sources per second that mean load */
	uint32_t count;      /* in the current window */
	uint64_t window_ms;  /* start of the current one-second window */
	uint64_t until_ms;   /* under load until then */
	uint64_t episodes;   /* times load started (stats) */
};

/* Count one datagram that would open a flow for an unproven source. */
void cookie_load_note(struct cookie_load *ld, uint64_t now_ms);
/* Pressure from the table itself (unconfirmed flows past half their cap). */
void cookie_load_pressure(struct cookie_load *ld, uint64_t now_ms);
bool cookie_under_load(const struct cookie_load *ld, uint64_t now_ms);

#endif
