// SPDX-License-Identifier: MIT
/* Maglev: empty, single, no holes, balance, weights, determinism, disruption. */
#include "wglb/maglev.h"

#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <cmocka.h>

/* Pinned from the first build (see test_determinism_golden). */
#define GOLDEN_TABLE_FNV   0x3973eb79u
#define GOLDEN_CLIENT_HASH 0xa0eaf5f1dd29bf52ull

static uint16_t table[MAGLEV_SIZE], other[MAGLEV_SIZE];

static void inputs(struct maglev_input *in, size_t n, const uint32_t *weights)
{
	for (size_t i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "be%zu", i);
		maglev_backend_hash(name, &in[i].offset_hash, &in[i].skip_hash);
		in[i].weight = weights ? weights[i] : 1;
		in[i].id = (uint16_t)i;
	}
}

static void counts(const uint16_t *t, size_t *c, size_t n)
{
	memset(c, 0, n * sizeof(*c));
	for (size_t i = 0; i < MAGLEV_SIZE; i++) {
		assert_true(t[i] < n); /* no holes, no strangers */
		c[t[i]]++;
	}
}

static void test_empty(void **state)
{
	struct maglev_input in[2];

	(void)state;
	assert_int_equal(maglev_build(NULL, 0, table, MAGLEV_SIZE), 0);
	for (size_t i = 0; i < MAGLEV_SIZE; i++)
		assert_int_equal(table[i], MAGLEV_EMPTY);
	inputs(in, 2, (const uint32_t[]){0, 0});
	assert_int_equal(maglev_build(in, 2, table, MAGLEV_SIZE), 0);
	assert_int_equal(table[12345], MAGLEV_EMPTY);
}

static void test_single(void **state)
{
	struct maglev_input in[1];
	size_t c[1];

	(void)state;
	inputs(in, 1, NULL);
	in[0].id = 0;
	assert_int_equal(maglev_build(in, 1, table, MAGLEV_SIZE), 0);
	counts(table, c, 1);
	assert_int_equal(c[0], MAGLEV_SIZE);
}

static void test_balance_no_holes(void **state)
{
	struct maglev_input in[7];
	size_t c[7];

	(void)state;
	inputs(in, 7, NULL);
	assert_int_equal(maglev_build(in, 7, table, MAGLEV_SIZE), 0);
	counts(table, c, 7);
	for (size_t i = 0; i < 7; i++) /* equal weights: within one slot of M/N */
		assert_true(c[i] >= MAGLEV_SIZE / 7 && c[i] <= MAGLEV_SIZE / 7 + 1);
}

static void test_weights(void **state)
{
	struct maglev_input in[3];
	size_t c[3];

	(void)state;
	inputs(in, 3, (const uint32_t[]){1, 2, 5});
	assert_int_equal(maglev_build(in, 3, table, MAGLEV_SIZE), 0);
	counts(table, c, 3);
	/* Shares 1/8, 2/8, 5/8 within 1% of the table. */
	assert_true(labs((long)c[0] - MAGLEV_SIZE / 8) < MAGLEV_SIZE / 100);
	assert_true(labs((long)c[1] - MAGLEV_SIZE * 2 / 8) < MAGLEV_SIZE / 100);
	assert_true(labs((long)c[2] - MAGLEV_SIZE * 5 / 8) < MAGLEV_SIZE / 100);
}

/* The hashes are a contract between restarts and the two members of a
 * pair: pin them, so a change that would move every client fails here. */
static void test_determinism_golden(void **state)
{
	struct maglev_input in[3];
	static const char *names[] = {"a1", "a2", "b1"};
	uint32_t fnv = 2166136261u;
	const uint8_t v4[4] = {198, 51, 100, 1};

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		maglev_backend_hash(names[i], &in[i].offset_hash, &in[i].skip_hash);
		in[i].weight = 1;
		in[i].id = (uint16_t)i;
	}
	assert_int_equal(maglev_build(in, 3, table, MAGLEV_SIZE), 0);
	assert_int_equal(maglev_build(in, 3, other, MAGLEV_SIZE), 0);
	assert_memory_equal(table, other, sizeof(table));
	for (size_t i = 0; i < MAGLEV_SIZE; i++)
		fnv = (fnv ^ table[i]) * 16777619u;
	printf("golden: table fnv=0x%08x client=0x%016llx\n", fnv,
	       (unsigned long long)maglev_client_hash(AF_INET, v4, htons(51820)));
	assert_int_equal(fnv, GOLDEN_TABLE_FNV);
	assert_int_equal(maglev_client_hash(AF_INET, v4, htons(51820)), GOLDEN_CLIENT_HASH);
}

static void test_disruption(void **state)
{
	struct maglev_input in[10];
	size_t moved_other = 0, owned = 0;

	(void)state;
	inputs(in, 10, NULL);
	assert_int_equal(maglev_build(in, 10, table, MAGLEV_SIZE), 0);
	in[4].weight = 0; /* backend 4 leaves */
	assert_int_equal(maglev_build(in, 10, other, MAGLEV_SIZE), 0);
	for (size_t i = 0; i < MAGLEV_SIZE; i++) {
		if (table[i] == 4) {
			owned++;
			assert_int_not_equal(other[i], 4);
		} else if (other[i] != table[i]) {
			moved_other++;
		}
	}
	assert_true(owned > 0);
	/* Only its share moves, plus at most 1% of the others'. */
	assert_true(moved_other * 100 <= MAGLEV_SIZE - owned);
}

static void test_client_hash_families(void **state)
{
	const uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8};

	(void)state;
	assert_int_not_equal(maglev_client_hash(AF_INET, a, 1), maglev_client_hash(AF_INET6, a, 1));
	assert_int_not_equal(maglev_client_hash(AF_INET, a, 1), maglev_client_hash(AF_INET, a, 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_single),
		cmocka_unit_test(test_balance_no_holes),
		cmocka_unit_test(test_weights),
		cmocka_unit_test(test_determinism_golden),
		cmocka_unit_test(test_disruption),
		cmocka_unit_test(test_client_hash_families),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
