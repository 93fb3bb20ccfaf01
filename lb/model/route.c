// SPDX-License-Identifier: MIT
/* The routing decision (see route.h). No state, no I/O. */
#include "wglb/route.h"

static struct route_out verdict(enum route_action a, enum drop why)
{
	return (struct route_out){.action = a, .why = why, .backend = -1};
}

/*
 * A client's handshake message at the edge, as a WireGuard server under
 * load would treat it: mac1 must be made for these servers; where cookies
 * are asked for, an initiation's mac2 must prove the source receives at
 * its address, or the answer is a cookie reply. A response reaches here
 * only on a flow (it answers the backend's initiation there): it creates
 * nothing, so it passes (instant failover under load). Initiations come at
 * WireGuard's per-source rate; a source past the budget of the address it
 * claims must prove itself (a spoofer cannot, so it cannot spend a
 * victim's budget), and a proven source has a budget of its own. Returns
 * false with *o set when the datagram goes no further.
 */
static bool edge(const struct route_in *in, struct route_out *o)
{
	bool ask, backend_judges;

	if (in->mac1_bad) {
		*o = verdict(ROUTE_DROP, DROP_BAD_MAC1);
		return false;
	}
	if (in->type != WG_T_INITIATION)
		return true;
	o->note_load = in->cookies && !in->mac2_ok && !in->has_flow;
	/* Where the backend speaks cookies, an initiation whose mac2 was made
	 * with some cookie goes to it to be judged: were wglb to judge it too,
	 * each side's cookie would replace the other's in the client and it
	 * would never get through. Only one side speaks cookies at a time. */
	backend_judges = in->has_flow && in->flow_backend_cookie && in->mac2_set && !in->mac2_ok;
	ask = in->cookies && !in->mac2_ok && in->under_load && !backend_judges;
	if (!ask) {
		if (in->mac2_ok ? in->proven_budget : in->claimed_budget) {
			o->spend = in->mac2_ok ? SPEND_PROVEN : SPEND_CLAIMED;
		} else if (in->mac2_ok || !in->cookies || backend_judges) {
			o->action = ROUTE_DROP;
			o->why = DROP_RATE_LIMITED;
			return false;
		} else {
			ask = true;
		}
	}
	if (ask) {
		o->action = ROUTE_COOKIE;
		o->why = DROP_NEEDS_COOKIE;
		return false;
	}
	return true;
}

/* No flow for this source: an initiation past the edge, or transport. A
 * transport datagram may join the session it names (a roaming client),
 * once a second per index; anyone can send one from anywhere, so under
 * load nothing else opens a flow that way. */
static void new_source(const struct route_in *in, struct route_out *o)
{
	o->action = ROUTE_NEW;
	if (in->type != WG_T_TRANSPORT)
		return;
	if (in->session_backend >= 0) {
		if (!in->roam_budget) {
			o->action = ROUTE_DROP;
			o->why = DROP_RATE_LIMITED;
			return;
		}
		o->backend = in->session_backend;
		o->spend = SPEND_ROAM;
		return;
	}
	if (!in->cookies)
		return;
	o->note_load = true;
	if (in->under_load) {
		o->action = ROUTE_DROP;
		o->why = DROP_UNPROVEN;
	}
}

struct route_out route_decide(const struct route_in *in)
{
	struct route_out o = verdict(ROUTE_FORWARD, DROP__COUNT);

	/* A response answers the backend's initiation, a cookie reply the
	 * backend's handshake, each sent on a flow: from a source with none
	 * they are a spoofer's, and cost nothing but the receive. */
	if (!in->has_flow && (in->type == WG_T_RESPONSE || in->type == WG_T_COOKIE))
		return verdict(ROUTE_DROP, DROP_NO_FLOW);
	if ((in->type == WG_T_INITIATION || in->type == WG_T_RESPONSE) && !edge(in, &o))
		return o;
	if (!in->has_flow) {
		new_source(in, &o);
		return o;
	}
	/* A new session may start anywhere: it leaves a draining or failed
	 * backend now. Transport data stays with its flow. */
	if (in->type == WG_T_INITIATION && !in->flow_keeps)
		o.action = ROUTE_REPIN;
	/* Proof of receipt: the client names the index the backend chose in
	 * its handshake message on this flow. A cookie reply teaches none; a
	 * spoofer never sees one. */
	o.confirm = !in->flow_confirmed && in->flow_proof &&
		    (in->type == WG_T_TRANSPORT || in->type == WG_T_RESPONSE) &&
		    in->receiver == in->flow_srv_index;
	return o;
}

const char *route_action_name(enum route_action a)
{
	static const char *const n[] = {"forward", "new", "repin", "cookie", "drop"};
	return (unsigned)a < sizeof(n) / sizeof(n[0]) ? n[a] : "invalid";
}
