// SPDX-License-Identifier: MIT
/* The balancer <-> agent channel: signed messages, refused when forged,
 * tampered with, stale, replayed or malformed; one key per backend; peers
 * reports signed whole. */
#include "wglb/agentproto.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static struct ap_key key, other;
static struct ap_replay replay;

static enum ap_verdict check(const char *line, uint64_t now, struct ap_msg *m)
{
	return ap_verify(&key, &replay, now, line, strcspn(line, "\n"), m);
}

static void test_round_trip(void **state)
{
	char line[AP_MAX_LINE], nonce[17];
	struct ap_msg m;
	int n;

	(void)state;
	n = ap_sign(&key, 1000000, "rehandshake KEY 10.0.0.1:5000", line, sizeof(line), nonce);
	assert_true(n > 0 && line[n - 1] == '\n');
	assert_int_equal(check(line, 1000000, &m), AP_OK);
	assert_int_equal(m.n, 3);
	assert_string_equal(m.word[0], "rehandshake");
	assert_string_equal(m.word[2], "10.0.0.1:5000");
	assert_int_equal(m.time_ms, 1000000);
	char hex[17];
	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)m.nonce);
	assert_string_equal(hex, nonce);
	/* The same line again is a replay. */
	assert_int_equal(check(line, 1000100, &m), AP_REPLAY);
}

static void test_forged_and_tampered(void **state)
{
	char line[AP_MAX_LINE];
	struct ap_msg m;

	(void)state;
	ap_sign(&other, 2000000, "peers", line, sizeof(line), NULL);
	assert_int_equal(check(line, 2000000, &m), AP_BAD_MAC);
	ap_sign(&key, 2000000, "rehandshake A 10.0.0.1:1", line, sizeof(line), NULL);
	line[strlen("v1 2000000 0123456789abcdef reh")] ^= 1; /* flip a word */
	assert_int_equal(check(line, 2000000, &m), AP_BAD_MAC);
}

static void test_stale(void **state)
{
	char line[AP_MAX_LINE];
	struct ap_msg m;

	(void)state;
	ap_sign(&key, 3000000, "peers", line, sizeof(line), NULL);
	assert_int_equal(check(line, 3000000 + AP_SKEW_MS + 1, &m), AP_STALE);
	ap_sign(&key, 3000000, "peers", line, sizeof(line), NULL);
	assert_int_equal(check(line, 3000000 - AP_SKEW_MS - 1, &m), AP_STALE);
}

static void test_garbage(void **state)
{
	struct ap_msg m;
	char big[AP_MAX_LINE + 10];

	(void)state;
	assert_int_equal(check("", 1, &m), AP_BAD_FORMAT);
	assert_int_equal(check("peers", 1, &m), AP_BAD_FORMAT);
	assert_int_equal(check("v1 1 0011223344556677 peers zz", 1, &m), AP_BAD_FORMAT);
	assert_int_equal(check("v1 1 0011223344556677 peers "
			       "0000000000000000000000000000000000000000000000000000000000000000",
			       1, &m),
			 AP_BAD_MAC);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(check(big, 1, &m), AP_BAD_FORMAT);
	assert_int_equal(ap_verify(&key, &replay, 1, "v1\x01x", 4, &m), AP_BAD_FORMAT);
}

static void test_signed_but_malformed(void **state)
{
	char line[AP_MAX_LINE];
	struct ap_msg m;

	(void)state;
	/* A valid MAC over words that are not "v1 TIME NONCE ...": still refused. */
	uint8_t mac[crypto_auth_BYTES];
	char hex[2 * crypto_auth_BYTES + 1];
	const char *body = "v1 4000000 0011223344556677 peers"; /* the old version */
	crypto_auth(mac, (const uint8_t *)body, strlen(body), key.k);
	sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
	snprintf(line, sizeof(line), "%s %s", body, hex);
	assert_int_equal(check(line, 4000000, &m), AP_BAD_FORMAT);
}

/* Security finding 4: the nonce memory covers the whole window however
 * fast requests come; a clock that steps back does not forget; nothing
 * signed before the receiver started counts. */
static void test_replay_window(void **state)
{
	static struct ap_replay r;
	char line[AP_MAX_LINE], first[AP_MAX_LINE];
	struct ap_msg m;
	uint64_t t = 50000000;
	unsigned ok = 0, refused = 0;

	(void)state;
	memset(&r, 0, sizeof(r));
	ap_sign(&key, t, "peers", first, sizeof(first), NULL);
	assert_int_equal(ap_verify(&key, &r, t, first, strcspn(first, "\n"), &m), AP_OK);
	/* More requests inside one window than the memory holds: the excess is
	 * refused, and the first is still remembered at the end. */
	for (unsigned i = 0; i < AP_REPLAY_N + 100; i++) {
		ap_sign(&key, t + i, "peers", line, sizeof(line), NULL);
		if (ap_verify(&key, &r, t + i, line, strcspn(line, "\n"), &m) == AP_OK)
			ok++;
		else
			refused++;
	}
	assert_int_equal(ok, AP_REPLAY_N - 1);
	assert_int_equal(refused, 101);
	assert_int_equal(ap_verify(&key, &r, t + AP_SKEW_MS, first, strcspn(first, "\n"), &m),
			 AP_REPLAY);
	/* The wall clock steps back 10 s: still a replay, not a fresh nonce. */
	assert_int_equal(ap_verify(&key, &r, t - 10000, first, strcspn(first, "\n"), &m), AP_REPLAY);
	/* After the window the memory frees up again. */
	ap_sign(&key, t + AP_WINDOW_MS + AP_REPLAY_N + 10, "peers", line, sizeof(line), NULL);
	assert_int_equal(ap_verify(&key, &r, t + AP_WINDOW_MS + AP_REPLAY_N + 10, line,
				   strcspn(line, "\n"), &m),
			 AP_OK);
	/* A receiver that started at t+5000 refuses what was signed before. */
	memset(&r, 0, sizeof(r));
	r.not_before_ms = t + 5000;
	ap_sign(&key, t + 4999, "peers", line, sizeof(line), NULL);
	assert_int_equal(ap_verify(&key, &r, t + 6000, line, strcspn(line, "\n"), &m), AP_STALE);
	ap_sign(&key, t + 5000, "peers", line, sizeof(line), NULL);
	assert_int_equal(ap_verify(&key, &r, t + 6000, line, strcspn(line, "\n"), &m), AP_OK);
}

/* Security finding "agent channel" 1: every backend's agent held the one
 * key wglb signs with, so a server that was broken into could sign
 * "rehandshake" (or anything) for every other server. Now each backend's
 * key is derived from the master and its name; A's key is refused by B. */
static void test_key_per_backend(void **state)
{
	struct ap_key master, ka, kb, again;
	char line[AP_MAX_LINE], hex[2 * AP_KEY_LEN + 1];
	struct ap_msg m;
	static struct ap_replay rb;

	(void)state;
	for (unsigned i = 0; i < AP_KEY_LEN; i++)
		master.k[i] = (uint8_t)i;
	assert_int_equal(ap_key_derive(&master, "b1", &ka), 0);
	/* The same as Python's hashlib.blake2b(b"wglb agent key v2\0b1",
	 * key=master, digest_size=32): operators and tests derive it so. */
	sodium_bin2hex(hex, sizeof(hex), ka.k, sizeof(ka.k));
	assert_string_equal(hex, "c394a4e60856bfa4b51781b05372b12ee7c74a7f47949e07f56af7645c0fba5a");
	assert_int_equal(ap_key_derive(&master, "az-a-1", &ka), 0);
	assert_int_equal(ap_key_derive(&master, "az-a-2", &kb), 0);
	assert_int_equal(ap_key_derive(&master, "az-a-1", &again), 0);
	assert_memory_equal(ka.k, again.k, AP_KEY_LEN);
	assert_memory_not_equal(ka.k, kb.k, AP_KEY_LEN);
	assert_memory_not_equal(ka.k, master.k, AP_KEY_LEN);
	/* What backend A's agent could sign, sent to backend B. */
	memset(&rb, 0, sizeof(rb));
	ap_sign(&ka, 6000000, "to az-a-2 10.0.0.2:8081 rehandshake KEY 10.0.0.1:5000", line,
		sizeof(line), NULL);
	assert_int_equal(ap_verify(&kb, &rb, 6000000, line, strcspn(line, "\n"), &m), AP_BAD_MAC);
	/* Nor is the master an agent key (an agent given it by mistake). */
	ap_sign(&master, 6000000, "to az-a-2 10.0.0.2:8081 peers", line, sizeof(line), NULL);
	assert_int_equal(ap_verify(&kb, &rb, 6000000, line, strcspn(line, "\n"), &m), AP_BAD_MAC);
	ap_sign(&kb, 6000000, "to az-a-2 10.0.0.2:8081 peers", line, sizeof(line), NULL);
	assert_int_equal(ap_verify(&kb, &rb, 6000000, line, strcspn(line, "\n"), &m), AP_OK);
	/* Names as wglb.conf allows them, and nothing else. */
	assert_int_equal(ap_key_derive(&master, "", &ka), -EINVAL);
	assert_int_equal(ap_key_derive(&master, "a b", &ka), -EINVAL);
	assert_int_equal(ap_key_derive(&master, "a\nb", &ka), -EINVAL);
	assert_int_equal(ap_key_derive(&master, "0123456789012345678901234567890", &ka), 0);
	assert_int_equal(ap_key_derive(&master, "01234567890123456789012345678901", &ka), -EINVAL);
}

/* A report as the agent writes it: "re RN peers", lines, then the last. */
static int report(const struct ap_key *k, const char *rn, const char *const *lines, unsigned n,
		  const char *last, char *out, size_t size)
{
	char head[64];
	int len;

	snprintf(head, sizeof(head), "re %s peers", rn);
	len = ap_head(7000000, head, out, size, NULL);
	assert_true(len > 0);
	for (unsigned i = 0; i < n; i++)
		len += snprintf(out + len, size - (size_t)len, "\n%s", lines[i]);
	len += snprintf(out + len, size - (size_t)len, "\n%s", last);
	return ap_seal(k, out, (size_t)len, size);
}

/* The balancer's parser: the whole reply, bound to the request's nonce,
 * and a report whose count is right. */
static enum ap_verdict parse(const char *text, size_t len, const char *rn, unsigned *n)
{
	struct ap_msg m;
	enum ap_verdict v = ap_reply_verify(&key, 7000000, rn, text, len, &m);

	if (v != AP_OK)
		return v;
	if (m.n != 3 || strcmp(m.word[2], "peers"))
		return AP_BAD_FORMAT;
	return ap_report_check(&m, n);
}

static const char *const peers3[] = {
	"peer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= 10.0.0.1:40001 1",
	"peer BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBA= 10.0.0.1:40002 2",
	"peer CCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCCA= 10.0.0.1:40003 3",
};

/* Security finding "agent channel" 2: reports were signed line by line and
 * "end N" was not checked, so a man in the middle could drop the lines of
 * peers it wanted wglb to forget. One MAC covers the report now. */
static void test_report_signed_whole(void **state)
{
	char text[4096], cut[4096];
	const char *rn = "00112233aabbccdd";
	struct ap_msg m, line;
	unsigned n = 99, seen = 0;
	size_t pos = 0;
	int len;

	(void)state;
	len = report(&key, rn, peers3, 3, "end 3", text, sizeof(text));
	assert_true(len > 0 && text[len - 1] == '\n');
	assert_int_equal(parse(text, (size_t)len, rn, &n), AP_OK);
	assert_int_equal(n, 3);
	assert_int_equal(ap_reply_verify(&key, 7000000, rn, text, (size_t)len, &m), AP_OK);
	assert_int_equal(ap_report_check(&m, &n), AP_OK);
	while (ap_report_next(&m, &pos, &line)) {
		char joined[AP_MAX_LINE];
		assert_int_equal(line.n, 4);
		snprintf(joined, sizeof(joined), "%s %s %s %s", line.word[0], line.word[1],
			 line.word[2], line.word[3]);
		assert_string_equal(joined, peers3[seen]);
		seen++;
	}
	assert_int_equal(seen, 3);
	/* The second peer line cut out on the way. */
	{
		const char *l2 = strstr(text, "\npeer BBB"), *l3 = strstr(text, "\npeer CCC");
		size_t a = (size_t)(l2 - text);
		memcpy(cut, text, a);
		memcpy(cut + a, l3, (size_t)len - (size_t)(l3 - text));
		assert_int_not_equal(parse(cut, (size_t)len - (size_t)(l3 - l2), rn, &n), AP_OK);
	}
	/* Signed, but "end N" does not count the lines (too many, too few, none, junk). */
	len = report(&key, rn, peers3, 2, "end 3", text, sizeof(text));
	assert_int_equal(parse(text, (size_t)len, rn, &n), AP_BAD_FORMAT);
	len = report(&key, rn, peers3, 3, "end 2", text, sizeof(text));
	assert_int_equal(parse(text, (size_t)len, rn, &n), AP_BAD_FORMAT);
	len = report(&key, rn, peers3, 3, "peer DDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDDA= 10.0.0.1:4 4",
		     text, sizeof(text));
	assert_int_equal(parse(text, (size_t)len, rn, &n), AP_BAD_FORMAT);
	len = report(&key, rn, peers3, 3, "end 3x", text, sizeof(text));
	assert_int_equal(parse(text, (size_t)len, rn, &n), AP_BAD_FORMAT);
	len = report(&key, rn, peers3, 3, "end -1", text, sizeof(text));
	assert_int_equal(parse(text, (size_t)len, rn, &n), AP_BAD_FORMAT);
	len = report(&key, rn, peers3, 0, "end 0", text, sizeof(text));
	assert_int_equal(parse(text, (size_t)len, rn, &n), AP_OK);
	assert_int_equal(n, 0);
	/* A line that is not a peer line, or an empty one. */
	{
		static const char *const odd[] = {"peer X 10.0.0.1:1", "", "ok"};
		for (unsigned i = 0; i < 3; i++) {
			len = report(&key, rn, &odd[i], 1, "end 1", text, sizeof(text));
			assert_int_equal(parse(text, (size_t)len, rn, &n), AP_BAD_FORMAT);
		}
	}
	/* A good report, but for another request (an old one replayed). */
	len = report(&key, rn, peers3, 3, "end 3", text, sizeof(text));
	assert_int_equal(parse(text, (size_t)len, "00112233aabbccde", &n), AP_BAD_FORMAT);
	/* Signed by another backend's key. */
	len = report(&other, rn, peers3, 3, "end 3", text, sizeof(text));
	assert_int_equal(parse(text, (size_t)len, rn, &n), AP_BAD_MAC);
	/* Anything after the signed message, or no final newline. */
	len = report(&key, rn, peers3, 3, "end 3", text, sizeof(text));
	memcpy(text + len, "x\n", 3);
	assert_int_not_equal(parse(text, (size_t)len + 2, rn, &n), AP_OK);
	assert_int_not_equal(parse(text, (size_t)len - 1, rn, &n), AP_OK);
	/* The old format, each line signed on its own: refused. */
	{
		char old[AP_MAX_LINE * 2];
		int a = ap_sign(&key, 7000000, "re 00112233aabbccdd peer K 10.0.0.1:1 1", old,
				sizeof(old), NULL);
		ap_sign(&key, 7000000, "re 00112233aabbccdd end 1", old + a, sizeof(old) - (size_t)a,
			NULL);
		assert_int_not_equal(parse(old, strlen(old), rn, &n), AP_OK);
	}
}

/* Security finding "agent channel" 3: nothing of a refused key file stays. */
/* A peers request that tells clients, as wglb writes it. */
static int clients_request(const char *const *lines, unsigned n, const char *head_n,
			   char *out, size_t size)
{
	char head[128];
	int len;

	snprintf(head, sizeof(head), "to be1 10.0.0.2:8081 peers clients %s", head_n);
	len = ap_head(7000000, head, out, size, NULL);
	assert_true(len > 0);
	for (unsigned i = 0; i < n; i++)
		len += snprintf(out + len, size - (size_t)len, "\n%s", lines[i]);
	len += snprintf(out + len, size - (size_t)len, "\nend %u", n);
	return ap_seal(&key, out, (size_t)len, size);
}

static const char *const clients2[] = {
	"c 10.0.0.1:40001 198.51.100.11:51820",
	"c 10.0.0.1:40002 [2001:db8::7]:4242",
};

/* ap_request_end from the start, as for a request that arrived whole. */
static long end_of(const char *buf, size_t len)
{
	size_t scan = 0;

	return ap_request_end(buf, len, &scan);
}

/* The agent frames a request before it can verify it: one line, or for
 * "peers clients N" everything through the "end" line; the framing cannot
 * be made to swallow more, or wait forever, by a sender without the key. */
static void test_request_framing(void **state)
{
	char text[4096], more[8192];
	int len = clients_request(clients2, 2, "2", text, sizeof(text));
	struct ap_msg m;
	unsigned n = 0;

	(void)state;
	/* Whole, and in every shorter prefix: "need more" (0), never a cut. */
	assert_int_equal(end_of(text, (size_t)len), len);
	for (int cut = 0; cut < len; cut++)
		assert_int_equal(end_of(text, (size_t)cut), 0);
	/* A second request behind it is not part of it. */
	memcpy(more, text, (size_t)len);
	memcpy(more + len, text, (size_t)len);
	assert_int_equal(end_of(more, 2 * (size_t)len), len);
	/* It verifies as a request and its lines check. */
	assert_int_equal(ap_verify(&key, NULL, 7000000, text, (size_t)len - 1, &m), AP_OK);
	assert_int_equal(m.n, 6);
	assert_int_equal(ap_clients_check(&m, &n), AP_OK);
	assert_int_equal(n, 2);
	/* A one-line request ends at its newline, even with lines after it. */
	len = ap_sign(&key, 7000000, "to be1 10.0.0.2:8081 peers", text, sizeof(text), NULL);
	assert_int_equal(end_of(text, (size_t)len), len);
	memcpy(text + len, "c 1.2.3.4:5 6.7.8.9:10\nend 1\n", 29);
	assert_int_equal(end_of(text, (size_t)len + 29), len);
	/* No newline within a line's length: never a request. */
	memset(more, 'a', sizeof(more));
	assert_int_equal(end_of(more, AP_MAX_LINE - 1), 0);
	assert_int_equal(end_of(more, AP_MAX_LINE), -1);
	/* A multi-line head, then a line too long to be one. */
	len = snprintf(more, sizeof(more), "v2 1 0011223344556677 to be1 x peers clients 1\n");
	memset(more + len, 'c', AP_MAX_LINE);
	more[len + AP_MAX_LINE] = '\n';
	assert_int_equal(end_of(more, (size_t)len + AP_MAX_LINE + 1), -1);
	/* ... or a last line that grows past one without ending. */
	assert_int_equal(end_of(more, (size_t)len + AP_MAX_LINE - 1), 0);
	assert_int_equal(end_of(more, (size_t)len + AP_MAX_LINE), -1);
}

/* A request that arrives a byte at a time is framed where it ends, and
 * each call resumes where the last stopped (a keyless sender trickling
 * newlines costs each byte one look, not a rescan of all before it). */
static void test_request_framing_resumes(void **state)
{
	char text[4096];
	int len = clients_request(clients2, 2, "2", text, sizeof(text));
	size_t scan = 0, last = 0;

	(void)state;
	for (int cut = 1; cut < len; cut++) {
		assert_int_equal(ap_request_end(text, (size_t)cut, &scan), 0);
		assert_true(scan >= last && scan <= (size_t)cut); /* never back, never past the data */
		last = scan;
	}
	assert_int_equal(ap_request_end(text, (size_t)len, &scan), len);
}

/* The counts must agree and every line must have the shape; a signed
 * request that lies about N, or carries another kind of line, is refused. */
static void test_clients_check(void **state)
{
	static const char *const bad_line[] = {"c 10.0.0.1:40001"};
	static const char *const peer_line[] = {"peer AAAA 10.0.0.1:1 1"};
	char text[4096];
	struct ap_msg m;
	unsigned n;
	int len;

	(void)state;
	len = clients_request(clients2, 2, "3", text, sizeof(text)); /* head says 3, two lines */
	assert_int_equal(ap_verify(&key, NULL, 7000000, text, (size_t)len - 1, &m), AP_OK);
	assert_int_equal(ap_clients_check(&m, &n), AP_BAD_FORMAT);
	len = clients_request(bad_line, 1, "1", text, sizeof(text));
	assert_int_equal(ap_verify(&key, NULL, 7000000, text, (size_t)len - 1, &m), AP_OK);
	assert_int_equal(ap_clients_check(&m, &n), AP_BAD_FORMAT);
	len = clients_request(peer_line, 1, "1", text, sizeof(text));
	assert_int_equal(ap_verify(&key, NULL, 7000000, text, (size_t)len - 1, &m), AP_OK);
	assert_int_equal(ap_clients_check(&m, &n), AP_BAD_FORMAT);
	len = clients_request(clients2, 2, "x2", text, sizeof(text));
	assert_int_equal(ap_verify(&key, NULL, 7000000, text, (size_t)len - 1, &m), AP_OK);
	assert_int_equal(ap_clients_check(&m, &n), AP_BAD_FORMAT);
	/* And the lines it yields are the lines sent. */
	len = clients_request(clients2, 2, "2", text, sizeof(text));
	assert_int_equal(ap_verify(&key, NULL, 7000000, text, (size_t)len - 1, &m), AP_OK);
	assert_int_equal(ap_clients_check(&m, &n), AP_OK);
	{
		struct ap_msg line;
		size_t pos = 0;
		assert_true(ap_clients_next(&m, &pos, &line));
		assert_string_equal(line.word[2], "198.51.100.11:51820");
		assert_true(ap_clients_next(&m, &pos, &line));
		assert_string_equal(line.word[1], "10.0.0.1:40002");
		assert_false(ap_clients_next(&m, &pos, &line));
	}
}

/* A batch of re-handshakes, as wglb writes it: framed through its "end"
 * line, checked as a list of "r KEY ENDPOINT" whose count the head states;
 * the agent's reply is "moved" with one "r OUTCOME" line each. */
static void test_moves(void **state)
{
	static const char *const lines[] = {
		"r AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= 10.0.0.1:40001",
		"r AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8= [fd00::1]:40002",
	};
	static const char *const wrong[] = {"c 10.0.0.1:40001 198.51.100.11:51820"};
	char text[4096], head[128];
	struct ap_msg m, line;
	size_t pos = 0;
	unsigned n;
	int len;

	(void)state;
	for (int k = 0; k < 3; k++) {
		const char *const *l = k == 2 ? wrong : lines;
		unsigned cnt = k == 2 ? 1 : 2;
		snprintf(head, sizeof(head), "to be1 10.0.0.2:8081 rehandshake peers %u", k == 1 ? 3 : cnt);
		len = ap_head(7000000, head, text, sizeof(text), NULL);
		for (unsigned i = 0; i < cnt; i++)
			len += snprintf(text + len, sizeof(text) - (size_t)len, "\n%s", l[i]);
		len += snprintf(text + len, sizeof(text) - (size_t)len, "\nend %u", cnt);
		len = ap_seal(&key, text, (size_t)len, sizeof(text));
		assert_int_equal(end_of(text, (size_t)len), len);
		for (int cut = 0; cut < len; cut++)
			assert_int_equal(end_of(text, (size_t)cut), 0);
		assert_int_equal(ap_verify(&key, NULL, 7000000, text, (size_t)len - 1, &m), AP_OK);
		/* 0: whole; 1: the head lies about N; 2: a line of another kind. */
		assert_int_equal(ap_moves_check(&m, &n), k ? AP_BAD_FORMAT : AP_OK);
		assert_int_equal(ap_clients_check(&m, &n), AP_BAD_FORMAT);
		if (k)
			continue;
		assert_int_equal(n, 2);
		assert_true(ap_moves_next(&m, &pos, &line));
		assert_string_equal(line.word[2], "10.0.0.1:40001");
		assert_true(ap_moves_next(&m, &pos, &line));
		assert_string_equal(line.word[2], "[fd00::1]:40002");
		assert_false(ap_moves_next(&m, &pos, &line));
	}
	/* The reply. */
	len = ap_head(7000000, "re 00112233aabbccdd moved", text, sizeof(text), NULL);
	len += snprintf(text + len, sizeof(text) - (size_t)len, "\nr ok\nr unknown_peer\nend 2");
	len = ap_seal(&key, text, (size_t)len, sizeof(text));
	assert_int_equal(ap_reply_verify(&key, 7000000, "00112233aabbccdd", text, (size_t)len, &m),
			 AP_OK);
	assert_int_equal(ap_moved_check(&m, &n), AP_OK);
	assert_int_equal(n, 2);
	pos = 0;
	assert_true(ap_moved_next(&m, &pos, &line));
	assert_string_equal(line.word[1], "ok");
	assert_true(ap_moved_next(&m, &pos, &line));
	assert_string_equal(line.word[1], "unknown_peer");
	assert_false(ap_moved_next(&m, &pos, &line));
	assert_int_equal(ap_report_check(&m, &n), AP_BAD_FORMAT);
}

static void test_key_load(void **state)
{
	char path[] = "/tmp/test_agentproto_keyXXXXXX";
	struct ap_key k;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", 45), 45);
	assert_int_equal(ap_key_load(path, &k), 0);
	assert_int_equal(k.k[31], 31);
	assert_int_equal(ftruncate(fd, 0), 0);
	assert_int_equal(pwrite(fd, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==\n", 45, 0), 45);
	assert_int_equal(ap_key_load(path, &k), -EINVAL); /* 31 bytes */
	for (unsigned i = 0; i < AP_KEY_LEN; i++)
		assert_int_equal(k.k[i], 0);
	close(fd);
	unlink(path);
	assert_int_equal(ap_key_load(path, &k), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_forged_and_tampered),
		cmocka_unit_test(test_stale),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_signed_but_malformed),
		cmocka_unit_test(test_replay_window),
		cmocka_unit_test(test_key_per_backend),
		cmocka_unit_test(test_report_signed_whole),
		cmocka_unit_test(test_key_load),
		cmocka_unit_test(test_request_framing),
		cmocka_unit_test(test_request_framing_resumes),
		cmocka_unit_test(test_clients_check),
		cmocka_unit_test(test_moves),
	};
	if (sodium_init() < 0)
		return 1;
	randombytes_buf(key.k, sizeof(key.k));
	randombytes_buf(other.k, sizeof(other.k));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
