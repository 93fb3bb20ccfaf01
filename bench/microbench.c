// SPDX-License-Identifier: MIT
/*
 * wglb-microbench: the CPU cost of wglb's own per-datagram work, which the
 * end-to-end bench cannot separate from the kernel's: classifying a
 * datagram, a flow lookup, a mac1 check, a rate-limit check, and a Maglev
 * rebuild for 3, 100 and 256 backends. Prints JSON.
 */
#include "wglb/flow.h"
#include "wglb/mac.h"
#include "wglb/maglev.h"
#include "wglb/ratelimit.h"
#include "wglb/wgmsg.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile uint64_t sink; /* keeps the compiler from dropping the work */

int main(void)
{
	enum { N = 2000000, FLOWS = 20000 };
	uint8_t init[148];
	struct wg_info wi;
	struct flow_table ft;
	struct mac1_key key;
	struct ratelimit_table rl;
	static uint16_t table[MAGLEV_SIZE];
	double t, classify, lookup, mac, limit, rebuild[3];
	static const unsigned nbe[3] = {3, 100, 256};

	if (sodium_init() < 0 || flow_table_init(&ft, 65536) < 0 ||
	    mac1_key_from_base64("fE/wdxzl0klVp/IR8UcaoGUMjqaWi3jAd7KzHKFS6Ds=", &key) < 0 ||
	    rl_init(&rl, 20, 5) < 0)
		return 1;
	randombytes_buf(init, sizeof(init));
	init[0] = 1;
	init[1] = init[2] = init[3] = 0;

	t = now_ns();
	for (int i = 0; i < N; i++) {
		init[4] = (uint8_t)i;
		sink += wgmsg_classify(init, 148, &wi) + wi.sender;
	}
	classify = (now_ns() - t) / N;

	for (uint32_t i = 0; i < FLOWS; i++) {
		struct flow_key k = {.family = AF_INET, .port = (uint16_t)i};
		uint32_t ip = htonl(0x0a000000u + i);
		memcpy(k.addr, &ip, 4);
		flow_insert(&ft, &k, flow_hash(&ft, &k), 0);
	}
	t = now_ns();
	for (int i = 0; i < N; i++) {
		struct flow_key k = {.family = AF_INET, .port = (uint16_t)(i % FLOWS)};
		uint32_t ip = htonl(0x0a000000u + (uint32_t)(i % FLOWS));
		memcpy(k.addr, &ip, 4);
		sink += (uintptr_t)flow_lookup(&ft, &k, flow_hash(&ft, &k));
	}
	lookup = (now_ns() - t) / N;

	t = now_ns();
	for (int i = 0; i < N / 10; i++) {
		init[5] = (uint8_t)i;
		sink += mac1_valid(&key, init, 148);
	}
	mac = (now_ns() - t) / (N / 10);

	t = now_ns();
	for (int i = 0; i < N; i++) {
		uint8_t a[16] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
		sink += rl_allow(&rl, AF_INET, a, (uint64_t)i * 1000);
	}
	limit = (now_ns() - t) / N;

	for (int k = 0; k < 3; k++) {
		struct maglev_input in[256];
		for (unsigned i = 0; i < nbe[k]; i++) {
			char name[32];
			snprintf(name, sizeof(name), "backend-%u", i);
			maglev_backend_hash(name, &in[i].offset_hash, &in[i].skip_hash);
			in[i].weight = 1 + i % 3;
			in[i].id = (uint16_t)i;
		}
		t = now_ns();
		for (int r = 0; r < 20; r++)
			maglev_build(in, nbe[k], table, MAGLEV_SIZE);
		rebuild[k] = (now_ns() - t) / 20 / 1e6;
		sink += table[7];
	}
	printf("{\"classify_ns\": %.1f, \"flow_lookup_ns\": %.1f, \"mac1_check_ns\": %.1f, "
	       "\"rate_limit_ns\": %.1f, \"maglev_rebuild_ms\": {\"3\": %.3f, \"100\": %.3f, "
	       "\"256\": %.3f}}\n",
	       classify, lookup, mac, limit, rebuild[0], rebuild[1], rebuild[2]);
	flow_table_free(&ft);
	rl_free(&rl);
	return 0;
}
