/* SPDX-License-Identifier: MIT */
/* Logging to stderr, one line per event that matters, never per packet.
 * Under systemd (JOURNAL_STREAM set) lines carry <N> priority prefixes. */
#ifndef WGLB_LOG_H
#define WGLB_LOG_H

#include <stdint.h>
#include <syslog.h>

void log_msg(int prio, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_set_level(int prio);

#define log_err(...)   log_msg(LOG_ERR, __func__, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARNING, __func__, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __func__, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __func__, __VA_ARGS__)

/* At most one line per interval; counts what it suppressed. */
struct ratelimit {
	uint64_t next_ms;
	uint64_t suppressed;
};
/* True when a line may be logged now; *suppressed gets the count since the last. */
int ratelimit_ok(struct ratelimit *rl, uint64_t now_ms, uint64_t interval_ms,
		 uint64_t *suppressed);

#endif
