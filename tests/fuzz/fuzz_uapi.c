// SPDX-License-Identifier: MIT
/* wg-health's UAPI reply parsers: any reply is read or refused (peers, the
 * device's port and fwmark), and the re-add request they build always fits
 * and ends its message. */
#include "wglb/uapi.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char hex[] = "1111111111111111111111111111111111111111111111111111111111111111";
	struct wgdev_peer peers[8];
	char *buf = malloc(size + 1), req[600], ka[16];
	int n;

	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	n = uapi_parse_peers(buf, peers, 8);
	if (n < 0 || n > 8)
		abort();
	for (int i = 0; i < n; i++)
		if (strlen(peers[i].endpoint) >= sizeof(peers[i].endpoint))
			abort();
	memcpy(buf, data, size);
	buf[size] = '\0';
	n = uapi_readd_request(buf, hex, "10.0.0.1:1", req, sizeof(req), ka);
	if (n >= 0 && ((size_t)n >= sizeof(req) || strlen(req) != (size_t)n ||
		       strcmp(req + n - 2, "\n\n") || strlen(ka) >= 16))
		abort();
	if (n < 0 && n != -ENOENT && n != -E2BIG)
		abort();
	{
		struct wgdev_conf conf;
		memcpy(buf, data, size);
		buf[size] = '\0';
		n = uapi_parse_conf(buf, &conf);
		if ((n != 0 && n != -EPROTO) ||
		    (n == 0 && (conf.listen_port < 0 || conf.listen_port > 65535)))
			abort();
	}
	free(buf);
	return 0;
}
