// SPDX-License-Identifier: MIT
#include "wglb/agentproto.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ap_key key; /* all zeros: a fuzzer may also find signed lines */
	static struct ap_replay replay;
	struct ap_msg m;
	enum ap_verdict v = ap_verify(&key, &replay, 1000000, (const char *)data, size, &m);

	if ((unsigned)v > AP_REPLAY)
		abort();
	if (v == AP_OK) {
		if (m.n < 1 || m.n > AP_MAX_WORDS)
			abort();
		for (int i = 0; i < m.n; i++)
			if (!m.word[i] || !*m.word[i] || strchr(m.word[i], ' '))
				abort();
	}
	return 0;
}
