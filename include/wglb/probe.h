/* SPDX-License-Identifier: MIT */
/*
 * Health probes: HTTP/1.1 checks of each backend's agent, run on the loop's
 * ring with non-blocking sockets and deadlines, one in flight per backend.
 * Through pool.h they change a backend's health, and its drain when the
 * agent's X-Wglb-Drain header asks; the loop does the rest.
 */
#ifndef WGLB_PROBE_H
#define WGLB_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;

int probe_init(struct loop *l);
void probe_fini(struct loop *l);
/* Start due probes and time out late ones. */
void probe_tick(struct loop *l);
/* A passive signal (ICMP unreachable, unanswered initiation): probe now. */
void probe_poke(struct loop *l, unsigned backend);

/* Last result, for show backends. */
struct probe_result {
	uint64_t when_ms; /* realtime; 0 = never */
	int status;       /* HTTP status, or 0 */
	const char *reason; /* "ok", "status", "timeout", "refused", "reset", "garbage", ... */
	uint32_t latency_ms;
};
const struct probe_result *probe_last(const struct loop *l, unsigned backend);

/* Parse an HTTP/1.x response head at the start of buf. Returns the status
 * (100..599) once the headers are complete (or, when final, from the status
 * line alone), 0 when more bytes are needed, -1 when it is not HTTP.
 * *drain_header is set when the head carries "X-Wglb-Drain: 1". */
int probe_parse_status(const char *buf, size_t len, bool final, int *drain_header);

/* The part main.c attaches to the loop (open, tick, close above). */
extern const struct loop_part probe_part;

#endif
