// SPDX-License-Identifier: MIT
/* The prober's rise/fall verdict as a table: a backend's standing and its
 * run of results, one more result -> the change and the run after it. */
#include "wglb/probe_verdict.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

enum standing { CHECKING, UP, DOWN };

static const struct row {
	const char *rule;
	enum standing now;
	struct probe_streak before;
	bool pass;
	uint32_t rise, fall;
	enum probe_change change;
	struct probe_streak after;
} rows[] = {
	{"checking: a pass short of rise changes nothing", CHECKING, {0, 0}, true, 2, 2, PROBE_SAME, {1, 0}},
	{"checking: rise passes in a row bring it up", CHECKING, {1, 0}, true, 2, 2, PROBE_UP, {2, 0}},
	{"checking: fall failures in a row bring it down", CHECKING, {0, 1}, false, 2, 2, PROBE_DOWN, {0, 2}},
	{"rise 1: the first pass is enough", CHECKING, {0, 0}, true, 1, 3, PROBE_UP, {1, 0}},
	{"a failure breaks a run of passes", CHECKING, {1, 0}, false, 2, 3, PROBE_SAME, {0, 1}},
	{"a pass breaks a run of failures", UP, {0, 1}, true, 2, 2, PROBE_SAME, {1, 0}},
	{"up: a failure short of fall is not down (no flapping)", UP, {5, 0}, false, 2, 2, PROBE_SAME, {0, 1}},
	{"up: fall failures bring it down", UP, {0, 1}, false, 2, 2, PROBE_DOWN, {0, 2}},
	{"up: more passes change nothing", UP, {7, 0}, true, 2, 2, PROBE_SAME, {8, 0}},
	{"down: more failures change nothing", DOWN, {0, 4}, false, 2, 2, PROBE_SAME, {0, 5}},
	{"down: a pass short of rise stays down", DOWN, {0, 4}, true, 3, 2, PROBE_SAME, {1, 0}},
	{"down: rise passes bring it up", DOWN, {2, 0}, true, 3, 2, PROBE_UP, {3, 0}},
	{"down, rise passes already counted: the next pass says up", DOWN, {9, 0}, true, 3, 2, PROBE_UP, {10, 0}},
};

static void test_rise_fall(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct probe_streak s = r->before;
		enum probe_change c = probe_judge(&s, r->pass, r->now == UP, r->now == DOWN, r->rise, r->fall);
		if (c != r->change || s.ok != r->after.ok || s.fail != r->after.fail)
			fail_msg("rule %zu, '%s': got change %d, run %u ok %u failed", i, r->rule, c, s.ok,
				 s.fail);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rise_fall),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
