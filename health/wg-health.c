// SPDX-License-Identifier: MIT
/*
 * wg-health: the agent each WireGuard server runs, in place of the
 * reference article's wg-health-check.py. 200 "healthy" while the
 * interface exists and is up (asked over rtnetlink on every probe) and,
 * where it can tell, WireGuard listens; 503 otherwise. While the drain
 * file exists: 503 "draining" with X-Wglb-Drain: 1, which an NLB treats
 * as down and wglb as a graceful drain. One thread, epoll, bounded
 * buffers and a deadline per connection (a probe's second on the health
 * port); never a connection that arrived on a WireGuard interface (a VPN
 * client, not a prober, whatever address it asked for; accept.c); at most
 * 64 per source (an IPv4 address, an IPv6 /64); a full table sheds fairly
 * (the largest source's oldest idle connection, never a --prober's), so
 * silent connections cannot shut the probe out; replies never block. What the
 * thread does wait for is the interface itself: each health check asks
 * rtnetlink and the WireGuard interface (UAPI or genl, 2 s timeouts), so a
 * wedged wireguard-go delays answers by that much. With --route-via (client
 * address preservation, route_setup.h) each check also asks for the
 * device's fwmark (in the same read) and one marked route lookup.
 *
 * One-shot, as root: --route-setup, --route-undo and --route-check put in
 * place, take away and show that routing.
 */
#include "wglb/accept.h"
#include "wglb/addr.h"
#include "wglb/agentcmd.h"
#include "wglb/clock.h"
#include "wglb/route_setup.h"
#include "wglb/rtnl.h"
#include "wglb/showpeers.h"
#include "wglb/version.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CLIENTS_DIR  "/run/wg-health-agent" /* the agent unit's RuntimeDirectory */
#define MAX_CONN     1024
#define MAX_PER_SRC  64   /* connections one source (address, IPv6 /64) may hold (a prober needs one) */
#define MAX_PROBERS  8
#define MAX_ROUTES   8    /* --route-via: balancers (ECMP) */
#define REQ_MAX      4096
#define HEALTH_TIMEOUT_MS 1000 /* a probe sends its request at once */
#define AGENT_TIMEOUT_MS  5000 /* a peers reply can be long */
#define ACCEPT_PAUSE_MS   100  /* accept at EMFILE: wait, don't spin */
/* A request longer than REQ_MAX (a balancer telling its clients) grows
 * into a buffer of its own. Its bytes arrive before the MAC that vouches
 * for them, so a source (address, IPv6 /64) holds one such buffer at a
 * time, and all of them together stay under this: one pool for --prober
 * sources (the balancers), one for everybody else, so that strangers
 * cannot take the balancers' room. */
#define BIG_TOTAL         (8u << 20)

struct conn {
	int fd;
	bool agent; /* on the agent port: one signed request (ap_request_end) */
	size_t len;
	uint64_t deadline;
	char *out;       /* a reply still being sent (agent port), malloc'd */
	size_t out_len, out_off;
	char *big;       /* the request, once longer than req[] (agent port), malloc'd */
	size_t big_cap;
	bool big_prober; /* big counts in the probers' pool */
	size_t scan;     /* ap_request_end's place */
	char req[REQ_MAX];
};

struct wghealth {
	const char *device;
	const char *drain_file;
	int lfd, afd, ep;
	struct agent_cmd *cmd; /* NULL without --agent-key */
	bool agent_only;       /* no health port: the privileged half, run on its own */
	struct conn *conns[MAX_CONN];
	struct acc_slot slots[MAX_CONN]; /* conns[i]'s source, age, standing */
	unsigned n;
	struct wglb_cidr probers[MAX_PROBERS]; /* --prober: the balancer, never shed */
	unsigned n_probers;
	uint64_t paused_until[2]; /* [agent_port]: accept paused at EMFILE until then */
	uint64_t shed, per_src_refused, full_refused, emfile, via_tunnel, ingress_unknown;
	struct acc_ifcache ifc;
	/* --route-via: checked on every answer (for the balancer whose --route-from
	 * address the probe came to, or every one); n_routes 0: none. */
	const struct rsetup *routes;
	unsigned n_routes;
	volatile sig_atomic_t stop;
};

static struct wghealth *sig_agent;

/* The routes to check for a probe that came to local (NULL: all): the
 * balancer whose own address on this server it came to, else all. */
static bool route_ok(const struct wghealth *a, const union wglb_sa *local, int conf_err,
		     uint32_t fwmark, char *buf)
{
	const struct rsetup *only = NULL;
	const uint8_t *addr = NULL;
	int family = 0;

	if (local && local->sa.sa_family == AF_INET) {
		family = AF_INET;
		addr = (const uint8_t *)&local->in4.sin_addr;
	} else if (local && local->sa.sa_family == AF_INET6) {
		/* An IPv4 probe to a dual-stack listener (--listen ::). */
		bool mapped = IN6_IS_ADDR_V4MAPPED(&local->in6.sin6_addr);
		family = mapped ? AF_INET : AF_INET6;
		addr = (const uint8_t *)&local->in6.sin6_addr + (mapped ? 12 : 0);
	}
	for (unsigned i = 0; addr && i < a->n_routes && !only; i++) {
		const struct rsetup *rs = &a->routes[i];
		if (rs->has_from && family == rs->family &&
		    !memcmp(addr, rs->from, family == AF_INET ? 4 : 16))
			only = rs;
	}
	if (only)
		return rsetup_verify(only, conf_err, fwmark, buf, RSETUP_WHY_MAX) == 0;
	for (unsigned i = 0; i < a->n_routes; i++)
		if (rsetup_verify(&a->routes[i], conf_err, fwmark, buf, RSETUP_WHY_MAX) < 0)
			return false;
	return true;
}

/* The verdict for a probe that came to local (NULL: --test): 200, or 503
 * with a reason (maybe written to buf, size RSETUP_WHY_MAX); *drain when
 * the drain file exists. */
static int check(const struct wghealth *a, const union wglb_sa *local, char *buf, const char **why,
		 bool *drain)
{
	struct wgdev_conf conf;
	struct stat st;
	bool up = false;
	int ret;

	*drain = a->drain_file && stat(a->drain_file, &st) == 0;
	if (*drain) {
		*why = "draining";
		return 503;
	}
	ret = nl_link_state(a->device, &up);
	if (ret == -ENODEV) {
		*why = "interface missing";
		return 503;
	}
	if (ret < 0) {
		*why = "netlink error";
		return 503;
	}
	if (!up) {
		*why = "interface down";
		return 503;
	}
	/* Where the interface answers us (UAPI socket or genl; root or
	 * CAP_NET_ADMIN), insist that it listens. */
	ret = wgdev_conf(a->device, &conf);
	if (ret == 0 && conf.listen_port == 0) {
		*why = "not listening";
		return 503;
	}
	/* A server that would answer wglb's clients directly (they came from
	 * their own addresses) must not get them. Here, an unreadable mark
	 * fails too: it is the one thing that proves the replies' way. */
	if (a->n_routes && !route_ok(a, local, ret, ret == 0 ? conf.fwmark : 0, buf)) {
		*why = buf;
		return 503;
	}
	*why = "healthy";
	return 200;
}

static size_t big_total[2]; /* bytes in every conn's big buffer: [prober] */

static void conn_close(struct wghealth *a, unsigned i)
{
	struct conn *c = a->conns[i];

	epoll_ctl(a->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->out);
	big_total[c->big_prober] -= c->big_cap;
	free(c->big);
	free(c);
	a->conns[i] = a->conns[--a->n];
	a->slots[i] = a->slots[a->n];
}

static void respond(struct wghealth *a, struct conn *c, const char *status, const char *body,
		    bool head, bool drain)
{
	char out[512 + RSETUP_WHY_MAX];
	int n = snprintf(out, sizeof(out),
			 "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
			 "Server: wg-health/%s\r\n%sConnection: close\r\n\r\n%s",
			 status, strlen(body), WGLB_VERSION, drain ? "X-Wglb-Drain: 1\r\n" : "",
			 head ? "" : body);

	(void)a;
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(out))
		n = (int)sizeof(out) - 1;
	/* Small enough for any fresh socket buffer; a peer that is gone is fine. */
	(void)!send(c->fd, out, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* "METHOD PATH HTTP/1.x" has arrived: a prober's request, not an idle hold. */
static bool request_line(const struct conn *c)
{
	const char *eol = memchr(c->req, '\n', c->len);

	return eol && memmem(c->req, (size_t)(eol - c->req), " HTTP/1.", 8);
}

/* 1 when the request is complete and answered, 0 for more, -1 on garbage. */
static int handle(struct wghealth *a, struct conn *c)
{
	bool get, head, drain;
	const char *why;
	char buf[RSETUP_WHY_MAX], body[RSETUP_WHY_MAX + 2];
	int code;

	if (!memmem(c->req, c->len, "\r\n\r\n", 4) && !memmem(c->req, c->len, "\n\n", 2))
		return c->len == REQ_MAX ? -1 : 0;
	get = c->len > 4 && !memcmp(c->req, "GET ", 4);
	head = c->len > 5 && !memcmp(c->req, "HEAD ", 5);
	{
		/* Not even "METHOD PATH HTTP/1.x": a bad request, not a bad method. */
		const char *eol = memchr(c->req, '\n', c->len);
		if (!eol || !memmem(c->req, (size_t)(eol - c->req), " HTTP/1.", 8))
			return -1;
	}
	if (!get && !head) {
		respond(a, c, "405 Method Not Allowed", "GET or HEAD\n", false, false);
		return 1;
	}
	{
		union wglb_sa local;
		socklen_t sl = sizeof(local);
		code = check(a, getsockname(c->fd, &local.sa, &sl) == 0 ? &local : NULL, buf, &why,
			     &drain);
	}
	snprintf(body, sizeof(body), "%s\n", why);
	respond(a, c, code == 200 ? "200 OK" : "503 Service Unavailable", body, head, drain);
	return 1;
}

/* Admit a connection from sa that arrived on ifindex, or refuse it (-1):
 * through a WireGuard interface, unknown ingress (fail closed), per-source
 * cap, a full table where the newcomer's source is already the largest.
 * On admission *slot is its entry and a victim may have been closed. */
static int admit(struct wghealth *a, int fd, const union wglb_sa *sa, struct acc_slot *slot)
{
	uint64_t now = clock_monotonic_ms();
	unsigned victim;
	bool tunnel;
	int ifindex;

	if (acc_ingress_ifindex(fd, sa, &ifindex) < 0 ||
	    acc_ingress_is_tunnel(&a->ifc, a->device, ifindex, now, &tunnel) < 0) {
		a->ingress_unknown++;
		return -1;
	}
	if (tunnel) {
		a->via_tunnel++;
		return -1;
	}
	acc_key(sa, slot->key);
	slot->flags = acc_is_prober(a->probers, a->n_probers, sa) ? ACC_F_PROBER : 0;
	slot->born = now;
	switch (acc_admit(a->slots, a->n, MAX_CONN, MAX_PER_SRC, slot, &victim)) {
	case ACC_ADMIT:
		return 0;
	case ACC_SHED:
		a->shed++;
		conn_close(a, victim);
		return 0;
	case ACC_REFUSE_SOURCE:
		a->per_src_refused++;
		return -1;
	case ACC_REFUSE_FULL:
		break;
	}
	a->full_refused++;
	return -1;
}

static void listener_watch(struct wghealth *a, bool agent_port, bool on)
{
	struct epoll_event ev = {.events = on ? EPOLLIN : 0, .data.ptr = agent_port ? (void *)a : NULL};

	epoll_ctl(a->ep, EPOLL_CTL_MOD, agent_port ? a->afd : a->lfd, &ev);
}

static void on_accept(struct wghealth *a, bool agent_port)
{
	union wglb_sa sa;
	socklen_t sl = sizeof(sa);
	int fd;

	while ((fd = accept4(agent_port ? a->afd : a->lfd, &sa.sa, &sl,
			     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct epoll_event ev = {.events = EPOLLIN};
		struct acc_slot slot;
		struct conn *c;
		sl = sizeof(sa);
		if (admit(a, fd, &sa, &slot) < 0 || !(c = calloc(1, sizeof(*c)))) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->agent = agent_port;
		c->deadline = slot.born + (agent_port ? AGENT_TIMEOUT_MS : HEALTH_TIMEOUT_MS);
		ev.data.ptr = c;
		if (epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		a->slots[a->n] = slot;
		a->conns[a->n++] = c;
	}
	if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
		/* The connection stays queued and the listener readable: stop
		 * watching it for a moment instead of spinning. */
		if (!a->emfile++ || a->emfile % 1000 == 0)
			fprintf(stderr, "wg-health: accept: %s (%llu times); pausing %d ms\n",
				strerror(errno), (unsigned long long)a->emfile, ACCEPT_PAUSE_MS);
		listener_watch(a, agent_port, false);
		a->paused_until[agent_port] = clock_monotonic_ms() + ACCEPT_PAUSE_MS;
	}
}

/* Send what is left of an agent reply; true when done (or the peer is gone). */
static bool send_rest(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0)
			return errno != EAGAIN && errno != EINTR;
		c->out_off += (size_t)n;
	}
	return true;
}

/* One signed command: answer it, then send without ever blocking. */
static bool agent_request(struct wghealth *a, struct conn *c, const char *req, size_t len_req)
{
	static char out[1 << 20];
	char self[ADDR_STRLEN] = "";
	union wglb_sa local;
	socklen_t sl = sizeof(local);
	int len;

	if (getsockname(c->fd, &local.sa, &sl) == 0)
		addr_fmt(&local, self, sizeof(self));
	len = agentcmd_handle(a->cmd, self, req, len_req, out, sizeof(out));
	c->out = malloc((size_t)len);
	if (!c->out)
		return true;
	memcpy(c->out, out, (size_t)len);
	c->out_len = (size_t)len;
	if (send_rest(c))
		return true;
	struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
	epoll_ctl(a->ep, EPOLL_CTL_MOD, c->fd, &ev);
	return false;
}

/* Room for more of conns[i]'s agent request: req[], then a buffer of its
 * own that doubles up to AP_MAX_MSG: one per source, within its pool's
 * BIG_TOTAL. False: no more room. */
static bool agent_room(struct wghealth *a, unsigned i)
{
	struct conn *c = a->conns[i];
	size_t cap = c->big ? c->big_cap : REQ_MAX, nc;
	bool prober = a->slots[i].flags & ACC_F_PROBER;
	char *nb;

	if (c->len < cap)
		return true;
	if (!c->big)
		for (unsigned k = 0; k < a->n; k++)
			if (k != i && a->conns[k]->big &&
			    !memcmp(a->slots[k].key, a->slots[i].key, ACC_KEY_LEN))
				return false;
	nc = cap * 2 > AP_MAX_MSG ? AP_MAX_MSG : cap * 2;
	if (nc <= cap || big_total[prober] - c->big_cap + nc > BIG_TOTAL)
		return false;
	nb = realloc(c->big, nc);
	if (!nb)
		return false;
	if (!c->big)
		memcpy(nb, c->req, c->len);
	big_total[prober] += nc - c->big_cap;
	c->big = nb;
	c->big_cap = nc;
	c->big_prober = prober;
	return true;
}

/* Read an agent request until ap_request_end frames it whole, answer it. */
static void agent_data(struct wghealth *a, struct conn *c, unsigned i)
{
	long end = 0;
	ssize_t n;
	char *buf;

	if (!agent_room(a, i)) {
		conn_close(a, i);
		return;
	}
	buf = c->big ? c->big : c->req;
	n = recv(c->fd, buf + c->len, (c->big ? c->big_cap : REQ_MAX) - c->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(a, i);
		return;
	}
	c->len += (size_t)n;
	end = ap_request_end(buf, c->len, &c->scan);
	if (end == 0)
		return;
	if (end < 0 || agent_request(a, c, buf, (size_t)end - 1))
		conn_close(a, i);
	else
		a->slots[i].flags |= ACC_F_REQUEST; /* answered, its reply still going out */
}

static void on_data(struct wghealth *a, struct conn *c)
{
	unsigned i;
	ssize_t n;
	int r;

	for (i = 0; i < a->n && a->conns[i] != c; i++)
		;
	if (i == a->n)
		return;
	if (c->out) { /* writable again: the rest of a reply */
		if (send_rest(c))
			conn_close(a, i);
		return;
	}
	if (c->agent) {
		agent_data(a, c, i);
		return;
	}
	n = recv(c->fd, c->req + c->len, REQ_MAX - c->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(a, i);
		return;
	}
	c->len += (size_t)n;
	r = handle(a, c);
	if (r == 0 && request_line(c))
		a->slots[i].flags |= ACC_F_REQUEST;
	if (r < 0)
		respond(a, c, "400 Bad Request", "bad request\n", false, false);
	if (r != 0)
		conn_close(a, i);
}

static void expire(struct wghealth *a)
{
	uint64_t now = clock_monotonic_ms();

	for (int p = 0; p < 2; p++)
		if (a->paused_until[p] && now >= a->paused_until[p]) {
			a->paused_until[p] = 0;
			listener_watch(a, p, true);
		}
	for (unsigned i = 0; i < a->n;)
		if (now >= a->conns[i]->deadline)
			conn_close(a, i);
		else
			i++;
}

static void on_signal(int sig)
{
	(void)sig;
	if (sig_agent)
		sig_agent->stop = 1;
}

static int listen_on(const struct wglb_addr *addr, const char *spec)
{
	int one = 1, fd = socket(addr->u.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    acc_listen_opts(fd, addr->u.sa.sa_family) < 0 ||
	    bind(fd, &addr->u.sa, addr->len) < 0 || listen(fd, 512) < 0) {
		fprintf(stderr, "wg-health: listen on %s: %s\n", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int serve(struct wghealth *a, const char *listen_spec, unsigned port, unsigned agent_port)
{
	struct wglb_addr addr;
	char spec[ADDR_STRLEN + 8];
	struct epoll_event ev = {.events = EPOLLIN}, evs[64];

	if (listen_spec && strchr(listen_spec, ':') && !strchr(listen_spec, '.') && *listen_spec != '[')
		snprintf(spec, sizeof(spec), "[%s]:%u", listen_spec, port);
	else
		snprintf(spec, sizeof(spec), "%s:%u", listen_spec ? listen_spec : "0.0.0.0", port);
	if (addr_parse(spec, &addr) < 0) {
		fprintf(stderr, "wg-health: bad --listen address '%s'\n", listen_spec);
		return 2;
	}
	a->ep = epoll_create1(EPOLL_CLOEXEC);
	if (a->ep < 0) {
		fprintf(stderr, "wg-health: epoll: %s\n", strerror(errno));
		return 3;
	}
	if (!a->agent_only) {
		a->lfd = listen_on(&addr, spec);
		ev.data.ptr = NULL;
		if (a->lfd < 0 || epoll_ctl(a->ep, EPOLL_CTL_ADD, a->lfd, &ev) < 0)
			return 3;
		fprintf(stderr, "wg-health: serving %s for %s\n", spec, a->device);
		for (unsigned i = 0; i < a->n_routes; i++)
			fprintf(stderr, "wg-health: %s's replies to clients%s%s must leave via %s "
				"(fwmark 0x%x, table %u): checked on every answer\n", a->device,
				a->routes[i].has_from ? " from " : "",
				a->routes[i].has_from ? a->routes[i].from_str : "",
				a->routes[i].via_str, a->routes[i].mark, a->routes[i].table);
	}
	if (a->cmd) {
		addr_set_port(&addr.u, (uint16_t)agent_port);
		a->afd = listen_on(&addr, "the agent port");
		ev.data.ptr = a;
		if (a->afd < 0 || epoll_ctl(a->ep, EPOLL_CTL_ADD, a->afd, &ev) < 0)
			return 3;
		fprintf(stderr, "wg-health: agent commands on port %u, %s over %s\n", agent_port,
			a->device, wgdev_kind(a->device));
	}
	while (!a->stop) {
		int n = epoll_wait(a->ep, evs, 64, 100);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "wg-health: epoll_wait: %s\n", strerror(errno));
			return 3;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL)
				on_accept(a, false);
			else if (evs[i].data.ptr == (void *)a)
				on_accept(a, true);
			else
				on_data(a, evs[i].data.ptr);
		}
		expire(a);
	}
	while (a->n)
		conn_close(a, 0);
	close(a->ep);
	fprintf(stderr, "wg-health: connections: %llu shed for room, %llu refused past %d per "
		"source, %llu refused at a full table, %llu refused through the tunnel, %llu refused "
		"with an unknown ingress, %llu accept pauses at EMFILE\n",
		(unsigned long long)a->shed, (unsigned long long)a->per_src_refused, MAX_PER_SRC,
		(unsigned long long)a->full_refused, (unsigned long long)a->via_tunnel,
		(unsigned long long)a->ingress_unknown, (unsigned long long)a->emfile);
	if (a->lfd >= 0)
		close(a->lfd);
	if (a->cmd) {
		close(a->afd);
		fprintf(stderr, "wg-health: agent: %llu served, %llu re-handshakes, %llu unknown peers, "
			"%llu bad arguments, %llu wrong target, refused %llu bad MAC, %llu stale, "
			"%llu replayed, %llu malformed\n",
			(unsigned long long)a->cmd->served, (unsigned long long)a->cmd->rehandshakes,
			(unsigned long long)a->cmd->unknown_peer, (unsigned long long)a->cmd->bad_args,
			(unsigned long long)a->cmd->wrong_target,
			(unsigned long long)a->cmd->refused[AP_BAD_MAC], (unsigned long long)a->cmd->refused[AP_STALE],
			(unsigned long long)a->cmd->refused[AP_REPLAY], (unsigned long long)a->cmd->refused[AP_BAD_FORMAT]);
	}
	return 0;
}

enum route_cmd { RCMD_SERVE, RCMD_SETUP, RCMD_UNDO, RCMD_CHECK };
enum {
	OPT_ROUTE_VIA = 256,
	OPT_ROUTE_SETUP,
	OPT_ROUTE_UNDO,
	OPT_ROUTE_CHECK,
	OPT_ROUTE_MARK,
	OPT_ROUTE_TABLE,
	OPT_STATE_DIR,
	OPT_ROUTE_FROM,
	OPT_SHOW_PEERS,
	OPT_CLIENTS_FILE,
};

/* --route-mark, --route-table: 1 to 2^32-1, decimal or 0x hex. */
static int parse_u32(const char *opt, const char *s, uint32_t *v)
{
	unsigned long long n;
	char *end;

	errno = 0;
	n = strtoull(s, &end, 0);
	if (errno || end == s || *end || *s == '-' || n == 0 || n > UINT32_MAX) {
		fprintf(stderr, "wg-health: %s wants a number from 1 to 4294967295\n", opt);
		return -1;
	}
	*v = (uint32_t)n;
	return 0;
}

/* --route-setup, --route-undo, --route-check: 0, or 1 naming what failed
 * (or, for the check, what is missing). */
static int route_oneshot(enum route_cmd act, const struct rsetup *rs)
{
	int ret;

	if (act == RCMD_CHECK) {
		ret = rsetup_check(rs, stdout);
		if (ret > 0)
			printf("client address routing via %s is not in place: run wg-health --device %s "
			       "--route-via %s%s%s --route-setup\n", rs->via_str, rs->device, rs->via_str,
			       rs->has_from ? " --route-from " : "", rs->has_from ? rs->from_str : "");
		else if (ret == 0)
			printf("client address routing via %s is in place\n", rs->via_str);
		return ret == 0 ? 0 : 1;
	}
	ret = act == RCMD_SETUP ? rsetup_setup(rs, stdout) : rsetup_undo(rs, stdout);
	if (ret < 0) {
		fprintf(stderr, "wg-health: --route-%s failed\n", act == RCMD_SETUP ? "setup" : "undo");
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"device", required_argument, NULL, 'd'},     {"port", required_argument, NULL, 'p'},
		{"listen", required_argument, NULL, 'l'},     {"drain-file", required_argument, NULL, 'f'},
		{"test", no_argument, NULL, 't'},             {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"agent-port", required_argument, NULL, 'A'}, {"agent-key", required_argument, NULL, 'K'},
		{"agent-only", no_argument, NULL, 'O'},       {"prober", required_argument, NULL, 'P'},
		{"name", required_argument, NULL, 'N'},
		{"route-via", required_argument, NULL, OPT_ROUTE_VIA},
		{"route-from", required_argument, NULL, OPT_ROUTE_FROM},
		{"route-setup", no_argument, NULL, OPT_ROUTE_SETUP},
		{"route-undo", no_argument, NULL, OPT_ROUTE_UNDO},
		{"route-check", no_argument, NULL, OPT_ROUTE_CHECK},
		{"route-mark", required_argument, NULL, OPT_ROUTE_MARK},
		{"route-table", required_argument, NULL, OPT_ROUTE_TABLE},
		{"state-dir", required_argument, NULL, OPT_STATE_DIR},
		{"show-peers", no_argument, NULL, OPT_SHOW_PEERS},
		{"clients-file", required_argument, NULL, OPT_CLIENTS_FILE},
		{NULL, 0, NULL, 0},
	};
	/* --route-via starts a balancer; --route-from and --route-table name
	 * its own address here and its table (the latest --route-via's). */
	const char *route_via[MAX_ROUTES] = {0}, *route_from[MAX_ROUTES] = {0};
	uint32_t route_table[MAX_ROUTES] = {0};
	unsigned n_via = 0;
	const char *state_dir = NULL, *clients_file = NULL;
	char clients_default[128];
	bool show_peers = false;
	uint32_t route_mark = RSETUP_MARK;
	enum route_cmd route_act = RCMD_SERVE;
	static struct rsetup routes[MAX_ROUTES];
	unsigned long agent_port = 8081;
	const char *agent_key = NULL, *agent_name = NULL;
	int ret;
	bool agent_only = false;
	struct wghealth a = {.device = "wg0", .lfd = -1, .afd = -1, .ep = -1};
	const char *listen_spec = NULL;
	unsigned long port = 8080;
	bool test = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "d:p:l:f:thV", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			a.device = optarg;
			break;
		case 'p': {
			char *end;
			port = strtoul(optarg, &end, 10);
			if (*end || port == 0 || port > 65535) {
				fprintf(stderr, "wg-health: --port wants 1-65535\n");
				return 2;
			}
			break;
		}
		case 'l':
			listen_spec = optarg;
			break;
		case 'f':
			a.drain_file = optarg;
			break;
		case 't':
			test = true;
			break;
		case 'A':
			agent_port = strtoul(optarg, NULL, 10);
			if (!agent_port || agent_port > 65535) {
				fprintf(stderr, "wg-health: --agent-port wants 1-65535\n");
				return 2;
			}
			break;
		case 'K':
			agent_key = optarg;
			break;
		case 'O':
			agent_only = true;
			break;
		case 'P': /* the balancer's address(es): its connections are never shed */
			if (a.n_probers == MAX_PROBERS || cidr_parse(optarg, &a.probers[a.n_probers]) < 0) {
				fprintf(stderr, "wg-health: --prober wants an address or prefix, at most %d\n",
					MAX_PROBERS);
				return 2;
			}
			a.n_probers++;
			break;
		case 'N':
			agent_name = optarg;
			break;
		case OPT_ROUTE_VIA:
			if (n_via == MAX_ROUTES) {
				fprintf(stderr, "wg-health: at most %d --route-via\n", MAX_ROUTES);
				return 2;
			}
			route_via[n_via++] = optarg;
			break;
		case OPT_ROUTE_FROM:
			if (!n_via) {
				fprintf(stderr, "wg-health: --route-from follows the --route-via it is for\n");
				return 2;
			}
			route_from[n_via - 1] = optarg;
			break;
		case OPT_ROUTE_SETUP:
		case OPT_ROUTE_UNDO:
		case OPT_ROUTE_CHECK:
			if (route_act != RCMD_SERVE) {
				fprintf(stderr, "wg-health: one of --route-setup, --route-undo, "
					"--route-check at a time\n");
				return 2;
			}
			route_act = opt == OPT_ROUTE_SETUP  ? RCMD_SETUP
				    : opt == OPT_ROUTE_UNDO ? RCMD_UNDO
							    : RCMD_CHECK;
			break;
		case OPT_ROUTE_MARK:
			if (parse_u32("--route-mark", optarg, &route_mark) < 0)
				return 2;
			break;
		case OPT_ROUTE_TABLE:
			if (parse_u32("--route-table", optarg, &route_table[n_via ? n_via - 1 : 0]) < 0)
				return 2;
			break;
		case OPT_STATE_DIR:
			state_dir = optarg;
			break;
		case OPT_SHOW_PEERS:
			show_peers = true;
			break;
		case OPT_CLIENTS_FILE:
			clients_file = optarg;
			break;
		case 'V':
			printf("wg-health %s\n", WGLB_VERSION);
			return 0;
		case 'h':
			printf("usage: wg-health [--device wg0] [--port 8080] [--listen ADDR] "
			       "[--drain-file PATH] [--prober CIDR]... [--test]\n"
			       "                 [--agent-port 8081 --agent-key PATH --name NAME [--agent-only]]\n"
			       "                 [--route-via ADDR [--route-from LOCAL] [--route-table 51820]]...\n"
			       "                 [--route-mark 0xca6c]\n"
			       "       wg-health [--device wg0] --route-setup|--route-undo|--route-check\n"
			       "                 --route-via ADDR [--route-from LOCAL] [--route-table 51820]...\n"
			       "                 [--route-mark 0xca6c] [--state-dir /var/lib/wg-health]\n"
			       "       wg-health [--device wg0] --show-peers [--clients-file PATH]\n"
			       "HTTP 200 while the WireGuard interface is up, 503 otherwise; 503 with\n"
			       "X-Wglb-Drain: 1 while the drain file exists. --test prints the state.\n"
			       "With --route-via (wglb's client_address = preserve; ADDR is the balancer):\n"
			       "also 503 unless WireGuard's packets carry the mark and marked packets\n"
			       "leave via ADDR. --route-setup puts that in place (as root): the device's\n"
			       "fwmark, the rule 'fwmark MARK lookup TABLE', 'default via ADDR' in TABLE,\n"
			       "rp_filter 2 (loose) on the interface toward ADDR (IPv4), an nftables\n"
			       "table inet wglb_reply marking datagrams to the listen port and\n"
			       "fwmark_reflect 1, so ICMP errors go back through the balancer too (old\n"
			       "values saved in the state dir). --route-undo takes it away, --route-check shows\n"
			       "it; each exits 0, or 1 naming what failed or is missing. Several balancers\n"
			       "at once (ECMP): one --route-via each, each with --route-from, this server's\n"
			       "address that balancer sends to; rules 'from LOCAL fwmark MARK lookup TABLE',\n"
			       "tables 51820, 51821, ... unless given; a probe is answered for its own.\n"
			       "The agent keeps who a balancer (client_address = snat) says is behind\n"
			       "each peer's endpoint in --clients-file (default " CLIENTS_DIR "/IF.clients);\n"
			       "--show-peers prints the peers as wg show does, with those clients.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (!clients_file) {
		snprintf(clients_default, sizeof(clients_default), CLIENTS_DIR "/%s.clients", a.device);
		clients_file = clients_default;
	}
	if (show_peers)
		return showpeers_run(a.device, clients_file);
	if (route_act != RCMD_SERVE && !n_via) {
		fprintf(stderr, "wg-health: --route-setup, --route-undo and --route-check need "
			"--route-via ADDR (the balancer)\n");
		return 2;
	}
	for (unsigned i = 0; i < n_via; i++) {
		/* Several balancers (ECMP): each its own address here and its own
		 * table, else their rules would be one and the same. */
		uint32_t table = route_table[i] ? route_table[i] : RSETUP_TABLE + i;
		if (n_via > 1 && !route_from[i]) {
			fprintf(stderr, "wg-health: with several --route-via, each needs --route-from: "
				"this server's address that balancer sends to\n");
			return 2;
		}
		if (rsetup_init(&routes[i], a.device, route_via[i], route_mark, table, state_dir) < 0) {
			fprintf(stderr, "wg-health: --route-via wants the balancer's IPv4 or IPv6 "
				"address; --route-table not 253-255 (the kernel's own)\n");
			return 2;
		}
		if (route_from[i] && rsetup_from(&routes[i], route_from[i]) < 0) {
			fprintf(stderr, "wg-health: --route-from wants this server's address, of the "
				"same family as --route-via %s\n", route_via[i]);
			return 2;
		}
		for (unsigned k = 0; k < i; k++)
			if (routes[k].table == table) {
				fprintf(stderr, "wg-health: --route-via %s and %s share table %u\n",
					route_via[k], route_via[i], table);
				return 2;
			}
	}
	if (n_via && route_act != RCMD_SERVE) {
		/* Setup stops at the first failure; check and undo see every one. */
		int worst = 0;
		for (unsigned i = 0; i < n_via && !(worst && route_act == RCMD_SETUP); i++) {
			ret = route_oneshot(route_act, &routes[i]);
			worst = ret > worst ? ret : worst;
		}
		return worst;
	}
	a.routes = routes;
	a.n_routes = n_via;
	if (test) {
		bool drain;
		const char *why;
		char buf[RSETUP_WHY_MAX];
		int code = check(&a, NULL, buf, &why, &drain);
		printf("%s %s\n", a.device, code == 200 ? "up" : drain ? "draining" : "down");
		if (code != 200)
			fprintf(stderr, "wg-health: %s\n", why);
		return code == 200 ? 0 : 1;
	}
	if (agent_only && !agent_key) {
		fprintf(stderr, "wg-health: --agent-only needs --agent-key\n");
		return 2;
	}
	if (agent_key && (!agent_name || !ap_name_valid(agent_name))) {
		/* The key is this backend's own, derived from wglb's master and the
		 * name wglb.conf gives it ([backend NAME]); requests carry that name. */
		fprintf(stderr, "wg-health: --agent-key needs --name NAME: this server's [backend NAME] "
			"in wglb.conf (1-%d of A-Z a-z 0-9 . _ -), the name its key was derived for "
			"(wglb --agent-key-for NAME)\n", AP_NAME_MAX - 1);
		return 2;
	}
	if (agent_key) {
		/* Instant failover: wglb asks this server to re-handshake with a
		 * failed server's clients. Needs the rights to change the WireGuard
		 * interface (wireguard-go's socket is root-only). */
		if (sodium_init() < 0 || !(a.cmd = calloc(1, sizeof(*a.cmd))))
			return 3;
		a.cmd->ifname = a.device;
		a.cmd->clients_file = clients_file;
		a.cmd->name = agent_name;
		/* Nothing signed before this start counts: a request captured
		 * earlier cannot be replayed after a restart. */
		a.cmd->replay.not_before_ms = clock_realtime_ms();
		if (ap_key_load(agent_key, &a.cmd->key) < 0) {
			fprintf(stderr, "wg-health: --agent-key %s: want 32 bytes as 64 hex digits or base64\n",
				agent_key);
			free(a.cmd);
			return 2;
		}
		fprintf(stderr, "wg-health: agent for backend %s\n", agent_name);
	}
	sig_agent = &a;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	a.agent_only = agent_only;
	ret = serve(&a, listen_spec, (unsigned)port, (unsigned)agent_port);
	if (a.cmd) { /* the key leaves no copy in memory we give back */
		sodium_memzero(&a.cmd->key, sizeof(a.cmd->key));
		free(a.cmd);
	}
	return ret;
}
