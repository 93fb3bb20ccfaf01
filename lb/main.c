// SPDX-License-Identifier: MIT
/* wglb: flags, config check, start-up errors with clear exit codes. */
#include "wglb/agent.h"
#include "wglb/agentproto.h"
#include "wglb/config.h"
#include "wglb/ctl.h"
#include "wglb/ctl_cmds.h"
#include "wglb/fwd.h"
#include "wglb/metrics.h"
#include "wglb/status.h"
#include "wglb/log.h"
#include "wglb/loop.h"
#include "wglb/probe.h"
#include "wglb/reload.h"
#include "wglb/totals.h"
#include "wglb/version.h"
#include "wglb/workers.h"

#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_CONFIG = 1, EXIT_USAGE = 2, EXIT_RUNTIME = 3 };

static void usage(FILE *out)
{
	fprintf(out,
		"usage: wglb [-c FILE] [--check | --agent-key-for NAME | --fast-path-clear] [-v]\n"
		"  -c, --config FILE  configuration (default %s)\n"
		"      --check        validate the configuration (and, with client_address =\n"
		"                     preserve, that this host can) and exit: 0 valid, 1 errors\n"
		"      --agent-key-for NAME\n"
		"                     print backend NAME's agent key (for its wg-health\n"
		"                     --agent-key), derived from [agent] key_file, and exit\n"
		"      --fast-path-clear\n"
		"                     remove the fast path's program that a wglb which died\n"
		"                     left attached on the configuration's interfaces, and exit\n"
		"  -v, --verbose      log debug lines too\n"
		"  -h, --help         this text\n"
		"  -V, --version      print the version\n"
		"Signals: HUP reloads the configuration, TERM and INT stop.\n",
		CONFIG_DEFAULT_PATH);
}

/* Each backend's agent holds only its own key, derived from our master and
 * its name: print it for the operator to install there. */
static int print_agent_key(const struct wglb_config *cfg, const char *name)
{
	struct ap_key master, key;
	char b64[sodium_base64_ENCODED_LEN(AP_KEY_LEN, sodium_base64_VARIANT_ORIGINAL)];
	int ret;

	if (!cfg->agent.key_file[0]) {
		fprintf(stderr, "wglb: --agent-key-for: no [agent] key_file in the configuration\n");
		return EXIT_CONFIG;
	}
	if (!config_backend(cfg, name))
		fprintf(stderr, "wglb: note: no [backend %s] in the configuration (yet)\n", name);
	ret = ap_key_load(cfg->agent.key_file, &master);
	if (ret < 0) {
		fprintf(stderr, "wglb: key_file %s: %s\n", cfg->agent.key_file, strerror(-ret));
		return EXIT_CONFIG;
	}
	ret = ap_key_derive(&master, name, &key);
	sodium_memzero(&master, sizeof(master));
	if (ret < 0) {
		fprintf(stderr, "wglb: --agent-key-for: '%s' is not a backend name (1-%d of A-Z a-z "
			"0-9 . _ -)\n", name, AP_NAME_MAX - 1);
		return EXIT_USAGE;
	}
	sodium_bin2base64(b64, sizeof(b64), key.k, sizeof(key.k), sodium_base64_VARIANT_ORIGINAL);
	sodium_memzero(&key, sizeof(key));
	ret = printf("%s\n", b64) < 0 || fflush(stdout) != 0 ? EXIT_RUNTIME : 0;
	sodium_memzero(b64, sizeof(b64));
	return ret;
}

static void print_error(void *ctx, const char *file, unsigned line, const char *msg)
{
	(void)ctx;
	fprintf(stderr, "%s:%u: %s\n", file, line, msg);
}

int main(int argc, char **argv)
{
	/* The parts of the main loop, in order: the packet path first (the
	 * others read its state), the control socket before the commands and
	 * metrics that register with it. */
	static const struct loop_part *const parts[] = {
		&ctl_part, &ctl_cmds_part, &metrics_part, &status_part, &probe_part, &agent_part, &reload_part};
	/* Every other worker forwards and asks its own flows' backends to re-handshake. */
	static const struct loop_part *const worker_parts[] = {&fwd_part, &agent_part};
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'}, {"check", no_argument, NULL, 'C'},
		{"verbose", no_argument, NULL, 'v'},      {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},      {"agent-key-for", required_argument, NULL, 'K'},
		{"fast-path-clear", no_argument, NULL, 'F'},
		{NULL, 0, NULL, 0},
	};
	const char *agent_key_for = NULL;
	const char *path = CONFIG_DEFAULT_PATH;
	struct wglb_config cfg;
	static struct loop l; /* large: keep it off the stack */
	struct workers *ws;
	unsigned n_workers;
	const struct wglb_addr *exposed;
	bool check = false, fast_clear = false;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "c:vhV", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			path = optarg;
			break;
		case 'C':
			check = true;
			break;
		case 'K':
			agent_key_for = optarg;
			break;
		case 'F':
			fast_clear = true;
			break;
		case 'v':
			log_set_level(LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("wglb %s\n", WGLB_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "wglb: libsodium failed to initialise\n");
		return EXIT_RUNTIME;
	}
	ret = config_load(path, &cfg, print_error, NULL);
	if (ret < 0) {
		fprintf(stderr, "%s: cannot read: %s\n", path, strerror(-ret));
		return EXIT_CONFIG;
	}
	if (ret > 0) {
		fprintf(stderr, "%s: %d error(s)\n", path, ret);
		return EXIT_CONFIG;
	}
	if (agent_key_for) {
		ret = print_agent_key(&cfg, agent_key_for);
		config_free(&cfg);
		return ret;
	}
	if (fast_clear) {
		char what[640];
		ret = fwd_fast_clear(&cfg, what, sizeof(what));
		printf("fast path: %s\n", what);
		config_free(&cfg);
		return ret < 0 ? EXIT_RUNTIME : 0;
	}
	exposed = config_exposed(&cfg);
	if (exposed) {
		char a[ADDR_STRLEN];
		addr_fmt(&exposed->u, a, sizeof(a));
		/* Said at every start and check, on stderr and in the log. */
		log_warn("UNSAFE: listening on %s without server_public_key: anyone can open flows "
			 "with forged handshakes and no cookie can be asked for. Set server_public_key "
			 "(wg pubkey < server.key) in [balancer]", a);
	}
	if (check) {
		char why[256];
		if (cfg.client_address == CLIENT_PRESERVE && fwd_preserve_check(&cfg, why, sizeof(why)) < 0) {
			fprintf(stderr, "%s: client_address = preserve cannot work here: %s\n", path, why);
			config_free(&cfg);
			return EXIT_CONFIG;
		}
		char fast[640];
		(void)fwd_fast_check(&cfg, fast, sizeof(fast)); /* never a config error: the socket path */
		printf("%s: ok (%u listeners, %u backends%s)%s\n", path, cfg.n_listen, cfg.n_backends,
		       cfg.client_address == CLIENT_PRESERVE ? ", client addresses preserved" : "",
		       exposed ? ", UNSAFE: no server_public_key" : "");
		printf("fast path: %s\n", fast);
		config_free(&cfg);
		return 0;
	}
	log_info("wglb %s starting with %s", WGLB_VERSION, path);
	n_workers = workers_wanted(cfg.workers);
	ws = workers_new(n_workers);
	if (n_workers > 1 && !ws) {
		log_err("exiting: %s", strerror(ENOMEM));
		config_free(&cfg);
		return EXIT_RUNTIME;
	}
	fwd_size(&cfg);
	/* Loaded and attached before any loop opens: every worker's packet
	 * path finds it there, or runs on its sockets alone. */
	fwd_fast_start(&cfg);
	ret = loop_init(&l, &cfg, ws, 0, n_workers);
	if (ret == 0)
		ret = loop_attach(&l, &fwd_part);
	/* The other workers join the listeners and are steered before the
	 * control socket exists: once it answers, a client stays on one. */
	if (ret == 0)
		ret = workers_start(&l, worker_parts, sizeof(worker_parts) / sizeof(worker_parts[0]),
				    totals_add);
	/* The loop carries the packet path; these run beside it. */
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && ret == 0; i++)
		ret = loop_attach(&l, parts[i]);
	if (ret == 0)
		ret = loop_run(&l);
	/* Off the interfaces before any socket closes: the kernel must not go
	 * on forwarding for flows whose ports are being given back. */
	fwd_fast_detach();
	workers_stop(&l);
	loop_fini(&l);
	workers_free(ws);
	fwd_fast_stop();
	if (ret < 0) {
		log_err("exiting: %s", strerror(-ret));
		return EXIT_RUNTIME;
	}
	return 0;
}
