/* SPDX-License-Identifier: MIT */
/*
 * A WireGuard client's side of the protocol, for the fleet emulator
 * (bench/fleet.c): the Noise_IKpsk2 handshake as an initiator (with mac1,
 * and mac2 once a cookie reply has come), the cookie reply, and transport
 * data both ways. Pure: no sockets, no clocks (the caller passes the time),
 * no allocation. Crypto from libsodium (X25519, ChaCha20-Poly1305,
 * XChaCha20-Poly1305) and libb2 (BLAKE2s), as the WireGuard paper and
 * wireguard-go's device/noise-protocol.go define it.
 */
#ifndef WGLB_NOISE_H
#define WGLB_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NOISE_KEY_LEN 32
#define NOISE_MAC_LEN 16

/* Our identity and the server's, shared by every handshake of one client. */
struct noise_peer {
	uint8_t priv[NOISE_KEY_LEN], pub[NOISE_KEY_LEN]; /* the client's static pair */
	uint8_t server_pub[NOISE_KEY_LEN];
	uint8_t psk[NOISE_KEY_LEN];                      /* zeros: none */
	uint8_t mac1_key[NOISE_KEY_LEN];                 /* HASH("mac1----" || server_pub) */
	uint8_t own_mac1_key[NOISE_KEY_LEN];             /* HASH("mac1----" || pub): responses */
	uint8_t cookie_key[NOISE_KEY_LEN];               /* HASH("cookie--" || server_pub) */
	uint8_t ss[NOISE_KEY_LEN];                       /* DH(priv, server_pub), once */
	/* The cookie a cookie reply gave, and when (ms); valid 120 s. */
	uint8_t cookie[NOISE_MAC_LEN];
	uint64_t cookie_ms;
	bool has_cookie;
	uint8_t last_mac1[NOISE_MAC_LEN]; /* of the last initiation: a cookie reply's AD */
};

/* One handshake in flight, then one session. */
struct noise_hs {
	uint32_t local_index;
	uint8_t e_priv[NOISE_KEY_LEN], e_pub[NOISE_KEY_LEN];
	uint8_t c[NOISE_KEY_LEN], h[NOISE_KEY_LEN];
	/* As responder: the initiator's ephemeral and index. */
	uint8_t remote_e[NOISE_KEY_LEN];
	uint32_t remote_index;
};

struct noise_session {
	uint32_t local_index, remote_index;
	uint8_t send_key[NOISE_KEY_LEN], recv_key[NOISE_KEY_LEN];
	uint64_t send_counter;
	uint64_t recv_max;    /* highest counter received + 1 (0: none yet) */
	uint64_t recv_window; /* bit i: counter recv_max - 1 - i was received */
	bool valid;
};

/* Clamp priv in place and derive its public key (X25519). */
void noise_keypair(uint8_t priv[NOISE_KEY_LEN], uint8_t pub[NOISE_KEY_LEN]);

/* Fill p from a static private key (clamped here) and the server's public
 * key; psk may be NULL. 0, or -1 when a DH result is all zeros. */
int noise_peer_init(struct noise_peer *p, const uint8_t priv[NOISE_KEY_LEN],
		    const uint8_t server_pub[NOISE_KEY_LEN], const uint8_t *psk);

/* Build a 148-byte initiation into out with a fresh ephemeral (e_seed: 32
 * bytes of randomness, or NULL for libsodium's), local_index and the
 * TAI64N time of unix_ns; mac2 from the cookie if one is under 120 s old
 * at now_ms. 0 or -1. */
int noise_initiation(struct noise_peer *p, struct noise_hs *hs, uint32_t local_index,
		     uint64_t unix_ns, uint64_t now_ms, const uint8_t *e_seed, uint8_t out[148]);

/* Consume a 92-byte response to hs: on success s holds the session's keys
 * (the initiator's: send first) and 0 is returned; -1 for anything that
 * does not verify (another handshake's index, a bad mac1 or AEAD tag). */
int noise_response(const struct noise_peer *p, const struct noise_hs *hs, const uint8_t *msg,
		   size_t len, struct noise_session *s);

/* The server initiates (wglb's instant failover asks it to): consume its
 * 148-byte initiation into hs (mac1 keyed by our key, its static key the
 * server's, its TAI64N timestamp after *last_ts, which it then becomes).
 * 0 or -1. */
int noise_consume_initiation(const struct noise_peer *p, const uint8_t *msg, size_t len,
			     uint8_t last_ts[12], struct noise_hs *hs);
/* Answer it: the 92-byte response into out, with a fresh ephemeral (e_seed
 * as above) and local_index; s gets the responder's keys. The session may
 * send only once the initiator's first transport message has arrived on
 * it. Like an initiation, it carries mac2 from a fresh cookie (a server
 * under load asks for one) and is what a cookie reply answers. 0 or -1. */
int noise_build_response(struct noise_peer *p, struct noise_hs *hs, uint32_t local_index,
			 uint64_t now_ms, const uint8_t *e_seed, uint8_t out[92], struct noise_session *s);

/* Consume a 64-byte cookie reply to our last initiation: the cookie is kept
 * for the next initiation's mac2. 0 or -1. */
int noise_cookie_reply(struct noise_peer *p, const uint8_t *msg, size_t len, uint64_t now_ms);

/* Encrypt payload (len bytes, 0 for a keepalive; padded to 16 here) as a
 * transport message into out (room: 32 + len + 15). Returns its length, or
 * -1 past the counter's limit. */
int noise_encrypt(struct noise_session *s, const uint8_t *payload, size_t len, uint8_t *out,
		  size_t room);
/* Decrypt a transport message for s into out (room >= len - 32): the
 * plaintext's length (0: a keepalive), or -1 for a bad tag, a replayed or
 * too old counter, or another session's index. */
int noise_decrypt(struct noise_session *s, const uint8_t *msg, size_t len, uint8_t *out,
		  size_t room);

/* The primitives, for the known-answer tests. */
void noise_hash(uint8_t out[32], const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
void noise_hmac(uint8_t out[32], const uint8_t key[32], const uint8_t *in, size_t len);
void noise_kdf(const uint8_t key[32], const uint8_t *in, size_t len, uint8_t *t1, uint8_t *t2,
	       uint8_t *t3);
void noise_tai64n(uint64_t unix_ns, uint8_t out[12]);

#endif
