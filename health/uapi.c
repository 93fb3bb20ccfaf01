// SPDX-License-Identifier: MIT
#include "wglb/uapi.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define UAPI_MAX_REPLY (16 << 20) /* a get=1 of WGDEV_MAX_PEERS peers with their allowed IPs */

/* One UAPI exchange: send the request, read to the blank line, return the
 * errno= value (0 ok) or -errno for a transport failure. *reply is malloc'd. */
static int exchange(const char *ifname, const char *req, char **reply)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = 2};
	size_t len = 0, cap = 8192, rl = strlen(req);
	char *buf = NULL, *e;
	int fd, ret;

	*reply = NULL;
	if ((size_t)snprintf(sun.sun_path, sizeof(sun.sun_path), "/var/run/wireguard/%s.sock",
			     ifname) >= sizeof(sun.sun_path))
		return -EINVAL;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    send(fd, req, rl, MSG_NOSIGNAL) != (ssize_t)rl) {
		ret = -errno;
		goto out;
	}
	buf = malloc(cap);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n;
		if (len + 1 >= cap) {
			char *nb = cap < UAPI_MAX_REPLY ? realloc(buf, cap * 2) : NULL;
			if (!nb) {
				ret = -E2BIG;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n <= 0) {
			ret = n < 0 ? -errno : -EPIPE;
			goto out;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if (len >= 2 && !strcmp(buf + len - 2, "\n\n"))
			break;
	}
	e = strstr(buf, "errno=");
	ret = e ? atoi(e + 6) : -EPROTO;
	*reply = buf;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return ret;
}

/* The value of the device-level key (a line "key=N" before the first
 * public_key=) as an unsigned 32-bit number: 1 found, 0 absent, -EPROTO. */
static int device_u32(const char *reply, const char *key, uint32_t *v)
{
	size_t kl = strlen(key);
	const char *line, *eol;

	for (line = reply; (eol = strchr(line, '\n')); line = eol + 1) {
		unsigned long long n;
		char *end;
		if (!strncmp(line, "public_key=", 11))
			return 0; /* the peers start: no more device keys */
		if (strncmp(line, key, kl) || line[kl] != '=')
			continue;
		if (line[kl + 1] < '0' || line[kl + 1] > '9')
			return -EPROTO;
		errno = 0;
		n = strtoull(line + kl + 1, &end, 10);
		if (errno || end != eol || n > UINT32_MAX)
			return -EPROTO;
		*v = (uint32_t)n;
		return 1;
	}
	return 0;
}

int uapi_parse_conf(const char *reply, struct wgdev_conf *conf)
{
	uint32_t port = 0, mark = 0;
	int ret = device_u32(reply, "listen_port", &port);

	/* wireguard-go leaves out a zero fwmark (and a zero listen port). */
	if (ret >= 0)
		ret = device_u32(reply, "fwmark", &mark);
	if (ret < 0 || port > 65535)
		return -EPROTO;
	conf->listen_port = (int)port;
	conf->fwmark = mark;
	return 0;
}

int uapi_conf(const char *ifname, struct wgdev_conf *conf)
{
	char *reply;
	int ret = exchange(ifname, "get=1\n\n", &reply);

	if (ret == 0)
		ret = uapi_parse_conf(reply, conf);
	else if (ret > 0)
		ret = -EIO;
	free(reply);
	return ret;
}

int uapi_set_fwmark(const char *ifname, uint32_t mark)
{
	char req[48], *reply;
	int ret;

	snprintf(req, sizeof(req), "set=1\nfwmark=%u\n\n", (unsigned)mark);
	ret = exchange(ifname, req, &reply);
	free(reply);
	return ret > 0 ? -ret : ret;
}

int uapi_parse_peers(char *reply, struct wgdev_peer *peers, int max)
{
	char *line, *save;
	int n = 0;
	bool in_peer = false; /* the last public_key line was valid and kept */

	for (line = strtok_r(reply, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t bin;
		if (!strncmp(line, "public_key=", 11)) {
			in_peer = false;
			if (n == max)
				break;
			memset(&peers[n], 0, sizeof(peers[n]));
			if (sodium_hex2bin(peers[n].pub, 32, line + 11, strlen(line + 11), NULL, &bin,
					   NULL) == 0 && bin == 32) {
				in_peer = true;
				n++;
			}
		} else if (in_peer && !strncmp(line, "endpoint=", 9)) {
			snprintf(peers[n - 1].endpoint, sizeof(peers[n - 1].endpoint), "%s", line + 9);
		} else if (in_peer && !strncmp(line, "last_handshake_time_sec=", 24)) {
			peers[n - 1].handshake_s = strtoull(line + 24, NULL, 10);
		} else if (in_peer && !strncmp(line, "rx_bytes=", 9)) {
			peers[n - 1].rx_bytes = strtoull(line + 9, NULL, 10);
		} else if (in_peer && !strncmp(line, "tx_bytes=", 9)) {
			peers[n - 1].tx_bytes = strtoull(line + 9, NULL, 10);
		}
	}
	return n;
}

int uapi_peers(const char *ifname, struct wgdev_peer *peers, int max)
{
	char *reply;
	int n, ret = exchange(ifname, "get=1\n\n", &reply);

	if (ret != 0) {
		free(reply);
		return ret < 0 ? ret : -EIO;
	}
	n = uapi_parse_peers(reply, peers, max);
	free(reply);
	return n;
}

/* One peer's lines in a `get=1` reply: from its public_key= line to the
 * next peer's (or the end). */
struct section {
	const char *at;
	size_t len;
};

static int section_cmp(const void *a, const void *b)
{
	return memcmp(((const struct section *)a)->at + 11, ((const struct section *)b)->at + 11, 64);
}

/* The peers' sections, sorted by key (each at starts "public_key=" and 64
 * hex digits), into *out (NULL for none). *n the count; 0 or -ENOMEM. */
static int sections(const char *reply, struct section **out, size_t *n)
{
	struct section *s = NULL, *ns;
	size_t cap = 0, k = 0;
	const char *p = reply, *nl;
	bool open = false;

	*n = 0;
	for (; *p; p = nl ? nl + 1 : p + strlen(p)) {
		nl = strchr(p, '\n');
		if (strncmp(p, "public_key=", 11))
			continue;
		/* Any key line ends a section; a malformed one starts none (its
		 * lines belong to nobody, not to the peer before it). */
		if (open)
			s[k - 1].len = (size_t)(p - s[k - 1].at);
		open = nl && nl - p == 75;
		if (!open)
			continue;
		if (k == cap) {
			cap = cap ? cap * 2 : 64;
			ns = realloc(s, cap * sizeof(*s));
			if (!ns) {
				free(s);
				*out = NULL;
				*n = 0;
				return -ENOMEM;
			}
			s = ns;
		}
		s[k].at = p;
		s[k++].len = 0;
	}
	if (open)
		s[k - 1].len = (size_t)(p - s[k - 1].at);
	qsort(s, k, sizeof(*s), section_cmp);
	*n = k;
	*out = s;
	return 0;
}

/* Append to req[*off..cap) the lines that remove the peer of section sec
 * (key hex) and re-add it exactly as it was, with endpoint and a keepalive
 * of 1; its old keepalive goes to keepalive. 0 or -E2BIG. */
static int readd_peer(const struct section *sec, const char *hex, const char *endpoint, char *req,
		      size_t cap, size_t *off, char keepalive[16])
{
	char psk[65] = "";
	const char *p = sec->at, *end = sec->at + sec->len, *nl;
	int n;

	snprintf(keepalive, 16, "0");
	n = snprintf(req + *off, cap - *off, "public_key=%s\nremove=true\npublic_key=%s\n", hex, hex);
	if (n < 0 || (size_t)n >= cap - *off)
		return -E2BIG;
	*off += (size_t)n;
	for (; p < end; p = nl + 1) {
		size_t len;
		nl = memchr(p, '\n', (size_t)(end - p));
		if (!nl)
			nl = end;
		len = (size_t)(nl - p);
		if (len > 14 && len < 14 + sizeof(psk) && !strncmp(p, "preshared_key=", 14)) {
			memcpy(psk, p + 14, len - 14);
			psk[len - 14] = '\0';
		} else if (len > 30 && len < 30 + 16 && !strncmp(p, "persistent_keepalive_interval=", 30)) {
			memcpy(keepalive, p + 30, len - 30);
			keepalive[len - 30] = '\0';
		} else if (len > 11 && !strncmp(p, "allowed_ip=", 11)) {
			if (len + 1 >= cap - *off)
				return -E2BIG;
			memcpy(req + *off, p, len);
			req[*off + len] = '\n';
			*off += len + 1;
		}
	}
	if (psk[0] && strspn(psk, "0") != 64) { /* all zeros = no preshared key */
		n = snprintf(req + *off, cap - *off, "preshared_key=%s\n", psk);
		if (n < 0 || (size_t)n >= cap - *off)
			return -E2BIG;
		*off += (size_t)n;
	}
	n = snprintf(req + *off, cap - *off, "endpoint=%s\npersistent_keepalive_interval=1\n", endpoint);
	if (n < 0 || (size_t)n >= cap - *off)
		return -E2BIG;
	*off += (size_t)n;
	return 0;
}

int uapi_readd_batch(const char *reply, struct wgdev_move *mv, int n, char *req, size_t cap,
		     char (*keepalive)[16])
{
	size_t ns, off;
	struct section *s;
	int found = 0, ret = sections(reply, &s, &ns);

	if (ret < 0)
		return ret;
	/* Remove and re-add in one request: wireguard-go applies it under its
	 * configuration lock, so no peer is missing between two exchanges
	 * (nor left deleted if a second exchange failed). */
	off = (size_t)snprintf(req, cap, "set=1\n");
	if (off >= cap) {
		free(s);
		return -E2BIG;
	}
	for (int i = 0; i < n && !ret; i++) {
		char key[76];
		struct section k = {.at = key}, *sec;
		sodium_bin2hex(key + 11, sizeof(key) - 11, mv[i].pub, 32);
		sec = ns ? bsearch(&k, s, ns, sizeof(*s), section_cmp) : NULL;
		mv[i].result = sec ? 0 : -ENOENT;
		if (sec) {
			ret = readd_peer(sec, key + 11, mv[i].endpoint, req, cap, &off, keepalive[i]);
			found++;
		}
	}
	free(s);
	if (ret < 0)
		return ret;
	if (off + 1 >= cap)
		return -E2BIG;
	req[off++] = '\n';
	req[off] = '\0';
	return found ? (int)off : 0;
}

int uapi_readd_request(const char *reply, const char *hex, const char *endpoint, char *req,
		       size_t cap, char keepalive[16])
{
	struct wgdev_move mv = {0};
	size_t bin;
	int n;

	if (sodium_hex2bin(mv.pub, 32, hex, strlen(hex), NULL, &bin, NULL) != 0 || bin != 32 ||
	    snprintf(mv.endpoint, sizeof(mv.endpoint), "%s", endpoint) >= (int)sizeof(mv.endpoint))
		return -EINVAL;
	n = uapi_readd_batch(reply, &mv, 1, req, cap, (char(*)[16])keepalive);
	return n == 0 ? -ENOENT : n;
}

int uapi_rehandshake(const char *ifname, struct wgdev_move *mv, int n)
{
	char *reply, *req = NULL, (*keepalive)[16] = NULL;
	size_t cap;
	int ret, len;

	ret = exchange(ifname, "get=1\n\n", &reply);
	if (ret != 0) {
		free(reply);
		return ret < 0 ? ret : -EIO;
	}
	/* Each peer's lines again plus its words, at most. */
	cap = strlen(reply) + (size_t)n * 384 + 16;
	req = malloc(cap);
	keepalive = calloc((size_t)n, sizeof(*keepalive));
	if (!req || !keepalive) {
		ret = -ENOMEM;
		goto out;
	}
	/* 1. Remove and re-add each with its new endpoint and a keepalive, one
	 *    request: the removal drops any session, so the keepalive's 0 -> 1
	 *    send cannot ride on one; it is a handshake initiation. */
	len = uapi_readd_batch(reply, mv, n, req, cap, keepalive);
	free(reply);
	reply = NULL;
	if (len <= 0) {
		ret = len;
		goto out;
	}
	ret = exchange(ifname, req, &reply);
	free(reply);
	reply = NULL;
	if (ret != 0)
		goto out;
	/* 2. Restore the operator's keepalives: the initiations are already on
	 *    their way, and 1 -> N sends nothing more. */
	len = snprintf(req, cap, "set=1\n");
	for (int i = 0; i < n; i++) {
		char hex[65];
		if (mv[i].result)
			continue;
		sodium_bin2hex(hex, sizeof(hex), mv[i].pub, 32);
		len += snprintf(req + len, cap - (size_t)len,
				"public_key=%s\npersistent_keepalive_interval=%s\n", hex, keepalive[i]);
	}
	snprintf(req + len, cap - (size_t)len, "\n");
	ret = exchange(ifname, req, &reply);
	free(reply);
	reply = NULL;
out:
	free(reply);
	free(req);
	free(keepalive);
	if (ret > 0)
		ret = -ret;
	if (ret < 0)
		for (int i = 0; i < n; i++)
			if (!mv[i].result)
				mv[i].result = ret;
	return ret < 0 ? ret : 0;
}
