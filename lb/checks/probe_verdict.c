// SPDX-License-Identifier: MIT
/* What a probe's answer says (see probe_verdict.h). No state, no I/O. */
#include "wglb/probe_verdict.h"

#include <ctype.h>
#include <string.h>

int probe_parse_status(const char *buf, size_t len, bool final, int *drain)
{
	static const char ver[] = "HTTP/1.";
	const char *hdr_end, *p;
	int status;

	*drain = 0;
	for (size_t i = 0; i < len && i < sizeof(ver) - 1; i++)
		if (buf[i] != ver[i])
			return -1;
	if (len < 13)
		return final ? -1 : 0;
	if (!isdigit((unsigned char)buf[7]) || buf[8] != ' ' || !isdigit((unsigned char)buf[9]) ||
	    !isdigit((unsigned char)buf[10]) || !isdigit((unsigned char)buf[11]) ||
	    (buf[12] != ' ' && buf[12] != '\r'))
		return -1;
	status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	if (status < 100 || status > 599)
		return -1;
	/* Headers are complete at the blank line; until then ask for more. */
	hdr_end = NULL;
	for (p = buf; p + 4 <= buf + len; p++)
		if (!memcmp(p, "\r\n\r\n", 4)) {
			hdr_end = p;
			break;
		}
	if (!hdr_end)
		return final ? status : 0; /* closed early: the status line decides */
	for (p = buf; p + 17 <= hdr_end; p++) {
		static const char h[] = "\r\nx-wglb-drain:";
		size_t k;
		for (k = 0; k < sizeof(h) - 1 && tolower((unsigned char)p[k]) == h[k]; k++)
			;
		if (k == sizeof(h) - 1) {
			const char *v = p + k;
			while (v < hdr_end && (*v == ' ' || *v == '\t'))
				v++;
			*drain = v < hdr_end && *v == '1';
			break;
		}
	}
	return status;
}

enum probe_change probe_judge(struct probe_streak *s, bool pass, bool up, bool down,
			      uint32_t rise, uint32_t fall)
{
	if (pass) {
		s->fail = 0;
		s->ok++;
		return !up && s->ok >= rise ? PROBE_UP : PROBE_SAME;
	}
	s->ok = 0;
	s->fail++;
	return !down && s->fail >= fall ? PROBE_DOWN : PROBE_SAME;
}
