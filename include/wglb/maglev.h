/* SPDX-License-Identifier: MIT */
/*
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016), weighted as in
 * Katran. The builder is a pure function; the hashes are fixed and
 * documented (README "Backend choice") so that a restarted wglb and both
 * members of a pair choose the same backend for the same client.
 */
#ifndef WGLB_MAGLEV_H
#define WGLB_MAGLEV_H

#include <stddef.h>
#include <stdint.h>

#define MAGLEV_SIZE  65537u /* prime, as the paper recommends (M >> 100 N) */
#define MAGLEV_EMPTY 0xffffu

struct maglev_input {
	uint64_t offset_hash; /* from maglev_backend_hash() */
	uint64_t skip_hash;
	uint32_t weight; /* 0 = not in the table */
	uint16_t id;     /* value stored in the table */
};

/* Fill table[0..size) (size prime) with ids. All MAGLEV_EMPTY when no input
 * has a weight. 0 or -ENOMEM / -EINVAL. */
int maglev_build(const struct maglev_input *in, size_t n, uint16_t *table, size_t size);

/* The backend's permutation seeds: SipHash-2-4 of its name under two fixed keys. */
void maglev_backend_hash(const char *name, uint64_t *offset, uint64_t *skip);

/* The client's slot seed: SipHash-2-4 under a fixed key of
 * family (1 byte: 4 or 6) || address (4 or 16 bytes) || port (2 bytes, big-endian). */
uint64_t maglev_client_hash(int family, const uint8_t *addr, uint16_t port_be);

#endif
