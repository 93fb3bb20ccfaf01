// SPDX-License-Identifier: MIT
/* wg-health's UAPI parsers (health/uapi.c) on a reply in wireguard-go's
 * `get=1` format: peers, the device's port and fwmark, and the exact
 * request that re-adds one. */
#include "wglb/uapi.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#define K1 "1111111111111111111111111111111111111111111111111111111111111111"
#define K2 "2222222222222222222222222222222222222222222222222222222222222222"
#define PSK "abababababababababababababababababababababababababababababababab"
#define ZERO "0000000000000000000000000000000000000000000000000000000000000000"

static const char reply[] =
	"private_key=" K2 "\n"
	"listen_port=51820\n"
	"public_key=" K1 "\n"
	"preshared_key=" PSK "\n"
	"protocol_version=1\n"
	"endpoint=10.10.10.1:40001\n"
	"last_handshake_time_sec=1764000000\n"
	"last_handshake_time_nsec=5\n"
	"tx_bytes=100\n"
	"rx_bytes=200\n"
	"persistent_keepalive_interval=25\n"
	"allowed_ip=10.9.0.2/32\n"
	"allowed_ip=fd10::2/128\n"
	"public_key=nothex\n"
	"endpoint=10.10.10.9:9\n"
	"public_key=" K2 "\n"
	"preshared_key=" ZERO "\n"
	"protocol_version=1\n"
	"last_handshake_time_sec=0\n"
	"persistent_keepalive_interval=0\n"
	"errno=0\n";

static void test_peers(void **state)
{
	char buf[sizeof(reply)];
	struct wgdev_peer p[4];

	memcpy(buf, reply, sizeof(reply));
	assert_int_equal(uapi_parse_peers(buf, p, 4), 2);
	assert_int_equal(p[0].pub[0], 0x11);
	assert_string_equal(p[0].endpoint, "10.10.10.1:40001");
	assert_int_equal(p[0].handshake_s, 1764000000);
	/* The bad key's endpoint belongs to nobody, not to the peer before it. */
	assert_int_equal(p[1].pub[31], 0x22);
	assert_string_equal(p[1].endpoint, "");
	memcpy(buf, reply, sizeof(reply));
	assert_int_equal(uapi_parse_peers(buf, p, 1), 1);
}

static void test_readd(void **state)
{
	char buf[sizeof(reply)], req[512], ka[16];
	int n;

	memcpy(buf, reply, sizeof(reply));
	n = uapi_readd_request(buf, K1, "10.10.10.2:41001", req, sizeof(req), ka);
	assert_string_equal(req, "set=1\npublic_key=" K1 "\nremove=true\npublic_key=" K1 "\n"
				 "allowed_ip=10.9.0.2/32\nallowed_ip=fd10::2/128\n"
				 "preshared_key=" PSK "\n"
				 "endpoint=10.10.10.2:41001\npersistent_keepalive_interval=1\n\n");
	assert_int_equal(n, strlen(req));
	assert_string_equal(ka, "25");
	/* An all-zero preshared key is none. */
	memcpy(buf, reply, sizeof(reply));
	uapi_readd_request(buf, K2, "[fd00::2]:1", req, sizeof(req), ka);
	assert_null(strstr(req, "preshared_key"));
	assert_string_equal(ka, "0");
	memcpy(buf, reply, sizeof(reply));
	assert_int_equal(uapi_readd_request(buf, ZERO, "10.0.0.1:1", req, sizeof(req), ka), -ENOENT);
	for (size_t cap = 1; cap < 300; cap++) { /* never past the buffer */
		memcpy(buf, reply, sizeof(reply));
		assert_int_equal(uapi_readd_request(buf, K1, "10.0.0.1:1", req, cap, ka), -E2BIG);
	}
}

/* A batch: one request for every peer found, in the order asked, each
 * exactly as a request of its own would have it; the reply unchanged. */
static void test_readd_batch(void **state)
{
	struct wgdev_move mv[3] = {{.endpoint = "10.10.10.2:41001"},
				   {.endpoint = "10.0.0.1:1"},
				   {.endpoint = "[fd00::2]:1"}};
	char req[1024], one[512], ka[3][16], ka1[16];
	const char *tail = "endpoint=[fd00::2]:1\npersistent_keepalive_interval=1\n\n";
	int n, n1;

	memset(mv[0].pub, 0x11, 32);
	memset(mv[1].pub, 0x33, 32); /* nobody's */
	memset(mv[2].pub, 0x22, 32);
	n = uapi_readd_batch(reply, mv, 3, req, sizeof(req), ka);
	assert_int_equal(n, strlen(req));
	assert_int_equal(mv[0].result, 0);
	assert_int_equal(mv[1].result, -ENOENT);
	assert_int_equal(mv[2].result, 0);
	assert_string_equal(ka[0], "25");
	assert_string_equal(ka[2], "0");
	n1 = uapi_readd_request(reply, K1, "10.10.10.2:41001", one, sizeof(one), ka1);
	assert_true(n1 > 0);
	/* "set=1\n" + K1's lines (its request without the final "\n") + K2's. */
	assert_memory_equal(req, one, (size_t)n1 - 1);
	assert_non_null(strstr(req + n1 - 1, "public_key=" K2 "\nremove=true\npublic_key=" K2 "\n"));
	assert_string_equal(req + n - strlen(tail), tail);
	/* Nobody known: nothing to send. */
	n = uapi_readd_batch(reply, &mv[1], 1, req, sizeof(req), ka);
	assert_int_equal(n, 0);
	assert_int_equal(mv[1].result, -ENOENT);
	for (size_t cap = 1; cap < 500; cap++) /* never past the buffer */
		assert_int_equal(uapi_readd_batch(reply, mv, 3, req, cap, ka), -E2BIG);
}

/* The device's own lines only; wireguard-go leaves out a zero fwmark. */
static void test_conf(void **state)
{
	struct wgdev_conf c = {.listen_port = -1, .fwmark = 7};
	static const struct {
		const char *reply;
		int ret, port;
		uint32_t mark;
	} cases[] = {
		{"private_key=" K2 "\nfwmark=51820\nlisten_port=51820\npublic_key=" K1 "\n", 0, 51820,
		 51820},
		{"private_key=" K2 "\nfwmark=4294967295\nerrno=0\n", 0, 0, 0xffffffffu},
		/* a fwmark= after a peer's key is not the device's */
		{"listen_port=1\npublic_key=" K1 "\nfwmark=5\n", 0, 1, 0},
		{"fwmark=4294967296\n", -EPROTO, 0, 0},
		{"fwmark=0x10\n", -EPROTO, 0, 0},
		{"fwmark=-1\n", -EPROTO, 0, 0},
		{"fwmark=\n", -EPROTO, 0, 0},
		{"listen_port=65536\n", -EPROTO, 0, 0},
		{"fwmark=12", 0, 0, 0}, /* no end of line: not a line */
	};

	assert_int_equal(uapi_parse_conf(reply, &c), 0);
	assert_int_equal(c.listen_port, 51820);
	assert_int_equal(c.fwmark, 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c.listen_port = -1;
		c.fwmark = 7;
		assert_int_equal(uapi_parse_conf(cases[i].reply, &c), cases[i].ret);
		if (cases[i].ret == 0) {
			assert_int_equal(c.listen_port, cases[i].port);
			assert_int_equal(c.fwmark, cases[i].mark);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peers),
		cmocka_unit_test(test_readd),
		cmocka_unit_test(test_readd_batch),
		cmocka_unit_test(test_conf),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
