// SPDX-License-Identifier: MIT
/* The agent channel's parsers: a request's framing and the request, the
 * clients it tells included (the agent's side), and a whole reply, peers
 * report included (the balancer's side). */
#include "wglb/agentproto.h"

#include <stdlib.h>
#include <string.h>

static void check_words(const struct ap_msg *m)
{
	if (m->n < 1 || m->n > AP_MAX_WORDS)
		abort();
	for (int i = 0; i < m->n; i++)
		if (!m->word[i] || !*m->word[i] || strchr(m->word[i], ' ') || strchr(m->word[i], '\n'))
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ap_key key; /* all zeros: the corpus is signed with it */
	static struct ap_replay replay;
	struct ap_msg m, line;
	unsigned n = 0, seen = 0;
	size_t pos = 0;
	size_t scan = 0, scan2 = 0;
	long end = ap_request_end((const char *)data, size, &scan);
	/* Read in two pieces: the same frame as read whole. */
	if (ap_request_end((const char *)data, size / 2, &scan2) == 0 &&
	    ap_request_end((const char *)data, size, &scan2) != end)
		abort();
	enum ap_verdict v = ap_verify(&key, &replay, 1000000, (const char *)data, size, &m);

	if (end < -1 || end > (long)size || (end > 0 && data[end - 1] != '\n'))
		abort();
	if ((unsigned)v > AP_REPLAY)
		abort();
	if (v == AP_OK) {
		check_words(&m);
		if (ap_clients_check(&m, &n) == AP_OK) {
			while (ap_clients_next(&m, &pos, &line)) {
				if (line.n != 3 || strcmp(line.word[0], "c"))
					abort();
				check_words(&line);
				seen++;
			}
			if (seen != n)
				abort();
		}
		n = seen = 0;
		pos = 0;
		if (ap_moves_check(&m, &n) == AP_OK) {
			while (ap_moves_next(&m, &pos, &line)) {
				if (line.n != 3 || strcmp(line.word[0], "r"))
					abort();
				check_words(&line);
				seen++;
			}
			if (seen != n)
				abort();
		}
		n = seen = 0;
		pos = 0;
	}
	/* The same bytes as a whole reply to request 0011223344556677. */
	v = ap_reply_verify(&key, 1000000, "0011223344556677", (const char *)data, size, &m);
	if ((unsigned)v > AP_REPLAY)
		abort();
	if (v != AP_OK)
		return 0;
	check_words(&m);
	if (m.body_len && (m.body < (const char *)data || m.body + m.body_len > (const char *)data + size))
		abort();
	if (ap_moved_check(&m, &n) == AP_OK) {
		while (ap_moved_next(&m, &pos, &line)) {
			if (line.n != 2 || strcmp(line.word[0], "r"))
				abort();
			seen++;
		}
		if (seen != n)
			abort();
		return 0;
	}
	if (ap_report_check(&m, &n) != AP_OK)
		return 0;
	while (ap_report_next(&m, &pos, &line)) {
		if (line.n != 4 || strcmp(line.word[0], "peer"))
			abort();
		check_words(&line);
		seen++;
	}
	if (seen != n) /* the count a report passed with is the lines it yields */
		abort();
	return 0;
}
