/*
 * evidence.c — data/evidence.json read into structs, and the planner's
 * step model fitted to its points per microarchitecture (see evidence.h).
 */
#include "evidence.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/embedded.h"
#include "model/shape.h"

/* ---- the file ---- */

static const char *str_of(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The value of a figure object ({"value": ..., "src": ...}); 0 if absent. */
static double fig(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, key), "value");
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int load_machines(evidence *ev, const cJSON *root, rl_err *err) {
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(root, "machines")) {
        if (ev->n_machines >= EV_MAX_MACHINES) return rl_fail(err, RL_ERR_INPUT, "data/evidence.json: too many machines");
        ev_machine *e = &ev->machines[ev->n_machines++];
        snprintf(e->id, sizeof e->id, "%s", str_of(m, "id"));
        snprintf(e->uarch, sizeof e->uarch, "%s", str_of(m, "uarch"));
        snprintf(e->isa, sizeof e->isa, "%s", str_of(m, "isa"));
        e->bw_gbs = fig(m, "mem_bw_gbs");
        e->int8_tops = fig(m, "int8_tops");
        e->float_tflops = fig(m, "float_tflops");
        if (!e->id[0] || !(e->bw_gbs > 0) || !(e->int8_tops > 0) || !(e->float_tflops > 0))
            return rl_fail(err, RL_ERR_INPUT, "data/evidence.json: machine '%s' lacks a figure", e->id);
    }
    const cJSON *s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(root, "software")) {
        if (ev->n_software >= EV_MAX_SOFTWARE) return rl_fail(err, RL_ERR_INPUT, "data/evidence.json: too much software");
        ev_software *e = &ev->software[ev->n_software++];
        snprintf(e->id, sizeof e->id, "%s", str_of(s, "id"));
        e->attention_all_streams = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "attention_all_streams"));
    }
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(root, "rackllm_ratio")) {
        if (ev->n_ratios >= EV_MAX_RATIOS) break;
        ev_ratio *r = &ev->ratios[ev->n_ratios++];
        snprintf(r->isa, sizeof r->isa, "%s", str_of(s, "isa"));
        const cJSON *bw = cJSON_GetObjectItemCaseSensitive(s, "bandwidth"), *c = cJSON_GetObjectItemCaseSensitive(s, "compute");
        r->bandwidth = cJSON_IsNumber(bw) ? bw->valuedouble : 1;
        r->compute = cJSON_IsNumber(c) ? c->valuedouble : 1;
    }
    return 0;
}

/* The planner's quantization for a vendor format (quant_as), else itself. */
static const char *quant_as(const cJSON *root, const char *quant) {
    const cJSON *q;
    cJSON_ArrayForEach(q, cJSON_GetObjectItemCaseSensitive(root, "quant_as"))
        if (strcmp(str_of(q, "quant"), quant) == 0) return str_of(q, "as");
    return quant;
}

static int machine_index(const evidence *ev, const char *id) {
    for (int i = 0; i < ev->n_machines; i++)
        if (strcmp(ev->machines[i].id, id) == 0) return i;
    return -1;
}

int evidence_software_find(const evidence *ev, const char *id) {
    for (int i = 0; i < ev->n_software; i++)
        if (strcmp(ev->software[i].id, id) == 0) return i;
    return -1;
}

const ev_ratio *evidence_ratio(const evidence *ev, const char *isa) {
    for (int i = 0; i < ev->n_ratios; i++)
        if (strcmp(ev->ratios[i].isa, isa) == 0) return &ev->ratios[i];
    return NULL;
}

/* Column positions in points.rows, by name. */
enum { C_MACHINE, C_SOFTWARE, C_VERSION, C_MODEL, C_QUANT, C_PROMPT, C_GEN, C_PROCS, C_THREADS, C_BATCH, C_TOKS,
       C_FILE, C_LINE, C_N };
static const char *const COLUMNS[C_N] = {"machine", "software", "version", "model", "quant", "prompt", "gen",
                                         "procs", "threads", "batch", "tok_s", "file", "csv_line"};

static int columns_of(const cJSON *points, int *col, rl_err *err) {
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(points, "columns");
    for (int c = 0; c < C_N; c++) {
        col[c] = -1;
        int i = 0;
        const cJSON *n;
        cJSON_ArrayForEach(n, names) {
            if (cJSON_IsString(n) && strcmp(n->valuestring, COLUMNS[c]) == 0) col[c] = i;
            i++;
        }
        if (col[c] < 0) return rl_fail(err, RL_ERR_INPUT, "data/evidence.json: points lack the column '%s'", COLUMNS[c]);
    }
    return 0;
}

static double num_at(const cJSON *row, int i) {
    const cJSON *v = cJSON_GetArrayItem(row, i);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *str_at(const cJSON *row, int i) {
    const cJSON *v = cJSON_GetArrayItem(row, i);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* One row into a point, its model figures at its mean context. */
static int load_point(evidence *ev, const cJSON *root, const cJSON *row, const int *col, ev_point *pt, rl_err *err) {
    memset(pt, 0, sizeof *pt);
    pt->machine = machine_index(ev, str_at(row, col[C_MACHINE]));
    pt->software = evidence_software_find(ev, str_at(row, col[C_SOFTWARE]));
    snprintf(pt->model, sizeof pt->model, "%s", str_at(row, col[C_MODEL]));
    snprintf(pt->quant, sizeof pt->quant, "%s", str_at(row, col[C_QUANT]));
    snprintf(pt->version, sizeof pt->version, "%s", str_at(row, col[C_VERSION]));
    snprintf(pt->file, sizeof pt->file, "%s", str_at(row, col[C_FILE]));
    pt->prompt = num_at(row, col[C_PROMPT]);
    pt->gen = num_at(row, col[C_GEN]);
    pt->procs = (int)num_at(row, col[C_PROCS]);
    pt->threads = (int)num_at(row, col[C_THREADS]);
    pt->batch = (int)num_at(row, col[C_BATCH]);
    pt->tok_s = num_at(row, col[C_TOKS]);
    pt->line = (int)num_at(row, col[C_LINE]);
    if (pt->machine < 0 || pt->software < 0 || pt->procs < 1 || pt->threads < 1 || pt->batch < 1 ||
        !(pt->tok_s > 0) || !(pt->prompt >= 0) || !(pt->gen >= 1))
        return rl_fail(err, RL_ERR_INPUT, "data/evidence.json: a point of %s line %d is incomplete", pt->file, pt->line);
    rl_shape s;
    if (shape_catalog_find(pt->model, &s, err)) return -1;
    plan_params p;
    plan_params_default(&p);
    p.ctx = pt->prompt + pt->gen / 2;
    return plan_model_from_shape(&s, quant_as(root, pt->quant), &p, &pt->m, err);
}

static int load_points(evidence *ev, const cJSON *root, rl_err *err) {
    const cJSON *points = cJSON_GetObjectItemCaseSensitive(root, "points");
    int col[C_N];
    if (columns_of(points, col, err)) return -1;
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "sources"),
                                                        str_of(points, "source"));
    snprintf(ev->source_url, sizeof ev->source_url, "%s", str_of(src, "url"));
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(points, "rows");
    int n = cJSON_GetArraySize(rows);
    ev->points = calloc(n > 0 ? (size_t)n : 1, sizeof *ev->points);
    if (!ev->points) return rl_fail(err, RL_ERR_INTERNAL, "out of memory for %d evidence points", n);
    const cJSON *row;
    cJSON_ArrayForEach(row, rows) {
        if (load_point(ev, root, row, col, &ev->points[ev->n_points], err)) return -1;
        ev->n_points++;
    }
    return 0;
}

int evidence_load(evidence *ev, rl_err *err) {
    memset(ev, 0, sizeof *ev);
    size_t size;
    const unsigned char *text = rl_embedded_find("evidence.json", &size);
    if (!text) return rl_fail(err, RL_ERR_INTERNAL, "data/evidence.json is not embedded in this build");
    cJSON *root = cJSON_ParseWithLength((const char *)text, size);
    if (!root) return rl_fail(err, RL_ERR_INTERNAL, "data/evidence.json does not parse");
    int rc = load_machines(ev, root, err);
    if (!rc) rc = load_points(ev, root, err);
    cJSON_Delete(root);
    if (rc) evidence_free(ev);
    return rc;
}

void evidence_free(evidence *ev) {
    free(ev->points);
    ev->points = NULL;
    ev->n_points = 0;
}

/* ---- the model at a point ---- */

double evidence_predict(const evidence *ev, const ev_point *pt, const ev_params *x) {
    const ev_machine *mc = &ev->machines[pt->machine];
    plan_part part = {.count = pt->procs, .cores = pt->threads, .threads = pt->threads, .sync_s = x->sync_s,
                      .thread_loss = x->thread_loss};
    part.bw_gbs = mc->bw_gbs / pt->procs;
    part.compute_ops = (pt->m.int8_compute ? mc->int8_tops : mc->float_tflops) * 1e12 / pt->procs;
    part.attn_ops = mc->float_tflops * 1e12 / pt->procs;
    part.step_fixed = x->step_fixed;
    plan_model m = pt->m;
    if (ev->software[pt->software].attention_all_streams) {
        double extra = m.attn_flops_per_token * (pt->batch - 1);
        m.attn_flops_per_token += extra;
        m.flops_per_token += extra;
    }
    return plan_step_rate(&part, &m, x->eff_bw, x->eff_compute, pt->batch);
}

/* ---- the fit ---- */

static double loss(const evidence *ev, const int *idx, int n, const ev_params *x) {
    double sum = 0;
    for (int i = 0; i < n; i++) {
        const ev_point *pt = &ev->points[idx[i]];
        double pred = evidence_predict(ev, pt, x);
        double e = pred > 0 ? log(pred / pt->tok_s) : 10;
        sum += e * e;
    }
    return sum;
}

/* Parameter k of x as a double to search, on a log scale (log_scale) or
 * a linear one, from lo to hi. The efficiencies stay at most 1: a fit that
 * wants more says the model or a figure under it is wrong, and shows as
 * error rather than as an engine faster than its hardware. */
typedef struct axis {
    double lo, hi;
    bool log_scale;
} axis;

#define EV_PARAMS 5
static const axis AXES[EV_PARAMS] = {{0.01, 1, true}, {0.001, 1, true}, {0, 32, false}, {1e-8, 1e-3, true},
                                     {1e-6, 1, true}};

static double *param(ev_params *x, int k) {
    switch (k) {
    case 0: return &x->eff_bw;
    case 1: return &x->eff_compute;
    case 2: return &x->step_fixed;
    case 3: return &x->sync_s;
    default: return &x->thread_loss;
    }
}

#define EV_GRID 48

/* The best value of parameter k with the others fixed: a grid over its
 * range (plus 0 for the linear and barrier axes), then golden-section
 * search between the best point's neighbours; without the grid, the
 * golden-section search around the current value only. */
static void search(const evidence *ev, const int *idx, int n, ev_params *x, int k, bool grid) {
    const axis *a = &AXES[k];
    double *v = param(x, k), best = *v, best_loss = loss(ev, idx, n, x);
    double lo = a->log_scale ? log(a->lo) : a->lo, hi = a->log_scale ? log(a->hi) : a->hi, step = (hi - lo) / EV_GRID;
    for (int i = -1; grid && i <= EV_GRID; i++) {
        double g = i < 0 ? 0 : a->log_scale ? exp(lo + i * step) : lo + i * step;
        if (i < 0 && k < 2) continue; /* an efficiency of 0 is no engine */
        *v = g;
        double l = loss(ev, idx, n, x);
        if (l < best_loss) best_loss = l, best = g;
    }
    if (best > 0) {
        double c = a->log_scale ? log(best) : best;
        double l = fmax(c - step, lo), h = fmin(c + step, hi);
        for (int it = 0; it < 30; it++) {
            double m1 = l + 0.382 * (h - l), m2 = l + 0.618 * (h - l);
            *v = a->log_scale ? exp(m1) : fmax(0, m1);
            double f1 = loss(ev, idx, n, x);
            *v = a->log_scale ? exp(m2) : fmax(0, m2);
            double f2 = loss(ev, idx, n, x);
            if (f1 < f2) h = m2;
            else l = m1;
        }
        double g = a->log_scale ? exp((l + h) / 2) : fmax(0, (l + h) / 2);
        *v = g;
        if (loss(ev, idx, n, x) < best_loss) best = g;
    }
    *v = best;
}

/* Turns with the grid (to leave no basin unvisited), then local turns
 * until a turn gains less than EV_STILL of the loss (the parameters are
 * correlated: bandwidth and barriers both slow a small batch). */
#define EV_GRID_ROUNDS 3
#define EV_MAX_ROUNDS 60
#define EV_STILL 1e-9

static ev_params local_turns(const evidence *ev, const int *idx, int n, ev_params x, int max_rounds) {
    double before = loss(ev, idx, n, &x);
    for (int r = 0; r < max_rounds; r++) {
        for (int k = 0; k < EV_PARAMS; k++) search(ev, idx, n, &x, k, false);
        double after = loss(ev, idx, n, &x);
        if (before - after <= EV_STILL * (before + 1e-300)) break;
        before = after;
    }
    return x;
}

ev_params evidence_fit(const evidence *ev, const int *idx, int n) {
    ev_params x = {.eff_bw = 0.5, .eff_compute = 0.1, .step_fixed = 2, .sync_s = 0, .thread_loss = 0};
    for (int r = 0; r < EV_GRID_ROUNDS; r++)
        for (int k = 0; k < EV_PARAMS; k++) search(ev, idx, n, &x, k, true);
    return local_turns(ev, idx, n, x, EV_MAX_ROUNDS);
}

ev_params evidence_refine(const evidence *ev, const int *idx, int n, ev_params start) {
    return local_turns(ev, idx, n, start, 4);
}

int evidence_select(const evidence *ev, const char *uarch, int software, const char *version, double min_tok_s,
                    int *idx, int cap) {
    int n = 0;
    for (int i = 0; i < ev->n_points && n < cap; i++) {
        const ev_point *pt = &ev->points[i];
        if (strcmp(ev->machines[pt->machine].uarch, uarch) != 0) continue;
        if (software >= 0 && pt->software != software) continue;
        if (version && strcmp(pt->version, version) != 0) continue;
        if (pt->tok_s >= min_tok_s) idx[n++] = i;
    }
    return n;
}

void evidence_loo(const evidence *ev, const int *idx, int n, const ev_params *full, double *pred) {
    int *rest = malloc((size_t)(n > 1 ? n - 1 : 1) * sizeof *rest);
    if (!rest) {
        for (int i = 0; i < n; i++) pred[i] = NAN;
        return;
    }
    for (int i = 0; i < n; i++) {
        int k = 0;
        for (int j = 0; j < n; j++)
            if (j != i) rest[k++] = idx[j];
        ev_params x = full ? evidence_refine(ev, rest, k, *full) : evidence_fit(ev, rest, k);
        pred[i] = k > 0 ? evidence_predict(ev, &ev->points[idx[i]], &x) : NAN;
    }
    free(rest);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void evidence_error_stats(const evidence *ev, const int *idx, int n, const double *pred, double *median,
                          double *worst) {
    *median = *worst = NAN;
    if (n < 1) return;
    double *e = malloc((size_t)n * sizeof *e);
    if (!e) return;
    for (int i = 0; i < n; i++) e[i] = fabs(pred[i] / ev->points[idx[i]].tok_s - 1);
    qsort(e, (size_t)n, sizeof *e, cmp_double);
    *median = n % 2 ? e[n / 2] : (e[n / 2 - 1] + e[n / 2]) / 2;
    *worst = e[n - 1];
    free(e);
}
