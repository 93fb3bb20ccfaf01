/* SPDX-License-Identifier: MIT */
/* The read-only status page on metrics_listen (lb/control/status.c):
 * GET / (HTML), GET /status.json and GET /ready, registered with the
 * control socket's HTTP side by its part. */
#ifndef WGLB_STATUS_H
#define WGLB_STATUS_H

#include "wglb/loop.h"

/* The part that registers them (attach it after ctl_part). */
extern const struct loop_part status_part;

#endif
