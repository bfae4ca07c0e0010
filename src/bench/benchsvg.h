/*
 * benchsvg.h — the session sweep of a bench run as a hand-written SVG chart.
 *
 * Top panel: tok/s of the slowest session against the number of concurrent
 * sessions (log2 axis), batched and partitioned, with the floor line, the
 * bandwidth roofline of one stream and a marker at the most sessions that
 * keep the floor. Bottom panel: aggregate tok/s of the same points. Under
 * the plot, the machine and model the numbers belong to.
 */
#ifndef RACKLLM_BENCHSVG_H
#define RACKLLM_BENCHSVG_H

#include <stdio.h>

#include "base/common.h"
#include "bench.h"

int benchsvg_write(FILE *out, const bench_result *r, rl_err *err);
int benchsvg_write_file(const bench_result *r, const char *path, rl_err *err);

#endif
