// SPDX-License-Identifier: MIT
/*
 * The link check: one RTM_GETLINK request by name, answered by the kernel
 * with one RTM_NEWLINK, parsed with libmnl's attribute callbacks (one per
 * nesting level, mnl_attr_validate on each), as wireguard-tools does.
 */
#include "wglb/rtnl.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct link_reply {
	bool found, up;
	char name[IFNAMSIZ];
};

static int link_attr_cb(const struct nlattr *attr, void *data)
{
	struct link_reply *r = data;

	if (mnl_attr_type_valid(attr, IFLA_MAX) < 0)
		return MNL_CB_OK; /* newer kernel attribute: ignore */
	if (mnl_attr_get_type(attr) == IFLA_IFNAME) {
		if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) < 0)
			return MNL_CB_ERROR;
		snprintf(r->name, sizeof(r->name), "%s", mnl_attr_get_str(attr));
	}
	return MNL_CB_OK;
}

static int link_cb(const struct nlmsghdr *nlh, void *data)
{
	struct link_reply *r = data;
	const struct ifinfomsg *ifm = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	if (mnl_attr_parse(nlh, sizeof(*ifm), link_attr_cb, r) < 0)
		return MNL_CB_ERROR;
	r->found = true;
	r->up = ifm->ifi_flags & IFF_UP;
	return MNL_CB_STOP;
}

int nl_link_state(const char *ifname, bool *up)
{
	char buf[8192]; /* MNL_SOCKET_BUFFER_SIZE is a run-time value: a VLA */
	struct link_reply r = {0};
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	unsigned seq = (unsigned)time(NULL), portid;
	ssize_t n;
	int ret;

	if (strlen(ifname) >= IFNAMSIZ)
		return -EINVAL;
	nl = mnl_socket_open(NETLINK_ROUTE);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = seq;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	ret = mnl_cb_run(buf, (size_t)n, seq, portid, link_cb, &r);
	if (ret < 0) {
		/* The kernel's NLMSG_ERROR for an unknown name arrives as errno. */
		ret = errno == ENODEV ? -ENODEV : -errno;
		goto out;
	}
	if (!r.found || strcmp(r.name, ifname)) {
		ret = -ENODEV;
		goto out;
	}
	*up = r.up;
	ret = 0;
out:
	mnl_socket_close(nl);
	return ret;
}
