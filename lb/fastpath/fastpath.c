// SPDX-License-Identifier: MIT
/*
 * The fast path's loader: opens the program through its generated
 * skeleton, attaches it at tc ingress and keeps its map of flows. It only
 * writes what it is told: which flows, and when, is the data plane's call.
 */
#include "wglb/fastpath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fastpath_maps.h"
#include "fastpath.skel.h"

_Static_assert(FP_AF_INET == AF_INET && FP_AF_INET6 == AF_INET6, "the map's address families");
_Static_assert(FASTPATH_RET_REWRITTEN == FP_RET_REWRITTEN, "the test verdict");

/* Our filter's place at clsact ingress: a leftover of ours (a wglb that
 * died attached) is replaced, not doubled. */
#define FP_TC_HANDLE 0x5767
#define FP_TC_PRIO   0x5767
#define FP_MAX_IFS   8 /* the listeners' interfaces and the backends' */

struct fastpath {
	struct fp_skel *skel;
	int ifindex[FP_MAX_IFS]; /* attached to; 0 is a free slot */
};

int fastpath_open(struct fastpath **out, const struct fastpath_opts *opts)
{
	struct fastpath *fp;
	int rc;

	fp = calloc(1, sizeof(*fp));
	if (!fp)
		return -ENOMEM;
	fp->skel = fp_skel__open();
	if (!fp->skel) {
		rc = -errno;
		goto fail;
	}
	fp->skel->rodata->fib_bypass = opts && opts->fib_bypass;
	rc = fp_skel__load(fp->skel);
	if (rc)
		goto fail;
	*out = fp;
	return 0;
fail:
	fp_skel__destroy(fp->skel);
	free(fp);
	return rc < 0 ? rc : -EINVAL;
}

int fastpath_prog_fd(const struct fastpath *fp)
{
	return bpf_program__fd(fp->skel->progs.fp_ingress);
}

static int slot_of(const struct fastpath *fp, int ifindex)
{
	for (int i = 0; i < FP_MAX_IFS; i++)
		if (fp->ifindex[i] == ifindex)
			return i;
	return -1;
}

/* The program reads an Ethernet header first: nothing else may carry it. */
static int check_ether(const char *ifname)
{
	struct ifreq ifr;
	int fd, rc = 0;

	if (strlen(ifname) >= sizeof(ifr.ifr_name))
		return -ENODEV;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, ifname, strlen(ifname));
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		rc = -errno;
	else if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
		rc = -EOPNOTSUPP;
	close(fd);
	return rc;
}

int fastpath_attach(struct fastpath *fp, const char *ifname)
{
	int ifindex = (int)if_nametoindex(ifname), slot, rc;

	if (!ifindex)
		return -ENODEV;
	if (slot_of(fp, ifindex) >= 0)
		return -EEXIST;
	slot = slot_of(fp, 0);
	if (slot < 0)
		return -ENOSPC;
	rc = check_ether(ifname);
	if (rc)
		return rc;

	/* Plain initialisers, not LIBBPF_OPTS: its statement expression is not
	 * C11 (clang -Wpedantic says so). */
	struct bpf_tc_hook hook = {.sz = sizeof(hook), .ifindex = ifindex,
				   .attach_point = BPF_TC_INGRESS};
	struct bpf_tc_opts tc = {.sz = sizeof(tc), .handle = FP_TC_HANDLE, .priority = FP_TC_PRIO,
				 .prog_fd = fastpath_prog_fd(fp), .flags = BPF_TC_F_REPLACE};
	/* An interface with a clsact qdisc already makes libbpf print the
	 * kernel's "Exclusivity flag on, cannot modify": expected, and -EEXIST. */
	libbpf_print_fn_t was = libbpf_set_print(NULL);
	rc = bpf_tc_hook_create(&hook);
	libbpf_set_print(was);
	if (rc && rc != -EEXIST)
		return rc;
	rc = bpf_tc_attach(&hook, &tc);
	if (rc)
		return rc;
	fp->ifindex[slot] = ifindex;
	return 0;
}

/* Takes our filter off; the clsact qdisc stays, since others' filters may
 * have joined it since we made it. */
static int detach_index(struct fastpath *fp, int slot)
{
	struct bpf_tc_hook hook = {.sz = sizeof(hook), .ifindex = fp->ifindex[slot],
				   .attach_point = BPF_TC_INGRESS};
	struct bpf_tc_opts tc = {.sz = sizeof(tc), .handle = FP_TC_HANDLE, .priority = FP_TC_PRIO};
	int rc = bpf_tc_detach(&hook, &tc);

	fp->ifindex[slot] = 0;
	return rc;
}

int fastpath_clear(const char *ifname)
{
	int ifindex = (int)if_nametoindex(ifname);

	if (!ifindex)
		return -ENODEV;
	struct bpf_tc_hook hook = {.sz = sizeof(hook), .ifindex = ifindex,
				   .attach_point = BPF_TC_INGRESS};
	struct bpf_tc_opts tc = {.sz = sizeof(tc), .handle = FP_TC_HANDLE, .priority = FP_TC_PRIO};
	/* Usually there is none, often not even a clsact qdisc: the kernel's
	 * "Parent Qdisc doesn't exists" that libbpf would print is expected. */
	libbpf_print_fn_t was = libbpf_set_print(NULL);
	int rc = bpf_tc_detach(&hook, &tc);

	libbpf_set_print(was);
	return rc;
}

int fastpath_detach(struct fastpath *fp, const char *ifname)
{
	int ifindex = (int)if_nametoindex(ifname), slot;

	if (!ifindex)
		return -ENODEV;
	slot = slot_of(fp, ifindex);
	if (slot < 0)
		return -ENOENT;
	return detach_index(fp, slot);
}

void fastpath_close(struct fastpath *fp)
{
	if (!fp)
		return;
	for (int i = 0; i < FP_MAX_IFS; i++)
		if (fp->ifindex[i])
			(void)detach_index(fp, i); /* gone with its interface: nothing to undo */
	fp_skel__destroy(fp->skel);
	free(fp);
}

/* One direction's key: from a to b, as the datagram arrives. */
static void key_of(struct fp_key *k, const union wglb_sa *from, const union wglb_sa *to)
{
	memset(k, 0, sizeof(*k));
	k->family = (uint8_t)from->sa.sa_family;
	if (from->sa.sa_family == AF_INET) {
		memcpy(k->saddr, &from->in4.sin_addr, 4);
		memcpy(k->daddr, &to->in4.sin_addr, 4);
		k->sport = from->in4.sin_port;
		k->dport = to->in4.sin_port;
	} else {
		memcpy(k->saddr, &from->in6.sin6_addr, 16);
		memcpy(k->daddr, &to->in6.sin6_addr, 16);
		k->sport = from->in6.sin6_port;
		k->dport = to->in6.sin6_port;
	}
}

/* What a direction leaves as (from a to b), with no counts yet. */
static void val_of(struct fp_val *v, const union wglb_sa *from, const union wglb_sa *to,
		   bool confirmed)
{
	struct fp_key k;

	key_of(&k, from, to);
	memset(v, 0, sizeof(*v));
	v->flags = confirmed ? FP_F_CONFIRMED : 0;
	v->sport = k.sport;
	v->dport = k.dport;
	memcpy(v->saddr, k.saddr, sizeof(v->saddr));
	memcpy(v->daddr, k.daddr, sizeof(v->daddr));
}

static bool one_family(const struct fastpath_flow *f)
{
	sa_family_t fam = f->client.sa.sa_family;

	return (fam == AF_INET || fam == AF_INET6) && f->listen.sa.sa_family == fam &&
	       f->upstream.sa.sa_family == fam && f->backend.sa.sa_family == fam;
}

/* Both directions' keys and values: [0] client -> backend, [1] back. */
static void flow_entries(const struct fastpath_flow *f, struct fp_key k[2], struct fp_val v[2])
{
	key_of(&k[0], &f->client, &f->listen);
	val_of(&v[0], &f->upstream, &f->backend, f->confirmed);
	key_of(&k[1], &f->backend, &f->upstream);
	val_of(&v[1], &f->listen, &f->client, f->confirmed);
}

/* Write one direction, keeping what it counted. The program may count a
 * datagram between the read and the write: that one is not kept. */
static int put_one(struct bpf_map *m, const struct fp_key *k, struct fp_val *v)
{
	struct fp_val old;
	int rc;

	rc = bpf_map__lookup_elem(m, k, sizeof(*k), &old, sizeof(old), 0);
	if (!rc) {
		v->packets = old.packets;
		v->bytes = old.bytes;
		v->last_ns = old.last_ns;
	} else if (rc != -ENOENT) {
		return rc;
	}
	return bpf_map__update_elem(m, k, sizeof(*k), v, sizeof(*v), BPF_ANY);
}

int fastpath_flow_put(struct fastpath *fp, const struct fastpath_flow *f)
{
	struct bpf_map *m = fp->skel->maps.fp_flows;
	struct fp_key k[2];
	struct fp_val v[2];
	int rc;

	if (!one_family(f))
		return -EAFNOSUPPORT;
	flow_entries(f, k, v);
	rc = put_one(m, &k[0], &v[0]);
	if (rc)
		return rc;
	rc = put_one(m, &k[1], &v[1]);
	if (rc) {
		/* Half a flow forwards one way only: take it out whole. A missing
		 * entry costs speed, never a datagram (it goes up). */
		(void)bpf_map__delete_elem(m, &k[0], sizeof(k[0]), 0);
		return rc;
	}
	return 0;
}

int fastpath_flow_del(struct fastpath *fp, const struct fastpath_flow *f)
{
	struct bpf_map *m = fp->skel->maps.fp_flows;
	struct fp_key k[2];
	struct fp_val v[2];
	int rc[2];

	if (!one_family(f))
		return -EAFNOSUPPORT;
	flow_entries(f, k, v);
	for (int i = 0; i < 2; i++) {
		rc[i] = bpf_map__delete_elem(m, &k[i], sizeof(k[i]), 0);
		if (rc[i] && rc[i] != -ENOENT)
			return rc[i];
	}
	return rc[0] && rc[1] ? -ENOENT : 0;
}

int fastpath_flow_counters(struct fastpath *fp, const struct fastpath_flow *f,
			   struct fastpath_counters *to_backend,
			   struct fastpath_counters *to_client)
{
	struct bpf_map *m = fp->skel->maps.fp_flows;
	struct fastpath_counters *out[2] = {to_backend, to_client};
	struct fp_key k[2];
	struct fp_val v[2];
	int rc, found = 0;

	if (!one_family(f))
		return -EAFNOSUPPORT;
	flow_entries(f, k, v);
	for (int i = 0; i < 2; i++) {
		memset(out[i], 0, sizeof(*out[i]));
		rc = bpf_map__lookup_elem(m, &k[i], sizeof(k[i]), &v[i], sizeof(v[i]), 0);
		if (rc == -ENOENT)
			continue;
		if (rc)
			return rc;
		out[i]->packets = v[i].packets;
		out[i]->bytes = v[i].bytes;
		out[i]->last_ns = v[i].last_ns;
		found++;
	}
	return found ? 0 : -ENOENT;
}

int fastpath_events(struct fastpath *fp, struct fastpath_events *out)
{
	struct bpf_map *m = fp->skel->maps.fp_events;
	uint64_t sum[FP_EV__COUNT] = {0}, *cpu;
	int ncpu = libbpf_num_possible_cpus(), rc = 0;

	if (ncpu <= 0)
		return ncpu < 0 ? ncpu : -EINVAL;
	cpu = calloc((size_t)ncpu, sizeof(*cpu));
	if (!cpu)
		return -ENOMEM;
	for (uint32_t ev = 0; ev < FP_EV__COUNT; ev++) {
		rc = bpf_map__lookup_elem(m, &ev, sizeof(ev), cpu, (size_t)ncpu * sizeof(*cpu), 0);
		if (rc)
			goto out;
		for (int c = 0; c < ncpu; c++)
			sum[ev] += cpu[c];
	}
	out->fib_failed = sum[FP_EV_FIB_FAILED];
	out->no_neigh = sum[FP_EV_FIB_NO_NEIGH];
	out->frag_needed = sum[FP_EV_FIB_FRAG];
	out->fwd_disabled = sum[FP_EV_FWD_DISABLED];
	out->rewrite_failed = sum[FP_EV_REWRITE_FAILED];
out:
	free(cpu);
	return rc;
}
