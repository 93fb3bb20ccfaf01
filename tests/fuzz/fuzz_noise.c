// SPDX-License-Identifier: MIT
/* The fleet emulator's packet parsing (bench/noise.c): whatever a server,
 * the balancer or anyone on the path sends a client, as a response, a
 * cookie reply, an initiation and transport. Nothing of it may crash, and
 * nothing unauthenticated may be accepted (with random keys, a success
 * would be a forgery). */
#include "wglb/noise.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct noise_peer p;
	static struct noise_hs hs;
	static struct noise_session s;
	static bool ready;
	uint8_t out[2048], ts[12] = {0}, init[148];
	struct noise_hs in;
	struct noise_session got;

	if (!ready) {
		uint8_t priv[32], srv[32];
		if (sodium_init() < 0)
			abort();
		memset(priv, 1, 32);
		memset(srv, 9, 32); /* a point: any 32 bytes are a Curve25519 u */
		if (noise_peer_init(&p, priv, srv, NULL) < 0 ||
		    noise_initiation(&p, &hs, 1, 1, 1, NULL, init) < 0)
			abort();
		s.valid = true;
		s.local_index = 1;
		randombytes_buf(s.recv_key, sizeof(s.recv_key)); /* a forgery cannot know it */
		ready = true;
	}
	if (noise_response(&p, &hs, data, size, &got) == 0)
		abort(); /* mac1 and the AEAD tag both forged */
	if (noise_consume_initiation(&p, data, size, ts, &in) == 0)
		abort();
	(void)noise_cookie_reply(&p, data, size, 1); /* 64 random bytes: a tag forged, or nothing */
	if (size <= sizeof(out) + 32 && noise_decrypt(&s, data, size, out, sizeof(out)) >= 0)
		abort();
	return 0;
}
