/* SPDX-License-Identifier: MIT */
/* The control socket's commands (lb/ctl_cmds.c), driven by a command table:
 * they read the loop's state, change backends through pool.h and reply
 * through ctl.h's helpers; they never write a client's fd. */
#ifndef WGLB_CTL_CMDS_H
#define WGLB_CTL_CMDS_H

#include "wglb/agent.h"
#include "wglb/config.h"
#include "wglb/ctl.h"
#include "wglb/stats.h"
#include "wglb/totals.h"

/* The command table, for ctl_parse(). */
const struct ctl_cmd *ctl_commands(size_t *n);
void ctl_execute(struct loop *l, struct ctl_client *c, const struct ctl_req *req);
/* The next part of a streamed reply (show flows), as the client reads. */
void ctl_stream_more(struct loop *l, struct ctl_client *c);

/* Every worker's counters summed (totals.h), from what each published: the
 * main thread calls none of them and never waits on the packet path.
 * max_age_ms: a sum that recent is answered again (/metrics: 1000, so a
 * scrape storm costs one sum a second); 0: a new sum for which each worker
 * first publishes (a bounded call: the control socket's exact counters).
 * Stalled workers are marked; their last snapshot counts. The result
 * lives until the next call. */
const struct totals *ctl_totals(struct loop *l, unsigned max_age_ms);

#endif
