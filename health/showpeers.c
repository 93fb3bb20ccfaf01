// SPDX-License-Identifier: MIT
/* wg-health --show-peers (showpeers.h). */
#include "wglb/showpeers.h"
#include "wglb/addr.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOTES_MAX (4u << 20) /* WGDEV_MAX_PEERS lines of at most ~200 bytes */

/* The note for endpoint in the notes text: the client and when, or false. */
static bool find_note(const char *notes, const char *endpoint, char *client, uint64_t *when_s)
{
	char ep[ADDR_STRLEN], cl[ADDR_STRLEN], want[ADDR_STRLEN];
	struct wglb_addr ad;
	unsigned long long t;
	const char *p = notes;

	if (!notes || addr_parse(endpoint, &ad) < 0)
		return false;
	addr_fmt(&ad.u, want, sizeof(want)); /* the agent wrote addr_fmt's spelling */
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char line[3 * ADDR_STRLEN];
		if (len < sizeof(line)) {
			memcpy(line, p, len);
			line[len] = '\0';
			if (sscanf(line, "%79s %79s %llu", ep, cl, &t) == 3 && !strcmp(ep, want)) {
				snprintf(client, ADDR_STRLEN, "%s", cl);
				*when_s = t;
				return true;
			}
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	return false;
}

static void ago(FILE *out, uint64_t now_s, uint64_t then_s)
{
	uint64_t s = now_s > then_s ? now_s - then_s : 0;

	unsigned long long h = s / 3600, m = s / 60 % 60, sec = s % 60;

	if (h)
		fprintf(out, "%llu hour%s, ", h, h == 1 ? "" : "s");
	if (h || m)
		fprintf(out, "%llu minute%s, ", m, m == 1 ? "" : "s");
	fprintf(out, "%llu second%s ago", sec, sec == 1 ? "" : "s");
}

static void bytes(FILE *out, uint64_t b)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)b;
	unsigned u = 0;

	while (v >= 1024 && u < 4)
		v /= 1024, u++;
	if (u)
		fprintf(out, "%.2f %s", v, unit[u]);
	else
		fprintf(out, "%llu B", (unsigned long long)b);
}

void showpeers_print(FILE *out, const struct wgdev_peer *peers, int n, const char *notes,
		     uint64_t now_s)
{
	for (int i = 0; i < n; i++) {
		const struct wgdev_peer *p = &peers[i];
		char b64[64], client[ADDR_STRLEN];
		uint64_t told_s;

		sodium_bin2base64(b64, sizeof(b64), p->pub, 32, sodium_base64_VARIANT_ORIGINAL);
		fprintf(out, "%speer: %s\n", i ? "\n" : "", b64);
		if (p->endpoint[0])
			fprintf(out, "  endpoint: %s\n", p->endpoint);
		if (p->endpoint[0] && find_note(notes, p->endpoint, client, &told_s)) {
			fprintf(out, "  client: %s (told by the balancer ", client);
			ago(out, now_s, told_s);
			fprintf(out, ")\n");
		}
		if (p->handshake_s) {
			fprintf(out, "  latest handshake: ");
			ago(out, now_s, p->handshake_s);
			fprintf(out, "\n");
		}
		if (p->rx_bytes || p->tx_bytes) {
			fprintf(out, "  transfer: ");
			bytes(out, p->rx_bytes);
			fprintf(out, " received, ");
			bytes(out, p->tx_bytes);
			fprintf(out, " sent\n");
		}
	}
}

static char *read_notes(const char *path)
{
	FILE *f = path ? fopen(path, "re") : NULL;
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(NOTES_MAX + 1);
	if (!buf) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, NOTES_MAX, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

int showpeers_run(const char *ifname, const char *clients_file)
{
	static struct wgdev_peer peers[WGDEV_MAX_PEERS];
	int n = wgdev_peers(ifname, peers, WGDEV_MAX_PEERS);
	char *notes;

	if (n < 0) {
		fprintf(stderr, "wg-health: %s: %s\n", ifname, strerror(-n));
		return 1;
	}
	if (sodium_init() < 0)
		return 1;
	notes = read_notes(clients_file);
	printf("interface: %s (%s)\n\n", ifname, wgdev_kind(ifname));
	showpeers_print(stdout, peers, n, notes, (uint64_t)time(NULL));
	free(notes);
	return 0;
}
