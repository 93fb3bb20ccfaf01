/* SPDX-License-Identifier: MIT */
/* Prometheus text exposition of every counter (lb/metrics.c), for the
 * "metrics" command and the HTTP endpoint. */
#ifndef WGLB_METRICS_H
#define WGLB_METRICS_H

#include "wglb/ctl.h"

void metrics_write(struct loop *l, struct ctl_client *c);

#endif
