// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * The fast path at tc ingress: a WireGuard transport datagram of a
 * confirmed flow is rewritten (full NAT, both directions, as wglb's own
 * sockets would send it) and redirected to its next hop. Everything else
 * returns TC_ACT_OK untouched and goes up to wglb, which stays the only
 * decider: this program only reads the map wglb writes.
 *
 * The order is the point: every check, then the FIB lookup with the
 * addresses the datagram will leave with, and only then the first write.
 * A datagram that goes up has not been touched; one whose rewrite a helper
 * refuses half way is dropped (and counted), never passed up half done.
 *
 * Checksums (the kernel's helpers keep CHECKSUM_PARTIAL and
 * CHECKSUM_COMPLETE skbs right when used as documented): the addresses are
 * pseudo-header fields of the UDP checksum (BPF_F_PSEUDO_HDR), the ports
 * are not; IPv4's header checksum absorbs its address and TTL change; an
 * IPv4 UDP checksum of 0 means none and stays 0 (BPF_F_MARK_MANGLED_0);
 * IPv6 has no header checksum to absorb the address change, which
 * BPF_F_IPV6 tells the helper (Linux 6.16; without it the first helper
 * call fails and the datagram goes up untouched).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "fastpath_maps.h"

#ifndef BPF_F_IPV6
#define BPF_F_IPV6 (1ULL << 7) /* Linux 6.16: Debian 12's headers predate it */
#endif

/* WireGuard, as wglb's classifier (include/wglb/wgmsg.h) sees transport:
 * type 4, bytes 1..3 zero, at least 32 bytes, no upper limit and no
 * alignment rule. Mirrored here, not included: this file is BPF C. */
#define WG_T_TRANSPORT   4
#define WG_TRANSPORT_MIN 32

/* A GRO train holds at most 64 segments (the kernel's UDP_GRO_CNT_MAX). */
#define FP_MAX_SEGS 64

#define IP_MF     0x2000
#define IP_OFFSET 0x1fff

#define V4_OFF     ETH_HLEN
#define V4_CSUM    (V4_OFF + offsetof(struct iphdr, check))
#define V4_TTL     (V4_OFF + offsetof(struct iphdr, ttl))
#define V4_SADDR   (V4_OFF + offsetof(struct iphdr, saddr))
#define V4_DADDR   (V4_OFF + offsetof(struct iphdr, daddr))
#define V4_UDP     (V4_OFF + sizeof(struct iphdr))
#define V6_OFF     ETH_HLEN
#define V6_NEXTHOP (V6_OFF + offsetof(struct ipv6hdr, nexthdr)) /* nexthdr, hop_limit */
#define V6_SADDR   (V6_OFF + offsetof(struct ipv6hdr, saddr))
#define V6_UDP     (V6_OFF + sizeof(struct ipv6hdr))
#define UDP_CSUM   offsetof(struct udphdr, check)

/* Tests set it through the skeleton's rodata before load: rewrite, then
 * return FP_RET_REWRITTEN instead of the FIB lookup and the redirect
 * (BPF_PROG_TEST_RUN has no route to look up). */
const volatile __u8 fib_bypass = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FP_MAX_FLOWS);
	__type(key, struct fp_key);
	__type(value, struct fp_val);
} fp_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FP_EV__COUNT);
	__type(key, __u32);
	__type(value, __u64);
} fp_events SEC(".maps");

/* The headers read at once, after Ethernet's: IP (without options) and UDP. */
struct fp_hdrs {
	union {
		struct {
			struct iphdr ip;
			struct udphdr udp;
		} v4;
		struct {
			struct ipv6hdr ip;
			struct udphdr udp;
		} v6;
	};
};

/* What the checks found, for the rewrite. */
struct fp_pkt {
	struct fp_key key;
	__u32 l4;      /* offset of the UDP header */
	__u32 payload; /* UDP payload bytes (a whole GRO train) */
	__u32 segs;    /* WireGuard datagrams in it */
	__u8 ttl;      /* TTL or hop limit as it arrived */
	__u8 tos;
	__be32 flowinfo;
	__u16 ttl_word; /* IPv4: the 16-bit word holding TTL and protocol, as sent */
};

static __always_inline void fp_event(__u32 ev)
{
	__u64 *n = bpf_map_lookup_elem(&fp_events, &ev);

	if (n)
		*n += 1;
}

/* Every datagram in the payload is WireGuard transport as the classifier
 * would accept it. A GRO train (gso_size set) holds equal segments and a
 * shorter last one; each is a datagram of its own to wglb, so each is
 * checked here: a handshake inside a train must go up. */
static __always_inline int fp_wg_transport(struct __sk_buff *skb, struct fp_pkt *p)
{
	__u32 seg = skb->gso_size, n, last;

	if (!seg || seg >= p->payload)
		seg = p->payload;
	if (seg < WG_TRANSPORT_MIN)
		return 0;
	n = (p->payload + seg - 1) / seg;
	if (n > FP_MAX_SEGS)
		return 0;
	last = p->payload - (n - 1) * seg;
	if (last < WG_TRANSPORT_MIN)
		return 0;
	for (__u32 i = 0; i < FP_MAX_SEGS; i++) {
		__u8 h[4];

		if (i >= n)
			break;
		if (bpf_skb_load_bytes(skb, p->l4 + sizeof(struct udphdr) + i * seg, h, sizeof(h)))
			return 0;
		if (h[0] != WG_T_TRANSPORT || (h[1] | h[2] | h[3]))
			return 0;
	}
	p->segs = n;
	return 1;
}

/* IPv4: no options, not a fragment, UDP, lengths that agree exactly with
 * the skb (nothing trailing, nothing short), a TTL that survives. */
static __always_inline int fp_parse_v4(struct __sk_buff *skb, const struct fp_hdrs *h,
				       struct fp_pkt *p)
{
	const struct iphdr *ip = &h->v4.ip;
	__u32 tot = bpf_ntohs(ip->tot_len);

	if (ip->version != 4 || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return 0;
	if (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return 0;
	if (skb->len != ETH_HLEN + tot || tot < sizeof(*ip) + sizeof(struct udphdr))
		return 0;
	if (bpf_ntohs(h->v4.udp.len) != tot - sizeof(*ip))
		return 0;
	if (ip->ttl <= 1)
		return 0; /* it would reach 0 here: wglb's own send starts afresh, the kernel would not */
	p->key.family = FP_AF_INET;
	__builtin_memcpy(p->key.saddr, &ip->saddr, 4);
	__builtin_memcpy(p->key.daddr, &ip->daddr, 4);
	p->key.sport = h->v4.udp.source;
	p->key.dport = h->v4.udp.dest;
	p->l4 = V4_UDP;
	p->payload = tot - sizeof(*ip) - sizeof(struct udphdr);
	p->ttl = ip->ttl;
	p->tos = ip->tos;
	__builtin_memcpy(&p->ttl_word, (const __u8 *)ip + offsetof(struct iphdr, ttl), 2);
	return 1;
}

/* IPv6: UDP right after the fixed header (any extension header, a
 * fragment header included, goes up), lengths exact, a hop limit that
 * survives, and a UDP checksum: IPv6 forbids 0, so the kernel would drop
 * it before wglb saw it. */
static __always_inline int fp_parse_v6(struct __sk_buff *skb, const struct fp_hdrs *h,
				       struct fp_pkt *p)
{
	const struct ipv6hdr *ip = &h->v6.ip;
	__u32 plen = bpf_ntohs(ip->payload_len);

	if (ip->version != 6 || ip->nexthdr != IPPROTO_UDP)
		return 0;
	if (skb->len != ETH_HLEN + sizeof(*ip) + plen || plen < sizeof(struct udphdr))
		return 0;
	if (bpf_ntohs(h->v6.udp.len) != plen || !h->v6.udp.check)
		return 0;
	if (ip->hop_limit <= 1)
		return 0;
	p->key.family = FP_AF_INET6;
	__builtin_memcpy(p->key.saddr, &ip->saddr, 16);
	__builtin_memcpy(p->key.daddr, &ip->daddr, 16);
	p->key.sport = h->v6.udp.source;
	p->key.dport = h->v6.udp.dest;
	p->l4 = V6_UDP;
	p->payload = plen - sizeof(struct udphdr);
	p->ttl = ip->hop_limit;
	__builtin_memcpy(&p->flowinfo, ip, 4);
	p->flowinfo &= bpf_htonl(0x0fffffff); /* traffic class and flow label */
	return 1;
}

/* The next hop for the datagram as it will leave. 1 with the MACs and the
 * egress interface in fib; 0 (counted) when it must go up instead. */
static __always_inline int fp_fib(struct __sk_buff *skb, const struct fp_pkt *p,
				  const struct fp_val *v, struct bpf_fib_lookup *fib)
{
	long rc;

	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = p->key.family;
	fib->l4_protocol = IPPROTO_UDP;
	fib->sport = v->sport;
	fib->dport = v->dport;
	fib->ifindex = skb->ingress_ifindex;
	if (p->key.family == FP_AF_INET) {
		fib->tos = p->tos;
		fib->tot_len = (__u16)(sizeof(struct iphdr) + sizeof(struct udphdr) + p->payload);
		__builtin_memcpy(&fib->ipv4_src, v->saddr, 4);
		__builtin_memcpy(&fib->ipv4_dst, v->daddr, 4);
	} else {
		fib->flowinfo = p->flowinfo;
		fib->tot_len = (__u16)(sizeof(struct ipv6hdr) + sizeof(struct udphdr) + p->payload);
		__builtin_memcpy(fib->ipv6_src, v->saddr, 16);
		__builtin_memcpy(fib->ipv6_dst, v->daddr, 16);
	}
	rc = bpf_fib_lookup(skb, fib, sizeof(*fib), 0);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS)
		return 1;
	/* NO_NEIGH: wglb's own send resolves the neighbour; bpf_redirect_neigh
	 * could too, but going up is the path that is known to be right. */
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		fp_event(FP_EV_FIB_NO_NEIGH);
	else if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		fp_event(FP_EV_FIB_FRAG);
	else if (rc == BPF_FIB_LKUP_RET_FWD_DISABLED)
		fp_event(FP_EV_FWD_DISABLED);
	else
		fp_event(FP_EV_FIB_FAILED);
	return 0;
}

/* The rewrite. The first helper call is the only one that may fail for a
 * reason of this kernel's (BPF_F_IPV6 unknown before 6.16), and it fails
 * before writing: then the datagram goes up untouched (1). After it, a
 * failure leaves a half-rewritten datagram: -1, the caller drops it. */
static __always_inline int fp_rewrite(struct __sk_buff *skb, const struct fp_pkt *p,
				      const struct fp_val *v)
{
	__u64 af = p->key.family == FP_AF_INET ? BPF_F_MARK_MANGLED_0 : BPF_F_IPV6;
	__u32 csum = p->l4 + UDP_CSUM;
	__s64 addr_diff, port_diff;

	/* IPv4 addresses sit in the first 4 bytes of each 16, the rest zero in
	 * both key and value: zeros add nothing to a ones' complement sum. */
	addr_diff = bpf_csum_diff((__be32 *)p->key.saddr, 32, (__be32 *)v->saddr, 32, 0);
	port_diff = bpf_csum_diff((__be32 *)&p->key.sport, 4, (__be32 *)&v->sport, 4, 0);
	if (addr_diff < 0 || port_diff < 0)
		return 1;
	if (bpf_l4_csum_replace(skb, csum, 0, addr_diff, BPF_F_PSEUDO_HDR | af))
		return 1;
	if (bpf_l4_csum_replace(skb, csum, 0, port_diff, af & BPF_F_MARK_MANGLED_0))
		return -1;
	if (bpf_skb_store_bytes(skb, p->l4, &v->sport, 4, 0))
		return -1;
	if (p->key.family == FP_AF_INET) {
		__u16 word = p->ttl_word;

		((__u8 *)&word)[0] = p->ttl - 1;
		if (bpf_l3_csum_replace(skb, V4_CSUM, 0, addr_diff, 0) ||
		    bpf_l3_csum_replace(skb, V4_CSUM, p->ttl_word, word, 2) ||
		    bpf_skb_store_bytes(skb, V4_SADDR, v->saddr, 4, 0) ||
		    bpf_skb_store_bytes(skb, V4_DADDR, v->daddr, 4, 0) ||
		    bpf_skb_store_bytes(skb, V4_TTL, &((__u8 *)&word)[0], 1, 0))
			return -1;
	} else {
		__u8 nh[2] = {IPPROTO_UDP, p->ttl - 1};

		/* No checksum covers the hop limit: BPF_F_RECOMPUTE_CSUM keeps a
		 * CHECKSUM_COMPLETE skb's sum right (a no-op otherwise). */
		if (bpf_skb_store_bytes(skb, V6_SADDR, v->saddr, 32, 0) ||
		    bpf_skb_store_bytes(skb, V6_NEXTHOP, nh, 2, BPF_F_RECOMPUTE_CSUM))
			return -1;
	}
	return 0;
}

static __always_inline void fp_count(struct fp_val *v, const struct fp_pkt *p)
{
	__sync_fetch_and_add(&v->packets, p->segs);
	__sync_fetch_and_add(&v->bytes, p->payload);
	v->last_ns = bpf_ktime_get_coarse_ns();
}

SEC("tc")
int fp_ingress(struct __sk_buff *skb)
{
	struct bpf_fib_lookup fib;
	struct fp_hdrs h;
	struct fp_pkt p;
	struct fp_val *v;
	int rc;

	/* skb->protocol is the Ethernet header's type (an in-band VLAN tag
	 * shows as its own); a tag taken off by the NIC would be lost on the
	 * way out, so tagged frames go up too. */
	if (skb->vlan_present)
		return TC_ACT_OK;
	/* Addressed to this host at L2: IP drops other hosts' frames (a
	 * promiscuous NIC, a bridge port) before any socket sees them. */
	if (skb->pkt_type != PACKET_HOST)
		return TC_ACT_OK;
	/* The smallest datagram it forwards (IPv4, 32 bytes of WireGuard) is
	 * longer than these headers, so a short read is a datagram to pass. */
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &h, sizeof(h)))
		return TC_ACT_OK;
	__builtin_memset(&p, 0, sizeof(p));
	if (skb->protocol == bpf_htons(ETH_P_IP))
		rc = fp_parse_v4(skb, &h, &p);
	else if (skb->protocol == bpf_htons(ETH_P_IPV6))
		rc = fp_parse_v6(skb, &h, &p);
	else
		rc = 0;
	if (!rc || !fp_wg_transport(skb, &p))
		return TC_ACT_OK;

	v = bpf_map_lookup_elem(&fp_flows, &p.key);
	if (!v || !(v->flags & FP_F_CONFIRMED))
		return TC_ACT_OK;
	if (!fib_bypass && !fp_fib(skb, &p, v, &fib))
		return TC_ACT_OK;

	rc = fp_rewrite(skb, &p, v);
	if (rc > 0)
		return TC_ACT_OK;
	if (rc < 0) {
		fp_event(FP_EV_REWRITE_FAILED);
		return TC_ACT_SHOT;
	}
	fp_count(v, &p);
	if (fib_bypass)
		return FP_RET_REWRITTEN;
	/* struct ethhdr is h_dest then h_source; the lookup gave both. */
	if (bpf_skb_store_bytes(skb, 0, fib.dmac, ETH_ALEN, 0) ||
	    bpf_skb_store_bytes(skb, ETH_ALEN, fib.smac, ETH_ALEN, 0)) {
		fp_event(FP_EV_REWRITE_FAILED);
		return TC_ACT_SHOT;
	}
	return bpf_redirect(fib.ifindex, 0);
}

/* bpf_fib_lookup is GPL-only: the verifier refuses it to a program whose
 * licence is not GPL-compatible ("MIT" alone fails to load). */
char LICENSE[] SEC("license") = "Dual MIT/GPL";
