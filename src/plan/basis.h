/*
 * basis.h — what each of the planner's figures rests on, and the
 * efficiency factors that follow from it.
 *
 * A figure for `this` machine rests on a measurement here (--calibrate) or
 * on defaults. A catalog CPU whose microarchitecture has published points
 * (evidence.h) takes the factors fitted to them, with the leave-one-out
 * error of that fit; for rackllm rather than the software measured, the
 * fitted factors are scaled by rackllm's ratio to llama.cpp measured here
 * on the same instruction set (an assumption carried to the other CPU;
 * none is measured on Arm, where llama.cpp's figure is shown as it is). A
 * CPU with no evidence gets a range: its plan with each fitted
 * microarchitecture's factors, the smallest and the largest. GPUs keep the
 * catalog's defaults.
 */
#ifndef RACKLLM_BASIS_H
#define RACKLLM_BASIS_H

#include <stdbool.h>

#include "base/common.h"
#include "evidence.h"
#include "plan.h"

/* Points per microarchitecture and software needed for a fit. */
#define BASIS_MIN_POINTS 5
#define BASIS_MAX_GROUPS 16

/* One fit: a microarchitecture measured with one version of a software. */
typedef struct basis_group {
    char uarch[24];
    int software;             /* index into the evidence's software */
    char version[16];         /* ... and its version: one fit each */
    char machines[64];        /* the machines measured, "m7a" */
    int n;                    /* points (at >= half the floor) */
    int *idx;
    ev_params x;              /* fitted to all n (once needed: basis_fit) */
    bool fitted;
    bool loo_done;
    double loo_median, loo_worst; /* |predicted / published - 1| */
    int loo_within_15;        /* points predicted within 1.5x */
    double *loo_pred;         /* n leave-one-out predictions */
} basis_group;

typedef struct basis_fits {
    evidence ev;
    basis_group g[BASIS_MAX_GROUPS];
    int n;
    double min_tok_s;
} basis_fits;

/* Loads the evidence and forms every group with enough points whose
 * streams ran at >= min_tok_s (half the floor); a group is fitted when
 * first needed (basis_fit), so a plan pays only for the fits it uses. */
int basis_fits_build(basis_fits *f, double min_tok_s, rl_err *err);
void basis_fits_free(basis_fits *f);

/* Group g's fit (computed once). */
const ev_params *basis_fit(basis_fits *f, int g);

/* The group's fit, leave-one-out predictions and summary (computed once).
 * The refits start from the full fit and search locally (evidence.h). */
void basis_fits_loo(basis_fits *f, int g);

/* The group a catalog CPU's figures rest on: its microarchitecture with
 * upstream llama.cpp if fitted, else with any software; -1 if none. */
int basis_group_for(const basis_fits *f, const char *uarch);

enum { BASIS_DEFAULT = 0, BASIS_FLAGS, BASIS_MEASURED, BASIS_FITTED, BASIS_NO_EVIDENCE };

typedef struct plan_basis {
    int kind;
    int group;                /* BASIS_FITTED: index into the fits */
    double ratio_bw, ratio_compute; /* rackllm / the software measured */
    bool ratio_measured;      /* a ratio measured on this instruction set */
    double eff_bw, eff_compute, step_fixed, sync_s, thread_loss; /* in force */
    long range_lo, range_hi;  /* BASIS_NO_EVIDENCE: rack sessions */
} plan_basis;

/* Decides hw's basis and writes its factors into hw (eff_bw, eff_compute,
 * step_fixed, sync_s, fitted). rackllm: scale to rackllm by the measured
 * ratio; flags: --eff-* given; calibrated: --calibrate given. f may be
 * NULL (no evidence loaded). */
void basis_apply(basis_fits *f, plan_hw *hw, const plan_params *p, bool rackllm, bool flags, bool calibrated,
                 plan_basis *b);

/* For BASIS_NO_EVIDENCE: the headline rack sessions of hw planned with
 * each group's factors (scaled as basis_apply would): lo and hi. */
int basis_range(basis_fits *f, const plan_hw *hw, const plan_model *m, const plan_params *p, bool rackllm,
                plan_basis *b, rl_err *err);

/* One line saying what a figure rests on ("fitted to 119 published points
 * for zen4 (llama.cpp on m7a; leave-one-out error: median 7.0%, worst
 * 61%)"). */
void basis_describe(const basis_fits *f, const plan_basis *b, char *buf, size_t size);

/* A short mark for tables: "measured", "fit n=119 LOO 7%", "range". */
void basis_mark(const basis_fits *f, const plan_basis *b, char *buf, size_t size);

#endif
