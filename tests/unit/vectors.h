/* SPDX-License-Identifier: MIT */
/* Reading a file of tests/unit/vectors (VECTORS_DIR, set by meson) in a
 * cmocka test: fails the test when the file is missing. */
#ifndef WGLB_TEST_VECTORS_H
#define WGLB_TEST_VECTORS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Read up to size bytes of VECTORS_DIR/name into buf; returns the count. */
static inline size_t vector_read(const char *name, uint8_t *buf, size_t size)
{
	char path[512];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", VECTORS_DIR, name);
	f = fopen(path, "rb");
	assert_non_null(f);
	n = fread(buf, 1, size, f);
	fclose(f);
	return n;
}

#endif
