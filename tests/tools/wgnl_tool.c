// SPDX-License-Identifier: MIT
/*
 * Test driver for wg-health's kernel path (health/wgnl.c), run under
 * tests/tools/fake_genl.c since these machines have no WireGuard module:
 *   wgnl-tool fixture OUT          write a kernel-style WG_CMD_GET_DEVICE
 *                                  answer (4 peers, one split over two
 *                                  messages) for FAKE_GENL_DUMP
 *   wgnl-tool show IFNAME          the interface as wgnl_get_device() reads
 *                                  it, in `wg show IFNAME dump`'s columns
 *   wgnl-tool peers IFNAME         wgdev_peers(): "KEY ENDPOINT HANDSHAKE"
 *   wgnl-tool rehandshake IFNAME KEY IP:PORT
 *   wgnl-tool conf IFNAME          wgdev_conf(): "KIND PORT FWMARK"
 *   wgnl-tool fwmark IFNAME MARK   wgdev_set_fwmark()
 */
#include "wglb/wgdev.h"
#include "wglb/wgnl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/wireguard.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE_FAMILY 0x1d

/* The fixture's keys: byte i of key k is k * 16 + i, a valid 32-byte string. */
static void fixture_key(int k, uint8_t out[32])
{
	for (int i = 0; i < 32; i++)
		out[i] = (uint8_t)(k * 16 + i);
}

static struct nlmsghdr *dump_msg(char *buf)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = FIXTURE_FAMILY;
	nlh->nlmsg_flags = NLM_F_MULTI;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = WG_CMD_GET_DEVICE;
	g->version = WG_GENL_VERSION;
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, "wgk0");
	return nlh;
}

static void put_aip(struct nlmsghdr *nlh, uint16_t family, const char *ip, uint8_t cidr)
{
	uint8_t a[16];
	struct nlattr *n = mnl_attr_nest_start(nlh, 0);

	inet_pton(family, ip, a);
	mnl_attr_put_u16(nlh, WGALLOWEDIP_A_FAMILY, family);
	mnl_attr_put(nlh, WGALLOWEDIP_A_IPADDR, family == AF_INET ? 4 : 16, a);
	mnl_attr_put_u8(nlh, WGALLOWEDIP_A_CIDR_MASK, cidr);
	mnl_attr_nest_end(nlh, n);
}

/* A peer as the kernel reports it (wg_get_device_dump's attributes). */
static void put_peer(struct nlmsghdr *nlh, int k, bool psk, const char *ep, int keepalive,
		     int64_t handshake)
{
	uint8_t key[32], zero[32] = {0};
	struct {
		int64_t sec, nsec;
	} ts = {handshake, handshake ? 5000 : 0};

	fixture_key(k, key);
	mnl_attr_put(nlh, WGPEER_A_PUBLIC_KEY, 32, key);
	fixture_key(k + 8, key);
	mnl_attr_put(nlh, WGPEER_A_PRESHARED_KEY, 32, psk ? key : zero);
	mnl_attr_put(nlh, WGPEER_A_LAST_HANDSHAKE_TIME, sizeof(ts), &ts);
	mnl_attr_put_u16(nlh, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL, (uint16_t)keepalive);
	mnl_attr_put_u64(nlh, WGPEER_A_TX_BYTES, 1000u * (unsigned)k);
	mnl_attr_put_u64(nlh, WGPEER_A_RX_BYTES, 2000u * (unsigned)k);
	mnl_attr_put_u32(nlh, WGPEER_A_PROTOCOL_VERSION, 1);
	if (ep) {
		struct wglb_addr a;
		if (addr_parse(ep, &a) == 0)
			mnl_attr_put(nlh, WGPEER_A_ENDPOINT, a.len, &a.u);
	}
}

static int fixture(const char *out)
{
	static char bufs[3][4096]; /* the page-sized buffer `wg` reads with */
	struct nlmsghdr *m;
	struct nlattr *peers, *peer, *aips;
	uint8_t key[32];
	FILE *fp = fopen(out, "wb");
	char ip[32];

	if (!fp) {
		perror(out);
		return 1;
	}
	/* 1: the device and peers 1 and 2. */
	m = dump_msg(bufs[0]);
	mnl_attr_put_u16(m, WGDEVICE_A_LISTEN_PORT, 51820);
	mnl_attr_put_u32(m, WGDEVICE_A_FWMARK, 0);
	mnl_attr_put_u32(m, WGDEVICE_A_IFINDEX, 7);
	fixture_key(14, key);
	mnl_attr_put(m, WGDEVICE_A_PRIVATE_KEY, 32, key);
	fixture_key(15, key);
	mnl_attr_put(m, WGDEVICE_A_PUBLIC_KEY, 32, key);
	peers = mnl_attr_nest_start(m, WGDEVICE_A_PEERS);
	peer = mnl_attr_nest_start(m, 0);
	put_peer(m, 1, true, "10.0.0.1:40001", 0, 1764000000);
	aips = mnl_attr_nest_start(m, WGPEER_A_ALLOWEDIPS);
	put_aip(m, AF_INET, "10.9.0.2", 32);
	mnl_attr_nest_end(m, aips);
	mnl_attr_nest_end(m, peer);
	peer = mnl_attr_nest_start(m, 0);
	put_peer(m, 2, false, "[fd00::1]:40002", 25, 0);
	aips = mnl_attr_nest_start(m, WGPEER_A_ALLOWEDIPS);
	put_aip(m, AF_INET6, "fd10::2", 128);
	put_aip(m, AF_INET, "10.9.0.3", 32);
	mnl_attr_nest_end(m, aips);
	mnl_attr_nest_end(m, peer);
	/* ... and the start of peer 3, whose 300 allowed IPs do not fit. */
	peer = mnl_attr_nest_start(m, 0);
	put_peer(m, 3, false, NULL, 0, 1764000100);
	aips = mnl_attr_nest_start(m, WGPEER_A_ALLOWEDIPS);
	for (int i = 0; i < 100; i++) {
		snprintf(ip, sizeof(ip), "10.20.%d.%d", i / 250, i % 250 + 1);
		put_aip(m, AF_INET, ip, 32);
	}
	mnl_attr_nest_end(m, aips);
	mnl_attr_nest_end(m, peer);
	mnl_attr_nest_end(m, peers);
	/* 2 and 3: peer 3 continued (only its key and allowed IPs), then peer 4. */
	for (int part = 1; part <= 2; part++) {
		m = dump_msg(bufs[part]);
		peers = mnl_attr_nest_start(m, WGDEVICE_A_PEERS);
		peer = mnl_attr_nest_start(m, 0);
		fixture_key(3, key);
		mnl_attr_put(m, WGPEER_A_PUBLIC_KEY, 32, key);
		aips = mnl_attr_nest_start(m, WGPEER_A_ALLOWEDIPS);
		for (int i = part * 100; i < part * 100 + 100; i++) {
			snprintf(ip, sizeof(ip), "10.20.%d.%d", i / 250, i % 250 + 1);
			put_aip(m, AF_INET, ip, 32);
		}
		mnl_attr_nest_end(m, aips);
		mnl_attr_nest_end(m, peer);
		if (part == 2) {
			peer = mnl_attr_nest_start(m, 0);
			put_peer(m, 4, false, "10.0.0.1:40004", 0, 0);
			mnl_attr_nest_end(m, peer);
		}
		mnl_attr_nest_end(m, peers);
	}
	for (int i = 0; i < 3; i++) {
		const struct nlmsghdr *h = (const void *)bufs[i];
		if (fwrite(h, 1, h->nlmsg_len, fp) != h->nlmsg_len) {
			fclose(fp);
			return 1;
		}
	}
	return fclose(fp) ? 1 : 0;
}

static void b64(const uint8_t k[32], char out[45])
{
	sodium_bin2base64(out, 45, k, 32, sodium_base64_VARIANT_ORIGINAL);
}

static int show(const char *ifname)
{
	struct wgnl_device dev;
	int ret = wgnl_get_device(ifname, &dev);

	if (ret < 0) {
		fprintf(stderr, "wgnl_get_device: %s\n", strerror(-ret));
		return 1;
	}
	printf("%d\n", dev.listen_port);
	for (size_t i = 0; i < dev.n; i++) {
		const struct wgnl_peer *p = &dev.peers[i];
		char k[45], psk[45], ep[ADDR_STRLEN], ip[INET6_ADDRSTRLEN];
		b64(p->pub, k);
		b64(p->psk, psk);
		printf("%s\t%s\t%s\t", k, p->has_psk ? psk : "(none)",
		       p->ep.sa.sa_family ? addr_fmt(&p->ep, ep, sizeof(ep)) : "(none)");
		for (size_t j = 0; j < p->n_aips; j++)
			printf("%s%s/%u", j ? "," : "",
			       inet_ntop(p->aips[j].family, p->aips[j].addr, ip, sizeof(ip)),
			       p->aips[j].cidr);
		printf("%s\t%lld\t", p->n_aips ? "" : "(none)", (long long)p->handshake_s);
		if (p->keepalive > 0)
			printf("%d\n", p->keepalive);
		else
			printf("off\n");
	}
	wgnl_device_free(&dev);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "fixture"))
		return fixture(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "show"))
		return show(argv[2]);
	if (argc == 3 && !strcmp(argv[1], "peers")) {
		static struct wgdev_peer peers[WGDEV_MAX_PEERS];
		int n = wgdev_peers(argv[2], peers, WGDEV_MAX_PEERS);
		if (n < 0) {
			fprintf(stderr, "wgdev_peers: %s\n", strerror(-n));
			return 1;
		}
		printf("%s\n", wgdev_kind(argv[2]));
		for (int i = 0; i < n; i++) {
			char k[45];
			b64(peers[i].pub, k);
			printf("%s %s %llu\n", k, peers[i].endpoint[0] ? peers[i].endpoint : "(none)",
			       (unsigned long long)peers[i].handshake_s);
		}
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "conf")) {
		struct wgdev_conf conf;
		int r = wgdev_conf(argv[2], &conf);
		if (r < 0) {
			fprintf(stderr, "wgdev_conf: %s\n", strerror(-r));
			return 1;
		}
		printf("%s %d 0x%x\n", wgdev_kind(argv[2]), conf.listen_port, (unsigned)conf.fwmark);
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "fwmark")) {
		char *end;
		unsigned long mark = strtoul(argv[3], &end, 0);
		int r;
		if (*end || mark > UINT32_MAX) {
			fprintf(stderr, "bad mark\n");
			return 2;
		}
		r = wgdev_set_fwmark(argv[2], (uint32_t)mark);
		if (r < 0) {
			fprintf(stderr, "wgdev_set_fwmark: %s\n", strerror(-r));
			return 1;
		}
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "rehandshake")) {
		struct wgdev_move mv = {0};
		size_t bin;
		if (sodium_base642bin(mv.pub, 32, argv[3], strlen(argv[3]), NULL, &bin, NULL,
				      sodium_base64_VARIANT_ORIGINAL) != 0 || bin != 32 ||
		    snprintf(mv.endpoint, sizeof(mv.endpoint), "%s", argv[4]) >= (int)sizeof(mv.endpoint)) {
			fprintf(stderr, "bad key or endpoint\n");
			return 2;
		}
		wgdev_rehandshake(argv[2], &mv, 1);
		if (mv.result < 0) {
			fprintf(stderr, "wgdev_rehandshake: %s\n", strerror(-mv.result));
			return 1;
		}
		return 0;
	}
	fprintf(stderr, "usage: wgnl-tool fixture OUT | show IF | peers IF | rehandshake IF KEY IP:PORT | "
		"conf IF | fwmark IF MARK\n");
	return 2;
}
