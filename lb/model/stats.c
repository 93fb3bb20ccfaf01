// SPDX-License-Identifier: MIT
#include "wglb/stats.h"

const char *stats_drop_name(enum drop d)
{
	static const char *const names[DROP__COUNT] = {
		[DROP_TOO_SHORT] = "too_short",
		[DROP_BAD_RESERVED] = "bad_reserved",
		[DROP_UNKNOWN_TYPE] = "unknown_type",
		[DROP_BAD_LENGTH] = "bad_length",
		[DROP_TRUNCATED] = "truncated",
		[DROP_NOT_ALLOWED] = "not_allowed",
		[DROP_NO_BACKEND] = "no_backend",
		[DROP_TABLE_FULL] = "table_full",
		[DROP_NO_SOCKET] = "no_socket",
		[DROP_SEND_ERROR] = "send_error",
		[DROP_STALE] = "stale",
		[DROP_BAD_MAC1] = "bad_mac1",
		[DROP_RATE_LIMITED] = "rate_limited",
		[DROP_NEEDS_COOKIE] = "needs_cookie",
		[DROP_UNPROVEN] = "unproven",
		[DROP_NO_FLOW] = "no_flow",
		[DROP_BAD_SOURCE] = "bad_source",
		[DROP_COOKIE_CAPPED] = "cookie_capped",
		[DROP_COOKIE_UNSENT] = "cookie_unsent",
	};
	return (unsigned)d < DROP__COUNT ? names[d] : "invalid";
}

const char *stats_repin_name(enum repin r)
{
	static const char *const names[REPIN__COUNT] = {
		[REPIN_INITIATION] = "initiation",
		[REPIN_DOWN] = "down",
		[REPIN_DISABLED] = "disabled",
		[REPIN_REMOVED] = "removed",
		[REPIN_CHANGED] = "changed",
		[REPIN_DRAINED] = "drained_now",
	};
	return (unsigned)r < REPIN__COUNT ? names[r] : "invalid";
}
