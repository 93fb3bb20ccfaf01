/* SPDX-License-Identifier: MIT */
/* Socket addresses: parse "ip:port" / "[ip6]:port", format, compare, CIDR. */
#ifndef WGLB_ADDR_H
#define WGLB_ADDR_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

union wglb_sa {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
};

struct wglb_addr {
	union wglb_sa u;
	socklen_t len; /* 0 when unset */
};

/* Long enough for "[ffff:...:ffff%ifname]:65535". */
#define ADDR_STRLEN 80

/* Parse "1.2.3.4:51820" or "[::1]:51820". Port is required. 0 or -EINVAL. */
int addr_parse(const char *s, struct wglb_addr *out);
/* Parse an address without a port ("1.2.3.4", "::1"). 0 or -EINVAL. */
int addr_parse_ip(const char *s, struct wglb_addr *out);
/* Format as "ip:port" / "[ip6]:port" into buf (ADDR_STRLEN); returns buf. */
char *addr_fmt(const union wglb_sa *sa, char *buf, size_t size);
char *addr_fmt_ip(const union wglb_sa *sa, char *buf, size_t size);
bool addr_equal(const struct wglb_addr *a, const struct wglb_addr *b);
uint16_t addr_port(const union wglb_sa *sa);
void addr_set_port(union wglb_sa *sa, uint16_t port); /* port in host order */

struct wglb_cidr {
	uint8_t family; /* AF_INET or AF_INET6 */
	uint8_t prefix;
	uint8_t bytes[16];
};
/* Parse "10.0.0.0/8", "2001:db8::/32", or a bare address (full-length prefix). */
int cidr_parse(const char *s, struct wglb_cidr *out);
bool cidr_match(const struct wglb_cidr *c, int family, const uint8_t *addr);

#endif
