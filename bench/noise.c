// SPDX-License-Identifier: MIT
/* A WireGuard initiator (noise.h), after the WireGuard paper, section 5.4. */
#include "wglb/noise.h"

#include <blake2.h>
#include <sodium.h>
#include <string.h>

static const char construction[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
static const char identifier[] = "WireGuard v1 zx2c4 Jason@zx2c4.com";

#define COOKIE_LIFE_MS 120000 /* a cookie is good for two minutes */
#define REJECT_AFTER_MESSAGES (UINT64_MAX - 8192 - 1)
#define WINDOW 64

void noise_hash(uint8_t out[32], const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	blake2s_state st;

	blake2s_init(&st, 32);
	blake2s_update(&st, a, alen);
	if (blen)
		blake2s_update(&st, b, blen);
	blake2s_final(&st, out, 32);
}

/* HMAC over BLAKE2s-256 (block 64 bytes), as WireGuard's KDF uses it. */
void noise_hmac(uint8_t out[32], const uint8_t key[32], const uint8_t *in, size_t len)
{
	uint8_t pad[64], inner[32];
	blake2s_state st;

	memset(pad, 0x36, sizeof(pad));
	for (int i = 0; i < 32; i++)
		pad[i] ^= key[i];
	blake2s_init(&st, 32);
	blake2s_update(&st, pad, 64);
	blake2s_update(&st, in, len);
	blake2s_final(&st, inner, 32);
	memset(pad, 0x5c, sizeof(pad));
	for (int i = 0; i < 32; i++)
		pad[i] ^= key[i];
	blake2s_init(&st, 32);
	blake2s_update(&st, pad, 64);
	blake2s_update(&st, inner, 32);
	blake2s_final(&st, out, 32);
	sodium_memzero(pad, sizeof(pad));
	sodium_memzero(inner, sizeof(inner));
}

void noise_kdf(const uint8_t key[32], const uint8_t *in, size_t len, uint8_t *t1, uint8_t *t2,
	       uint8_t *t3)
{
	uint8_t t0[32], buf[33], prev[32];

	noise_hmac(t0, key, in, len);
	buf[0] = 1;
	noise_hmac(prev, t0, buf, 1);
	if (t1)
		memcpy(t1, prev, 32);
	if (t2 || t3) {
		memcpy(buf, prev, 32);
		buf[32] = 2;
		noise_hmac(prev, t0, buf, 33);
		if (t2)
			memcpy(t2, prev, 32);
	}
	if (t3) {
		memcpy(buf, prev, 32);
		buf[32] = 3;
		noise_hmac(t3, t0, buf, 33);
	}
	sodium_memzero(t0, sizeof(t0));
	sodium_memzero(prev, sizeof(prev));
}

void noise_tai64n(uint64_t unix_ns, uint8_t out[12])
{
	uint64_t s = 0x400000000000000aULL + unix_ns / 1000000000ULL;
	uint32_t ns = (uint32_t)(unix_ns % 1000000000ULL);

	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(s >> (56 - 8 * i));
	for (int i = 0; i < 4; i++)
		out[8 + i] = (uint8_t)(ns >> (24 - 8 * i));
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void nonce_of(uint64_t counter, uint8_t nonce[12])
{
	memset(nonce, 0, 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(counter >> (8 * i));
}

static void mix_hash(uint8_t h[32], const uint8_t *data, size_t len)
{
	noise_hash(h, h, 32, data, len);
}

static int dh(uint8_t out[32], const uint8_t priv[32], const uint8_t pub[32])
{
	return crypto_scalarmult_curve25519(out, priv, pub); /* -1 for an all-zero result */
}

static void mac(uint8_t out[16], const uint8_t *key, size_t keylen, const uint8_t *msg, size_t len)
{
	/* libb2 0.98 argument order: out, in, key, outlen, inlen, keylen */
	blake2s(out, msg, key, 16, len, keylen);
}

void noise_keypair(uint8_t priv[32], uint8_t pub[32])
{
	priv[0] &= 248;
	priv[31] = (priv[31] & 127) | 64;
	crypto_scalarmult_curve25519_base(pub, priv);
}

/* A fresh ephemeral pair into hs: from e_seed, or random. */
static void ephemeral(struct noise_hs *hs, const uint8_t *e_seed)
{
	if (e_seed)
		memcpy(hs->e_priv, e_seed, 32);
	else
		randombytes_buf(hs->e_priv, 32);
	noise_keypair(hs->e_priv, hs->e_pub);
}

int noise_peer_init(struct noise_peer *p, const uint8_t priv[NOISE_KEY_LEN],
		    const uint8_t server_pub[NOISE_KEY_LEN], const uint8_t *psk)
{
	memset(p, 0, sizeof(*p));
	memcpy(p->priv, priv, 32);
	noise_keypair(p->priv, p->pub);
	memcpy(p->server_pub, server_pub, 32);
	if (psk)
		memcpy(p->psk, psk, 32);
	noise_hash(p->mac1_key, (const uint8_t *)"mac1----", 8, server_pub, 32);
	noise_hash(p->own_mac1_key, (const uint8_t *)"mac1----", 8, p->pub, 32);
	noise_hash(p->cookie_key, (const uint8_t *)"cookie--", 8, server_pub, 32);
	return dh(p->ss, p->priv, server_pub) == 0 ? 0 : -1;
}

int noise_initiation(struct noise_peer *p, struct noise_hs *hs, uint32_t local_index,
		     uint64_t unix_ns, uint64_t now_ms, const uint8_t *e_seed, uint8_t out[148])
{
	uint8_t k[32], shared[32], nonce[12] = {0}, ts[12];
	unsigned long long clen;

	memset(hs, 0, sizeof(*hs));
	hs->local_index = local_index;
	noise_hash(hs->c, (const uint8_t *)construction, sizeof(construction) - 1, NULL, 0);
	noise_hash(hs->h, hs->c, 32, (const uint8_t *)identifier, sizeof(identifier) - 1);
	mix_hash(hs->h, p->server_pub, 32);
	ephemeral(hs, e_seed);

	memset(out, 0, 148);
	out[0] = 1;
	put_le32(out + 4, local_index);
	memcpy(out + 8, hs->e_pub, 32);
	noise_kdf(hs->c, hs->e_pub, 32, hs->c, NULL, NULL);
	mix_hash(hs->h, hs->e_pub, 32);
	if (dh(shared, hs->e_priv, p->server_pub) < 0)
		return -1;
	noise_kdf(hs->c, shared, 32, hs->c, k, NULL);
	crypto_aead_chacha20poly1305_ietf_encrypt(out + 40, &clen, p->pub, 32, hs->h, 32, NULL, nonce, k);
	mix_hash(hs->h, out + 40, 48);
	noise_kdf(hs->c, p->ss, 32, hs->c, k, NULL);
	noise_tai64n(unix_ns, ts);
	crypto_aead_chacha20poly1305_ietf_encrypt(out + 88, &clen, ts, 12, hs->h, 32, NULL, nonce, k);
	mix_hash(hs->h, out + 88, 28);
	mac(out + 116, p->mac1_key, 32, out, 116);
	memcpy(p->last_mac1, out + 116, 16);
	if (p->has_cookie && now_ms - p->cookie_ms < COOKIE_LIFE_MS)
		mac(out + 132, p->cookie, 16, out, 132);
	sodium_memzero(k, sizeof(k));
	sodium_memzero(shared, sizeof(shared));
	return 0;
}

int noise_response(const struct noise_peer *p, const struct noise_hs *hs, const uint8_t *msg,
		   size_t len, struct noise_session *s)
{
	uint8_t c[32], h[32], k[32], tau[32], shared[32], m1[16], nonce[12] = {0};
	int ret = -1;

	if (len != 92 || msg[0] != 2 || msg[1] || msg[2] || msg[3] ||
	    get_le32(msg + 8) != hs->local_index)
		return -1;
	mac(m1, p->own_mac1_key, 32, msg, 60); /* a response's mac1 is keyed by its receiver */
	if (sodium_memcmp(m1, msg + 60, 16) != 0)
		return -1;
	memcpy(c, hs->c, 32);
	memcpy(h, hs->h, 32);
	noise_kdf(c, msg + 12, 32, c, NULL, NULL);
	mix_hash(h, msg + 12, 32);
	if (dh(shared, hs->e_priv, msg + 12) < 0)
		goto out;
	noise_kdf(c, shared, 32, c, NULL, NULL);
	if (dh(shared, p->priv, msg + 12) < 0)
		goto out;
	noise_kdf(c, shared, 32, c, NULL, NULL);
	noise_kdf(c, p->psk, 32, c, tau, k);
	mix_hash(h, tau, 32);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(NULL, NULL, NULL, msg + 44, 16, h, 32, nonce, k) != 0)
		goto out;
	memset(s, 0, sizeof(*s));
	s->local_index = hs->local_index;
	s->remote_index = get_le32(msg + 4);
	noise_kdf(c, NULL, 0, s->send_key, s->recv_key, NULL);
	s->valid = true;
	ret = 0;
out:
	sodium_memzero(c, sizeof(c));
	sodium_memzero(k, sizeof(k));
	sodium_memzero(tau, sizeof(tau));
	sodium_memzero(shared, sizeof(shared));
	return ret;
}

int noise_consume_initiation(const struct noise_peer *p, const uint8_t *msg, size_t len,
			     uint8_t last_ts[12], struct noise_hs *out)
{
	uint8_t k[32], shared[32], m1[16], nonce[12] = {0}, spub[32], ts[12];
	struct noise_hs local, *hs = &local; /* out changes only on success */
	int ret = -1;

	if (len != 148 || msg[0] != 1 || msg[1] || msg[2] || msg[3])
		return -1;
	mac(m1, p->own_mac1_key, 32, msg, 116);
	if (sodium_memcmp(m1, msg + 116, 16) != 0)
		return -1;
	memset(hs, 0, sizeof(*hs));
	hs->remote_index = get_le32(msg + 4);
	memcpy(hs->remote_e, msg + 8, 32);
	noise_hash(hs->c, (const uint8_t *)construction, sizeof(construction) - 1, NULL, 0);
	noise_hash(hs->h, hs->c, 32, (const uint8_t *)identifier, sizeof(identifier) - 1);
	mix_hash(hs->h, p->pub, 32);
	noise_kdf(hs->c, hs->remote_e, 32, hs->c, NULL, NULL);
	mix_hash(hs->h, hs->remote_e, 32);
	if (dh(shared, p->priv, hs->remote_e) < 0)
		goto out;
	noise_kdf(hs->c, shared, 32, hs->c, k, NULL);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(spub, NULL, NULL, msg + 40, 48, hs->h, 32, nonce,
						      k) != 0 ||
	    sodium_memcmp(spub, p->server_pub, 32) != 0)
		goto out;
	mix_hash(hs->h, msg + 40, 48);
	noise_kdf(hs->c, p->ss, 32, hs->c, k, NULL);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(ts, NULL, NULL, msg + 88, 28, hs->h, 32, nonce,
						      k) != 0 ||
	    memcmp(ts, last_ts, 12) <= 0) /* TAI64N is big-endian: bytes compare as times */
		goto out;
	mix_hash(hs->h, msg + 88, 28);
	memcpy(last_ts, ts, 12);
	*out = local;
	ret = 0;
out:
	sodium_memzero(k, sizeof(k));
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(&local, sizeof(local));
	return ret;
}

int noise_build_response(struct noise_peer *p, struct noise_hs *hs, uint32_t local_index,
			 uint64_t now_ms, const uint8_t *e_seed, uint8_t out[92], struct noise_session *s)
{
	uint8_t shared[32], tau[32], k[32], nonce[12] = {0};
	unsigned long long clen;
	int ret = -1;

	ephemeral(hs, e_seed);
	hs->local_index = local_index;
	memset(out, 0, 92);
	out[0] = 2;
	put_le32(out + 4, local_index);
	put_le32(out + 8, hs->remote_index);
	memcpy(out + 12, hs->e_pub, 32);
	noise_kdf(hs->c, hs->e_pub, 32, hs->c, NULL, NULL);
	mix_hash(hs->h, hs->e_pub, 32);
	if (dh(shared, hs->e_priv, hs->remote_e) < 0)
		goto out;
	noise_kdf(hs->c, shared, 32, hs->c, NULL, NULL);
	if (dh(shared, hs->e_priv, p->server_pub) < 0)
		goto out;
	noise_kdf(hs->c, shared, 32, hs->c, NULL, NULL);
	noise_kdf(hs->c, p->psk, 32, hs->c, tau, k);
	mix_hash(hs->h, tau, 32);
	crypto_aead_chacha20poly1305_ietf_encrypt(out + 44, &clen, NULL, 0, hs->h, 32, NULL, nonce, k);
	mix_hash(hs->h, out + 44, 16);
	mac(out + 60, p->mac1_key, 32, out, 60);
	memcpy(p->last_mac1, out + 60, 16);
	if (p->has_cookie && now_ms - p->cookie_ms < COOKIE_LIFE_MS)
		mac(out + 76, p->cookie, 16, out, 76);
	memset(s, 0, sizeof(*s));
	s->local_index = local_index;
	s->remote_index = hs->remote_index;
	noise_kdf(hs->c, NULL, 0, s->recv_key, s->send_key, NULL); /* the responder's: receive first */
	s->valid = true;
	ret = 0;
out:
	sodium_memzero(shared, sizeof(shared));
	sodium_memzero(tau, sizeof(tau));
	sodium_memzero(k, sizeof(k));
	return ret;
}

int noise_cookie_reply(struct noise_peer *p, const uint8_t *msg, size_t len, uint64_t now_ms)
{
	uint8_t cookie[16];

	if (len != 64 || msg[0] != 3 || msg[1] || msg[2] || msg[3])
		return -1;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(cookie, NULL, NULL, msg + 32, 32, p->last_mac1,
						       16, msg + 8, p->cookie_key) != 0)
		return -1;
	memcpy(p->cookie, cookie, 16);
	p->cookie_ms = now_ms;
	p->has_cookie = true;
	return 0;
}

int noise_encrypt(struct noise_session *s, const uint8_t *payload, size_t len, uint8_t *out,
		  size_t room)
{
	size_t padded = (len + 15) & ~(size_t)15;
	uint8_t nonce[12];
	unsigned long long clen;

	if (!s->valid || s->send_counter >= REJECT_AFTER_MESSAGES || room < 16 + padded + 16)
		return -1;
	out[0] = 4;
	out[1] = out[2] = out[3] = 0;
	put_le32(out + 4, s->remote_index);
	for (int i = 0; i < 8; i++)
		out[8 + i] = (uint8_t)(s->send_counter >> (8 * i));
	if (len)
		memcpy(out + 16, payload, len); /* a keepalive has no payload (may be NULL) */
	memset(out + 16 + len, 0, padded - len);
	nonce_of(s->send_counter++, nonce);
	crypto_aead_chacha20poly1305_ietf_encrypt(out + 16, &clen, out + 16, padded, NULL, 0, NULL,
						  nonce, s->send_key);
	return (int)(16 + clen);
}

int noise_decrypt(struct noise_session *s, const uint8_t *msg, size_t len, uint8_t *out,
		  size_t room)
{
	uint64_t ctr = 0;
	uint8_t nonce[12];
	unsigned long long plen;

	if (!s->valid || len < 32 || msg[0] != 4 || msg[1] || msg[2] || msg[3] ||
	    get_le32(msg + 4) != s->local_index || room < len - 32)
		return -1;
	for (int i = 0; i < 8; i++)
		ctr |= (uint64_t)msg[8 + i] << (8 * i);
	if (ctr >= REJECT_AFTER_MESSAGES)
		return -1;
	/* Too old for the window, or seen: a replay. */
	if (ctr + WINDOW < s->recv_max ||
	    (ctr < s->recv_max && (s->recv_window >> (s->recv_max - 1 - ctr)) & 1))
		return -1;
	nonce_of(ctr, nonce);
	if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &plen, NULL, msg + 16, len - 16, NULL, 0,
						      nonce, s->recv_key) != 0)
		return -1;
	if (ctr >= s->recv_max) {
		uint64_t shift = ctr + 1 - s->recv_max;
		s->recv_window = shift >= WINDOW ? 0 : s->recv_window << shift;
		s->recv_window |= 1;
		s->recv_max = ctr + 1;
	} else {
		s->recv_window |= 1ULL << (s->recv_max - 1 - ctr);
	}
	return (int)plen;
}
