// SPDX-License-Identifier: MIT
/* wg-health --show-peers: peers printed as wg show does, each with the
 * client a balancer told the agent about, matched by endpoint whatever
 * its spelling, and nothing invented where no note matches. */
#include "wglb/showpeers.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

static char *print(const struct wgdev_peer *p, int n, const char *notes)
{
	static char buf[4096];
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	assert_non_null(f);
	showpeers_print(f, p, n, notes, 1000000);
	fclose(f);
	return buf;
}

static void test_clients_by_endpoint(void **state)
{
	struct wgdev_peer p[3] = {0};
	const char *notes = "10.0.0.1:40001 198.51.100.11:51820 999990\n"
			    "[2001:db8::1]:40002 [2001:db8:5::9]:1234 999999\n";
	char *out;

	(void)state;
	memset(p[0].pub, 1, 32);
	strcpy(p[0].endpoint, "10.0.0.1:40001");
	p[0].handshake_s = 999995;
	p[0].rx_bytes = 2048;
	p[0].tx_bytes = 100;
	memset(p[1].pub, 2, 32);
	strcpy(p[1].endpoint, "[2001:db8:0::1]:40002"); /* another spelling of the note's */
	memset(p[2].pub, 3, 32);
	strcpy(p[2].endpoint, "10.0.0.1:40003"); /* no note: no client line */
	out = print(p, 3, notes);
	assert_non_null(strstr(out, "peer: AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n"
				    "  endpoint: 10.0.0.1:40001\n"
				    "  client: 198.51.100.11:51820 (told by the balancer 10 seconds ago)\n"
				    "  latest handshake: 5 seconds ago\n"
				    "  transfer: 2.00 KiB received, 100 B sent\n"));
	assert_non_null(strstr(out, "  client: [2001:db8:5::9]:1234 (told by the balancer 1 second ago)"));
	assert_non_null(strstr(out, "  endpoint: 10.0.0.1:40003\n"));
	assert_int_equal(strstr(out, "10.0.0.1:40003\n") - out + strlen("10.0.0.1:40003\n"),
			 (long)strlen(out)); /* its block ends there: nothing invented */
}

/* A clients file that is garbage, cut short or absent changes nothing else. */
static void test_bad_notes(void **state)
{
	struct wgdev_peer p[1] = {0};
	char *out;

	(void)state;
	strcpy(p[0].endpoint, "10.0.0.1:40001");
	out = print(p, 1, "10.0.0.1:40001\n\n garbage \n10.0.0.1:40001 notanaddress");
	assert_null(strstr(out, "client:"));
	out = print(p, 1, NULL);
	assert_null(strstr(out, "client:"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_clients_by_endpoint),
		cmocka_unit_test(test_bad_notes),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
