// SPDX-License-Identifier: MIT
/*
 * The link check: one RTM_GETLINK request by name, answered by the kernel
 * with one RTM_NEWLINK, parsed with libmnl's attribute callbacks (one per
 * nesting level, mnl_attr_validate on each), as wireguard-tools does.
 * Routes and policy rules for client address preservation: a lookup
 * (RTM_GETROUTE), the default route of one table, the rule that sends
 * marked packets to it. Every exchange waits at most 2 s for each answer.
 */
#include "wglb/rtnl.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <net/if.h>
#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define NL_TIMEOUT_S 2

/* Send the request at nlh and run cb (may be NULL) over the answers until
 * the ACK, the dump's end, an error or cb's MNL_CB_STOP. 0 or -errno. */
static int talk(struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	static const int one = 1;
	char buf[16384];
	struct timeval tv = {.tv_sec = NL_TIMEOUT_S};
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	unsigned portid;
	int ret;

	if (!nl)
		return -errno;
	/* A kernel that does not answer must not hang a health check. */
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		ret = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);
	/* A dump of routes then holds only the table asked for (kernels
	 * before 4.20 send all: route_dump_cb filters as well). */
	if ((nlh->nlmsg_flags & NLM_F_DUMP) &&
	    setsockopt(mnl_socket_get_fd(nl), SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one,
		       sizeof(one)) < 0 && errno != ENOPROTOOPT) {
		ret = -errno;
		goto out;
	}
	nlh->nlmsg_seq = (unsigned)time(NULL);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		goto out;
	}
	do {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0) {
			ret = errno == EAGAIN ? -ETIMEDOUT : -errno;
			goto out;
		}
		ret = mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, portid, cb, data);
	} while (ret > 0);
	if (ret < 0)
		ret = -errno; /* the kernel's NLMSG_ERROR, or a malformed answer */
out:
	mnl_socket_close(nl);
	return ret;
}

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
	char buf[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifm;
	int ret;

	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	ifm->ifi_index = ifindex;
	if (ifname)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname);
	/* The kernel's NLMSG_ERROR for an unknown link arrives as -ENODEV. */
	ret = talk(nlh, link_cb, r);
	if (ret == 0 && !r->found)
		ret = -ENODEV;
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

/* ---- routes and rules -------------------------------------------------- */

static size_t addr_len(int family)
{
	return family == AF_INET6 ? 16 : 4;
}

static int route_attr_cb(const struct nlattr *attr, void *data)
{
	struct nl_route *r = data;
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, RTA_MAX) < 0)
		return MNL_CB_OK;
	switch (type) {
	case RTA_OIF:
	case RTA_TABLE:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
			return MNL_CB_ERROR;
		if (type == RTA_OIF)
			r->oif = (int)mnl_attr_get_u32(attr);
		else
			r->table = mnl_attr_get_u32(attr);
		break;
	case RTA_GATEWAY:
		if (mnl_attr_get_payload_len(attr) != addr_len(r->family)) {
			errno = EBADMSG;
			return MNL_CB_ERROR;
		}
		memcpy(r->gw, mnl_attr_get_payload(attr), addr_len(r->family));
		r->has_gw = true;
		break;
	}
	return MNL_CB_OK;
}

/* One RTM_NEWROUTE into r: 0 or -1 with errno. */
static int route_parse(const struct nlmsghdr *nlh, struct nl_route *r)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(nlh);

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*rtm) || rtm->rtm_family != r->family) {
		errno = EBADMSG;
		return -1;
	}
	r->type = rtm->rtm_type;
	r->dst_len = rtm->rtm_dst_len;
	r->table = rtm->rtm_table;
	if (mnl_attr_parse(nlh, sizeof(*rtm), route_attr_cb, r) < 0)
		return -1;
	r->found = true;
	return 0;
}

static int route_cb(const struct nlmsghdr *nlh, void *data)
{
	if (nlh->nlmsg_type != RTM_NEWROUTE)
		return MNL_CB_OK;
	return route_parse(nlh, data) < 0 ? MNL_CB_ERROR : MNL_CB_STOP;
}

/* A dump's routes: stop at the first default route of out->table. */
static int route_dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct nl_route *out = data, r = {.family = out->family};

	if (nlh->nlmsg_type != RTM_NEWROUTE)
		return MNL_CB_OK;
	if (route_parse(nlh, &r) < 0)
		return MNL_CB_ERROR;
	if (r.table != out->table || r.dst_len != 0 || r.type != RTN_UNICAST)
		return MNL_CB_OK;
	*out = r;
	return MNL_CB_STOP;
}

int nl_route_get(int family, const void *dst, const void *src, uint32_t mark, struct nl_route *out)
{
	char buf[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;
	int ret;

	memset(out, 0, sizeof(*out));
	out->family = family;
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (unsigned char)family;
	rtm->rtm_dst_len = (unsigned char)(8 * addr_len(family));
	/* IPv4 names the table the route came from only when asked (else
	 * "main"); IPv6 always does. */
	if (family == AF_INET)
		rtm->rtm_flags = RTM_F_LOOKUP_TABLE;
	mnl_attr_put(nlh, RTA_DST, addr_len(family), dst);
	if (src) {
		rtm->rtm_src_len = (unsigned char)(8 * addr_len(family));
		mnl_attr_put(nlh, RTA_SRC, addr_len(family), src);
	}
	if (mark)
		mnl_attr_put_u32(nlh, RTA_MARK, mark);
	ret = talk(nlh, route_cb, out);
	if (ret == 0 && !out->found)
		ret = -ENOENT;
	return ret;
}

int nl_route_table_default(int family, uint32_t table, struct nl_route *out)
{
	char buf[256];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;
	int ret;

	memset(out, 0, sizeof(*out));
	out->family = family;
	out->table = table;
	nlh->nlmsg_type = RTM_GETROUTE;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (unsigned char)family;
	rtm->rtm_table = table < 256 ? (unsigned char)table : RT_TABLE_UNSPEC;
	mnl_attr_put_u32(nlh, RTA_TABLE, table);
	ret = talk(nlh, route_dump_cb, out);
	if (ret == 0 && !out->found)
		ret = -ENOENT;
	return ret;
}

/* An RTM_NEWROUTE or RTM_DELROUTE for "default via gw [dev oif] table T". */
static struct nlmsghdr *default_route_msg(char *buf, uint16_t type, uint16_t flags, int family,
					  const void *gw, int oif, uint32_t table)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct rtmsg *rtm;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (unsigned char)family;
	/* Tables past 255 only fit the attribute; iproute2 sends both. */
	rtm->rtm_table = table < 256 ? (unsigned char)table : RT_TABLE_UNSPEC;
	rtm->rtm_protocol = RTPROT_STATIC;
	rtm->rtm_scope = RT_SCOPE_UNIVERSE;
	rtm->rtm_type = RTN_UNICAST;
	mnl_attr_put_u32(nlh, RTA_TABLE, table);
	mnl_attr_put(nlh, RTA_GATEWAY, addr_len(family), gw);
	if (oif > 0)
		mnl_attr_put_u32(nlh, RTA_OIF, (uint32_t)oif);
	return nlh;
}

int nl_route_default_set(int family, const void *gw, int oif, uint32_t table)
{
	char buf[256];

	return talk(default_route_msg(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, family, gw,
				      oif, table),
		    NULL, NULL);
}

int nl_route_default_del(int family, const void *gw, uint32_t table)
{
	char buf[256];

	return talk(default_route_msg(buf, RTM_DELROUTE, 0, family, gw, 0, table), NULL, NULL);
}

struct rule_match {
	uint32_t mark, table;
	const uint8_t *src; /* NULL: a rule with no source selector */
	size_t alen;
	int count;
	/* of the rule being parsed */
	uint32_t r_mark, r_mask, r_table;
	uint8_t r_src[16];
	bool r_other; /* a selector besides the mark and source: not our rule */
};

static int rule_attr_cb(const struct nlattr *attr, void *data)
{
	struct rule_match *m = data;
	int type = mnl_attr_get_type(attr);

	if (mnl_attr_type_valid(attr, FRA_MAX) < 0)
		return MNL_CB_OK;
	switch (type) {
	case FRA_FWMARK:
	case FRA_FWMASK:
	case FRA_TABLE:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
			return MNL_CB_ERROR;
		if (type == FRA_FWMARK)
			m->r_mark = mnl_attr_get_u32(attr);
		else if (type == FRA_FWMASK)
			m->r_mask = mnl_attr_get_u32(attr);
		else
			m->r_table = mnl_attr_get_u32(attr);
		break;
	case FRA_SRC:
		if (mnl_attr_get_payload_len(attr) != m->alen) {
			m->r_other = true; /* another family's length: not ours */
			break;
		}
		memcpy(m->r_src, mnl_attr_get_payload(attr), m->alen);
		break;
	case FRA_IIFNAME:
	case FRA_OIFNAME:
	case FRA_UID_RANGE:
	case FRA_IP_PROTO:
	case FRA_SPORT_RANGE:
	case FRA_DPORT_RANGE:
		m->r_other = true;
		break;
	}
	return MNL_CB_OK;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data)
{
	struct rule_match *m = data;
	const struct fib_rule_hdr *frh = mnl_nlmsg_get_payload(nlh);

	if (nlh->nlmsg_type != RTM_NEWRULE)
		return MNL_CB_OK;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*frh)) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	m->r_mark = 0;
	m->r_mask = UINT32_MAX; /* the kernel's for a mark given alone */
	m->r_table = frh->table;
	memset(m->r_src, 0, sizeof(m->r_src));
	m->r_other = frh->dst_len || frh->tos || (frh->flags & FIB_RULE_INVERT) ||
		     frh->src_len != (m->src ? 8 * m->alen : 0);
	if (mnl_attr_parse(nlh, sizeof(*frh), rule_attr_cb, m) < 0)
		return MNL_CB_ERROR;
	if (frh->action == FR_ACT_TO_TBL && !m->r_other && m->r_mark == m->mark &&
	    m->r_mask == UINT32_MAX && m->r_table == m->table &&
	    (!m->src || !memcmp(m->r_src, m->src, m->alen)))
		m->count++;
	return MNL_CB_OK;
}

/* An RTM_*RULE for "[from SRC] fwmark MARK lookup TABLE". */
static struct nlmsghdr *rule_msg(char *buf, uint16_t type, uint16_t flags, int family,
				 const void *src, uint32_t mark, uint32_t table)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct fib_rule_hdr *frh;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	frh = mnl_nlmsg_put_extra_header(nlh, sizeof(*frh));
	frh->family = (unsigned char)family;
	if (type == RTM_GETRULE)
		return nlh;
	frh->action = FR_ACT_TO_TBL;
	frh->table = table < 256 ? (unsigned char)table : RT_TABLE_UNSPEC;
	mnl_attr_put_u32(nlh, FRA_TABLE, table);
	mnl_attr_put_u32(nlh, FRA_FWMARK, mark);
	if (src) {
		frh->src_len = (unsigned char)(8 * addr_len(family));
		mnl_attr_put(nlh, FRA_SRC, addr_len(family), src);
	}
	return nlh;
}

int nl_rule_count(int family, const void *src, uint32_t mark, uint32_t table)
{
	char buf[256];
	struct rule_match m = {.mark = mark, .table = table, .src = src, .alen = addr_len(family)};
	int ret = talk(rule_msg(buf, RTM_GETRULE, NLM_F_DUMP, family, NULL, 0, 0), rule_cb, &m);

	return ret < 0 ? ret : m.count;
}

int nl_rule_add(int family, const void *src, uint32_t mark, uint32_t table)
{
	char buf[256];

	return talk(rule_msg(buf, RTM_NEWRULE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, family, src,
			     mark, table),
		    NULL, NULL);
}

int nl_rule_del(int family, const void *src, uint32_t mark, uint32_t table)
{
	char buf[256];

	return talk(rule_msg(buf, RTM_DELRULE, NLM_F_ACK, family, src, mark, table), NULL, NULL);
}
