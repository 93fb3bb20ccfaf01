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

#define UAPI_MAX_REPLY (1 << 20)

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

int uapi_readd_request(char *reply, const char *hex, const char *endpoint, char *req, size_t cap,
		       char keepalive[16])
{
	char psk[65] = "", *line, *save;
	bool mine = false, found = false;
	size_t off;
	int n;

	snprintf(keepalive, 16, "0");
	/* Remove and re-add in one request: wireguard-go applies it under its
	 * configuration lock, so the peer is never missing between two
	 * exchanges (nor left deleted if a second exchange failed). */
	n = snprintf(req, cap, "set=1\npublic_key=%s\nremove=true\npublic_key=%s\n", hex, hex);
	if (n < 0 || (size_t)n >= cap)
		return -E2BIG;
	off = (size_t)n;
	for (line = strtok_r(reply, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "public_key=", 11)) {
			mine = !strcmp(line + 11, hex);
			found |= mine;
		} else if (mine && !strncmp(line, "preshared_key=", 14)) {
			snprintf(psk, sizeof(psk), "%s", line + 14);
		} else if (mine && !strncmp(line, "persistent_keepalive_interval=", 30)) {
			snprintf(keepalive, 16, "%s", line + 30);
		} else if (mine && !strncmp(line, "allowed_ip=", 11)) {
			n = snprintf(req + off, cap - off, "%s\n", line);
			if (n < 0 || (size_t)n >= cap - off)
				return -E2BIG;
			off += (size_t)n;
		}
	}
	if (!found)
		return -ENOENT;
	if (psk[0] && strspn(psk, "0") != 64) { /* all zeros = no preshared key */
		n = snprintf(req + off, cap - off, "preshared_key=%s\n", psk);
		if (n < 0 || (size_t)n >= cap - off)
			return -E2BIG;
		off += (size_t)n;
	}
	n = snprintf(req + off, cap - off, "endpoint=%s\npersistent_keepalive_interval=1\n\n",
		     endpoint);
	if (n < 0 || (size_t)n >= cap - off)
		return -E2BIG;
	return (int)(off + (size_t)n);
}

int uapi_rehandshake(const char *ifname, const uint8_t pub[32], const char *endpoint)
{
	char hex[65], keepalive[16], msg[160], *reply, *req;
	size_t cap = 65536;
	int ret;

	sodium_bin2hex(hex, sizeof(hex), pub, 32);
	ret = exchange(ifname, "get=1\n\n", &reply);
	if (ret != 0) {
		free(reply);
		return ret < 0 ? ret : -EIO;
	}
	req = malloc(cap);
	if (!req) {
		free(reply);
		return -ENOMEM;
	}
	/* The peer's settings, to re-add it exactly as it was. */
	ret = uapi_readd_request(reply, hex, endpoint, req, cap, keepalive);
	free(reply);
	if (ret < 0)
		goto out;
	/* 1. Remove and re-add with the new endpoint and a keepalive, one
	 *    request: the removal drops any session, so the keepalive's 0 -> 1
	 *    send cannot ride on one; it is a handshake initiation. */
	ret = exchange(ifname, req, &reply);
	free(reply);
	if (ret != 0)
		goto out;
	/* 2. Restore the operator's keepalive. */
	snprintf(msg, sizeof(msg), "set=1\npublic_key=%s\npersistent_keepalive_interval=%s\n\n",
		 hex, keepalive);
	ret = exchange(ifname, msg, &reply);
	free(reply);
out:
	free(req);
	return ret > 0 ? -ret : ret;
}
