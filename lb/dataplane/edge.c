// SPDX-License-Identifier: MIT
/*
 * The edge: the checks and budgets a client's datagram meets before it
 * may open or move a flow (allow list, mac1, cookies under load, per-source
 * handshake limits, roams per session index), and wglb's cookie replies.
 */
#include "dp.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

int dp_configure(struct loop *l, struct fwd *dp, const struct wglb_config *nc,
		 const struct wglb_config *old)
{
	bool first = !old;
	bool rates = first || nc->handshake_rate != old->handshake_rate ||
		     nc->handshake_burst != old->handshake_burst;
	bool key = first || strcmp(nc->server_public_key, old->server_public_key);

	if (rates) {
		struct ratelimit_table claimed, proven;
		if (rl_init(&claimed, nc->handshake_rate, nc->handshake_burst) < 0)
			return -ENOMEM;
		if (rl_init(&proven, nc->handshake_rate, nc->handshake_burst) < 0) {
			rl_free(&claimed);
			return -ENOMEM;
		}
		if (!first) {
			rl_free(&dp->hs_limit);
			rl_free(&dp->hs_proven);
		}
		dp->hs_limit = claimed;
		dp->hs_proven = proven;
	}
	if (first && rl_init(&dp->roam_limit, ROAM_RATE, ROAM_BURST) < 0)
		return -ENOMEM;
	if (first && rl_init(&dp->cookie_limit, COOKIE_REPLY_RATE, COOKIE_REPLY_BURST) < 0)
		return -ENOMEM;
	if (key) {
		dp->check_mac1 = nc->server_public_key[0] &&
				mac1_key_from_base64(nc->server_public_key, &dp->mac1) == 0;
		/* A new key: cookies given under the old one are void. */
		if (!dp->check_mac1 || cookie_init(&dp->cookie, nc->server_public_key) < 0)
			cookie_fini(&dp->cookie);
	}
	/* A flood from many addresses spreads over the workers: each judges
	 * load against its share of the rate. */
	dp->load.rate = l->n_workers > 1 ? nc->under_load_rate / l->n_workers : nc->under_load_rate;
	if (!dp->load.rate)
		dp->load.rate = 1;
	dp->cookies = dp->check_mac1 && nc->handshake_cookies != COOKIE_OFF;
	return 0;
}

void dp_unconfigure(struct loop *l, struct fwd *dp)
{
	rl_free(&dp->hs_limit);
	rl_free(&dp->hs_proven);
	rl_free(&dp->roam_limit);
	rl_free(&dp->cookie_limit);
	sodium_memzero(&dp->mac1, sizeof(dp->mac1));
	cookie_fini(&dp->cookie);
}

bool dp_allowed(const struct loop *l, const struct flow_key *k)
{
	if (!l->cfg.n_allow)
		return true;
	for (unsigned i = 0; i < l->cfg.n_allow; i++)
		if (cidr_match(&l->cfg.allow[i], k->family, k->addr))
			return true;
	return false;
}

bool dp_under_load(const struct loop *l, struct fwd *dp)
{
	return dp->cookies && (l->cfg.handshake_cookies == COOKIE_ALWAYS ||
			      cookie_under_load(&dp->load, l->now_ms));
}

/* Answer a handshake with wglb's cookie reply, built over the handshake
 * in its buffer and sent from the address the client sent to. Returns
 * what the handshake counts as: answered (needs_cookie) or why not. */
enum drop dp_send_cookie(struct loop *l, struct fwd *dp, const struct flow_key *k, const uint8_t laddr[16],
			     unsigned bid, uint8_t *p, unsigned len)
{
	uint8_t src[COOKIE_SRC_MAX], reply[WG_COOKIE_SIZE];
	size_t sl = cookie_source(k->family, k->addr, k->port, src);

	/* The source address may be a spoofed victim's: a bounded rate of
	 * replies to it, whatever the ports and however many initiations. */
	if (!rl_allow(&dp->cookie_limit, k->family, k->addr, l->now_ms * 1000000ull))
		return DROP_COOKIE_CAPPED;
	if (cookie_reply(&dp->cookie, l->now_ms, p, len, src, sl, reply) < 0)
		return DROP_COOKIE_UNSENT; /* not reached: the classifier passed a handshake */
	memcpy(p, reply, sizeof(reply)); /* the reply is shorter than any handshake */
	if (tx_reply(&dp->tx, l, k, laddr, bid, p, sizeof(reply)) < 0)
		return DROP_COOKIE_UNSENT;
	return DROP_NEEDS_COOKIE;
}

/* What the decision needs about this datagram (route.h): only what the
 * rules ask of its kind, and rate limits peeked at, not spent. */
void dp_gather(struct loop *l, struct fwd *dp, const struct flow_key *k, const struct wg_info *wi,
		   const uint8_t *p, unsigned len, const struct flow *f, struct route_in *in)
{
	uint64_t now_ns = l->now_ms * 1000000ull;

	memset(in, 0, sizeof(*in));
	in->type = wi->type;
	in->receiver = wi->receiver;
	in->cookies = dp->cookies;
	in->under_load = dp_under_load(l, dp);
	in->session_backend = -1;
	/* A response with no flow is dropped before its macs matter. */
	if (wi->type == WG_T_INITIATION || (wi->type == WG_T_RESPONSE && f)) {
		in->mac1_bad = dp->check_mac1 && !mac1_valid(&dp->mac1, p, len);
		if (dp->cookies && !in->mac1_bad) {
			uint8_t src[COOKIE_SRC_MAX];
			size_t sl = cookie_source(k->family, k->addr, k->port, src);
			in->mac2_ok = cookie_mac2_valid(&dp->cookie, l->now_ms, p, len, src, sl);
			if (in->mac2_ok)
				l->st.mac2_valid++;
			in->mac2_set = !sodium_is_zero(p + len - WG_MAC_LEN, WG_MAC_LEN);
			if (!in->mac2_ok && in->mac2_set)
				l->st.mac2_invalid++;
		}
		/* route_decide() reads the proven budget when mac2 proved the
		 * source, the claimed one otherwise: look up only that one. */
		if (wi->type == WG_T_INITIATION && in->mac2_ok)
			in->proven_budget = rl_peek(&dp->hs_proven, k->family, k->addr, now_ns);
		else if (wi->type == WG_T_INITIATION)
			in->claimed_budget = rl_peek(&dp->hs_limit, k->family, k->addr, now_ns);
	}
	if (f) {
		in->has_flow = true;
		in->flow_keeps = pool_keeps(&l->pool, f->backend);
		in->flow_confirmed = f->flags & FLOW_F_CONFIRMED;
		in->flow_proof = f->flags & FLOW_F_PROOF;
		in->flow_srv_index = f->srv_index;
		in->flow_backend_cookie = (f->edge & FLOW_E_BE_COOKIE) &&
					  ((f->edge & FLOW_E_PROVEN) || (f->flags & FLOW_F_CONFIRMED));
	} else if (wi->type == WG_T_TRANSPORT) {
		const struct flow *g = srvidx_find(&dp->si, &dp->ft, wi->receiver);
		int sb = g ? g->backend : workers_session_get(l, wi->receiver);
		if (sb >= 0 && pool_evicts(&l->pool, (unsigned)sb) < 0) {
			in->session_backend = sb;
			in->roam_budget =
				l->ws ? workers_roam_peek(l, wi->receiver, 1000 / ROAM_RATE, ROAM_BURST)
				      : rl_peek(&dp->roam_limit, AF_INET, (const uint8_t *)&wi->receiver,
						now_ns);
		}
	}
}

/* Spend the budget the verdict used. */
void dp_spend(struct loop *l, struct fwd *dp, const struct flow_key *k, const struct wg_info *wi,
		  enum route_spend s)
{
	uint64_t now_ns = l->now_ms * 1000000ull;

	if (s == SPEND_CLAIMED)
		rl_allow(&dp->hs_limit, k->family, k->addr, now_ns);
	else if (s == SPEND_PROVEN)
		rl_allow(&dp->hs_proven, k->family, k->addr, now_ns);
	else if (s == SPEND_ROAM && l->ws) /* one budget for all workers */
		workers_roam_spend(l, wi->receiver, 1000 / ROAM_RATE);
	else if (s == SPEND_ROAM)
		rl_allow(&dp->roam_limit, AF_INET, (const uint8_t *)&wi->receiver, now_ns);
}
