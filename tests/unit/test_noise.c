// SPDX-License-Identifier: MIT
/* The fleet emulator's WireGuard (bench/noise.c): byte for byte against an
 * independent implementation (tests/tools/noise_kat.py), then both roles
 * against each other, the cookie, and transport with its replay window.
 * wireguard-go accepting its handshakes is the other half of the test
 * (tests/e2e/test_fleet.sh). */
#include "wglb/noise.h"
#include "vectors/noise_kat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <blake2.h>
#include <cmocka.h>
#include <sodium.h>

static uint8_t seq(uint8_t from, uint8_t out[32])
{
	for (int i = 0; i < 32; i++)
		out[i] = (uint8_t)(from + i);
	return out[0];
}

static void clamp_pub(const uint8_t seed[32], uint8_t pub[32])
{
	uint8_t k[32];

	memcpy(k, seed, 32);
	k[0] &= 248;
	k[31] = (k[31] & 127) | 64;
	crypto_scalarmult_curve25519_base(pub, k);
}

static void test_primitives(void **state)
{
	uint8_t key[32], out[32], k1[32], k2[32], k3[32], tai[12];

	(void)state;
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)i;
	noise_hmac(out, key, (const uint8_t *)"wireguard", 9);
	assert_memory_equal(out, kat_hmac, 32);
	noise_kdf(key, (const uint8_t *)"input", 5, k1, k2, k3);
	assert_memory_equal(k1, kat_kdf1, 32);
	assert_memory_equal(k2, kat_kdf2, 32);
	assert_memory_equal(k3, kat_kdf3, 32);
	noise_tai64n(1700000000123456789ULL, tai);
	assert_memory_equal(tai, kat_tai, 12);
}

/* The initiation, byte for byte; the server's response gives the same keys. */
static void test_handshake_known_answer(void **state)
{
	uint8_t ci[32], sr[32], sr_pub[32], ei[32], msg[148];
	struct noise_peer p;
	struct noise_hs hs;
	struct noise_session s;

	(void)state;
	seq(1, ci);
	seq(33, sr);
	seq(65, ei);
	clamp_pub(sr, sr_pub);
	assert_int_equal(noise_peer_init(&p, ci, sr_pub, NULL), 0);
	assert_int_equal(noise_initiation(&p, &hs, 0x11223344, 1700000000123456789ULL, 1000, ei, msg), 0);
	assert_memory_equal(msg, kat_init, 148);
	assert_int_equal(noise_response(&p, &hs, kat_resp, sizeof(kat_resp), &s), 0);
	assert_memory_equal(s.send_key, kat_send, 32);
	assert_memory_equal(s.recv_key, kat_recv, 32);
	assert_int_equal(s.remote_index, 0x55667788);
	/* A bit flipped anywhere, or another handshake's index: refused. */
	for (size_t i = 0; i < sizeof(kat_resp) - 16; i++) { /* mac2 (zero) is not checked */
		uint8_t bad[92];
		memcpy(bad, kat_resp, 92);
		bad[i] ^= 1;
		assert_int_equal(noise_response(&p, &hs, bad, 92, &s), -1);
	}
}

/* The server initiates (instant failover): the client answers, and both
 * ends hold the same keys crosswise; transport flows both ways. */
static void test_both_roles(void **state)
{
	uint8_t ci[32], sr[32], ci_pub[32], sr_pub[32], init[148], resp[92], ts[12] = {0};
	uint8_t pkt[64], wire[128], out[128];
	struct noise_peer server, client;
	struct noise_hs shs, chs;
	struct noise_session ss, cs;
	int n;

	(void)state;
	seq(1, ci);
	seq(33, sr);
	clamp_pub(ci, ci_pub);
	clamp_pub(sr, sr_pub);
	/* The server, as an initiator toward the client. */
	assert_int_equal(noise_peer_init(&server, sr, ci_pub, NULL), 0);
	assert_int_equal(noise_peer_init(&client, ci, sr_pub, NULL), 0);
	assert_int_equal(noise_initiation(&server, &shs, 7, 2000000000000000000ULL, 1, NULL, init), 0);
	assert_int_equal(noise_consume_initiation(&client, init, sizeof(init), ts, &chs), 0);
	/* The same initiation again: its timestamp is not newer (a replay). */
	assert_int_equal(noise_consume_initiation(&client, init, sizeof(init), ts, &chs), -1);
	assert_int_equal(noise_build_response(&client, &chs, 9, 1, NULL, resp, &cs), 0);
	assert_int_equal(noise_response(&server, &shs, resp, sizeof(resp), &ss), 0);
	assert_memory_equal(ss.send_key, cs.recv_key, 32);
	assert_memory_equal(ss.recv_key, cs.send_key, 32);
	/* Transport: the server speaks first, then the client answers. */
	memset(pkt, 0x45, sizeof(pkt));
	n = noise_encrypt(&ss, pkt, 40, wire, sizeof(wire));
	assert_int_equal(n, 16 + 48 + 16); /* padded to 16 */
	assert_int_equal(noise_decrypt(&cs, wire, (size_t)n, out, sizeof(out)), 48);
	assert_memory_equal(out, pkt, 40);
	assert_int_equal(noise_decrypt(&cs, wire, (size_t)n, out, sizeof(out)), -1); /* replayed */
	n = noise_encrypt(&cs, NULL, 0, wire, sizeof(wire)); /* a keepalive */
	assert_int_equal(n, 32);
	assert_int_equal(noise_decrypt(&ss, wire, (size_t)n, out, sizeof(out)), 0);
	/* Another client's key in the initiation: refused. */
	{
		uint8_t other[32], other_pub[32];
		struct noise_peer impostor;
		seq(100, other);
		clamp_pub(other, other_pub);
		assert_int_equal(noise_peer_init(&impostor, other, ci_pub, NULL), 0);
		assert_int_equal(noise_initiation(&impostor, &shs, 8, 2100000000000000000ULL, 1, NULL, init), 0);
		assert_int_equal(noise_consume_initiation(&client, init, sizeof(init), ts, &chs), -1);
	}
}

/* Out of order within 64, once each; older than the window: refused. */
static void test_replay_window(void **state)
{
	struct noise_session a = {.valid = true, .local_index = 1, .remote_index = 1};
	struct noise_session b = a;
	uint8_t wire[100][64], out[64];
	int len[100];

	(void)state;
	memset(a.send_key, 3, 32);
	memset(b.recv_key, 3, 32);
	for (int i = 0; i < 100; i++)
		len[i] = noise_encrypt(&a, NULL, 0, wire[i], sizeof(wire[i]));
	assert_int_equal(noise_decrypt(&b, wire[99], (size_t)len[99], out, sizeof(out)), 0);
	assert_int_equal(noise_decrypt(&b, wire[50], (size_t)len[50], out, sizeof(out)), 0);
	assert_int_equal(noise_decrypt(&b, wire[50], (size_t)len[50], out, sizeof(out)), -1);
	assert_int_equal(noise_decrypt(&b, wire[20], (size_t)len[20], out, sizeof(out)), -1); /* too old */
	wire[98][20] ^= 1;
	assert_int_equal(noise_decrypt(&b, wire[98], (size_t)len[98], out, sizeof(out)), -1); /* tampered */
}

/* A cookie reply gives the cookie the next initiation's mac2 carries. */
static void test_cookie(void **state)
{
	uint8_t ci[32], sr[32], sr_pub[32], msg[148], reply[64] = {3}, cookie[16], key[32], mac2[16];
	struct noise_peer p;
	struct noise_hs hs;

	(void)state;
	seq(1, ci);
	seq(33, sr);
	clamp_pub(sr, sr_pub);
	assert_int_equal(noise_peer_init(&p, ci, sr_pub, NULL), 0);
	assert_int_equal(noise_initiation(&p, &hs, 5, 1, 1000, NULL, msg), 0);
	memset(cookie, 0xc0, sizeof(cookie));
	randombytes_buf(reply + 8, 24);
	{ /* the cookie key: BLAKE2s-256("cookie--" || the server's public key) */
		uint8_t in[40];
		memcpy(in, "cookie--", 8);
		memcpy(in + 8, sr_pub, 32);
		blake2s(key, in, NULL, 32, 40, 0);
	}
	crypto_aead_xchacha20poly1305_ietf_encrypt(reply + 32, NULL, cookie, 16, msg + 116, 16, NULL,
						   reply + 8, key);
	reply[40] ^= 1;
	assert_int_equal(noise_cookie_reply(&p, reply, sizeof(reply), 2000), -1);
	reply[40] ^= 1;
	assert_int_equal(noise_cookie_reply(&p, reply, sizeof(reply), 2000), 0);
	assert_int_equal(noise_initiation(&p, &hs, 6, 2, 3000, NULL, msg), 0);
	blake2s(mac2, msg, cookie, 16, 132, 16);
	assert_memory_equal(msg + 132, mac2, 16);
	/* Two minutes on, the cookie is stale: no mac2. */
	assert_int_equal(noise_initiation(&p, &hs, 7, 3, 2000 + 120000, NULL, msg), 0);
	memset(mac2, 0, 16);
	assert_memory_equal(msg + 132, mac2, 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_primitives),      cmocka_unit_test(test_handshake_known_answer),
		cmocka_unit_test(test_both_roles),      cmocka_unit_test(test_replay_window),
		cmocka_unit_test(test_cookie),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
