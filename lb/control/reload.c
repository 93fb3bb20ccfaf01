// SPDX-License-Identifier: MIT
/*
 * SIGHUP: parse the file into a new config; on any error log each one
 * with file and line and keep running the old config untouched. Otherwise
 * diff the backends by name: kept ones keep their flows and their health
 * but take the file's settings and admin state, removed ones hand their
 * flows on, new ones are added. Listeners, max_flows, the control
 * socket and client_address need a restart.
 */
#include "wglb/reload.h"
#include "wglb/workers.h"
#include "wglb/fwd.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static void report(void *ctx, const char *file, unsigned line, const char *msg)
{
	(void)ctx;
	log_err("%s:%u: %s", file, line, msg);
}

static void warn_restart_only(const struct wglb_config *old, const struct wglb_config *nc)
{
	bool same_listen = old->n_listen == nc->n_listen;

	for (unsigned i = 0; same_listen && i < nc->n_listen; i++)
		same_listen = addr_equal(&old->listen[i], &nc->listen[i]);
	if (!same_listen)
		log_warn("listen changed: takes effect at the next restart");
	if (nc->max_flows && old->max_flows != nc->max_flows)
		log_warn("max_flows changed: takes effect at the next restart");
	if (strcmp(old->control, nc->control) || strcmp(old->control_group, nc->control_group) ||
	    strcmp(old->admin_group, nc->admin_group) ||
	    !addr_equal(&old->metrics_listen, &nc->metrics_listen))
		log_warn("control socket settings changed: take effect at the next restart");
	if (nc->workers != old->workers)
		log_warn("workers changed: takes effect at the next restart");
	if (old->udp_gro != nc->udp_gro)
		log_warn("udp_gro changed: takes effect at the next restart");
	if (old->fast_path != nc->fast_path)
		log_warn("fast_path changed: takes effect at the next restart");
	if (old->client_address != nc->client_address)
		log_warn("client_address changed: takes effect at the next restart");
	if (old->health.enabled != nc->health.enabled)
		log_warn("[health] added or removed: takes effect at the next restart");
	if (memcmp(&old->agent, &nc->agent, sizeof(nc->agent)))
		log_warn("[agent] changed: takes effect at the next restart");
}

/* What a reload cannot change keeps its running value in the new config. */
static void keep_restart_only(struct wglb_config *nc, const struct wglb_config *old)
{
	memcpy(nc->listen, old->listen, sizeof(old->listen));
	nc->n_listen = old->n_listen;
	nc->max_flows = old->max_flows; /* as resolved at start */
	memcpy(nc->control, old->control, sizeof(old->control));
	memcpy(nc->control_group, old->control_group, sizeof(old->control_group));
	memcpy(nc->admin_group, old->admin_group, sizeof(old->admin_group));
	nc->metrics_listen = old->metrics_listen;
	nc->workers = old->workers;
	nc->udp_gro = old->udp_gro;
	nc->fast_path = old->fast_path; /* attached to interfaces at start */
	nc->client_address = old->client_address; /* the listeners' sharing is set at start */
	if (!(nc->health.enabled && old->health.enabled))
		nc->health = old->health;
	nc->agent = old->agent;
}

int reload_apply(struct loop *l)
{
	struct wglb_config nc;
	int ret;

	log_info("reloading %s", l->cfg.path);
	ret = config_load(l->cfg.path, &nc, report, NULL);
	if (ret < 0) {
		log_err("reload: cannot read %s: %s; keeping the running config", l->cfg.path,
			strerror(-ret));
		return ret;
	}
	if (ret > 0) {
		log_err("reload: %d error(s) in %s; keeping the running config", ret, l->cfg.path);
		return -EINVAL;
	}
	warn_restart_only(&l->cfg, &nc);
	keep_restart_only(&nc, &l->cfg);
	if (fwd_configure(l, &nc) < 0) {
		log_err("reload: out of memory for the handshake limits; keeping the running config");
		config_free(&nc);
		return -ENOMEM;
	}

	/* The file wins: kept backends take its weight, health port and
	 * address and lose any runtime drain/disable (as nginx, HAProxy and
	 * ipvsadm do); removed ones, and ones whose address family changed,
	 * hand their flows on at the end of the batch; new ones start in
	 * checking (a family change is a removal plus a new backend). */
	for (unsigned i = 0; i < l->pool.n; i++) {
		const struct backend *b = &l->pool.be[i];
		const struct backend_conf *bc;
		if (!b->in_use || b->removing)
			continue;
		bc = config_backend(&nc, b->name);
		if (!bc || b->addr.u.sa.sa_family != bc->addr.u.sa.sa_family) {
			pool_remove(&l->pool, i);
			continue;
		}
		if (!addr_equal(&b->addr, &bc->addr))
			fwd_readdress(l, i, &bc->addr);
		pool_configure(&l->pool, i, bc);
		if (!b->agent_drain) /* a drain its own agent asks for stays */
			pool_set_admin(&l->pool, i, ADMIN_ENABLED);
	}
	for (unsigned i = 0; i < nc.n_backends; i++)
		if (pool_find(&l->pool, nc.backends[i].name) < 0)
			pool_add(&l->pool, &nc.backends[i]);

	/* The new config runs whole, here and on every other worker. */
	config_free(&l->cfg);
	l->cfg = nc;
	if (workers_others(l, fwd_follow_config, &l->cfg) < 0) /* a stalled worker (logged) */
		log_warn("reload: a worker did not answer and keeps its old config; reload again "
			 "once it runs");
	log_info("reloaded: %u backends", l->cfg.n_backends);
	return 0;
}

static void on_reload(struct loop *l)
{
	(void)reload_apply(l); /* errors are logged; the running config stays */
}

const struct loop_part reload_part = {.name = "reload", .reload = on_reload};
