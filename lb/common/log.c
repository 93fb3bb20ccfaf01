// SPDX-License-Identifier: MIT
#include "wglb/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int max_prio = LOG_INFO;

void log_set_level(int prio)
{
	max_prio = prio;
}

void log_msg(int prio, const char *func, const char *fmt, ...)
{
	static int journal = -1;
	static const char *const names[] = {"emerg", "alert", "crit", "error",
					    "warning", "notice", "info", "debug"};
	char line[1024];
	va_list ap;

	if (prio > max_prio)
		return;
	if (journal < 0)
		journal = getenv("JOURNAL_STREAM") != NULL;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (journal) {
		fprintf(stderr, "<%d>%s: %s\n", prio, func, line);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];
		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ %s %s: %s\n", when, ts.tv_nsec / 1000000,
			names[prio & 7], func, line);
	}
}

int ratelimit_ok(struct ratelimit *rl, uint64_t now_ms, uint64_t interval_ms,
		 uint64_t *suppressed)
{
	if (now_ms < rl->next_ms) {
		rl->suppressed++;
		return 0;
	}
	*suppressed = rl->suppressed;
	rl->suppressed = 0;
	rl->next_ms = now_ms + interval_ms;
	return 1;
}
