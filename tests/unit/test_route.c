// SPDX-License-Identifier: MIT
/* Every routing rule of the README ("How it routes", the threat model) as a
 * row: what the packet path knows about a client datagram -> the verdict. */
#include "wglb/route.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#define I WG_T_INITIATION
#define R WG_T_RESPONSE
#define T WG_T_TRANSPORT
#define NONE DROP__COUNT

/* Defaults: budgets left, no session known; each row overrides what it is
 * about (a designated initializer given twice: the later one wins). */
#pragma GCC diagnostic ignored "-Woverride-init"
#define IN(...) {.claimed_budget = true, .proven_budget = true, .roam_budget = true, \
		  .session_backend = -1, __VA_ARGS__}

static const struct row {
	const char *rule;
	struct route_in in;
	enum route_action action;
	enum drop why;
	int backend;
	enum route_spend spend;
	bool confirm, note_load;
} rows[] = {
	/* Flows and re-pinning. */
	{"a new source's initiation gets Maglev's choice", IN(.type = I),
	 ROUTE_NEW, NONE, -1, SPEND_CLAIMED, false, false},
	{"an initiation stays on a backend that keeps it", IN(.type = I, .has_flow = true, .flow_keeps = true),
	 ROUTE_FORWARD, NONE, -1, SPEND_CLAIMED, false, false},
	{"an initiation leaves a draining or failed backend", IN(.type = I, .has_flow = true),
	 ROUTE_REPIN, NONE, -1, SPEND_CLAIMED, false, false},
	{"transport stays with its flow on a draining backend", IN(.type = T, .has_flow = true),
	 ROUTE_FORWARD, NONE, -1, SPEND_NONE, false, false},
	{"a new source's transport without a known index gets Maglev's choice", IN(.type = T),
	 ROUTE_NEW, NONE, -1, SPEND_NONE, false, false},
	{"a roaming client joins its session's backend", IN(.type = T, .session_backend = 2),
	 ROUTE_NEW, NONE, 2, SPEND_ROAM, false, false},
	{"an index roams once a second", IN(.type = T, .session_backend = 2, .roam_budget = false),
	 ROUTE_DROP, DROP_RATE_LIMITED, -1, SPEND_NONE, false, false},
	{"a roaming client joins its session even under load",
	 IN(.type = T, .session_backend = 1, .cookies = true, .under_load = true),
	 ROUTE_NEW, NONE, 1, SPEND_ROAM, false, false},
	{"a cookie reply from the client side is forwarded on its flow", IN(.type = WG_T_COOKIE, .has_flow = true),
	 ROUTE_FORWARD, NONE, -1, SPEND_NONE, false, false},
	/* mac1 and the per-source limits. */
	{"a bad mac1 is dropped before any state", IN(.type = I, .mac1_bad = true),
	 ROUTE_DROP, DROP_BAD_MAC1, -1, SPEND_NONE, false, false},
	{"a client response with a bad mac1 too", IN(.type = R, .has_flow = true, .mac1_bad = true),
	 ROUTE_DROP, DROP_BAD_MAC1, -1, SPEND_NONE, false, false},
	{"past the claimed budget without cookies: dropped", IN(.type = I, .claimed_budget = false),
	 ROUTE_DROP, DROP_RATE_LIMITED, -1, SPEND_NONE, false, false},
	{"past the claimed budget with cookies: prove it", IN(.type = I, .cookies = true, .claimed_budget = false),
	 ROUTE_COOKIE, DROP_NEEDS_COOKIE, -1, SPEND_NONE, false, true},
	{"a proven source spends its own budget", IN(.type = I, .cookies = true, .mac2_ok = true, .claimed_budget = false),
	 ROUTE_NEW, NONE, -1, SPEND_PROVEN, false, false},
	{"past the proven budget: dropped", IN(.type = I, .cookies = true, .mac2_ok = true, .proven_budget = false),
	 ROUTE_DROP, DROP_RATE_LIMITED, -1, SPEND_NONE, false, false},
	/* Cookies at the edge. */
	{"not under load, no mac2 needed", IN(.type = I, .cookies = true),
	 ROUTE_NEW, NONE, -1, SPEND_CLAIMED, false, true},
	{"under load, an initiation without mac2 gets a cookie", IN(.type = I, .cookies = true, .under_load = true),
	 ROUTE_COOKIE, DROP_NEEDS_COOKIE, -1, SPEND_NONE, false, true},
	{"... on a flow too (as WireGuard under load)",
	 IN(.type = I, .cookies = true, .under_load = true, .has_flow = true, .flow_keeps = true),
	 ROUTE_COOKIE, DROP_NEEDS_COOKIE, -1, SPEND_NONE, false, false},
	{"under load, a mac2-proven initiation opens a flow", IN(.type = I, .cookies = true, .under_load = true, .mac2_ok = true),
	 ROUTE_NEW, NONE, -1, SPEND_PROVEN, false, false},
	{"under load, a response on a flow passes (instant failover)",
	 IN(.type = R, .cookies = true, .under_load = true, .has_flow = true, .flow_keeps = true),
	 ROUTE_FORWARD, NONE, -1, SPEND_NONE, false, false},
	{"under load, a response from a new source opens nothing", IN(.type = R, .cookies = true, .under_load = true),
	 ROUTE_DROP, DROP_NO_FLOW, -1, SPEND_NONE, false, false},
	{"under load, unknown transport opens nothing", IN(.type = T, .cookies = true, .under_load = true),
	 ROUTE_DROP, DROP_UNPROVEN, -1, SPEND_NONE, false, true},
	{"not under load, unknown transport counts toward load", IN(.type = T, .cookies = true),
	 ROUTE_NEW, NONE, -1, SPEND_NONE, false, true},
	{"transport on a flow passes under load", IN(.type = T, .cookies = true, .under_load = true, .has_flow = true),
	 ROUTE_FORWARD, NONE, -1, SPEND_NONE, false, false},
	/* One side speaks cookies at a time (no ping-pong between wglb's and a backend's). */
#define BE_COOKIE .cookies = true, .under_load = true, .has_flow = true, .flow_keeps = true, \
		  .flow_backend_cookie = true
	{"the backend speaks cookies: an initiation with its mac2 goes to it to judge",
	 IN(.type = I, BE_COOKIE, .mac2_set = true), ROUTE_FORWARD, NONE, -1, SPEND_CLAIMED, false, false},
	{"... within the source's budget only, and no cookie of wglb's past it",
	 IN(.type = I, BE_COOKIE, .mac2_set = true, .claimed_budget = false),
	 ROUTE_DROP, DROP_RATE_LIMITED, -1, SPEND_NONE, false, false},
	{"... a zero mac2 (no cookie held) gets wglb's", IN(.type = I, BE_COOKIE),
	 ROUTE_COOKIE, DROP_NEEDS_COOKIE, -1, SPEND_NONE, false, false},
	{"... a bad mac1 is still dropped", IN(.type = I, BE_COOKIE, .mac2_set = true, .mac1_bad = true),
	 ROUTE_DROP, DROP_BAD_MAC1, -1, SPEND_NONE, false, false},
	{"... wglb's own valid mac2 passes as ever", IN(.type = I, BE_COOKIE, .mac2_set = true, .mac2_ok = true),
	 ROUTE_FORWARD, NONE, -1, SPEND_PROVEN, false, false},
	{"a backend cookie on a flow never proven (a spoofer's): wglb judges",
	 IN(.type = I, .cookies = true, .under_load = true, .has_flow = true, .flow_keeps = true, .mac2_set = true),
	 ROUTE_COOKIE, DROP_NEEDS_COOKIE, -1, SPEND_NONE, false, false},
	{"no flow: wglb judges", IN(.type = I, .cookies = true, .under_load = true, .mac2_set = true),
	 ROUTE_COOKIE, DROP_NEEDS_COOKIE, -1, SPEND_NONE, false, true},
	{"the backend's rule is for initiations: a response on its flow passes as ever",
	 IN(.type = R, BE_COOKIE, .mac2_set = true), ROUTE_FORWARD, NONE, -1, SPEND_NONE, false, false},
	/* Proof of receipt. */
	{"data naming the backend's index confirms",
	 IN(.type = T, .has_flow = true, .flow_proof = true, .flow_srv_index = 77, .receiver = 77),
	 ROUTE_FORWARD, NONE, -1, SPEND_NONE, true, false},
	{"a response naming the backend's initiation index confirms",
	 IN(.type = R, .has_flow = true, .flow_keeps = true, .flow_proof = true, .flow_srv_index = 9, .receiver = 9),
	 ROUTE_FORWARD, NONE, -1, SPEND_NONE, true, false},
	{"another index does not", IN(.type = T, .has_flow = true, .flow_proof = true, .flow_srv_index = 77, .receiver = 78),
	 ROUTE_FORWARD, NONE, -1, SPEND_NONE, false, false},
	{"no index learned on the flow (a cookie reply, a roamed flow): no proof",
	 IN(.type = T, .has_flow = true, .flow_srv_index = 77, .receiver = 77),
	 ROUTE_FORWARD, NONE, -1, SPEND_NONE, false, false},
	{"an initiation never confirms",
	 IN(.type = I, .has_flow = true, .flow_keeps = true, .flow_proof = true, .flow_srv_index = 0, .receiver = 0),
	 ROUTE_FORWARD, NONE, -1, SPEND_CLAIMED, false, false},
	{"a confirmed flow is not confirmed again",
	 IN(.type = T, .has_flow = true, .flow_confirmed = true, .flow_proof = true, .flow_srv_index = 5, .receiver = 5),
	 ROUTE_FORWARD, NONE, -1, SPEND_NONE, false, false},
};

/*
 * Every message type x (a flow / none) x the edge's three states (cookies
 * off; cookies on, not under load; under load, which "always" is all the
 * time), for a datagram whose mac1 is good and whose mac2 is absent, with
 * budgets left and no session known: no type can slip past the edge.
 */
#define C WG_T_COOKIE
#define OFF .cookies = false
#define ON  .cookies = true
#define LOAD .cookies = true, .under_load = true
#define FLOW .has_flow = true, .flow_keeps = true
static const struct row matrix[] = {
	{"I, no flow, cookies off", IN(.type = I, OFF), ROUTE_NEW, NONE, -1, SPEND_CLAIMED, false, false},
	{"I, no flow, cookies on", IN(.type = I, ON), ROUTE_NEW, NONE, -1, SPEND_CLAIMED, false, true},
	{"I, no flow, under load", IN(.type = I, LOAD), ROUTE_COOKIE, DROP_NEEDS_COOKIE, -1, SPEND_NONE, false, true},
	{"I, flow, cookies off", IN(.type = I, FLOW, OFF), ROUTE_FORWARD, NONE, -1, SPEND_CLAIMED, false, false},
	{"I, flow, cookies on", IN(.type = I, FLOW, ON), ROUTE_FORWARD, NONE, -1, SPEND_CLAIMED, false, false},
	{"I, flow, under load", IN(.type = I, FLOW, LOAD), ROUTE_COOKIE, DROP_NEEDS_COOKIE, -1, SPEND_NONE, false, false},
	{"R, no flow, cookies off", IN(.type = R, OFF), ROUTE_DROP, DROP_NO_FLOW, -1, SPEND_NONE, false, false},
	{"R, no flow, cookies on", IN(.type = R, ON), ROUTE_DROP, DROP_NO_FLOW, -1, SPEND_NONE, false, false},
	{"R, no flow, under load", IN(.type = R, LOAD), ROUTE_DROP, DROP_NO_FLOW, -1, SPEND_NONE, false, false},
	{"R, flow, cookies off", IN(.type = R, FLOW, OFF), ROUTE_FORWARD, NONE, -1, SPEND_NONE, false, false},
	{"R, flow, cookies on", IN(.type = R, FLOW, ON), ROUTE_FORWARD, NONE, -1, SPEND_NONE, false, false},
	{"R, flow, under load", IN(.type = R, FLOW, LOAD), ROUTE_FORWARD, NONE, -1, SPEND_NONE, false, false},
	{"C, no flow, cookies off", IN(.type = C, OFF), ROUTE_DROP, DROP_NO_FLOW, -1, SPEND_NONE, false, false},
	{"C, no flow, cookies on", IN(.type = C, ON), ROUTE_DROP, DROP_NO_FLOW, -1, SPEND_NONE, false, false},
	{"C, no flow, under load", IN(.type = C, LOAD), ROUTE_DROP, DROP_NO_FLOW, -1, SPEND_NONE, false, false},
	{"C, flow, cookies off", IN(.type = C, FLOW, OFF), ROUTE_FORWARD, NONE, -1, SPEND_NONE, false, false},
	{"C, flow, cookies on", IN(.type = C, FLOW, ON), ROUTE_FORWARD, NONE, -1, SPEND_NONE, false, false},
	{"C, flow, under load", IN(.type = C, FLOW, LOAD), ROUTE_FORWARD, NONE, -1, SPEND_NONE, false, false},
	{"T, no flow, cookies off", IN(.type = T, OFF), ROUTE_NEW, NONE, -1, SPEND_NONE, false, false},
	{"T, no flow, cookies on", IN(.type = T, ON), ROUTE_NEW, NONE, -1, SPEND_NONE, false, true},
	{"T, no flow, under load", IN(.type = T, LOAD), ROUTE_DROP, DROP_UNPROVEN, -1, SPEND_NONE, false, true},
	{"T, flow, cookies off", IN(.type = T, FLOW, OFF), ROUTE_FORWARD, NONE, -1, SPEND_NONE, false, false},
	{"T, flow, cookies on", IN(.type = T, FLOW, ON), ROUTE_FORWARD, NONE, -1, SPEND_NONE, false, false},
	{"T, flow, under load", IN(.type = T, FLOW, LOAD), ROUTE_FORWARD, NONE, -1, SPEND_NONE, false, false},
};

static void check(const struct row *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &t[i];
		struct route_out o = route_decide(&r->in);
		bool ok = o.action == r->action && o.spend == r->spend && o.confirm == r->confirm &&
			  o.note_load == r->note_load &&
			  (r->action != ROUTE_NEW || o.backend == r->backend) &&
			  (r->why == NONE || o.why == r->why);
		if (!ok)
			fail_msg("rule %zu, '%s': got %s (why %s, backend %d, spend %d, confirm %d, "
				 "load %d)", i, r->rule, route_action_name(o.action),
				 stats_drop_name(o.why), o.backend, o.spend, o.confirm, o.note_load);
	}
}

static void test_matrix(void **state)
{
	(void)state;
	_Static_assert(sizeof(matrix) / sizeof(matrix[0]) == 4 * 2 * 3, "every type x flow x edge");
	check(matrix, sizeof(matrix) / sizeof(matrix[0]));
}

static void test_rules(void **state)
{
	(void)state;
	check(rows, sizeof(rows) / sizeof(rows[0]));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_matrix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
