// SPDX-License-Identifier: MIT
/*
 * wg-health's kernel path, byte for byte: the generic-netlink messages our
 * builders make must equal what wireguard-tools' `wg` sends for the same
 * change (vectors/wgnl, captured by tests/tools/capture_wgnl.sh; the
 * integration test re-captures them from the installed `wg`). The parser
 * reads the kernel-style dump those changes are computed from, and refuses
 * malformed input.
 */
#include "wglb/wgnl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/wireguard.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vectors.h"

#define FAMILY 0x1d /* what fake_genl answers; the vectors carry it */
#define BUFSZ 4096  /* MNL_SOCKET_BUFFER_SIZE on 4 KiB pages, as in `wg` */

static uint8_t vec[65536];

/* A file of vectors/wgnl into vec. */
static size_t slurp(const char *name)
{
	char path[64];

	snprintf(path, sizeof(path), "wgnl/%s", name);
	return vector_read(path, vec, sizeof(vec));
}

static uint32_t seq_of(const uint8_t *msg)
{
	return ((const struct nlmsghdr *)(const void *)msg)->nlmsg_seq;
}

/* The dump every change below starts from. */
static void load_dump(struct wgnl_device *dev)
{
	size_t n = slurp("dump.bin");
	int r;

	wgnl_device_init(dev);
	/* The parser sees it as one datagram after another, then DONE. */
	r = wgnl_parse(vec, n, 0, 0, dev);
	assert_true(r > 0);
	{
		struct {
			struct nlmsghdr h;
			int err;
		} done = {.h = {.nlmsg_len = sizeof(done), .nlmsg_type = NLMSG_DONE,
				.nlmsg_flags = NLM_F_MULTI}};
		assert_int_equal(wgnl_parse(&done, sizeof(done), 0, 0, dev), 0);
	}
}

static void test_family_and_get(void **state)
{
	uint8_t buf[BUFSZ];
	size_t n = slurp("family.bin");

	assert_int_equal(wgnl_msg_family(buf, sizeof(buf), seq_of(vec)), n);
	assert_memory_equal(buf, vec, n);
	n = slurp("get.bin");
	assert_int_equal(wgnl_msg_get(buf, sizeof(buf), FAMILY, seq_of(vec), "wgk0"), n);
	assert_memory_equal(buf, vec, n);
}

static void test_parse_dump(void **state)
{
	struct wgnl_device dev;
	char ip[INET6_ADDRSTRLEN];

	load_dump(&dev);
	assert_int_equal(dev.listen_port, 51820);
	assert_int_equal(dev.fwmark, 0);
	assert_int_equal(dev.n, 4); /* peer 3, split over three messages, is one peer */
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(dev.peers[i].pub[0], 16 * (i + 1));
	assert_true(dev.peers[0].has_psk);
	assert_int_equal(dev.peers[0].psk[0], 16 * 9);
	assert_false(dev.peers[1].has_psk); /* all zeros means none */
	assert_int_equal(dev.peers[0].ep.sa.sa_family, AF_INET);
	assert_int_equal(ntohs(dev.peers[0].ep.in4.sin_port), 40001);
	assert_int_equal(dev.peers[1].ep.sa.sa_family, AF_INET6);
	assert_int_equal(dev.peers[2].ep.sa.sa_family, 0);
	assert_int_equal(dev.peers[0].handshake_s, 1764000000);
	assert_int_equal(dev.peers[1].keepalive, 25);
	assert_int_equal(dev.peers[1].n_aips, 2);
	assert_int_equal(dev.peers[1].aips[0].family, AF_INET6);
	assert_int_equal(dev.peers[1].aips[0].cidr, 128);
	assert_int_equal(dev.peers[2].n_aips, 300);
	assert_string_equal(inet_ntop(AF_INET, dev.peers[2].aips[299].addr, ip, sizeof(ip)),
			    "10.20.1.50");
	assert_int_equal(dev.peers[3].n_aips, 0);
	wgnl_device_free(&dev);
}

/* Build every message of a change and compare with the vector file. */
static void expect_set(const char *name, const struct wgnl_peer *peers, size_t n)
{
	struct wgnl_cursor cur = {0};
	uint8_t buf[BUFSZ];
	size_t len = slurp(name), off = 0;
	long m;

	while ((m = wgnl_msg_set(buf, sizeof(buf), FAMILY, seq_of(vec + off), "wgk0", peers, n,
				 &cur)) > 0) {
		assert_true(off + (size_t)m <= len);
		assert_memory_equal(buf, vec + off, (size_t)m);
		off += (size_t)m;
	}
	assert_int_equal(m, 0);
	assert_int_equal(off, len); /* as many messages as `wg` sent */
}

static void test_readd_matches_wg(void **state)
{
	static const char *eps[4] = {"10.0.0.2:41001", "[fd00::2]:41002", "10.0.0.2:41003",
				     "10.0.0.2:41004"};
	static const int keepalive[4] = {0, 25, 0, 0};
	struct wgnl_device dev;

	load_dump(&dev);
	for (int i = 0; i < 4; i++) {
		struct wglb_addr ep;
		struct wgnl_peer set[2];
		char name[32];
		assert_int_equal(addr_parse(eps[i], &ep), 0);
		assert_int_equal(wgnl_readd(&dev.peers[i], &ep.u, set), keepalive[i]);
		snprintf(name, sizeof(name), "readd_%d.bin", i + 1);
		expect_set(name, set, 2);
	}
	wgnl_device_free(&dev);
}

static void test_restore_matches_wg(void **state)
{
	static const int keepalive[4] = {0, 25, 0, 0};

	for (int i = 0; i < 4; i++) {
		struct wgnl_peer p = {.keepalive = keepalive[i]};
		char name[32];
		for (int b = 0; b < 32; b++)
			p.pub[b] = (uint8_t)(16 * (i + 1) + b);
		snprintf(name, sizeof(name), "restore_%d.bin", i + 1);
		expect_set(name, &p, 1);
	}
}

/* --route-setup's and --route-undo's change, as `wg set wgk0 fwmark M`. */
static void test_fwmark_matches_wg(void **state)
{
	static const struct {
		const char *file;
		uint32_t mark;
	} cases[] = {{"fwmark_set.bin", 0xca6c}, {"fwmark_clear.bin", 0}};
	uint8_t buf[BUFSZ];

	for (size_t i = 0; i < 2; i++) {
		size_t n = slurp(cases[i].file);
		assert_int_equal(wgnl_msg_fwmark(buf, sizeof(buf), FAMILY, seq_of(vec), "wgk0",
						 cases[i].mark),
				 n);
		assert_memory_equal(buf, vec, n);
	}
}

/* A device message with its fwmark: read back; a wrong size refused. */
static void test_parse_fwmark(void **state)
{
	uint8_t buf[BUFSZ];
	struct wgnl_device dev;
	struct nlmsghdr *nlh;
	size_t n = wgnl_msg_fwmark(buf, sizeof(buf), FAMILY, 1, "wgk0", 0xca6c);

	nlh = (struct nlmsghdr *)(void *)buf;
	nlh->nlmsg_flags = NLM_F_MULTI;
	wgnl_device_init(&dev);
	assert_true(wgnl_parse(buf, n, 1, 0, &dev) > 0);
	assert_int_equal(dev.fwmark, 0xca6c);
	wgnl_device_free(&dev);
	/* The same attribute as a u16: the last 4 bytes are the u32 attribute */
	buf[n - 8] = 6;
	wgnl_device_init(&dev);
	assert_int_equal(wgnl_parse(buf, n, 1, 0, &dev), -EBADMSG);
	wgnl_device_free(&dev);
}

/* A SET message has the GET answer's shape: what we build, we read back,
 * over however many messages it took. */
static void test_set_round_trip(void **state)
{
	struct wgnl_device dev, back;
	struct wgnl_cursor cur = {0};
	uint8_t buf[BUFSZ];
	long m;
	int msgs = 0;

	load_dump(&dev);
	wgnl_device_init(&back);
	while ((m = wgnl_msg_set(buf, sizeof(buf), FAMILY, 1, "wgk0", dev.peers, dev.n, &cur)) > 0) {
		assert_true(wgnl_parse(buf, (size_t)m, 1, 0, &back) > 0);
		msgs++;
	}
	assert_int_equal(m, 0);
	assert_int_equal(msgs, 3);
	assert_int_equal(back.n, dev.n);
	for (size_t i = 0; i < dev.n; i++) {
		assert_memory_equal(back.peers[i].pub, dev.peers[i].pub, 32);
		assert_int_equal(back.peers[i].keepalive, dev.peers[i].keepalive);
		assert_int_equal(back.peers[i].n_aips, dev.peers[i].n_aips);
		if (dev.peers[i].n_aips)
			assert_memory_equal(back.peers[i].aips, dev.peers[i].aips,
					    dev.peers[i].n_aips * sizeof(struct wgnl_aip));
	}
	wgnl_device_free(&back);
	wgnl_device_free(&dev);
}

static void test_too_small(void **state)
{
	struct wgnl_peer p = {.keepalive = 1};
	struct wgnl_cursor cur = {0};
	uint8_t buf[64];

	p.pub[0] = 1;
	assert_int_equal(wgnl_msg_set(buf, sizeof(buf), FAMILY, 1, "wgk0", &p, 1, &cur), -E2BIG);
}

/* Build one GET-answer message around a peer nest filled by fill(). */
static size_t one_peer(uint8_t *buf, void (*fill)(struct nlmsghdr *))
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	struct nlattr *peers, *peer;

	nlh->nlmsg_type = FAMILY;
	nlh->nlmsg_flags = NLM_F_MULTI;
	g->cmd = WG_CMD_GET_DEVICE;
	peers = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(nlh, 0);
	fill(nlh);
	mnl_attr_nest_end(nlh, peer);
	mnl_attr_nest_end(nlh, peers);
	return nlh->nlmsg_len;
}

static void fill_no_key(struct nlmsghdr *nlh)
{
	mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, 5);
}

static void fill_short_key(struct nlmsghdr *nlh)
{
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, 31, vec);
}

static void put_key(struct nlmsghdr *nlh)
{
	uint8_t k[32];
	memset(k, 7, sizeof(k));
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, 32, k);
}

static void fill_bad_cidr(struct nlmsghdr *nlh)
{
	struct nlattr *aips, *aip;
	uint8_t a[4] = {10, 0, 0, 1};

	put_key(nlh);
	aips = mnl_attr_nest_start(nlh, WGPEER_A_ALLOWEDIPS);
	aip = mnl_attr_nest_start(nlh, 0);
	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, AF_INET);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, 4, a);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, 33);
	mnl_attr_nest_end(nlh, aip);
	mnl_attr_nest_end(nlh, aips);
}

static void fill_bad_handshake(struct nlmsghdr *nlh)
{
	put_key(nlh);
	mnl_attr_put_u32(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, 1);
}

static void test_malformed(void **state)
{
	void (*fills[])(struct nlmsghdr *) = {fill_no_key, fill_short_key, fill_bad_cidr,
					       fill_bad_handshake};
	uint8_t buf[BUFSZ];
	struct wgnl_device dev;

	for (size_t i = 0; i < sizeof(fills) / sizeof(fills[0]); i++) {
		size_t n = one_peer(buf, fills[i]);
		wgnl_device_init(&dev);
		assert_int_equal(wgnl_parse(buf, n, 0, 0, &dev), -EBADMSG);
		wgnl_device_free(&dev);
		/* Every truncation is refused too, never read past. */
		for (size_t cut = 1; cut < n; cut += 3) {
			wgnl_device_init(&dev);
			assert_true(wgnl_parse(buf, cut, 0, 0, &dev) <= 0);
			wgnl_device_free(&dev);
		}
	}
}

/* Found by fuzz_wgnl: libmnl's mnl_nlmsg_ok() takes nlmsg_len >= 2^31 as a
 * negative int and walked on forever. */
static void test_huge_length(void **state)
{
	struct nlmsghdr h[2] = {{.nlmsg_len = 0x80000000u, .nlmsg_type = FAMILY}};
	struct wgnl_device dev;

	wgnl_device_init(&dev);
	assert_int_equal(wgnl_parse(h, sizeof(h), 0, 0, &dev), -EBADMSG);
	h[0].nlmsg_len = 0xfffffff0u;
	assert_int_equal(wgnl_parse(h, sizeof(h), 0, 0, &dev), -EBADMSG);
	wgnl_device_free(&dev);
}

static void test_kernel_error(void **state)
{
	struct {
		struct nlmsghdr h;
		struct nlmsgerr e;
	} m = {.h = {.nlmsg_len = sizeof(m), .nlmsg_type = NLMSG_ERROR, .nlmsg_seq = 9},
	       .e = {.error = -ENODEV}};
	struct wgnl_device dev;

	wgnl_device_init(&dev);
	assert_int_equal(wgnl_parse(&m, sizeof(m), 9, 0, &dev), -ENODEV);
	m.e.error = 0; /* an ACK ends the exchange */
	assert_int_equal(wgnl_parse(&m, sizeof(m), 9, 0, &dev), 0);
	m.h.nlmsg_seq = 8; /* somebody else's answer */
	assert_true(wgnl_parse(&m, sizeof(m), 9, 0, &dev) < 0);
	wgnl_device_free(&dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_family_and_get),  cmocka_unit_test(test_parse_dump),
		cmocka_unit_test(test_readd_matches_wg), cmocka_unit_test(test_restore_matches_wg),
		cmocka_unit_test(test_set_round_trip),   cmocka_unit_test(test_too_small),
		cmocka_unit_test(test_malformed),        cmocka_unit_test(test_huge_length),
		cmocka_unit_test(test_kernel_error),     cmocka_unit_test(test_fwmark_matches_wg),
		cmocka_unit_test(test_parse_fwmark),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
