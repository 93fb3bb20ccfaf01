// SPDX-License-Identifier: MIT
/*
 * The fast path in a build without it (-Dfast_path=disabled, or no
 * clang/bpftool/libbpf): the same functions, each saying so, so that a
 * caller needs no #if and falls back to the socket path as it would when
 * the program cannot load.
 */
#include "wglb/fastpath.h"

#include <errno.h>

int fastpath_open(struct fastpath **out, const struct fastpath_opts *opts)
{
	*out = NULL;
	return -ENOTSUP;
}

void fastpath_close(struct fastpath *fp)
{
}

int fastpath_attach(struct fastpath *fp, const char *ifname)
{
	return -ENOTSUP;
}

int fastpath_clear(const char *ifname)
{
	return -ENOTSUP;
}

int fastpath_detach(struct fastpath *fp, const char *ifname)
{
	return -ENOTSUP;
}

int fastpath_flow_put(struct fastpath *fp, const struct fastpath_flow *f)
{
	return -ENOTSUP;
}

int fastpath_flow_del(struct fastpath *fp, const struct fastpath_flow *f)
{
	return -ENOTSUP;
}

int fastpath_flow_counters(struct fastpath *fp, const struct fastpath_flow *f,
			   struct fastpath_counters *to_backend,
			   struct fastpath_counters *to_client)
{
	return -ENOTSUP;
}

int fastpath_events(struct fastpath *fp, struct fastpath_events *out)
{
	return -ENOTSUP;
}

int fastpath_prog_fd(const struct fastpath *fp)
{
	return -ENOTSUP;
}
