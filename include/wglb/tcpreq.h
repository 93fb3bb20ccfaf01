/* SPDX-License-Identifier: MIT */
/*
 * One non-blocking TCP request on the loop, in the shape of relayd's
 * check_tcp.c: connect, send the request, read the reply as bytes arrive,
 * all under one deadline. The prober validates as bytes arrive (an HTTP
 * status line settles a check before the server closes); the agent client
 * takes the reply whole when the agent closes. Either way the done
 * callback runs exactly once, unless the owner cancels first.
 */
#ifndef WGLB_TCPREQ_H
#define WGLB_TCPREQ_H

#include "wglb/addr.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
struct tcpreq;

/* The reply so far (eof: the peer closed, or the buffer is full): true to
 * finish now, false to read on. NULL: read until the peer closes. */
typedef bool (*tcpreq_read_fn)(struct loop *l, struct tcpreq *t, bool eof);
/* The end: err NULL after a reply, else why not ("refused", "reset",
 * "unreachable", "connect", "send", "recv", "timeout", "socket",
 * "no_watch", "too_long"). t->buf holds the reply until this returns. */
typedef void (*tcpreq_done_fn)(struct loop *l, struct tcpreq *t, const char *err);

struct tcpreq {
	int fd, watch;
	bool busy, connected, sent;
	uint64_t started_ms, deadline_ms;
	char out[512]; /* the request */
	/* A request longer than out[]: the caller's, kept until done; NULL: out[]. */
	const char *long_out;
	size_t outlen, outoff;
	char *buf;     /* the reply, at most max bytes (malloc'd as it grows) */
	size_t len, cap, max;
	tcpreq_read_fn on_read;
	tcpreq_done_fn on_done;
	void *ctx;
};

/* Start: t->out (or long_out)/outlen, max, on_read, on_done and ctx set by the caller.
 * 0, or -errno with on_done already called. */
int tcpreq_start(struct loop *l, struct tcpreq *t, const union wglb_sa *to, socklen_t tolen,
		 uint32_t timeout_ms);
/* End it now without calling on_done (the owner goes away). */
void tcpreq_cancel(struct loop *l, struct tcpreq *t);
/* on_done("timeout") when past its deadline: call from the owner's tick. */
void tcpreq_expire(struct loop *l, struct tcpreq *t);

#endif
