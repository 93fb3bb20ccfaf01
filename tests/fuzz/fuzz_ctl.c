// SPDX-License-Identifier: MIT
#include "wglb/ctl.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_req req;
	const char *err = NULL;

	if (ctl_parse((const char *)data, size, &req, &err) == 0) {
		if (!req.cmd || req.argc < 0 || req.argc > CTL_MAX_ARGS)
			abort();
		for (int i = 0; i < req.argc; i++)
			if (!req.argv[i] || !*req.argv[i] || strlen(req.argv[i]) >= CTL_MAX_LINE)
				abort();
	} else if (!err) {
		abort(); /* every refusal explains itself */
	}
	return 0;
}
