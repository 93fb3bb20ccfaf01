// SPDX-License-Identifier: MIT
/*
 * A stand-in for the kernel's WireGuard generic-netlink family, loaded with
 * LD_PRELOAD. These machines have no WireGuard module, so this library is
 * how the tests (a) capture, byte for byte, what wireguard-tools' `wg`
 * sends for a change and (b) drive wg-health's kernel path.
 *
 * Only NETLINK_GENERIC sockets are faked; every other socket is real.
 *   FAKE_GENL_LOG    every message sent is appended here, raw
 *   FAKE_GENL_DUMP   the body of the WG_CMD_GET_DEVICE answer (netlink
 *                    messages, as the kernel would send); DONE is appended
 *   FAKE_GENL_ERRNO  answer WG_CMD_SET_DEVICE with this error (default 0)
 * CTRL_CMD_GETFAMILY "wireguard" is answered with FAKE_GENL_FAMILY.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/wireguard.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define FAKE_GENL_FAMILY 0x1d
#define FAKE_PORTID 4242u
#define MAX_FAKE 8
#define QCAP (1 << 20)

struct fake {
	int fd;
	size_t qlen, qoff;
	uint8_t q[QCAP];
};

/* glibc declares the sockaddr arguments as transparent unions under
 * _GNU_SOURCE; a definition has to use the same type. */
#ifdef __USE_GNU
#define SA(x) ((x).__sockaddr__)
#else
#define SA(x) (x)
#endif

static struct fake *fakes[MAX_FAKE];

static struct fake *find(int fd)
{
	for (int i = 0; i < MAX_FAKE; i++)
		if (fakes[i] && fakes[i]->fd == fd)
			return fakes[i];
	return NULL;
}

/* The next definition of name (libc's); memcpy because ISO C has no cast
 * from an object pointer to a function pointer. */
#define REAL(name, ret, ...)                                                                     \
	static ret (*real_##name)(__VA_ARGS__);                                                   \
	if (!real_##name) {                                                                       \
		void *sym_ = dlsym(RTLD_NEXT, #name);                                             \
		memcpy(&real_##name, &sym_, sizeof(sym_));                                        \
	}

int socket(int domain, int type, int protocol)
{
	REAL(socket, int, int, int, int);
	if (domain != AF_NETLINK || protocol != NETLINK_GENERIC)
		return real_socket(domain, type, protocol);
	for (int i = 0; i < MAX_FAKE; i++) {
		if (fakes[i])
			continue;
		fakes[i] = calloc(1, sizeof(*fakes[i]));
		if (!fakes[i])
			return -1;
		/* A real descriptor, so close() and fcntl() behave. */
		fakes[i]->fd = open("/dev/null", O_RDWR | ((type & SOCK_CLOEXEC) ? O_CLOEXEC : 0));
		if (fakes[i]->fd < 0) {
			free(fakes[i]);
			fakes[i] = NULL;
			return -1;
		}
		return fakes[i]->fd;
	}
	errno = EMFILE;
	return -1;
}

int close(int fd)
{
	REAL(close, int, int);
	for (int i = 0; i < MAX_FAKE; i++) {
		if (fakes[i] && fakes[i]->fd == fd) {
			free(fakes[i]);
			fakes[i] = NULL;
		}
	}
	return real_close(fd);
}

int bind(int fd, __CONST_SOCKADDR_ARG sa, socklen_t len)
{
	REAL(bind, int, int, __CONST_SOCKADDR_ARG, socklen_t);
	return find(fd) ? 0 : real_bind(fd, sa, len);
}

int getsockname(int fd, __SOCKADDR_ARG sa, socklen_t *len)
{
	REAL(getsockname, int, int, __SOCKADDR_ARG, socklen_t *);
	if (!find(fd))
		return real_getsockname(fd, sa, len);
	struct sockaddr_nl nl = {.nl_family = AF_NETLINK, .nl_pid = FAKE_PORTID};
	memcpy(SA(sa), &nl, *len < sizeof(nl) ? *len : sizeof(nl));
	*len = sizeof(nl);
	return 0;
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	REAL(setsockopt, int, int, int, int, const void *, socklen_t);
	return find(fd) ? 0 : real_setsockopt(fd, level, name, val, len);
}

static void enqueue(struct fake *f, const void *p, size_t len)
{
	if (f->qlen + len <= QCAP) {
		memcpy(f->q + f->qlen, p, len);
		f->qlen += len;
	}
}

/* An NLMSG_ERROR answer (0 = ACK) to req, as the kernel sends it. */
static void answer_error(struct fake *f, const struct nlmsghdr *req, int err)
{
	struct {
		struct nlmsghdr h;
		struct nlmsgerr e;
	} m = {
		.h = {.nlmsg_len = sizeof(m), .nlmsg_type = NLMSG_ERROR, .nlmsg_flags = NLM_F_CAPPED,
		      .nlmsg_seq = req->nlmsg_seq, .nlmsg_pid = FAKE_PORTID},
		.e = {.error = -err, .msg = *req},
	};
	enqueue(f, &m, sizeof(m));
}

static void answer_family(struct fake *f, const struct nlmsghdr *req)
{
	struct {
		struct nlmsghdr h;
		struct genlmsghdr g;
		struct nlattr a;
		uint16_t id;
		uint16_t pad;
	} m = {
		.h = {.nlmsg_len = sizeof(m), .nlmsg_type = GENL_ID_CTRL, .nlmsg_seq = req->nlmsg_seq,
		      .nlmsg_pid = FAKE_PORTID},
		.g = {.cmd = CTRL_CMD_NEWFAMILY, .version = 2},
		.a = {.nla_len = 6, .nla_type = CTRL_ATTR_FAMILY_ID},
		.id = FAKE_GENL_FAMILY,
	};
	enqueue(f, &m, sizeof(m));
	answer_error(f, req, 0);
}

static void answer_dump(struct fake *f, const struct nlmsghdr *req)
{
	const char *path = getenv("FAKE_GENL_DUMP");
	struct {
		struct nlmsghdr h;
		int err;
	} done = {
		.h = {.nlmsg_len = sizeof(done), .nlmsg_type = NLMSG_DONE, .nlmsg_flags = NLM_F_MULTI,
		      .nlmsg_seq = req->nlmsg_seq, .nlmsg_pid = FAKE_PORTID},
	};
	FILE *fp = path ? fopen(path, "rb") : NULL;

	if (!fp) {
		answer_error(f, req, ENODEV);
		return;
	}
	size_t start = f->qlen, n = fread(f->q + f->qlen, 1, QCAP - f->qlen - sizeof(done), fp);
	fclose(fp);
	f->qlen += n;
	/* The kernel stamps each part with the request's sequence number. */
	for (size_t off = start; off + sizeof(struct nlmsghdr) <= f->qlen;) {
		struct nlmsghdr *h = (struct nlmsghdr *)(f->q + off);
		if (h->nlmsg_len < sizeof(*h))
			break;
		h->nlmsg_seq = req->nlmsg_seq;
		h->nlmsg_pid = FAKE_PORTID;
		off += NLMSG_ALIGN(h->nlmsg_len);
	}
	enqueue(f, &done, sizeof(done));
}

static void logmsg(const void *buf, size_t len)
{
	const char *path = getenv("FAKE_GENL_LOG");
	FILE *fp = path ? fopen(path, "ab") : NULL;

	if (fp) {
		fwrite(buf, 1, len, fp);
		fclose(fp);
	}
}

static ssize_t fake_send(struct fake *f, const void *buf, size_t len)
{
	const struct nlmsghdr *h = buf;
	const struct genlmsghdr *g = (const void *)(h + 1);
	const char *e = getenv("FAKE_GENL_ERRNO");

	if (len < sizeof(*h) + sizeof(*g) || h->nlmsg_len != len) {
		errno = EINVAL;
		return -1;
	}
	logmsg(buf, len);
	if (h->nlmsg_type == GENL_ID_CTRL && g->cmd == CTRL_CMD_GETFAMILY)
		answer_family(f, h);
	else if (h->nlmsg_type == FAKE_GENL_FAMILY && g->cmd == WG_CMD_GET_DEVICE)
		answer_dump(f, h);
	else if (h->nlmsg_type == FAKE_GENL_FAMILY && g->cmd == WG_CMD_SET_DEVICE)
		answer_error(f, h, e ? atoi(e) : 0);
	else
		answer_error(f, h, EOPNOTSUPP);
	return (ssize_t)len;
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, __CONST_SOCKADDR_ARG sa,
	       socklen_t salen)
{
	REAL(sendto, ssize_t, int, const void *, size_t, int, __CONST_SOCKADDR_ARG, socklen_t);
	struct fake *f = find(fd);
	return f ? fake_send(f, buf, len) : real_sendto(fd, buf, len, flags, sa, salen);
}

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	REAL(send, ssize_t, int, const void *, size_t, int);
	struct fake *f = find(fd);
	return f ? fake_send(f, buf, len) : real_send(fd, buf, len, flags);
}

/* Whole messages only, as many as fit: what one netlink datagram holds. */
static ssize_t fake_recv(struct fake *f, void *buf, size_t len, int *msg_flags)
{
	size_t n = 0;

	while (f->qoff + n + sizeof(struct nlmsghdr) <= f->qlen) {
		const struct nlmsghdr *h = (const void *)(f->q + f->qoff + n);
		size_t l = NLMSG_ALIGN(h->nlmsg_len);
		if (n + l > len)
			break;
		n += l;
	}
	if (!n && f->qoff < f->qlen && msg_flags)
		*msg_flags |= MSG_TRUNC;
	if (!n) {
		errno = EAGAIN;
		return -1;
	}
	memcpy(buf, f->q + f->qoff, n);
	f->qoff += n;
	if (f->qoff == f->qlen)
		f->qoff = f->qlen = 0;
	return (ssize_t)n;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	REAL(recvmsg, ssize_t, int, struct msghdr *, int);
	struct fake *f = find(fd);
	if (!f)
		return real_recvmsg(fd, msg, flags);
	struct sockaddr_nl nl = {.nl_family = AF_NETLINK};
	msg->msg_flags = 0;
	if (msg->msg_name && msg->msg_namelen >= sizeof(nl)) {
		memcpy(msg->msg_name, &nl, sizeof(nl));
		msg->msg_namelen = sizeof(nl);
	}
	msg->msg_controllen = 0;
	return fake_recv(f, msg->msg_iov[0].iov_base, msg->msg_iov[0].iov_len, &msg->msg_flags);
}

ssize_t recvfrom(int fd, void *buf, size_t len, int flags, __SOCKADDR_ARG sa, socklen_t *salen)
{
	REAL(recvfrom, ssize_t, int, void *, size_t, int, __SOCKADDR_ARG, socklen_t *);
	struct fake *f = find(fd);
	if (!f)
		return real_recvfrom(fd, buf, len, flags, sa, salen);
	if (SA(sa) && salen && *salen >= sizeof(struct sockaddr_nl)) {
		struct sockaddr_nl nl = {.nl_family = AF_NETLINK};
		memcpy(SA(sa), &nl, sizeof(nl));
		*salen = sizeof(nl);
	}
	return fake_recv(f, buf, len, NULL);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	REAL(recv, ssize_t, int, void *, size_t, int);
	struct fake *f = find(fd);
	return f ? fake_recv(f, buf, len, NULL) : real_recv(fd, buf, len, flags);
}
