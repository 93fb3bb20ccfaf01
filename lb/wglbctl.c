// SPDX-License-Identifier: MIT
/* wglbctl: send one command to wglb's control socket, print the reply,
 * exit 1 when the reply is an error. `top` refreshes backend rates. */
#include "wglb/version.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/wglb/control.sock"
#define REPLY_TIMEOUT_MS 10000

static int ctl_connect(const char *path)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int fd;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "wglbctl: socket path too long\n");
		return -1;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		fprintf(stderr, "wglbctl: cannot connect to %s: %s (is wglb running? -s SOCKET)\n",
			path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Send one command; read until the blank line that ends every reply.
 * Returns a malloc'd reply (without the final blank line) or NULL. */
static char *roundtrip(int fd, const char *cmd)
{
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap);
	size_t cl = strlen(cmd);

	if (!buf)
		return NULL;
	if (write(fd, cmd, cl) != (ssize_t)cl || write(fd, "\n", 1) != 1) {
		fprintf(stderr, "wglbctl: write: %s\n", strerror(errno));
		free(buf);
		return NULL;
	}
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		ssize_t n;
		if (poll(&p, 1, REPLY_TIMEOUT_MS) <= 0) {
			fprintf(stderr, "wglbctl: no reply within %d ms\n", REPLY_TIMEOUT_MS);
			break;
		}
		if (len + 4096 > cap) {
			char *nb = realloc(buf, cap * 2);
			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if ((len == 1 && buf[0] == '\n') || (len >= 2 && !strcmp(buf + len - 2, "\n\n"))) {
			buf[len - 1] = '\0';
			return buf;
		}
	}
	free(buf);
	return NULL;
}

static bool is_error(const char *reply)
{
	return !strncmp(reply, "error: ", 7) || !strncmp(reply, "{\"error\"", 8);
}

static int top(int fd, int seconds)
{
	for (int i = 0; seconds == 0 || i < seconds; i++) {
		char *backends = roundtrip(fd, "show backends"), *stats;
		if (!backends)
			return 1;
		stats = roundtrip(fd, "show stats");
		if (!stats) {
			free(backends);
			return 1;
		}
		printf("\033[H\033[2J%s\n%s", backends, stats);
		fflush(stdout);
		free(backends);
		free(stats);
		sleep(1);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'}, {"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *sock = getenv("WGLB_SOCKET") ? getenv("WGLB_SOCKET") : DEFAULT_SOCKET;
	char cmd[1024] = "";
	bool json = false;
	char *reply;
	int opt, fd, ret;

	while ((opt = getopt_long(argc, argv, "+s:jhV", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			sock = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'V':
			printf("wglbctl %s\n", WGLB_VERSION);
			return 0;
		case 'h':
			printf("usage: wglbctl [-s SOCKET] [--json] COMMAND...\n"
			       "       wglbctl [-s SOCKET] top [SECONDS]\n"
			       "The socket defaults to $WGLB_SOCKET or %s.\n"
			       "'wglbctl help' lists the commands wglb understands.\n",
			       DEFAULT_SOCKET);
			return 0;
		default:
			return 2;
		}
	}
	if (optind == argc) {
		fprintf(stderr, "usage: wglbctl [-s SOCKET] [--json] COMMAND...\n");
		return 2;
	}
	fd = ctl_connect(sock);
	if (fd < 0)
		return 1;
	if (!strcmp(argv[optind], "top")) {
		ret = top(fd, optind + 1 < argc ? atoi(argv[optind + 1]) : 0);
		close(fd);
		return ret;
	}
	for (int i = optind; i < argc; i++) {
		if (strlen(cmd) + strlen(argv[i]) + 7 >= sizeof(cmd)) {
			fprintf(stderr, "wglbctl: command too long\n");
			return 2;
		}
		if (i > optind)
			strcat(cmd, " ");
		strcat(cmd, argv[i]);
	}
	if (json)
		strcat(cmd, " json");
	reply = roundtrip(fd, cmd);
	close(fd);
	if (!reply)
		return 1;
	fputs(reply, is_error(reply) ? stderr : stdout);
	ret = is_error(reply) ? 1 : 0;
	free(reply);
	return ret;
}
