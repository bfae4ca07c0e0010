/*
 * calibrate.h — the planner against a measurement: the efficiency factors
 * and per-step arithmetic of plan.h's model fitted to what a bench run
 * measured (calibration), and its predictions compared with a run
 * (verification), as `rackllm plan --calibrate / --verify` use them.
 */
#ifndef RACKLLM_CALIBRATE_H
#define RACKLLM_CALIBRATE_H

#include <stdbool.h>

#include "base/common.h"
#include "benchjson.h"
#include "plan.h"

/* What a bench run measured, reduced to what the planner uses. */
#define PLAN_MAX_POINTS 64

typedef struct plan_measure {
    double bandwidth_gbs;      /* streaming read bandwidth */
    double bytes_per_token;    /* the bench's bytes per decoded token */
    double decode_tok_s;       /* single-session decode (tg128) */
    double flops_per_token;    /* of the benched model at the sweep's position */
    double attn_flops_per_token; /* ... of which attention */
    double kv_bytes_per_session; /* a session's KV cache at that position */
    double one_tok_s;          /* sweep: one session's speed (0: none) */
    int n_points;              /* sweep: batches of 2 or more sessions */
    int sessions[PLAN_MAX_POINTS];
    double tok_s[PLAN_MAX_POINTS]; /* ... their slowest session's speed */
} plan_measure;

/* The factors from the step times the sweep measured (t(b) = 1 / the
 * slowest session's tok/s). One session's step, t1 = 1 / one_tok_s (else
 * 1 / decode_tok_s), is taken as bound by streaming: eff_bw =
 * bytes_per_token / (t1 x bandwidth) (if it was arithmetic-bound, a lower
 * bound); B = eff_bw x bandwidth. The batches then fit the step of the
 * phase model (plan_step_rate) for b sessions,
 *   t(b) = max(t1 - K/B, (u + b) Fw / (e peak_ops)) + b (K/B + Fa / (e attn_peak_ops)),
 * K a session's KV bytes, Fw and Fa the weights' and attention's FLOPs per
 * token: eff_compute = e and step_fixed = u >= 0 minimise the squared
 * relative error of t(b) over the batches given (the CLI gives those that
 * ran at half the floor or faster); each parameter is scanned on a grid,
 * then searched by golden section. Least squares over the batches, not a
 * line through two: two neighbouring batches near the floor put one run's
 * crossing 15% off its own data. Without a batch whose step clearly
 * exceeds streaming (none, or steps that do not grow: nothing about
 * compute to learn), eff_compute and step_fixed are left as they are.
 * attn_peak_ops 0: peak_ops. Fails on non-positive or non-finite input. */
int plan_calibrate(const plan_measure *ms, double peak_ops, double attn_peak_ops, double *eff_bw, double *eff_compute,
                   double *step_fixed, rl_err *err);

/* Predicted vs measured sessions at the floor on one machine. */
typedef struct plan_verify {
    long predicted_batched, measured_batched;
    long predicted_partitioned, measured_partitioned;
    double error_batched_pct, error_partitioned_pct; /* NAN if measured 0 */
    /* The batched capacity before rounding down: sessions where the speed
     * meets the floor (fractional), predicted and measured (the sweep's
     * points interpolated, bench_json_capacity; 0: unknown). Two sessions
     * counts round to 4 and 5 when the crossing sits at 4.9 in one and
     * 5.05 in the other; this shows the model's error without that step. */
    double predicted_capacity, measured_capacity, error_capacity_pct;
} plan_verify;

/* Predicts the two sweeps of a bench on `hw` (one partition batching; one
 * session per partition, up to one partition per core) and compares;
 * measured_capacity is the measured batched crossing (0: unknown). */
void plan_verify_compare(const plan_hw *hw, const plan_model *m, const plan_params *p, long measured_batched,
                         long measured_partitioned, double measured_capacity, plan_verify *v);

/* ---- against a bench run (docs/bench-json.md) ---- */

/* What bench run b measured, as plan_calibrate takes it: its bandwidth,
 * bytes and decode speed; one session's sweep speed; the FLOPs and KV
 * bytes of its model (a catalog shape; 0 for an unknown one) at the
 * sweep's middle position (prompt + half the generation); and every batch
 * of 2 or more sessions that ran at half the floor or faster (where the
 * model is used; none without the model's FLOPs). */
void plan_measure_bench(const bench_json *b, plan_measure *ms);

/* Calibrates `this` machine by bench run b (self: hwcatalog_this with the
 * run's bandwidth): plan_calibrate on plan_measure_bench, the weights'
 * arithmetic at self's int8 peak unless the run's type is a float one
 * (plan_quant_int8; else its bf16 peak), attention at the bf16 peak. Sets
 * p->cpu_eff_bw, and p->cpu_eff_compute and p->cpu_step_fixed when the
 * sweep says something about compute. */
int plan_calibrate_bench(const bench_json *b, const plan_hw *self, plan_params *p, rl_err *err);

/* The conditions of bench run b as planning parameters: its floor, and
 * the context its sweep reached (prompt + generation; else its ctx; else
 * p's as it is). */
void plan_params_for_bench(const bench_json *b, plan_params *p);

/* A prediction checked against a bench run. */
typedef struct plan_bench_check {
    plan_verify v;
    double eff_bw, eff_compute;  /* in force for the prediction */
    bool have_partitioned;       /* the run had a partitioned sweep to compare */
    double calibration_capacity; /* the calibration run's own batched crossing
                                    (the model's error against the data it was
                                    fitted to); NAN unless that run had b's
                                    shape, type, prompt and generation */
    bool have_halves;            /* b's passes in two halves (bench_json_halves) */
    bench_halves halves;
} plan_bench_check;

/* Predicts run b on hw and compares: m is b's model (its weight_bytes
 * replaced by what the run streamed, when it says), p from
 * plan_params_for_bench, calib the calibration run or NULL. The measured
 * counts are the run's max_sessions_at_floor, else its points'. -1 with
 * RL_ERR_INPUT if b has no session sweep. */
int plan_check_bench(const plan_hw *hw, const plan_model *m, const plan_params *p, const bench_json *b,
                     const bench_json *calib, plan_bench_check *c, rl_err *err);

#endif
