// SPDX-License-Identifier: MIT
/*
 * The fast path's BPF program on crafted packets (BPF_PROG_TEST_RUN): each
 * rewrite byte for byte against a packet built from scratch with its
 * checksums computed here, and every datagram it must leave alone left
 * alone. The program is loaded with fib_bypass (a test run has no route to
 * look up), so a rewrite returns FASTPATH_RET_REWRITTEN instead of a
 * redirect; one instance without it shows that a failed FIB lookup leaves
 * the datagram untouched. Needs root (exit 77 otherwise).
 */
#include "wglb/fastpath.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#define ETH_LEN 14
#define PKT_MAX 4096

static struct fastpath *fp;      /* fib_bypass: rewrites are visible */
static struct fastpath *fp_fib;  /* the real thing: looks up the next hop */

/* ---- packets from scratch ---- */

struct spec {
	int family;
	uint8_t src[16], dst[16];
	uint16_t sport, dport; /* host order */
	uint8_t ttl;
	const uint8_t *payload;
	size_t plen;
	bool no_udp_csum;   /* IPv4: checksum 0 (none) */
	uint16_t frag_off;  /* IPv4: flags and offset, host order */
	bool ip_options;    /* IPv4: ihl 6 (four NOPs) */
	bool v6_frag_hdr;   /* IPv6: a fragment header before UDP */
	bool zero_csum_v6;  /* IPv6: UDP checksum 0 (invalid) */
	size_t trailer;     /* bytes after the IP datagram (padding) */
};

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Ethernet, IP, UDP, payload; every length and checksum computed here. */
static size_t build(const struct spec *s, uint8_t *out)
{
	/* To the test run's device (lo, address 00:00:00:00:00:00): PACKET_HOST. */
	static const uint8_t macs[12] = {0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2};
	size_t alen = s->family == AF_INET ? 4 : 16, l3, l4, udplen = 8 + s->plen;
	uint32_t pseudo;
	uint8_t *ip = out + ETH_LEN, *udp;

	memset(out, 0, PKT_MAX);
	memcpy(out, macs, sizeof(macs));
	if (s->family == AF_INET) {
		l3 = s->ip_options ? 24 : 20;
		put16(out + 12, 0x0800);
		ip[0] = (uint8_t)(0x40 | (l3 / 4));
		ip[1] = 0x10; /* a TOS, carried unchanged */
		put16(ip + 2, (uint16_t)(l3 + udplen));
		put16(ip + 4, 0x1234);
		put16(ip + 6, s->frag_off);
		ip[8] = s->ttl;
		ip[9] = 17;
		memcpy(ip + 12, s->src, 4);
		memcpy(ip + 16, s->dst, 4);
		if (s->ip_options)
			memset(ip + 20, 1, 4);
		put16(ip + 10, fold(sum16(ip, l3, 0)));
	} else {
		l3 = s->v6_frag_hdr ? 48 : 40;
		put16(out + 12, 0x86dd);
		ip[0] = 0x60;
		ip[1] = 0x0a; /* traffic class and flow label, carried unchanged */
		ip[2] = 0xbc;
		ip[3] = 0xde;
		put16(ip + 4, (uint16_t)(l3 - 40 + udplen));
		ip[6] = s->v6_frag_hdr ? 44 : 17;
		ip[7] = s->ttl;
		memcpy(ip + 8, s->src, 16);
		memcpy(ip + 24, s->dst, 16);
		if (s->v6_frag_hdr) {
			ip[40] = 17;
			put16(ip + 42, 1); /* offset 0, more fragments */
			memcpy(ip + 44, "\x01\x02\x03\x04", 4);
		}
	}
	l4 = ETH_LEN + l3;
	udp = out + l4;
	put16(udp, s->sport);
	put16(udp + 2, s->dport);
	put16(udp + 4, (uint16_t)udplen);
	memcpy(udp + 8, s->payload, s->plen);
	pseudo = sum16(s->src, alen, 0) + sum16(s->dst, alen, 0) + 17 + (uint32_t)udplen;
	if (!(s->family == AF_INET && s->no_udp_csum) && !s->zero_csum_v6) {
		uint16_t c = fold(sum16(udp, udplen, pseudo));
		put16(udp + 6, c ? c : 0xffff);
	}
	return l4 + udplen + s->trailer;
}

/* ---- the flows ---- */

static void sa4(union wglb_sa *sa, const char *ip, uint16_t port)
{
	memset(sa, 0, sizeof(*sa));
	sa->in4.sin_family = AF_INET;
	sa->in4.sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &sa->in4.sin_addr), 1);
}

static void sa6(union wglb_sa *sa, const char *ip, uint16_t port)
{
	memset(sa, 0, sizeof(*sa));
	sa->in6.sin6_family = AF_INET6;
	sa->in6.sin6_port = htons(port);
	assert_int_equal(inet_pton(AF_INET6, ip, &sa->in6.sin6_addr), 1);
}

static void flow4(struct fastpath_flow *f)
{
	sa4(&f->client, "198.51.100.7", 40000);
	sa4(&f->listen, "203.0.113.1", 51820);
	sa4(&f->upstream, "10.0.0.1", 33001);
	sa4(&f->backend, "10.0.1.5", 51820);
	f->confirmed = true;
}

static void flow6(struct fastpath_flow *f)
{
	sa6(&f->client, "2001:db8:1::7", 40000);
	sa6(&f->listen, "2001:db8::1", 51820);
	sa6(&f->upstream, "fd00::1", 33001);
	sa6(&f->backend, "fd00:1::5", 51820);
	f->confirmed = true;
}

static uint16_t port_of(const union wglb_sa *sa)
{
	return ntohs(sa->sa.sa_family == AF_INET ? sa->in4.sin_port : sa->in6.sin6_port);
}

static void addr_of(const union wglb_sa *sa, uint8_t *out)
{
	if (sa->sa.sa_family == AF_INET)
		memcpy(out, &sa->in4.sin_addr, 4);
	else
		memcpy(out, &sa->in6.sin6_addr, 16);
}

/* The datagram from a to b. */
static void spec_of(struct spec *s, const union wglb_sa *a, const union wglb_sa *b,
		    const uint8_t *payload, size_t plen)
{
	memset(s, 0, sizeof(*s));
	s->family = a->sa.sa_family;
	addr_of(a, s->src);
	addr_of(b, s->dst);
	s->sport = port_of(a);
	s->dport = port_of(b);
	s->ttl = 64;
	s->payload = payload;
	s->plen = plen;
}

static size_t transport(uint8_t *p, size_t len, uint8_t type)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 7 + 3);
	p[0] = type;
	p[1] = p[2] = p[3] = 0;
	return len;
}

/* ---- running it ---- */

static int run(struct fastpath *inst, const uint8_t *in, size_t len, uint8_t *out,
	       size_t *out_len, const struct __sk_buff *ctx)
{
	struct __sk_buff c;
	struct bpf_test_run_opts o = {.sz = sizeof(o), .data_in = in, .data_size_in = (uint32_t)len,
				      .data_out = out, .data_size_out = PKT_MAX};

	if (ctx) {
		c = *ctx;
		o.ctx_in = &c;
		o.ctx_size_in = sizeof(c);
	}
	assert_int_equal(bpf_prog_test_run_opts(fastpath_prog_fd(inst), &o), 0);
	*out_len = o.data_size_out;
	return (int)o.retval;
}

/* a -> b rewritten as c -> d, one TTL less, checksums from scratch. */
static void expect_rewrite(const struct spec *in, const union wglb_sa *c, const union wglb_sa *d)
{
	static uint8_t pin[PKT_MAX], pout[PKT_MAX], want[PKT_MAX];
	struct spec w = *in;
	size_t n = build(in, pin), got_len, wn;

	addr_of(c, w.src);
	addr_of(d, w.dst);
	w.sport = port_of(c);
	w.dport = port_of(d);
	w.ttl = (uint8_t)(in->ttl - 1);
	wn = build(&w, want);
	assert_int_equal(run(fp, pin, n, pout, &got_len, NULL), FASTPATH_RET_REWRITTEN);
	assert_int_equal(got_len, wn);
	assert_memory_equal(pout, want, wn);
}

/* The program must return TC_ACT_OK and leave every byte as it came. */
static void expect_untouched(struct fastpath *inst, const uint8_t *pin, size_t n,
			     const struct __sk_buff *ctx, const char *what)
{
	static uint8_t pout[PKT_MAX];
	size_t got_len;
	int rc = run(inst, pin, n, pout, &got_len, ctx);

	if (rc != TC_ACT_OK)
		fail_msg("%s: verdict %d, want TC_ACT_OK", what, rc);
	assert_int_equal(got_len, n);
	if (memcmp(pout, pin, n))
		fail_msg("%s: bytes changed", what);
}

static void expect_spec_untouched(const struct spec *s, const char *what)
{
	static uint8_t pin[PKT_MAX];

	expect_untouched(fp, pin, build(s, pin), NULL, what);
}

/* ---- the tests ---- */

static void test_rewrite_v4(void **state)
{
	struct fastpath_flow f;
	struct fastpath_counters tb, tc;
	uint8_t pl[1452];
	struct spec s;

	(void)state;
	flow4(&f);
	assert_int_equal(fastpath_flow_put(fp, &f), 0);
	/* An odd length, the smallest, and a full datagram at MTU 1500. */
	const size_t lens[] = {33, 32, 1452};
	for (size_t i = 0; i < 3; i++) {
		spec_of(&s, &f.client, &f.listen, pl, transport(pl, lens[i], 4));
		expect_rewrite(&s, &f.upstream, &f.backend);
		spec_of(&s, &f.backend, &f.upstream, pl, transport(pl, lens[i], 4));
		expect_rewrite(&s, &f.listen, &f.client);
	}
	/* A UDP checksum of 0 is none in IPv4: it stays none. */
	spec_of(&s, &f.client, &f.listen, pl, transport(pl, 101, 4));
	s.no_udp_csum = true;
	expect_rewrite(&s, &f.upstream, &f.backend);

	assert_int_equal(fastpath_flow_counters(fp, &f, &tb, &tc), 0);
	assert_int_equal(tb.packets, 4);
	assert_int_equal(tb.bytes, 33 + 32 + 1452 + 101);
	assert_int_equal(tc.packets, 3);
	assert_int_equal(tc.bytes, 33 + 32 + 1452);
	assert_true(tb.last_ns > 0 && tc.last_ns > 0);
	assert_int_equal(fastpath_flow_del(fp, &f), 0);
}

static void test_rewrite_v6(void **state)
{
	struct fastpath_flow f;
	struct fastpath_counters tb, tc;
	uint8_t pl[1432];
	struct spec s;

	(void)state;
	flow6(&f);
	assert_int_equal(fastpath_flow_put(fp, &f), 0);
	const size_t lens[] = {33, 32, 1432};
	for (size_t i = 0; i < 3; i++) {
		spec_of(&s, &f.client, &f.listen, pl, transport(pl, lens[i], 4));
		expect_rewrite(&s, &f.upstream, &f.backend);
		spec_of(&s, &f.backend, &f.upstream, pl, transport(pl, lens[i], 4));
		expect_rewrite(&s, &f.listen, &f.client);
	}
	assert_int_equal(fastpath_flow_counters(fp, &f, &tb, &tc), 0);
	assert_int_equal(tb.packets, 3);
	assert_int_equal(tc.packets, 3);
	assert_int_equal(tc.bytes, 33 + 32 + 1432);
	assert_int_equal(fastpath_flow_del(fp, &f), 0);
}

/* Everything the userspace path must see goes up untouched. */
static void test_pass_up(void **state)
{
	struct fastpath_flow f4, f6;
	uint8_t pl[256];
	struct spec s;
	static const struct {
		uint8_t type;
		size_t len;
		const char *what;
	} types[] = {
		{1, 148, "initiation"}, {2, 92, "response"}, {3, 64, "cookie reply"},
		{4, 31, "transport of 31 bytes"}, {4, 4, "a bare type word"},
		{0, 32, "type 0"}, {5, 32, "type 5"},
	};

	(void)state;
	flow4(&f4);
	flow6(&f6);
	assert_int_equal(fastpath_flow_put(fp, &f4), 0);
	assert_int_equal(fastpath_flow_put(fp, &f6), 0);
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		spec_of(&s, &f4.client, &f4.listen, pl, transport(pl, types[i].len, types[i].type));
		expect_spec_untouched(&s, types[i].what);
		spec_of(&s, &f6.backend, &f6.upstream, pl,
			transport(pl, types[i].len, types[i].type));
		expect_spec_untouched(&s, types[i].what);
	}
	for (int b = 1; b <= 3; b++) {
		spec_of(&s, &f4.client, &f4.listen, pl, transport(pl, 64, 4));
		pl[b] = 0x80;
		expect_spec_untouched(&s, "a reserved byte set");
	}
	spec_of(&s, &f4.client, &f4.listen, pl, transport(pl, 1, 4));
	expect_spec_untouched(&s, "one byte of UDP payload");
	spec_of(&s, &f4.client, &f4.listen, pl, 0);
	expect_spec_untouched(&s, "empty UDP");

	spec_of(&s, &f4.client, &f4.listen, pl, transport(pl, 64, 4));
	s.frag_off = 0x2000;
	expect_spec_untouched(&s, "first fragment (MF)");
	s.frag_off = 0x0010;
	expect_spec_untouched(&s, "a later fragment (offset)");
	s.frag_off = 0x4000; /* DF alone is not a fragment: forwarded */
	expect_rewrite(&s, &f4.upstream, &f4.backend);
	s.frag_off = 0;
	s.ip_options = true;
	expect_spec_untouched(&s, "IPv4 options");
	s.ip_options = false;
	s.ttl = 1;
	expect_spec_untouched(&s, "TTL 1");
	s.ttl = 0;
	expect_spec_untouched(&s, "TTL 0");
	s.ttl = 64;
	s.trailer = 6;
	expect_spec_untouched(&s, "bytes after the IP datagram");
	s.trailer = 0;
	{
		static uint8_t pin[PKT_MAX];
		size_t n = build(&s, pin);

		pin[0] = 2; /* another host's MAC: PACKET_OTHERHOST */
		expect_untouched(fp, pin, n, NULL, "another host's frame");
		memset(pin, 0xff, 6);
		expect_untouched(fp, pin, n, NULL, "a broadcast frame");
	}

	spec_of(&s, &f6.client, &f6.listen, pl, transport(pl, 64, 4));
	s.v6_frag_hdr = true;
	expect_spec_untouched(&s, "IPv6 fragment header");
	s.v6_frag_hdr = false;
	s.ttl = 1;
	expect_spec_untouched(&s, "hop limit 1");
	s.ttl = 64;
	s.zero_csum_v6 = true;
	expect_spec_untouched(&s, "IPv6 UDP checksum 0");

	/* No entry: another port, another address, the wrong direction. */
	spec_of(&s, &f4.client, &f4.listen, pl, transport(pl, 64, 4));
	s.sport++;
	expect_spec_untouched(&s, "no entry (source port)");
	spec_of(&s, &f4.listen, &f4.client, pl, transport(pl, 64, 4));
	expect_spec_untouched(&s, "no entry (reversed)");
	spec_of(&s, &f6.client, &f6.listen, pl, transport(pl, 64, 4));
	s.dst[15] ^= 1;
	expect_spec_untouched(&s, "no entry (address)");

	assert_int_equal(fastpath_flow_del(fp, &f4), 0);
	assert_int_equal(fastpath_flow_del(fp, &f6), 0);
}

/* An entry not confirmed is ignored; one deleted is gone at once. */
static void test_unconfirmed_and_stale(void **state)
{
	struct fastpath_flow f;
	struct fastpath_counters tb, tc;
	uint8_t pl[64];
	struct spec s;

	(void)state;
	flow4(&f);
	f.confirmed = false;
	assert_int_equal(fastpath_flow_put(fp, &f), 0);
	spec_of(&s, &f.client, &f.listen, pl, transport(pl, 64, 4));
	expect_spec_untouched(&s, "unconfirmed");
	spec_of(&s, &f.backend, &f.upstream, pl, transport(pl, 64, 4));
	expect_spec_untouched(&s, "unconfirmed, backend's side");

	f.confirmed = true; /* confirmation: the same entry, now forwarded */
	assert_int_equal(fastpath_flow_put(fp, &f), 0);
	expect_rewrite(&s, &f.listen, &f.client);
	spec_of(&s, &f.client, &f.listen, pl, transport(pl, 64, 4));
	expect_rewrite(&s, &f.upstream, &f.backend);

	/* A re-pin puts new values; the client's side keeps its count. */
	sa4(&f.backend, "10.0.1.6", 51820);
	assert_int_equal(fastpath_flow_put(fp, &f), 0);
	expect_rewrite(&s, &f.upstream, &f.backend);
	assert_int_equal(fastpath_flow_counters(fp, &f, &tb, &tc), 0);
	assert_int_equal(tb.packets, 2);
	assert_int_equal(tc.packets, 0); /* the new backend's side is a new entry */

	assert_int_equal(fastpath_flow_del(fp, &f), 0);
	expect_spec_untouched(&s, "deleted");
	spec_of(&s, &f.backend, &f.upstream, pl, transport(pl, 64, 4));
	expect_spec_untouched(&s, "deleted, backend's side");
	assert_int_equal(fastpath_flow_del(fp, &f), -ENOENT);
	assert_int_equal(fastpath_flow_counters(fp, &f, &tb, &tc), -ENOENT);
	/* The old backend's reverse entry was left by the re-pin above: the
	 * caller deletes the old flow before it puts the new one. */
	sa4(&f.backend, "10.0.1.5", 51820);
	assert_int_equal(fastpath_flow_del(fp, &f), 0);
}

/* The API refuses what it cannot express. */
static void test_api(void **state)
{
	struct fastpath_flow f;

	(void)state;
	flow4(&f);
	sa6(&f.backend, "fd00:1::5", 51820);
	assert_int_equal(fastpath_flow_put(fp, &f), -EAFNOSUPPORT);
	assert_int_equal(fastpath_attach(fp, "lo"), -EOPNOTSUPP);
	assert_int_equal(fastpath_attach(fp, "no-such-if0"), -ENODEV);
	assert_int_equal(fastpath_detach(fp, "lo"), -ENOENT);
}

/* A GRO train: every segment is a datagram of its own to wglb. */
static void test_gro_train(void **state)
{
	struct fastpath_flow f;
	struct fastpath_counters tb, tc;
	static uint8_t pl[1024], pin[PKT_MAX], pout[PKT_MAX], want[PKT_MAX];
	struct __sk_buff ctx;
	struct spec s, w;
	size_t n, wn, got;

	(void)state;
	flow4(&f);
	assert_int_equal(fastpath_flow_put(fp, &f), 0);
	memset(&ctx, 0, sizeof(ctx));
	ctx.gso_size = 148;
	ctx.gso_segs = 3;
	for (int i = 0; i < 3; i++)
		transport(pl + i * 148, i == 2 ? 100 : 148, 4);
	spec_of(&s, &f.client, &f.listen, pl, 2 * 148 + 100);
	w = s;
	addr_of(&f.upstream, w.src);
	addr_of(&f.backend, w.dst);
	w.sport = port_of(&f.upstream);
	w.dport = port_of(&f.backend);
	w.ttl = 63;
	n = build(&s, pin);
	wn = build(&w, want);
	assert_int_equal(run(fp, pin, n, pout, &got, &ctx), FASTPATH_RET_REWRITTEN);
	assert_int_equal(got, wn);
	assert_memory_equal(pout, want, wn);
	assert_int_equal(fastpath_flow_counters(fp, &f, &tb, &tc), 0);
	assert_int_equal(tb.packets, 3);
	assert_int_equal(tb.bytes, 2 * 148 + 100);

	pl[148] = 1; /* an initiation as the second segment */
	n = build(&s, pin);
	expect_untouched(fp, pin, n, &ctx, "an initiation inside a train");
	pl[148] = 4;
	spec_of(&s, &f.client, &f.listen, pl, 2 * 148 + 31);
	n = build(&s, pin);
	expect_untouched(fp, pin, n, &ctx, "a last segment of 31 bytes");
	assert_int_equal(fastpath_flow_del(fp, &f), 0);
}

/* Without the bypass: no route in a test run, so the datagram goes up
 * untouched, however far the checks got, and the program says why. */
static void test_fib_failure_untouched(void **state)
{
	struct fastpath_flow f;
	struct fastpath_events ev0, ev1;
	static uint8_t pl[64], pin[PKT_MAX];
	struct spec s;

	(void)state;
	flow4(&f);
	assert_int_equal(fastpath_flow_put(fp_fib, &f), 0);
	assert_int_equal(fastpath_events(fp_fib, &ev0), 0);
	spec_of(&s, &f.client, &f.listen, pl, transport(pl, 64, 4));
	expect_untouched(fp_fib, pin, build(&s, pin), NULL, "no route");
	assert_int_equal(fastpath_events(fp_fib, &ev1), 0);
	assert_int_equal(ev1.fib_failed + ev1.no_neigh + ev1.frag_needed + ev1.fwd_disabled,
			 ev0.fib_failed + ev0.no_neigh + ev0.frag_needed + ev0.fwd_disabled + 1);
	assert_int_equal(ev1.rewrite_failed, 0);
	assert_int_equal(fastpath_flow_del(fp_fib, &f), 0);
}

/* ---- the program's own cost (printed, not asserted) ---- */

/* A test run repeats on one skb, rewritten each time: a mirror flow
 * (client and upstream, listen and backend swapped) rewrites it back, so
 * every run is a full rewrite. The TTL falls by one a run, so runs come
 * in rounds of 250 from a fresh packet. */
static double ns_per_packet(const struct spec *s, int rounds)
{
	static uint8_t pin[PKT_MAX], pout[PKT_MAX];
	size_t n = build(s, pin);
	uint64_t total = 0;

	for (int r = 0; r < rounds; r++) {
		struct bpf_test_run_opts o = {.sz = sizeof(o), .data_in = pin,
					      .data_size_in = (uint32_t)n, .data_out = pout,
					      .data_size_out = PKT_MAX, .repeat = 250};
		assert_int_equal(bpf_prog_test_run_opts(fastpath_prog_fd(fp), &o), 0);
		assert_int_equal(o.retval, FASTPATH_RET_REWRITTEN);
		total += o.duration; /* the mean of the round, in ns */
	}
	return (double)total / rounds;
}

static void mirror(struct fastpath_flow *m, const struct fastpath_flow *f)
{
	m->client = f->upstream;
	m->listen = f->backend;
	m->upstream = f->client;
	m->backend = f->listen;
	m->confirmed = true;
}

static void test_cost(void **state)
{
	struct fastpath_flow f[2], m[2];
	static uint8_t pl[160];
	struct spec s;
	const char *fam[2] = {"IPv4", "IPv6"};

	(void)state;
	flow4(&f[0]);
	flow6(&f[1]);
	printf("# fast path cost, BPF_PROG_TEST_RUN, 1e6 runs each, 160-byte WireGuard payload\n");
	for (int i = 0; i < 2; i++) {
		mirror(&m[i], &f[i]);
		assert_int_equal(fastpath_flow_put(fp, &f[i]), 0);
		assert_int_equal(fastpath_flow_put(fp, &m[i]), 0);
		transport(pl, sizeof(pl), 4);
		spec_of(&s, &f[i].client, &f[i].listen, pl, sizeof(pl));
		s.ttl = 255;
		printf("# %s client->backend: %.1f ns/packet\n", fam[i], ns_per_packet(&s, 4000));
		spec_of(&s, &f[i].backend, &f[i].upstream, pl, sizeof(pl));
		s.ttl = 255;
		printf("# %s backend->client: %.1f ns/packet\n", fam[i], ns_per_packet(&s, 4000));
		assert_int_equal(fastpath_flow_del(fp, &f[i]), 0);
		assert_int_equal(fastpath_flow_del(fp, &m[i]), 0);
	}
	/* What every other datagram pays: parsed, looked up, passed. */
	{
		static uint8_t pin[PKT_MAX], pout[PKT_MAX];
		size_t n;

		spec_of(&s, &f[0].client, &f[0].listen, pl, sizeof(pl));
		n = build(&s, pin);
		struct bpf_test_run_opts o = {.sz = sizeof(o), .data_in = pin,
					      .data_size_in = (uint32_t)n, .data_out = pout,
					      .data_size_out = PKT_MAX, .repeat = 1000000};
		assert_int_equal(bpf_prog_test_run_opts(fastpath_prog_fd(fp), &o), 0);
		assert_int_equal(o.retval, TC_ACT_OK);
		printf("# IPv4 no entry (passed up): %u ns/packet\n", o.duration);
	}
}

int main(void)
{
	struct fastpath_opts bypass = {.fib_bypass = true};
	int rc;

	if (geteuid() != 0) {
		printf("SKIP: loading BPF needs root\n");
		return 77;
	}
	rc = fastpath_open(&fp, &bypass);
	if (!rc)
		rc = fastpath_open(&fp_fib, NULL);
	if (rc == -EPERM || rc == -EACCES || rc == -ENOSYS || rc == -ENOTSUP) {
		printf("SKIP: BPF cannot load here: %s\n", strerror(-rc));
		fastpath_close(fp);
		return 77;
	}
	if (rc) {
		/* Root and BPF, yet the program was refused: the verifier's
		 * reason is in libbpf's output above. */
		printf("FAIL: the fast path did not load: %s\n", strerror(-rc));
		fastpath_close(fp);
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rewrite_v4),
		cmocka_unit_test(test_rewrite_v6),
		cmocka_unit_test(test_pass_up),
		cmocka_unit_test(test_unconfirmed_and_stale),
		cmocka_unit_test(test_api),
		cmocka_unit_test(test_gro_train),
		cmocka_unit_test(test_fib_failure_untouched),
		cmocka_unit_test(test_cost),
	};
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	fastpath_close(fp_fib);
	fastpath_close(fp);
	return rc;
}
