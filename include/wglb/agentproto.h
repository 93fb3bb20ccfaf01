/* SPDX-License-Identifier: MIT */
/*
 * The balancer <-> backend agent channel (instant failover). A message is
 * "v2 TIME_MS NONCE WORDS..." then, in a reply, more lines ("\nLINE"),
 * then " MAC\n": MAC is libsodium's crypto_auth (HMAC-SHA-512-256) over
 * every byte before it, so a multi-line message (a peers report, or a
 * peers request that tells clients) is signed whole and no line can be
 * dropped, added or moved unseen. NONCE is 16
 * random hex digits, TIME_MS the sender's Unix time in ms. The receiver
 * refuses a bad MAC, a timestamp outside +-30 s, one from before the
 * receiver started (a capture replayed after a restart), and a nonce it
 * has seen in the window (replay).
 *
 * Keys: wglb holds a master secret; each backend's key is derived from it
 * and the backend's name in wglb.conf (ap_key_derive), and its agent holds
 * only that derived key. A server that is broken into gives away its own
 * key, which no other agent accepts. Requests still name their target
 * ("to NAME ADDR:PORT ..."): a misnamed agent says so instead of
 * refusing a MAC. Pure code: unit-tested and fuzzed.
 */
#ifndef WGLB_AGENTPROTO_H
#define WGLB_AGENTPROTO_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AP_VERSION    "v2" /* v1 signed reports line by line */
#define AP_KEY_LEN    crypto_auth_KEYBYTES /* 32 */
#define AP_KEY_CONTEXT "wglb agent key v2" /* the derivation's domain, NUL-terminated in its input */
#define AP_NAME_MAX   32 /* a backend name with its NUL (BACKEND_NAME_MAX) */
#define AP_MAX_LINE   512
#define AP_MAX_MSG    (1 << 20) /* a whole message: a peers report, or the clients told */
#define AP_MAX_WORDS  6
#define AP_SKEW_MS    30000
#define AP_WINDOW_MS  (2 * AP_SKEW_MS) /* a nonce must be remembered this long */
#define AP_REPLAY_N   16384 /* nonces: the whole window at 270 requests/s (wglb sends <= 200) */

struct ap_key {
	uint8_t k[AP_KEY_LEN];
};

/* Read a key file: 32 bytes as 64 hex digits or 44 base64 characters (wg
 * genkey). The text read is wiped; on failure so is *key. 0 or -errno. */
int ap_key_load(const char *path, struct ap_key *key);

/* The key of the backend called name (1-31 of A-Z a-z 0-9 . _ -, as in
 * wglb.conf): keyed BLAKE2b-256 (crypto_generichash) under the master over
 * AP_KEY_CONTEXT, its NUL and the name. 0, or -EINVAL for a bad name. */
int ap_key_derive(const struct ap_key *master, const char *name, struct ap_key *out);
bool ap_name_valid(const char *name);

/* Start a message in out: "v2 TIME NONCE words" (no newline); the nonce
 * chosen goes to nonce (17 bytes) when not NULL. Returns the length or -ENOSPC.
 * More lines may follow ("\nLINE"); ap_seal ends it. */
int ap_head(uint64_t now_ms, const char *words, char *out, size_t size, char *nonce);
/* Append " MAC\n" over out[0..len). Returns the new length or -ENOSPC. */
int ap_seal(const struct ap_key *key, char *out, size_t len, size_t size);
/* ap_head + ap_seal: a one-line message. */
int ap_sign(const struct ap_key *key, uint64_t now_ms, const char *words, char *out, size_t size,
	    char *nonce);

/* AP_REPLAY also when the memory is full of nonces still inside the window
 * (more requests than it can remember: refusing is safe, forgetting is not). */
enum ap_verdict { AP_OK, AP_BAD_FORMAT, AP_BAD_MAC, AP_STALE, AP_REPLAY };

struct ap_replay {
	uint64_t nonce[AP_REPLAY_N];
	uint64_t when[AP_REPLAY_N];
	unsigned next;
	uint64_t not_before_ms; /* the receiver's start: older requests are refused */
};

struct ap_msg {
	char buf[AP_MAX_LINE];
	const char *word[AP_MAX_WORDS];
	int n;
	uint64_t time_ms, nonce;
	/* The lines after the first, up to the MAC's space ("" for a one-line
	 * message): in the text given to ap_verify, which must outlive this. */
	const char *body;
	size_t body_len;
};

/* Check a received message (without its final newline). On AP_OK
 * msg->word[] holds the first line's words between the nonce and the
 * MAC, msg->body the other lines. replay may be NULL (replies). */
enum ap_verdict ap_verify(const struct ap_key *key, struct ap_replay *replay, uint64_t now_ms,
			  const char *text, size_t len, struct ap_msg *msg);
const char *ap_verdict_name(enum ap_verdict v);

/* A whole reply to the request whose nonce is rnonce (16 hex digits):
 * one message, ending in its only newline, whose words start "re RNONCE".
 * AP_BAD_FORMAT for another request's reply. */
enum ap_verdict ap_reply_verify(const struct ap_key *key, uint64_t now_ms, const char *rnonce,
				const char *text, size_t len, struct ap_msg *msg);

/* A verified peers report: "re NONCE peers", lines "peer KEY ENDPOINT
 * HANDSHAKE_S", then "end N". AP_OK, with *n the number of peer lines,
 * when every line has that shape and N counts them; else AP_BAD_FORMAT.
 * The caller checks NONCE against its request. */
enum ap_verdict ap_report_check(const struct ap_msg *m, unsigned *n);
/* The next peer line's words into line (word[0] "peer"); *pos starts at 0.
 * False after the last (only after ap_report_check said AP_OK). */
bool ap_report_next(const struct ap_msg *m, size_t *pos, struct ap_msg *line);

/* A verified peers request that tells the agent who is behind each flow
 * (the words end "peers clients N"; lines "c ENDPOINT CLIENT": the flow's
 * address as the backend sees it and the client's own), then "end N".
 * AP_OK with *n the number of client lines when every line has that shape
 * and both counts agree; else AP_BAD_FORMAT. */
enum ap_verdict ap_clients_check(const struct ap_msg *m, unsigned *n);
bool ap_clients_next(const struct ap_msg *m, size_t *pos, struct ap_msg *line);

/* A verified batch of re-handshakes (the words end "rehandshake peers N";
 * lines "r KEY ENDPOINT": the peer and the flow's address it is to
 * initiate toward), then "end N"; as ap_clients_check. The reply is
 * "re NONCE moved", one line "r ok|unknown_peer|wg" per request line in
 * order, then "end N": ap_moved_check / ap_moved_next. */
enum ap_verdict ap_moves_check(const struct ap_msg *m, unsigned *n);
bool ap_moves_next(const struct ap_msg *m, size_t *pos, struct ap_msg *line);
enum ap_verdict ap_moved_check(const struct ap_msg *m, unsigned *n);
bool ap_moved_next(const struct ap_msg *m, size_t *pos, struct ap_msg *line);

/* Framing on the agent's side: the length of the first whole request in
 * buf[0..len) (through its last newline), 0 when more must be read, -1
 * when it can no longer be one (a line over AP_MAX_LINE, a message over
 * AP_MAX_MSG). A request is one line, except "... peers clients N" and
 * "... rehandshake peers N", whose lines end with the one that starts
 * "end ". *scan (0 to start) keeps where the next call resumes, so a
 * request read in many pieces is scanned once. Framing only: the caller still verifies what it returns. */
long ap_request_end(const char *buf, size_t len, size_t *scan);

#endif
