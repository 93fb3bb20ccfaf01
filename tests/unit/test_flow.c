// SPDX-License-Identifier: MIT
/* Flow table: insert, lookup, remove, cap, confirmed-flow protection, scan, key randomness. */
#include "wglb/flow.h"
#include "wglb/srvidx.h"

#include <arpa/inet.h>
#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

static struct flow_key key(uint32_t ip, uint16_t port)
{
	struct flow_key k;

	memset(&k, 0, sizeof(k));
	k.family = AF_INET;
	ip = htonl(ip);
	memcpy(k.addr, &ip, 4);
	k.port = htons(port);
	return k;
}

static void test_insert_lookup_remove(void **state)
{
	struct flow_table ft;
	struct flow_key k1 = key(0x0a000001, 1000), k2 = key(0x0a000001, 1001);

	(void)state;
	assert_int_equal(flow_table_init(&ft, 16), 0);
	struct flow *f = flow_insert(&ft, &k1, flow_hash(&ft, &k1), 5);
	assert_non_null(f);
	assert_ptr_equal(flow_lookup(&ft, &k1, flow_hash(&ft, &k1)), f);
	assert_null(flow_lookup(&ft, &k2, flow_hash(&ft, &k2)));
	assert_int_equal(ft.count, 1);
	assert_int_equal(f->created, 5);
	flow_remove(&ft, f);
	assert_null(flow_lookup(&ft, &k1, flow_hash(&ft, &k1)));
	assert_int_equal(ft.count, 0);
	flow_table_free(&ft);
}

static void test_cap_and_confirmed_protection(void **state)
{
	struct flow_table ft;
	struct flow *fl[4];

	(void)state;
	assert_int_equal(flow_table_init(&ft, 4), 0);
	for (int i = 0; i < 4; i++) {
		struct flow_key k = key(0x0a000000u + (uint32_t)i, 1);
		fl[i] = flow_insert(&ft, &k, flow_hash(&ft, &k), 0);
		assert_non_null(fl[i]);
	}
	struct flow_key k5 = key(0x0b000000, 1);
	assert_null(flow_insert(&ft, &k5, flow_hash(&ft, &k5), 0));
	/* Oldest unconfirmed first; confirmed ones are never victims. */
	flow_confirm(&ft, fl[0]);
	flow_confirm(&ft, fl[2]);
	assert_ptr_equal(flow_victim(&ft), fl[1]);
	flow_remove(&ft, fl[1]);
	assert_ptr_equal(flow_victim(&ft), fl[3]);
	flow_confirm(&ft, fl[3]);
	struct flow *n = flow_insert(&ft, &k5, flow_hash(&ft, &k5), 0);
	assert_non_null(n);
	flow_confirm(&ft, n);
	assert_null(flow_victim(&ft)); /* all confirmed: a new flow is refused */
	assert_int_equal(ft.unconfirmed, 0);
	/* A demoted flow (its backend fell silent) goes first, proof void;
	 * demoting it twice changes nothing. */
	fl[2]->flags |= FLOW_F_PROOF;
	flow_demote(&ft, fl[2]);
	flow_demote(&ft, fl[2]);
	assert_int_equal(ft.unconfirmed, 1);
	assert_ptr_equal(flow_victim(&ft), fl[2]);
	assert_false(fl[2]->flags & (FLOW_F_CONFIRMED | FLOW_F_PROOF));
	flow_demote(&ft, fl[0]);
	assert_ptr_equal(flow_victim(&ft), fl[0]);
	flow_remove(&ft, fl[0]);
	assert_ptr_equal(flow_victim(&ft), fl[2]);
	flow_remove(&ft, fl[2]);
	assert_null(flow_victim(&ft));
	assert_int_equal(ft.unconfirmed, 0);
	flow_table_free(&ft);
}

/* Upstream ports name snat flows (the agent joins by them); a preserved
 * flow's port is its client's, shared with anyone's: never in the index,
 * and never able to unindex the snat flow that holds the same number. */
static void test_port_index_skips_preserved(void **state)
{
	struct flow_table ft;
	struct flow_key k1 = key(0x0a000001, 1000), k2 = key(0x0a000002, 1000);
	struct flow *a, *p;

	(void)state;
	assert_int_equal(flow_table_init(&ft, 16), 0);
	a = flow_insert(&ft, &k1, flow_hash(&ft, &k1), 1);
	flow_set_port(&ft, a, 40000);
	assert_ptr_equal(flow_by_port(&ft, 40000), a);
	p = flow_insert(&ft, &k2, flow_hash(&ft, &k2), 1);
	p->flags |= FLOW_F_PRESERVED;
	flow_set_port(&ft, p, 40000);
	assert_int_equal(p->up_port, 40000);
	assert_ptr_equal(flow_by_port(&ft, 40000), a);
	/* The same address and port on another listener: found on any. */
	struct flow_key q = k2;
	q.listener = 1;
	assert_ptr_equal(flow_find_preserved(&ft, &q, 2), p);
	assert_null(flow_find_preserved(&ft, &k1, 2)); /* a's is not preserved */
	flow_remove(&ft, p);
	assert_null(flow_find_preserved(&ft, &q, 2));
	assert_ptr_equal(flow_by_port(&ft, 40000), a);
	flow_remove(&ft, a);
	assert_null(flow_by_port(&ft, 40000));
	flow_table_free(&ft);
}

static void test_generation_bumps_on_reuse(void **state)
{
	struct flow_table ft;
	struct flow_key k = key(1, 1);

	(void)state;
	assert_int_equal(flow_table_init(&ft, 1), 0);
	struct flow *f = flow_insert(&ft, &k, flow_hash(&ft, &k), 0);
	uint16_t g = f->gen;
	flow_remove(&ft, f);
	f = flow_insert(&ft, &k, flow_hash(&ft, &k), 0);
	assert_int_not_equal(f->gen, g);
	flow_table_free(&ft);
}

static void expire_cb(struct flow *f, void *ctx)
{
	struct flow_table *ft = ctx;

	if (10 - f->last_rx >= 5)
		flow_remove(ft, f);
}

static void test_scan_expiry(void **state)
{
	struct flow_table ft;

	(void)state;
	assert_int_equal(flow_table_init(&ft, 100), 0);
	for (uint32_t i = 0; i < 100; i++) {
		struct flow_key k = key(i, 7);
		flow_insert(&ft, &k, flow_hash(&ft, &k), i % 2 ? 9 : 1); /* odd: recent */
	}
	flow_scan(&ft, 60, expire_cb, &ft);
	flow_scan(&ft, 60, expire_cb, &ft); /* the hand wraps and finishes */
	assert_int_equal(ft.count, 50);
	for (uint32_t i = 0; i < 100; i++) {
		struct flow_key k = key(i, 7);
		struct flow *f = flow_lookup(&ft, &k, flow_hash(&ft, &k));
		if (i % 2)
			assert_non_null(f);
		else
			assert_null(f);
	}
	flow_table_free(&ft);
}

static void test_many_and_key_randomness(void **state)
{
	struct flow_table a, b;
	struct flow_key k = key(0xc0a80001, 51820);
	int same = 0;

	(void)state;
	assert_int_equal(flow_table_init(&a, 20000), 0);
	for (uint32_t i = 0; i < 20000; i++) {
		struct flow_key ki = key(i * 2654435761u, (uint16_t)i);
		assert_non_null(flow_insert(&a, &ki, flow_hash(&a, &ki), 0));
	}
	for (uint32_t i = 0; i < 20000; i++) {
		struct flow_key ki = key(i * 2654435761u, (uint16_t)i);
		assert_non_null(flow_lookup(&a, &ki, flow_hash(&a, &ki)));
	}
	/* Each table draws its own SipHash key: the same client lands in
	 * different buckets, so nobody can precompute collisions. */
	for (int t = 0; t < 8; t++) {
		assert_int_equal(flow_table_init(&b, 16), 0);
		same += flow_hash(&a, &k) == flow_hash(&b, &k);
		flow_table_free(&b);
	}
	assert_true(same <= 1);
	flow_table_free(&a);
}

/* The session index against a plain array, through many adds, moves and
 * deletes in a small table (long probe runs, wrap-around, backward shift). */
static void test_srvidx(void **state)
{
	enum { CAP = 64 };
	struct flow_table ft;
	struct srvidx si;
	struct flow *fl[CAP];
	uint32_t want[CAP]; /* index per flow, 0 = none */

	(void)state;
	assert_int_equal(flow_table_init(&ft, CAP), 0);
	assert_int_equal(srvidx_init(&si, CAP), 0);
	for (int i = 0; i < CAP; i++) {
		struct flow_key k = key(0x0a000001, (uint16_t)(1000 + i));
		fl[i] = flow_insert(&ft, &k, flow_hash(&ft, &k), 0);
		assert_non_null(fl[i]);
		fl[i]->backend = (uint16_t)(i % 2); /* two backends */
		want[i] = 0;
	}
	for (int round = 0; round < 20000; round++) {
		int i = (int)randombytes_uniform(CAP);
		/* Few distinct values, so equal-home runs are common. */
		uint32_t idx = 1 + randombytes_uniform(3 * CAP);
		switch (randombytes_uniform(3)) {
		case 0:
		case 1:
			srvidx_set(&si, &ft, fl[i], idx);
			/* One entry per (index, backend): the last to name it holds it. */
			for (int j = 0; j < CAP; j++)
				if (want[j] == idx && fl[j]->backend == fl[i]->backend)
					want[j] = 0;
			want[i] = idx;
			break;
		case 2:
			srvidx_del(&si, &ft, fl[i]);
			want[i] = 0;
			break;
		}
		if (round % 97)
			continue;
		uint32_t n = 0;
		for (int j = 0; j < CAP; j++) {
			if (!want[j])
				continue;
			n++;
			struct flow *g = srvidx_find(&si, &ft, want[j]);
			assert_non_null(g); /* some flow with that index: j, or j's twin on the other backend */
			assert_int_equal(g->srv_index, want[j]);
			assert_true(g->flags & FLOW_F_INDEXED);
			assert_true(fl[j]->flags & FLOW_F_INDEXED);
		}
		assert_int_equal(si.count, n);
		for (uint32_t v = 1; v <= 3 * CAP; v++) { /* found exactly when someone holds it */
			bool held = false;
			for (int j = 0; j < CAP; j++)
				held |= want[j] == v;
			assert_int_equal(srvidx_find(&si, &ft, v) != NULL, held);
		}
	}
	/* An index nobody holds is not found. */
	for (int j = 0; j < CAP; j++)
		srvidx_del(&si, &ft, fl[j]);
	assert_int_equal(si.count, 0);
	assert_null(srvidx_find(&si, &ft, 7));
	srvidx_free(&si);
	flow_table_free(&ft);
}

/* Security finding 6: datagrams from many sources naming one index (a
 * roaming client, or an attacker repeating it) keep one entry, so lookups
 * stay one probe instead of a run as long as the repeats. */
static void test_srvidx_repeats_keep_one_entry(void **state)
{
	enum { CAP = 512 };
	struct flow_table ft;
	struct srvidx si;
	struct flow *last = NULL;

	(void)state;
	assert_int_equal(flow_table_init(&ft, CAP), 0);
	assert_int_equal(srvidx_init(&si, CAP), 0);
	for (int i = 0; i < 300; i++) {
		struct flow_key k = key(0x0a000001 + (uint32_t)i, 4000);
		struct flow *f = flow_insert(&ft, &k, flow_hash(&ft, &k), 0);
		assert_non_null(f);
		f->backend = 3;
		srvidx_set(&si, &ft, f, 0xdeadbeef);
		if (last)
			assert_false(last->flags & FLOW_F_INDEXED); /* handed over */
		last = f;
	}
	assert_int_equal(si.count, 1);
	assert_ptr_equal(srvidx_find(&si, &ft, 0xdeadbeef), last);
	uint32_t used = 0;
	for (uint32_t i = 0; i <= si.mask; i++)
		used += si.slots[i] != FLOW_NONE;
	assert_int_equal(used, 1);
	/* The same index on another backend is another session: its own entry. */
	struct flow_key k = key(0x0b000001, 4000);
	struct flow *o = flow_insert(&ft, &k, flow_hash(&ft, &k), 0);
	o->backend = 4;
	srvidx_set(&si, &ft, o, 0xdeadbeef);
	assert_int_equal(si.count, 2);
	assert_true(last->flags & FLOW_F_INDEXED);
	srvidx_del(&si, &ft, last);
	assert_ptr_equal(srvidx_find(&si, &ft, 0xdeadbeef), o);
	srvidx_free(&si);
	flow_table_free(&ft);
}

static void test_size_budget(void **state)
{
	(void)state;
	/* The flow, its 4-byte hash bucket (at most 2 per flow) and its 4-byte
	 * session-index slots (at most 4 per flow): <= 128 bytes. */
	assert_true(sizeof(struct flow) + 2 * sizeof(uint32_t) + 4 * sizeof(uint32_t) <= 128);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_lookup_remove),
		cmocka_unit_test(test_cap_and_confirmed_protection),
		cmocka_unit_test(test_generation_bumps_on_reuse),
		cmocka_unit_test(test_port_index_skips_preserved),
		cmocka_unit_test(test_scan_expiry),
		cmocka_unit_test(test_many_and_key_randomness),
		cmocka_unit_test(test_srvidx),
		cmocka_unit_test(test_srvidx_repeats_keep_one_entry),
		cmocka_unit_test(test_size_budget),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
