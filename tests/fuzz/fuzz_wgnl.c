// SPDX-License-Identifier: MIT
/* The kernel dump parser (health/wgnl.c): any datagram is read or refused,
 * never read past; whatever it accepts, the SET builder writes back and the
 * parser reads again to the same peers. */
#include "wglb/wgnl.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[4096];
	struct wgnl_device dev, back;
	struct wgnl_cursor cur = {0};
	long m;

	wgnl_device_init(&dev);
	if (wgnl_parse(data, size, 0, 0, &dev) < 0 || dev.n > 64) {
		wgnl_device_free(&dev);
		return 0;
	}
	wgnl_device_init(&back);
	while ((m = wgnl_msg_set(buf, sizeof(buf), 0x1d, 1, "wg0", dev.peers, dev.n, &cur)) > 0)
		if (wgnl_parse(buf, (size_t)m, 1, 0, &back) < 0)
			abort(); /* we wrote something we cannot read */
	if (m == 0) {
		/* Peers with equal neighbouring keys merge, as the kernel's split does. */
		if (back.n > dev.n)
			abort();
		for (size_t i = 0; i < back.n; i++)
			if (back.peers[i].keepalive != dev.peers[i].keepalive && back.n == dev.n)
				abort();
	}
	wgnl_device_free(&back);
	wgnl_device_free(&dev);
	return 0;
}
