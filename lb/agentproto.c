// SPDX-License-Identifier: MIT
#include "wglb/agentproto.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int ap_key_load(const char *path, struct ap_key *key)
{
	char buf[128];
	size_t len = 0, bin = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	len = strcspn(buf, "\r\n");
	buf[len] = '\0';
	if (len == 64 && sodium_hex2bin(key->k, sizeof(key->k), buf, len, NULL, &bin, NULL) == 0 &&
	    bin == sizeof(key->k))
		return 0;
	if (sodium_base642bin(key->k, sizeof(key->k), buf, len, NULL, &bin, NULL,
			      sodium_base64_VARIANT_ORIGINAL) == 0 &&
	    bin == sizeof(key->k))
		return 0;
	sodium_memzero(buf, sizeof(buf));
	return -EINVAL;
}

int ap_sign(const struct ap_key *key, uint64_t now_ms, const char *words, char *out, size_t size,
	    char *nonce)
{
	uint8_t mac[crypto_auth_BYTES];
	char hex[2 * crypto_auth_BYTES + 1];
	uint64_t r = (uint64_t)randombytes_random() << 32 | randombytes_random();
	int n = snprintf(out, size, "v1 %" PRIu64 " %016" PRIx64 " %s", now_ms, r, words);

	if (nonce)
		snprintf(nonce, 17, "%016" PRIx64, r);
	if (n < 0 || (size_t)n + 2 + sizeof(hex) > size)
		return -ENOSPC;
	crypto_auth(mac, (const uint8_t *)out, (size_t)n, key->k);
	sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
	n += snprintf(out + n, size - (size_t)n, " %s\n", hex);
	return n;
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

enum ap_verdict ap_verify(const struct ap_key *key, struct ap_replay *replay, uint64_t now_ms,
			  const char *line, size_t len, struct ap_msg *m)
{
	uint8_t mac[crypto_auth_BYTES];
	const char *sp;
	char *tok, *save, *end;
	size_t bin = 0, signed_len;
	int i = 0;

	memset(m, 0, sizeof(*m));
	if (len >= sizeof(m->buf) || len < 3 + 2 * crypto_auth_BYTES)
		return AP_BAD_FORMAT;
	for (size_t k = 0; k < len; k++)
		if ((unsigned char)line[k] < 0x20 || (unsigned char)line[k] > 0x7e)
			return AP_BAD_FORMAT;
	/* The MAC is the last word; it covers everything before its space. */
	sp = memrchr(line, ' ', len);
	if (!sp || (size_t)(line + len - sp - 1) != 2 * crypto_auth_BYTES)
		return AP_BAD_FORMAT;
	signed_len = (size_t)(sp - line);
	if (sodium_hex2bin(mac, sizeof(mac), sp + 1, 2 * crypto_auth_BYTES, NULL, &bin, NULL) != 0 ||
	    bin != sizeof(mac))
		return AP_BAD_FORMAT;
	if (crypto_auth_verify(mac, (const uint8_t *)line, signed_len, key->k) != 0)
		return AP_BAD_MAC;
	memcpy(m->buf, line, signed_len);
	m->buf[signed_len] = '\0';
	tok = strtok_r(m->buf, " ", &save);
	if (!tok || strcmp(tok, "v1"))
		return AP_BAD_FORMAT;
	tok = strtok_r(NULL, " ", &save);
	if (!tok)
		return AP_BAD_FORMAT;
	errno = 0;
	m->time_ms = strtoull(tok, &end, 10);
	if (errno || *end)
		return AP_BAD_FORMAT;
	tok = strtok_r(NULL, " ", &save);
	if (!tok || strlen(tok) != 16)
		return AP_BAD_FORMAT;
	m->nonce = strtoull(tok, &end, 16);
	if (*end)
		return AP_BAD_FORMAT;
	while ((tok = strtok_r(NULL, " ", &save))) {
		if (i == AP_MAX_WORDS)
			return AP_BAD_FORMAT;
		m->word[i++] = tok;
	}
	m->n = i;
	if (!i)
		return AP_BAD_FORMAT;
	if (m->time_ms + AP_SKEW_MS < now_ms || m->time_ms > now_ms + AP_SKEW_MS ||
	    (replay && m->time_ms < replay->not_before_ms))
		return AP_STALE;
	if (replay && seen(replay, m->nonce, now_ms))
		return AP_REPLAY;
	return AP_OK;
}

const char *ap_verdict_name(enum ap_verdict v)
{
	static const char *const n[] = {"ok", "bad_format", "bad_mac", "stale", "replay"};
	return (unsigned)v < 5 ? n[v] : "invalid";
}
