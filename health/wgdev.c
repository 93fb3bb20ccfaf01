// SPDX-License-Identifier: MIT
/* One WireGuard interface, over UAPI or kernel netlink (see wgdev.h). */
#include "wglb/wgdev.h"
#include "wglb/uapi.h"
#include "wglb/wgnl.h"

#include <stdbool.h>
#include <stdio.h>
#include <sys/stat.h>

/* wireguard-tools' rule: a UAPI socket for the name means userspace. */
static bool is_uapi(const char *ifname)
{
	char path[128];
	struct stat st;

	if ((size_t)snprintf(path, sizeof(path), "/var/run/wireguard/%s.sock", ifname) >=
	    sizeof(path))
		return false;
	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

const char *wgdev_kind(const char *ifname)
{
	return is_uapi(ifname) ? "uapi" : "kernel";
}

int wgdev_conf(const char *ifname, struct wgdev_conf *conf)
{
	return is_uapi(ifname) ? uapi_conf(ifname, conf) : wgnl_conf(ifname, conf);
}

int wgdev_listen_port(const char *ifname)
{
	struct wgdev_conf conf;
	int ret = wgdev_conf(ifname, &conf);

	return ret < 0 ? ret : conf.listen_port;
}

int wgdev_set_fwmark(const char *ifname, uint32_t mark)
{
	return is_uapi(ifname) ? uapi_set_fwmark(ifname, mark) : wgnl_set_fwmark(ifname, mark);
}

int wgdev_peers(const char *ifname, struct wgdev_peer *peers, int max)
{
	return is_uapi(ifname) ? uapi_peers(ifname, peers, max) : wgnl_peers(ifname, peers, max);
}

int wgdev_rehandshake(const char *ifname, struct wgdev_move *mv, int n)
{
	return is_uapi(ifname) ? uapi_rehandshake(ifname, mv, n) : wgnl_rehandshake(ifname, mv, n);
}
