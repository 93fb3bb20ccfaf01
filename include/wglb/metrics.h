/* SPDX-License-Identifier: MIT */
/* Prometheus text exposition of every counter (lb/metrics.c), for the
 * "metrics" command and the HTTP endpoint. */
#ifndef WGLB_METRICS_H
#define WGLB_METRICS_H

#include "wglb/ctl.h"

#define METRICS_CACHE_MS 1000

/* max_age_ms as ctl_totals: the unauthenticated HTTP endpoint answers from
 * a sum up to a second old, so that a scrape storm costs one a second. */
void metrics_write(struct loop *l, struct ctl_client *c, unsigned max_age_ms);

#endif
