/*
 * evidence.h — published multi-stream measurements of CPUs we cannot touch
 * (data/evidence.json), and the planner's model fitted to them per
 * microarchitecture, with its leave-one-out error.
 *
 * A point is one published configuration: a machine split into `procs`
 * processes of `threads` threads, each decoding `batch` streams of a model
 * after a prompt, and the speed one stream reached. The model predicts it
 * with plan_step_rate on a partition of 1/procs of the machine at the
 * points' mean context (prompt + generated / 2). Five parameters per
 * (microarchitecture, software and its version): the bandwidth and compute
 * efficiencies, the per-step arithmetic u, the barriers' cost per thread
 * and the arithmetic's loss per thread, fitted by
 * least squares on log(predicted / published) over the points whose stream
 * ran at least at half the floor (where the plan's crossing is). The fit is
 * deterministic (a log grid per parameter, then golden-section, in turns);
 * leave-one-out refits without each point (from the full fit, by local
 * search: a full fit per point would take minutes) and predicts it. Everything but
 * evidence_load is arithmetic on the structs, testable on a hand-made set.
 */
#ifndef RACKLLM_EVIDENCE_H
#define RACKLLM_EVIDENCE_H

#include <stdbool.h>

#include "base/common.h"
#include "plan.h"

#define EV_MAX_MACHINES 16
#define EV_MAX_SOFTWARE 4
#define EV_MAX_RATIOS 4

typedef struct ev_machine {
    char id[24];
    char uarch[24];
    char isa[12];
    double bw_gbs, int8_tops, float_tflops;
} ev_machine;

typedef struct ev_software {
    char id[24];
    bool attention_all_streams; /* each stream's attention runs over the
                                   whole batch's KV cache (masked): llama.cpp
                                   before per-sequence KV streams */
} ev_software;

/* rackllm against llama.cpp on one instruction set, measured here. */
typedef struct ev_ratio {
    char isa[12];
    double bandwidth, compute;
} ev_ratio;

typedef struct ev_point {
    int machine, software;      /* indexes */
    char model[24], quant[12], version[16];
    double prompt, gen;
    int procs, threads, batch;
    double tok_s;               /* published: one stream's speed */
    plan_model m;               /* the model at the point's context */
    char file[160];
    int line;
} ev_point;

typedef struct evidence {
    ev_machine machines[EV_MAX_MACHINES];
    int n_machines;
    ev_software software[EV_MAX_SOFTWARE];
    int n_software;
    ev_ratio ratios[EV_MAX_RATIOS];
    int n_ratios;
    ev_point *points;
    int n_points;
    char source_url[160];
} evidence;

/* The five fitted parameters. */
typedef struct ev_params {
    double eff_bw, eff_compute, step_fixed, sync_s, thread_loss;
} ev_params;

/* Reads data/evidence.json (embedded). The points' model figures come from
 * data/models.json shapes at each point's quantization (quant_as maps
 * vendor formats). evidence_free releases it. */
int evidence_load(evidence *ev, rl_err *err);
void evidence_free(evidence *ev);

/* A stream's predicted speed at a point with parameters x. */
double evidence_predict(const evidence *ev, const ev_point *pt, const ev_params *x);

/* Least-squares fit over points idx[0..n-1] (n >= 1). */
ev_params evidence_fit(const evidence *ev, const int *idx, int n);

/* The points of a microarchitecture, software (-1: any) and its version
 * (NULL: any) whose stream ran at >= min_tok_s; returns how many (at most
 * cap). */
int evidence_select(const evidence *ev, const char *uarch, int software, const char *version, double min_tok_s,
                    int *idx, int cap);

/* The fit again from `start`, by local search only (up to four turns of
 * golden-section per parameter around the current values). */
ev_params evidence_refine(const evidence *ev, const int *idx, int n, ev_params start);

/* Leave-one-out: pred[i] predicts idx[i] from a fit of the others (n >=
 * 2): a full fit, or with `full` (the fit of all n) refined from it.
 * Summary: median and worst |pred / published - 1|. */
void evidence_loo(const evidence *ev, const int *idx, int n, const ev_params *full, double *pred);
void evidence_error_stats(const evidence *ev, const int *idx, int n, const double *pred, double *median,
                          double *worst);

int evidence_software_find(const evidence *ev, const char *id);
const ev_ratio *evidence_ratio(const evidence *ev, const char *isa);

#endif
