/* SPDX-License-Identifier: MIT */
/* wg-health's agent commands (health/agentcmd.c). */
#ifndef WGLB_AGENTCMD_H
#define WGLB_AGENTCMD_H

#include "wglb/agentproto.h"
#include "wglb/wgdev.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct agent_cmd {
	const char *ifname;
	const char *name;  /* this backend's name in wglb.conf: its key was derived for it */
	struct ap_key key; /* that derived key, never wglb's master */
	struct ap_replay replay;
	struct wgdev_peer peers[WGDEV_MAX_PEERS];
	uint64_t refused[5]; /* by enum ap_verdict */
	uint64_t bad_args, unknown_peer, rehandshakes, served, wrong_target;
};

/* Handle one request line that arrived at address self ("IP:PORT", as
 * addr_fmt writes it); write the reply into out. Returns its length. */
int agentcmd_handle(struct agent_cmd *a, const char *self, const char *line, size_t len, char *out,
		    size_t size);

#endif
