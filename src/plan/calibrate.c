/*
 * calibrate.c — the planner against a measurement (see calibrate.h): the
 * least-squares fit of the phase model's efficiency and per-step
 * arithmetic to a bench sweep, and predictions compared with one.
 */
#include "calibrate.h"

#include <math.h>
#include <string.h>

#include "model/shape.h"

static bool positive(double x) { return isfinite(x) && x > 0; }

/* The phase model's step for b sessions, as calibration fits it. */
typedef struct fit_model {
    double stream;   /* the weights' streaming: t1 less a session's KV read */
    double w, a, kv; /* per session at e = 1: the weights' and attention's arithmetic; its KV read */
} fit_model;

static double fit_step(const fit_model *f, double e, double u, int b) {
    return plan_phase_step(f->stream, f->w / e, u, f->kv + f->a / e, b);
}

/* Squared relative error of the model's steps over the measured batches. */
static double fit_error(const fit_model *f, const plan_measure *ms, double e, double u) {
    double sum = 0;
    for (int i = 0; i < ms->n_points; i++) {
        double r = fit_step(f, e, u, ms->sessions[i]) * ms->tok_s[i] - 1;
        sum += r * r;
    }
    return sum;
}

/* Least squares over (e, u), one at a time: for a given u the best e
 * (err_at_u), then the best u. Each is a scan of a grid (FIT_GRID cells)
 * and a golden-section search in the best cell and its neighbours: the
 * steps' max() gives the error kinks that a pure descent could stop at,
 * and the scan makes sure the search starts in the right valley. */
enum { FIT_GRID = 64, FIT_GOLDEN = 60 };
#define FIT_LOG_E0 (-6.907755278982137) /* log(0.001): e from 0.1% ... */
#define FIT_LOG_E1 2.302585092994046    /* ... log(10) of the peak */
#define FIT_U1 32.0                     /* u from 0 to 32 sessions' worth */

/* What a search is over: the model, the batches, and u while e is sought. */
typedef struct fit_ctx {
    const fit_model *f;
    const plan_measure *ms;
    double u;
} fit_ctx;

typedef double (*fit_fn)(const fit_ctx *c, double x);

/* The x in [x0, x1] where fn is least; *best its value there. */
static double fit_minimise(fit_fn fn, const fit_ctx *c, double x0, double x1, double *best) {
    double dx = (x1 - x0) / FIT_GRID, grid_best = INFINITY;
    int at = 0;
    for (int i = 0; i <= FIT_GRID; i++) {
        double v = fn(c, x0 + i * dx);
        if (v < grid_best) {
            grid_best = v;
            at = i;
        }
    }
    double lo = x0 + fmax(0, at - 1) * dx, hi = x0 + fmin(FIT_GRID, at + 1) * dx;
    const double g = 0.6180339887498949; /* golden section */
    double p = hi - g * (hi - lo), q = lo + g * (hi - lo), fp = fn(c, p), fq = fn(c, q);
    for (int i = 0; i < FIT_GOLDEN; i++) {
        if (fp < fq) {
            hi = q;
            q = p;
            fq = fp;
            p = hi - g * (hi - lo);
            fp = fn(c, p);
        } else {
            lo = p;
            p = q;
            fp = fq;
            q = lo + g * (hi - lo);
            fq = fn(c, q);
        }
    }
    double x = fp < fq ? p : q, v = fmin(fp, fq);
    if (grid_best < v) { /* the grid point itself (at a kink) */
        x = x0 + at * dx;
        v = grid_best;
    }
    *best = v;
    return x;
}

static double err_at_log_e(const fit_ctx *c, double le) { return fit_error(c->f, c->ms, exp(le), c->u); }

/* The best log e for u. */
static double best_log_e(const fit_ctx *c, double u, double *err) {
    fit_ctx at = *c;
    at.u = u;
    return fit_minimise(err_at_log_e, &at, FIT_LOG_E0, FIT_LOG_E1, err);
}

static double err_at_u(const fit_ctx *c, double u) {
    double err;
    best_log_e(c, u, &err);
    return err;
}

static void fit_least_squares(const fit_model *f, const plan_measure *ms, double *e_out, double *u_out) {
    fit_ctx c = {f, ms, 0};
    double err;
    double u = fit_minimise(err_at_u, &c, 0, FIT_U1, &err);
    *e_out = exp(best_log_e(&c, u, &err));
    *u_out = u;
}

int plan_calibrate(const plan_measure *ms, double peak_ops, double attn_peak_ops, double *eff_bw, double *eff_compute,
                   double *step_fixed, rl_err *err) {
    double rate1 = positive(ms->one_tok_s) ? ms->one_tok_s : ms->decode_tok_s;
    if (!positive(ms->bandwidth_gbs) || !positive(ms->bytes_per_token) || !positive(rate1))
        return rl_fail(err, RL_ERR_INPUT,
                       "calibration needs a positive bandwidth_gbs, model.bytes_per_token and a decode speed");
    *eff_bw = ms->bytes_per_token * rate1 / (ms->bandwidth_gbs * 1e9);
    if (ms->n_points < 1 || ms->n_points > PLAN_MAX_POINTS) return 0;
    double Fa = ms->attn_flops_per_token, Fw = ms->flops_per_token - Fa;
    if (attn_peak_ops <= 0) attn_peak_ops = peak_ops;
    if (!positive(peak_ops) || !positive(attn_peak_ops) || !positive(Fw) || !(Fa >= 0))
        return rl_fail(err, RL_ERR_INPUT, "calibration needs the machine's peak compute and the model's FLOPs");
    double B = *eff_bw * ms->bandwidth_gbs * 1e9, kv = ms->kv_bytes_per_session > 0 ? ms->kv_bytes_per_session / B : 0;
    fit_model f = {.stream = fmax(0, 1 / rate1 - kv), .w = Fw / peak_ops, .a = Fa / attn_peak_ops, .kv = kv};
    /* Compute shows only in a batch whose step clearly exceeds streaming
     * and its sessions' KV reads (5%: beyond the noise of a steady run). */
    bool grows = false;
    for (int i = 0; i < ms->n_points; i++) {
        if (ms->sessions[i] < 1 || !positive(ms->tok_s[i]))
            return rl_fail(err, RL_ERR_INPUT, "calibration: sweep point %d is not a positive batch and speed", i);
        grows |= 1 / ms->tok_s[i] > 1.05 * (f.stream + ms->sessions[i] * kv);
    }
    if (!grows) return 0;
    fit_least_squares(&f, ms, eff_compute, step_fixed);
    return 0;
}

static double error_pct(long predicted, long measured) {
    return measured > 0 ? 100.0 * (double)(predicted - measured) / (double)measured : NAN;
}

void plan_verify_compare(const plan_hw *hw, const plan_model *m, const plan_params *p, long measured_batched,
                         long measured_partitioned, double measured_capacity, plan_verify *v) {
    memset(v, 0, sizeof *v);
    plan_params whole = *p;
    whole.cores = 0; /* the bench uses the whole machine */
    double eb, ec;
    plan_efficiency(hw, &whole, &eb, &ec);
    plan_part parts[PLAN_MAX_PARTS];
    int n = plan_parts(hw, m, &whole, PLAN_BATCHED, parts, PLAN_MAX_PARTS);
    if (n > 0) {
        plan_fit f = plan_fit_part(&parts[0], m, &whole, eb, ec);
        v->predicted_batched = f.sessions;
        v->predicted_capacity = f.batch_exact;
    }
    for (int i = 0; i < n; i++) {
        parts[i].max_batch = 1;
        long s = plan_fit_part(&parts[i], m, &whole, eb, ec).sessions;
        if (s > v->predicted_partitioned) v->predicted_partitioned = s;
    }
    v->measured_batched = measured_batched;
    v->measured_partitioned = measured_partitioned;
    v->error_batched_pct = error_pct(v->predicted_batched, measured_batched);
    v->error_partitioned_pct = error_pct(v->predicted_partitioned, measured_partitioned);
    v->measured_capacity = measured_capacity;
    v->error_capacity_pct =
        measured_capacity > 0 ? 100.0 * (v->predicted_capacity - measured_capacity) / measured_capacity : NAN;
}

/* ---- against a bench run ---- */

void plan_measure_bench(const bench_json *b, plan_measure *ms) {
    memset(ms, 0, sizeof *ms);
    double pos = b->prompt_len + b->gen_len / 2; /* the sweep's middle, in whole tokens */
    rl_shape s;
    if (b->shape[0] && shape_catalog_find(b->shape, &s, NULL) == 0) {
        ms->flops_per_token = shape_flops_per_token(&s, (uint32_t)pos);
        ms->attn_flops_per_token = shape_attention_flops(&s, (uint32_t)pos);
    }
    const bench_point *one = bench_json_batched_at(b, 1);
    ms->bandwidth_gbs = b->bandwidth_gbs;
    ms->bytes_per_token = b->bytes_per_token;
    ms->decode_tok_s = b->decode_tok_s;
    ms->kv_bytes_per_session = b->kv_bytes_per_token * pos;
    ms->one_tok_s = one ? one->min_tok_s : 0;
    for (int i = 0; ms->flops_per_token > 0 && i < b->n_batched && ms->n_points < PLAN_MAX_POINTS; i++) {
        const bench_point *q = &b->batched[i];
        if (q->sessions < 2 || !(q->min_tok_s >= b->floor_tok_s / 2)) continue;
        ms->sessions[ms->n_points] = q->sessions;
        ms->tok_s[ms->n_points++] = q->min_tok_s;
    }
}

int plan_calibrate_bench(const bench_json *b, const plan_hw *self, plan_params *p, rl_err *err) {
    plan_measure ms;
    plan_measure_bench(b, &ms);
    double peak = (plan_quant_int8(b->type) ? self->int8_tops : self->bf16_tflops) * 1e12;
    double eb = self->eff_bw, ec = 0, u = -1;
    if (plan_calibrate(&ms, peak, self->bf16_tflops * 1e12, &eb, &ec, &u, err)) return -1;
    p->cpu_eff_bw = eb;
    if (ec > 0) { /* only a sweep measures compute */
        p->cpu_eff_compute = ec;
        p->cpu_step_fixed = u;
    }
    return 0;
}

void plan_params_for_bench(const bench_json *b, plan_params *p) {
    p->floor_tok_s = b->floor_tok_s;
    p->ctx = b->prompt_len + b->gen_len > 0 ? b->prompt_len + b->gen_len : (b->ctx > 0 ? b->ctx : p->ctx);
}

/* Whether two runs measured under the same conditions. */
static bool same_conditions(const bench_json *a, const bench_json *b) {
    return strcmp(a->shape, b->shape) == 0 && strcmp(a->type, b->type) == 0 && a->prompt_len == b->prompt_len &&
           a->gen_len == b->gen_len;
}

int plan_check_bench(const plan_hw *hw, const plan_model *m, const plan_params *p, const bench_json *b,
                     const bench_json *calib, plan_bench_check *c, rl_err *err) {
    memset(c, 0, sizeof *c);
    if (!bench_json_has_sweep(b))
        return rl_fail(err, RL_ERR_INPUT, "no session sweep to compare with (sweep / max_sessions_at_floor)");
    plan_model run = *m;
    if (b->weight_bytes > 0) run.weight_bytes = b->weight_bytes; /* what the bench actually streamed */
    long measured_b = b->max_batched >= 0 ? b->max_batched : bench_json_max_at_floor(b->batched, b->n_batched, b->floor_tok_s);
    long measured_p = b->max_partitioned >= 0 ? b->max_partitioned
                                              : bench_json_max_at_floor(b->partitioned, b->n_partitioned, b->floor_tok_s);
    plan_verify_compare(hw, &run, p, measured_b, measured_p, bench_json_capacity(b->batched, b->n_batched, b->floor_tok_s),
                        &c->v);
    plan_efficiency(hw, p, &c->eff_bw, &c->eff_compute);
    c->calibration_capacity = calib && same_conditions(calib, b)
                                  ? bench_json_capacity(calib->batched, calib->n_batched, b->floor_tok_s)
                                  : NAN;
    /* a run with --partitions 0 has no partitioned sweep to compare */
    c->have_partitioned = b->max_partitioned >= 0 || b->n_partitioned > 0;
    c->have_halves = bench_json_halves(b->batched, b->n_batched, b->floor_tok_s, &c->halves);
    return 0;
}
