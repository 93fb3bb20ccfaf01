// SPDX-License-Identifier: MIT
/*
 * Control socket transport: accept, read lines, write replies without ever
 * blocking the loop. A client that does not read stops being read from;
 * a long dump (show flows) is produced in chunks as the client drains it.
 * The commands themselves are in ctl_cmds.c.
 */
#include "wglb/ctl.h"
#include "wglb/loop.h"

#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_IDLE_MS    60000 /* close a connection silent this long */
#define CTL_STALL_MS   10000 /* close one that does not read its reply */
#define CTL_OUT_MAX    (4u << 20)
#define CTL_OUT_LOW    (64u << 10) /* refill a streamed dump below this */

void ctl_printf(struct ctl_client *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (int tries = 0; tries < 2; tries++) {
		size_t room = c->out_cap - c->out_len;
		va_start(ap, fmt);
		n = vsnprintf(c->out + c->out_len, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			c->out_len += (size_t)n;
			return;
		}
		size_t want = c->out_cap ? c->out_cap : 4096;
		while (want < c->out_len + (size_t)n + 1)
			want *= 2;
		if (want > CTL_OUT_MAX) {
			c->overflow = true;
			return;
		}
		char *p = realloc(c->out, want);
		if (!p) {
			c->overflow = true;
			return;
		}
		c->out = p;
		c->out_cap = want;
	}
}

void ctl_json_str(struct ctl_client *c, const char *s)
{
	ctl_printf(c, "\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			ctl_printf(c, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			ctl_printf(c, "\\u%04x", ch);
		else
			ctl_printf(c, "%c", ch);
	}
	ctl_printf(c, "\"");
}

void ctl_error(struct ctl_client *c, bool json, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (json) {
		ctl_printf(c, "{\"error\": ");
		ctl_json_str(c, msg);
		ctl_printf(c, "}\n");
	} else {
		/* Keep the reply on one line whatever the message holds. */
		for (char *p = msg; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
				*p = '?';
		ctl_printf(c, "error: %s\n", msg);
	}
}

static void client_close(struct loop *l, struct ctl_client *c)
{
	loop_unwatch(l, c->watch);
	close(c->fd);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->watch = -1;
	ctl_of(l)->clients--;
}

static void on_client(struct loop *l, void *ctx, uint32_t revents);

static void client_watch(struct loop *l, struct ctl_client *c)
{
	/* While a reply is pending (or a dump is being produced), stop
	 * reading: a client that never reads cannot make us buffer more than
	 * one reply. A dump resumes each time the socket can take more. */
	uint32_t ev = c->out_len > c->out_off || c->stream.active ? POLLOUT : POLLIN;

	c->watch = loop_watch(l, c->fd, ev, on_client, c);
	if (c->watch < 0)
		client_close(l, c);
}

static int flush(struct ctl_client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return -1;
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	return 0;
}

static void run_line(struct loop *l, struct ctl_client *c, const char *line, size_t len)
{
	struct ctl *ctl = ctl_of(l);
	struct ctl_req req;
	const char *err;

	ctl->commands++;
	if (ctl_parse(ctl->cmds, ctl->n_cmds, line, len, &req, &err) < 0) {
		ctl->errors++;
		ctl_error(c, req.json, "%s", err);
		ctl_printf(c, "\n");
		return;
	}
	if ((req.cmd->flags & CMD_F_ADMIN) && !c->admin) {
		ctl->denied++;
		ctl->errors++;
		ctl_error(c, req.json, "permission denied: '%s %s' needs root or admin_group",
			  req.cmd->words[0], req.cmd->words[1] ? req.cmd->words[1] : "");
		ctl_printf(c, "\n");
		return;
	}
	c->stream.started = false;
	req.cmd->fn(l, c, &req);
	if (!(req.cmd->flags & CMD_F_STREAM) || !c->stream.started)
		ctl_printf(c, "\n"); /* every reply ends in a blank line */
}

int ctl_register(struct loop *l, const struct ctl_cmd *cmds, size_t n)
{
	struct ctl *ctl = ctl_of(l);

	if (!ctl)
		return -ENOENT;
	if (n > CTL_MAX_CMDS - ctl->n_cmds) {
		log_err("control socket: no room for %zu more commands", n);
		return -ENOSPC;
	}
	memcpy(&ctl->cmds[ctl->n_cmds], cmds, n * sizeof(*cmds));
	ctl->n_cmds += n;
	return 0;
}

void ctl_on_scrape(struct loop *l, ctl_scrape_fn fn)
{
	struct ctl *ctl = ctl_of(l);

	if (ctl)
		ctl->scrape = fn;
}

static void cmd_help(struct loop *l, struct ctl_client *c, const struct ctl_req *r)
{
	const struct ctl *ctl = ctl_of(l);

	if (r->json)
		ctl_printf(c, "{\"commands\": [");
	for (size_t i = 0; i < ctl->n_cmds; i++) {
		const struct ctl_cmd *cmd = &ctl->cmds[i];
		if (r->json) {
			ctl_printf(c, "%s{\"usage\": ", i ? ", " : "");
			ctl_json_str(c, cmd->usage);
			ctl_printf(c, ", \"admin\": %s}", cmd->flags & CMD_F_ADMIN ? "true" : "false");
		} else {
			ctl_printf(c, "%-44s%s\n", cmd->usage, cmd->flags & CMD_F_ADMIN ? " (admin)" : "");
		}
	}
	if (r->json)
		ctl_printf(c, "]}\n");
	else
		ctl_printf(c, "Append 'json' to any command for a JSON reply.\n");
}

/* GCRA over all scrapers: may one more get a full answer now? */
static bool scrape_allowed(struct ctl *ctl, uint64_t now)
{
	const uint64_t interval = 1000 / CTL_SCRAPE_RATE;
	uint64_t tat = ctl->scrape_tat_ms > now ? ctl->scrape_tat_ms : now;

	if (tat - now > (CTL_SCRAPE_BURST - 1) * interval)
		return false;
	ctl->scrape_tat_ms = tat + interval;
	return true;
}

int ctl_on_page(struct loop *l, const char *path, const char *type, ctl_page_fn fn, bool unlimited)
{
	struct ctl *ctl = ctl_of(l);

	if (!ctl)
		return -ENOENT;
	if (ctl->n_pages == CTL_MAX_PAGES)
		return -ENOSPC;
	ctl->pages[ctl->n_pages++] = (struct ctl_page){path, type, fn, unlimited};
	return 0;
}

/* "GET PATH HTTP/1.x": PATH's length (and *path), or 0. */
static size_t http_path(const struct ctl_client *c, const char **path)
{
	const char *sp;

	if (c->in_len < 5 || memcmp(c->in, "GET /", 5))
		return 0;
	*path = c->in + 4;
	sp = memchr(*path, ' ', c->in_len - 4);
	return sp ? (size_t)(sp - *path) : 0;
}

static bool path_is(const char *path, size_t len, const char *want)
{
	return len == strlen(want) && !memcmp(path, want, len);
}

/* A scrape (GET /metrics) or a page: answered whole, then close. Every
 * answer, cached or not, is under the same limit for all scrapers, but for
 * an unlimited page (/ready: a load balancer's health check must not get a
 * 429 because someone scrapes). */
static void run_http(struct loop *l, struct ctl_client *c)
{
	static const char none[] = "try GET /metrics, /, /status.json or /ready here\r\n";
	struct ctl *ctl = ctl_of(l);
	const struct ctl_page *pg = NULL;
	const char *path = NULL, *type = "text/plain; version=0.0.4";
	size_t plen = http_path(c, &path), body_len, hl;
	bool metrics = plen && path_is(path, plen, "/metrics");
	char head[256];
	int status = 200;
	char *p;

	c->closing = true;
	for (unsigned i = 0; plen && !metrics && !pg && i < ctl->n_pages; i++)
		if (path_is(path, plen, ctl->pages[i].path))
			pg = &ctl->pages[i];
	if (!metrics && !pg) {
		ctl_printf(c, "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
			      "Content-Length: %zu\r\nConnection: close\r\n\r\n%s", sizeof(none) - 1, none);
		return;
	}
	if (!(pg && pg->unlimited) && !scrape_allowed(ctl, l->now_ms)) {
		ctl->scrapes_refused++;
		ctl_printf(c, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n"
			      "Content-Length: 0\r\nConnection: close\r\n\r\n");
		return;
	}
	ctl->scrapes++;
	if (pg) {
		status = pg->fn(l, c);
		type = pg->type;
	} else if (ctl->scrape_body && l->now_ms - ctl->scrape_ms < CTL_SCRAPE_CACHE_MS) {
		ctl_printf(c, "%.*s", (int)ctl->scrape_len, ctl->scrape_body);
	} else {
		if (ctl->scrape)
			ctl->scrape(l, c, CTL_SCRAPE_CACHE_MS);
		if (!c->overflow && (p = realloc(ctl->scrape_body, c->out_len ? c->out_len : 1))) {
			memcpy(p, c->out, c->out_len);
			ctl->scrape_body = p;
			ctl->scrape_len = c->out_len;
			ctl->scrape_ms = l->now_ms;
		} /* else: rendered again next time */
	}
	if (c->overflow)
		return;
	body_len = c->out_len;
	hl = (size_t)snprintf(head, sizeof(head),
			      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			      "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
			      status, status == 200 ? "OK" : "Service Unavailable", type, body_len);
	ctl_printf(c, "%s", head); /* grow the buffer, then move the head first */
	if (c->overflow)
		return;
	p = c->out;
	memmove(p + hl, p, body_len);
	memcpy(p, head, hl);
}

static void on_client(struct loop *l, void *ctx, uint32_t revents)
{
	struct ctl_client *c = ctx;
	char *nl;

	c->watch = -1;
	if (revents & POLLOUT || c->out_len > c->out_off) {
		if (flush(c) < 0)
			goto close;
		c->last_ms = l->now_ms;
		if (c->stream.active && c->out_len < CTL_OUT_LOW)
			c->stream.more(l, c);
		if (c->out_len == 0 && c->closing)
			goto close;
	}
	if (revents & (POLLIN | POLLHUP | POLLERR) && c->out_len == 0 && !c->stream.active) {
		ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			goto close;
		if (n > 0) {
			c->in_len += (size_t)n;
			c->last_ms = l->now_ms;
		}
		if (c->http) {
			if (memmem(c->in, c->in_len, "\r\n\r\n", 4) || c->in_len == sizeof(c->in))
				run_http(l, c);
			goto flush_out;
		}
		/* Run complete lines while no reply is pending. */
		while (c->out_len == 0 && !c->stream.active &&
		       (nl = memchr(c->in, '\n', c->in_len))) {
			size_t ll = (size_t)(nl - c->in);
			run_line(l, c, c->in, ll);
			memmove(c->in, nl + 1, c->in_len - ll - 1);
			c->in_len -= ll + 1;
		}
		if (c->in_len == sizeof(c->in) && !memchr(c->in, '\n', c->in_len)) {
			ctl_of(l)->errors++;
			ctl_error(c, false, "line longer than %d bytes", CTL_MAX_LINE - 1);
			ctl_printf(c, "\n");
			c->closing = true;
		}
		if (c->overflow) {
			c->out_len = c->out_off = 0;
			c->overflow = false;
			ctl_error(c, false, "reply too large");
			ctl_printf(c, "\n");
		}
flush_out:
		if (flush(c) < 0)
			goto close;
		if (c->stream.active && c->out_len < CTL_OUT_LOW)
			c->stream.more(l, c);
		if (c->out_len == 0 && c->closing)
			goto close;
	}
	client_watch(l, c);
	return;
close:
	client_close(l, c);
}

static bool peer_is_admin(const struct ctl *ctl, int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	gid_t groups[256];
	socklen_t glen = sizeof(groups);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0)
		return false;
	if (cr.uid == 0 || cr.uid == geteuid())
		return true;
	if (!ctl->has_admin_gid)
		return false;
	if (cr.gid == ctl->admin_gid)
		return true;
	/* SO_PEERGROUPS (Linux 4.13+): the peer's supplementary groups. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &glen) < 0)
		return false;
	for (size_t i = 0; i < glen / sizeof(gid_t); i++)
		if (groups[i] == ctl->admin_gid)
			return true;
	return false;
}

static void on_listen(struct loop *l, void *ctx, uint32_t revents);

/* Watch a listener for its next connection: -ENOSPC when no watch is free. */
static int watch_listener(struct loop *l, bool http)
{
	struct ctl *ctl = ctl_of(l);
	int *w = http ? &ctl->http_watch : &ctl->watch;

	*w = loop_watch(l, http ? ctl->http_fd : ctl->fd, POLLIN, on_listen, http ? ctl : NULL);
	return *w < 0 ? -ENOSPC : 0;
}

/* A slot for a new connection: a free one, else the longest-idle one of a
 * kind it may take (a scrape only another scrape's, so metrics clients can
 * never lock the on-call engineer out; an operator a scrape's first). */
static struct ctl_client *slot_for(struct loop *l, bool http)
{
	struct ctl *ctl = ctl_of(l);
	struct ctl_client *idle_http = NULL, *idle_ctl = NULL;
	unsigned n_http = 0;

	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *o = &ctl->cl[i];
		if (o->fd < 0)
			continue;
		n_http += o->http;
		if (o->out_len || o->stream.active)
			continue;
		struct ctl_client **idlest = o->http ? &idle_http : &idle_ctl;
		if (!*idlest || o->last_ms < (*idlest)->last_ms)
			*idlest = o;
	}
	if (!http || n_http < CTL_MAX_HTTP)
		for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++)
			if (ctl->cl[i].fd < 0)
				return &ctl->cl[i];
	if (http)
		return idle_http;
	return idle_http ? idle_http : idle_ctl;
}

static void on_listen(struct loop *l, void *ctx, uint32_t revents)
{
	struct ctl *ctl = ctl_of(l);
	bool http = ctx != NULL;
	int fd, lfd = http ? ctl->http_fd : ctl->fd;

	(void)revents;
	while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct ctl_client *c = slot_for(l, http);
		if (c && c->fd >= 0) {
			/* Full of idle connections: the longest idle makes room, so
			 * nobody can lock the on-call engineer out by holding slots. */
			static const char bye[] = "error: closed: too many control connections\n\n";
			(void)!send(c->fd, bye, sizeof(bye) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
			ctl->rejected++;
			client_close(l, c);
		}
		if (!c) {
			static const char busy[] = "error: too many control connections\n\n";
			ctl->rejected++;
			(void)!send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->http = http;
		c->admin = !http && peer_is_admin(ctl, fd); /* a scrape may only read */
		c->last_ms = l->now_ms;
		ctl->clients++;
		client_watch(l, c);
	}
	if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
		/* Out of descriptors: the connection stays queued and the
		 * listener readable, so watching again now would spin. Retry
		 * from ctl_tick after a pause. */
		uint64_t sup;
		ctl->paused_until_ms[http] = l->now_ms + CTL_ACCEPT_PAUSE_MS;
		if (ratelimit_ok(&ctl->rl_emfile, l->now_ms, 10000, &sup))
			log_warn("control%s: cannot accept: %s; pausing %d ms (%llu more since)",
				 http ? " (metrics)" : "", strerror(errno), CTL_ACCEPT_PAUSE_MS,
				 (unsigned long long)sup);
		return;
	}
	(void)watch_listener(l, http);
}

static int http_open(struct loop *l)
{
	const struct wglb_addr *a = &l->cfg.metrics_listen;
	struct ctl *ctl = ctl_of(l);
	char s[ADDR_STRLEN];
	int one = 1;

	addr_fmt(&a->u, s, sizeof(s));
	ctl->http_fd = socket(a->u.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->http_fd < 0 ||
	    setsockopt(ctl->http_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(ctl->http_fd, &a->u.sa, a->len) < 0 || listen(ctl->http_fd, 64) < 0) {
		int e = errno;
		log_err("metrics_listen %s: %s", s, strerror(e));
		return -e;
	}
	if (watch_listener(l, true) < 0)
		return -ENOSPC;
	log_info("metrics on http://%s/metrics", s);
	return 0;
}

/* Close connections that went silent or stopped reading. */
static void ctl_tick(struct loop *l)
{
	struct ctl *ctl = ctl_of(l);

	if (!ctl)
		return;
	for (int http = 0; http < 2; http++)
		if (ctl->paused_until_ms[http] && l->now_ms >= ctl->paused_until_ms[http]) {
			ctl->paused_until_ms[http] = 0;
			(void)watch_listener(l, http);
		}
	if (l->now_ms < ctl->next_tick_ms)
		return;
	ctl->next_tick_ms = l->now_ms + 1000;
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++) {
		struct ctl_client *c = &ctl->cl[i];
		if (c->fd < 0)
			continue;
		uint64_t limit = c->out_len > c->out_off ? CTL_STALL_MS : CTL_IDLE_MS;
		if (l->now_ms - c->last_ms >= limit) {
			ctl->timeouts++;
			client_close(l, c);
		}
	}
}

static int ctl_open(struct loop *l)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	const struct wglb_config *cfg = &l->cfg;
	struct ctl *ctl;
	struct stat st;
	gid_t gid = (gid_t)-1;
	int ret;

	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return -ENOMEM;
	loop_set_ctx(l, &ctl_part, ctl);
	{
		static const struct ctl_cmd help = {{"help", NULL}, "help", cmd_help, 0, 0, 0};
		(void)ctl_register(l, &help, 1); /* an empty table has room */
	}
	ctl->fd = ctl->http_fd = -1;
	ctl->watch = ctl->http_watch = -1;
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++)
		ctl->cl[i].fd = ctl->cl[i].watch = -1;
	if (cfg->control_group[0]) {
		struct group *g = getgrnam(cfg->control_group);
		if (!g) {
			log_err("control_group '%s': no such group", cfg->control_group);
			return -ENOENT;
		}
		gid = g->gr_gid;
	}
	if (cfg->admin_group[0]) {
		struct group *g = getgrnam(cfg->admin_group);
		if (!g) {
			log_err("admin_group '%s': no such group", cfg->admin_group);
			return -ENOENT;
		}
		ctl->admin_gid = g->gr_gid;
		ctl->has_admin_gid = true;
	}
	/* A socket left by a crashed wglb is replaced; never anything else. */
	if (lstat(cfg->control, &st) == 0 && !S_ISSOCK(st.st_mode)) {
		log_err("control socket %s: exists and is not a socket", cfg->control);
		return -EEXIST;
	}
	/* Bound and listening under a temporary name, then renamed into place:
	 * a client that finds the path can connect (no moment between bind and
	 * listen in which it is refused). */
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s.new", cfg->control);
	if (lstat(sun.sun_path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(sun.sun_path);
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0)
		return -errno;
	if (bind(ctl->fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		ret = -errno;
		log_err("control socket %s: %s", cfg->control, strerror(errno));
		return ret;
	}
	if (chmod(sun.sun_path, 0660) < 0 ||
	    (gid != (gid_t)-1 && chown(sun.sun_path, (uid_t)-1, gid) < 0) ||
	    listen(ctl->fd, 64) < 0 || rename(sun.sun_path, cfg->control) < 0) {
		ret = -errno;
		log_err("control socket %s: %s", cfg->control, strerror(errno));
		unlink(sun.sun_path);
		return ret;
	}
	if (watch_listener(l, false) < 0)
		return -ENOSPC;
	log_info("control socket on %s", cfg->control);
	return cfg->metrics_listen.len ? http_open(l) : 0;
}

static void ctl_close(struct loop *l)
{
	struct ctl *ctl = ctl_of(l);

	if (!ctl)
		return;
	for (unsigned i = 0; i < CTL_MAX_CLIENTS; i++)
		if (ctl->cl[i].fd >= 0)
			client_close(l, &ctl->cl[i]);
	if (ctl->fd >= 0) {
		close(ctl->fd);
		unlink(l->cfg.control);
	}
	if (ctl->http_fd >= 0)
		close(ctl->http_fd);
	free(ctl->scrape_body);
	free(ctl);
	loop_set_ctx(l, &ctl_part, NULL);
}

const struct loop_part ctl_part = {
	.name = "control socket", .open = ctl_open, .tick = ctl_tick, .close = ctl_close};
