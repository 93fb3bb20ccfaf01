// SPDX-License-Identifier: MIT
/*
 * wglb-fleet: N WireGuard clients in one process, for the bench. Each has
 * its own key pair (derived from a seed, so a helper can add them to the
 * servers first), its own UDP source port and its own tunnel address; each
 * does real Noise_IKpsk2 handshakes (noise.h) through the balancer, with
 * WireGuard's retry (5 s), rekey (120 s) and "no reply for 15 s" timers,
 * and pings the servers' tunnel address through the tunnel (ICMP echo
 * inside transport messages, encrypted and decrypted for real).
 *
 *   wglb-fleet --server-pub KEY --target ADDR:PORT [--clients N] [--bind ADDR]
 *              [--sources 1] [--port-base 42000] [--seed HEX] [--tunnel-net 10.99] [--server-ip 10.99.0.1]
 *              [--interval-ms 200] [--ramp N] [--duration S] [--after-event S]
 *              [--json FILE] [--ready FILE]
 *   wglb-fleet --clients N [--seed HEX] [--tunnel-net 10.99] --peers
 *
 * --peers prints "PUBKEY TUNNEL_IP/32" a client, for bench/fleet-peers.
 * Client i sends from --bind + (i mod --sources) (consecutive addresses the
 * caller has put on an interface: a fleet's clients have addresses of
 * their own, and wglb limits handshakes per source) and port --port-base + i.
 * SIGUSR1 marks an event (a backend killed, a drain, a restart): a client
 * that then loses a ping is dark from that ping's sending until the first
 * reply to a ping sent after it (so it is quantised by --interval-ms);
 * --after-event S ends the run S seconds later. At the end (the duration,
 * or SIGINT/SIGTERM) one JSON object: handshakes and their latency, pings and round trips, and
 * the dark times, and one line "clients=N recovered=K dark_p50=S
 * dark_p99=S dark_max=S" for scripts. --ready FILE is created once every
 * client has had a session (the moment a scenario may cause its event).
 * Every loop is bounded: by the duration, and the clients by --clients.
 */
#include "wglb/addr.h"
#include "wglb/noise.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS      20000
#define REKEY_TIMEOUT_MS 5000   /* no response: a new initiation */
#define REKEY_AFTER_MS   120000 /* a session this old: a new handshake */
#define DEAD_AFTER_MS    15000  /* KEEPALIVE + REKEY_TIMEOUT with no reply: a new handshake */
#define PING_SLOTS       64

struct client {
	int fd;
	struct noise_peer peer;
	struct noise_hs hs;
	struct noise_session cur, prev;
	/* A session the server initiated (instant failover): used once the
	 * server's first transport message arrives on it. */
	struct noise_session next, next2; /* the latest server handshake, and the one before */
	uint8_t last_ts[12]; /* the server's last initiation's TAI64N */
	bool cur_initiator;  /* we began cur: we rekey it after 120 s */
	bool hs_pending, started;
	uint64_t hs_sent_ms, hs_first_ms; /* this attempt; the first of the series */
	uint64_t retry_ms;                /* the next attempt, with WireGuard's jitter */
	uint64_t session_ms;              /* when cur began */
	uint64_t last_rx_ms, last_ping_ms;
	uint16_t seq;
	uint64_t ping_sent_ms[PING_SLOTS];
	uint32_t tunnel_ip; /* host order */
	/* The oldest ping not yet answered (0: none). After the event, the
	 * first ping that was lost (a later one was answered first) starts
	 * the client's dark time; the first reply to a ping sent after it
	 * ends it. */
	uint64_t unanswered_ms, dark_from_ms;
	uint64_t session_back_ms; /* the first new session after the event (0: none) */
	uint64_t dark_ms;
	bool recovered;
	uint32_t handshakes, retries;
};

struct fleet {
	struct client *c;
	unsigned n;
	int ep;
	union wglb_sa target;
	socklen_t target_len;
	uint32_t server_ip;
	unsigned interval_ms, ramp;
	uint64_t start_ms, event_ms;
	uint32_t next_index;
	/* results */
	uint64_t hs_ok, hs_sent, cookies, pings_sent, pings_back, bad, server_hs;
	uint64_t bad_type[5]; /* received and not taken, by message type (0: other) */
	double *hs_lat, *rtt;
	size_t n_hs_lat, cap_hs_lat, n_rtt, cap_rtt;
	/* First sessions: how many came from a client's first initiation and
	 * when the last of those did; each client's time to its first session
	 * (retries after a cookie reply or a loss included). */
	uint64_t first_try, first_try_last_ms;
	double *up;
	size_t n_up, cap_up;
	unsigned with_session;
	const char *ready;
};

static volatile sig_atomic_t stop, event;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		event = 1;
	else
		stop = 1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t unix_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void push(double **v, size_t *n, size_t *cap, double x)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 1024;
		double *nv = realloc(*v, nc * sizeof(double));
		if (!nv)
			return;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = x;
}

/* Client i's static private key: BLAKE2s(seed || i), so that --peers and a
 * run with the same seed agree. */
static void client_key(const uint8_t seed[32], unsigned i, uint8_t priv[32])
{
	uint8_t idx[4] = {(uint8_t)i, (uint8_t)(i >> 8), (uint8_t)(i >> 16), (uint8_t)(i >> 24)};

	noise_hash(priv, seed, 32, idx, 4);
}

static uint32_t tunnel_ip(uint32_t net16, unsigned i)
{
	/* NET.X.Y from NET.1.1 on: .0 and .255 skipped, NET.0.0/24 left to servers */
	return net16 | (uint32_t)(1 + i / 254) << 8 | (uint32_t)(1 + i % 254);
}

static uint16_t csum(const uint8_t *p, size_t len)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* An ICMP echo request from the client's tunnel address to the server's. */
static size_t echo(const struct fleet *f, const struct client *c, unsigned id, uint16_t seq,
		   uint8_t *pkt)
{
	size_t len = 20 + 8 + 8;
	uint16_t sum;

	memset(pkt, 0, len);
	pkt[0] = 0x45;
	pkt[2] = (uint8_t)(len >> 8);
	pkt[3] = (uint8_t)len;
	pkt[8] = 64;
	pkt[9] = 1; /* ICMP */
	for (int k = 0; k < 4; k++) {
		pkt[12 + k] = (uint8_t)(c->tunnel_ip >> (24 - 8 * k));
		pkt[16 + k] = (uint8_t)(f->server_ip >> (24 - 8 * k));
	}
	sum = csum(pkt, 20);
	pkt[10] = (uint8_t)(sum >> 8);
	pkt[11] = (uint8_t)sum;
	pkt[20] = 8; /* echo request */
	pkt[24] = (uint8_t)(id >> 8);
	pkt[25] = (uint8_t)id;
	pkt[26] = (uint8_t)(seq >> 8);
	pkt[27] = (uint8_t)seq;
	sum = csum(pkt + 20, len - 20);
	pkt[22] = (uint8_t)(sum >> 8);
	pkt[23] = (uint8_t)sum;
	return len;
}

static void send_initiation(struct fleet *f, struct client *c, uint64_t now)
{
	uint8_t msg[148];

	if (noise_initiation(&c->peer, &c->hs, ++f->next_index, unix_ns(), now, NULL, msg) < 0 ||
	    send(c->fd, msg, sizeof(msg), MSG_DONTWAIT) != (ssize_t)sizeof(msg)) {
		f->bad++;
		return;
	}
	if (!c->hs_pending)
		c->hs_first_ms = now;
	else
		c->retries++;
	c->hs_pending = true;
	c->hs_sent_ms = now;
	/* REKEY_TIMEOUT plus up to a third of a second, as WireGuard: retries
	 * after a cookie storm do not come back in lockstep. */
	c->retry_ms = now + REKEY_TIMEOUT_MS + randombytes_uniform(334);
	f->hs_sent++;
}

static void send_ping(struct fleet *f, struct client *c, unsigned id, uint64_t now)
{
	uint8_t pkt[64], msg[128];
	int len;

	c->seq++;
	len = noise_encrypt(&c->cur, pkt, echo(f, c, id, c->seq, pkt), msg, sizeof(msg));
	if (len < 0 || send(c->fd, msg, (size_t)len, MSG_DONTWAIT) != len) {
		f->bad++;
		return;
	}
	c->ping_sent_ms[c->seq % PING_SLOTS] = now;
	if (!c->unanswered_ms)
		c->unanswered_ms = now;
	c->last_ping_ms = now;
	f->pings_sent++;
}

/* A decrypted packet: an echo reply to one of our pings? */
static void on_packet(struct fleet *f, struct client *c, unsigned id, const uint8_t *p, int len,
		      uint64_t now)
{
	uint16_t seq;
	uint64_t sent;

	c->last_rx_ms = now; /* any authenticated packet: the session lives */
	if (len < 28 || (p[0] >> 4) != 4 || p[9] != 1 || p[20] != 0 ||
	    ((unsigned)p[24] << 8 | p[25]) != (id & 0xffff))
		return;
	seq = (uint16_t)(p[26] << 8 | p[27]);
	sent = c->ping_sent_ms[seq % PING_SLOTS];
	if (!sent || (uint16_t)(c->seq - seq) >= PING_SLOTS)
		return;
	c->ping_sent_ms[seq % PING_SLOTS] = 0;
	f->pings_back++;
	push(&f->rtt, &f->n_rtt, &f->cap_rtt, (double)(now - sent));
	/* A reply to a ping from before the event says nothing of it. */
	if (f->event_ms && sent < f->event_ms)
		return;
	/* An older ping sent after the event still unanswered: it was lost. */
	if (f->event_ms && !c->dark_from_ms && c->unanswered_ms >= f->event_ms &&
	    c->unanswered_ms < sent)
		c->dark_from_ms = c->unanswered_ms;
	if (c->dark_from_ms && !c->recovered && sent > c->dark_from_ms) {
		c->recovered = true;
		c->dark_ms = now - c->dark_from_ms;
	}
	/* Now the oldest unanswered is the one after this, if sent. */
	c->unanswered_ms = seq != c->seq ? c->ping_sent_ms[(uint16_t)(seq + 1) % PING_SLOTS] : 0;
}

static void on_datagram(struct fleet *f, unsigned id, const uint8_t *buf, size_t len, uint64_t now)
{
	struct client *c = &f->c[id];
	struct noise_session s;
	uint8_t out[2048];
	int n;

	if (len < 4)
		return;
	switch (buf[0]) {
	case 2:
		if (!c->hs_pending || noise_response(&c->peer, &c->hs, buf, len, &s) < 0)
			break;
		c->prev = c->cur;
		c->cur = s;
		c->cur_initiator = true;
		c->hs_pending = false;
		c->session_ms = now;
		if (f->event_ms && !c->session_back_ms)
			c->session_back_ms = now;
		c->last_rx_ms = now;
		if (!c->handshakes++) {
			push(&f->up, &f->n_up, &f->cap_up, (double)(now - c->hs_first_ms));
			if (!c->retries) {
				f->first_try++;
				f->first_try_last_ms = now;
			}
			if (++f->with_session == f->n && f->ready) {
				FILE *r = fopen(f->ready, "w");
				if (r)
					fclose(r);
			}
		}
		f->hs_ok++;
		push(&f->hs_lat, &f->n_hs_lat, &f->cap_hs_lat, (double)(now - c->hs_sent_ms));
		send_ping(f, c, id, now); /* the initiator speaks first: it confirms the session */
		return;
	case 1: { /* the server initiates: answer, and wait for its first word */
		struct noise_hs hs;
		uint8_t resp[92];
		struct noise_session s2;
		if (noise_consume_initiation(&c->peer, buf, len, c->last_ts, &hs) < 0 ||
		    noise_build_response(&c->peer, &hs, ++f->next_index, now, NULL, resp, &s2) < 0 ||
		    send(c->fd, resp, sizeof(resp), MSG_DONTWAIT) != (ssize_t)sizeof(resp))
			break;
		c->next2 = c->next; /* the server may still confirm the one before */
		c->next = s2;
		f->server_hs++;
		return;
	}
	case 3:
		if (noise_cookie_reply(&c->peer, buf, len, now) == 0) {
			f->cookies++;
			return;
		}
		break;
	case 4:
		n = noise_decrypt(&c->cur, buf, len, out, sizeof(out));
		if (n < 0)
			n = noise_decrypt(&c->prev, buf, len, out, sizeof(out));
		if (n < 0 && (n = noise_decrypt(&c->next2, buf, len, out, sizeof(out))) >= 0)
			c->next = c->next2;
		if (n < 0)
			n = noise_decrypt(&c->next, buf, len, out, sizeof(out));
		if (n >= 0 && c->next.valid && c->next.recv_max) {
			c->prev = c->cur; /* confirmed: the server's session is ours now */
			c->cur = c->next;
			c->next.valid = c->next2.valid = false;
			c->cur_initiator = false;
			c->hs_pending = false;
			c->session_ms = now;
			c->handshakes++;
			if (f->event_ms && !c->session_back_ms)
				c->session_back_ms = now;
		}
		if (n >= 0) {
			on_packet(f, c, id, out, n, now);
			return;
		}
		break;
	}
	f->bad_type[buf[0] <= 4 ? buf[0] : 0]++;
	f->bad++;
}

/* ms from then to now; 0 when then is later (times taken a moment apart). */
static uint64_t since(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

static void tick(struct fleet *f, uint64_t now)
{
	/* Ramp: at most `ramp` new clients a second (0: all at once). */
	uint64_t may = f->ramp ? (now - f->start_ms) * f->ramp / 1000 + 1 : f->n;

	for (unsigned i = 0; i < f->n; i++) {
		struct client *c = &f->c[i];
		if (!c->started) {
			if (i >= may)
				continue;
			c->started = true;
			send_initiation(f, c, now);
			continue;
		}
		if (c->hs_pending ? now >= c->retry_ms : !c->cur.valid) {
			send_initiation(f, c, now); /* a retry, or a first send that failed */
			continue;
		}
		if (!c->cur.valid)
			continue;
		if (!c->hs_pending && ((c->cur_initiator && since(now, c->session_ms) >= REKEY_AFTER_MS) ||
				       (c->last_ping_ms > c->last_rx_ms + DEAD_AFTER_MS)))
			send_initiation(f, c, now);
		if (since(now, c->last_ping_ms) >= f->interval_ms)
			send_ping(f, c, i, now);
	}
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
	if (!n)
		return -1; /* none: -1 in the JSON */
	qsort(v, n, sizeof(*v), cmp_d);
	/* Nearest rank: the smallest value with at least p of them at or below it. */
	return v[(size_t)fmax(0, fmin((double)n - 1, ceil(p * (double)n) - 1))];
}

/* Lost a ping sent after the event and no reply since, for a second. */
static bool never_back(const struct fleet *f, const struct client *c, uint64_t now)
{
	return !c->recovered && c->unanswered_ms >= f->event_ms && c->unanswered_ms &&
	       now - c->unanswered_ms > 1000;
}

/* One JSON object to out; with summary, the line for scripts to stdout. */
static void report(struct fleet *f, FILE *out, uint64_t now, bool summary)
{
	double *dark = calloc(f->n ? f->n : 1, sizeof(double));
	size_t nd = 0;
	unsigned recovered = 0, affected = 0;
	/* First tries, from the first initiation to the last such handshake
	 * done: the rate the servers, the balancer and the emulator sustained
	 * together (bounded by --ramp when given). */
	double span = f->first_try_last_ms > f->start_ms
			      ? (double)(f->first_try_last_ms - f->start_ms) / 1000
			      : 0;

	for (unsigned i = 0; dark && f->event_ms && i < f->n; i++) {
		const struct client *c = &f->c[i];
		/* Affected: lost a ping sent after the event; never back if it
		 * is still waiting a second later (dark until the end: a lower
		 * bound). A scenario that knows which clients the event hit
		 * uses dark_by_client instead. */
		if (c->recovered || never_back(f, c, now)) {
			affected++;
			dark[nd++] = (double)(c->recovered ? c->dark_ms : now - c->unanswered_ms) / 1000;
		}
		recovered += c->recovered;
	}
	double d50 = pct(dark, nd, 0.5), d99 = pct(dark, nd, 0.99), dmax = nd ? dark[nd - 1] : -1;
	double up99 = pct(f->up, f->n_up, 0.99), upmax = f->n_up ? f->up[f->n_up - 1] : -1;
	fprintf(out, "{\"clients\": %u, \"seconds\": %.1f, \"handshakes\": %llu, "
		"\"initiations\": %llu, \"cookies\": %llu, \"server_handshakes\": %llu, "
		"\"first_tries\": %llu, \"handshakes_per_s\": %.1f, \"session_ms_p99\": %.0f, "
		"\"session_ms_max\": %.0f, "
		"\"handshake_ms_p50\": %.1f, \"handshake_ms_p99\": %.1f, \"pings\": %llu, "
		"\"replies\": %llu, \"rtt_ms_p50\": %.1f, \"rtt_ms_p99\": %.1f, \"bad\": %llu, "
		"\"bad_by_type\": [%llu, %llu, %llu, %llu, %llu]",
		f->n, (double)(now - f->start_ms) / 1000, (unsigned long long)f->hs_ok,
		(unsigned long long)f->hs_sent, (unsigned long long)f->cookies,
		(unsigned long long)f->server_hs, (unsigned long long)f->first_try,
		span > 0 ? (double)f->first_try / span : 0, up99, upmax, pct(f->hs_lat, f->n_hs_lat, 0.5),
		pct(f->hs_lat, f->n_hs_lat, 0.99), (unsigned long long)f->pings_sent,
		(unsigned long long)f->pings_back, pct(f->rtt, f->n_rtt, 0.5), pct(f->rtt, f->n_rtt, 0.99),
		(unsigned long long)f->bad, (unsigned long long)f->bad_type[0],
		(unsigned long long)f->bad_type[1], (unsigned long long)f->bad_type[2],
		(unsigned long long)f->bad_type[3], (unsigned long long)f->bad_type[4]);
	if (f->event_ms) {
		fprintf(out, ", \"affected\": %u, \"recovered\": %u, \"dark_p50\": %.3f, "
			"\"dark_p99\": %.3f, \"dark_max\": %.3f, \"dark_s\": [", affected, recovered, d50,
			d99, dmax);
		for (size_t i = 0; i < nd; i++) /* sorted by pct() */
			fprintf(out, "%s%.3f", i ? ", " : "", dark[i]);
		/* Client i's dark time (port --port-base + i): 0 lost nothing,
		 * -1 never back. */
		fprintf(out, "], \"event_s\": %.3f, \"dark_by_client\": [",
			(double)(f->event_ms - f->start_ms) / 1000);
		for (unsigned i = 0; i < f->n; i++)
			fprintf(out, "%s%.3f", i ? ", " : "",
				f->c[i].recovered		 ? (double)f->c[i].dark_ms / 1000
				: never_back(f, &f->c[i], now) ? -1.0
								 : 0.0);
		/* Client i's first new session after the event, in seconds from
		 * it (-1: none): when it could speak again, not quantised by pings. */
		fprintf(out, "], \"session_back_by_client\": [");
		for (unsigned i = 0; i < f->n; i++)
			fprintf(out, "%s%.3f", i ? ", " : "",
				f->c[i].session_back_ms
					? (double)(f->c[i].session_back_ms - f->event_ms) / 1000
					: -1.0);
		fprintf(out, "]");
	}
	fprintf(out, "}\n");
	if (f->event_ms && summary)
		printf("clients=%u recovered=%u dark_p50=%.3f dark_p99=%.3f dark_max=%.3f\n", affected,
		       recovered, d50, d99, dmax);
	free(dark);
}

static int parse_key(const char *b64, uint8_t out[32])
{
	size_t len = 0;

	return sodium_base642bin(out, 32, b64, strlen(b64), NULL, &len, NULL,
				 sodium_base64_VARIANT_ORIGINAL) == 0 && len == 32 ? 0 : -1;
}

static int open_client(struct fleet *f, const union wglb_sa *bind_sa, socklen_t bl, unsigned i)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
	int fd = socket(f->target.sa.sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (bind(fd, &bind_sa->sa, bl) < 0 || connect(fd, &f->target.sa, f->target_len) < 0 ||
	    epoll_ctl(f->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		fprintf(stderr, "wglb-fleet: client %u: %s\n", i, strerror(errno));
		close(fd);
		return -1;
	}
	f->c[i].fd = fd;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"server-pub", required_argument, NULL, 'k'}, {"target", required_argument, NULL, 't'},
		{"clients", required_argument, NULL, 'n'},    {"bind", required_argument, NULL, 'b'},
		{"port-base", required_argument, NULL, 'p'},  {"seed", required_argument, NULL, 's'},
		{"tunnel-net", required_argument, NULL, 'T'}, {"server-ip", required_argument, NULL, 'S'},
		{"interval-ms", required_argument, NULL, 'i'}, {"ramp", required_argument, NULL, 'r'},
		{"duration", required_argument, NULL, 'd'},   {"json", required_argument, NULL, 'j'},
		{"peers", no_argument, NULL, 'P'},            {"help", no_argument, NULL, 'h'},
		{"sources", required_argument, NULL, 'o'},    {"ready", required_argument, NULL, 'R'},
		{"after-event", required_argument, NULL, 'E'},
		{NULL, 0, NULL, 0},
	};
	struct fleet f = {.n = 100, .interval_ms = 200};
	const char *server_pub = NULL, *target = NULL, *bind_ip = "0.0.0.0", *json = NULL;
	const char *tnet = "10.99", *server_ip = "10.99.0.1";
	uint8_t seed[32] = {0}, spub[32], priv[32];
	unsigned port_base = 42000, duration = 10, sources = 1, after_event = 0;
	bool peers = false;
	struct in_addr ia;
	int opt;

	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'k': server_pub = optarg; break;
		case 't': target = optarg; break;
		case 'n': f.n = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'b': bind_ip = optarg; break;
		case 'p': port_base = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's':
			if (sodium_hex2bin(seed, sizeof(seed), optarg, strlen(optarg), NULL, NULL, NULL) != 0) {
				fprintf(stderr, "wglb-fleet: --seed wants up to 64 hex digits\n");
				return 2;
			}
			break;
		case 'T': tnet = optarg; break;
		case 'S': server_ip = optarg; break;
		case 'i': f.interval_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'r': f.ramp = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'd': duration = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'j': json = optarg; break;
		case 'P': peers = true; break;
		case 'o': sources = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'R': f.ready = optarg; break;
		case 'E': after_event = (unsigned)strtoul(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: wglb-fleet --server-pub KEY --target ADDR:PORT [--clients N] "
				"[--bind ADDR] [--port-base 42000] [--seed HEX] [--tunnel-net 10.99] "
				"[--server-ip 10.99.0.1] [--interval-ms 200] [--ramp N] [--duration S] "
				"[--json FILE]\n       wglb-fleet --clients N [--seed HEX] [--tunnel-net 10.99] "
				"--peers\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	if (sodium_init() < 0)
		return 3;
	{
		char net[32];
		snprintf(net, sizeof(net), "%s.0.0", tnet);
		if (inet_pton(AF_INET, net, &ia) != 1) {
			fprintf(stderr, "wglb-fleet: --tunnel-net wants two octets (10.99)\n");
			return 2;
		}
	}
	uint32_t net16 = ntohl(ia.s_addr) & 0xffff0000u;
	if (!f.n || f.n > MAX_CLIENTS || !f.interval_ms || port_base + f.n > 65536 || !sources) {
		fprintf(stderr, "wglb-fleet: 1-%d clients whose ports fit below 65536; interval > 0\n",
			MAX_CLIENTS);
		return 2;
	}
	if (peers) {
		for (unsigned i = 0; i < f.n; i++) {
			uint8_t pub[32];
			char b64[64];
			uint32_t ip = tunnel_ip(net16, i);
			client_key(seed, i, priv);
			noise_keypair(priv, pub);
			sodium_bin2base64(b64, sizeof(b64), pub, 32, sodium_base64_VARIANT_ORIGINAL);
			printf("%s %u.%u.%u.%u/32\n", b64, ip >> 24, ip >> 16 & 255, ip >> 8 & 255, ip & 255);
		}
		return 0;
	}
	if (!server_pub || parse_key(server_pub, spub) < 0 || !target ||
	    addr_parse(target, &(struct wglb_addr){0}) < 0) {
		fprintf(stderr, "wglb-fleet: --server-pub KEY (base64) and --target ADDR:PORT are needed\n");
		return 2;
	}
	{
		struct wglb_addr ta;
		addr_parse(target, &ta);
		f.target = ta.u;
		f.target_len = ta.len;
	}
	if (inet_pton(AF_INET, server_ip, &ia) != 1) {
		fprintf(stderr, "wglb-fleet: --server-ip wants an IPv4 address\n");
		return 2;
	}
	f.server_ip = ntohl(ia.s_addr);
	f.c = calloc(f.n, sizeof(*f.c));
	f.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!f.c || f.ep < 0)
		return 3;
	for (unsigned i = 0; i < f.n; i++) {
		union wglb_sa b = {0};
		b.in4.sin_family = AF_INET;
		b.in4.sin_port = htons((uint16_t)(port_base + i));
		if (inet_pton(AF_INET, bind_ip, &b.in4.sin_addr) != 1) {
			fprintf(stderr, "wglb-fleet: --bind wants an IPv4 address\n");
			return 2;
		}
		b.in4.sin_addr.s_addr = htonl(ntohl(b.in4.sin_addr.s_addr) + i % sources);
		client_key(seed, i, priv);
		if (noise_peer_init(&f.c[i].peer, priv, spub, NULL) < 0 ||
		    open_client(&f, &b, sizeof(b.in4), i) < 0)
			return 1;
		f.c[i].tunnel_ip = tunnel_ip(net16, i);
	}
	sodium_memzero(priv, sizeof(priv));
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGUSR1, on_signal);
	f.start_ms = now_ms();
	for (uint64_t now = f.start_ms;
	     !stop && now - f.start_ms < (uint64_t)duration * 1000 &&
	     !(after_event && f.event_ms && now - f.event_ms >= (uint64_t)after_event * 1000);
	     now = now_ms()) {
		struct epoll_event evs[256];
		int n = epoll_wait(f.ep, evs, 256, 5);
		now = now_ms();
		if (event && !f.event_ms) {
			f.event_ms = now;
			for (unsigned i = 0; i < f.n; i++)
				f.c[i].unanswered_ms = 0; /* losses before the event are not its */
			fprintf(stderr, "wglb-fleet: event at %.3f s\n", (double)(now - f.start_ms) / 1000);
		}
		for (int k = 0; k < n; k++) {
			unsigned id = evs[k].data.u32;
			uint8_t buf[2048];
			/* At most 64 datagrams a client a turn: the loop stays fair. */
			for (int r = 0; r < 64; r++) {
				ssize_t len = recv(f.c[id].fd, buf, sizeof(buf), MSG_DONTWAIT);
				if (len < 0)
					break;
				on_datagram(&f, id, buf, (size_t)len, now_ms()); /* each its own time */
			}
		}
		tick(&f, now_ms()); /* after the datagrams, each of which took its own time */
	}
	if (json) {
		FILE *o = fopen(json, "w");
		if (!o) {
			fprintf(stderr, "wglb-fleet: %s: %s\n", json, strerror(errno));
			return 1;
		}
		report(&f, o, now_ms(), false);
		fclose(o);
	}
	report(&f, stderr, now_ms(), true);
	return 0;
}
