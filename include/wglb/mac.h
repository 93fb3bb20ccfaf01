/* SPDX-License-Identifier: MIT */
/*
 * WireGuard's mac1 check. mac1 = BLAKE2s-128 keyed with
 * BLAKE2s-256("mac1----" || receiver's public key), over the message up to
 * mac1. Anyone with the servers' *public* key can check it, so wglb drops
 * handshakes that no WireGuard client built for these servers, before they
 * create any state. BLAKE2s comes from libb2 (libsodium has none).
 */
#ifndef WGLB_MAC_H
#define WGLB_MAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mac1_key {
	uint8_t k[32];
};

/* BLAKE2s-256(label || public key), the way WireGuard derives its mac1
 * ("mac1----") and cookie ("cookie--") keys. 0 or -EINVAL. */
int mac_label_key(const char label[8], const char *b64, uint8_t out[32]);
/* Derive the mac1 key from a base64 WireGuard public key. 0 or -EINVAL. */
int mac1_key_from_base64(const char *b64, struct mac1_key *out);
/* Check an initiation (148 bytes) or response (92 bytes): true when valid. */
bool mac1_valid(const struct mac1_key *key, const uint8_t *msg, size_t len);

#endif
