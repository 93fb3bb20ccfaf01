// SPDX-License-Identifier: MIT
/*
 * The link check: one RTM_GETLINK request by name, answered by the kernel
 * with one RTM_NEWLINK, parsed with libmnl's attribute callbacks (one per
 * nesting level, mnl_attr_validate on each), as wireguard-tools does.
 */
#include "wglb/rtnl.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <net/if.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct link_reply {
	bool found, up, wireguard;
	char name[IFNAMSIZ];
};

/* IFLA_LINKINFO's level: the kind ("wireguard" for the kernel module). */
static int linkinfo_attr_cb(const struct nlattr *attr, void *data)
{
	struct link_reply *r = data;

	if (mnl_attr_type_valid(attr, IFLA_INFO_MAX) < 0)
		return MNL_CB_OK;
	if (mnl_attr_get_type(attr) == IFLA_INFO_KIND) {
		if (mnl_attr_validate(attr, MNL_TYPE_STRING) < 0)
			return MNL_CB_ERROR;
		r->wireguard = mnl_attr_get_payload_len(attr) >= 9 &&
			       !strncmp(mnl_attr_get_str(attr), "wireguard", 9);
	}
	return MNL_CB_OK;
}

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
	if (mnl_attr_get_type(attr) == IFLA_LINKINFO) {
		if (mnl_attr_validate(attr, MNL_TYPE_NESTED) < 0 ||
		    mnl_attr_parse_nested(attr, linkinfo_attr_cb, r) < 0)
			return MNL_CB_ERROR;
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

/* One RTM_GETLINK, by name (ifindex 0) or by index. */
static int link_query(const char *ifname, int ifindex, struct link_reply *r)
{
	char buf[8192]; /* MNL_SOCKET_BUFFER_SIZE is a run-time value: a VLA */
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	unsigned seq = (unsigned)time(NULL), portid;
	ssize_t n;
	int ret;

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
	ifm->ifi_index = ifindex;
	if (ifname)
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
	ret = mnl_cb_run(buf, (size_t)n, seq, portid, link_cb, r);
	if (ret < 0) {
		/* The kernel's NLMSG_ERROR for an unknown link arrives as errno. */
		ret = errno == ENODEV ? -ENODEV : -errno;
		goto out;
	}
	ret = r->found ? 0 : -ENODEV;
out:
	mnl_socket_close(nl);
	return ret;
}

int nl_link_state(const char *ifname, bool *up)
{
	struct link_reply r = {0};
	int ret;

	if (strlen(ifname) >= IFNAMSIZ)
		return -EINVAL;
	ret = link_query(ifname, 0, &r);
	if (ret < 0)
		return ret;
	if (strcmp(r.name, ifname))
		return -ENODEV;
	*up = r.up;
	return 0;
}

int nl_link_by_index(int ifindex, char name[IFNAMSIZ], bool *wireguard)
{
	struct link_reply r = {0};
	int ret;

	if (ifindex <= 0)
		return -EINVAL;
	ret = link_query(NULL, ifindex, &r);
	if (ret < 0)
		return ret;
	memcpy(name, r.name, IFNAMSIZ);
	*wireguard = r.wireguard;
	return 0;
}
