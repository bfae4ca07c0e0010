/*
 * basis.c — the evidence fitted per microarchitecture and software, and
 * for each hardware the factors its figures rest on (see basis.h).
 */
#include "basis.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* A scaled bandwidth factor stays at most this (a streaming read reaches
 * 80-90% of a datasheet), unless the fit itself was higher. */
#define BASIS_BW_CAP 0.9

/* Appends src to dst (size bytes in all), cut to fit. */
static void append(char *dst, size_t size, const char *src) {
    size_t len = strlen(dst), n = strlen(src);
    if (len + 1 >= size) return;
    if (n > size - len - 1) n = size - len - 1;
    memmove(dst + len, src, n);
    dst[len + n] = 0;
}

/* The group of a microarchitecture, software and version (NULL: any). */
static int find_group(const basis_fits *f, const char *uarch, int software, const char *version) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->g[i].uarch, uarch) == 0 && f->g[i].software == software &&
            (!version || strcmp(f->g[i].version, version) == 0))
            return i;
    return -1;
}

/* The machines a group's points come from, "m7a" or "ampereone, ampereonem". */
static void group_machines(const basis_fits *f, basis_group *g) {
    g->machines[0] = 0;
    for (int i = 0; i < g->n; i++) {
        const char *id = f->ev.machines[f->ev.points[g->idx[i]].machine].id;
        if (strstr(g->machines, id)) continue;
        if (g->machines[0]) append(g->machines, sizeof g->machines, ", ");
        append(g->machines, sizeof g->machines, id);
    }
}

static int add_group(basis_fits *f, const char *uarch, int software, const char *version, rl_err *err) {
    if (f->n >= BASIS_MAX_GROUPS) return 0;
    basis_group *g = &f->g[f->n];
    memset(g, 0, sizeof *g);
    g->idx = malloc((size_t)f->ev.n_points * sizeof *g->idx);
    if (!g->idx) return rl_fail(err, RL_ERR_INTERNAL, "out of memory for the evidence fit");
    g->n = evidence_select(&f->ev, uarch, software, version, f->min_tok_s, g->idx, f->ev.n_points);
    if (g->n < BASIS_MIN_POINTS) {
        free(g->idx);
        g->idx = NULL;
        return 0;
    }
    g->uarch[0] = 0;
    append(g->uarch, sizeof g->uarch, uarch);
    g->software = software;
    append(g->version, sizeof g->version, version);
    group_machines(f, g);
    f->n++;
    return 0;
}

int basis_fits_build(basis_fits *f, double min_tok_s, rl_err *err) {
    memset(f, 0, sizeof *f);
    f->min_tok_s = min_tok_s;
    if (evidence_load(&f->ev, err)) return -1;
    for (int i = 0; i < f->ev.n_points; i++) {
        const ev_point *pt = &f->ev.points[i];
        const char *uarch = f->ev.machines[pt->machine].uarch;
        if (find_group(f, uarch, pt->software, pt->version) >= 0) continue;
        if (add_group(f, uarch, pt->software, pt->version, err)) {
            basis_fits_free(f);
            return -1;
        }
    }
    return 0;
}

void basis_fits_free(basis_fits *f) {
    for (int i = 0; i < f->n; i++) {
        free(f->g[i].idx);
        free(f->g[i].loo_pred);
    }
    f->n = 0;
    evidence_free(&f->ev);
}

const ev_params *basis_fit(basis_fits *f, int gi) {
    basis_group *g = &f->g[gi];
    if (!g->fitted) {
        g->x = evidence_fit(&f->ev, g->idx, g->n);
        g->fitted = true;
    }
    return &g->x;
}

void basis_fits_loo(basis_fits *f, int gi) {
    basis_group *g = &f->g[gi];
    basis_fit(f, gi);
    if (g->loo_done) return;
    g->loo_done = true;
    g->loo_median = g->loo_worst = NAN;
    g->loo_pred = malloc((size_t)g->n * sizeof *g->loo_pred);
    if (!g->loo_pred) return;
    evidence_loo(&f->ev, g->idx, g->n, &g->x, g->loo_pred);
    evidence_error_stats(&f->ev, g->idx, g->n, g->loo_pred, &g->loo_median, &g->loo_worst);
    g->loo_within_15 = 0;
    for (int i = 0; i < g->n; i++) {
        double r = g->loo_pred[i] / f->ev.points[g->idx[i]].tok_s;
        if (r <= 1.5 && r >= 1 / 1.5) g->loo_within_15++;
    }
}

int basis_group_for(const basis_fits *f, const char *uarch) {
    if (!f || !uarch[0]) return -1;
    int upstream = evidence_software_find(&f->ev, "llama.cpp");
    int g = find_group(f, uarch, upstream, NULL);
    if (g >= 0) return g;
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->g[i].uarch, uarch) == 0) return i;
    return -1;
}

/* The factors of group g for hw: scaled to rackllm by the ratio measured
 * on hw's instruction set when g measured upstream llama.cpp. */
static void group_factors(basis_fits *f, int gi, const char *isa, bool rackllm, plan_basis *b) {
    const basis_group *g = &f->g[gi];
    basis_fit(f, gi);
    const ev_ratio *r = evidence_ratio(&f->ev, isa);
    bool upstream = strcmp(f->ev.software[g->software].id, "llama.cpp") == 0;
    b->ratio_bw = b->ratio_compute = 1;
    b->ratio_measured = r != NULL && upstream;
    if (rackllm && b->ratio_measured) {
        b->ratio_bw = r->bandwidth;
        b->ratio_compute = r->compute;
    }
    b->eff_bw = fmin(g->x.eff_bw * b->ratio_bw, fmax(g->x.eff_bw, BASIS_BW_CAP));
    b->eff_compute = g->x.eff_compute * b->ratio_compute;
    b->step_fixed = g->x.step_fixed;
    b->sync_s = g->x.sync_s;
    b->thread_loss = g->x.thread_loss;
}

static void set_hw(plan_hw *hw, const plan_basis *b) {
    hw->eff_bw = b->eff_bw;
    hw->eff_compute = b->eff_compute;
    hw->step_fixed = b->step_fixed;
    hw->sync_s = b->sync_s;
    hw->thread_loss = b->thread_loss;
    hw->fitted = true;
}

void basis_apply(basis_fits *f, plan_hw *hw, const plan_params *p, bool rackllm, bool flags, bool calibrated,
                 plan_basis *b) {
    memset(b, 0, sizeof *b);
    b->group = -1;
    b->ratio_bw = b->ratio_compute = 1;
    bool self = strcmp(hw->id, "this") == 0;
    plan_efficiency(hw, p, &b->eff_bw, &b->eff_compute);
    b->step_fixed = plan_step_fixed(hw, p);
    if (flags) {
        b->kind = BASIS_FLAGS;
        return;
    }
    if (hw->kind != PLAN_HW_CPU) return; /* BASIS_DEFAULT */
    if (self) {
        b->kind = calibrated ? BASIS_MEASURED : BASIS_DEFAULT;
        return;
    }
    b->group = basis_group_for(f, hw->uarch);
    if (b->group < 0) {
        b->kind = BASIS_NO_EVIDENCE;
        return;
    }
    b->kind = BASIS_FITTED;
    basis_fits_loo(f, b->group);
    group_factors(f, b->group, hw->isa, rackllm, b);
    set_hw(hw, b);
}

int basis_range(basis_fits *f, const plan_hw *hw, const plan_model *m, const plan_params *p, bool rackllm,
                plan_basis *b, rl_err *err) {
    b->range_lo = b->range_hi = -1;
    if (!f) return 0;
    int upstream = evidence_software_find(&f->ev, "llama.cpp");
    for (int i = 0; i < f->n; i++) {
        if (f->g[i].software != upstream) continue;
        plan_basis gb = *b;
        group_factors(f, i, hw->isa, rackllm, &gb);
        plan_hw h = *hw;
        set_hw(&h, &gb);
        plan_result r;
        if (plan_run(&h, m, p, &r, err)) return -1;
        long s = r.rack[r.headline].sessions;
        if (b->range_lo < 0 || s < b->range_lo) b->range_lo = s;
        if (s > b->range_hi) b->range_hi = s;
    }
    return 0;
}

static void ratio_text(const basis_fits *f, const plan_basis *b, char *buf, size_t size) {
    const basis_group *g = &f->g[b->group];
    if (b->ratio_bw != 1 || b->ratio_compute != 1)
        snprintf(buf, size, "; rackllm = %s x %.3g bandwidth, x %.3g compute (its ratio measured here on the same"
                 " instruction set: an assumption for this CPU)", f->ev.software[g->software].id, b->ratio_bw,
                 b->ratio_compute);
    else if (!b->ratio_measured)
        snprintf(buf, size, "; rackllm's ratio to it is not measured on this instruction set: %s's figure",
                 f->ev.software[g->software].id);
    else snprintf(buf, size, "; %s's figure", f->ev.software[g->software].id);
}

void basis_describe(const basis_fits *f, const plan_basis *b, char *buf, size_t size) {
    switch (b->kind) {
    case BASIS_FLAGS: snprintf(buf, size, "set by flags"); return;
    case BASIS_MEASURED: snprintf(buf, size, "measured here (--calibrate)"); return;
    case BASIS_NO_EVIDENCE:
        snprintf(buf, size, "no evidence for this CPU: %ld-%ld sessions per rack with the factors fitted to the"
                 " other microarchitectures (the single figures shown rest on no evidence)", b->range_lo, b->range_hi);
        return;
    case BASIS_FITTED: break;
    default: snprintf(buf, size, "defaults, not measured"); return;
    }
    const basis_group *g = &f->g[b->group];
    char ratio[256];
    ratio_text(f, b, ratio, sizeof ratio);
    snprintf(buf, size, "fitted to %d published points for %s (%s %s on %s; leave-one-out error: median %.1f%%,"
             " worst %.0f%%, %d of %d within 1.5x)%s", g->n, g->uarch, f->ev.software[g->software].id, g->version,
             g->machines,
             100 * g->loo_median, 100 * g->loo_worst, g->loo_within_15, g->n, ratio);
}

void basis_mark(const basis_fits *f, const plan_basis *b, char *buf, size_t size) {
    switch (b->kind) {
    case BASIS_FLAGS: snprintf(buf, size, "flags"); return;
    case BASIS_MEASURED: snprintf(buf, size, "measured here"); return;
    case BASIS_NO_EVIDENCE: snprintf(buf, size, "no evidence: %ld-%ld", b->range_lo, b->range_hi); return;
    case BASIS_FITTED:
        snprintf(buf, size, "fit %s%s%s n=%d LOO %.0f%%", f->g[b->group].uarch,
                 strcmp(f->ev.software[f->g[b->group].software].id, "llama.cpp") ? " " : "",
                 strcmp(f->ev.software[f->g[b->group].software].id, "llama.cpp") ? f->ev.software[f->g[b->group].software].id : "",
                 f->g[b->group].n, 100 * f->g[b->group].loo_median);
        return;
    default: snprintf(buf, size, "default"); return;
    }
}
