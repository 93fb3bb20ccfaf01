/* SPDX-License-Identifier: MIT */
/*
 * The control socket: line commands from a table {words, usage, handler,
 * admin}, one reply per command, text or JSON. A reply ends at its first
 * blank line and holds none before it, so a client reads to the first
 * "\n\n". Handlers read the loop's state, change backends only through
 * pool.h (applied at the end of the batch) and reply through helpers.
 */
#ifndef WGLB_CTL_H
#define WGLB_CTL_H

#include "wglb/log.h"
#include "wglb/loop.h"
#include "wglb/ratelimit.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CTL_MAX_LINE 1024
#define CTL_MAX_ARGS 8

struct loop;
struct ctl_cmd;

struct ctl_req {
	char buf[CTL_MAX_LINE];
	const char *argv[CTL_MAX_ARGS]; /* the arguments after the command words */
	int argc;
	bool json;
	const struct ctl_cmd *cmd;
};

#define CMD_F_ADMIN  (1U << 0)
#define CMD_F_STREAM (1U << 1) /* ends its reply itself, chunk by chunk */

struct ctl_client;
typedef void (*ctl_handler)(struct loop *l, struct ctl_client *c, const struct ctl_req *r);

/* A command: one or two words, then min_args..max_args arguments. */
struct ctl_cmd {
	const char *words[2];
	const char *usage;
	ctl_handler fn;
	unsigned flags;
	int min_args, max_args;
};

/* Split a line and find its command in cmds (lb/control/ctl_parse.c, pure). 0, or
 * -EINVAL with *err set to a message for the caller (unknown command, too
 * many words, bad bytes, the command's usage when its arguments do not fit). */
int ctl_parse(const struct ctl_cmd *cmds, size_t n_cmds, const char *line, size_t len,
	      struct ctl_req *req, const char **err);

#define CTL_MAX_CLIENTS 128
#define CTL_MAX_HTTP    32  /* metrics scrapers hold at most this many slots */
#define CTL_ACCEPT_PAUSE_MS 100 /* accept at EMFILE: wait this long, don't spin */
#define CTL_SCRAPE_RATE  10 /* full /metrics answers a second, all scrapers together ... */
#define CTL_SCRAPE_BURST 20 /* ... beyond a burst: Prometheus scrapes every 15 s or so */
#define CTL_SCRAPE_CACHE_MS 1000 /* a /metrics body is answered again for this long */

/* A `show flows` dump in progress: produced in chunks as the client reads. */
struct ctl_client;
struct ctl_stream {
	/* The command that started it writes its next part (as the client
	 * reads), and clears active when done. */
	void (*more)(struct loop *l, struct ctl_client *c);
	bool active, started, json, first;
	int backend;        /* -1 = all */
	unsigned worker;    /* the worker whose table is being listed */
	uint32_t cursor;    /* next flow slot in it */
	uint32_t remaining; /* limit left */
	uint64_t stalled;   /* workers whose flows could not be listed (bit per worker) */
};

struct ctl_client {
	int fd, watch;
	bool admin, closing, overflow;
	bool http; /* a Prometheus scrape on metrics_listen, not a command client */
	char in[CTL_MAX_LINE];
	size_t in_len;
	char *out;
	size_t out_len, out_off, out_cap;
	uint64_t last_ms;
	struct ctl_stream stream;
};

#define CTL_MAX_CMDS 32
/* What answers a GET /metrics (max_age_ms: a sum of counters that old may
 * be answered again). */
typedef void (*ctl_scrape_fn)(struct loop *l, struct ctl_client *c, unsigned max_age_ms);
/* A read-only page on metrics_listen: writes its body, returns its HTTP
 * status (200, or 503 for /ready when not ready). */
typedef int (*ctl_page_fn)(struct loop *l, struct ctl_client *c);
#define CTL_MAX_PAGES 4

struct ctl_page {
	const char *path, *type;
	ctl_page_fn fn;
	bool unlimited; /* a few bytes from the pool alone (/ready): outside the scrapers' limit */
};

struct ctl {
	int fd, watch;
	struct ctl_cmd cmds[CTL_MAX_CMDS]; /* as registered, in order: what help lists */
	size_t n_cmds;
	ctl_scrape_fn scrape;
	struct ctl_page pages[CTL_MAX_PAGES];
	unsigned n_pages;
	int http_fd, http_watch; /* metrics_listen */
	struct ctl_client cl[CTL_MAX_CLIENTS];
	unsigned clients;
	bool has_admin_gid;
	gid_t admin_gid;
	uint64_t next_tick_ms;
	uint64_t paused_until_ms[2]; /* [http]: accept paused (EMFILE) until then; 0 = not */
	struct ratelimit rl_emfile;
	uint64_t commands, errors, denied, rejected, timeouts, scrapes;
	/* The last /metrics body and when it was made: scrapes within
	 * CTL_SCRAPE_CACHE_MS get it again, so that a storm of them costs the
	 * loop (which forwards too) one rendering a second. */
	char *scrape_body;
	size_t scrape_len;
	uint64_t scrape_ms;
	/* Full answers to scrapes, for all scrapers at once (GCRA: the
	 * theoretical arrival time, ms): past CTL_SCRAPE_RATE a second (burst
	 * CTL_SCRAPE_BURST) a scrape gets a 429. Even from the cache, an answer
	 * costs the loop ~15 KB of TCP through loopback, and a storm of them
	 * took a fifth of worker 0's forwarding here. */
	uint64_t scrape_tat_ms;
	uint64_t scrapes_refused;
};

/* The control socket's state on this loop (NULL: not attached). */
extern const struct loop_part ctl_part;
static inline struct ctl *ctl_of(const struct loop *l)
{
	return (struct ctl *)loop_ctx(l, &ctl_part);
}
/* Commands register themselves (each module its table, at its part's
 * open): 0, or -ENOSPC (logged), or -ENOENT without the control socket. */
int ctl_register(struct loop *l, const struct ctl_cmd *cmds, size_t n);
/* What serves GET /metrics on metrics_listen. */
void ctl_on_scrape(struct loop *l, ctl_scrape_fn fn);
/* Another read-only page there (GET path), under the same limit on
 * scrapers unless unlimited: 0, or -ENOSPC. */
int ctl_on_page(struct loop *l, const char *path, const char *type, ctl_page_fn fn, bool unlimited);

/* Reply helpers (lb/control/ctl.c); handlers never write the fd. */
void ctl_printf(struct ctl_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ctl_json_str(struct ctl_client *c, const char *s);
void ctl_error(struct ctl_client *c, bool json, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));


#endif
