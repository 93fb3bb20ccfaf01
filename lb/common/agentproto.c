// SPDX-License-Identifier: MIT
#include "wglb/agentproto.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ap_key_load(const char *path, struct ap_key *key)
{
	char buf[128];
	size_t len, bin = 0;
	ssize_t n;
	int ret = -EINVAL, fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		ret = -errno;
	close(fd);
	if (n < 0)
		goto out;
	buf[n] = '\0';
	len = strcspn(buf, "\r\n");
	buf[len] = '\0';
	if (len == 64 && sodium_hex2bin(key->k, sizeof(key->k), buf, len, NULL, &bin, NULL) == 0 &&
	    bin == sizeof(key->k))
		ret = 0;
	else if (sodium_base642bin(key->k, sizeof(key->k), buf, len, NULL, &bin, NULL,
				   sodium_base64_VARIANT_ORIGINAL) == 0 &&
		 bin == sizeof(key->k))
		ret = 0;
out:
	/* The key's text must not outlive this call, on any path: a core
	 * dump or a later bug reading stale stack would give it away. */
	sodium_memzero(buf, sizeof(buf));
	if (ret < 0)
		sodium_memzero(key, sizeof(*key)); /* a half-decoded key is still key material */
	return ret;
}

bool ap_name_valid(const char *name)
{
	size_t n = strnlen(name, AP_NAME_MAX);

	if (n == 0 || n == AP_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
			return false;
	return true;
}

int ap_key_derive(const struct ap_key *master, const char *name, struct ap_key *out)
{
	/* The context and its NUL first: this hash is then no other use of the
	 * master, and no name is a prefix trick on another. */
	uint8_t in[sizeof(AP_KEY_CONTEXT) + AP_NAME_MAX];
	size_t n;
	int ret;

	if (!ap_name_valid(name))
		return -EINVAL;
	n = strlen(name);
	memcpy(in, AP_KEY_CONTEXT, sizeof(AP_KEY_CONTEXT));
	memcpy(in + sizeof(AP_KEY_CONTEXT), name, n);
	ret = crypto_generichash(out->k, sizeof(out->k), in, sizeof(AP_KEY_CONTEXT) + n, master->k,
				 sizeof(master->k));
	return ret == 0 ? 0 : -EINVAL;
}

int ap_head(uint64_t now_ms, const char *words, char *out, size_t size, char *nonce)
{
	uint64_t r = (uint64_t)randombytes_random() << 32 | randombytes_random();
	int n = snprintf(out, size, AP_VERSION " %" PRIu64 " %016" PRIx64 " %s", now_ms, r, words);

	if (nonce)
		snprintf(nonce, 17, "%016" PRIx64, r);
	if (n < 0 || (size_t)n >= size)
		return -ENOSPC;
	return n;
}

int ap_seal(const struct ap_key *key, char *out, size_t len, size_t size)
{
	uint8_t mac[crypto_auth_BYTES];
	char hex[2 * crypto_auth_BYTES + 1];

	if (len + 2 + sizeof(hex) > size) /* " " + hex + "\n" + NUL */
		return -ENOSPC;
	crypto_auth(mac, (const uint8_t *)out, len, key->k);
	sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
	return (int)len + snprintf(out + len, size - len, " %s\n", hex);
}

int ap_sign(const struct ap_key *key, uint64_t now_ms, const char *words, char *out, size_t size,
	    char *nonce)
{
	int n = ap_head(now_ms, words, out, size, nonce);

	if (n < 0 || (size_t)n >= AP_MAX_LINE)
		return -ENOSPC;
	return ap_seal(key, out, (size_t)n, size < AP_MAX_LINE ? size : AP_MAX_LINE);
}

/* True (refuse) when the nonce was seen within the window, or when
 * remembering it would forget one still inside the window. Safe when the
 * wall clock steps back: an entry from the "future" still counts. */
static bool seen(struct ap_replay *r, uint64_t nonce, uint64_t now_ms)
{
	uint64_t w;

	for (unsigned i = 0; i < AP_REPLAY_N; i++) {
		w = r->when[i];
		if (w && r->nonce[i] == nonce && (now_ms < w || now_ms - w <= AP_WINDOW_MS))
			return true;
	}
	w = r->when[r->next];
	if (w && (now_ms < w || now_ms - w <= AP_WINDOW_MS))
		return true;
	r->nonce[r->next] = nonce;
	r->when[r->next] = now_ms ? now_ms : 1;
	r->next = (r->next + 1) % AP_REPLAY_N;
	return false;
}

/* Split a line (no newline, < AP_MAX_LINE) into m->buf: its first npre
 * words into pre[], the rest into m->word[]. False when any of pre[] is
 * missing, or the rest is empty or longer than AP_MAX_WORDS. */
static bool split(const char *line, size_t len, struct ap_msg *m, const char **pre, int npre)
{
	char *tok, *save;
	int i = 0;

	memcpy(m->buf, line, len);
	m->buf[len] = '\0';
	m->n = 0;
	for (tok = strtok_r(m->buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
		if (i < npre) {
			pre[i++] = tok;
			continue;
		}
		if (m->n == AP_MAX_WORDS)
			return false;
		m->word[m->n++] = tok;
	}
	return i == npre && m->n > 0;
}

enum ap_verdict ap_verify(const struct ap_key *key, struct ap_replay *replay, uint64_t now_ms,
			  const char *text, size_t len, struct ap_msg *m)
{
	uint8_t mac[crypto_auth_BYTES];
	const char *sp, *nl, *pre[3]; /* version, time, nonce */
	char *end;
	size_t bin = 0, signed_len, head_len;

	memset(m, 0, sizeof(*m));
	m->body = "";
	m->body_len = 0;
	if (len > AP_MAX_MSG || len < 3 + 2 * crypto_auth_BYTES)
		return AP_BAD_FORMAT;
	/* Printable words; newlines only between the lines of a reply. */
	for (size_t k = 0; k < len; k++)
		if (((unsigned char)text[k] < 0x20 && text[k] != '\n') || (unsigned char)text[k] > 0x7e)
			return AP_BAD_FORMAT;
	/* The MAC is the last word; it covers every byte before its space. */
	sp = memrchr(text, ' ', len);
	if (!sp || (size_t)(text + len - sp - 1) != 2 * crypto_auth_BYTES)
		return AP_BAD_FORMAT;
	signed_len = (size_t)(sp - text);
	if (sodium_hex2bin(mac, sizeof(mac), sp + 1, 2 * crypto_auth_BYTES, NULL, &bin, NULL) != 0 ||
	    bin != sizeof(mac))
		return AP_BAD_FORMAT;
	if (crypto_auth_verify(mac, (const uint8_t *)text, signed_len, key->k) != 0)
		return AP_BAD_MAC;
	/* Signed: now the first line's words; the rest is the body. */
	nl = memchr(text, '\n', signed_len);
	head_len = nl ? (size_t)(nl - text) : signed_len;
	if (head_len >= sizeof(m->buf) || !split(text, head_len, m, pre, 3) ||
	    strcmp(pre[0], AP_VERSION))
		return AP_BAD_FORMAT;
	errno = 0;
	m->time_ms = strtoull(pre[1], &end, 10);
	if (errno || *end || !isdigit((unsigned char)pre[1][0]))
		return AP_BAD_FORMAT;
	if (strlen(pre[2]) != 16)
		return AP_BAD_FORMAT;
	m->nonce = strtoull(pre[2], &end, 16);
	if (*end || !isxdigit((unsigned char)pre[2][0]))
		return AP_BAD_FORMAT;
	if (nl) {
		m->body = nl + 1;
		m->body_len = signed_len - head_len - 1;
	}
	if (m->time_ms + AP_SKEW_MS < now_ms || m->time_ms > now_ms + AP_SKEW_MS ||
	    (replay && m->time_ms < replay->not_before_ms))
		return AP_STALE;
	if (replay && seen(replay, m->nonce, now_ms))
		return AP_REPLAY;
	return AP_OK;
}

enum ap_verdict ap_reply_verify(const struct ap_key *key, uint64_t now_ms, const char *rnonce,
				const char *text, size_t len, struct ap_msg *m)
{
	enum ap_verdict v;

	/* One message, ended by its newline: nothing before, inside or after
	 * it that the MAC does not cover (ap_verify allows newlines inside). */
	if (!len || text[len - 1] != '\n') {
		memset(m, 0, sizeof(*m));
		return AP_BAD_FORMAT;
	}
	v = ap_verify(key, NULL, now_ms, text, len - 1, m);
	if (v != AP_OK)
		return v;
	/* Bound to our request: a reply to an earlier one is a replay. */
	if (m->n < 3 || strcmp(m->word[0], "re") || strcmp(m->word[1], rnonce))
		return AP_BAD_FORMAT;
	return AP_OK;
}

/* The next body line at *pos: its start and length; false at the end. */
static bool next_line(const struct ap_msg *m, size_t *pos, const char **line, size_t *len)
{
	const char *nl;

	if (*pos > m->body_len || !m->body_len)
		return false;
	*line = m->body + *pos;
	nl = memchr(*line, '\n', m->body_len - *pos);
	*len = nl ? (size_t)(nl - *line) : m->body_len - *pos;
	*pos += *len + 1;
	return true;
}

/* The body of a list: lines of item_words words starting with item, then
 * "end N" counting them exactly, last. */
static enum ap_verdict list_check(const struct ap_msg *m, const char *item, int item_words,
				  unsigned *n)
{
	struct ap_msg w, *line = &w;
	const char *l;
	size_t pos = 0, len;
	unsigned items = 0;
	bool ended = false;
	unsigned long long count;
	char *end;

	while (next_line(m, &pos, &l, &len)) {
		if (ended || len >= sizeof(line->buf) || !split(l, len, line, NULL, 0))
			return AP_BAD_FORMAT;
		if (!strcmp(line->word[0], item) && line->n == item_words) {
			items++;
			continue;
		}
		if (strcmp(line->word[0], "end") || line->n != 2 ||
		    !isdigit((unsigned char)line->word[1][0]))
			return AP_BAD_FORMAT;
		errno = 0;
		count = strtoull(line->word[1], &end, 10);
		if (errno || *end || count != items)
			return AP_BAD_FORMAT;
		ended = true;
	}
	if (!ended)
		return AP_BAD_FORMAT;
	*n = items;
	return AP_OK;
}

static bool list_next(const struct ap_msg *m, size_t *pos, const char *item, int item_words,
		      struct ap_msg *line)
{
	const char *l;
	size_t len;

	while (next_line(m, pos, &l, &len))
		if (len < sizeof(line->buf) && split(l, len, line, NULL, 0) &&
		    !strcmp(line->word[0], item) && line->n == item_words)
			return true;
	return false;
}

enum ap_verdict ap_report_check(const struct ap_msg *m, unsigned *n)
{
	if (m->n != 3 || strcmp(m->word[2], "peers"))
		return AP_BAD_FORMAT;
	return list_check(m, "peer", 4, n);
}

bool ap_report_next(const struct ap_msg *m, size_t *pos, struct ap_msg *line)
{
	return list_next(m, pos, "peer", 4, line);
}

/* "W1 W2 N" as the message's last three words ("peers clients N",
 * "rehandshake peers N"): N into *count. */
static bool list_head(const struct ap_msg *m, const char *w1, const char *w2,
		      unsigned long long *count)
{
	char *end;

	if (m->n < 3 || strcmp(m->word[m->n - 3], w1) || strcmp(m->word[m->n - 2], w2) ||
	    !isdigit((unsigned char)m->word[m->n - 1][0]))
		return false;
	errno = 0;
	*count = strtoull(m->word[m->n - 1], &end, 10);
	return !errno && !*end;
}

enum ap_verdict ap_clients_check(const struct ap_msg *m, unsigned *n)
{
	unsigned long long count;

	if (!list_head(m, "peers", "clients", &count) || list_check(m, "c", 3, n) != AP_OK ||
	    count != *n)
		return AP_BAD_FORMAT;
	return AP_OK;
}

bool ap_clients_next(const struct ap_msg *m, size_t *pos, struct ap_msg *line)
{
	return list_next(m, pos, "c", 3, line);
}

enum ap_verdict ap_moves_check(const struct ap_msg *m, unsigned *n)
{
	unsigned long long count;

	if (!list_head(m, "rehandshake", "peers", &count) || list_check(m, "r", 3, n) != AP_OK ||
	    count != *n)
		return AP_BAD_FORMAT;
	return AP_OK;
}

bool ap_moves_next(const struct ap_msg *m, size_t *pos, struct ap_msg *line)
{
	return list_next(m, pos, "r", 3, line);
}

enum ap_verdict ap_moved_check(const struct ap_msg *m, unsigned *n)
{
	if (m->n != 3 || strcmp(m->word[2], "moved"))
		return AP_BAD_FORMAT;
	return list_check(m, "r", 2, n);
}

bool ap_moved_next(const struct ap_msg *m, size_t *pos, struct ap_msg *line)
{
	return list_next(m, pos, "r", 2, line);
}

long ap_request_end(const char *buf, size_t len, size_t *scan)
{
	const char *nl, *p;
	char first[AP_MAX_LINE], *tok, *save, *w[12];
	size_t flen;
	int n = 0;

	if (!*scan) { /* the first line: one request, or the head of one with lines */
		nl = memchr(buf, '\n', len);
		if (!nl)
			return len >= AP_MAX_LINE ? -1 : 0;
		flen = (size_t)(nl - buf);
		if (flen >= sizeof(first))
			return -1;
		memcpy(first, buf, flen);
		first[flen] = '\0';
		for (tok = strtok_r(first, " ", &save); tok && n < 12; tok = strtok_r(NULL, " ", &save))
			w[n++] = tok;
		/* "v2 TIME NONCE to NAME SELF peers clients N" or "... rehandshake
		 * peers N": lines follow, the MAC ends the "end N" line. Anything
		 * else is one line. */
		if (n != 9 || !((!strcmp(w[6], "peers") && !strcmp(w[7], "clients")) ||
				(!strcmp(w[6], "rehandshake") && !strcmp(w[7], "peers"))))
			return (long)flen + 1;
		*scan = flen + 1;
	}
	/* Lines from the first one not yet seen whole: each byte is looked at
	 * about once however the request arrives. */
	for (p = buf + *scan; p < buf + len;) {
		const char *e = memchr(p, '\n', (size_t)(buf + len - p));
		if (!e) {
			if ((size_t)(buf + len - p) >= AP_MAX_LINE)
				return -1;
			break;
		}
		if ((size_t)(e - p) >= AP_MAX_LINE)
			return -1;
		if (e - p >= 4 && !memcmp(p, "end ", 4))
			return e + 1 - buf;
		p = e + 1;
	}
	*scan = (size_t)(p - buf);
	return len >= AP_MAX_MSG ? -1 : 0;
}

const char *ap_verdict_name(enum ap_verdict v)
{
	static const char *const n[] = {"ok", "bad_format", "bad_mac", "stale", "replay"};
	return (unsigned)v < 5 ? n[v] : "invalid";
}
