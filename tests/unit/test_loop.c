// SPDX-License-Identifier: MIT
/* The core alone (linked with core, model and common only): parts attach
 * in order and run at their hooks in that order, ops they register get
 * their completions with their context, watches fire once, a part's
 * context is found while it is attached (its close included), and a part
 * whose open fails is closed and not attached. */
#include "wglb/config.h"
#include "wglb/loop.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

static char trace[256];
static size_t n_trace;
static unsigned ticks_left;

static void note(char c)
{
	if (n_trace + 1 < sizeof(trace))
		trace[n_trace++] = c;
}

static const struct loop_part part_a, part_b, part_fails;

static void a_tick(struct loop *l)
{
	note('a');
	if (ticks_left && !--ticks_left)
		l->stop = true;
}
static void a_settle(struct loop *l)
{
	note('A');
}
static void a_end(struct loop *l)
{
	note('.');
}
static int a_open(struct loop *l)
{
	static int state_a;
	loop_set_ctx(l, &part_a, &state_a);
	return 0;
}
static void a_close(struct loop *l)
{
	/* Still attached while it closes: its context is there. */
	note(loop_ctx(l, &part_a) ? 'x' : '?');
}
static void b_tick(struct loop *l)
{
	note('b');
}
static void b_settle(struct loop *l)
{
	note('B');
}
static void b_close(struct loop *l)
{
	note(loop_ctx(l, &part_a) ? 'y' : '?'); /* closed before the part below it */
}
static int fails_open(struct loop *l)
{
	return -EIO;
}
static void fails_close(struct loop *l)
{
	note('f');
}

static const struct loop_part part_a = {.name = "a", .open = a_open, .tick = a_tick,
					.settle = a_settle, .batch_end = a_end, .close = a_close};
static const struct loop_part part_b = {.name = "b", .tick = b_tick, .settle = b_settle,
					.close = b_close};
static const struct loop_part part_fails = {.name = "f", .open = fails_open, .close = fails_close};

static struct loop l; /* large */

/* A UDP port nobody holds now. Each test listens on its own: a ring the
 * test before tore down releases its socket in the kernel's own time (the
 * ring's exit work is asynchronous), and 51820 may be another program's. */
static unsigned free_udp_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void setup(void)
{
	char text[64];
	struct wglb_config cfg;
	int n = snprintf(text, sizeof(text), "[balancer]\nlisten = 127.0.0.1:%u\n", free_udp_port());

	memset(&cfg, 0, sizeof(cfg));
	assert_int_equal(config_parse("test", text, (size_t)n, &cfg, NULL, NULL) >= 0, 1);
	cfg.workers = 1;
	assert_int_equal(loop_init(&l, &cfg, NULL, 0, 1), 0);
	n_trace = 0;
	memset(trace, 0, sizeof(trace));
}

static void test_parts_in_order(void **state)
{
	(void)state;
	setup();
	assert_int_equal(loop_attach(&l, &part_a), 0);
	assert_int_equal(loop_attach(&l, &part_fails), -EIO);
	assert_int_equal(loop_attach(&l, &part_b), 0);
	assert_non_null(loop_ctx(&l, &part_a));
	assert_null(loop_ctx(&l, &part_b)); /* attached, no context set */
	assert_null(loop_ctx(&l, &part_fails)); /* not attached */
	ticks_left = 2;
	assert_int_equal(loop_run(&l), 0);
	loop_fini(&l);
	/* The failed open was closed at once; then per batch every tick in
	 * order, then every settle; the batch ends after the completions;
	 * at the end the parts close in reverse, each still attached. */
	assert_string_equal(trace, "f" "abAB" "." "abAB" "." "yx");
}

struct got {
	uint64_t ud;
	int res;
	void *ctx;
	int calls;
};

static void on_op(struct loop *lp, void *ctx, uint64_t ud, int res, uint32_t flags)
{
	struct got *g = ctx;
	(void)flags;
	g->ud = ud;
	g->res = res;
	g->ctx = ctx;
	g->calls++;
	lp->stop = true;
}

static void test_registered_op(void **state)
{
	struct got g = {0};
	struct io_uring_sqe *sqe;
	int efd = eventfd(1, EFD_CLOEXEC), op;

	(void)state;
	assert_true(efd >= 0);
	setup();
	op = loop_op_register(&l, on_op, &g);
	assert_true(op >= OP_PARTS);
	sqe = loop_sqe(&l);
	assert_non_null(sqe);
	io_uring_prep_poll_add(sqe, efd, POLLIN); /* readable at once */
	io_uring_sqe_set_data64(sqe, ud_pack((unsigned)op, 7, 42));
	assert_int_equal(loop_run(&l), 0);
	assert_int_equal(g.calls, 1);
	assert_ptr_equal(g.ctx, &g);
	assert_int_equal(ud_op(g.ud), op);
	assert_int_equal(ud_gen(g.ud), 7);
	assert_int_equal(ud_idx(g.ud), 42);
	assert_true(g.res & POLLIN);
	loop_fini(&l);
	close(efd);
}

static void on_ready(struct loop *lp, void *ctx, uint32_t revents)
{
	int *fired = ctx;
	(*fired)++;
	assert_true(revents & POLLIN);
	lp->stop = true;
}

static void test_watch_fires_once(void **state)
{
	int efd = eventfd(1, EFD_CLOEXEC), fired = 0;

	(void)state;
	assert_true(efd >= 0);
	setup();
	assert_true(loop_watch(&l, efd, POLLIN, on_ready, &fired) >= 0);
	assert_int_equal(loop_run(&l), 0);
	assert_int_equal(fired, 1);
	/* One-shot: running again (stopped by the tick) does not call it. */
	l.stop = false;
	ticks_left = 1;
	assert_int_equal(loop_attach(&l, &part_a), 0);
	assert_int_equal(loop_run(&l), 0);
	assert_int_equal(fired, 1);
	loop_fini(&l);
	close(efd);
}

static void test_op_table_is_bounded(void **state)
{
	struct got g = {0};
	int last = 0;

	(void)state;
	setup();
	for (int i = OP_PARTS; i < LOOP_MAX_OPS; i++)
		last = loop_op_register(&l, on_op, &g);
	assert_int_equal(last, LOOP_MAX_OPS - 1);
	assert_int_equal(loop_op_register(&l, on_op, &g), -ENOSPC);
	loop_fini(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parts_in_order),
		cmocka_unit_test(test_registered_op),
		cmocka_unit_test(test_watch_fires_once),
		cmocka_unit_test(test_op_table_is_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
