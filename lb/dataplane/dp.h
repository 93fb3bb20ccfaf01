/* SPDX-License-Identifier: MIT */
/*
 * Inside the packet path (lb/dataplane/): what its files share. Nothing
 * outside this folder includes it; the parts above use fwd.h.
 */
#ifndef WGLB_DP_H
#define WGLB_DP_H
#include "wglb/fwd.h"
#include "wglb/maglev.h"
#include "wglb/route.h"
#include "wglb/wgmsg.h"
#include "wglb/workers.h"

#define UPSTREAM_RCVBUF    (1 << 20)
#define INIT_UNANSWERED_DS 50 /* WireGuard's REKEY_TIMEOUT, 5 s, in deciseconds */
/* A session index may open a flow from a new source (roaming) once a
 * second, three in a burst: a real client roams when its network changes;
 * one that holds a valid key and repeats its index from spoofed sources
 * gets no more. */
#define ROAM_RATE  1
#define ROAM_BURST 3
/* Cookie replies to one address (IPv6: its /64), whatever its ports: an
 * initiation "from" a victim must not make wglb a reflector at it. 20 a
 * second (WireGuard's handshake rate per source) after a burst of 50 (a
 * NAT address whose clients all ask at once when load begins); 64-byte
 * replies, so at most 3.2 KB at once and 1.3 KB/s after. */
#define COOKIE_REPLY_RATE  20
#define COOKIE_REPLY_BURST 50

/* Tell the subscribers (the agent client) of a flow's event. */
#define EMIT(l, dp, what, f)                                                   \
	do {                                                                   \
		for (unsigned s_ = 0; s_ < (dp)->n_sub; s_++)                  \
			if ((dp)->sub[s_].ev->what)                             \
				(dp)->sub[s_].ev->what(l, (dp)->sub[s_].ctx, f); \
	} while (0)

static inline void drop_in(struct loop *l, enum drop d)
{
	l->st.drops_in[d]++;
}

static inline void drop_out(struct loop *l, enum drop d)
{
	l->st.drops_out[d]++;
}

static inline uint32_t now_ds(const struct loop *l)
{
	return (uint32_t)((l->now_ms - l->start_ms) / 100);
}

static inline uint64_t client_hash(const struct flow_key *k)
{
	return maglev_client_hash(k->family, k->addr, k->port);
}

/* Leave the prober a hint: probe backend i soon. On the main thread the
 * prober takes it from dp (fwd_hint_take); other workers hand it over. */
static inline void dp_hint(struct loop *l, struct fwd *dp, unsigned i, unsigned kind)
{
	if (i >= CONFIG_MAX_BACKENDS)
		return;
	if (l->worker_id)
		workers_poke(l, i, kind);
	else
		dp->hint[i] |= (uint8_t)kind;
}

/* Every function below is given the packet path's state (dp): only fwd.c
 * finds it from the loop, so no file here calls fwd.c back. */

/* edge.c: the checks at the edge. */
/* The edge's checks from config nc: at start (old NULL), or what changed
 * since old at a reload. Reads both; the caller then makes nc the running
 * config. -ENOMEM keeps the old limits. */
int dp_configure(struct loop *l, struct fwd *dp, const struct wglb_config *nc,
		 const struct wglb_config *old);
void dp_unconfigure(struct loop *l, struct fwd *dp);
/* Handshakes must prove their source now (cookies on, and under load or "always"). */
bool dp_under_load(const struct loop *l, struct fwd *dp);
/* The allow list lets this source in. */
bool dp_allowed(const struct loop *l, const struct flow_key *k);
/* Answer a handshake with wglb's cookie reply: what it counts as. */
enum drop dp_send_cookie(struct loop *l, struct fwd *dp, const struct flow_key *k,
			 const uint8_t laddr[16], unsigned bid, uint8_t *p, unsigned len);
/* What route_decide() needs about this datagram; budgets peeked, not spent. */
void dp_gather(struct loop *l, struct fwd *dp, const struct flow_key *k, const struct wg_info *wi,
	       const uint8_t *p, unsigned len, const struct flow *f, struct route_in *in);
/* Spend the budget the verdict used. */
void dp_spend(struct loop *l, struct fwd *dp, const struct flow_key *k, const struct wg_info *wi,
	      enum route_spend s);

/* preserve.c: whether new flows may go from their clients' addresses
 * (dp->preserve_ok), asked of the kernel at start and at each reload. */
void dp_preserve_configure(struct loop *l, struct fwd *dp, const struct wglb_config *nc);

/* rx.c: the receive paths, registered with the loop by fwd.c (ctx: dp). */
/* A listener's receive (loop_rx_fn): a client's datagram or GRO train. */
void dp_client_datagram(struct loop *l, void *ctx, unsigned li, uint8_t *buf, unsigned bid,
			int res);
/* An upstream socket's receive completion (loop_op_fn): a backend's reply. */
void dp_backend_datagram(struct loop *l, void *ctx, uint64_t ud, int res, uint32_t flags);

/* upstream.c: flows and their sockets. */
void dp_arm_upstream(struct loop *l, struct fwd *dp, struct flow *f);
/* No SQE or no buffer: arm it with the starved receives (the resume hook). */
void dp_defer_rearm(struct loop *l, struct fwd *dp, struct flow *f);
/* The flow now holds this backend session index (roaming clients). */
void dp_session_set(struct loop *l, struct fwd *dp, struct flow *f, uint32_t idx);
/* A new flow, on backend bi when bi >= 0, else on Maglev's choice, for a
 * datagram sent to local address dst. NULL when none could open (counted). */
struct flow *dp_flow_open(struct loop *l, struct fwd *dp, const struct flow_key *k, uint32_t h,
			  int bi, const uint8_t dst[16]);
/* Move a flow to backend nb, its socket with it. False if it closed. */
bool dp_repin(struct loop *l, struct fwd *dp, struct flow *f, unsigned nb, enum repin why);
void dp_close_flow(struct loop *l, struct fwd *dp, struct flow *f);
/* The clock hand over idle, silent and unanswered flows (every scan). */
void dp_expire(struct loop *l, struct fwd *dp);

/* apply.c: pool changes and reloads. */
/* On the main thread, at settle: rebuild Maglev, move flows off backends
 * that stopped serving, free removed slots (fwd.c then has every other
 * worker follow: dp_follow_pool). */
void dp_reconcile(struct loop *l, struct fwd *dp);
void dp_follow_pool(struct loop *l, struct fwd *dp, void *pool);
void dp_follow_config(struct loop *l, struct fwd *dp, void *cfg);
void dp_readdress(struct loop *l, struct fwd *dp, unsigned idx, const struct wglb_addr *a);
bool dp_move_flow(struct loop *l, struct fwd *dp, struct flow *f, enum repin why);

/* fastmap.c: the kernel fast path's map, kept in step with this worker's
 * flows (fast_path = tc; every call does nothing when it is off). */
/* The worker's side of it (fwd_open / fwd_close); 0 or -ENOMEM. */
int dp_fast_open(struct fwd *dp);
void dp_fast_close(struct fwd *dp);
/* Flow f is confirmed (or stays so after a move): put both directions, to
 * backend (NULL: its backend's address in the pool). After dp_fast_del. */
void dp_fast_put(struct loop *l, struct fwd *dp, struct flow *f, const union wglb_sa *backend);
/* Before f's socket, port, backend or confirmation changes, or it goes:
 * fold what the program counted, delete both directions. */
void dp_fast_del(struct loop *l, struct fwd *dp, struct flow *f);
/* What the program counted for f since the last look, into f, its
 * backend's and the worker's counters (last_rx, quiet included). */
void dp_fast_fold(struct loop *l, struct fwd *dp, struct flow *f);
/* A reload's allow list nc: flows it shuts out leave the map. */
void dp_fast_allow(struct loop *l, struct fwd *dp, const struct wglb_config *nc);

#endif
