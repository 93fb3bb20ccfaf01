// SPDX-License-Identifier: MIT
/* Classifier: a table of datagrams -> verdict, every size edge. */
#include "wglb/wgmsg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

struct vec {
	uint8_t type;
	uint8_t reserved; /* value put in byte 1..3 (the one under test) */
	size_t len;
	enum wg_drop want;
};

static const struct vec vecs[] = {
	{1, 0, 0, WG_DROP_TOO_SHORT},    {1, 0, 3, WG_DROP_TOO_SHORT},
	{1, 0, 147, WG_DROP_BAD_LENGTH}, {1, 0, 148, WG_DROP_NONE},
	{1, 0, 149, WG_DROP_BAD_LENGTH}, {2, 0, 91, WG_DROP_BAD_LENGTH},
	{2, 0, 92, WG_DROP_NONE},        {2, 0, 93, WG_DROP_BAD_LENGTH},
	{3, 0, 63, WG_DROP_BAD_LENGTH},  {3, 0, 64, WG_DROP_NONE},
	{3, 0, 65, WG_DROP_BAD_LENGTH},  {4, 0, 31, WG_DROP_BAD_LENGTH},
	{4, 0, 32, WG_DROP_NONE},        {4, 0, 33, WG_DROP_NONE}, /* no alignment rule */
	{4, 0, 1452, WG_DROP_NONE},      {4, 0, 1453, WG_DROP_NONE},
	{4, 0, 4, WG_DROP_BAD_LENGTH},   {0, 0, 148, WG_DROP_UNKNOWN_TYPE},
	{5, 0, 148, WG_DROP_UNKNOWN_TYPE}, {0xff, 0, 32, WG_DROP_UNKNOWN_TYPE},
	{1, 1, 148, WG_DROP_BAD_RESERVED}, {4, 0x80, 32, WG_DROP_BAD_RESERVED},
};

static void test_table(void **state)
{
	uint8_t buf[2048];

	(void)state;
	for (size_t i = 0; i < sizeof(vecs) / sizeof(vecs[0]); i++) {
		struct wg_info wi;
		memset(buf, 0xab, sizeof(buf));
		buf[0] = vecs[i].type;
		buf[1] = buf[2] = 0;
		buf[3] = vecs[i].reserved;
		enum wg_drop got = wgmsg_classify(buf, vecs[i].len, &wi);
		if (got != vecs[i].want)
			fail_msg("vector %zu (type %u len %zu): got %s want %s", i, vecs[i].type,
				 vecs[i].len, wgmsg_drop_name(got), wgmsg_drop_name(vecs[i].want));
		if (got == WG_DROP_NONE)
			assert_int_equal(wi.type, vecs[i].type);
	}
}

static void test_reserved_each_byte(void **state)
{
	uint8_t buf[148] = {1};
	struct wg_info wi;

	(void)state;
	for (int b = 1; b <= 3; b++) {
		memset(buf + 1, 0, 3);
		buf[b] = 1;
		assert_int_equal(wgmsg_classify(buf, sizeof(buf), &wi), WG_DROP_BAD_RESERVED);
	}
}

static void test_indices(void **state)
{
	uint8_t init[148] = {1, 0, 0, 0, 0x78, 0x56, 0x34, 0x12};
	uint8_t resp[92] = {2, 0, 0, 0, 1, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde};
	uint8_t cookie[64] = {3, 0, 0, 0, 9, 0, 0, 0};
	uint8_t data[32] = {4, 0, 0, 0, 0x44, 0x33, 0x22, 0x11};
	struct wg_info wi;

	(void)state;
	assert_int_equal(wgmsg_classify(init, sizeof(init), &wi), WG_DROP_NONE);
	assert_int_equal(wi.sender, 0x12345678);
	assert_int_equal(wi.receiver, 0);
	assert_int_equal(wgmsg_classify(resp, sizeof(resp), &wi), WG_DROP_NONE);
	assert_int_equal(wi.sender, 1);
	assert_int_equal(wi.receiver, 0xdeadbeef);
	assert_int_equal(wgmsg_classify(cookie, sizeof(cookie), &wi), WG_DROP_NONE);
	assert_int_equal(wi.receiver, 9);
	assert_int_equal(wgmsg_classify(data, sizeof(data), &wi), WG_DROP_NONE);
	assert_int_equal(wi.receiver, 0x11223344);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(wgmsg_drop_name(WG_DROP_BAD_LENGTH), "bad_length");
	assert_string_equal(wgmsg_drop_name((enum wg_drop)99), "invalid");
	assert_string_equal(wgmsg_type_name(WG_T_COOKIE), "cookie");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_reserved_each_byte),
		cmocka_unit_test(test_indices),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
