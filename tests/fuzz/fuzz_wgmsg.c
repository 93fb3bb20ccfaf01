// SPDX-License-Identifier: MIT
#include "wglb/wgmsg.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wg_info wi;
	enum wg_drop d = wgmsg_classify(data, size, &wi);

	/* Invariants: a verdict is a known reason, and an accepted message
	 * has its exact size and zero reserved bytes. */
	if ((unsigned)d >= WG_DROP__COUNT)
		abort();
	if (d == WG_DROP_NONE) {
		if (size < 4 || data[1] || data[2] || data[3])
			abort();
		if ((wi.type == WG_T_INITIATION && size != 148) ||
		    (wi.type == WG_T_RESPONSE && size != 92) || (wi.type == WG_T_COOKIE && size != 64) ||
		    (wi.type == WG_T_TRANSPORT && size < 32))
			abort();
	}
	return 0;
}
