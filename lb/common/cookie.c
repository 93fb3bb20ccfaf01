// SPDX-License-Identifier: MIT
/* WireGuard cookies at the edge (see cookie.h). */
#include "wglb/cookie.h"
#include "wglb/mac.h"
#include "wglb/wgmsg.h"

#include <blake2.h>
#include <errno.h>
#include <sodium.h>
#include <string.h>
#include <sys/socket.h>

_Static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == 24, "cookie reply nonce");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == 16, "cookie reply tag");

const char *cookie_mode_name(enum cookie_mode m)
{
	static const char *const n[] = {[COOKIE_AUTO] = "auto", [COOKIE_ALWAYS] = "always",
					[COOKIE_OFF] = "off"};
	return (unsigned)m < sizeof(n) / sizeof(n[0]) ? n[m] : NULL;
}

int cookie_init(struct cookie_checker *c, const char *server_pub_b64)
{
	memset(c, 0, sizeof(*c));
	return mac_label_key("cookie--", server_pub_b64, c->enc_key);
}

void cookie_fini(struct cookie_checker *c)
{
	sodium_memzero(c, sizeof(*c));
}

size_t cookie_source(int family, const uint8_t *addr, uint16_t port_be,
		     uint8_t out[COOKIE_SRC_MAX])
{
	size_t n = family == AF_INET6 ? 16 : 4;

	memcpy(out, addr, n);
	memcpy(out + n, &port_be, 2);
	return n + 2;
}

/* The cookie for src under R: BLAKE2s-128 keyed with R. */
static int make_cookie(const struct cookie_checker *c, const uint8_t *src, size_t src_len,
		       uint8_t cookie[WG_MAC_LEN])
{
	return blake2s(cookie, src, c->secret, WG_MAC_LEN, src_len, sizeof(c->secret));
}

static bool is_handshake(size_t len)
{
	return len == WG_INITIATION_SIZE || len == WG_RESPONSE_SIZE;
}

bool cookie_mac2_valid(const struct cookie_checker *c, uint64_t now_ms, const uint8_t *msg,
		       size_t len, const uint8_t *src, size_t src_len)
{
	uint8_t cookie[WG_MAC_LEN], mac2[WG_MAC_LEN];
	size_t off = len - WG_MAC_LEN; /* mac2 is the last 16 bytes, over all before it */
	bool ok;

	if (!is_handshake(len) || !c->secret_ms || now_ms - c->secret_ms >= COOKIE_SECRET_MS)
		return false; /* no cookie was ever given under this secret */
	if (make_cookie(c, src, src_len, cookie) != 0 ||
	    blake2s(mac2, msg, cookie, sizeof(mac2), off, sizeof(cookie)) != 0)
		return false;
	ok = sodium_memcmp(mac2, msg + off, sizeof(mac2)) == 0;
	sodium_memzero(cookie, sizeof(cookie));
	return ok;
}

int cookie_reply(struct cookie_checker *c, uint64_t now_ms, const uint8_t *msg, size_t len,
		 const uint8_t *src, size_t src_len, uint8_t out[WG_COOKIE_SIZE])
{
	uint8_t cookie[WG_MAC_LEN];
	const uint8_t *mac1 = msg + len - 2 * WG_MAC_LEN;
	unsigned long long clen = 0;

	if (!is_handshake(len))
		return -EINVAL;
	if (!c->secret_ms || now_ms - c->secret_ms >= COOKIE_SECRET_MS) {
		randombytes_buf(c->secret, sizeof(c->secret));
		c->secret_ms = now_ms ? now_ms : 1;
	}
	if (make_cookie(c, src, src_len, cookie) != 0)
		return -EINVAL;
	/* type 3, reserved zero, receiver = the message's sender index */
	memset(out, 0, 4);
	out[0] = WG_T_COOKIE;
	memcpy(out + 4, msg + 4, 4);
	randombytes_buf(out + 8, 24);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + 32, &clen, cookie, sizeof(cookie), mac1,
						   WG_MAC_LEN, NULL, out + 8, c->enc_key);
	sodium_memzero(cookie, sizeof(cookie));
	return clen == 32 ? 0 : -EINVAL;
}

static void roll(struct cookie_load *ld, uint64_t now_ms)
{
	if (now_ms - ld->window_ms >= 1000) {
		ld->window_ms = now_ms;
		ld->count = 0;
	}
}

static void trigger(struct cookie_load *ld, uint64_t now_ms)
{
	if (now_ms >= ld->until_ms)
		ld->episodes++;
	ld->until_ms = now_ms + COOKIE_LOAD_MS;
}

void cookie_load_note(struct cookie_load *ld, uint64_t now_ms)
{
	roll(ld, now_ms);
	if (++ld->count > ld->rate)
		trigger(ld, now_ms);
}

void cookie_load_pressure(struct cookie_load *ld, uint64_t now_ms)
{
	trigger(ld, now_ms);
}

bool cookie_under_load(const struct cookie_load *ld, uint64_t now_ms)
{
	return now_ms < ld->until_ms;
}
