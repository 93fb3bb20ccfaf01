// SPDX-License-Identifier: MIT
/*
 * WireGuard message classification. Every field is read little-endian from
 * byte offsets after a length check; nothing is cast onto the buffer, so an
 * unaligned or short datagram can never be read past its end.
 */
#include "wglb/wgmsg.h"

/* The protocol's structs, to pin the sizes the classifier relies on. */
struct wg_initiation_wire {
	uint8_t type_reserved[4], sender[4], ephemeral[32], static_enc[48], timestamp_enc[28];
	uint8_t mac1[16], mac2[16];
};
struct wg_response_wire {
	uint8_t type_reserved[4], sender[4], receiver[4], ephemeral[32], empty_enc[16];
	uint8_t mac1[16], mac2[16];
};
struct wg_cookie_wire {
	uint8_t type_reserved[4], receiver[4], nonce[24], cookie_enc[32];
};
struct wg_transport_hdr_wire {
	uint8_t type_reserved[4], receiver[4], counter[8];
};
_Static_assert(sizeof(struct wg_initiation_wire) == WG_INITIATION_SIZE, "initiation size");
_Static_assert(sizeof(struct wg_response_wire) == WG_RESPONSE_SIZE, "response size");
_Static_assert(sizeof(struct wg_cookie_wire) == WG_COOKIE_SIZE, "cookie size");
_Static_assert(sizeof(struct wg_transport_hdr_wire) == 16, "transport header size");
_Static_assert(WG_INIT_MAC1_OFF == WG_INITIATION_SIZE - 2 * WG_MAC_LEN, "mac1 offset");
_Static_assert(WG_RESP_MAC1_OFF == WG_RESPONSE_SIZE - 2 * WG_MAC_LEN, "mac1 offset");

enum wg_drop wgmsg_classify(const uint8_t *buf, size_t len, struct wg_info *info)
{
	if (len < 4)
		return WG_DROP_TOO_SHORT;
	if (buf[1] | buf[2] | buf[3])
		return WG_DROP_BAD_RESERVED;

	info->sender = 0;
	info->receiver = 0;
	switch (buf[0]) {
	case WG_T_INITIATION:
		if (len != WG_INITIATION_SIZE)
			return WG_DROP_BAD_LENGTH;
		info->sender = wgmsg_le32(buf + 4);
		break;
	case WG_T_RESPONSE:
		if (len != WG_RESPONSE_SIZE)
			return WG_DROP_BAD_LENGTH;
		info->sender = wgmsg_le32(buf + 4);
		info->receiver = wgmsg_le32(buf + 8);
		break;
	case WG_T_COOKIE:
		if (len != WG_COOKIE_SIZE)
			return WG_DROP_BAD_LENGTH;
		info->receiver = wgmsg_le32(buf + 4);
		break;
	case WG_T_TRANSPORT:
		/* No alignment rule: WireGuard pads to 16 but stops at the MTU. */
		if (len < WG_TRANSPORT_MIN)
			return WG_DROP_BAD_LENGTH;
		info->receiver = wgmsg_le32(buf + 4);
		break;
	default:
		return WG_DROP_UNKNOWN_TYPE;
	}
	info->type = (enum wg_type)buf[0];
	return WG_DROP_NONE;
}

const char *wgmsg_drop_name(enum wg_drop reason)
{
	static const char *const names[WG_DROP__COUNT] = {
		[WG_DROP_NONE] = "none",
		[WG_DROP_TOO_SHORT] = "too_short",
		[WG_DROP_BAD_RESERVED] = "bad_reserved",
		[WG_DROP_UNKNOWN_TYPE] = "unknown_type",
		[WG_DROP_BAD_LENGTH] = "bad_length",
	};
	return (unsigned)reason < WG_DROP__COUNT ? names[reason] : "invalid";
}

const char *wgmsg_type_name(enum wg_type type)
{
	switch (type) {
	case WG_T_INITIATION:
		return "initiation";
	case WG_T_RESPONSE:
		return "response";
	case WG_T_COOKIE:
		return "cookie";
	case WG_T_TRANSPORT:
		return "transport";
	}
	return "invalid";
}
