// SPDX-License-Identifier: MIT
/* A control line -> its command in a table (ctl.h). Pure: no state, no
 * I/O, nothing of the daemon; fuzzed alone by tests/fuzz/fuzz_ctl.c. */
#include "wglb/ctl.h"

#include <errno.h>
#include <string.h>

int ctl_parse(const struct ctl_cmd *cmds, size_t n_cmds, const char *line, size_t len,
	      struct ctl_req *req, const char **err)
{
	char *tok[CTL_MAX_ARGS + 3];
	int nt = 0;
	char *s;

	memset(req, 0, sizeof(*req));
	if (len && line[len - 1] == '\r')
		len--;
	if (len >= sizeof(req->buf)) {
		*err = "line too long";
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t') {
			*err = "control characters in command";
			return -EINVAL;
		}
	memcpy(req->buf, line, len);
	req->buf[len] = '\0';
	for (s = strtok(req->buf, " \t"); s; s = strtok(NULL, " \t")) {
		if (nt == CTL_MAX_ARGS + 3) {
			*err = "too many words";
			return -EINVAL;
		}
		tok[nt++] = s;
	}
	if (nt && !strcmp(tok[nt - 1], "json")) {
		req->json = true;
		nt--;
	}
	if (nt == 0) {
		*err = "empty command; try 'help'";
		return -EINVAL;
	}
	for (size_t i = 0; i < n_cmds; i++) {
		const struct ctl_cmd *cmd = &cmds[i];
		int nw = cmd->words[1] ? 2 : 1;
		if (nt < nw || strcmp(tok[0], cmd->words[0]) ||
		    (nw == 2 && strcmp(tok[1], cmd->words[1])))
			continue;
		req->argc = nt - nw;
		if (req->argc < cmd->min_args || req->argc > cmd->max_args) {
			*err = cmd->usage;
			return -EINVAL;
		}
		for (int a = 0; a < req->argc; a++)
			req->argv[a] = tok[nw + a];
		req->cmd = cmd;
		return 0;
	}
	*err = "unknown command; try 'help'";
	return -EINVAL;
}
