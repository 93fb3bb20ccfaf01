// SPDX-License-Identifier: MIT
/*
 * A small INI parser with every error tied to its file and line. Debian's
 * libinih stops at (or only reports) the first error's line, and `wglb
 * --check` must list them all, so the ~100 lines of line splitting live
 * here, driven by a table of keys.
 */
#include "wglb/config.h"
#include "wglb/cookie.h"
#include "wglb/mac.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX_BYTES (1 << 20)

/* SEC_BAD: after a broken section header, whose keys are skipped silently. */
enum section { SEC_NONE, SEC_BALANCER, SEC_BACKEND, SEC_HEALTH, SEC_AGENT, SEC_BAD };

struct parser {
	struct wglb_config *cfg;
	const char *file;
	unsigned line;
	unsigned errors;
	unsigned health_line; /* where [health] starts, for whole-section errors */
	unsigned fast_path_line; /* where fast_path was set, for errors that need the whole file */
	enum section sec;
	struct backend_conf *be; /* current [backend] */
	uint64_t seen;           /* keys seen in the current section instance */
	config_err_fn err;
	void *ctx;
};

static void perr(struct parser *p, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void perr(struct parser *p, unsigned line, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->errors++;
	if (p->err)
		p->err(p->ctx, p->file, line, msg);
}

static int parse_u32(const char *v, uint32_t lo, uint32_t hi, uint32_t *out)
{
	char *end;
	unsigned long long x;

	if (!isdigit((unsigned char)*v))
		return -EINVAL;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (errno || *end || x < lo || x > hi)
		return -ERANGE;
	*out = (uint32_t)x;
	return 0;
}

#define SET_U32(field, lo, hi)                                                               \
	static int set_##field(struct parser *p, const char *v)                              \
	{                                                                                    \
		uint32_t x;                                                                  \
		if (parse_u32(v, lo, hi, &x) < 0) {                                          \
			perr(p, p->line, "%s: expected a whole number from %u to %u", #field, \
			     (unsigned)(lo), (unsigned)(hi));                                 \
			return -EINVAL;                                                      \
		}                                                                            \
		p->cfg->field = x;                                                           \
		return 0;                                                                    \
	}
SET_U32(flow_idle_timeout, 1, 86400)
SET_U32(backend_silence, 1, 255) /* counted in a flow's 8-bit scan counter */
SET_U32(max_flows, 1, 1U << 24)
SET_U32(handshake_rate, 0, 1000000)
SET_U32(handshake_burst, 1, 1000000)
SET_U32(under_load_rate, 1, 10000000)
#undef SET_U32

static int set_handshake_cookies(struct parser *p, const char *v)
{
	for (unsigned i = 0; cookie_mode_name((enum cookie_mode)i); i++)
		if (!strcmp(v, cookie_mode_name((enum cookie_mode)i))) {
			p->cfg->handshake_cookies = (uint8_t)i;
			return 0;
		}
	perr(p, p->line, "handshake_cookies: '%s' is not auto, always or off", v);
	return -EINVAL;
}

static int set_client_address(struct parser *p, const char *v)
{
	if (!strcmp(v, "snat") || !strcmp(v, "preserve")) {
		p->cfg->client_address = !strcmp(v, "snat") ? CLIENT_SNAT : CLIENT_PRESERVE;
		return 0;
	}
	perr(p, p->line, "client_address: '%s' is not snat or preserve", v);
	return -EINVAL;
}

static int set_udp_gro(struct parser *p, const char *v)
{
	if (!strcmp(v, "on") || !strcmp(v, "off")) {
		p->cfg->udp_gro = !strcmp(v, "on");
		return 0;
	}
	perr(p, p->line, "udp_gro: '%s' is not on or off", v);
	return -EINVAL;
}

static int set_fast_path(struct parser *p, const char *v)
{
	p->fast_path_line = p->line;
	if (!strcmp(v, "off") || !strcmp(v, "tc")) {
		p->cfg->fast_path = !strcmp(v, "off") ? FAST_PATH_OFF : FAST_PATH_TC;
		return 0;
	}
	if (!strcmp(v, "xdp"))
		perr(p, p->line, "fast_path: xdp is not built yet; use tc or off");
	else
		perr(p, p->line, "fast_path: '%s' is not off or tc", v);
	return -EINVAL;
}

static int set_workers(struct parser *p, const char *v)
{
	uint32_t n;

	if (!strcmp(v, "auto")) {
		p->cfg->workers = 0; /* one per CPU, resolved at start */
		return 0;
	}
	if (parse_u32(v, 1, CONFIG_MAX_WORKERS, &n) < 0) {
		perr(p, p->line, "workers: expected auto or a whole number from 1 to %u", CONFIG_MAX_WORKERS);
		return -EINVAL;
	}
	p->cfg->workers = n;
	return 0;
}

static int set_addr(struct parser *p, const char *key, const char *v, struct wglb_addr *dst)
{
	if (addr_parse(v, dst) < 0) {
		perr(p, p->line, "%s: '%s' is not IP:PORT or [IPv6]:PORT", key, v);
		return -EINVAL;
	}
	return 0;
}

static int set_listen(struct parser *p, const char *v)
{
	struct wglb_config *c = p->cfg;

	if (c->n_listen == CONFIG_MAX_LISTEN) {
		perr(p, p->line, "listen: at most %d listeners", CONFIG_MAX_LISTEN);
		return -ENOSPC;
	}
	if (set_addr(p, "listen", v, &c->listen[c->n_listen]) < 0)
		return -EINVAL;
	for (unsigned i = 0; i < c->n_listen; i++)
		if (addr_equal(&c->listen[i], &c->listen[c->n_listen])) {
			perr(p, p->line, "listen: '%s' is listed twice", v);
			return -EEXIST;
		}
	c->n_listen++;
	return 0;
}

static int set_string(struct parser *p, const char *key, const char *v, char *dst, size_t size)
{
	if (!*v || strlen(v) >= size) {
		perr(p, p->line, "%s: must be 1 to %zu characters", key, size - 1);
		return -EINVAL;
	}
	strcpy(dst, v);
	return 0;
}

static int set_control(struct parser *p, const char *v)
{
	if (*v != '/') {
		perr(p, p->line, "control: '%s' is not an absolute path", v);
		return -EINVAL;
	}
	return set_string(p, "control", v, p->cfg->control, sizeof(p->cfg->control));
}

static int set_control_group(struct parser *p, const char *v)
{
	return set_string(p, "control_group", v, p->cfg->control_group,
			  sizeof(p->cfg->control_group));
}

static int set_admin_group(struct parser *p, const char *v)
{
	return set_string(p, "admin_group", v, p->cfg->admin_group, sizeof(p->cfg->admin_group));
}

static int set_metrics_listen(struct parser *p, const char *v)
{
	return set_addr(p, "metrics_listen", v, &p->cfg->metrics_listen);
}

static int set_server_public_key(struct parser *p, const char *v)
{
	struct mac1_key k;

	if (strlen(v) >= sizeof(p->cfg->server_public_key) || mac1_key_from_base64(v, &k) < 0) {
		perr(p, p->line, "server_public_key: not a base64 WireGuard public key (44 characters)");
		return -EINVAL;
	}
	strcpy(p->cfg->server_public_key, v);
	return 0;
}

static int set_allow(struct parser *p, const char *v)
{
	struct wglb_config *c = p->cfg;

	if (c->n_allow == CONFIG_MAX_ALLOW) {
		perr(p, p->line, "allow: at most %d entries", CONFIG_MAX_ALLOW);
		return -ENOSPC;
	}
	if (cidr_parse(v, &c->allow[c->n_allow]) < 0) {
		perr(p, p->line, "allow: '%s' is not an address or CIDR prefix", v);
		return -EINVAL;
	}
	c->n_allow++;
	return 0;
}

static int set_address(struct parser *p, const char *v)
{
	return set_addr(p, "address", v, &p->be->addr);
}

static int set_weight(struct parser *p, const char *v)
{
	uint32_t x;

	if (parse_u32(v, 1, WEIGHT_MAX, &x) < 0) {
		perr(p, p->line, "weight: expected a whole number from 1 to %d", WEIGHT_MAX);
		return -EINVAL;
	}
	p->be->weight = (uint16_t)x;
	return 0;
}

static int set_port16(struct parser *p, const char *key, const char *v, uint16_t *dst)
{
	uint32_t x;

	if (parse_u32(v, 1, 65535, &x) < 0) {
		perr(p, p->line, "%s: expected a port from 1 to 65535", key);
		return -EINVAL;
	}
	*dst = (uint16_t)x;
	return 0;
}

static int set_health_port(struct parser *p, const char *v)
{
	return set_port16(p, "health_port", v, &p->be->health_port);
}

static int set_h_port(struct parser *p, const char *v)
{
	return set_port16(p, "port", v, &p->cfg->health.port);
}

static int set_h_path(struct parser *p, const char *v)
{
	for (const char *s = v; *s; s++)
		if (*s <= ' ' || *s == 0x7f) {
			perr(p, p->line, "path: must not contain spaces or control characters");
			return -EINVAL;
		}
	if (*v != '/') {
		perr(p, p->line, "path: '%s' must start with /", v);
		return -EINVAL;
	}
	return set_string(p, "path", v, p->cfg->health.path, sizeof(p->cfg->health.path));
}

static int set_h_method(struct parser *p, const char *v)
{
	if (strcmp(v, "GET") && strcmp(v, "HEAD")) {
		perr(p, p->line, "method: expected GET or HEAD, not '%s'", v);
		return -EINVAL;
	}
	p->cfg->health.head = !strcmp(v, "HEAD");
	return 0;
}

#define SET_H_U32(field, lo, hi)                                                             \
	static int set_h_##field(struct parser *p, const char *v)                            \
	{                                                                                    \
		if (parse_u32(v, lo, hi, &p->cfg->health.field) < 0) {                       \
			perr(p, p->line, "%s: expected a whole number from %u to %u", #field, \
			     (unsigned)(lo), (unsigned)(hi));                                 \
			return -EINVAL;                                                      \
		}                                                                            \
		return 0;                                                                    \
	}
SET_H_U32(interval_ms, 50, 3600000)
SET_H_U32(timeout_ms, 10, 600000)
SET_H_U32(rise, 1, 100)
SET_H_U32(fall, 1, 100)
#undef SET_H_U32

static int set_a_port(struct parser *p, const char *v)
{
	return set_port16(p, "port", v, &p->cfg->agent.port);
}

static int set_a_key_file(struct parser *p, const char *v)
{
	if (*v != '/') {
		perr(p, p->line, "key_file: '%s' is not an absolute path", v);
		return -EINVAL;
	}
	return set_string(p, "key_file", v, p->cfg->agent.key_file, sizeof(p->cfg->agent.key_file));
}

static int set_a_rate(struct parser *p, const char *v)
{
	if (parse_u32(v, 1, 100000, &p->cfg->agent.rate) < 0) {
		perr(p, p->line, "rate: expected a whole number from 1 to 100000");
		return -EINVAL;
	}
	return 0;
}

static int set_h_match(struct parser *p, const char *v)
{
	uint32_t lo, hi;
	char a[8], b[8];
	const char *dash = strchr(v, '-');

	if (dash && (size_t)(dash - v) < sizeof(a) && strlen(dash + 1) < sizeof(b)) {
		memcpy(a, v, (size_t)(dash - v));
		a[dash - v] = '\0';
		strcpy(b, dash + 1);
	} else if (!dash && strlen(v) < sizeof(a)) {
		strcpy(a, v);
		strcpy(b, v);
	} else {
		a[0] = b[0] = '\0';
	}
	if (parse_u32(a, 100, 599, &lo) < 0 || parse_u32(b, 100, 599, &hi) < 0 || lo > hi) {
		perr(p, p->line, "match: expected a status or range like 200-399, not '%s'", v);
		return -EINVAL;
	}
	p->cfg->health.match_lo = (uint16_t)lo;
	p->cfg->health.match_hi = (uint16_t)hi;
	return 0;
}

enum { K_REPEAT = 1U << 0 };

static const struct key_def {
	enum section sec;
	const char *key;
	int (*set)(struct parser *p, const char *v);
	unsigned flags;
} keys[] = {
	{SEC_BALANCER, "listen", set_listen, K_REPEAT},
	{SEC_BALANCER, "control", set_control, 0},
	{SEC_BALANCER, "control_group", set_control_group, 0},
	{SEC_BALANCER, "admin_group", set_admin_group, 0},
	{SEC_BALANCER, "flow_idle_timeout", set_flow_idle_timeout, 0},
	{SEC_BALANCER, "backend_silence", set_backend_silence, 0},
	{SEC_BALANCER, "max_flows", set_max_flows, 0},
	{SEC_BALANCER, "allow", set_allow, K_REPEAT},
	{SEC_BALANCER, "metrics_listen", set_metrics_listen, 0},
	{SEC_BALANCER, "server_public_key", set_server_public_key, 0},
	{SEC_BALANCER, "handshake_rate", set_handshake_rate, 0},
	{SEC_BALANCER, "handshake_burst", set_handshake_burst, 0},
	{SEC_BALANCER, "handshake_cookies", set_handshake_cookies, 0},
	{SEC_BALANCER, "under_load_rate", set_under_load_rate, 0},
	{SEC_BALANCER, "udp_gro", set_udp_gro, 0},
	{SEC_BALANCER, "client_address", set_client_address, 0},
	{SEC_BALANCER, "workers", set_workers, 0},
	{SEC_BALANCER, "fast_path", set_fast_path, 0},
	{SEC_BACKEND, "address", set_address, 0},
	{SEC_BACKEND, "weight", set_weight, 0},
	{SEC_BACKEND, "health_port", set_health_port, 0},
	{SEC_HEALTH, "port", set_h_port, 0},
	{SEC_HEALTH, "path", set_h_path, 0},
	{SEC_HEALTH, "method", set_h_method, 0},
	{SEC_HEALTH, "interval_ms", set_h_interval_ms, 0},
	{SEC_HEALTH, "timeout_ms", set_h_timeout_ms, 0},
	{SEC_HEALTH, "rise", set_h_rise, 0},
	{SEC_HEALTH, "fall", set_h_fall, 0},
	{SEC_HEALTH, "match", set_h_match, 0},
	{SEC_AGENT, "port", set_a_port, 0},
	{SEC_AGENT, "key_file", set_a_key_file, 0},
	{SEC_AGENT, "rate", set_a_rate, 0},
};
_Static_assert(sizeof(keys) / sizeof(keys[0]) <= 64, "seen is a 64-bit mask");

static const char *const sec_names[] = {"", "balancer", "backend", "health", "agent", ""};

bool config_name_valid(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n >= BACKEND_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && !strchr("._-", name[i]))
			return false;
	return true;
}

const struct wglb_addr *config_exposed(const struct wglb_config *cfg)
{
	static const uint8_t v6_loopback[16] = {[15] = 1};

	if (cfg->server_public_key[0])
		return NULL;
	for (unsigned i = 0; i < cfg->n_listen; i++) {
		const union wglb_sa *a = &cfg->listen[i].u;
		bool lo = a->sa.sa_family == AF_INET6
				  ? !memcmp(&a->in6.sin6_addr, v6_loopback, 16)
				  : (ntohl(a->in4.sin_addr.s_addr) >> 24) == 127;
		if (!lo)
			return &cfg->listen[i];
	}
	return NULL;
}

const struct backend_conf *config_backend(const struct wglb_config *cfg, const char *name)
{
	for (unsigned i = 0; i < cfg->n_backends; i++)
		if (!strcmp(cfg->backends[i].name, name))
			return &cfg->backends[i];
	return NULL;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static bool key_seen(const struct parser *p, const char *key)
{
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i].sec == p->sec && !strcmp(keys[i].key, key))
			return p->seen & (1ULL << i);
	return false;
}

static void end_section(struct parser *p)
{
	/* An address given but invalid was reported on its own line. */
	if (p->sec == SEC_BACKEND && p->be && !key_seen(p, "address"))
		perr(p, p->be->line, "[backend %s]: address is required", p->be->name);
}

static void section(struct parser *p, char *s)
{
	char *close = strchr(s, ']'), *name;

	end_section(p);
	p->sec = SEC_BAD;
	p->be = NULL;
	p->seen = 0;
	if (!close || *trim(close + 1)) {
		perr(p, p->line, "section header must look like [name]");
		return;
	}
	*close = '\0';
	s = trim(s + 1);
	name = strpbrk(s, " \t");
	if (name)
		*name++ = '\0';
	if (!strcmp(s, "backend")) {
		struct wglb_config *c = p->cfg;
		name = name ? trim(name) : (char *)"";
		if (!config_name_valid(name)) {
			perr(p, p->line,
			     "[backend NAME]: name must be 1-%d of A-Z a-z 0-9 . _ -, not '%s'",
			     BACKEND_NAME_MAX - 1, name);
			return;
		}
		if (config_backend(c, name)) {
			perr(p, p->line, "[backend %s]: defined twice", name);
			return;
		}
		if (c->n_backends == CONFIG_MAX_BACKENDS) {
			perr(p, p->line, "at most %d backends", CONFIG_MAX_BACKENDS);
			return;
		}
		p->be = &c->backends[c->n_backends++];
		memset(p->be, 0, sizeof(*p->be));
		strcpy(p->be->name, name);
		p->be->weight = 1;
		p->be->line = p->line;
		p->sec = SEC_BACKEND;
		return;
	}
	if (name) {
		perr(p, p->line, "[%s] takes no name", s);
		return;
	}
	if (!strcmp(s, "balancer"))
		p->sec = SEC_BALANCER;
	else if (!strcmp(s, "agent"))
		p->sec = SEC_AGENT;
	else if (!strcmp(s, "health"))
		p->sec = SEC_HEALTH, p->cfg->health.enabled = true, p->health_line = p->line;
	else
		perr(p, p->line, "unknown section [%s]", s);
}

static void assignment(struct parser *p, char *s)
{
	char *eq = strchr(s, '='), *key, *val;

	if (!eq) {
		perr(p, p->line, "expected 'key = value' or '[section]'");
		return;
	}
	*eq = '\0';
	key = trim(s);
	val = trim(eq + 1);
	if (p->sec == SEC_BAD)
		return; /* the broken section header was reported */
	if (p->sec == SEC_NONE) {
		perr(p, p->line, "'%s' is outside any section", key);
		return;
	}
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (keys[i].sec != p->sec || strcmp(keys[i].key, key))
			continue;
		if (!(keys[i].flags & K_REPEAT) && (p->seen & (1ULL << i))) {
			perr(p, p->line, "%s: given twice in [%s]", key, sec_names[p->sec]);
			return;
		}
		p->seen |= 1ULL << i;
		if (!*val) {
			perr(p, p->line, "%s: empty value", key);
			return;
		}
		keys[i].set(p, val);
		return;
	}
	perr(p, p->line, "unknown key '%s' in [%s]", key, sec_names[p->sec]);
}

/* Strip a comment: ';' or '#' at the start, or after whitespace. */
static void strip_comment(char *s)
{
	for (char *c = s; *c; c++)
		if ((*c == ';' || *c == '#') && (c == s || c[-1] == ' ' || c[-1] == '\t')) {
			*c = '\0';
			return;
		}
}

static void set_defaults(struct wglb_config *c)
{
	strcpy(c->control, "/run/wglb/control.sock");
	c->flow_idle_timeout = 180; /* WireGuard's REJECT_AFTER_TIME */
	/* A live session hears from its server at least at every handshake,
	 * and a session older than REJECT_AFTER_TIME (180 s) is rekeyed. */
	c->backend_silence = 180;
	c->handshake_rate = 20; /* WireGuard's own per-source limit */
	c->handshake_burst = 5;
	c->handshake_cookies = COOKIE_AUTO;
	c->under_load_rate = 1000;
	c->udp_gro = true;
	c->workers = 1;
	c->health.port = 8080;
	strcpy(c->health.path, "/");
	c->health.interval_ms = 1000;
	c->health.timeout_ms = 500;
	c->health.rise = 2;
	c->health.fall = 2;
	c->health.match_lo = 200;
	c->health.match_hi = 399;
	c->agent.port = 8081;
	c->agent.rate = 10000;
}

/* fast_path = tc forwards from the balancer's own address (snat) and finds
 * its interfaces from the listen addresses: what it cannot do yet is an
 * error at the fast_path line, not a silent socket path. */
static void check_fast_path(struct parser *p)
{
	const struct wglb_config *c = p->cfg;

	if (c->client_address == CLIENT_PRESERVE)
		perr(p, p->fast_path_line,
		     "fast_path = tc does not work with client_address = preserve yet (snat only)");
	for (unsigned i = 0; i < c->n_listen; i++) {
		const union wglb_sa *a = &c->listen[i].u;
		bool any = a->sa.sa_family == AF_INET6 ? IN6_IS_ADDR_UNSPECIFIED(&a->in6.sin6_addr)
						       : a->in4.sin_addr.s_addr == htonl(INADDR_ANY);
		if (any) {
			char s[ADDR_STRLEN];
			addr_fmt(a, s, sizeof(s));
			perr(p, p->fast_path_line,
			     "fast_path = tc needs concrete listen addresses (it attaches to the "
			     "interface that holds each one), not the wildcard %s", s);
			return;
		}
	}
}

static void check_whole(struct parser *p)
{
	struct wglb_config *c = p->cfg;

	if (c->n_listen == 0)
		addr_parse("0.0.0.0:51820", &c->listen[c->n_listen++]);
	if (c->health.enabled && c->health.timeout_ms >= c->health.interval_ms)
		perr(p, p->health_line, "[health]: timeout_ms (%u) must be less than interval_ms (%u)",
		     c->health.timeout_ms, c->health.interval_ms);
	if (c->n_backends == 0)
		perr(p, p->line ? p->line : 1, "no [backend NAME] section: nothing to balance to");
	if (c->fast_path == FAST_PATH_TC)
		check_fast_path(p);
}

int config_parse(const char *name, const char *text, size_t len, struct wglb_config *cfg,
		 config_err_fn err, void *ctx)
{
	struct parser p = {.cfg = cfg, .file = name, .err = err, .ctx = ctx};
	char *buf, *line, *next;

	memset(cfg, 0, sizeof(*cfg));
	set_defaults(cfg);
	snprintf(cfg->path, sizeof(cfg->path), "%s", name);
	cfg->backends = calloc(CONFIG_MAX_BACKENDS, sizeof(*cfg->backends));
	buf = malloc(len + 1);
	if (!buf || !cfg->backends) {
		free(buf);
		config_free(cfg);
		return -ENOMEM;
	}
	memcpy(buf, text, len);
	buf[len] = '\0';
	for (line = buf; line; line = next) {
		char *s;
		next = strchr(line, '\n');
		if (!next && line == buf + len)
			break; /* nothing after the final newline */
		if (next)
			*next++ = '\0';
		p.line++;
		if (strlen(line) != (size_t)((next ? next - 1 : buf + len) - line)) {
			perr(&p, p.line, "NUL byte in line");
			continue;
		}
		strip_comment(line);
		s = trim(line);
		if (!*s)
			continue;
		if (*s == '[')
			section(&p, s);
		else
			assignment(&p, s);
	}
	end_section(&p);
	check_whole(&p);
	free(buf);
	if (p.errors) {
		config_free(cfg);
		return (int)p.errors;
	}
	return 0;
}

int config_load(const char *path, struct wglb_config *cfg, config_err_fn err, void *ctx)
{
	char *text = NULL;
	size_t len = 0;
	ssize_t n;
	struct stat st;
	int fd, ret;

	memset(cfg, 0, sizeof(*cfg));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_MAX_BYTES) {
		ret = S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
		goto out;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		ret = -ENOMEM;
		goto out;
	}
	while (len < (size_t)st.st_size) {
		n = read(fd, text + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	ret = config_parse(path, text, len, cfg, err, ctx);
out:
	free(text);
	close(fd);
	return ret;
}

int config_copy(struct wglb_config *dst, const struct wglb_config *src)
{
	*dst = *src;
	dst->backends = NULL;
	if (src->n_backends) {
		dst->backends = malloc(src->n_backends * sizeof(*src->backends));
		if (!dst->backends)
			return -ENOMEM;
		memcpy(dst->backends, src->backends, src->n_backends * sizeof(*src->backends));
	}
	return 0;
}

void config_free(struct wglb_config *cfg)
{
	free(cfg->backends);
	cfg->backends = NULL;
	cfg->n_backends = 0;
}
