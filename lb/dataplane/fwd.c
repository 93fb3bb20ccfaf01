// SPDX-License-Identifier: MIT
/*
 * The packet path as a part of the loop (fwd.h): its state, its sizing,
 * the ops and hooks it registers, flow events and the prober's hints.
 * what other workers and the parts above call, which it hands to the files
 * beside it with its state: edge.c (the checks at the edge), rx.c (what
 * clients and backends send), upstream.c (flows and their sockets),
 * apply.c (pool changes). Only this file finds the state from the loop
 * (fwd_of); the others are given it, so none of them calls back here.
 */
#include "dp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>

_Static_assert(DROP_TOO_SHORT == WG_DROP_TOO_SHORT - 1 && DROP_BAD_LENGTH == WG_DROP_BAD_LENGTH - 1,
	       "enum drop mirrors enum wg_drop");

int fwd_subscribe(struct loop *l, const struct flow_events *ev, void *ctx)
{
	struct fwd *dp = fwd_of(l);

	if (!dp || dp->n_sub == FWD_MAX_SUBSCRIBERS)
		return -ENOSPC;
	dp->sub[dp->n_sub].ev = ev;
	dp->sub[dp->n_sub].ctx = ctx;
	dp->n_sub++;
	return 0;
}

unsigned fwd_hint_take(struct loop *l, unsigned i)
{
	struct fwd *dp = fwd_of(l);
	unsigned mine;

	if (i >= CONFIG_MAX_BACKENDS)
		return 0;
	mine = dp->hint[i];
	dp->hint[i] = 0;
	return workers_poked(l, i) | mine;
}

static uint32_t ephemeral_ports(void)
{
	unsigned lo = 0, hi = 0;
	FILE *fp = fopen("/proc/sys/net/ipv4/ip_local_port_range", "re");

	if (fp) {
		if (fscanf(fp, "%u %u", &lo, &hi) != 2)
			lo = hi = 0;
		fclose(fp);
	}
	return hi >= lo && hi ? hi - lo + 1 : 28232; /* Linux's default range */
}

/* Each flow owns a socket and an ephemeral port: how many of each the
 * process has (the rest of wglb, ring, listeners, control and probe
 * connections, keeps 256 descriptors). */
static void flow_limits(uint32_t *ports, uint32_t *fds, uint64_t *nofile)
{
	struct rlimit rl;

	*ports = ephemeral_ports();
	*fds = UINT32_MAX;
	*nofile = 0;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		*nofile = rl.rlim_cur;
		*fds = rl.rlim_cur > 256 + 16 ? (uint32_t)rl.rlim_cur - 256 : 16;
	}
}

void fwd_size(struct wglb_config *cfg)
{
	uint32_t ports, fds, cap;
	uint64_t nofile;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_warn("cannot raise the open-file limit: %s", strerror(errno));
	}
	flow_limits(&ports, &fds, &nofile);
	cap = ports < fds ? ports : fds;
	if (!cfg->max_flows) {
		cfg->max_flows = cap < CONFIG_AUTO_MAX_FLOWS ? cap : CONFIG_AUTO_MAX_FLOWS;
		log_info("max_flows %u (ephemeral ports %u, open files %llu)", cfg->max_flows, ports,
			 (unsigned long long)nofile);
		return;
	}
	if (cfg->max_flows > fds)
		log_warn("max_flows = %u but the open-file limit is %llu (one socket per flow): "
			 "at most about %u flows will open; raise LimitNOFILE",
			 cfg->max_flows, (unsigned long long)nofile, fds);
	if (cfg->max_flows > ports)
		log_warn("max_flows = %u but net.ipv4.ip_local_port_range has %u ports (one per "
			 "flow): at most %u flows will open; widen the range or lower max_flows",
			 cfg->max_flows, ports, ports);
}

/* How many of max_flows can really have a socket. */
static uint32_t flow_capacity(uint32_t max_flows)
{
	uint32_t ports, fds;
	uint64_t nofile;

	flow_limits(&ports, &fds, &nofile);
	if (max_flows > ports)
		max_flows = ports;
	return max_flows < fds ? max_flows : fds;
}

/* Re-arm the receives of flows that found no SQE or no buffer. */
static void resume(struct loop *l)
{
	struct fwd *dp = fwd_of(l);

	if (dp->n_rearm < dp->ft.cap) {
		for (uint32_t i = 0; i < dp->n_rearm; i++) {
			struct flow *f = &dp->ft.flows[dp->rearm[i]];
			if ((f->flags & FLOW_F_USED) && (f->flags & FLOW_F_REARM))
				dp_arm_upstream(l, dp, f);
		}
	} else {
		/* The list overflowed: find them by flag. */
		for (uint32_t i = 0; i < dp->ft.cap; i++) {
			struct flow *f = &dp->ft.flows[i];
			if ((f->flags & FLOW_F_USED) && (f->flags & FLOW_F_REARM))
				dp_arm_upstream(l, dp, f);
		}
	}
	dp->n_rearm = 0;
}

/* ---- between workers: ports and descriptors are the process's ---- */

/* The oldest unconfirmed flow of each worker, by creation time. */
struct oldest {
	bool any[CONFIG_MAX_WORKERS];
	uint32_t created[CONFIG_MAX_WORKERS];
};

static void find_oldest(struct loop *l, void *arg)
{
	struct oldest *o = arg;
	const struct flow *v = flow_victim(&fwd_of(l)->ft);

	o->any[l->worker_id] = v != NULL;
	if (v)
		o->created[l->worker_id] = v->created;
}

static void give_way(struct loop *l, void *arg)
{
	struct fwd *dp = fwd_of(l);
	struct flow *v = flow_victim(&dp->ft);

	(void)arg;
	if (v) {
		dp_close_flow(l, dp, v); /* its port and descriptor are free for any worker */
		l->st.flows_evicted++;
	}
}

/* On the main thread: workers that could have no upstream socket asked for
 * one (workers_want_socket); the oldest unconfirmed flows of all workers
 * give way, as the oldest of one worker's does for its own newcomers. */
static void lend_sockets(struct loop *l)
{
	/* Each scan (100 ms), at most 16 (each costs a call on every worker):
	 * a spoofer that keeps asking cannot keep the main thread calling. */
	unsigned want = workers_sockets_wanted(l, 16), n = workers_count(l->ws);

	while (want--) {
		struct oldest o = {.any = {false}};
		int best = -1;
		workers_each(l, find_oldest, &o);
		for (unsigned i = 0; i < n; i++)
			if (o.any[i] && (best < 0 || (int32_t)(o.created[i] - o.created[best]) < 0))
				best = (int)i;
		if (best < 0)
			return; /* every flow is confirmed: nothing may give way */
		workers_call(l, (unsigned)best, give_way, NULL);
	}
}

void fwd_follow_pool(struct loop *l, void *pool)
{
	dp_follow_pool(l, fwd_of(l), pool);
}

void fwd_follow_config(struct loop *l, void *cfg)
{
	dp_follow_config(l, fwd_of(l), cfg);
}

/* ---- what the parts above call ---- */

int fwd_configure(struct loop *l, const struct wglb_config *nc)
{
	int ret = dp_configure(l, fwd_of(l), nc, &l->cfg);

	if (ret == 0) {
		dp_preserve_configure(l, fwd_of(l), nc);
		dp_fast_allow(l, fwd_of(l), nc);
	}
	return ret;
}

bool fwd_under_load(const struct loop *l)
{
	return dp_under_load(l, fwd_of(l));
}

bool fwd_move_flow(struct loop *l, struct flow *f, enum repin why)
{
	return dp_move_flow(l, fwd_of(l), f, why);
}

void fwd_readdress(struct loop *l, unsigned idx, const struct wglb_addr *a)
{
	dp_readdress(l, fwd_of(l), idx, a);
}

void fwd_fast_fold(struct loop *l, struct flow *f)
{
	dp_fast_fold(l, fwd_of(l), f);
}

/* ---- the part's hooks ---- */

static void scan(struct loop *l)
{
	dp_expire(l, fwd_of(l));
	if (!l->worker_id)
		lend_sockets(l); /* here: its calls are bounded per scan, not per batch */
}

/* Pool changes the parts made in this batch (the prober, the control
 * socket, the agent client, reload) are applied once all have ticked:
 * here, then on every other worker. */
static void settle(struct loop *l)
{
	if (!l->pool.dirty)
		return;
	dp_reconcile(l, fwd_of(l));
	workers_others(l, fwd_follow_pool, &l->pool);
}

static void batch_end(struct loop *l)
{
	tx_flush(&fwd_of(l)->tx, l); /* the batch's sends, grouped per flow */
}

static void sent(struct loop *l, void *ctx, uint64_t ud, int res, uint32_t flags)
{
	struct fwd *dp = ctx;
	int refused = tx_done(&dp->tx, l, ud_idx(ud), res);

	(void)flags;
	if (refused >= 0) { /* ICMP port unreachable: a hint for the prober */
		dp->be[refused].st.icmp_unreach++;
		dp_hint(l, dp, (unsigned)refused, FWD_HINT_ICMP);
	}
}

/* Its share of the table on this worker: unconfirmed flows (sources that
 * have not proved they receive) may hold at most three quarters of what
 * can open, the rest is for clients that proved it, whatever a flood does. */
static int fwd_open(struct loop *l)
{
	struct fwd *dp = calloc(1, sizeof(*dp));
	unsigned n = l->n_workers ? l->n_workers : 1;
	int ret;

	if (!dp)
		return -ENOMEM;
	loop_set_ctx(l, &fwd_part, dp);
	dp->unconf_cap = (uint32_t)((uint64_t)flow_capacity(l->cfg.max_flows) * 3 / 4 / n);
	if (!dp->unconf_cap)
		dp->unconf_cap = 1;
	dp->flows_share = l->cfg.max_flows / n ? l->cfg.max_flows / n : 1;
	/* Upstream sockets are connected: no name; the GRO segment size. */
	dp->up_rmsg.msg_controllen = l->cfg.udp_gro ? CMSG_SPACE(sizeof(int)) : 0;
	ret = loop_op_register(l, dp_backend_datagram, dp);
	if (ret < 0)
		return ret;
	dp->op_up = (unsigned)ret;
	ret = loop_op_register(l, sent, dp);
	if (ret < 0)
		return ret;
	dp->op_send = (unsigned)ret;
	ret = flow_table_init(&dp->ft, dp->flows_share);
	if (ret < 0)
		return ret;
	ret = srvidx_init(&dp->si, dp->flows_share);
	if (ret < 0)
		return ret;
	ret = dp_fast_open(dp);
	if (ret < 0)
		return ret;
	dp->rearm = calloc(dp->flows_share, sizeof(*dp->rearm));
	if (!dp->rearm)
		return -ENOMEM;
	ret = tx_init(&dp->tx, &dp->ft, dp->op_send);
	if (ret < 0)
		return ret;
	ret = dp_configure(l, dp, &l->cfg, NULL);
	if (ret == 0)
		dp_preserve_configure(l, dp, &l->cfg);
	if (ret < 0)
		return ret;
	loop_on_datagram(l, dp_client_datagram, dp);
	return 0;
}

static void fwd_close(struct loop *l)
{
	struct fwd *dp = fwd_of(l);

	if (!dp)
		return;
	if (!l->worker_id)
		log_info("stopping: %u flows open", dp->ft.count);
	loop_on_datagram(l, NULL, NULL);
	if (dp->ft.flows)
		for (uint32_t i = 0; i < dp->ft.cap; i++)
			if (dp->ft.flows[i].flags & FLOW_F_USED && dp->ft.flows[i].fd >= 0)
				close(dp->ft.flows[i].fd);
	tx_fini(&dp->tx);
	dp_fast_close(dp); /* the program was detached before any worker stopped (main.c) */
	dp_unconfigure(l, dp);
	free(dp->rearm);
	srvidx_free(&dp->si);
	flow_table_free(&dp->ft);
	loop_set_ctx(l, &fwd_part, NULL);
	free(dp);
}

const struct loop_part fwd_part = {
	.name = "packet path",
	.open = fwd_open,
	.settle = settle,
	.scan = scan,
	.batch_end = batch_end,
	.resume = resume,
	.close = fwd_close,
};
