// SPDX-License-Identifier: MIT
/* mac1 against handshakes captured from a real wireguard-go, and the
 * per-source handshake rate limiter. */
#include "wglb/mac.h"
#include "wglb/ratelimit.h"

#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_initiation),
		cmocka_unit_test(test_real_response),
		cmocka_unit_test(test_bad_keys),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_rate_limit_table_pressure),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
