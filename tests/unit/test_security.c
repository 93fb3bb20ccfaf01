// SPDX-License-Identifier: MIT
/* mac1 against handshakes captured from a real wireguard-go, the cookie
 * exchange against a client half written here from the whitepaper, the
 * load detector, and the per-source handshake rate limiter. */
#include "wglb/cookie.h"
#include "wglb/mac.h"
#include "wglb/ratelimit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <blake2.h>
#include <cmocka.h>

#include "vectors.h"

static void server_key(struct mac1_key *k)
{
	char b64[64] = {0};

	vector_read("server.pub", (uint8_t *)b64, sizeof(b64) - 1);
	b64[strcspn(b64, "\r\n")] = '\0';
	assert_int_equal(mac1_key_from_base64(b64, k), 0);
}

static void test_real_initiation(void **state)
{
	uint8_t m[148];
	struct mac1_key k;

	(void)state;
	server_key(&k);
	assert_int_equal(vector_read("wireguard-go-initiation.bin", m, sizeof(m)), 148);
	assert_true(mac1_valid(&k, m, 148));
	for (size_t i = 0; i < 132; i += 7) { /* any bit before mac2 breaks it */
		m[i] ^= 0x01;
		assert_false(mac1_valid(&k, m, 148));
		m[i] ^= 0x01;
	}
	m[140] ^= 0xff; /* mac2 is not covered by mac1 */
	assert_true(mac1_valid(&k, m, 148));
	assert_false(mac1_valid(&k, m, 147));
}

static void test_real_response(void **state)
{
	uint8_t m[92];
	struct mac1_key k, other;

	(void)state;
	server_key(&k);
	assert_int_equal(vector_read("wireguard-go-response.bin", m, sizeof(m)), 92);
	assert_true(mac1_valid(&k, m, 92));
	m[5] ^= 0x80;
	assert_false(mac1_valid(&k, m, 92));
	m[5] ^= 0x80;
	/* Another server's key: not for these servers. */
	assert_int_equal(mac1_key_from_base64("fE/wdxzl0klVp/IR8UcaoGUMjqaWi3jAd7KzHKFS6Ds=", &other), 0);
	assert_false(mac1_valid(&other, m, 92));
}

static void test_bad_keys(void **state)
{
	struct mac1_key k;

	(void)state;
	assert_int_equal(mac1_key_from_base64("", &k), -22);
	assert_int_equal(mac1_key_from_base64("not base64!", &k), -22);
	assert_int_equal(mac1_key_from_base64("AAAA", &k), -22); /* 3 bytes */
}

static void test_rate_limit(void **state)
{
	struct ratelimit_table t;
	uint8_t a[16] = {198, 51, 100, 7}, b[16] = {198, 51, 100, 8};
	uint8_t v6a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1};
	uint8_t v6b[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0, 0, 0, 2};
	uint64_t now = 1000000000ull;
	int passed = 0;

	(void)state;
	assert_int_equal(rl_init(&t, 20, 5), 0);
	for (int i = 0; i < 50; i++)
		passed += rl_allow(&t, AF_INET, a, now);
	assert_int_equal(passed, 5); /* the burst, then nothing at the same instant */
	assert_true(rl_allow(&t, AF_INET, b, now)); /* another source is unaffected */
	assert_false(rl_allow(&t, AF_INET, a, now + 10000000)); /* 10 ms: not yet */
	assert_true(rl_allow(&t, AF_INET, a, now + 50000000));  /* 50 ms = one token */
	passed = 0;
	for (int i = 0; i < 100; i++) /* 1 s at 100/s offered: 20 pass */
		passed += rl_allow(&t, AF_INET, a, now + 60000000 + (uint64_t)i * 10000000);
	assert_in_range(passed, 19, 21);
	/* IPv6 is limited by /64: b shares a's /64. */
	for (int i = 0; i < 5; i++)
		assert_true(rl_allow(&t, AF_INET6, v6a, now));
	assert_false(rl_allow(&t, AF_INET6, v6b, now));
	rl_free(&t);
	assert_int_equal(rl_init(&t, 0, 5), 0); /* disabled */
	for (int i = 0; i < 100; i++)
		assert_true(rl_allow(&t, AF_INET, a, now));
}

static void test_rate_limit_table_pressure(void **state)
{
	struct ratelimit_table t;
	uint64_t now = 5000000000ull;

	(void)state;
	assert_int_equal(rl_init(&t, 20, 5), 0);
	/* 4x the table in distinct sources: a new source is never refused. */
	for (uint32_t i = 0; i < 4 * RL_SLOTS; i++) {
		uint8_t ip[16] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
		assert_true(rl_allow(&t, AF_INET, ip, now));
	}
	rl_free(&t);
}

static void read_pub(char b64[64])
{
	memset(b64, 0, 64);
	vector_read("server.pub", (uint8_t *)b64, 63);
	b64[strcspn(b64, "\r\n")] = '\0';
}

/* What a WireGuard client does with a cookie reply: open it with the
 * cookie key and its last mac1, then put mac2 = MAC(cookie, msg) on its
 * next handshake. */
static int client_open(const char *b64, const uint8_t reply[64], const uint8_t mac1[16],
		       uint8_t cookie[16])
{
	uint8_t in[40] = "cookie--", key[32];
	size_t len;
	unsigned long long clen;

	assert_int_equal(sodium_base642bin(in + 8, 32, b64, strlen(b64), NULL, &len, NULL,
					   sodium_base64_VARIANT_ORIGINAL), 0);
	assert_int_equal(blake2s(key, in, NULL, 32, sizeof(in), 0), 0);
	return crypto_aead_xchacha20poly1305_ietf_decrypt(cookie, &clen, NULL, reply + 32, 32, mac1,
							  16, reply + 8, key);
}

static void put_mac2(uint8_t *m, size_t len, const uint8_t cookie[16])
{
	assert_int_equal(blake2s(m + len - 16, m, cookie, 16, len - 16, 16), 0);
}

static void test_cookie_exchange(void **state)
{
	struct cookie_checker cc;
	char b64[64];
	uint8_t m[148], reply[64], cookie[16], src[COOKIE_SRC_MAX], other[COOKIE_SRC_MAX];
	uint8_t a4[4] = {192, 0, 2, 7};
	uint64_t now = 1000;
	size_t sl, ol;

	(void)state;
	read_pub(b64);
	assert_int_equal(cookie_init(&cc, b64), 0);
	vector_read("wireguard-go-initiation.bin", m, sizeof(m));
	sl = cookie_source(AF_INET, a4, htons(51000), src);
	ol = cookie_source(AF_INET, a4, htons(51001), other);
	assert_int_equal(sl, 6);
	assert_false(cookie_mac2_valid(&cc, now, m, sizeof(m), src, sl)); /* no secret yet */

	assert_int_equal(cookie_reply(&cc, now, m, sizeof(m), src, sl, reply), 0);
	assert_memory_equal(reply, "\x03\0\0\0", 4);
	assert_memory_equal(reply + 4, m + 4, 4); /* receiver = the initiation's sender */
	assert_int_equal(client_open(b64, reply, m + 116, cookie), 0);
	uint8_t wrong_mac1[16] = {0};
	uint8_t junk[16];
	assert_int_not_equal(client_open(b64, reply, wrong_mac1, junk), 0); /* bound to mac1 */

	put_mac2(m, sizeof(m), cookie);
	assert_true(cookie_mac2_valid(&cc, now + 1, m, sizeof(m), src, sl));
	assert_false(cookie_mac2_valid(&cc, now + 1, m, sizeof(m), other, ol)); /* other port */
	m[140] ^= 1;
	assert_false(cookie_mac2_valid(&cc, now + 1, m, sizeof(m), src, sl));
	m[140] ^= 1;
	m[20] ^= 1; /* mac2 covers the whole message up to it */
	assert_false(cookie_mac2_valid(&cc, now + 1, m, sizeof(m), src, sl));
	m[20] ^= 1;
	/* R lives two minutes: then no old cookie counts, and the next reply draws a new R. */
	assert_true(cookie_mac2_valid(&cc, now + COOKIE_SECRET_MS - 1, m, sizeof(m), src, sl));
	assert_false(cookie_mac2_valid(&cc, now + COOKIE_SECRET_MS, m, sizeof(m), src, sl));
	assert_int_equal(cookie_reply(&cc, now + COOKIE_SECRET_MS, m, sizeof(m), src, sl, reply), 0);
	assert_false(cookie_mac2_valid(&cc, now + COOKIE_SECRET_MS, m, sizeof(m), src, sl));

	/* A response (92 bytes) works the same; other sizes never. */
	uint8_t r[92];
	vector_read("wireguard-go-response.bin", r, sizeof(r));
	assert_int_equal(cookie_reply(&cc, now + COOKIE_SECRET_MS, r, sizeof(r), src, sl, reply), 0);
	assert_int_equal(client_open(b64, reply, r + 60, cookie), 0);
	put_mac2(r, sizeof(r), cookie);
	assert_true(cookie_mac2_valid(&cc, now + COOKIE_SECRET_MS, r, sizeof(r), src, sl));
	assert_int_equal(cookie_reply(&cc, now, m, 147, src, sl, reply), -EINVAL);
	assert_false(cookie_mac2_valid(&cc, now, m, 64, src, sl));

	/* IPv6: address and port. */
	uint8_t a6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
	assert_int_equal(cookie_source(AF_INET6, a6, htons(1), src), 18);
	assert_int_equal(cookie_init(&cc, "AAAA"), -EINVAL);
	cookie_fini(&cc);
}

static void test_load_detector(void **state)
{
	struct cookie_load ld = {.rate = 10};
	uint64_t t = 5000;

	(void)state;
	for (int i = 0; i < 10; i++)
		cookie_load_note(&ld, t + (uint64_t)i);
	assert_false(cookie_under_load(&ld, t + 10)); /* 10 in a second: not yet */
	cookie_load_note(&ld, t + 20);
	assert_true(cookie_under_load(&ld, t + 20)); /* the 11th */
	assert_int_equal(ld.episodes, 1);
	assert_true(cookie_under_load(&ld, t + 20 + COOKIE_LOAD_MS - 1)); /* sticky */
	assert_false(cookie_under_load(&ld, t + 20 + COOKIE_LOAD_MS));
	/* A new window starts the count again: 5 a second is no load. */
	for (int s = 2; s < 6; s++)
		for (int i = 0; i < 5; i++)
			cookie_load_note(&ld, t + (uint64_t)s * 1000 + (uint64_t)i);
	assert_false(cookie_under_load(&ld, t + 5500));
	cookie_load_pressure(&ld, t + 6000);
	assert_true(cookie_under_load(&ld, t + 6500));
	assert_int_equal(ld.episodes, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_initiation),
		cmocka_unit_test(test_cookie_exchange),
		cmocka_unit_test(test_load_detector),
		cmocka_unit_test(test_real_response),
		cmocka_unit_test(test_bad_keys),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_rate_limit_table_pressure),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
