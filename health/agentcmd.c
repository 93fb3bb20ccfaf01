// SPDX-License-Identifier: MIT
/*
 * wg-health's agent commands for wglb (instant failover), on their own
 * port so the health port can stay open to probes:
 *   to NAME SELF peers                  -> "peers", "peer KEY ENDPOINT HANDSHAKE_S"
 *                                          lines, "end N": one message, one MAC
 *   to NAME SELF rehandshake KEY IP:PORT -> "ok" or "err REASON"
 * NAME is this backend's name in wglb.conf, SELF the address and port the
 * balancer connected to: a request meant for another (misnamed or
 * misaddressed) agent is refused (err wrong_target). The key is this
 * backend's own, derived by wglb from its master and NAME, so another
 * server's key signs nothing this agent accepts. Every request and reply
 * is signed (agentproto.h); a request with a bad MAC, a stale timestamp (or
 * one from before this agent started), a replayed nonce or bad words
 * changes nothing and is counted.
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

/* The peers report, signed whole: dropping, adding or moving a line breaks
 * its MAC, and "end N" counts the peer lines (a report cut short for room
 * says so in N and still verifies). */
static int report(struct agent_cmd *a, const char *rn, char *out, size_t size)
{
	char head[64];
	int n = wgdev_peers(a->ifname, a->peers, WGDEV_MAX_PEERS), len, shown = 0;
	size_t off = 0;

	if (n < 0) {
		reply(a, out, size, &off, "re %s err wg_%d", rn, -n);
		return (int)off;
	}
	snprintf(head, sizeof(head), "re %s peers", rn);
	len = ap_head(clock_realtime_ms(), head, out, size, NULL);
	if (len < 0)
		return 0;
	off = (size_t)len;
	for (int i = 0; i < n; i++) {
		char b64[64];
		if (size - off < 2 * AP_MAX_LINE)
			break; /* room for this line, "end N" and the MAC */
		if (!a->peers[i].endpoint[0])
			continue;
		sodium_bin2base64(b64, sizeof(b64), a->peers[i].pub, 32, sodium_base64_VARIANT_ORIGINAL);
		len = snprintf(out + off, size - off, "\npeer %s %s %llu", b64, a->peers[i].endpoint,
			       (unsigned long long)a->peers[i].handshake_s);
		if (len < 0 || (size_t)len >= AP_MAX_LINE)
			return 0;
		off += (size_t)len;
		shown++;
	}
	off += (size_t)snprintf(out + off, size - off, "\nend %d", shown);
	len = ap_seal(&a->key, out, off, size);
	a->served++;
	return len < 0 ? 0 : len;
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
	if (m.body_len) { /* a request is one line; the caller cuts at the first newline */
		a->refused[AP_BAD_FORMAT]++;
		return snprintf(out, size, "refused %s\n", ap_verdict_name(AP_BAD_FORMAT));
	}
	snprintf(rn, sizeof(rn), "%016llx", (unsigned long long)m.nonce);
	if (m.n < 4 || strcmp(m.word[0], "to") || strcmp(m.word[1], a->name) ||
	    strcmp(m.word[2], self)) {
		a->wrong_target++;
		reply(a, out, size, &off, "re %s err wrong_target", rn);
		return (int)off;
	}
	m.n -= 3; /* the command's words follow the target */
	memmove(m.word, m.word + 3, sizeof(m.word[0]) * (size_t)m.n);
	if (!strcmp(m.word[0], "peers") && m.n == 1)
		return report(a, rn, out, size);
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
