/* SPDX-License-Identifier: MIT */
/*
 * Health probes: HTTP/1.1 checks of each backend's agent, run on the loop's
 * ring with non-blocking sockets and deadlines, one in flight per backend.
 * Through pool.h they change a backend's health, and its drain when the
 * agent's X-Wglb-Drain header asks; the packet path does the rest.
 */
#ifndef WGLB_PROBE_H
#define WGLB_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;


/* Last result, for show backends. */
struct probe_result {
	uint64_t when_ms; /* realtime; 0 = never */
	int status;       /* HTTP status, or 0 */
	const char *reason; /* "ok", "status", "timeout", "refused", "reset", "garbage", ... */
	uint32_t latency_ms;
	uint64_t failed; /* probes of this backend that failed, all told */
	uint16_t history;  /* the last history_n probes, newest in bit 0: 1 passed */
	uint8_t history_n; /* up to 16 */
};
const struct probe_result *probe_last(const struct loop *l, unsigned backend);

/* The part main.c attaches to the loop: at every tick it starts due probes,
 * times out late ones, and takes the packet path's hints (fwd_hint). */
extern const struct loop_part probe_part;

#endif
