// SPDX-License-Identifier: MIT
/*
 * wg-health's agent commands for wglb (instant failover), on their own
 * port so the health port can stay open to probes:
 *   to NAME SELF peers                  -> "peers", "peer KEY ENDPOINT HANDSHAKE_S"
 *                                          lines, "end N": one message, one MAC
 *   to NAME SELF peers clients N        -> the same; the request's lines
 *     "c ENDPOINT CLIENT", then "end N"     say who is behind each endpoint
 *                                          (a balancer in snat mode): kept
 *                                          as notes for --show-peers
 *   to NAME SELF rehandshake KEY IP:PORT -> "ok" or "err REASON"
 *   to NAME SELF rehandshake peers N    -> "moved", one line "r ok" (or
 *     "r KEY IP:PORT" lines, "end N"        "r unknown_peer", "r wg",
 *                                          "r bad_arguments") per line in
 *                                          order, "end N": a batch
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
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

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

static int note_cmp(const void *k, const void *e)
{
	return strcmp(k, ((const struct client_note *)e)->endpoint);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const struct client_note *agentcmd_note(const struct agent_cmd *a, const char *endpoint)
{
	return bsearch(endpoint, a->notes, a->n_notes, sizeof(a->notes[0]), note_cmp);
}

/* addr_parse + addr_fmt: one spelling per address, so the balancer's
 * endpoint and WireGuard's compare as strings. False if not an address. */
static bool canon(const char *in, char *out)
{
	struct wglb_addr ad;

	return addr_parse(in, &ad) == 0 && addr_port(&ad.u) && addr_fmt(&ad.u, out, ADDR_STRLEN);
}

/* The notes as lines "ENDPOINT CLIENT UNIX_S" in a file replaced whole
 * (write, then rename): --show-peers reads it while we write. */
static void notes_save(const struct agent_cmd *a)
{
	char tmp[4096];
	uint64_t now = clock_monotonic_ms(), wall = clock_realtime_ms();
	FILE *f;
	int ok;

	if (!a->clients_file ||
	    snprintf(tmp, sizeof(tmp), "%s.tmp", a->clients_file) >= (int)sizeof(tmp))
		return;
	f = fopen(tmp, "we");
	if (!f)
		return;
	for (unsigned i = 0; i < a->n_notes; i++)
		fprintf(f, "%s %s %llu\n", a->notes[i].endpoint, a->notes[i].client,
			(unsigned long long)((wall - (now - a->notes[i].ms)) / 1000));
	ok = fflush(f) == 0 && !ferror(f);
	if (fclose(f) != 0 || !ok || rename(tmp, a->clients_file) != 0)
		unlink(tmp);
}

/* A balancer's "c ENDPOINT CLIENT" lines, against the peers just read:
 * only an endpoint some peer has is noted (a balancer cannot fill the
 * table with endpoints no peer uses), and a note nobody repeats within
 * CLIENT_NOTE_TTL_MS, or whose endpoint no peer has now, goes. */
static void notes_update(struct agent_cmd *a, const struct ap_msg *m, int npeers)
{
	static char eps[WGDEV_MAX_PEERS][ADDR_STRLEN];
	static const char *sorted[WGDEV_MAX_PEERS];
	uint64_t now = clock_monotonic_ms();
	struct ap_msg line;
	size_t pos = 0;
	unsigned k = 0, ns = 0;
	char ep[ADDR_STRLEN], cl[ADDR_STRLEN];
	const char *key = ep;

	for (int i = 0; i < npeers; i++)
		if (a->peers[i].endpoint[0] && canon(a->peers[i].endpoint, eps[ns]))
			sorted[ns] = eps[ns], ns++;
	qsort(sorted, ns, sizeof(sorted[0]), str_cmp);
	for (unsigned i = 0; i < a->n_notes; i++) {
		key = a->notes[i].endpoint;
		if (now - a->notes[i].ms <= CLIENT_NOTE_TTL_MS &&
		    bsearch(&key, sorted, ns, sizeof(sorted[0]), str_cmp))
			a->notes[k++] = a->notes[i];
	}
	a->n_notes = k;
	while (ap_clients_next(m, &pos, &line)) {
		struct client_note *n;
		key = ep;
		if (!canon(line.word[1], ep) || !canon(line.word[2], cl) ||
		    !bsearch(&key, sorted, ns, sizeof(sorted[0]), str_cmp))
			continue;
		n = bsearch(ep, a->notes, a->n_notes, sizeof(a->notes[0]), note_cmp);
		if (!n) {
			unsigned at = 0;
			if (a->n_notes == WGDEV_MAX_PEERS)
				continue;
			while (at < a->n_notes && strcmp(a->notes[at].endpoint, ep) < 0)
				at++;
			memmove(&a->notes[at + 1], &a->notes[at],
				(a->n_notes - at) * sizeof(a->notes[0]));
			a->n_notes++;
			n = &a->notes[at];
			snprintf(n->endpoint, sizeof(n->endpoint), "%s", ep);
		}
		snprintf(n->client, sizeof(n->client), "%s", cl);
		n->ms = now;
		a->clients_told++;
	}
	notes_save(a);
}

/* The peers report, signed whole: dropping, adding or moving a line breaks
 * its MAC, and "end N" counts the peer lines (a report cut short for room
 * says so in N and still verifies). */
static int report(struct agent_cmd *a, const char *rn, const struct ap_msg *told, char *out,
		  size_t size)
{
	char head[64];
	int n = wgdev_peers(a->ifname, a->peers, WGDEV_MAX_PEERS), len, shown = 0;
	size_t off = 0;

	if (n < 0) {
		reply(a, out, size, &off, "re %s err wg_%d", rn, -n);
		return (int)off;
	}
	if (told)
		notes_update(a, told, n);
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

/* KEY (base64) and ENDPOINT (IP:PORT) into mv; false if either is bad. */
static bool move_parse(const char *key, const char *endpoint, struct wgdev_move *mv)
{
	struct wglb_addr ep;
	size_t bin;

	return sodium_base642bin(mv->pub, sizeof(mv->pub), key, strlen(key), NULL, &bin, NULL,
				 sodium_base64_VARIANT_ORIGINAL) == 0 &&
	       bin == 32 && addr_parse(endpoint, &ep) == 0 &&
	       snprintf(mv->endpoint, sizeof(mv->endpoint), "%s", endpoint) < (int)sizeof(mv->endpoint);
}

static const char *outcome(int result)
{
	return result == 0 ? "ok" : result == -ENOENT ? "err unknown_peer" : "err wg";
}

static void rehandshake(struct agent_cmd *a, struct wgdev_move *mv, int n)
{
	wgdev_rehandshake(a->ifname, mv, n); /* the outcome is in each result */
	for (int i = 0; i < n; i++) {
		if (mv[i].result == -ENOENT)
			a->unknown_peer++;
		else if (mv[i].result == 0)
			a->rehandshakes++;
	}
}

/* A batch: every peer moved with one read of the interface and two
 * changes, however many; one reply line per request line, in order. */
static int moves(struct agent_cmd *a, const char *rn, const struct ap_msg *m, unsigned n, char *out,
		 size_t size)
{
	struct wgdev_move *mv = calloc(n ? n : 1, sizeof(*mv));
	struct ap_msg line;
	size_t pos = 0, off = 0;
	unsigned k = 0, shown = 0;
	char head[64];
	int len;

	if (!mv) {
		reply(a, out, size, &off, "re %s err no_memory", rn);
		return (int)off;
	}
	while (ap_moves_next(m, &pos, &line) && k < n)
		if (!move_parse(line.word[1], line.word[2], &mv[k++]))
			mv[k - 1].result = -EINVAL;
	for (unsigned i = 0; i < k;) { /* the well-formed runs, in order */
		unsigned j = i;
		while (j < k && !mv[j].result)
			j++;
		if (j > i)
			rehandshake(a, mv + i, (int)(j - i));
		i = j + 1;
	}
	snprintf(head, sizeof(head), "re %s moved", rn);
	len = ap_head(clock_realtime_ms(), head, out, size, NULL);
	if (len < 0) {
		free(mv);
		return 0;
	}
	off = (size_t)len;
	for (unsigned i = 0; i < k; i++) {
		const char *o = mv[i].result == -EINVAL ? "bad_arguments"
				: mv[i].result == -ENOENT ? "unknown_peer"
				: mv[i].result	   ? "wg"
							   : "ok";
		if (mv[i].result == -EINVAL)
			a->bad_args++;
		if (size - off < 2 * AP_MAX_LINE)
			break;
		off += (size_t)snprintf(out + off, size - off, "\nr %s", o);
		shown++; /* a reply cut short for room says so in N */
	}
	free(mv);
	off += (size_t)snprintf(out + off, size - off, "\nend %u", shown);
	len = ap_seal(&a->key, out, off, size);
	return len < 0 ? 0 : len;
}

int agentcmd_handle(struct agent_cmd *a, const char *self, const char *line, size_t len, char *out,
		    size_t size)
{
	struct ap_msg m;
	enum ap_verdict v = ap_verify(&a->key, &a->replay, clock_realtime_ms(), line, len, &m);
	size_t off = 0;
	char rn[17];
	unsigned told;

	if (v != AP_OK) {
		a->refused[v]++;
		/* No signed reply: the sender is not who it claims to be. */
		return snprintf(out, size, "refused %s\n", ap_verdict_name(v));
	}
	/* A request is one line, but for the clients a peers request tells
	 * and the peers a batch of re-handshakes moves. */
	if (m.body_len && ap_clients_check(&m, &told) != AP_OK && ap_moves_check(&m, &told) != AP_OK) {
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
		return report(a, rn, NULL, out, size);
	if (!strcmp(m.word[0], "peers") && m.n == 3 && ap_clients_check(&m, &told) == AP_OK)
		return report(a, rn, &m, out, size);
	if (!strcmp(m.word[0], "rehandshake") && m.n == 3 && strcmp(m.word[1], "peers")) {
		struct wgdev_move mv = {0};
		if (!move_parse(m.word[1], m.word[2], &mv)) {
			a->bad_args++;
			reply(a, out, size, &off, "re %s err bad_arguments", rn);
			return (int)off;
		}
		rehandshake(a, &mv, 1);
		reply(a, out, size, &off, "re %s %s", rn, outcome(mv.result));
		return (int)off;
	}
	if (!strcmp(m.word[0], "rehandshake") && m.n == 3 && ap_moves_check(&m, &told) == AP_OK)
		return moves(a, rn, &m, told, out, size);
	a->bad_args++;
	reply(a, out, size, &off, "re %s err unknown_command", rn);
	return (int)off;
}
