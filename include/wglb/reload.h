/* SPDX-License-Identifier: MIT */
/* SIGHUP (lb/control/reload.c): apply the config file to the running loop, whole,
 * or keep the running config when the file has any error. */
#ifndef WGLB_RELOAD_H
#define WGLB_RELOAD_H

#include "wglb/loop.h"

int reload_apply(struct loop *l);
extern const struct loop_part reload_part;

#endif
