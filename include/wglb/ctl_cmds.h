/* SPDX-License-Identifier: MIT */
/* The control socket's commands (lb/control/ctl_cmds.c), a table registered with
 * the control socket: they read the loop's state, change backends through
 * pool.h and reply through ctl.h's helpers; they never write a client's fd. */
#ifndef WGLB_CTL_CMDS_H
#define WGLB_CTL_CMDS_H

#include "wglb/ctl.h"

/* The part that registers them (attach it after ctl_part). */
extern const struct loop_part ctl_cmds_part;
#endif
