/* SPDX-License-Identifier: MIT */
/* The control socket's commands (lb/ctl_cmds.c), driven by a command table:
 * they read the loop's state, change backends through pool.h and reply
 * through ctl.h's helpers; they never write a client's fd. */
#ifndef WGLB_CTL_CMDS_H
#define WGLB_CTL_CMDS_H

#include "wglb/ctl.h"

void ctl_execute(struct loop *l, struct ctl_client *c, const struct ctl_req *req);
/* The next part of a streamed reply (show flows), as the client reads. */
void ctl_stream_more(struct loop *l, struct ctl_client *c);

#endif
