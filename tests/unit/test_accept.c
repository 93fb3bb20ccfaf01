// SPDX-License-Identifier: MIT
/* wg-health's admission (health/accept.c): sources by address and /64, and
 * which connection a full table sheds, as a table of cases. */
#include "wglb/accept.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void key_of(const char *ip, uint8_t key[ACC_KEY_LEN])
{
	union wglb_sa sa;

	memset(&sa, 0, sizeof(sa));
	if (strchr(ip, ':')) {
		sa.in6.sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &sa.in6.sin6_addr), 1);
	} else {
		sa.in4.sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &sa.in4.sin_addr), 1);
	}
	acc_key(&sa, key);
}

static void test_keys(void **state)
{
	uint8_t a[ACC_KEY_LEN], b[ACC_KEY_LEN];

	(void)state;
	key_of("2001:db8:1:2::1", a), key_of("2001:db8:1:2:ffff::9", b);
	assert_memory_equal(a, b, ACC_KEY_LEN); /* one /64, one source */
	key_of("2001:db8:1:3::1", b);
	assert_memory_not_equal(a, b, ACC_KEY_LEN);
	key_of("::ffff:10.0.0.1", a), key_of("10.0.0.1", b);
	assert_memory_equal(a, b, ACC_KEY_LEN); /* mapped IPv4 is that IPv4 address */
	key_of("10.0.0.2", a);
	assert_memory_not_equal(a, b, ACC_KEY_LEN);
}

#define MAX 8
#define PER 4

static struct acc_slot slot(const char *ip, uint64_t born, uint8_t flags)
{
	struct acc_slot s = {.born = born, .flags = flags};

	key_of(ip, s.key);
	return s;
}

static void test_admit_table(void **state)
{
	/* A full table: a holds 3 (born 10, 11, 12), b 2 (born 1, 2; 1 sent its
	 * request line), c 2 (born 3: prober, 4), d 1 (born 5). */
	const struct acc_slot full[MAX] = {
		slot("10.0.0.1", 10, 0), slot("10.0.0.1", 11, 0), slot("10.0.0.1", 12, 0),
		slot("10.0.0.2", 1, ACC_F_REQUEST), slot("10.0.0.2", 2, 0),
		slot("10.0.0.3", 3, ACC_F_PROBER), slot("10.0.0.3", 4, 0),
		slot("10.0.0.4", 5, 0),
	};
	const struct acc_slot probers[MAX] = {
		slot("10.0.0.9", 1, ACC_F_PROBER), slot("10.0.0.9", 2, ACC_F_PROBER),
		slot("10.0.0.8", 3, ACC_F_PROBER), slot("10.0.0.8", 4, ACC_F_PROBER),
		slot("10.0.0.7", 5, ACC_F_PROBER), slot("10.0.0.7", 6, ACC_F_PROBER),
		slot("10.0.0.6", 7, ACC_F_PROBER), slot("10.0.0.6", 8, ACC_F_PROBER),
	};
	const struct {
		const char *what;
		const struct acc_slot *slots;
		unsigned n;
		const char *src;
		uint8_t flags;
		enum acc_verdict want;
		unsigned victim;
	} cases[] = {
		{"room", full, MAX - 1, "10.0.0.5", 0, ACC_ADMIT, 0},
		{"per-source cap, with room", full, 3, "10.0.0.1", 0, ACC_ADMIT, 0},
		{"a new source sheds the largest source's oldest", full, MAX, "10.0.0.5", 0, ACC_SHED, 0},
		{"the largest source may not push others out", full, MAX, "10.0.0.1", 0, ACC_REFUSE_FULL, 0},
		{"a prober may, from its largest source's oldest", full, MAX, "10.0.0.1", ACC_F_PROBER,
		 ACC_SHED, 0},
		{"nothing but probers: refused", probers, MAX, "10.0.0.5", 0, ACC_REFUSE_FULL, 0},
		{"even a prober, rather than another prober shed", probers, MAX, "10.0.0.5", ACC_F_PROBER,
		 ACC_REFUSE_FULL, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct acc_slot nc = slot(cases[i].src, 100, cases[i].flags);
		unsigned victim = 99;
		enum acc_verdict v = acc_admit(cases[i].slots, cases[i].n, MAX, PER, &nc, &victim);

		if (v != cases[i].want || (v == ACC_SHED && victim != cases[i].victim))
			fail_msg("%s: verdict %d victim %u", cases[i].what, v, victim);
	}
}

static void test_cap_and_fairness(void **state)
{
	struct acc_slot s[MAX];
	struct acc_slot nc;
	unsigned victim = 99;

	(void)state;
	/* Four connections from one /64 fill its share. */
	for (unsigned i = 0; i < PER; i++)
		s[i] = slot(i % 2 ? "2001:db8::1" : "2001:db8::2:3", i, 0);
	nc = slot("2001:db8::ffff", 9, 0);
	assert_int_equal(acc_admit(s, PER, MAX, PER, &nc, &victim), ACC_REFUSE_SOURCE);
	/* Idle connections go before those that sent their request line; the
	 * prober's never: b's idle one, though a's are older and as many. */
	s[0] = slot("10.0.0.1", 1, ACC_F_REQUEST), s[1] = slot("10.0.0.1", 2, ACC_F_REQUEST);
	s[2] = slot("10.0.0.2", 3, 0), s[3] = slot("10.0.0.2", 4, ACC_F_REQUEST);
	s[4] = slot("10.0.0.3", 0, ACC_F_PROBER), s[5] = slot("10.0.0.4", 5, ACC_F_REQUEST);
	s[6] = slot("10.0.0.5", 6, ACC_F_REQUEST), s[7] = slot("10.0.0.6", 7, ACC_F_REQUEST);
	nc = slot("10.0.0.7", 9, 0);
	assert_int_equal(acc_admit(s, MAX, MAX, PER, &nc, &victim), ACC_SHED);
	assert_int_equal(victim, 2);
	/* With no idle one left, the largest source's oldest request, never the prober. */
	s[2].flags = ACC_F_REQUEST;
	assert_int_equal(acc_admit(s, MAX, MAX, PER, &nc, &victim), ACC_SHED);
	assert_int_equal(victim, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_admit_table),
		cmocka_unit_test(test_cap_and_fairness),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
