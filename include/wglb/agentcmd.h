/* SPDX-License-Identifier: MIT */
/* wg-health's agent commands (health/agentcmd.c). */
#ifndef WGLB_AGENTCMD_H
#define WGLB_AGENTCMD_H

#include "wglb/addr.h"
#include "wglb/agentproto.h"
#include "wglb/wgdev.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Who is behind a flow, as a balancer in snat mode told us: the endpoint
 * our peer has (the balancer's address and the flow's upstream port) and
 * the client's own address. */
struct client_note {
	char endpoint[ADDR_STRLEN];
	char client[ADDR_STRLEN];
	uint64_t ms; /* when a balancer last said so (monotonic) */
};

#define CLIENT_NOTE_TTL_MS 30000 /* a note no balancer repeats this long is gone */

struct agent_cmd {
	const char *ifname;
	const char *clients_file; /* where the notes go for wg-health --show-peers; NULL: nowhere */
	const char *name;  /* this backend's name in wglb.conf: its key was derived for it */
	struct ap_key key; /* that derived key, never wglb's master */
	struct ap_replay replay;
	struct wgdev_peer peers[WGDEV_MAX_PEERS];
	uint64_t refused[5]; /* by enum ap_verdict */
	uint64_t bad_args, unknown_peer, rehandshakes, served, wrong_target;
	/* Sorted by endpoint; only endpoints some peer has. */
	struct client_note notes[WGDEV_MAX_PEERS];
	unsigned n_notes;
	uint64_t clients_told;
};

/* Handle one request (ap_request_end framed it; no final newline) that arrived at address self ("IP:PORT", as
 * addr_fmt writes it); write the reply into out. Returns its length. */
/* The note for a peer's endpoint, or NULL. */
const struct client_note *agentcmd_note(const struct agent_cmd *a, const char *endpoint);

int agentcmd_handle(struct agent_cmd *a, const char *self, const char *line, size_t len, char *out,
		    size_t size);

#endif
