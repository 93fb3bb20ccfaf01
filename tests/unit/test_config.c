// SPDX-License-Identifier: MIT
/* Config: good and bad files with their exact messages, every error reported. */
#include "wglb/config.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static char errs[4096];

static void collect(void *ctx, const char *file, unsigned line, const char *msg)
{
	(void)ctx;
	size_t n = strlen(errs);
	snprintf(errs + n, sizeof(errs) - n, "%s:%u: %s\n", file, line, msg);
}

static int parse(const char *text, struct wglb_config *cfg)
{
	errs[0] = '\0';
	return config_parse("t.conf", text, strlen(text), cfg, collect, NULL);
}

static void test_good(void **state)
{
	struct wglb_config c;
	const char *text = "# wglb\n"
			   "[balancer]\n"
			   "listen = 0.0.0.0:51820        ; IPv4\n"
			   "listen = [::]:51820\n"
			   "control = /run/wglb/c.sock\n"
			   "flow_idle_timeout = 120\n"
			   "backend_silence = 60\n"
			   "max_flows = 1000\n"
			   "allow = 198.51.100.0/24\n"
			   "\n"
			   "[backend a1]\n"
			   "address = 10.10.10.135:51820\n"
			   "weight = 3\n"
			   "[backend b-2.x]\n"
			   "address = [2001:db8::1]:51820\n"
			   "health_port = 9000\n"
			   "[health]\n"
			   "method = HEAD\n"
			   "match = 200\n"
			   "interval_ms = 500\n"
			   "timeout_ms = 300\n";

	(void)state;
	assert_int_equal(parse(text, &c), 0);
	assert_string_equal(errs, "");
	assert_int_equal(c.n_listen, 2);
	assert_int_equal(c.listen[1].u.sa.sa_family, AF_INET6);
	assert_string_equal(c.control, "/run/wglb/c.sock");
	assert_int_equal(c.flow_idle_timeout, 120);
	assert_int_equal(c.backend_silence, 60);
	assert_int_equal(c.max_flows, 1000);
	assert_int_equal(c.n_allow, 1);
	assert_int_equal(c.n_backends, 2);
	assert_string_equal(c.backends[0].name, "a1");
	assert_int_equal(c.backends[0].weight, 3);
	assert_int_equal(ntohs(c.backends[0].addr.u.in4.sin_port), 51820);
	assert_string_equal(c.backends[1].name, "b-2.x");
	assert_int_equal(c.backends[1].health_port, 9000);
	assert_true(c.health.enabled);
	assert_true(c.health.head);
	assert_int_equal(c.health.match_lo, 200);
	assert_int_equal(c.health.match_hi, 200);
	assert_int_equal(c.health.rise, 2);
	config_free(&c);
}

static void test_defaults(void **state)
{
	struct wglb_config c;

	(void)state;
	assert_int_equal(parse("[backend x]\naddress = 127.0.0.1:1\n", &c), 0);
	assert_int_equal(c.n_listen, 1); /* 0.0.0.0:51820 */
	assert_int_equal(ntohs(c.listen[0].u.in4.sin_port), 51820);
	assert_int_equal(c.flow_idle_timeout, 180);
	assert_int_equal(c.backend_silence, 180);
	assert_int_equal(c.max_flows, 0); /* auto: sized at start from ports and fds */
	assert_string_equal(c.control, "/run/wglb/control.sock");
	assert_false(c.health.enabled);
	assert_true(c.udp_gro);
	assert_int_equal(c.workers, 1);
	assert_int_equal(c.backends[0].weight, 1);
	config_free(&c);
}

static void test_every_error_with_its_line(void **state)
{
	struct wglb_config c;
	const char *text = "[balancer]\n"                   /* 1 */
			   "listen = 1.2.3.4\n"             /* 2 no port */
			   "max_flows = lots\n"             /* 3 */
			   "flow_idle_timeout = 0\n"        /* 4 */
			   "bogus = 1\n"                    /* 5 */
			   "max_flows = 5\n"                /* 6 twice: line 3 set it */
			   "max_flows = 6\n"                /* 7 twice */
			   "just words\n"                   /* 8 */
			   "[backend bad name!]\n"          /* 9 */
			   "address = 1.1.1.1:1\n"          /* 10 skipped, section broken */
			   "[backend a]\n"                  /* 11 missing address */
			   "weight = 101\n"                 /* 12 */
			   "[backend a]\n"                  /* 13 twice */
			   "[nonsense]\n"                   /* 14 */
			   "[health]\n"                     /* 15 */
			   "method = POST\n"                /* 16 */
			   "match = 600\n"                  /* 17 */
			   "interval_ms = 100\n"            /* 18 */
			   "timeout_ms = 200\n"             /* 19 -> reported at 15 */
			   "path = relative\n"              /* 20 */
			   "allow = 10.0.0.0/33\n";         /* 21 outside [balancer] */
	const char *want =
		"t.conf:2: listen: '1.2.3.4' is not IP:PORT or [IPv6]:PORT\n"
		"t.conf:3: max_flows: expected a whole number from 1 to 16777216\n"
		"t.conf:4: flow_idle_timeout: expected a whole number from 1 to 86400\n"
		"t.conf:5: unknown key 'bogus' in [balancer]\n"
		"t.conf:6: max_flows: given twice in [balancer]\n"
		"t.conf:7: max_flows: given twice in [balancer]\n"
		"t.conf:8: expected 'key = value' or '[section]'\n"
		"t.conf:9: [backend NAME]: name must be 1-31 of A-Z a-z 0-9 . _ -, not 'bad name!'\n"
		"t.conf:12: weight: expected a whole number from 1 to 100\n"
		"t.conf:11: [backend a]: address is required\n"
		"t.conf:13: [backend a]: defined twice\n"
		"t.conf:14: unknown section [nonsense]\n"
		"t.conf:16: method: expected GET or HEAD, not 'POST'\n"
		"t.conf:17: match: expected a status or range like 200-399, not '600'\n"
		"t.conf:20: path: 'relative' must start with /\n"
		"t.conf:21: unknown key 'allow' in [health]\n"
		"t.conf:15: [health]: timeout_ms (200) must be less than interval_ms (100)\n";

	(void)state;
	assert_int_equal(parse(text, &c), 17);
	assert_string_equal(errs, want);
	assert_null(c.backends); /* released on error */
}

static void test_misc_errors(void **state)
{
	struct wglb_config c;

	(void)state;
	assert_int_equal(parse("x = 1\n[backend a]\naddress = 127.0.0.1:1\n", &c), 1);
	assert_string_equal(errs, "t.conf:1: 'x' is outside any section\n");
	assert_int_equal(parse("[balancer]\n", &c), 1);
	assert_string_equal(errs, "t.conf:1: no [backend NAME] section: nothing to balance to\n");
	assert_int_equal(parse("[backend a]\naddress =\n", &c), 1);
	assert_string_equal(errs, "t.conf:2: address: empty value\n");
	assert_int_equal(parse("[balancer]\nlisten = [1.2.3.4]:5\nlisten = [::1]:0\n"
			       "[backend a]\naddress = ::1:51820\n",
			       &c),
			 3);
	assert_int_equal(parse("[backend a]\naddress = 127.0.0.1:1\n[balancer]\n"
			       "listen = 127.0.0.1:9\nlisten = 127.0.0.1:9\n",
			       &c),
			 1);
	assert_string_equal(errs, "t.conf:5: listen: '127.0.0.1:9' is listed twice\n");
	assert_int_equal(parse("[balancer]\nudp_gro = yes\n[backend a]\naddress = 127.0.0.1:1\n", &c), 1);
	assert_string_equal(errs, "t.conf:2: udp_gro: 'yes' is not on or off\n");
	assert_int_equal(parse("[balancer]\nudp_gro = off\n[backend a]\naddress = 127.0.0.1:1\n", &c), 0);
	assert_false(c.udp_gro);
	assert_int_equal(c.client_address, CLIENT_SNAT); /* the default */
	config_free(&c);
	assert_int_equal(parse("[balancer]\nclient_address = keep\n[backend a]\naddress = 127.0.0.1:1\n", &c), 1);
	assert_string_equal(errs, "t.conf:2: client_address: 'keep' is not snat or preserve\n");
	assert_int_equal(parse("[balancer]\nclient_address = preserve\n[backend a]\naddress = 127.0.0.1:1\n", &c), 0);
	assert_int_equal(c.client_address, CLIENT_PRESERVE);
	config_free(&c);
	assert_int_equal(parse("[balancer]\nworkers = 0\n[backend a]\naddress = 127.0.0.1:1\n", &c), 1);
	assert_string_equal(errs, "t.conf:2: workers: expected auto or a whole number from 1 to 64\n");
	assert_int_equal(parse("[balancer]\nworkers = auto\n[backend a]\naddress = 127.0.0.1:1\n", &c), 0);
	assert_int_equal(c.workers, 0); /* auto: one per CPU, resolved at start */
	config_free(&c);
	assert_int_equal(parse("[balancer]\nworkers = 4\n[backend a]\naddress = 127.0.0.1:1\n", &c), 0);
	assert_int_equal(c.workers, 4);
	config_free(&c);
}

/* fast_path: off by default; tc only where it can work (snat, concrete
 * listen addresses); xdp refused as not built; each error at its line. */
static void test_fast_path(void **state)
{
	struct wglb_config c;

	(void)state;
	assert_int_equal(parse("[balancer]\nlisten = 192.0.2.1:51820\n[backend a]\naddress = 127.0.0.1:1\n", &c), 0);
	assert_int_equal(c.fast_path, FAST_PATH_OFF); /* the default */
	config_free(&c);
	assert_int_equal(parse("[balancer]\nlisten = 192.0.2.1:51820\nlisten = [2001:db8::1]:51820\n"
			       "fast_path = tc\n[backend a]\naddress = 127.0.0.1:1\n", &c), 0);
	assert_int_equal(c.fast_path, FAST_PATH_TC);
	config_free(&c);
	assert_int_equal(parse("[balancer]\nlisten = 192.0.2.1:51820\nfast_path = off\n"
			       "[backend a]\naddress = 127.0.0.1:1\n", &c), 0);
	assert_int_equal(c.fast_path, FAST_PATH_OFF);
	config_free(&c);
	assert_int_equal(parse("[balancer]\nfast_path = xdp\n[backend a]\naddress = 127.0.0.1:1\n", &c), 1);
	assert_string_equal(errs, "t.conf:2: fast_path: xdp is not built yet; use tc or off\n");
	assert_int_equal(parse("[balancer]\nfast_path = on\n[backend a]\naddress = 127.0.0.1:1\n", &c), 1);
	assert_string_equal(errs, "t.conf:2: fast_path: 'on' is not off or tc\n");
	/* No listen key: the default wildcard 0.0.0.0:51820. */
	assert_int_equal(parse("[balancer]\nfast_path = tc\n[backend a]\naddress = 127.0.0.1:1\n", &c), 1);
	assert_string_equal(errs, "t.conf:2: fast_path = tc needs concrete listen addresses (it "
				  "attaches to the interface that holds each one), not the wildcard "
				  "0.0.0.0:51820\n");
	assert_int_equal(parse("[balancer]\nlisten = 192.0.2.1:51820\nlisten = [::]:51820\n"
			       "fast_path = tc\n[backend a]\naddress = 127.0.0.1:1\n", &c), 1);
	assert_string_equal(errs, "t.conf:4: fast_path = tc needs concrete listen addresses (it "
				  "attaches to the interface that holds each one), not the wildcard "
				  "[::]:51820\n");
	assert_int_equal(parse("[balancer]\nlisten = 192.0.2.1:51820\nfast_path = tc\n"
			       "client_address = preserve\n[backend a]\naddress = 127.0.0.1:1\n", &c), 1);
	assert_string_equal(errs, "t.conf:3: fast_path = tc does not work with client_address = "
				  "preserve yet (snat only)\n");
	assert_int_equal(parse("[balancer]\nlisten = 192.0.2.1:51820\nfast_path = tc\n"
			       "fast_path = off\n[backend a]\naddress = 127.0.0.1:1\n", &c), 1);
	assert_string_equal(errs, "t.conf:4: fast_path: given twice in [balancer]\n");
}

static void test_nul_byte(void **state)
{
	struct wglb_config c;
	const char text[] = "[backend a]\naddress = 127.0.0.1:1\x00junk\n";

	(void)state;
	errs[0] = '\0';
	assert_int_equal(config_parse("t.conf", text, sizeof(text) - 1, &c, collect, NULL), 2);
	assert_string_equal(errs, "t.conf:2: NUL byte in line\n"
				  "t.conf:1: [backend a]: address is required\n");
}

static void test_load_missing_file(void **state)
{
	struct wglb_config c;

	(void)state;
	assert_int_equal(config_load("/nonexistent/wglb.conf", &c, collect, NULL), -2 /* ENOENT */);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_error_with_its_line),
		cmocka_unit_test(test_misc_errors),
		cmocka_unit_test(test_fast_path),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_load_missing_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
