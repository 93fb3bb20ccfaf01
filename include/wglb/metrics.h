/* SPDX-License-Identifier: MIT */
/* Prometheus text exposition of every counter (lb/control/metrics.c): the
 * "metrics" command and what answers GET /metrics, registered with the
 * control socket by its part. */
#ifndef WGLB_METRICS_H
#define WGLB_METRICS_H

#include "wglb/ctl.h"

/* The part that registers them (attach it after ctl_part). */
extern const struct loop_part metrics_part;
#endif
