/* SPDX-License-Identifier: MIT */
/*
 * The configuration: an INI file in the spirit of wg-quick, parsed whole
 * into a new struct and checked before anything uses it, so that a reload
 * either swaps in a complete valid config or keeps the running one.
 */
#ifndef WGLB_CONFIG_H
#define WGLB_CONFIG_H

#include "wglb/addr.h"

#include <stdbool.h>
#include <stdint.h>

#define CONFIG_DEFAULT_PATH "/etc/wglb/wglb.conf"
#define CONFIG_MAX_LISTEN   16
#define CONFIG_MAX_BACKENDS 256
#define CONFIG_MAX_WORKERS  64
#define CONFIG_MAX_ALLOW    256
#define BACKEND_NAME_MAX    32 /* including the NUL */
#define WEIGHT_MAX          100
#define CONFIG_AUTO_MAX_FLOWS 65536 /* max_flows unset: this, or what ports and fds allow */

/* What a backend sees as a flow's source (client_address). */
enum client_address {
	CLIENT_SNAT,     /* the balancer's address and an upstream port of its own */
	CLIENT_PRESERVE, /* the client's own address and port (transparent sockets) */
};

/* Whether confirmed flows' transport is forwarded by the kernel (fast_path;
 * docs/fast-path.md). */
enum fast_path_mode {
	FAST_PATH_OFF, /* every datagram through wglb's sockets */
	FAST_PATH_TC,  /* a BPF program at tc ingress of the listeners' and backends' interfaces */
};

struct backend_conf {
	char name[BACKEND_NAME_MAX];
	struct wglb_addr addr;
	uint16_t weight;
	uint16_t health_port; /* 0 = [health] port */
	unsigned line;
};

struct health_conf {
	bool enabled; /* a [health] section is present */
	uint16_t port;
	char path[256];
	bool head; /* method HEAD instead of GET */
	uint32_t interval_ms, timeout_ms;
	uint32_t rise, fall;
	uint16_t match_lo, match_hi;
};

struct agent_conf {
	char key_file[4096]; /* empty: no instant failover */
	uint16_t port;
	uint32_t rate; /* re-handshake requests per second */
};

struct wglb_config {
	char path[4096];
	struct wglb_addr listen[CONFIG_MAX_LISTEN];
	unsigned n_listen;
	char control[104]; /* sun_path (108) less ".new", where it is bound before it listens */
	char control_group[64];
	char admin_group[64];
	struct wglb_addr metrics_listen; /* len 0: no HTTP metrics endpoint */
	char server_public_key[64];      /* base64; empty: no mac1 checks */
	uint32_t handshake_rate, handshake_burst; /* per client source; rate 0 = off */
	uint8_t handshake_cookies; /* enum cookie_mode (cookie.h) */
	uint32_t under_load_rate;  /* unproven new sources per second that mean load */
	uint32_t flow_idle_timeout;
	uint32_t backend_silence; /* s: a confirmed flow whose backend says nothing this long is demoted */
	uint8_t client_address; /* enum client_address */
	bool udp_gro; /* coalesced receives and 64 KiB buffers (restart to change) */
	uint8_t fast_path; /* enum fast_path_mode (restart to change) */
	uint32_t workers; /* forwarding threads as asked; 0 = auto, one per CPU */
	uint32_t max_flows; /* 0 until resolved: what ports and fds allow, at most 65536 */
	struct wglb_cidr allow[CONFIG_MAX_ALLOW];
	unsigned n_allow;
	struct backend_conf *backends;
	unsigned n_backends;
	struct health_conf health;
	struct agent_conf agent;
};

typedef void (*config_err_fn)(void *ctx, const char *file, unsigned line, const char *msg);

/* Parse and check text as if read from file `name`. Returns the number of
 * errors (each reported through err), or -errno. On success *cfg is
 * complete; on any error it is released. */
int config_parse(const char *name, const char *text, size_t len, struct wglb_config *cfg,
		 config_err_fn err, void *ctx);
/* Read a file then config_parse(). -errno when it cannot be read. */
int config_load(const char *path, struct wglb_config *cfg, config_err_fn err, void *ctx);
void config_free(struct wglb_config *cfg);
/* A deep copy (its own backends array): 0 or -ENOMEM. */
int config_copy(struct wglb_config *dst, const struct wglb_config *src);
const struct backend_conf *config_backend(const struct wglb_config *cfg, const char *name);
bool config_name_valid(const char *name);
/* The first listener that can face the internet (anything but loopback: on
 * AWS an Elastic IP reaches the instance's private address) while no
 * server_public_key lets the edge check mac1 and ask for cookies; NULL
 * when none. */
const struct wglb_addr *config_exposed(const struct wglb_config *cfg);

#endif
