// SPDX-License-Identifier: MIT
/*
 * Client address preservation on a backend (see route_setup.h): the
 * device's fwmark through wgdev, the rule and the route through rtnl, the
 * reverse-path filter through /proc/sys. Setup first refuses what is not
 * ours to change (another fwmark on the device, another default route in
 * the table), then goes in an order in which no step alone moves a packet:
 * the table gets its route before a rule points at it, and WireGuard's
 * packets are marked last. Undo goes the other way round.
 */
#include "wglb/route_setup.h"
#include "wglb/rtnl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <nftables/libnftables.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RULES_MAX 64 /* copies of our rule undo removes at most */

/* Documentation addresses (RFC 5737, RFC 3849): "any client" for the
 * marked lookup, never a real one. */
static const uint8_t doc_dst4[4] = {203, 0, 113, 1};
static const uint8_t doc_dst6[16] = {0x20, 0x01, 0x0d, 0xb8, [15] = 1};

int rsetup_init(struct rsetup *rs, const char *device, const char *via, uint32_t mark,
		uint32_t table, const char *state_dir)
{
	memset(rs, 0, sizeof(*rs));
	if (!mark || !table || (table >= RT_TABLE_COMPAT && table <= RT_TABLE_LOCAL))
		return -EINVAL;
	if (inet_pton(AF_INET, via, rs->via) == 1)
		rs->family = AF_INET;
	else if (inet_pton(AF_INET6, via, rs->via) == 1)
		rs->family = AF_INET6;
	else
		return -EINVAL;
	if (!inet_ntop(rs->family, rs->via, rs->via_str, sizeof(rs->via_str)))
		return -EINVAL;
	rs->device = device;
	rs->mark = mark;
	rs->table = table;
	rs->state_dir = state_dir ? state_dir : RSETUP_STATE_DIR;
	return 0;
}

int rsetup_from(struct rsetup *rs, const char *from)
{
	if (inet_pton(rs->family, from, rs->from) != 1 ||
	    !inet_ntop(rs->family, rs->from, rs->from_str, sizeof(rs->from_str)))
		return -EINVAL;
	rs->has_from = true;
	return 0;
}

static const void *from_of(const struct rsetup *rs)
{
	return rs->has_from ? rs->from : NULL;
}

/* "[from F ]fwmark 0xM lookup T": the rule as ip rule shows it. */
static const char *rule_str(const struct rsetup *rs, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%sfwmark 0x%x lookup %u", rs->has_from ? "from " : "",
		 rs->has_from ? rs->from_str : "", rs->has_from ? " " : "", rs->mark, rs->table);
	return buf;
}

static size_t alen(const struct rsetup *rs)
{
	return rs->family == AF_INET6 ? 16 : 4;
}

static const void *doc_dst(const struct rsetup *rs)
{
	return rs->family == AF_INET6 ? (const void *)doc_dst6 : (const void *)doc_dst4;
}

static bool via_balancer(const struct rsetup *rs, const struct nl_route *r)
{
	return r->has_gw && !memcmp(r->gw, rs->via, alen(rs));
}

/* "via G dev IF" or "dev IF" for where a lookup went. */
static const char *route_str(const struct rsetup *rs, const struct nl_route *r, char *buf,
			     size_t size)
{
	char gw[INET6_ADDRSTRLEN] = "", dev[IF_NAMESIZE] = "?";

	if (r->has_gw && !inet_ntop(rs->family, r->gw, gw, sizeof(gw)))
		snprintf(gw, sizeof(gw), "?");
	if (r->oif > 0 && !if_indextoname((unsigned)r->oif, dev))
		snprintf(dev, sizeof(dev), "%d", r->oif);
	snprintf(buf, size, "%s%s%sdev %s", r->has_gw ? "via " : "", gw, r->has_gw ? " " : "", dev);
	return buf;
}

/* The interface the balancer is reached on, with no mark. It must be a
 * neighbour: a gateway route through a third host takes replies past it. */
static int balancer_link(const struct rsetup *rs, int *oif, char name[IF_NAMESIZE])
{
	struct nl_route r;
	char gw[INET6_ADDRSTRLEN];
	bool wireguard;
	int ret = nl_route_get(rs->family, rs->via, NULL, 0, &r);

	if (ret < 0) {
		fprintf(stderr, "wg-health: no route to %s: %s\n", rs->via_str, strerror(-ret));
		return ret;
	}
	if (r.type == RTN_LOCAL) {
		fprintf(stderr, "wg-health: %s is this host's own address, not the balancer's\n",
			rs->via_str);
		return -EINVAL;
	}
	if (r.has_gw) {
		fprintf(stderr, "wg-health: %s is reached via %s, not directly: the balancer must be "
			"on a network this host is attached to\n", rs->via_str,
			inet_ntop(rs->family, r.gw, gw, sizeof(gw)) ? gw : "a gateway");
		return -EINVAL;
	}
	ret = nl_link_by_index(r.oif, name, &wireguard);
	if (ret < 0) {
		fprintf(stderr, "wg-health: the interface toward %s (index %d): %s\n", rs->via_str,
			r.oif, strerror(-ret));
		return ret;
	}
	*oif = r.oif;
	return 0;
}

/* ---- rp_filter ---------------------------------------------------------- */

static int read_int(const char *path, int *v)
{
	FILE *f = fopen(path, "re");
	int ret = 0;

	if (!f)
		return -errno;
	if (fscanf(f, "%d", v) != 1)
		ret = -EPROTO;
	fclose(f);
	return ret;
}

/* Write "v\n" to fd. A short write sets no errno: what errno holds then is
 * left over from an earlier call (mkdir's EEXIST), so it gets -EIO. */
static int write_fd_int(int fd, int v)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%d\n", v);
	ssize_t w = write(fd, buf, (size_t)n);

	if (w < 0)
		return -errno;
	return w == n ? 0 : -EIO;
}

/* Write "v\n" to an existing file (a /proc/sys knob). */
static int write_int(const char *path, int v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	ret = write_fd_int(fd, v);
	if (close(fd) < 0 && !ret)
		ret = -errno;
	return ret;
}

/* Create path (mode 0600) holding "v\n", or -EEXIST if it is there. The
 * value is written whole to a temporary file in the same directory and
 * linked into place, which fails if path exists: a write that fails leaves
 * no empty or partial file for a later setup to take for a saved value. */
static int write_new_int(const char *dir, const char *path, int v)
{
	char tmp[512];
	int fd, ret;

	if (snprintf(tmp, sizeof(tmp), "%s/.rp_filter.XXXXXX", dir) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0)
		return -errno;
	ret = write_fd_int(fd, v);
	if (ret == 0 && fsync(fd) < 0) /* whole before it has the name */
		ret = -errno;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (ret == 0 && link(tmp, path) < 0)
		ret = -errno;
	unlink(tmp);
	return ret;
}

/* 0, or -ENAMETOOLONG for a state dir too long to name the file in. */
static int rp_paths(const struct rsetup *rs, const char *ifname, char *conf, size_t conf_size,
		    char *state, size_t state_size)
{
	snprintf(conf, conf_size, "/proc/sys/net/ipv4/conf/%s/rp_filter", ifname);
	if ((size_t)snprintf(state, state_size, "%s/rp_filter.%s", rs->state_dir, ifname) >= state_size)
		return -ENAMETOOLONG;
	return 0;
}

/* The kernel filters by the larger of conf/all and conf/IF; 2 (loose)
 * accepts a client's source as long as some route leads back to it. */
static int rp_effective(const char *ifname, int *value, int *own)
{
	char path[96];
	int all, ret;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/rp_filter", ifname);
	ret = read_int(path, own);
	if (ret == 0)
		ret = read_int("/proc/sys/net/ipv4/conf/all/rp_filter", &all);
	if (ret == 0)
		*value = all > *own ? all : *own;
	return ret;
}

static int rp_setup(const struct rsetup *rs, const char *ifname, FILE *out)
{
	char conf[96], state[512];
	int value, own, ret = rp_effective(ifname, &value, &own);

	if (ret < 0) {
		fprintf(stderr, "wg-health: %s: reading rp_filter: %s\n", ifname, strerror(-ret));
		return ret;
	}
	if (value != 1) {
		fprintf(out, "%s: rp_filter %d: accepts client sources already\n", ifname, value);
		return 0;
	}
	ret = rp_paths(rs, ifname, conf, sizeof(conf), state, sizeof(state));
	if (ret < 0) {
		fprintf(stderr, "wg-health: %s: %s\n", rs->state_dir, strerror(-ret));
		return ret;
	}
	/* Keep the value from before the first setup: a second run must not
	 * save our own 2 as the one to restore. */
	if (mkdir(rs->state_dir, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		fprintf(stderr, "wg-health: %s: %s\n", rs->state_dir, strerror(-ret));
		return ret;
	}
	ret = write_new_int(rs->state_dir, state, own);
	if (ret < 0 && ret != -EEXIST) {
		fprintf(stderr, "wg-health: %s: %s\n", state, strerror(-ret));
		return ret;
	}
	ret = write_int(conf, 2);
	if (ret < 0) {
		fprintf(stderr, "wg-health: %s: setting rp_filter to 2: %s\n", ifname, strerror(-ret));
		return ret;
	}
	fprintf(out, "%s: rp_filter %d -> 2 (loose), the old value saved in %s\n", ifname, own, state);
	return 0;
}

/* A name after "rp_filter." in the state dir, before it goes into a path
 * under /proc/sys: one component, an interface's (the kernel refuses "/",
 * ":" and white space; "all" and "default" are not interfaces). */
static bool ifname_ok(const char *name)
{
	size_t n = strlen(name);

	if (!n || n >= IF_NAMESIZE || !strcmp(name, ".") || strstr(name, "..") ||
	    !strcmp(name, "all") || !strcmp(name, "default"))
		return false;
	for (; *name; name++)
		if (*name == '/' || *name == ':' || isspace((unsigned char)*name))
			return false;
	return true;
}

static int rp_restore(const struct rsetup *rs, const char *ifname, FILE *out)
{
	char conf[96], state[512];
	int old, ret;

	ret = rp_paths(rs, ifname, conf, sizeof(conf), state, sizeof(state));
	if (ret == 0)
		ret = read_int(state, &old);
	if (ret == 0 && (old < 0 || old > 2))
		ret = -ERANGE;
	if (ret == 0)
		ret = write_int(conf, old);
	if (ret == 0 && unlink(state) < 0)
		ret = -errno;
	if (ret < 0) {
		fprintf(stderr, "wg-health: %s: restoring rp_filter from %s: %s\n", ifname, state,
			strerror(-ret));
		return ret;
	}
	fprintf(out, "%s: rp_filter restored to %d\n", ifname, old);
	return 0;
}

/* Every value saved in the state dir, whatever route the balancer has
 * now: undo must work with the balancer gone, and the file names the
 * interface. */
static int rp_undo(const struct rsetup *rs, FILE *out)
{
	static const char prefix[] = "rp_filter.";
	DIR *d = opendir(rs->state_dir);
	struct dirent *e;
	int ret, first = 0, n = 0;

	if (!d && errno == ENOENT) {
		fprintf(out, "rp_filter: nothing saved in %s, left as it is\n", rs->state_dir);
		return 0;
	}
	if (!d) {
		ret = -errno;
		fprintf(stderr, "wg-health: %s: %s\n", rs->state_dir, strerror(-ret));
		return ret;
	}
	while ((errno = 0, e = readdir(d))) {
		const char *ifname = e->d_name + sizeof(prefix) - 1;

		if (strncmp(e->d_name, prefix, sizeof(prefix) - 1))
			continue;
		if (!ifname_ok(ifname)) {
			fprintf(stderr, "wg-health: %s/%s: not an interface's name, left as it is\n",
				rs->state_dir, e->d_name);
			continue;
		}
		ret = rp_restore(rs, ifname, out);
		first = first ? first : ret;
		n++;
	}
	if (errno && !first) {
		first = -errno;
		fprintf(stderr, "wg-health: reading %s: %s\n", rs->state_dir, strerror(-first));
	}
	closedir(d);
	if (!n && !first)
		fprintf(out, "rp_filter: nothing saved in %s, left as it is\n", rs->state_dir);
	return first;
}

/* ---- ICMP errors back through the balancer -------------------------------- */

/* When WireGuard's port is closed (its interface went down, wireguard-go
 * died) the kernel answers a client's datagram with a port unreachable,
 * addressed to the client: without help it takes the main table's way,
 * not the balancer's, and wglb loses the hint that fails the backend at
 * once (it waits for two probes instead). Incoming datagrams for the
 * port get the mark (nftables, table inet wglb_reply), and fwmark_reflect
 * gives the kernel's reply the mark of what it answers, so the error
 * follows the marked rule to the balancer, whose socket lookup delivers it
 * to the flow's socket. */
#define REPLY_TABLE "wglb_reply"

static int nft_run(const char *cmd, char *out, size_t size)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	int ret;

	if (!ctx)
		return -ENOMEM;
	if (nft_ctx_buffer_output(ctx) || nft_ctx_buffer_error(ctx)) {
		nft_ctx_free(ctx);
		return -ENOMEM;
	}
	ret = nft_run_cmd_from_buffer(ctx, cmd) ? -EIO : 0;
	if (out)
		snprintf(out, size, "%s", ret ? nft_ctx_get_error_buffer(ctx) : nft_ctx_get_output_buffer(ctx));
	nft_ctx_free(ctx);
	return ret;
}

/* 1 when the table holds the rule for port and mark, 0 when not, -errno. */
static int reply_rule_in_place(const struct rsetup *rs, int port)
{
	char out[2048], want[96];

	if (nft_run("list table inet " REPLY_TABLE, out, sizeof(out)) < 0)
		return 0; /* no such table */
	snprintf(want, sizeof(want), "udp dport %d meta mark set 0x%08x", port, rs->mark);
	return strstr(out, want) != NULL;
}

static const char *reflect_path(int v6)
{
	return v6 ? "/proc/sys/net/ipv6/fwmark_reflect" : "/proc/sys/net/ipv4/fwmark_reflect";
}

static int reply_setup(const struct rsetup *rs, int port, FILE *out)
{
	char cmd[512], err[512], state[512];
	int ret, v;

	if (reply_rule_in_place(rs, port) == 1) {
		fprintf(out, "nftables: table inet " REPLY_TABLE " marks datagrams to port %d: in place\n",
			port);
	} else {
		/* Replaced whole and at once: a stale port's rule goes too. */
		snprintf(cmd, sizeof(cmd),
			 "table inet " REPLY_TABLE "\ndelete table inet " REPLY_TABLE "\n"
			 "table inet " REPLY_TABLE " {\n chain prerouting {\n"
			 "  type filter hook prerouting priority mangle; policy accept;\n"
			 "  udp dport %d meta mark set 0x%x\n }\n}\n", port, rs->mark);
		ret = nft_run(cmd, err, sizeof(err));
		if (ret < 0) {
			fprintf(stderr, "wg-health: nftables: table inet " REPLY_TABLE ": %s", err);
			return ret;
		}
		fprintf(out, "nftables: table inet " REPLY_TABLE " marks datagrams to port %d: added\n",
			port);
	}
	for (int v6 = 0; v6 < 2; v6++) {
		if (access(reflect_path(v6), F_OK) < 0)
			continue; /* IPv6 off */
		ret = read_int(reflect_path(v6), &v);
		if (ret == 0 && v == 1) {
			fprintf(out, "%s: 1: in place\n", reflect_path(v6) + 10);
			continue;
		}
		snprintf(state, sizeof(state), "%s/fwmark_reflect.%s", rs->state_dir, v6 ? "ipv6" : "ipv4");
		if (ret == 0 && mkdir(rs->state_dir, 0700) < 0 && errno != EEXIST)
			ret = -errno;
		if (ret == 0) {
			ret = write_new_int(rs->state_dir, state, v);
			ret = ret == -EEXIST ? 0 : ret;
		}
		if (ret == 0)
			ret = write_int(reflect_path(v6), 1);
		if (ret < 0) {
			fprintf(stderr, "wg-health: %s: %s\n", reflect_path(v6), strerror(-ret));
			return ret;
		}
		fprintf(out, "%s: %d -> 1, the old value saved in %s\n", reflect_path(v6) + 10, v, state);
	}
	return 0;
}

static int reply_undo(const struct rsetup *rs, FILE *out)
{
	char err[512], state[512];
	int ret, old, first = 0;

	if (nft_run("list table inet " REPLY_TABLE, NULL, 0) == 0) {
		ret = nft_run("delete table inet " REPLY_TABLE, err, sizeof(err));
		if (ret < 0)
			fprintf(stderr, "wg-health: nftables: deleting table inet " REPLY_TABLE ": %s", err);
		else
			fprintf(out, "nftables: table inet " REPLY_TABLE ": removed\n");
		first = ret;
	} else {
		fprintf(out, "nftables: table inet " REPLY_TABLE ": not there\n");
	}
	for (int v6 = 0; v6 < 2; v6++) {
		snprintf(state, sizeof(state), "%s/fwmark_reflect.%s", rs->state_dir, v6 ? "ipv6" : "ipv4");
		ret = read_int(state, &old);
		if (ret == -ENOENT)
			continue; /* never changed by us */
		if (ret == 0 && (old < 0 || old > 1))
			ret = -ERANGE;
		if (ret == 0)
			ret = write_int(reflect_path(v6), old);
		if (ret == 0 && unlink(state) < 0)
			ret = -errno;
		if (ret < 0) {
			fprintf(stderr, "wg-health: restoring %s from %s: %s\n", reflect_path(v6), state,
				strerror(-ret));
			first = first ? first : ret;
			continue;
		}
		fprintf(out, "%s: restored to %d\n", reflect_path(v6) + 10, old);
	}
	return first;
}

/* ---- the steps ---------------------------------------------------------- */

static int conf_read(const struct rsetup *rs, struct wgdev_conf *conf)
{
	int ret = wgdev_conf(rs->device, conf);

	if (ret < 0)
		fprintf(stderr, "wg-health: %s: reading its fwmark (over %s): %s\n", rs->device,
			wgdev_kind(rs->device), strerror(-ret));
	return ret;
}

static int rule_setup(const struct rsetup *rs, FILE *out)
{
	char rule[128];
	int n = nl_rule_count(rs->family, from_of(rs), rs->mark, rs->table);

	rule_str(rs, rule, sizeof(rule));
	if (n > 0) {
		fprintf(out, "rule %s: in place\n", rule);
		return 0;
	}
	if (n == 0)
		n = nl_rule_add(rs->family, from_of(rs), rs->mark, rs->table);
	if (n < 0) {
		fprintf(stderr, "wg-health: rule %s: %s\n", rule, strerror(-n));
		return n;
	}
	fprintf(out, "rule %s: added\n", rule);
	return 0;
}

/* Before any change: the table's default route, if it has one, must be
 * ours (wg-quick keeps its own in table 51820 for a peer that takes all
 * traffic, with fwmark 51820 on the device). *in_place when it is. */
static int table_free(const struct rsetup *rs, int oif, bool *in_place)
{
	char where[96];
	struct nl_route r;
	int ret = nl_route_table_default(rs->family, rs->table, &r);

	*in_place = ret == 0 && via_balancer(rs, &r) && r.oif == oif;
	if (ret == -ENOENT || (ret == 0 && via_balancer(rs, &r)))
		return 0;
	if (ret < 0) {
		fprintf(stderr, "wg-health: listing table %u: %s\n", rs->table, strerror(-ret));
		return ret;
	}
	fprintf(stderr, "wg-health: table %u already has a default route %s, not via %s: refusing "
		"to replace it (give --route-table N for another table, or --route-undo with the "
		"old --route-via first)\n", rs->table, route_str(rs, &r, where, sizeof(where)),
		rs->via_str);
	return -EEXIST;
}

static int route_setup(const struct rsetup *rs, int oif, const char *ifname, bool in_place,
		       FILE *out)
{
	int ret;

	if (in_place) {
		fprintf(out, "table %u: default via %s dev %s: in place\n", rs->table, rs->via_str,
			ifname);
		return 0;
	}
	ret = nl_route_default_set(rs->family, rs->via, oif, rs->table);
	if (ret < 0) {
		fprintf(stderr, "wg-health: table %u: default via %s dev %s: %s\n", rs->table,
			rs->via_str, ifname, strerror(-ret));
		return ret;
	}
	fprintf(out, "table %u: default via %s dev %s: added\n", rs->table, rs->via_str, ifname);
	return 0;
}

int rsetup_setup(const struct rsetup *rs, FILE *out)
{
	char ifname[IF_NAMESIZE];
	struct wgdev_conf conf;
	bool route_in_place;
	uint32_t mark;
	int oif, ret;

	/* Refuse before changing anything: another mark on the device, or
	 * another default route in the table, is somebody's routing (a VPN's,
	 * wg-quick's) that ours would break. */
	ret = conf_read(rs, &conf);
	if (ret < 0)
		return ret;
	mark = conf.fwmark;
	if (!conf.listen_port) {
		fprintf(stderr, "wg-health: %s is not listening: give it its port first\n", rs->device);
		return -EINVAL;
	}
	if (mark && mark != rs->mark) {
		fprintf(stderr, "wg-health: %s already has fwmark 0x%x; refusing to replace it with "
			"0x%x (give --route-mark 0x%x to route by that mark instead)\n", rs->device,
			mark, rs->mark, mark);
		return -EEXIST;
	}
	ret = balancer_link(rs, &oif, ifname);
	if (ret == 0)
		ret = table_free(rs, oif, &route_in_place);
	if (ret == 0 && rs->family == AF_INET)
		ret = rp_setup(rs, ifname, out);
	if (ret == 0)
		ret = route_setup(rs, oif, ifname, route_in_place, out);
	if (ret == 0)
		ret = rule_setup(rs, out);
	if (ret == 0)
		ret = reply_setup(rs, conf.listen_port, out);
	if (ret < 0)
		return ret;
	if (mark == rs->mark) {
		fprintf(out, "%s: fwmark 0x%x: in place\n", rs->device, mark);
		return 0;
	}
	ret = wgdev_set_fwmark(rs->device, rs->mark);
	if (ret < 0) {
		fprintf(stderr, "wg-health: %s: setting fwmark 0x%x: %s\n", rs->device, rs->mark,
			strerror(-ret));
		return ret;
	}
	fprintf(out, "%s: fwmark 0x%x: set\n", rs->device, rs->mark);
	return 0;
}

static int fwmark_undo(const struct rsetup *rs, FILE *out)
{
	struct wgdev_conf conf;
	int ret = wgdev_conf(rs->device, &conf);

	if (ret == -ENOENT || ret == -ENODEV || ret == -EPROTONOSUPPORT) {
		fprintf(out, "%s: no such WireGuard interface: no fwmark to clear\n", rs->device);
		return 0;
	}
	if (ret < 0) {
		fprintf(stderr, "wg-health: %s: reading its fwmark: %s\n", rs->device, strerror(-ret));
		return ret;
	}
	if (conf.fwmark != rs->mark) {
		fprintf(out, "%s: fwmark 0x%x is not 0x%x: left as it is\n", rs->device, conf.fwmark,
			rs->mark);
		return 0;
	}
	ret = wgdev_set_fwmark(rs->device, 0);
	if (ret < 0) {
		fprintf(stderr, "wg-health: %s: clearing fwmark: %s\n", rs->device, strerror(-ret));
		return ret;
	}
	fprintf(out, "%s: fwmark 0x%x: cleared\n", rs->device, rs->mark);
	return 0;
}

static int rule_undo(const struct rsetup *rs, FILE *out)
{
	char rule[128];
	int n = nl_rule_count(rs->family, from_of(rs), rs->mark, rs->table), ret = 0, i;

	rule_str(rs, rule, sizeof(rule));
	for (i = 0; i < n && i < RULES_MAX && ret == 0; i++)
		ret = nl_rule_del(rs->family, from_of(rs), rs->mark, rs->table);
	if (n < 0 || (ret < 0 && ret != -ENOENT)) {
		fprintf(stderr, "wg-health: removing rule %s: %s\n", rule, strerror(n < 0 ? -n : -ret));
		return n < 0 ? n : ret;
	}
	fprintf(out, "rule %s: %s\n", rule, n ? "removed" : "not there");
	return 0;
}

static int route_undo(const struct rsetup *rs, FILE *out)
{
	int ret = nl_route_default_del(rs->family, rs->via, rs->table);

	if (ret < 0 && ret != -ESRCH) {
		fprintf(stderr, "wg-health: removing default via %s from table %u: %s\n", rs->via_str,
			rs->table, strerror(-ret));
		return ret;
	}
	fprintf(out, "table %u: default via %s: %s\n", rs->table, rs->via_str,
		ret ? "not there" : "removed");
	return 0;
}

int rsetup_undo(const struct rsetup *rs, FILE *out)
{
	int ret, first = 0;

	/* Each part on its own: one that fails leaves the others undone. */
	ret = fwmark_undo(rs, out);
	first = first ? first : ret;
	ret = rule_undo(rs, out);
	first = first ? first : ret;
	ret = route_undo(rs, out);
	first = first ? first : ret;
	ret = reply_undo(rs, out);
	first = first ? first : ret;
	if (rs->family == AF_INET) {
		ret = rp_undo(rs, out);
		first = first ? first : ret;
	}
	return first;
}

int rsetup_check(const struct rsetup *rs, FILE *out)
{
	char ifname[IF_NAMESIZE], path[160];
	struct nl_route r;
	uint32_t mark;
	int oif, n, value, own, ret, missing = 0;

	struct wgdev_conf conf;
	int reflect[2] = {1, 1};

	ret = conf_read(rs, &conf);
	if (ret < 0)
		return ret;
	mark = conf.fwmark;
	fprintf(out, "%s %s fwmark 0x%x%s\n", mark == rs->mark ? "ok:" : "missing:", rs->device, mark,
		mark == rs->mark ? "" : mark ? " (not ours)" : " (none)");
	missing |= mark != rs->mark;
	/* The ICMP errors' way: a failover hint, not the replies' way (so
	 * reported here, not a reason for the health check to fail). */
	ret = reply_rule_in_place(rs, conf.listen_port);
	for (int v6 = 0; v6 < 2; v6++)
		if (access(reflect_path(v6), F_OK) == 0 && read_int(reflect_path(v6), &reflect[v6]) < 0)
			reflect[v6] = 0;
	fprintf(out, "%s ICMP errors for port %d go back marked (table inet " REPLY_TABLE
		"%s, fwmark_reflect %d/%d)\n", ret == 1 && reflect[0] == 1 && reflect[1] == 1 ? "ok:" : "missing:",
		conf.listen_port, ret == 1 ? "" : " missing", reflect[0], reflect[1]);
	missing |= !(ret == 1 && reflect[0] == 1 && reflect[1] == 1);
	n = nl_rule_count(rs->family, from_of(rs), rs->mark, rs->table);
	if (n < 0) {
		fprintf(stderr, "wg-health: listing rules: %s\n", strerror(-n));
		return n;
	}
	fprintf(out, "%s rule %s (%d)\n", n ? "ok:" : "missing:", rule_str(rs, path, sizeof(path)), n);
	missing |= !n;
	ret = nl_route_get(rs->family, doc_dst(rs), from_of(rs), rs->mark, &r);
	if (ret < 0) {
		fprintf(stderr, "wg-health: looking up a marked route: %s\n", strerror(-ret));
		return ret;
	}
	fprintf(out, "%s marked packets go %s (table %u)\n", via_balancer(rs, &r) ? "ok:" : "missing:",
		route_str(rs, &r, path, sizeof(path)), r.table);
	missing |= !via_balancer(rs, &r);
	if (rs->family == AF_INET) {
		ret = balancer_link(rs, &oif, ifname);
		if (ret == 0)
			ret = rp_effective(ifname, &value, &own);
		if (ret < 0)
			return ret;
		/* 1 (strict) drops a client's source arriving from the balancer. */
		fprintf(out, "%s %s rp_filter %d (all and %s: the larger)\n",
			value == 1 ? "missing:" : "ok:", ifname, value, ifname);
		missing |= value == 1;
	}
	return missing ? 1 : 0;
}

int rsetup_verify(const struct rsetup *rs, int conf_err, uint32_t fwmark, char *why, size_t size)
{
	char fix[288], where[96], detail[128];
	struct nl_route r;
	int ret;

	if (conf_err < 0) {
		snprintf(detail, sizeof(detail), "cannot read %s's fwmark: %s", rs->device,
			 strerror(-conf_err));
	} else if (fwmark != rs->mark) {
		snprintf(detail, sizeof(detail), "%s's fwmark is 0x%x, not 0x%x", rs->device, fwmark,
			 rs->mark);
	} else {
		ret = nl_route_get(rs->family, doc_dst(rs), from_of(rs), rs->mark, &r);
		if (ret == 0 && via_balancer(rs, &r))
			return 0;
		if (ret < 0)
			snprintf(detail, sizeof(detail), "marked route lookup: %s", strerror(-ret));
		else
			snprintf(detail, sizeof(detail), "marked packets go %s",
				 route_str(rs, &r, where, sizeof(where)));
	}
	snprintf(fix, sizeof(fix), "wg-health --device %s --route-via %s", rs->device, rs->via_str);
	if (rs->has_from)
		snprintf(fix + strlen(fix), sizeof(fix) - strlen(fix), " --route-from %s", rs->from_str);
	if (rs->mark != RSETUP_MARK)
		snprintf(fix + strlen(fix), sizeof(fix) - strlen(fix), " --route-mark 0x%x", rs->mark);
	if (rs->table != RSETUP_TABLE)
		snprintf(fix + strlen(fix), sizeof(fix) - strlen(fix), " --route-table %u", rs->table);
	snprintf(why, size, "client address routing not in place: run %s --route-setup (%s)", fix,
		 detail);
	return -1;
}
