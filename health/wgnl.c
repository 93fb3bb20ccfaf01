// SPDX-License-Identifier: MIT
/*
 * WireGuard's generic-netlink family through libmnl (see wgnl.h).
 *
 * The re-handshake is the message wireguard-tools sends for
 *   wg set IF peer K remove peer K [preshared-key F] endpoint E \
 *       persistent-keepalive 1 allowed-ips A,B,...
 * followed by the one for `wg set IF peer K persistent-keepalive N`: both
 * halves of the first run under the kernel's device lock in order, so the
 * peer comes back at once, with no session and a fresh keepalive that
 * starts a handshake (kernel: set_peer() sends a keepalive when the
 * interval goes from 0 to non-zero; with no keypair that is an initiation).
 */
#include "wglb/wgnl.h"

#include <errno.h>
#include <limits.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/wireguard.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

/* ---- building ---------------------------------------------------------- */

/* libmnl 1.0.4 leaves attribute padding as it finds it: start from zeros,
 * so no stale byte reaches the kernel (and `wg`'s bytes are matched). */
static struct nlmsghdr *prepare(void *buf, size_t size, uint16_t type, uint16_t flags,
				uint32_t seq, uint8_t cmd)
{
	struct nlmsghdr *nlh;
	struct genlmsghdr *g;

	memset(buf, 0, size);
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = WG_GENL_VERSION;
	return nlh;
}

size_t wgnl_msg_family(void *buf, size_t size, uint32_t seq)
{
	struct nlmsghdr *nlh =
		prepare(buf, size, GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, seq, CTRL_CMD_GETFAMILY);

	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, WG_GENL_NAME);
	return nlh->nlmsg_len;
}

size_t wgnl_msg_get(void *buf, size_t size, uint16_t family, uint32_t seq, const char *ifname)
{
	struct nlmsghdr *nlh = prepare(buf, size, family, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP, seq,
				       WG_CMD_GET_DEVICE);

	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, ifname);
	return nlh->nlmsg_len;
}

size_t wgnl_msg_fwmark(void *buf, size_t size, uint16_t family, uint32_t seq, const char *ifname,
		       uint32_t mark)
{
	struct nlmsghdr *nlh =
		prepare(buf, size, family, NLM_F_REQUEST | NLM_F_ACK, seq, WG_CMD_SET_DEVICE);

	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, ifname);
	mnl_attr_put_u32(nlh, WGDEVICE_A_FWMARK, mark);
	return nlh->nlmsg_len;
}

static size_t aip_len(uint16_t family)
{
	return family == AF_INET6 ? 16 : 4;
}

long wgnl_msg_set(void *buf, size_t size, uint16_t family, uint32_t seq, const char *ifname,
		  const struct wgnl_peer *peers, size_t n, struct wgnl_cursor *cur)
{
	struct nlattr *peers_nest, *peer_nest = NULL, *aips_nest = NULL, *aip_nest = NULL;
	struct nlmsghdr *nlh;
	size_t first = cur->peer;

	if (cur->peer >= n)
		return 0;
	nlh = prepare(buf, size, family, NLM_F_REQUEST | NLM_F_ACK, seq, WG_CMD_SET_DEVICE);
	mnl_attr_put_strz(nlh, WGDEVICE_A_IFNAME, ifname);
	peers_nest = mnl_attr_nest_start(nlh, WGDEVICE_A_PEERS);
	for (; cur->peer < n; cur->peer++) {
		const struct wgnl_peer *p = &peers[cur->peer];
		uint32_t flags = p->flags & WGPEER_F_REMOVE_ME;

		peer_nest = mnl_attr_nest_start_check(nlh, size, 0);
		if (!peer_nest ||
		    !mnl_attr_put_check(nlh, size, WGPEER_A_PUBLIC_KEY, sizeof(p->pub), p->pub))
			goto toobig_peers;
		if (!cur->in_aips) {
			flags |= p->flags & (WGPEER_F_REPLACE_ALLOWEDIPS | WGPEER_F_UPDATE_ONLY);
			if (p->has_psk &&
			    !mnl_attr_put_check(nlh, size, WGPEER_A_PRESHARED_KEY, sizeof(p->psk), p->psk))
				goto toobig_peers;
			if (p->ep.sa.sa_family == AF_INET &&
			    !mnl_attr_put_check(nlh, size, WGPEER_A_ENDPOINT, sizeof(p->ep.in4), &p->ep.in4))
				goto toobig_peers;
			if (p->ep.sa.sa_family == AF_INET6 &&
			    !mnl_attr_put_check(nlh, size, WGPEER_A_ENDPOINT, sizeof(p->ep.in6),
						&p->ep.in6))
				goto toobig_peers;
			if (p->keepalive >= 0 &&
			    !mnl_attr_put_u16_check(nlh, size, WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL,
						    (uint16_t)p->keepalive))
				goto toobig_peers;
		}
		if (flags && !mnl_attr_put_u32_check(nlh, size, WGPEER_A_FLAGS, flags))
			goto toobig_peers;
		if (p->n_aips) {
			if (!cur->in_aips) {
				cur->in_aips = true;
				cur->aip = 0;
			}
			aips_nest = mnl_attr_nest_start_check(nlh, size, WGPEER_A_ALLOWEDIPS);
			if (!aips_nest)
				goto toobig_aips;
			for (; cur->aip < p->n_aips; cur->aip++) {
				const struct wgnl_aip *a = &p->aips[cur->aip];
				aip_nest = mnl_attr_nest_start_check(nlh, size, 0);
				if (!aip_nest ||
				    !mnl_attr_put_u16_check(nlh, size, WGALLOWEDIP_A_FAMILY, a->family) ||
				    !mnl_attr_put_check(nlh, size, WGALLOWEDIP_A_IPADDR, aip_len(a->family),
							a->addr) ||
				    !mnl_attr_put_u8_check(nlh, size, WGALLOWEDIP_A_CIDR_MASK, a->cidr))
					goto toobig_aips;
				mnl_attr_nest_end(nlh, aip_nest);
				aip_nest = NULL;
			}
			mnl_attr_nest_end(nlh, aips_nest);
			aips_nest = NULL;
		}
		cur->in_aips = false;
		cur->aip = 0;
		mnl_attr_nest_end(nlh, peer_nest);
		peer_nest = NULL;
	}
	mnl_attr_nest_end(nlh, peers_nest);
	return (long)nlh->nlmsg_len;

toobig_aips:
	/* The peer goes out with the allowed IPs that fit; the next message
	 * carries the rest under the same key. */
	if (aip_nest)
		mnl_attr_nest_cancel(nlh, aip_nest);
	if (aips_nest)
		mnl_attr_nest_end(nlh, aips_nest);
	mnl_attr_nest_end(nlh, peer_nest);
	mnl_attr_nest_end(nlh, peers_nest);
	return (long)nlh->nlmsg_len;
toobig_peers:
	if (peer_nest)
		mnl_attr_nest_cancel(nlh, peer_nest);
	if (cur->peer == first && !cur->in_aips)
		return -E2BIG; /* not even one peer fits: never loop */
	mnl_attr_nest_end(nlh, peers_nest);
	return (long)nlh->nlmsg_len;
}

int wgnl_readd(const struct wgnl_peer *old, const union wglb_sa *ep, struct wgnl_peer out[2])
{
	memset(out, 0, 2 * sizeof(*out));
	memcpy(out[0].pub, old->pub, 32);
	out[0].flags = WGPEER_F_REMOVE_ME;
	out[0].keepalive = -1;
	out[1] = *old;
	out[1].flags = WGPEER_F_REPLACE_ALLOWEDIPS;
	out[1].ep = *ep;
	out[1].keepalive = 1;
	return old->keepalive > 0 ? old->keepalive : 0;
}

/* ---- parsing ----------------------------------------------------------- */

void wgnl_device_init(struct wgnl_device *dev)
{
	memset(dev, 0, sizeof(*dev));
	dev->listen_port = -1;
}

void wgnl_device_free(struct wgnl_device *dev)
{
	for (size_t i = 0; i < dev->n; i++)
		free(dev->peers[i].aips);
	free(dev->peers);
	wgnl_device_init(dev);
}

static int fail(int err)
{
	errno = err;
	return MNL_CB_ERROR;
}

static int parse_aip(const struct nlattr *attr, void *data)
{
	struct wgnl_aip *a = data;

	switch (mnl_attr_get_type(attr)) {
	case WGALLOWEDIP_A_FAMILY:
		if (mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
			return fail(EBADMSG);
		a->family = mnl_attr_get_u16(attr);
		break;
	case WGALLOWEDIP_A_IPADDR: {
		uint16_t l = mnl_attr_get_payload_len(attr);
		if (l != 4 && l != 16)
			return fail(EBADMSG);
		memcpy(a->addr, mnl_attr_get_payload(attr), l);
		break;
	}
	case WGALLOWEDIP_A_CIDR_MASK:
		if (mnl_attr_validate(attr, MNL_TYPE_U8) < 0)
			return fail(EBADMSG);
		a->cidr = mnl_attr_get_u8(attr);
		break;
	}
	return MNL_CB_OK;
}

static int aip_push(struct wgnl_peer *p, const struct wgnl_aip *a)
{
	if (p->n_aips >= WGNL_MAX_AIPS)
		return fail(E2BIG);
	/* Grow by doubling: the array is full exactly when n_aips is a power of two. */
	if (!(p->n_aips & (p->n_aips - 1))) {
		struct wgnl_aip *na = realloc(p->aips, sizeof(*na) * (p->n_aips ? p->n_aips * 2 : 1));
		if (!na)
			return fail(ENOMEM);
		p->aips = na;
	}
	p->aips[p->n_aips++] = *a;
	return MNL_CB_OK;
}

static int parse_aips(const struct nlattr *attr, void *data)
{
	struct wgnl_aip a = {0};

	if (mnl_attr_parse_nested(attr, parse_aip, &a) < 0)
		return MNL_CB_ERROR;
	if (!((a.family == AF_INET && a.cidr <= 32) || (a.family == AF_INET6 && a.cidr <= 128)))
		return fail(EBADMSG);
	return aip_push(data, &a);
}

static int parse_peer(const struct nlattr *attr, void *data)
{
	struct wgnl_peer *p = data;
	uint16_t l = mnl_attr_get_payload_len(attr);
	const void *v = mnl_attr_get_payload(attr);

	switch (mnl_attr_get_type(attr)) {
	case WGPEER_A_PUBLIC_KEY:
		if (l != 32)
			return fail(EBADMSG);
		memcpy(p->pub, v, 32);
		break;
	case WGPEER_A_PRESHARED_KEY: {
		static const uint8_t zero[32];
		if (l != 32)
			return fail(EBADMSG);
		memcpy(p->psk, v, 32);
		p->has_psk = memcmp(p->psk, zero, 32) != 0;
		break;
	}
	case WGPEER_A_ENDPOINT: {
		struct sockaddr sa;
		if (l < sizeof(sa))
			break;
		memcpy(&sa, v, sizeof(sa));
		if (sa.sa_family == AF_INET && l == sizeof(p->ep.in4))
			memcpy(&p->ep.in4, v, l);
		else if (sa.sa_family == AF_INET6 && l == sizeof(p->ep.in6))
			memcpy(&p->ep.in6, v, l);
		break;
	}
	case WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL:
		if (mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
			return fail(EBADMSG);
		p->keepalive = mnl_attr_get_u16(attr);
		break;
	case WGPEER_A_LAST_HANDSHAKE_TIME: {
		struct {
			int64_t sec, nsec;
		} ts;
		if (l != sizeof(ts))
			return fail(EBADMSG);
		memcpy(&ts, v, sizeof(ts));
		p->handshake_s = ts.sec;
		break;
	}
	case WGPEER_A_RX_BYTES:
	case WGPEER_A_TX_BYTES:
		if (mnl_attr_validate(attr, MNL_TYPE_U64) < 0)
			return fail(EBADMSG);
		*(mnl_attr_get_type(attr) == WGPEER_A_RX_BYTES ? &p->rx_bytes : &p->tx_bytes) =
			mnl_attr_get_u64(attr);
		break;
	case WGPEER_A_ALLOWEDIPS:
		return mnl_attr_parse_nested(attr, parse_aips, p);
	}
	return MNL_CB_OK;
}

/* The peer a nest describes; the kernel repeats a peer's public key when
 * its allowed IPs continue in the next message: append to that one. */
static int parse_peers(const struct nlattr *attr, void *data)
{
	struct wgnl_device *dev = data;
	struct wgnl_peer p = {.keepalive = -1};
	static const uint8_t zero[32];

	if (mnl_attr_parse_nested(attr, parse_peer, &p) < 0) {
		free(p.aips);
		return MNL_CB_ERROR;
	}
	if (!memcmp(p.pub, zero, 32)) {
		free(p.aips);
		return fail(EBADMSG);
	}
	if (dev->n && !memcmp(dev->peers[dev->n - 1].pub, p.pub, 32)) {
		struct wgnl_peer *last = &dev->peers[dev->n - 1];
		int ret = MNL_CB_OK;
		for (size_t i = 0; ret == MNL_CB_OK && i < p.n_aips; i++)
			ret = aip_push(last, &p.aips[i]);
		free(p.aips);
		return ret;
	}
	if (dev->n >= WGNL_MAX_PEERS) {
		free(p.aips);
		return fail(E2BIG);
	}
	if (dev->n == dev->cap) {
		size_t nc = dev->cap ? dev->cap * 2 : 16;
		struct wgnl_peer *np = realloc(dev->peers, sizeof(*np) * nc);
		if (!np) {
			free(p.aips);
			return fail(ENOMEM);
		}
		dev->peers = np;
		dev->cap = nc;
	}
	dev->peers[dev->n++] = p;
	return MNL_CB_OK;
}

static int parse_device(const struct nlattr *attr, void *data)
{
	struct wgnl_device *dev = data;

	switch (mnl_attr_get_type(attr)) {
	case WGDEVICE_A_LISTEN_PORT:
		if (mnl_attr_validate(attr, MNL_TYPE_U16) < 0)
			return fail(EBADMSG);
		dev->listen_port = mnl_attr_get_u16(attr);
		break;
	case WGDEVICE_A_FWMARK:
		if (mnl_attr_validate(attr, MNL_TYPE_U32) < 0)
			return fail(EBADMSG);
		dev->fwmark = mnl_attr_get_u32(attr);
		break;
	case WGDEVICE_A_PEERS:
		return mnl_attr_parse_nested(attr, parse_peers, dev);
	}
	return MNL_CB_OK;
}

static int parse_msg(const struct nlmsghdr *nlh, void *data)
{
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct genlmsghdr))
		return fail(EBADMSG);
	return mnl_attr_parse(nlh, sizeof(struct genlmsghdr), parse_device, data);
}

/* mnl_cb_run over one datagram, cb (may be NULL) seeing each data message.
 * Whole messages only, checked in size_t: a datagram that ends inside one
 * is malformed (mnl_cb_run would stop quietly, as if the answer were
 * complete), and libmnl 1.0.4's mnl_nlmsg_ok() casts nlmsg_len to int, so
 * a length of 2^31 or more would walk it off the buffer. >0: more to read;
 * 0: done; <0: -errno. */
static int run_datagram(const void *buf, size_t len, uint32_t seq, uint32_t portid, mnl_cb_t cb,
			void *data)
{
	size_t off = 0;
	int ret;

	if (len == 0 || len > INT_MAX)
		return -EBADMSG;
	while (off < len) {
		struct nlmsghdr h;
		if (len - off < sizeof(h))
			return -EBADMSG;
		memcpy(&h, (const char *)buf + off, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len - off)
			return -EBADMSG;
		off += NLMSG_ALIGN(h.nlmsg_len);
	}
	errno = 0;
	ret = mnl_cb_run(buf, len, seq, portid, cb, data);
	if (ret < 0)
		return errno ? -errno : -EBADMSG;
	return ret;
}

int wgnl_parse(const void *buf, size_t len, uint32_t seq, uint32_t portid,
	       struct wgnl_device *dev)
{
	return run_datagram(buf, len, seq, portid, parse_msg, dev);
}

/* ---- talking to the kernel --------------------------------------------- */

struct wgnl {
	struct mnl_socket *nl;
	uint16_t family;
	uint32_t seq, portid;
	char *buf;
	size_t size;
};

static void wgnl_close(struct wgnl *w)
{
	if (w->nl)
		mnl_socket_close(w->nl);
	free(w->buf);
}

/* Send the len-byte message in w->buf and read answers until the ACK, DONE
 * or an error, cb (may be NULL) seeing each data message. 0 or -errno. */
static int exchange(struct wgnl *w, size_t len, mnl_cb_t cb, void *data)
{
	int ret;

	if (mnl_socket_sendto(w->nl, w->buf, len) < 0)
		return -errno;
	do {
		ssize_t n = mnl_socket_recvfrom(w->nl, w->buf, w->size);
		if (n < 0)
			return -errno;
		ret = run_datagram(w->buf, (size_t)n, w->seq, w->portid, cb, data);
	} while (ret > 0);
	return ret;
}

static int family_cb(const struct nlattr *attr, void *data)
{
	if (mnl_attr_get_type(attr) == CTRL_ATTR_FAMILY_ID &&
	    mnl_attr_validate(attr, MNL_TYPE_U16) == 0)
		*(uint16_t *)data = mnl_attr_get_u16(attr);
	return MNL_CB_OK;
}

static int family_msg(const struct nlmsghdr *nlh, void *data)
{
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(struct genlmsghdr))
		return fail(EBADMSG);
	return mnl_attr_parse(nlh, sizeof(struct genlmsghdr), family_cb, data);
}

static int wgnl_open(struct wgnl *w)
{
	struct timeval tv = {.tv_sec = 2};
	int ret;

	memset(w, 0, sizeof(*w));
	w->size = MNL_SOCKET_BUFFER_SIZE;
	w->buf = malloc(w->size);
	if (!w->buf)
		return -ENOMEM;
	w->nl = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
	if (!w->nl || mnl_socket_bind(w->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		goto err;
	}
	/* A kernel that does not answer must not hang the agent. */
	if (setsockopt(mnl_socket_get_fd(w->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		ret = -errno;
		goto err;
	}
	w->portid = mnl_socket_get_portid(w->nl);
	w->seq = (uint32_t)time(NULL);
	ret = exchange(w, wgnl_msg_family(w->buf, w->size, w->seq), family_msg, &w->family);
	if (ret < 0) {
		/* No "wireguard" family: the module is not loaded. */
		if (ret == -ENOENT)
			ret = -EPROTONOSUPPORT;
		goto err;
	}
	if (!w->family) {
		ret = -EPROTO;
		goto err;
	}
	return 0;
err:
	wgnl_close(w);
	memset(w, 0, sizeof(*w));
	return ret;
}

static int get_device(struct wgnl *w, const char *ifname, struct wgnl_device *dev)
{
	w->seq++;
	wgnl_device_init(dev);
	return exchange(w, wgnl_msg_get(w->buf, w->size, w->family, w->seq, ifname), parse_msg, dev);
}

static int set_peers(struct wgnl *w, const char *ifname, const struct wgnl_peer *peers, size_t n)
{
	struct wgnl_cursor cur = {0};
	long len;
	int ret;

	for (;;) {
		w->seq++;
		len = wgnl_msg_set(w->buf, w->size, w->family, w->seq, ifname, peers, n, &cur);
		if (len <= 0)
			return (int)len;
		ret = exchange(w, (size_t)len, NULL, NULL);
		if (ret < 0)
			return ret;
	}
}

int wgnl_get_device(const char *ifname, struct wgnl_device *dev)
{
	struct wgnl w;
	int ret = wgnl_open(&w);

	wgnl_device_init(dev);
	if (ret < 0)
		return ret;
	ret = get_device(&w, ifname, dev);
	wgnl_close(&w);
	return ret;
}

int wgnl_conf(const char *ifname, struct wgdev_conf *conf)
{
	struct wgnl_device dev;
	int ret = wgnl_get_device(ifname, &dev);

	if (ret == 0) {
		conf->listen_port = dev.listen_port > 0 ? dev.listen_port : 0;
		conf->fwmark = dev.fwmark;
	}
	wgnl_device_free(&dev);
	return ret;
}

int wgnl_set_fwmark(const char *ifname, uint32_t mark)
{
	struct wgnl w;
	int ret = wgnl_open(&w);

	if (ret < 0)
		return ret;
	w.seq++;
	ret = exchange(&w, wgnl_msg_fwmark(w.buf, w.size, w.family, w.seq, ifname, mark), NULL, NULL);
	wgnl_close(&w);
	return ret;
}

int wgnl_peers(const char *ifname, struct wgdev_peer *peers, int max)
{
	struct wgnl_device dev;
	int ret = wgnl_get_device(ifname, &dev), n = 0;

	for (size_t i = 0; ret == 0 && i < dev.n && n < max; i++, n++) {
		memcpy(peers[n].pub, dev.peers[i].pub, 32);
		peers[n].endpoint[0] = '\0';
		if (dev.peers[i].ep.sa.sa_family)
			addr_fmt(&dev.peers[i].ep, peers[n].endpoint, sizeof(peers[n].endpoint));
		peers[n].handshake_s = dev.peers[i].handshake_s > 0 ? (uint64_t)dev.peers[i].handshake_s : 0;
		peers[n].rx_bytes = dev.peers[i].rx_bytes;
		peers[n].tx_bytes = dev.peers[i].tx_bytes;
	}
	wgnl_device_free(&dev);
	return ret < 0 ? ret : n;
}

static int key_cmp(const void *a, const void *b)
{
	return memcmp(((const struct wgnl_peer *)a)->pub, ((const struct wgnl_peer *)b)->pub, 32);
}

int wgnl_rehandshake(const char *ifname, struct wgdev_move *mv, int n)
{
	struct wglb_addr ep;
	struct wgnl w;
	struct wgnl_device dev;
	struct wgnl_peer *set = NULL, *restore = NULL;
	size_t k = 0, moved = 0;
	int ret;

	wgnl_device_init(&dev);
	ret = wgnl_open(&w);
	if (ret < 0)
		goto fail;
	ret = get_device(&w, ifname, &dev);
	set = calloc(2 * (size_t)n + 1, sizeof(*set));
	restore = calloc((size_t)n + 1, sizeof(*restore));
	if (!ret && (!set || !restore))
		ret = -ENOMEM;
	if (ret < 0)
		goto out;
	qsort(dev.peers, dev.n, sizeof(*dev.peers), key_cmp);
	for (int i = 0; i < n; i++) {
		struct wgnl_peer key, *old;
		memcpy(key.pub, mv[i].pub, 32);
		old = dev.n ? bsearch(&key, dev.peers, dev.n, sizeof(*dev.peers), key_cmp) : NULL;
		mv[i].result = !old ? -ENOENT : addr_parse(mv[i].endpoint, &ep) < 0 ? -EINVAL : 0;
		if (mv[i].result)
			continue;
		/* Remove (drops any session) and re-add exactly as it was, with
		 * the new endpoint and a keepalive of 1: one change for all. */
		memcpy(restore[k].pub, old->pub, 32);
		restore[k].keepalive = wgnl_readd(old, &ep.u, &set[2 * k]);
		k++;
	}
	/* Each peer's removal and re-add in a message of their own: a cut
	 * between them (messages hold ~25 peers) followed by a failure would
	 * leave the peer removed. The dump, not these, was the batch's cost. */
	for (size_t j = 0, i = 0; j < k; j++) {
		int r = set_peers(&w, ifname, &set[2 * j], 2);
		while (mv[i].result) /* the j-th peer found is the next without a result */
			i++;
		if (r < 0) {
			mv[i].result = r;
			restore[j].keepalive = -2; /* nothing to restore */
		} else {
			moved++;
		}
		i++;
	}
	/* Restore the operators' keepalives for those that moved: the
	 * initiations are already on their way, and 1 -> N sends nothing more. */
	for (size_t j = 0, o = 0; j < k; j++)
		if (restore[j].keepalive != -2)
			restore[o++] = restore[j];
	if (moved) /* on failure the peers moved, with a keepalive of 1 until the next change */
		(void)set_peers(&w, ifname, restore, moved);
out:
	wgnl_close(&w);
fail:
	wgnl_device_free(&dev);
	free(set);
	free(restore);
	if (ret < 0)
		for (int i = 0; i < n; i++)
			if (!mv[i].result)
				mv[i].result = ret;
	return ret < 0 ? ret : 0;
}
