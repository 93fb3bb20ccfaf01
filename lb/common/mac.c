// SPDX-License-Identifier: MIT
#include "wglb/mac.h"
#include "wglb/wgmsg.h"

#include <blake2.h>
#include <errno.h>
#include <sodium.h>
#include <string.h>

int mac_label_key(const char label[8], const char *b64, uint8_t out[32])
{
	uint8_t in[8 + 32];
	size_t len = 0;

	memcpy(in, label, 8);
	if (sodium_base642bin(in + 8, 32, b64, strlen(b64), NULL, &len, NULL,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    len != 32)
		return -EINVAL;
	/* libb2 0.98 argument order: out, in, key, outlen, inlen, keylen */
	if (blake2s(out, in, NULL, 32, sizeof(in), 0) != 0)
		return -EINVAL;
	return 0;
}

int mac1_key_from_base64(const char *b64, struct mac1_key *out)
{
	return mac_label_key("mac1----", b64, out->k);
}

bool mac1_valid(const struct mac1_key *key, const uint8_t *msg, size_t len)
{
	uint8_t mac[WG_MAC_LEN];
	size_t off;

	if (len == WG_INITIATION_SIZE)
		off = WG_INIT_MAC1_OFF;
	else if (len == WG_RESPONSE_SIZE)
		off = WG_RESP_MAC1_OFF;
	else
		return false;
	if (blake2s(mac, msg, key->k, sizeof(mac), off, sizeof(key->k)) != 0)
		return false;
	return sodium_memcmp(mac, msg + off, sizeof(mac)) == 0;
}
