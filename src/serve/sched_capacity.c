/*
 * sched_capacity.c — how many sessions a partition may hold: the capacity
 * controller (lowered when sessions fall below the floor, raised again
 * after recover_seconds of health) and the cost of context (a partition's
 * step time as its sessions and their contexts grow). Plain arithmetic on
 * the structs of scheduler.h, tested directly (test_scheduler).
 */
#include <math.h>
#include <string.h>

#include "scheduler.h"

/* ---- the capacity controller ---- */

void sched_ctl_init(sched_ctl *c, int base, double floor_tps, double recover_seconds) {
    memset(c, 0, sizeof *c);
    c->base = base < 1 ? 1 : base;
    c->cap = c->base;
    c->floor_tps = floor_tps;
    c->recover_seconds = recover_seconds > 0 ? recover_seconds : SCHED_RECOVER_SECONDS;
    c->healthy_since = -1;
}

void sched_ctl_update(sched_ctl *c, double now, int running, int measured, double min_tps) {
    if (measured > 0 && min_tps < c->floor_tps) {
        /* Lowering to one less than what runs now is idempotent while
         * the same sessions run: it only bites as sessions finish. */
        int target = RL_MAX(1, running - 1);
        if (target < c->cap) {
            c->cap = target;
            c->lowered++;
        }
        c->healthy_since = -1;
        return;
    }
    if (c->healthy_since < 0) c->healthy_since = now;
    if (c->cap < c->base && now - c->healthy_since >= c->recover_seconds) {
        c->cap++;
        c->healthy_since = now;
    }
}

/* ---- the cost of context ---- */

void sched_cost_add(sched_cost *c, int n, double step_seconds) {
    int i = 0;
    while (i < c->n_points && c->sessions[i] < n) i++;
    if (i < c->n_points && c->sessions[i] == n) {
        c->step[i] = step_seconds;
        return;
    }
    if (c->n_points == SCHED_COST_POINTS) return; /* calibration takes far fewer */
    memmove(c->sessions + i + 1, c->sessions + i, (size_t)(c->n_points - i) * sizeof *c->sessions);
    memmove(c->step + i + 1, c->step + i, (size_t)(c->n_points - i) * sizeof *c->step);
    c->sessions[i] = n;
    c->step[i] = step_seconds;
    c->n_points++;
}

/* t(n) at short contexts: the segment of points around n. */
static double short_step(const sched_cost *c, int n) {
    if (c->n_points == 0) return 0;
    if (c->n_points == 1 || n <= c->sessions[0]) return c->step[0];
    int i = 1;
    while (i < c->n_points - 1 && c->sessions[i] < n) i++;
    double x0 = c->sessions[i - 1], x1 = c->sessions[i], y0 = c->step[i - 1], y1 = c->step[i];
    return y0 + (y1 - y0) * (n - x0) / (x1 - x0);
}

double sched_cost_step(const sched_cost *c, int n, double ctx) {
    return short_step(c, n) + c->per_token * fmax(0, ctx - n * c->base_ctx);
}

bool sched_cost_fits(const sched_cost *c, int n, double ctx) {
    if (!(c->period > 0) || short_step(c, n) > c->period * (1 + 1e-9)) return true;
    return sched_cost_step(c, n, ctx) <= c->period * (1 + 1e-9);
}
