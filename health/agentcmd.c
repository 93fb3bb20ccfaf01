// SPDX-License-Identifier: MIT
/*
 * wg-health's agent commands for wglb (instant failover), on their own
 * port so the health port can stay open to probes:
 *   to SELF peers                    -> "peer KEY ENDPOINT HANDSHAKE_S" lines, "end N"
 *   to SELF rehandshake KEY IP:PORT  -> "ok" or "err REASON"
 * SELF is the address and port the balancer connected to: a request meant
 * for another server sharing the key is refused (err wrong_target). Every
 * request and reply line is signed (agentproto.h); a request with a bad
 * MAC, a stale timestamp (or one from before this agent started), a
 * replayed nonce or bad words changes nothing and is counted.
 */
#include "wglb/clock.h"
#include "wglb/agentcmd.h"
#include "wglb/addr.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

static int reply(struct agent_cmd *a, char *out, size_t size, size_t *off, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int reply(struct agent_cmd *a, char *out, size_t size, size_t *off, const char *fmt, ...)
{
	char words[AP_MAX_LINE];
	va_list ap;
	int n;

	va_start(ap, fmt);
	vsnprintf(words, sizeof(words), fmt, ap);
	va_end(ap);
	n = ap_sign(&a->key, clock_realtime_ms(), words, out + *off, size - *off, NULL);
	if (n < 0)
		return n;
	*off += (size_t)n;
	return 0;
}

int agentcmd_handle(struct agent_cmd *a, const char *self, const char *line, size_t len, char *out,
		    size_t size)
{
	struct ap_msg m;
	enum ap_verdict v = ap_verify(&a->key, &a->replay, clock_realtime_ms(), line, len, &m);
	size_t off = 0;
	char rn[17];
	uint8_t pub[32];
	size_t bin;

	if (v != AP_OK) {
		a->refused[v]++;
		/* No signed reply: the sender is not who it claims to be. */
		return snprintf(out, size, "refused %s\n", ap_verdict_name(v));
	}
	snprintf(rn, sizeof(rn), "%016llx", (unsigned long long)m.nonce);
	if (m.n < 3 || strcmp(m.word[0], "to") || strcmp(m.word[1], self)) {
		a->wrong_target++;
		reply(a, out, size, &off, "re %s err wrong_target", rn);
		return (int)off;
	}
	m.n -= 2; /* the command's words follow the target */
	memmove(m.word, m.word + 2, sizeof(m.word[0]) * (size_t)m.n);
	if (!strcmp(m.word[0], "peers") && m.n == 1) {
		int n = wgdev_peers(a->ifname, a->peers, WGDEV_MAX_PEERS), shown = 0;
		if (n < 0) {
			reply(a, out, size, &off, "re %s err wg_%d", rn, -n);
			return (int)off;
		}
		for (int i = 0; i < n; i++) {
			char b64[64];
			if (!a->peers[i].endpoint[0])
				continue;
			sodium_bin2base64(b64, sizeof(b64), a->peers[i].pub, 32,
					  sodium_base64_VARIANT_ORIGINAL);
			if (reply(a, out, size, &off, "re %s peer %s %s %llu", rn, b64,
				  a->peers[i].endpoint, (unsigned long long)a->peers[i].handshake_s) < 0)
				break;
			shown++;
		}
		reply(a, out, size, &off, "re %s end %d", rn, shown);
		a->served++;
		return (int)off;
	}
	if (!strcmp(m.word[0], "rehandshake") && m.n == 3) {
		struct wglb_addr ep;
		int r;
		if (sodium_base642bin(pub, sizeof(pub), m.word[1], strlen(m.word[1]), NULL, &bin, NULL,
				      sodium_base64_VARIANT_ORIGINAL) != 0 || bin != 32 ||
		    addr_parse(m.word[2], &ep) < 0) {
			a->bad_args++;
			reply(a, out, size, &off, "re %s err bad_arguments", rn);
			return (int)off;
		}
		r = wgdev_rehandshake(a->ifname, pub, m.word[2]);
		if (r == -ENOENT)
			a->unknown_peer++;
		else if (r == 0)
			a->rehandshakes++;
		reply(a, out, size, &off, "re %s %s", rn,
		      r == 0 ? "ok" : r == -ENOENT ? "err unknown_peer" : "err wg");
		return (int)off;
	}
	a->bad_args++;
	reply(a, out, size, &off, "re %s err unknown_command", rn);
	return (int)off;
}
