// SPDX-License-Identifier: MIT
/* The balancer <-> agent channel: signed lines, refused when forged,
 * tampered with, stale, replayed or malformed. */
#include "wglb/agentproto.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static struct ap_key key, other;
static struct ap_replay replay;

static enum ap_verdict check(const char *line, uint64_t now, struct ap_msg *m)
{
	return ap_verify(&key, &replay, now, line, strcspn(line, "\n"), m);
}

static void test_round_trip(void **state)
{
	char line[AP_MAX_LINE], nonce[17];
	struct ap_msg m;
	int n;

	(void)state;
	n = ap_sign(&key, 1000000, "rehandshake KEY 10.0.0.1:5000", line, sizeof(line), nonce);
	assert_true(n > 0 && line[n - 1] == '\n');
	assert_int_equal(check(line, 1000000, &m), AP_OK);
	assert_int_equal(m.n, 3);
	assert_string_equal(m.word[0], "rehandshake");
	assert_string_equal(m.word[2], "10.0.0.1:5000");
	assert_int_equal(m.time_ms, 1000000);
	char hex[17];
	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)m.nonce);
	assert_string_equal(hex, nonce);
	/* The same line again is a replay. */
	assert_int_equal(check(line, 1000100, &m), AP_REPLAY);
}

static void test_forged_and_tampered(void **state)
{
	char line[AP_MAX_LINE];
	struct ap_msg m;

	(void)state;
	ap_sign(&other, 2000000, "peers", line, sizeof(line), NULL);
	assert_int_equal(check(line, 2000000, &m), AP_BAD_MAC);
	ap_sign(&key, 2000000, "rehandshake A 10.0.0.1:1", line, sizeof(line), NULL);
	line[strlen("v1 2000000 0123456789abcdef reh")] ^= 1; /* flip a word */
	assert_int_equal(check(line, 2000000, &m), AP_BAD_MAC);
}

static void test_stale(void **state)
{
	char line[AP_MAX_LINE];
	struct ap_msg m;

	(void)state;
	ap_sign(&key, 3000000, "peers", line, sizeof(line), NULL);
	assert_int_equal(check(line, 3000000 + AP_SKEW_MS + 1, &m), AP_STALE);
	ap_sign(&key, 3000000, "peers", line, sizeof(line), NULL);
	assert_int_equal(check(line, 3000000 - AP_SKEW_MS - 1, &m), AP_STALE);
}

static void test_garbage(void **state)
{
	struct ap_msg m;
	char big[AP_MAX_LINE + 10];

	(void)state;
	assert_int_equal(check("", 1, &m), AP_BAD_FORMAT);
	assert_int_equal(check("peers", 1, &m), AP_BAD_FORMAT);
	assert_int_equal(check("v1 1 0011223344556677 peers zz", 1, &m), AP_BAD_FORMAT);
	assert_int_equal(check("v1 1 0011223344556677 peers "
			       "0000000000000000000000000000000000000000000000000000000000000000",
			       1, &m),
			 AP_BAD_MAC);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(check(big, 1, &m), AP_BAD_FORMAT);
	assert_int_equal(ap_verify(&key, &replay, 1, "v1\x01x", 4, &m), AP_BAD_FORMAT);
}

static void test_signed_but_malformed(void **state)
{
	char line[AP_MAX_LINE];
	struct ap_msg m;

	(void)state;
	/* A valid MAC over words that are not "v1 TIME NONCE ...": still refused. */
	uint8_t mac[crypto_auth_BYTES];
	char hex[2 * crypto_auth_BYTES + 1];
	const char *body = "v2 4000000 0011223344556677 peers";
	crypto_auth(mac, (const uint8_t *)body, strlen(body), key.k);
	sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
	snprintf(line, sizeof(line), "%s %s", body, hex);
	assert_int_equal(check(line, 4000000, &m), AP_BAD_FORMAT);
}

/* Security finding 4: the nonce memory covers the whole window however
 * fast requests come; a clock that steps back does not forget; nothing
 * signed before the receiver started counts. */
static void test_replay_window(void **state)
{
	static struct ap_replay r;
	char line[AP_MAX_LINE], first[AP_MAX_LINE];
	struct ap_msg m;
	uint64_t t = 50000000;
	unsigned ok = 0, refused = 0;

	(void)state;
	memset(&r, 0, sizeof(r));
	ap_sign(&key, t, "peers", first, sizeof(first), NULL);
	assert_int_equal(ap_verify(&key, &r, t, first, strcspn(first, "\n"), &m), AP_OK);
	/* More requests inside one window than the memory holds: the excess is
	 * refused, and the first is still remembered at the end. */
	for (unsigned i = 0; i < AP_REPLAY_N + 100; i++) {
		ap_sign(&key, t + i, "peers", line, sizeof(line), NULL);
		if (ap_verify(&key, &r, t + i, line, strcspn(line, "\n"), &m) == AP_OK)
			ok++;
		else
			refused++;
	}
	assert_int_equal(ok, AP_REPLAY_N - 1);
	assert_int_equal(refused, 101);
	assert_int_equal(ap_verify(&key, &r, t + AP_SKEW_MS, first, strcspn(first, "\n"), &m),
			 AP_REPLAY);
	/* The wall clock steps back 10 s: still a replay, not a fresh nonce. */
	assert_int_equal(ap_verify(&key, &r, t - 10000, first, strcspn(first, "\n"), &m), AP_REPLAY);
	/* After the window the memory frees up again. */
	ap_sign(&key, t + AP_WINDOW_MS + AP_REPLAY_N + 10, "peers", line, sizeof(line), NULL);
	assert_int_equal(ap_verify(&key, &r, t + AP_WINDOW_MS + AP_REPLAY_N + 10, line,
				   strcspn(line, "\n"), &m),
			 AP_OK);
	/* A receiver that started at t+5000 refuses what was signed before. */
	memset(&r, 0, sizeof(r));
	r.not_before_ms = t + 5000;
	ap_sign(&key, t + 4999, "peers", line, sizeof(line), NULL);
	assert_int_equal(ap_verify(&key, &r, t + 6000, line, strcspn(line, "\n"), &m), AP_STALE);
	ap_sign(&key, t + 5000, "peers", line, sizeof(line), NULL);
	assert_int_equal(ap_verify(&key, &r, t + 6000, line, strcspn(line, "\n"), &m), AP_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_forged_and_tampered),
		cmocka_unit_test(test_stale),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_signed_but_malformed),
		cmocka_unit_test(test_replay_window),
	};
	if (sodium_init() < 0)
		return 1;
	randombytes_buf(key.k, sizeof(key.k));
	randombytes_buf(other.k, sizeof(other.k));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
