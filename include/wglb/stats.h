/* SPDX-License-Identifier: MIT */
/* Counters: types only, shared by the loop (which writes them) and the
 * control socket (which reads them). One named counter per drop path. */
#ifndef WGLB_STATS_H
#define WGLB_STATS_H

#include <stdint.h>

/* Drop reasons. The first four mirror enum wg_drop (same order). */
enum drop {
	DROP_TOO_SHORT,
	DROP_BAD_RESERVED,
	DROP_UNKNOWN_TYPE,
	DROP_BAD_LENGTH,
	DROP_TRUNCATED,       /* larger than a receive buffer */
	DROP_NOT_ALLOWED,     /* source outside every allow = prefix */
	DROP_NO_BACKEND,      /* no backend at all to send to */
	DROP_TABLE_FULL,      /* max_flows reached, every flow confirmed */
	DROP_NO_SOCKET,       /* could not open an upstream socket (fd or port exhaustion) */
	DROP_SEND_ERROR,      /* the kernel refused the send (buffer full, unreachable) */
	DROP_STALE,           /* reply for a flow that has since closed */
	DROP_BAD_MAC1,        /* handshake not made for these servers (server_public_key) */
	DROP_RATE_LIMITED,    /* proven initiations from one source above handshake_rate,
			       * or a session index roaming more than once a second */
	DROP_NEEDS_COOKIE,    /* handshake without a valid mac2 when cookies are asked for:
			       * answered with wglb's cookie reply, not forwarded */
	DROP_UNPROVEN,        /* under load: transport from an unknown source, unknown index */
	DROP_NO_FLOW,         /* a response or cookie reply from a source with no flow: both
			       * answer a message sent on a flow, so they open nothing */
	DROP_COOKIE_CAPPED,   /* wanted a cookie, left unanswered: its source address had its
			       * share of cookie replies (reflection at a spoofed victim) */
	DROP_COOKIE_UNSENT,   /* wanted a cookie, left unanswered: the send groups replies may
			       * use were taken (forwarding keeps the rest) */
	DROP_BAD_SOURCE,      /* client_address = preserve: a source no client has (not
			       * unicast, port 0, a backend's or this balancer's own address) */
	DROP__COUNT,
};

enum repin {
	REPIN_INITIATION, /* initiation on a draining or unusable backend */
	REPIN_DOWN,       /* backend marked down: flows moved at once */
	REPIN_DISABLED,   /* operator disabled the backend */
	REPIN_REMOVED,    /* backend removed by reload or at run time */
	REPIN_CHANGED,    /* backend's address changed on reload */
	REPIN_DRAINED,    /* operator drained the backend "now" */
	REPIN__COUNT,
};

/* Directions: in = client -> backend, out = backend -> client. */
struct wglb_stats {
	uint64_t pkts_in, bytes_in, pkts_out, bytes_out;
	uint64_t fwd_in, fwd_out; /* datagrams handed to the kernel to send */
	uint64_t sends_in, sends_out; /* send calls carrying them (fewer: GSO batches) */
	uint64_t recvs_in, recvs_out; /* receives that carried the received ones (fewer: GRO trains) */
	uint64_t gso_split;           /* datagrams of a refused GSO send, sent again one by one */
	uint64_t msgs_in[5], msgs_out[5]; /* by WireGuard type, index 1..4 */
	uint64_t drops_in[DROP__COUNT], drops_out[DROP__COUNT];
	uint64_t repins[REPIN__COUNT];
	uint64_t flows_new, flows_expired, flows_evicted, flows_closed;
	uint64_t flows_roamed; /* new flows sent to their session's backend by its index */
	uint64_t flows_confirmed; /* clients that proved receipt (echoed the backend's index) */
	uint64_t flows_preserved; /* new flows sent from the client's own address (client_address) */
	uint64_t preserve_fallback; /* new flows that could not be and went from the balancer's */
	uint64_t flows_demoted;   /* confirmed flows whose backend fell silent (backend_silence) */
	uint64_t cookies_sent;    /* cookie replies wglb sent (handshake_cookies) */
	uint64_t mac2_valid, mac2_invalid; /* handshakes whose mac2 proved / failed to prove the source */
	uint64_t failopen;   /* times the pool fell back to every non-disabled backend */
	uint64_t enobufs;    /* receive paused: no free buffer (back-pressure) */
	uint64_t ring_full;  /* no submission queue entry to be had: that operation failed or waits */
	uint64_t cancel_failed; /* an upstream receive that could not be cancelled (its socket lingers) */
	uint64_t move_errors;   /* flows closed: their socket could not follow their backend's new address */
	/* Of pkts and bytes in and out: transport the fast path forwarded in
	 * the kernel (folded in when wglb looks), never seen by a socket. */
	uint64_t fast_pkts_in, fast_bytes_in, fast_pkts_out, fast_bytes_out;
	uint64_t fast_refused; /* confirmed flows the map would not take (full, mixed families) */
	uint64_t rebuilds;   /* Maglev table rebuilds */
	uint64_t last_rebuild_us;
};

struct backend_stats {
	uint64_t pkts_in, bytes_in, pkts_out, bytes_out;
	uint64_t msgs_in[5], msgs_out[5];
	uint64_t flows_new, repins_in, repins_out;
	uint64_t icmp_unreach;     /* ECONNREFUSED on an upstream socket */
	uint64_t init_unanswered;  /* initiations with no response after 5 s */
	uint64_t failed_probes;
};

struct listener_stats {
	uint64_t pkts_in, bytes_in, pkts_out, bytes_out;
};

const char *stats_drop_name(enum drop d);
const char *stats_repin_name(enum repin r);

#endif
