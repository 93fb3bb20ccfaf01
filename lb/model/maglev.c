// SPDX-License-Identifier: MIT
#include "wglb/maglev.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Fixed keys: changing them moves every client, so they are part of the
 * on-the-wire contract between the two members of a pair. */
static const uint8_t key_offset[16] = "wglb-maglev-off1";
static const uint8_t key_skip[16] = "wglb-maglev-skp1";
static const uint8_t key_client[16] = "wglb-maglev-cli1";

static uint64_t sip(const uint8_t key[16], const void *data, size_t len)
{
	uint8_t out[crypto_shorthash_siphash24_BYTES];
	uint64_t v = 0;

	crypto_shorthash_siphash24(out, data, len, key);
	for (int i = 7; i >= 0; i--)
		v = v << 8 | out[i]; /* little-endian, so the value is the same on any host */
	return v;
}

void maglev_backend_hash(const char *name, uint64_t *offset, uint64_t *skip)
{
	size_t len = strlen(name);

	*offset = sip(key_offset, name, len);
	*skip = sip(key_skip, name, len);
}

uint64_t maglev_client_hash(int family, const uint8_t *addr, uint16_t port_be)
{
	uint8_t buf[1 + 16 + 2];
	size_t alen = family == AF_INET6 ? 16 : 4;

	buf[0] = family == AF_INET6 ? 6 : 4;
	memcpy(buf + 1, addr, alen);
	memcpy(buf + 1 + alen, &port_be, 2);
	return sip(key_client, buf, 1 + alen + 2);
}

int maglev_build(const struct maglev_input *in, size_t n, uint16_t *table, size_t size)
{
	uint32_t *pos, *skip, *credit, max_w = 0;
	size_t filled = 0;
	int ret = 0;

	if (size < 2 || size > UINT32_MAX)
		return -EINVAL;
	for (size_t i = 0; i < size; i++)
		table[i] = MAGLEV_EMPTY;
	for (size_t i = 0; i < n; i++)
		if (in[i].weight > max_w)
			max_w = in[i].weight;
	if (n == 0 || max_w == 0)
		return 0;

	pos = calloc(n, sizeof(*pos));
	skip = calloc(n, sizeof(*skip));
	credit = calloc(n, sizeof(*credit));
	if (!pos || !skip || !credit) {
		ret = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		pos[i] = (uint32_t)(in[i].offset_hash % size);
		skip[i] = (uint32_t)(in[i].skip_hash % (size - 1) + 1);
	}
	/*
	 * Each round every backend earns its weight in credit; one with at
	 * least max_w credit claims its next preferred empty slot. Equal
	 * weights give the paper's round robin; others get slots in
	 * proportion (Katran's MaglevHashV2).
	 */
	for (;;) {
		for (size_t i = 0; i < n; i++) {
			if (!in[i].weight)
				continue;
			credit[i] += in[i].weight;
			if (credit[i] < max_w)
				continue;
			credit[i] -= max_w;
			while (table[pos[i]] != MAGLEV_EMPTY) {
				pos[i] += skip[i];
				if (pos[i] >= size)
					pos[i] -= (uint32_t)size;
			}
			table[pos[i]] = in[i].id;
			if (++filled == size)
				goto out;
		}
	}
out:
	free(credit);
	free(skip);
	free(pos);
	return ret;
}
