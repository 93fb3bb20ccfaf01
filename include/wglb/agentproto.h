/* SPDX-License-Identifier: MIT */
/*
 * The balancer <-> backend agent channel (instant failover). One line per
 * message: "v1 TIME_MS NONCE WORDS... MAC", where MAC is libsodium's
 * crypto_auth (HMAC-SHA-512-256) under a shared key over everything before
 * it, NONCE is 16 random hex digits, TIME_MS the sender's Unix time in ms.
 * The receiver refuses a bad MAC, a timestamp outside +-30 s, one from
 * before the receiver started (a capture replayed after a restart), and a
 * nonce it has seen in the window (replay). Requests name their target
 * agent ("to ADDR:PORT ..."), so one captured for one server cannot be
 * replayed to another sharing the key. Pure code: unit-tested and fuzzed.
 */
#ifndef WGLB_AGENTPROTO_H
#define WGLB_AGENTPROTO_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AP_KEY_LEN    crypto_auth_KEYBYTES /* 32 */
#define AP_MAX_LINE   512
#define AP_MAX_WORDS  6
#define AP_SKEW_MS    30000
#define AP_WINDOW_MS  (2 * AP_SKEW_MS) /* a nonce must be remembered this long */
#define AP_REPLAY_N   16384 /* nonces: the whole window at 270 requests/s (wglb sends <= 200) */

struct ap_key {
	uint8_t k[AP_KEY_LEN];
};

/* Read a key file: 32 bytes as 64 hex digits or 44 base64 characters (wg genkey). */
int ap_key_load(const char *path, struct ap_key *key);

/* Write "v1 TIME NONCE words... MAC\n" into out (AP_MAX_LINE); the nonce
 * chosen goes to nonce (17 bytes) when not NULL. Returns the length or -ENOSPC. */
int ap_sign(const struct ap_key *key, uint64_t now_ms, const char *words, char *out, size_t size,
	    char *nonce);

/* AP_REPLAY also when the memory is full of nonces still inside the window
 * (more requests than it can remember: refusing is safe, forgetting is not). */
enum ap_verdict { AP_OK, AP_BAD_FORMAT, AP_BAD_MAC, AP_STALE, AP_REPLAY };

struct ap_replay {
	uint64_t nonce[AP_REPLAY_N];
	uint64_t when[AP_REPLAY_N];
	unsigned next;
	uint64_t not_before_ms; /* the receiver's start: older requests are refused */
};

struct ap_msg {
	char buf[AP_MAX_LINE];
	const char *word[AP_MAX_WORDS];
	int n;
	uint64_t time_ms, nonce;
};

/* Check a received line (without its newline). On AP_OK msg->word[] holds
 * the words between the nonce and the MAC. replay may be NULL (replies). */
enum ap_verdict ap_verify(const struct ap_key *key, struct ap_replay *replay, uint64_t now_ms,
			  const char *line, size_t len, struct ap_msg *msg);
const char *ap_verdict_name(enum ap_verdict v);

#endif
