// SPDX-License-Identifier: MIT
/* Adding up the workers' counters (totals.h): one function for show stats,
 * show info and /metrics, so that they agree (under_load is any worker's). */
#include "wglb/totals.h"
#include "wglb/fwd.h"
#include "wglb/loop.h"
#include "wglb/probe.h"
#include "wglb/workers.h"

#include <string.h>

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
	const struct fwd *dp = fwd_of(w);

	ADD_U64S(&t->st, &w->st);
	for (unsigned i = 0; i < w->pool.n; i++) {
		const struct probe_result *pr = probe_last(w, i); /* the main thread's prober */
		ADD_U64S(&t->be[i], &dp->be[i].st);
		t->be_flows[i] += dp->be[i].flows;
		if (pr)
			t->be[i].failed_probes += pr->failed;
		t->be_peers[i] += agent_peers_known(w, i); /* behind this worker's flows */
	}
	t->flows += dp->ft.count;
	t->max_flows += dp->ft.cap;
	t->unconfirmed += dp->ft.unconfirmed;
	t->unconf_cap += dp->unconf_cap;
	t->worker_flows[w->worker_id] = dp->ft.count;
	t->worker_pkts_in[w->worker_id] = w->st.pkts_in;
	t->load_episodes += dp->load.episodes;
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

const struct totals *totals_collect(struct loop *l, unsigned max_age_ms)
{
	static struct totals t, part; /* the main thread's, ~50 KiB each */
	static uint64_t at_ms;
	static bool have;

	if (have && max_age_ms && l->now_ms - at_ms < max_age_ms)
		return &t;
	memset(&t, 0, sizeof(t));
	totals_add(&t, l); /* worker 0 is this thread */
	for (unsigned i = 1; i < l->n_workers; i++) {
		/* An error leaves the worker's last snapshot in part: its
		 * counters still count, and the worker is reported below. */
		(void)workers_totals(l, i, !max_age_ms, &part);
		totals_merge(&t, &part);
		t.worker_stalled[i] = workers_stalled(l, i);
		t.stalled += t.worker_stalled[i];
	}
	t.st.last_rebuild_us = l->st.last_rebuild_us; /* the main thread rebuilds */
	at_ms = l->now_ms;
	have = true;
	return &t;
}
