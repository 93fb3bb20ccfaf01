// SPDX-License-Identifier: MIT
#include "wglb/probe_verdict.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int drain = 0;

	for (int final = 0; final < 2; final++) {
		int st = probe_parse_status((const char *)data, size, final, &drain);
		if (st != -1 && st != 0 && (st < 100 || st > 599))
			abort();
		if (final && st == 0)
			abort(); /* at the end there is always a verdict */
		if (drain && st <= 0)
			abort();
	}
	return 0;
}
