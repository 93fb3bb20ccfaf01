// SPDX-License-Identifier: MIT
#include "wglb/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_port(const char *s, uint16_t *port)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int addr_parse_ip(const char *s, struct wglb_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, s, &out->u.in4.sin_addr) == 1) {
		out->u.in4.sin_family = AF_INET;
		out->len = sizeof(out->u.in4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &out->u.in6.sin6_addr) == 1) {
		out->u.in6.sin6_family = AF_INET6;
		out->len = sizeof(out->u.in6);
		return 0;
	}
	return -EINVAL;
}

int addr_parse(const char *s, struct wglb_addr *out)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *hs = s;
	size_t hl;
	uint16_t port;

	if (*s == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return -EINVAL;
		hs = s + 1;
		hl = (size_t)(rb - hs);
		colon = rb + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL; /* bare IPv6 needs brackets */
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, hs, hl);
	host[hl] = '\0';
	if (parse_port(colon + 1, &port) < 0)
		return -EINVAL;
	if (addr_parse_ip(host, out) < 0)
		return -EINVAL;
	if (*s == '[' && out->u.sa.sa_family != AF_INET6)
		return -EINVAL;
	addr_set_port(&out->u, port);
	return 0;
}

char *addr_fmt_ip(const union wglb_sa *sa, char *buf, size_t size)
{
	const void *src = sa->sa.sa_family == AF_INET6 ? (const void *)&sa->in6.sin6_addr
						       : (const void *)&sa->in4.sin_addr;
	if (!inet_ntop(sa->sa.sa_family, src, buf, (socklen_t)size))
		snprintf(buf, size, "?");
	return buf;
}

char *addr_fmt(const union wglb_sa *sa, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN];

	addr_fmt_ip(sa, ip, sizeof(ip));
	if (sa->sa.sa_family == AF_INET6)
		snprintf(buf, size, "[%s]:%u", ip, addr_port(sa));
	else
		snprintf(buf, size, "%s:%u", ip, addr_port(sa));
	return buf;
}

uint16_t addr_port(const union wglb_sa *sa)
{
	return ntohs(sa->sa.sa_family == AF_INET6 ? sa->in6.sin6_port : sa->in4.sin_port);
}

void addr_set_port(union wglb_sa *sa, uint16_t port)
{
	if (sa->sa.sa_family == AF_INET6)
		sa->in6.sin6_port = htons(port);
	else
		sa->in4.sin_port = htons(port);
}

bool addr_equal(const struct wglb_addr *a, const struct wglb_addr *b)
{
	if (a->u.sa.sa_family != b->u.sa.sa_family)
		return false;
	if (a->u.sa.sa_family == AF_INET)
		return a->u.in4.sin_port == b->u.in4.sin_port &&
		       a->u.in4.sin_addr.s_addr == b->u.in4.sin_addr.s_addr;
	return a->u.in6.sin6_port == b->u.in6.sin6_port &&
	       !memcmp(&a->u.in6.sin6_addr, &b->u.in6.sin6_addr, 16);
}

int cidr_parse(const char *s, struct wglb_cidr *out)
{
	char ip[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t il = slash ? (size_t)(slash - s) : strlen(s);
	unsigned max;
	struct wglb_addr a;

	if (il == 0 || il >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, il);
	ip[il] = '\0';
	if (addr_parse_ip(ip, &a) < 0)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->family = (uint8_t)a.u.sa.sa_family;
	if (out->family == AF_INET) {
		memcpy(out->bytes, &a.u.in4.sin_addr, 4);
		max = 32;
	} else {
		memcpy(out->bytes, &a.u.in6.sin6_addr, 16);
		max = 128;
	}
	out->prefix = (uint8_t)max;
	if (slash) {
		char *end;
		unsigned long p;
		if (slash[1] < '0' || slash[1] > '9')
			return -EINVAL;
		p = strtoul(slash + 1, &end, 10);
		if (*end || p > max)
			return -EINVAL;
		out->prefix = (uint8_t)p;
	}
	/* Normalise host bits away so matching is a plain prefix compare. */
	for (unsigned i = 0; i < 16; i++) {
		unsigned bit = i * 8;
		if (bit >= out->prefix)
			out->bytes[i] = 0;
		else if (bit + 8 > out->prefix)
			out->bytes[i] &= (uint8_t)(0xff00 >> (out->prefix - bit));
	}
	return 0;
}

bool cidr_match(const struct wglb_cidr *c, int family, const uint8_t *addr)
{
	unsigned full = c->prefix / 8, rem = c->prefix % 8;

	if (family != c->family)
		return false;
	if (memcmp(c->bytes, addr, full))
		return false;
	if (rem && (addr[full] & (uint8_t)(0xff00 >> rem)) != c->bytes[full])
		return false;
	return true;
}
