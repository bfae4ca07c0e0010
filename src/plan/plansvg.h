/*
 * plansvg.h — grouped bar charts as small hand-written SVG files, for the
 * planner's --svg output.
 *
 * One chart: categories along x (model classes, partitionings), one bar per
 * series in each (hardware), a linear or logarithmic y axis with grid lines
 * and labels, a legend, each bar's value above it, and a block of notes
 * (the assumptions) under the plot, so the picture carries its own caveats.
 */
#ifndef RACKLLM_PLANSVG_H
#define RACKLLM_PLANSVG_H

#include <stdbool.h>
#include <stdio.h>

#include "base/common.h"

typedef struct plansvg_chart {
    const char *title;
    const char *y_label;
    bool log_scale;            /* values <= 0 are drawn as a "0" mark */
    int n_groups;
    const char *const *groups; /* x categories */
    int n_series;
    const char *const *series; /* legend entries */
    const double *values;      /* n_groups x n_series, group-major */
    int n_notes;
    const char *const *notes;  /* one line each, under the plot */
} plansvg_chart;

int plansvg_write(FILE *out, const plansvg_chart *c, rl_err *err);
int plansvg_write_file(const char *path, const plansvg_chart *c, rl_err *err);

#endif
