// SPDX-License-Identifier: MIT
/*
 * Admission for wg-health's connections (see accept.h). The ingress test
 * replaces one by destination address, which a VPN client defeated by
 * asking for the server's LAN address through the tunnel: the interface a
 * connection came in on is what tells a VPN client from the balancer.
 */
#include "wglb/accept.h"
#include "wglb/rtnl.h"
#include "wglb/wgdev.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

void acc_key(const union wglb_sa *sa, uint8_t key[ACC_KEY_LEN])
{
	memset(key, 0, ACC_KEY_LEN);
	if (sa->sa.sa_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&sa->in6.sin6_addr)) {
		key[0] = AF_INET6;
		memcpy(key + 1, &sa->in6.sin6_addr, 8); /* one host's /64 is one source */
	} else if (sa->sa.sa_family == AF_INET6) {
		key[0] = AF_INET;
		memcpy(key + 1, &sa->in6.sin6_addr.s6_addr[12], 4);
	} else {
		key[0] = AF_INET;
		memcpy(key + 1, &sa->in4.sin_addr, 4);
	}
}

bool acc_is_prober(const struct wglb_cidr *probers, unsigned n, const union wglb_sa *sa)
{
	const uint8_t *a = (const uint8_t *)&sa->in4.sin_addr;
	int family = AF_INET;

	if (sa->sa.sa_family == AF_INET6) {
		a = sa->in6.sin6_addr.s6_addr;
		family = AF_INET6;
		if (IN6_IS_ADDR_V4MAPPED(&sa->in6.sin6_addr)) {
			a += 12;
			family = AF_INET;
		}
	}
	for (unsigned i = 0; i < n; i++)
		if (cidr_match(&probers[i], family, a))
			return true;
	return false;
}

/* A shed candidate ranks below another when it is protected (a prober's
 * never is one; a sent request line goes after idle ones). */
static unsigned protection(const struct acc_slot *s)
{
	return (s->flags & ACC_F_REQUEST) ? 1 : 0;
}

enum acc_verdict acc_admit(const struct acc_slot *slots, unsigned n, unsigned max,
			   unsigned per_src, const struct acc_slot *nc, unsigned *victim)
{
	/* Per-source counts in an open-addressed table built per call: O(n),
	 * so a full table under a flood costs one pass per accept, not n. */
	struct {
		uint8_t key[ACC_KEY_LEN];
		uint16_t count, used;
		uint32_t oldest; /* index of its oldest candidate of the best protection class */
	} h[2048];
	unsigned mine = 0, best = UINT32_MAX, level = 2;
	_Static_assert(sizeof(h) / sizeof(h[0]) >= 2 * 1024, "twice the table, for short probes");

	if (n > 1024 || max > 1024)
		return ACC_REFUSE_FULL; /* beyond what h was sized for: an invariant */
	for (unsigned i = 0; i < n; i++)
		mine += !memcmp(slots[i].key, nc->key, ACC_KEY_LEN);
	if (mine >= per_src)
		return ACC_REFUSE_SOURCE;
	if (n < max)
		return ACC_ADMIT;
	/* The lowest protection class that has a candidate at all. */
	for (unsigned i = 0; i < n; i++)
		if (!(slots[i].flags & ACC_F_PROBER) && protection(&slots[i]) < level)
			level = protection(&slots[i]);
	if (level == 2)
		return ACC_REFUSE_FULL; /* every slot a prober's */
	memset(h, 0, sizeof(h));
	for (unsigned i = 0; i < n; i++) {
		const struct acc_slot *s = &slots[i];
		uint32_t x = 2166136261u;
		unsigned b;

		if ((s->flags & ACC_F_PROBER) || protection(s) != level)
			continue;
		for (unsigned k = 0; k < ACC_KEY_LEN; k++)
			x = (x ^ s->key[k]) * 16777619u;
		for (b = x % 2048; h[b].used && memcmp(h[b].key, s->key, ACC_KEY_LEN); b = (b + 1) % 2048)
			;
		if (!h[b].used) {
			h[b].used = 1;
			memcpy(h[b].key, s->key, ACC_KEY_LEN);
			h[b].oldest = i;
		} else if (s->born < slots[h[b].oldest].born) {
			h[b].oldest = i;
		}
		h[b].count++;
		if (best == UINT32_MAX || h[b].count > h[best].count ||
		    (h[b].count == h[best].count && slots[h[b].oldest].born < slots[h[best].oldest].born))
			best = b;
	}
	/* Max-min fairness: a source already holding as many as the largest
	 * one may not push others out; a prober always may. */
	if (!(nc->flags & ACC_F_PROBER) && mine >= h[best].count)
		return ACC_REFUSE_FULL;
	*victim = h[best].oldest;
	return ACC_SHED;
}

int acc_listen_opts(int lfd, int family)
{
	int one = 1;

	/* Also on an IPv6 socket: its IPv4-mapped connections answer
	 * IP_PKTOPTIONS. */
	if (setsockopt(lfd, SOL_IP, IP_PKTINFO, &one, sizeof(one)) < 0)
		return -errno;
	if (family == AF_INET6 &&
	    setsockopt(lfd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

int acc_ingress_ifindex(int fd, const union wglb_sa *peer, int *ifindex)
{
	bool v6 = peer->sa.sa_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&peer->in6.sin6_addr);
	union {
		char buf[256];
		struct cmsghdr align;
	} u;
	socklen_t len = sizeof(u.buf);
	struct msghdr m = {.msg_control = u.buf};
	struct cmsghdr *h;

	/* Linux keeps the pktinfo of the packet that completed the handshake
	 * (IPv4: its rx_dst_ifindex; IPv6: the SYN's options). */
	if (getsockopt(fd, v6 ? IPPROTO_IPV6 : SOL_IP, v6 ? IPV6_2292PKTOPTIONS : IP_PKTOPTIONS, u.buf,
		       &len) < 0)
		return -errno;
	m.msg_controllen = len;
	for (h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h)) {
		if (!v6 && h->cmsg_level == SOL_IP && h->cmsg_type == IP_PKTINFO &&
		    h->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(h), sizeof(pi));
			*ifindex = pi.ipi_ifindex;
			return pi.ipi_ifindex > 0 ? 0 : -ENOENT;
		}
		if (v6 && h->cmsg_level == IPPROTO_IPV6 && h->cmsg_type == IPV6_PKTINFO &&
		    h->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(h), sizeof(pi));
			*ifindex = (int)pi.ipi6_ifindex;
			return pi.ipi6_ifindex > 0 ? 0 : -ENOENT;
		}
	}
	return -ENOENT;
}

int acc_ingress_is_tunnel(struct acc_ifcache *c, const char *device, int ifindex, uint64_t now_ms,
			  bool *tunnel)
{
	char name[IFNAMSIZ];
	bool wireguard;
	unsigned i;
	int ret;

	for (i = 0; i < ACC_IFCACHE; i++)
		if (c->e[i].ifindex == ifindex && now_ms < c->e[i].until_ms) {
			*tunnel = c->e[i].tunnel;
			return 0;
		}
	ret = nl_link_by_index(ifindex, name, &wireguard);
	if (ret < 0)
		return ret;
	/* wireguard-go's TUN is kind "tun": its UAPI socket names it. */
	*tunnel = wireguard || !strcmp(name, device) || !strcmp(wgdev_kind(name), "uapi");
	i = c->next++ % ACC_IFCACHE;
	c->e[i].ifindex = ifindex;
	c->e[i].tunnel = *tunnel;
	c->e[i].until_ms = now_ms + 1000;
	return 0;
}
