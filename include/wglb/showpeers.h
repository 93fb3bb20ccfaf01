/* SPDX-License-Identifier: MIT */
/*
 * wg-health --show-peers: the interface's peers as `wg show` prints them,
 * each with the client behind it where a balancer told the agent
 * (client_address = snat: the endpoint is the balancer's). The notes come
 * from the agent's clients file (agentcmd.h), read here, never written.
 */
#ifndef WGLB_SHOWPEERS_H
#define WGLB_SHOWPEERS_H

#include "wglb/wgdev.h"

#include <stdint.h>
#include <stdio.h>

/* Print peers[0..n) with the notes in the clients file's text (lines
 * "ENDPOINT CLIENT UNIX_S"; NULL: none) as of now_s. Pure: unit-tested. */
void showpeers_print(FILE *out, const struct wgdev_peer *peers, int n, const char *notes,
		     uint64_t now_s);
/* Read the interface and the clients file (missing: no notes), print.
 * 0, or 1 with the reason on stderr. */
int showpeers_run(const char *ifname, const char *clients_file);

#endif
