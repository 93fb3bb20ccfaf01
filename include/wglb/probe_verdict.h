/* SPDX-License-Identifier: MIT */
/*
 * What a health probe's answer says, as pure functions (no state but the
 * caller's, no I/O): the HTTP status and drain header of a response head,
 * and the rise/fall verdict of a run of results. The prober (probe.c) does
 * the I/O around them; tests/unit/test_probe.c checks the verdict as a
 * table, tests/fuzz/fuzz_http.c the parser, linking nothing else.
 */
#ifndef WGLB_PROBE_VERDICT_H
#define WGLB_PROBE_VERDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parse an HTTP/1.x response head at the start of buf. Returns the status
 * (100..599) once the headers are complete (or, when final, from the status
 * line alone), 0 when more bytes are needed, -1 when it is not HTTP.
 * *drain_header is set when the head carries "X-Wglb-Drain: 1". */
int probe_parse_status(const char *buf, size_t len, bool final, int *drain_header);

/* A backend's run of probe results. */
struct probe_streak {
	uint32_t ok, fail;
};

enum probe_change { PROBE_SAME, PROBE_UP, PROBE_DOWN };

/* One more result: `rise` passes in a row bring a backend that is not up
 * up, `fall` failures in a row bring one that is not down down; a result
 * against the streak starts it again. `up` and `down` say where the
 * backend stands now (neither: checking). */
enum probe_change probe_judge(struct probe_streak *s, bool pass, bool up, bool down,
			      uint32_t rise, uint32_t fall);

#endif
