// SPDX-License-Identifier: MIT
/* Small parsers: addresses and CIDRs, control commands, HTTP status lines. */
#include "wglb/addr.h"
#include "wglb/ctl.h"
#include "wglb/probe_verdict.h"

#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void test_addr(void **state)
{
	struct wglb_addr a;
	char buf[ADDR_STRLEN];

	(void)state;
	assert_int_equal(addr_parse("10.0.0.1:51820", &a), 0);
	assert_string_equal(addr_fmt(&a.u, buf, sizeof(buf)), "10.0.0.1:51820");
	assert_int_equal(addr_parse("[2001:db8::1]:443", &a), 0);
	assert_string_equal(addr_fmt(&a.u, buf, sizeof(buf)), "[2001:db8::1]:443");
	static const char *bad[] = {"", "10.0.0.1", "10.0.0.1:", "10.0.0.1:0", "10.0.0.1:65536",
				    "::1:80", "[::1]80", "[10.0.0.1]:80", "host:80", "1.2.3.4:8x",
				    "[::1]:", ":80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (addr_parse(bad[i], &a) == 0)
			fail_msg("accepted '%s'", bad[i]);
}

static void test_cidr(void **state)
{
	struct wglb_cidr c;
	uint8_t a4[4] = {198, 51, 100, 7}, b4[4] = {198, 51, 101, 7};
	uint8_t a6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

	(void)state;
	assert_int_equal(cidr_parse("198.51.100.0/24", &c), 0);
	assert_true(cidr_match(&c, AF_INET, a4));
	assert_false(cidr_match(&c, AF_INET, b4));
	assert_false(cidr_match(&c, AF_INET6, a6));
	assert_int_equal(cidr_parse("198.51.100.99/23", &c), 0); /* host bits ignored */
	assert_true(cidr_match(&c, AF_INET, b4));
	assert_int_equal(cidr_parse("2001:db8::/32", &c), 0);
	assert_true(cidr_match(&c, AF_INET6, a6));
	assert_int_equal(cidr_parse("0.0.0.0/0", &c), 0);
	assert_true(cidr_match(&c, AF_INET, b4));
	assert_int_equal(cidr_parse("198.51.100.7", &c), 0);
	assert_true(cidr_match(&c, AF_INET, a4));
	assert_int_equal(cidr_parse("10.0.0.0/33", &c), -EINVAL);
	assert_int_equal(cidr_parse("10.0.0.0/", &c), -EINVAL);
	assert_int_equal(cidr_parse("/8", &c), -EINVAL);
}

/* Commands shaped as the daemon's (one and two words, argument ranges),
 * through the pure parser. */
static int parse(const char *line, size_t len, struct ctl_req *r, const char **err)
{
	static const struct ctl_cmd cmds[] = {
		{{"help", NULL}, "help", NULL, 0, 0, 0},
		{{"show", "backends"}, "show backends", NULL, 0, 0, 0},
		{{"show", "flows"}, "show flows [backend NAME] [limit N]", NULL, CMD_F_STREAM, 0, 4},
		{{"backend", "drain"}, "backend drain NAME [now]", NULL, CMD_F_ADMIN, 1, 2},
		{{"backend", "add"}, "backend add NAME ADDR [weight W]", NULL, CMD_F_ADMIN, 2, 4},
	};

	return ctl_parse(cmds, sizeof(cmds) / sizeof(cmds[0]), line, len, r, err);
}

static void test_ctl_parse(void **state)
{
	struct ctl_req r;
	const char *err;

	(void)state;
	assert_int_equal(parse("show backends json", 18, &r, &err), 0);
	assert_true(r.json);
	assert_int_equal(r.argc, 0);
	assert_int_equal(parse("backend  drain\ta1", 17, &r, &err), 0);
	assert_int_equal(r.argc, 1);
	assert_string_equal(r.argv[0], "a1");
	assert_int_equal(parse("backend add x 127.0.0.1:1 weight 3\r", 35, &r, &err), 0);
	assert_int_equal(r.argc, 4);
	assert_int_equal(parse("show flows backend a limit 5", 28, &r, &err), 0);
	assert_int_equal(r.argc, 4);

	assert_int_equal(parse("", 0, &r, &err), -EINVAL);
	assert_string_equal(err, "empty command; try 'help'");
	assert_int_equal(parse("json", 4, &r, &err), -EINVAL);
	assert_int_equal(parse("frobnicate", 10, &r, &err), -EINVAL);
	assert_string_equal(err, "unknown command; try 'help'");
	assert_int_equal(parse("backend drain", 13, &r, &err), -EINVAL);
	assert_string_equal(err, "backend drain NAME [now]");
	assert_int_equal(parse("backend drain a now", 19, &r, &err), 0);
	assert_int_equal(parse("backend drain a b c", 19, &r, &err), -EINVAL);
	assert_int_equal(parse("show \x01info", 10, &r, &err), -EINVAL);
	assert_string_equal(err, "control characters in command");
	assert_int_equal(parse("a b c d e f g h i j k l m", 25, &r, &err), -EINVAL);
	char big[CTL_MAX_LINE + 10];
	memset(big, 'a', sizeof(big));
	assert_int_equal(parse(big, sizeof(big), &r, &err), -EINVAL);
	assert_string_equal(err, "line too long");
}

static void test_http_status(void **state)
{
	int drain;
	const char *ok = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhealthy\n";
	const char *dr = "HTTP/1.0 503 Service Unavailable\r\nx-wglb-drain:  1\r\n\r\ndraining";

	(void)state;
	assert_int_equal(probe_parse_status(ok, strlen(ok), false, &drain), 200);
	assert_int_equal(drain, 0);
	assert_int_equal(probe_parse_status(dr, strlen(dr), false, &drain), 503);
	assert_int_equal(drain, 1);
	assert_int_equal(probe_parse_status("HTTP/1.1 302 Found\r\n", 20, false, &drain), 0);
	assert_int_equal(probe_parse_status("HTTP/1.1 302 Found\r\n", 20, true, &drain), 302);
	assert_int_equal(probe_parse_status("HTTP/1.", 7, false, &drain), 0);
	assert_int_equal(probe_parse_status("HTTP/1.", 7, true, &drain), -1);
	assert_int_equal(probe_parse_status("HTTP/2 200\r\n\r\n", 14, false, &drain), -1);
	assert_int_equal(probe_parse_status("SSH-2.0-OpenSSH\r\n", 17, false, &drain), -1);
	assert_int_equal(probe_parse_status("HTTP/1.1 999 X\r\n\r\n", 18, false, &drain), -1);
	assert_int_equal(probe_parse_status("HTTP/1.1 20x OK\r\n\r\n", 19, false, &drain), -1);
	assert_int_equal(probe_parse_status("", 0, false, &drain), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_ctl_parse),
		cmocka_unit_test(test_http_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
