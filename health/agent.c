// SPDX-License-Identifier: MIT
/*
 * wg-health: the agent each WireGuard server runs, in place of the
 * reference article's wg-health-check.py. 200 "healthy" while the
 * interface exists and is up (asked over rtnetlink on every probe) and,
 * where it can tell, WireGuard listens; 503 otherwise. While the drain
 * file exists: 503 "draining" with X-Wglb-Drain: 1, which an NLB treats
 * as down and wglb as a graceful drain. One thread, epoll, bounded
 * buffers and a deadline per connection: slow or garbage clients cost a
 * slot, never the service.
 */
#include "wglb/addr.h"
#include "wglb/agentcmd.h"
#include "wglb/clock.h"
#include "wglb/rtnl.h"
#include "wglb/version.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONN     1024
#define REQ_MAX      4096
#define CONN_TIMEOUT_MS 5000

struct conn {
	int fd;
	bool agent; /* on the agent port: one signed command line */
	size_t len;
	uint64_t deadline;
	char req[REQ_MAX];
};

struct agent {
	const char *device;
	const char *drain_file;
	int lfd, afd, ep;
	struct agent_cmd *cmd; /* NULL without --agent-key */
	bool agent_only;       /* no health port: the privileged half, run on its own */
	struct conn *conns[MAX_CONN];
	unsigned n;
	volatile sig_atomic_t stop;
};

static struct agent *sig_agent;

/* The verdict: 200, or 503 with a reason; *drain when the drain file exists. */
static int check(const struct agent *a, const char **why, bool *drain)
{
	struct stat st;
	bool up = false;
	int ret, port;

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
	port = wgdev_listen_port(a->device);
	if (port == 0) {
		*why = "not listening";
		return 503;
	}
	*why = "healthy";
	return 200;
}

static void conn_close(struct agent *a, unsigned i)
{
	struct conn *c = a->conns[i];

	epoll_ctl(a->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
	a->conns[i] = a->conns[--a->n];
}

static void respond(struct agent *a, struct conn *c, const char *status, const char *body,
		    bool head, bool drain)
{
	char out[512];
	int n = snprintf(out, sizeof(out),
			 "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
			 "Server: wg-health/%s\r\n%sConnection: close\r\n\r\n%s",
			 status, strlen(body), WGLB_VERSION, drain ? "X-Wglb-Drain: 1\r\n" : "",
			 head ? "" : body);

	(void)a;
	/* Small enough for any fresh socket buffer; a peer that is gone is fine. */
	(void)!send(c->fd, out, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* 1 when the request is complete and answered, 0 for more, -1 on garbage. */
static int handle(struct agent *a, struct conn *c)
{
	bool get, head, drain;
	const char *why;
	char body[96];
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
	code = check(a, &why, &drain);
	snprintf(body, sizeof(body), "%s\n", why);
	respond(a, c, code == 200 ? "200 OK" : "503 Service Unavailable", body, head, drain);
	return 1;
}

static void on_accept(struct agent *a, bool agent_port)
{
	int fd;

	while ((fd = accept4(agent_port ? a->afd : a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct epoll_event ev = {.events = EPOLLIN};
		struct conn *c;
		if (a->n == MAX_CONN || !(c = calloc(1, sizeof(*c)))) {
			close(fd); /* full: shed the newest, keep serving the rest */
			continue;
		}
		c->fd = fd;
		c->agent = agent_port;
		c->deadline = clock_monotonic_ms() + CONN_TIMEOUT_MS;
		ev.data.ptr = c;
		if (epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			continue;
		}
		a->conns[a->n++] = c;
	}
}

static void on_data(struct agent *a, struct conn *c)
{
	unsigned i;
	ssize_t n;
	int r;

	for (i = 0; i < a->n && a->conns[i] != c; i++)
		;
	if (i == a->n)
		return;
	n = recv(c->fd, c->req + c->len, REQ_MAX - c->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(a, i);
		return;
	}
	c->len += (size_t)n;
	if (c->agent) {
		char *nl = memchr(c->req, '\n', c->len);
		static char out[1 << 20];
		if (!nl && c->len < AP_MAX_LINE)
			return;
		if (nl) {
			int len = agentcmd_handle(a->cmd, c->req, (size_t)(nl - c->req), out, sizeof(out));
			struct timeval tv = {.tv_sec = 1};
			int fl = 0;
			/* The reply may be long (every peer): finish it blocking, briefly. */
			ioctl(c->fd, FIONBIO, &fl);
			setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
			(void)!send(c->fd, out, (size_t)len, MSG_NOSIGNAL);
		}
		conn_close(a, i);
		return;
	}
	r = handle(a, c);
	if (r < 0)
		respond(a, c, "400 Bad Request", "bad request\n", false, false);
	if (r != 0)
		conn_close(a, i);
}

static void expire(struct agent *a)
{
	uint64_t now = clock_monotonic_ms();

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
	    bind(fd, &addr->u.sa, addr->len) < 0 || listen(fd, 512) < 0) {
		fprintf(stderr, "wg-health: listen on %s: %s\n", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int serve(struct agent *a, const char *listen_spec, unsigned port, unsigned agent_port)
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
		int n = epoll_wait(a->ep, evs, 64, 500);
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
	if (a->lfd >= 0)
		close(a->lfd);
	if (a->cmd) {
		close(a->afd);
		fprintf(stderr, "wg-health: agent: %llu served, %llu re-handshakes, %llu unknown peers, "
			"%llu bad arguments, refused %llu bad MAC, %llu stale, %llu replayed, %llu malformed\n",
			(unsigned long long)a->cmd->served, (unsigned long long)a->cmd->rehandshakes,
			(unsigned long long)a->cmd->unknown_peer, (unsigned long long)a->cmd->bad_args,
			(unsigned long long)a->cmd->refused[AP_BAD_MAC], (unsigned long long)a->cmd->refused[AP_STALE],
			(unsigned long long)a->cmd->refused[AP_REPLAY], (unsigned long long)a->cmd->refused[AP_BAD_FORMAT]);
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
		{"agent-only", no_argument, NULL, 'O'},
		{NULL, 0, NULL, 0},
	};
	unsigned long agent_port = 8081;
	const char *agent_key = NULL;
	bool agent_only = false;
	struct agent a = {.device = "wg0", .lfd = -1, .afd = -1, .ep = -1};
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
		case 'V':
			printf("wg-health %s\n", WGLB_VERSION);
			return 0;
		case 'h':
			printf("usage: wg-health [--device wg0] [--port 8080] [--listen ADDR] "
			       "[--drain-file PATH] [--test]\n"
			       "                 [--agent-port 8081 --agent-key PATH [--agent-only]]\n"
			       "HTTP 200 while the WireGuard interface is up, 503 otherwise; 503 with\n"
			       "X-Wglb-Drain: 1 while the drain file exists. --test prints the state.\n");
			return 0;
		default:
			return 2;
		}
	}
	if (test) {
		bool drain;
		const char *why;
		int code = check(&a, &why, &drain);
		printf("%s %s\n", a.device, code == 200 ? "up" : drain ? "draining" : "down");
		return code == 200 ? 0 : 1;
	}
	if (agent_only && !agent_key) {
		fprintf(stderr, "wg-health: --agent-only needs --agent-key\n");
		return 2;
	}
	if (agent_key) {
		/* Instant failover: wglb asks this server to re-handshake with a
		 * failed server's clients. Needs the rights to change the WireGuard
		 * interface (wireguard-go's socket is root-only). */
		if (sodium_init() < 0 || !(a.cmd = calloc(1, sizeof(*a.cmd))))
			return 3;
		a.cmd->ifname = a.device;
		if (ap_key_load(agent_key, &a.cmd->key) < 0) {
			fprintf(stderr, "wg-health: --agent-key %s: want 32 bytes as 64 hex digits or base64\n",
				agent_key);
			return 2;
		}
	}
	sig_agent = &a;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	a.agent_only = agent_only;
	return serve(&a, listen_spec, (unsigned)port, (unsigned)agent_port);
}
