// SPDX-License-Identifier: MIT
/* The control line parser alone (lb/ctl_parse.c), over a table with every
 * shape the daemon's has: one and two words, no, fixed and optional
 * arguments. */
#include "wglb/ctl.h"

#include <stdlib.h>
#include <string.h>

static const struct ctl_cmd cmds[] = {
	{{"help", NULL}, "help", NULL, 0, 0, 0},
	{{"show", "info"}, "show info", NULL, 0, 0, 0},
	{{"show", "flows"}, "show flows [backend NAME] [limit N]", NULL, CMD_F_STREAM, 0, 4},
	{{"backend", "drain"}, "backend drain NAME [now]", NULL, CMD_F_ADMIN, 1, 2},
	{{"backend", "add"}, "backend add NAME ADDR [weight W]", NULL, CMD_F_ADMIN, 2, 4},
	{{"reload", NULL}, "reload", NULL, CMD_F_ADMIN, 0, 0},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_req req;
	const char *err = NULL;

	if (ctl_parse(cmds, sizeof(cmds) / sizeof(cmds[0]), (const char *)data, size, &req, &err) == 0) {
		if (!req.cmd || req.argc < req.cmd->min_args || req.argc > req.cmd->max_args ||
		    req.argc > CTL_MAX_ARGS)
			abort();
		for (int i = 0; i < req.argc; i++)
			if (!req.argv[i] || !*req.argv[i] || strlen(req.argv[i]) >= CTL_MAX_LINE)
				abort();
	} else if (!err) {
		abort(); /* every refusal explains itself */
	}
	return 0;
}
