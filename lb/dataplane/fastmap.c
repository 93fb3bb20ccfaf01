// SPDX-License-Identifier: MIT
/*
 * The kernel fast path as the packet path keeps it (fast_path = tc;
 * docs/fast-path.md): at start, on the main thread, load the program once
 * and attach it at tc ingress of the interfaces that hold the listen
 * addresses and of those the routes to the backends leave by; then every
 * worker mirrors its own confirmed flows into the one map, in the same
 * step that changes them in its table, and folds what the program counted
 * into its flows when it looks. The flow table stays the truth: a missing
 * entry costs speed (the datagram goes up to the socket that still
 * exists); a stale one is the hazard, so an entry goes before its flow's
 * socket, port or backend changes.
 *
 * Map updates are bpf() system calls on the map's descriptor: the kernel
 * serialises them, so workers write their own flows' entries without a
 * lock (the handle is only read after start).
 */
#include "dp.h"
#include "wglb/fastpath.h"

#include <errno.h>
#include <ifaddrs.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define FM_MAX_IFS 8 /* as the loader: the listeners' interfaces and the backends' */

/* One flow's entry as it was put: what to delete, whatever the flow has
 * become since, and what of its counts has been folded in. */
struct fast_slot {
	struct fastpath_flow e;
	struct fastpath_counters seen[2]; /* [0] to the backend, [1] to the client */
	bool in;
};

struct dp_fast {
	struct fast_slot *slot; /* by flow index */
	uint32_t cap;
};

/* The process's one program and map. Written on the main thread before
 * any worker starts and after every worker has stopped; only read in
 * between (thread creation and join order it), so it needs no lock. */
static struct {
	struct fastpath *fp; /* NULL: every datagram through the sockets */
	char ifs[FM_MAX_IFS][IF_NAMESIZE];
	unsigned n_ifs;
	char status[512]; /* for show info: on where, or why not */
} fm = {.status = "off"};

/* ---- finding the interfaces ---- */

/* The interface that holds address a (a listen address). */
static int if_of_addr(const union wglb_sa *a, char name[IF_NAMESIZE])
{
	struct ifaddrs *all, *i;
	int rc = -EADDRNOTAVAIL;

	if (getifaddrs(&all) < 0)
		return -errno;
	for (i = all; i; i = i->ifa_next) {
		const union wglb_sa *x = (const void *)i->ifa_addr;
		if (!x || x->sa.sa_family != a->sa.sa_family)
			continue;
		if (a->sa.sa_family == AF_INET ? x->in4.sin_addr.s_addr == a->in4.sin_addr.s_addr
					       : !memcmp(&x->in6.sin6_addr, &a->in6.sin6_addr, 16)) {
			snprintf(name, IF_NAMESIZE, "%s", i->ifa_name);
			rc = 0;
			break;
		}
	}
	freeifaddrs(all);
	return rc;
}

static int oif_attr_cb(const struct nlattr *attr, void *data)
{
	if (mnl_attr_type_valid(attr, RTA_MAX) < 0 || mnl_attr_get_type(attr) != RTA_OIF)
		return MNL_CB_OK;
	if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
		return MNL_CB_ERROR;
	*(int *)data = (int)mnl_attr_get_u32(attr);
	return MNL_CB_OK;
}

static int oif_cb(const struct nlmsghdr *nlh, void *data)
{
	if (nlh->nlmsg_type != RTM_NEWROUTE)
		return MNL_CB_OK;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct rtmsg))
		return MNL_CB_ERROR;
	return mnl_attr_parse(nlh, sizeof(struct rtmsg), oif_attr_cb, data) < 0 ? MNL_CB_ERROR
										 : MNL_CB_STOP;
}

/* The interface the route to dst leaves by (RTM_GETROUTE, as `ip route
 * get`): where a backend's replies arrive. Waits at most 2 s. */
static int route_oif(const union wglb_sa *dst, char name[IF_NAMESIZE])
{
	char buf[8192];
	struct timeval tv = {.tv_sec = 2};
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct mnl_socket *nl;
	struct rtmsg *rtm;
	unsigned portid;
	int oif = 0, rc;

	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = (unsigned)time(NULL);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (unsigned char)dst->sa.sa_family;
	if (dst->sa.sa_family == AF_INET) {
		rtm->rtm_dst_len = 32;
		mnl_attr_put(nlh, RTA_DST, 4, &dst->in4.sin_addr);
	} else {
		rtm->rtm_dst_len = 128;
		mnl_attr_put(nlh, RTA_DST, 16, &dst->in6.sin6_addr);
	}
	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		rc = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	do {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			rc = errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto out;
		}
		rc = mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, portid, oif_cb, &oif);
	} while (rc > 0);
	if (rc < 0) {
		rc = -errno; /* the kernel's answer: no route (ENETUNREACH), ... */
		goto out;
	}
	rc = oif > 0 && if_indextoname((unsigned)oif, name) ? 0 : -ENODEV;
out:
	mnl_socket_close(nl);
	return rc;
}

static int add_if(char ifs[][IF_NAMESIZE], unsigned *n, const char *name)
{
	for (unsigned i = 0; i < *n; i++)
		if (!strcmp(ifs[i], name))
			return 0;
	if (*n == FM_MAX_IFS)
		return -ENOSPC;
	snprintf(ifs[(*n)++], IF_NAMESIZE, "%s", name);
	return 0;
}

/* Every interface the program must see: those that hold the listen
 * addresses (clients' datagrams) and those the routes to the backends
 * leave by (their replies). 0, or -errno with what failed in why. */
static bool wildcard(const union wglb_sa *a)
{
	return a->sa.sa_family == AF_INET6 ? IN6_IS_ADDR_UNSPECIFIED(&a->in6.sin6_addr)
					   : a->in4.sin_addr.s_addr == htonl(INADDR_ANY);
}

/* some: skip wildcard listeners (a config that does not ask for the
 * fast path, when only clearing a leftover). */
static int find_ifs(const struct wglb_config *cfg, char ifs[][IF_NAMESIZE], unsigned *n,
		    char *why, size_t size, bool some)
{
	char name[IF_NAMESIZE], a[ADDR_STRLEN];
	int rc;

	*n = 0;
	for (unsigned i = 0; i < cfg->n_listen; i++) {
		if (some && wildcard(&cfg->listen[i].u))
			continue;
		rc = if_of_addr(&cfg->listen[i].u, name);
		if (rc == 0)
			rc = add_if(ifs, n, name);
		if (rc < 0) {
			snprintf(why, size, "listen %s: %s", addr_fmt(&cfg->listen[i].u, a, sizeof(a)),
				 rc == -EADDRNOTAVAIL ? "no interface holds that address"
						      : strerror(-rc));
			return rc;
		}
	}
	for (unsigned i = 0; i < cfg->n_backends; i++) {
		rc = route_oif(&cfg->backends[i].addr.u, name);
		if (rc == 0)
			rc = add_if(ifs, n, name);
		if (rc < 0) {
			snprintf(why, size, "backend %s (%s): no route to it: %s", cfg->backends[i].name,
				 addr_fmt(&cfg->backends[i].addr.u, a, sizeof(a)), strerror(-rc));
			return rc;
		}
	}
	return 0;
}

static void join_ifs(char ifs[][IF_NAMESIZE], unsigned n, char *out, size_t size)
{
	size_t len = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%s", i ? ", " : "", ifs[i]);
}

/* The program's FIB lookup is a forwarding lookup from the interface it
 * came in on: with forwarding off there, every datagram goes up. */
static bool forwarding_off(const struct wglb_config *cfg, const char *ifname)
{
	bool v4 = false, v6 = false, off = false;
	char path[128], c = '1';

	for (unsigned i = 0; i < cfg->n_listen; i++)
		*(cfg->listen[i].u.sa.sa_family == AF_INET ? &v4 : &v6) = true;
	for (unsigned i = 0; i < cfg->n_backends; i++)
		*(cfg->backends[i].addr.u.sa.sa_family == AF_INET ? &v4 : &v6) = true;
	for (int fam = 0; fam < 2; fam++) {
		FILE *f;
		if (!(fam ? v6 : v4))
			continue;
		snprintf(path, sizeof(path), "/proc/sys/net/%s/conf/%s/forwarding",
			 fam ? "ipv6" : "ipv4", ifname);
		f = fopen(path, "re");
		if (f && fread(&c, 1, 1, f) == 1 && c == '0')
			off = true;
		if (f)
			fclose(f);
	}
	return off;
}

/* ---- start and stop (main thread, before and after the workers) ---- */

/* The program reads an Ethernet header (ARPHRD_ETHER, 1, in sysfs). */
static bool is_ether(const char *ifname)
{
	char path[192];
	int type = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/net/%s/type", ifname);
	f = fopen(path, "re");
	if (f) {
		if (fscanf(f, "%d", &type) != 1)
			type = -1;
		fclose(f);
	}
	return type == 1;
}

int fwd_fast_check(const struct wglb_config *cfg, char *out, size_t size)
{
	char ifs[FM_MAX_IFS][IF_NAMESIZE], why[256], list[FM_MAX_IFS * (IF_NAMESIZE + 2)];
	struct fastpath *fp;
	unsigned n;
	int rc;

	if (cfg->fast_path != FAST_PATH_TC) {
		snprintf(out, size, "off");
		return 0;
	}
	rc = find_ifs(cfg, ifs, &n, why, sizeof(why), false);
	if (rc < 0) {
		snprintf(out, size, "tc cannot attach: %s", why);
		return rc;
	}
	for (unsigned i = 0; i < n; i++)
		if (!is_ether(ifs[i])) {
			snprintf(out, size, "tc cannot attach to %s: not an Ethernet device", ifs[i]);
			return 0;
		}
	join_ifs(ifs, n, list, sizeof(list));
	rc = fastpath_open(&fp, NULL);
	fastpath_close(fp);
	if (rc == -ENOTSUP)
		snprintf(out, size, "tc on %s, but this wglb was built without the fast path "
			 "(-Dfast_path): the socket path only", list);
	else if (rc < 0)
		snprintf(out, size, "tc on %s, but the program does not load here (%s%s)", list,
			 strerror(-rc), rc == -EPERM ? ": needs root or CAP_BPF + CAP_NET_ADMIN" : "");
	else
		snprintf(out, size, "tc at ingress of %s", list);
	return rc == -ENOTSUP ? rc : 0;
}

void fwd_fast_start(const struct wglb_config *cfg)
{
	char why[256], list[FM_MAX_IFS * (IF_NAMESIZE + 2)];
	int rc;

	if (cfg->fast_path != FAST_PATH_TC)
		return;
	rc = find_ifs(cfg, fm.ifs, &fm.n_ifs, why, sizeof(why), false);
	if (rc < 0)
		goto fail;
	join_ifs(fm.ifs, fm.n_ifs, list, sizeof(list));
	/* A wglb that died attached left its program forwarding on its last
	 * entries: take it off before anything else, whether or not this one
	 * can load its own. */
	for (unsigned i = 0; i < fm.n_ifs; i++)
		if (fastpath_clear(fm.ifs[i]) == 0)
			log_warn("fast path: removed a program an earlier wglb left on %s", fm.ifs[i]);
	rc = fastpath_open(&fm.fp, NULL);
	if (rc < 0) {
		snprintf(why, sizeof(why), "the program does not load: %s%s",
			 rc == -ENOTSUP ? "built without it (-Dfast_path)" : strerror(-rc),
			 rc == -EPERM ? " (needs root or CAP_BPF + CAP_NET_ADMIN)" : "");
		goto fail;
	}
	for (unsigned i = 0; i < fm.n_ifs; i++) {
		rc = fastpath_attach(fm.fp, fm.ifs[i]);
		if (rc < 0) {
			snprintf(why, sizeof(why), "cannot attach to %s: %s", fm.ifs[i],
				 rc == -EOPNOTSUPP ? "not an Ethernet device" : strerror(-rc));
			goto fail;
		}
	}
	snprintf(fm.status, sizeof(fm.status), "tc at ingress of %s", list);
	log_info("fast path: tc at ingress of %s: confirmed flows' transport is forwarded there",
		 list);
	for (unsigned i = 0; i < fm.n_ifs; i++)
		if (forwarding_off(cfg, fm.ifs[i])) {
			log_warn("fast path: forwarding is off on %s: the program passes everything "
				 "up to wglb (sysctl net.ipv4.conf.%s.forwarding=1, and ipv6 for IPv6)",
				 fm.ifs[i], fm.ifs[i]);
			snprintf(fm.status + strlen(fm.status), sizeof(fm.status) - strlen(fm.status),
				 " (forwarding off on %s: all goes up)", fm.ifs[i]);
		}
	return;
fail:
	fastpath_close(fm.fp); /* detaches what it had attached */
	fm.fp = NULL;
	log_warn("fast path: not in use, forwarding through wglb's sockets only: %s", why);
	snprintf(fm.status, sizeof(fm.status), "tc asked, not in use: %s", why);
}

int fwd_fast_clear(const struct wglb_config *cfg, char *out, size_t size)
{
	char ifs[FM_MAX_IFS][IF_NAMESIZE], why[256], gone[FM_MAX_IFS][IF_NAMESIZE];
	char list[FM_MAX_IFS * (IF_NAMESIZE + 2)];
	unsigned n, n_gone = 0;
	int rc = find_ifs(cfg, ifs, &n, why, sizeof(why), true);

	if (rc < 0) {
		snprintf(out, size, "cannot tell where to look: %s", why);
		return rc;
	}
	for (unsigned i = 0; i < n; i++) {
		rc = fastpath_clear(ifs[i]);
		if (rc == -ENOTSUP) {
			snprintf(out, size, "this wglb was built without the fast path");
			return rc;
		}
		if (rc == 0)
			memcpy(gone[n_gone++], ifs[i], IF_NAMESIZE);
	}
	join_ifs(n_gone ? gone : ifs, n_gone ? n_gone : n, list, sizeof(list));
	snprintf(out, size, "%s %s", n_gone ? "removed a program left on" : "nothing left on", list);
	return (int)n_gone;
}

void fwd_fast_detach(void)
{
	for (unsigned i = 0; fm.fp && i < fm.n_ifs; i++)
		(void)fastpath_detach(fm.fp, fm.ifs[i]);
}

void fwd_fast_stop(void)
{
	fastpath_close(fm.fp);
	fm.fp = NULL;
}

const char *fwd_fast_status(void)
{
	return fm.status;
}

int fwd_fast_events(struct fwd_fast_events *out)
{
	struct fastpath_events ev;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!fm.fp)
		return -ENOENT;
	rc = fastpath_events(fm.fp, &ev);
	if (rc < 0)
		return rc;
	out->fib_failed = ev.fib_failed;
	out->no_neigh = ev.no_neigh;
	out->frag_needed = ev.frag_needed;
	out->fwd_disabled = ev.fwd_disabled;
	out->rewrite_failed = ev.rewrite_failed;
	return 0;
}

/* ---- each worker's flows ---- */

int dp_fast_open(struct fwd *dp)
{
	if (!fm.fp)
		return 0;
	dp->fast = calloc(1, sizeof(*dp->fast));
	if (!dp->fast)
		return -ENOMEM;
	dp->fast->cap = dp->ft.cap;
	dp->fast->slot = calloc(dp->ft.cap, sizeof(*dp->fast->slot));
	if (!dp->fast->slot) {
		free(dp->fast);
		dp->fast = NULL;
		return -ENOMEM;
	}
	return 0;
}

void dp_fast_close(struct fwd *dp)
{
	if (!dp->fast)
		return;
	free(dp->fast->slot);
	free(dp->fast);
	dp->fast = NULL;
}

static struct fast_slot *slot_of(struct fwd *dp, const struct flow *f)
{
	uint32_t i = flow_index(&dp->ft, f);

	return dp->fast && i < dp->fast->cap ? &dp->fast->slot[i] : NULL;
}

/* Program ns (CLOCK_MONOTONIC) to the loop's seconds (flow.last_rx). */
static uint32_t loop_s_of(const struct loop *l, uint64_t ns)
{
	uint64_t ms = ns / 1000000;

	return ms > l->start_ms ? (uint32_t)((ms - l->start_ms) / 1000) : 0;
}

void dp_fast_fold(struct loop *l, struct fwd *dp, struct flow *f)
{
	struct fast_slot *s = slot_of(dp, f);
	struct fastpath_counters c[2];
	struct backend_stats *bs;
	struct listener_stats *ls;

	if (!s || !s->in || fastpath_flow_counters(fm.fp, &s->e, &c[0], &c[1]) < 0)
		return;
	bs = f->backend < CONFIG_MAX_BACKENDS ? &dp->be[f->backend].st : NULL;
	ls = &l->lst[f->key.listener].st;
	for (int d = 0; d < 2; d++) {
		uint64_t pk = c[d].packets - s->seen[d].packets, by = c[d].bytes - s->seen[d].bytes;
		uint32_t t;
		if (c[d].packets < s->seen[d].packets || !pk)
			continue;
		if (d == 0) { /* client -> backend, as rx.c counts a client's transport */
			f->pkts_in += (uint32_t)pk;
			f->bytes_in += by;
			l->st.pkts_in += pk;
			l->st.bytes_in += by;
			l->st.fwd_in += pk; /* sent on, by the kernel */
			l->st.msgs_in[WG_T_TRANSPORT] += pk;
			l->st.fast_pkts_in += pk;
			l->st.fast_bytes_in += by;
			ls->pkts_in += pk;
			ls->bytes_in += by;
			if (bs) {
				bs->pkts_in += pk;
				bs->bytes_in += by;
				bs->msgs_in[WG_T_TRANSPORT] += pk;
			}
		} else { /* backend -> client: the backend is alive, as backend_segment says */
			f->pkts_out += (uint32_t)pk;
			f->bytes_out += by;
			f->quiet = 0;
			l->st.pkts_out += pk;
			l->st.bytes_out += by;
			l->st.fwd_out += pk;
			l->st.msgs_out[WG_T_TRANSPORT] += pk;
			l->st.fast_pkts_out += pk;
			l->st.fast_bytes_out += by;
			ls->pkts_out += pk;
			ls->bytes_out += by;
			if (bs) {
				bs->pkts_out += pk;
				bs->bytes_out += by;
				bs->msgs_out[WG_T_TRANSPORT] += pk;
			}
		}
		t = loop_s_of(l, c[d].last_ns);
		if ((int32_t)(t - f->last_rx) > 0)
			f->last_rx = t;
		s->seen[d] = c[d];
	}
}

void dp_fast_del(struct loop *l, struct fwd *dp, struct flow *f)
{
	struct fast_slot *s = slot_of(dp, f);

	if (!s || !s->in)
		return;
	dp_fast_fold(l, dp, f); /* what it counted until now is the flow's */
	(void)fastpath_flow_del(fm.fp, &s->e); /* -ENOENT only: nothing to undo */
	s->in = false;
}

/* The listener's address: concrete (the config refuses a wildcard). */
static void listen_sa(const struct loop *l, const struct flow *f, union wglb_sa *out)
{
	*out = l->lst[f->key.listener].addr.u;
}

void dp_fast_put(struct loop *l, struct fwd *dp, struct flow *f, const union wglb_sa *backend)
{
	struct fast_slot *s = slot_of(dp, f);
	socklen_t sl = sizeof(s->e.upstream);
	int rc;

	/* Only what the socket path would forward as it is: a confirmed
	 * flow, from the balancer's address, whose client allow lets in. */
	if (!s || !(f->flags & FLOW_F_CONFIRMED) || (f->flags & FLOW_F_PRESERVED) || f->fd < 0 ||
	    !dp_allowed(l, &f->key))
		return;
	dp_fast_del(l, dp, f);
	memset(&s->e, 0, sizeof(s->e));
	flow_client_sa(&f->key, &s->e.client);
	listen_sa(l, f, &s->e.listen);
	s->e.backend = backend ? *backend : l->pool.be[f->backend].addr.u;
	s->e.confirmed = true;
	if (getsockname(f->fd, &s->e.upstream.sa, &sl) < 0)
		return;
	rc = fastpath_flow_put(fm.fp, &s->e);
	if (rc < 0) { /* a full map, a client and backend of two families: the sockets carry it */
		l->st.fast_refused++;
		return;
	}
	memset(s->seen, 0, sizeof(s->seen));
	s->in = true;
}

/* A reload narrowed allow: a flow whose client may no longer send is
 * dropped datagram by datagram on the socket path (rx.c), so its entries
 * go now, before the new list is in force. (One allowed again stays on
 * the socket path until it is confirmed again or re-pinned.) */
void dp_fast_allow(struct loop *l, struct fwd *dp, const struct wglb_config *nc)
{
	if (!dp->fast || !nc->n_allow)
		return;
	for (uint32_t i = 0; i < dp->ft.cap; i++) {
		struct flow *f = &dp->ft.flows[i];
		bool ok = false;
		if (!(f->flags & FLOW_F_USED) || !dp->fast->slot[i].in)
			continue;
		for (unsigned a = 0; a < nc->n_allow && !ok; a++)
			ok = cidr_match(&nc->allow[a], f->key.family, f->key.addr);
		if (!ok)
			dp_fast_del(l, dp, f);
	}
}
