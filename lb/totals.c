// SPDX-License-Identifier: MIT
/* Adding up the workers' counters (totals.h): one function for show stats,
 * show info and /metrics, so that they agree (under_load is any worker's). */
#include "wglb/totals.h"
#include "wglb/fwd.h"
#include "wglb/loop.h"

#define ADD_U64S(dst, src)                                                            \
	do {                                                                          \
		_Static_assert(sizeof(*(dst)) % sizeof(uint64_t) == 0, "all counters");    \
		uint64_t *d_ = (uint64_t *)(void *)(dst);                                \
		const uint64_t *s_ = (const uint64_t *)(const void *)(src);              \
		for (size_t k_ = 0; k_ < sizeof(*(dst)) / sizeof(uint64_t); k_++)         \
			d_[k_] += s_[k_];                                                  \
	} while (0)

void totals_add(struct totals *t, const struct loop *w)
{
	const struct agent_stats *as = agent_stats(w);

	ADD_U64S(&t->st, &w->st);
	for (unsigned i = 0; i < w->pool.n; i++) {
		ADD_U64S(&t->be[i], &w->pool.be[i].st);
		t->be_flows[i] += w->pool.be[i].flows;
		t->be_peers[i] += agent_peers_known(w, i); /* behind this worker's flows */
	}
	t->flows += w->ft.count;
	t->max_flows += w->ft.cap;
	t->unconfirmed += w->ft.unconfirmed;
	t->unconf_cap += w->unconf_cap;
	t->worker_flows[w->worker_id] = w->ft.count;
	t->worker_pkts_in[w->worker_id] = w->st.pkts_in;
	t->load_episodes += w->load.episodes;
	t->under_load |= fwd_under_load(w);
	if (as) {
		t->has_agent = true;
		ADD_U64S(&t->agent, as);
	}
}

void totals_merge(struct totals *t, const struct totals *p)
{
	ADD_U64S(&t->st, &p->st);
	for (unsigned i = 0; i < CONFIG_MAX_BACKENDS; i++) {
		ADD_U64S(&t->be[i], &p->be[i]);
		t->be_flows[i] += p->be_flows[i];
		t->be_peers[i] += p->be_peers[i];
	}
	t->flows += p->flows;
	t->max_flows += p->max_flows;
	t->unconfirmed += p->unconfirmed;
	t->unconf_cap += p->unconf_cap;
	for (unsigned i = 0; i < CONFIG_MAX_WORKERS; i++) { /* each part fills its own */
		t->worker_flows[i] += p->worker_flows[i];
		t->worker_pkts_in[i] += p->worker_pkts_in[i];
	}
	t->load_episodes += p->load_episodes;
	t->under_load |= p->under_load;
	if (p->has_agent) {
		t->has_agent = true;
		ADD_U64S(&t->agent, &p->agent);
	}
}
