/* SPDX-License-Identifier: MIT */
/* Clocks in milliseconds: monotonic for timers, wall time for what people
 * and peers read (RFC 3339 in show backends, the agent channel's stamps). */
#ifndef WGLB_CLOCK_H
#define WGLB_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline uint64_t clock_realtime_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

static inline uint64_t clock_monotonic_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

#endif
