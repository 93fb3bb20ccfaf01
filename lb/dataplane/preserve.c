// SPDX-License-Identifier: MIT
/*
 * client_address = preserve: can this host send a client's datagrams from
 * the client's own address, and are the backends' replies to that
 * address delivered back to the socket that sent them? The first needs
 * CAP_NET_RAW (IP_TRANSPARENT); the second a policy route (packets that
 * the nftables `socket transparent` rule marks go to a table whose
 * default route is local), installed by wglb-preserve-routing. Asked of
 * the kernel at start and at each reload; until both hold, new flows go
 * from the balancer's address (counted as preserve_fallback).
 */
#include "dp.h"

#include <errno.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define PRESERVE_FIX "run `wglb-preserve-routing up` on the balancer, then reload wglb"

/* May this process make transparent sockets of this family? */
static int can_transparent(int family)
{
	int one = 1, fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0), e = 0;

	if (fd < 0)
		return -errno;
	if ((family == AF_INET ? setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one))
			       : setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one))) < 0)
		e = -errno;
	close(fd);
	return e;
}

static void rta_put(struct nlmsghdr *nh, unsigned short type, const void *data, size_t len)
{
	struct rtattr *a = (struct rtattr *)(void *)((char *)nh + NLMSG_ALIGN(nh->nlmsg_len));

	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	memcpy(RTA_DATA(a), data, len);
	nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + RTA_ALIGN(a->rta_len);
}

/* Is a packet marked WGLB_PRESERVE_MARK for a documentation address
 * (one no client has) delivered locally? 1 yes, 0 no, -errno. */
static int marked_is_local(int family)
{
	static const uint8_t v4[4] = {192, 0, 2, 1};
	static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};
	uint32_t mark = WGLB_PRESERVE_MARK;
	union {
		struct nlmsghdr nh;
		char buf[4096];
	} msg;
	union {
		struct nlmsghdr nh;
		char buf[256];
	} req = {0};
	struct rtmsg *rt = NLMSG_DATA(&req.nh);
	struct timeval tv = {.tv_sec = 1};
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	ssize_t n;
	int fd, ret;

	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct rtmsg));
	req.nh.nlmsg_type = RTM_GETROUTE;
	req.nh.nlmsg_flags = NLM_F_REQUEST;
	req.nh.nlmsg_seq = 1;
	rt->rtm_family = (unsigned char)family;
	rt->rtm_dst_len = family == AF_INET ? 32 : 128;
	rta_put(&req.nh, RTA_DST, family == AF_INET ? (const void *)v4 : (const void *)v6,
		family == AF_INET ? sizeof(v4) : sizeof(v6));
	rta_put(&req.nh, RTA_MARK, &mark, sizeof(mark));
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    sendto(fd, &req, req.nh.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0 ||
	    (n = recv(fd, &msg, sizeof(msg), 0)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	close(fd);
	if (!NLMSG_OK(&msg.nh, (size_t)n))
		return -EBADMSG;
	if (msg.nh.nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *err = NLMSG_DATA(&msg.nh);
		if (msg.nh.nlmsg_len < NLMSG_LENGTH(sizeof(*err)) || !err->error)
			return -EBADMSG;
		/* No route at all for a marked packet: the routing is not in place. */
		return err->error == -ENETUNREACH || err->error == -EHOSTUNREACH ? 0 : err->error;
	}
	if (msg.nh.nlmsg_type != RTM_NEWROUTE || msg.nh.nlmsg_len < NLMSG_LENGTH(sizeof(struct rtmsg)))
		return -EBADMSG;
	return ((const struct rtmsg *)NLMSG_DATA(&msg.nh))->rtm_type == RTN_LOCAL;
}

int fwd_preserve_check(const struct wglb_config *cfg, char *why, size_t size)
{
	bool fam[2] = {false, false}; /* [0] IPv4, [1] IPv6: the listeners' families */

	for (unsigned i = 0; i < cfg->n_listen; i++)
		fam[cfg->listen[i].u.sa.sa_family == AF_INET6] = true;
	for (int v6 = 0; v6 < 2; v6++) {
		int family = v6 ? AF_INET6 : AF_INET, r;
		if (!fam[v6])
			continue;
		r = can_transparent(family);
		if (r == -EPERM) {
			snprintf(why, size, "wglb may not send from clients' addresses: it needs "
				 "CAP_NET_RAW (the systemd unit's AmbientCapabilities) or root");
			return -1;
		}
		if (r < 0) {
			snprintf(why, size, "transparent %s sockets: %s", v6 ? "IPv6" : "IPv4",
				 strerror(-r));
			return -1;
		}
		r = marked_is_local(family);
		if (r <= 0) {
			snprintf(why, size, "backends' %s replies to clients' addresses would not reach "
				 "wglb (%s: no local route for mark 0x%x); " PRESERVE_FIX,
				 v6 ? "IPv6" : "IPv4", r < 0 ? strerror(-r) : "routing not in place",
				 WGLB_PRESERVE_MARK);
			return -1;
		}
	}
	return 0;
}

void dp_preserve_configure(struct loop *l, struct fwd *dp, const struct wglb_config *nc)
{
	char why[256];

	dp->preserve_ok = false;
	if (nc->client_address != CLIENT_PRESERVE)
		return;
	dp->preserve_ok = fwd_preserve_check(nc, why, sizeof(why)) == 0;
	if (l->worker_id)
		return; /* said once, by the main thread */
	if (dp->preserve_ok)
		log_info("client_address = preserve: backends see their clients' own addresses");
	else
		log_err("client_address = preserve cannot work yet: %s. Until then new flows go "
			"from the balancer's address", why);
}
