// SPDX-License-Identifier: MIT
#include "wglb/config.h"

#include <stdlib.h>

static void count(void *ctx, const char *file, unsigned line, const char *msg)
{
	(void)file;
	(void)msg;
	if (line == 0)
		abort(); /* every error names a line */
	(*(unsigned *)ctx)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wglb_config cfg;
	unsigned errors = 0;
	int ret = config_parse("fuzz.conf", (const char *)data, size, &cfg, count, &errors);

	if (ret != (int)errors)
		abort(); /* the return value is the number of errors reported */
	if (ret == 0) {
		if (cfg.n_backends == 0 || cfg.n_listen == 0)
			abort();
		config_free(&cfg);
	}
	return 0;
}
