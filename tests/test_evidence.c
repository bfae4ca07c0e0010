/*
 * test_evidence.c — the planner's evidence fit, leave-one-out, chat
 * prefill and barrier terms, and the labels of what a figure rests on,
 * against hand calculations.
 *
 * The fit is checked on a tiny hand-made evidence set whose speeds are
 * computed in this file from known parameters by the step formula written
 * out (not by the code under test): the fit must find speeds within 1% and
 * leave-one-out must predict each point within 1%. The published catalog
 * (data/evidence.json) is checked for completeness, and a catalog CPU for
 * taking its microarchitecture's fit scaled by rackllm's measured ratio.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/basis.h"
#include "plan/evidence.h"
#include "plan/hwcatalog.h"
#include "plan/plan.h"
#include "test.h"

/* ---- chat prefill and barriers in the step ---- */

/* One partition: 100 GB/s, 10 int8 TOPS, 5 float TFLOPS, 10 threads;
 * model: 1 GB weights, 2e9 FLOPs per token (no attention FLOPs), KV 1e5
 * B/token at ctx 1000. Efficiencies 0.5: B = 50e9, C = 5e12, Ca = 2.5e12. */
static plan_part part10(void) {
    plan_part pt = {.count = 1, .cores = 10, .threads = 10, .bw_gbs = 100, .compute_ops = 10e12,
                    .attn_ops = 5e12, .mem_bytes = 1e11, .step_fixed = 2};
    return pt;
}

static plan_model model1g(void) {
    plan_model m;
    memset(&m, 0, sizeof m);
    m.weight_bytes = 1e9;
    m.kv_bytes_per_token = 1e5;
    m.ctx = 1000;
    m.flops_per_token = 2e9;
    m.int8_compute = true;
    return m;
}

static void test_prefill_share(void) {
    plan_part pt = part10();
    plan_model m = model1g();
    plan_params p;
    plan_params_default(&p);
    /* Decode only, 10 sessions: max(1e9 / 50e9 = 0.02, (2 + 10) x 2e9 /
     * 5e12 = 0.0048) + 10 x 1e8 / 50e9 = 0.04 s a step: 25 tok/s. */
    CHECK_NEAR(plan_step_rate(&pt, &m, 0.5, 0.5, 10), 25, 1e-9);
    CHECK_NEAR(plan_prefill_share(&pt, &m, 0.5, 10, 25), 0, 0);
    /* Chat: prompt 1000, answer 250 = 4 prompt tokens per answer token; a
     * prompt token costs 2e9 / 5e12 + 1e9 (its attention) / 2.5e12 = 8e-4
     * s; each step gains 10 x 4 x 8e-4 = 0.032 s: 0.072 s, 13.89 tok/s,
     * and prefill takes 0.032 / 0.072 = 44.4% of the time. */
    m.prefill_per_token = 4;
    m.prefill_attn_flops = 1e9;
    double r = plan_step_rate(&pt, &m, 0.5, 0.5, 10);
    CHECK_NEAR(r, 1 / 0.072, 1e-9);
    CHECK_NEAR(plan_prefill_share(&pt, &m, 0.5, 10, r), 0.032 / 0.072, 1e-9);
    /* Users with 36 s of think time: an answer of 250 tokens at 13.89
     * tok/s takes 18 s, so each session serves (18 + 36) / 18 = 3 users. */
    p.prompt = 1000;
    p.answer = 250;
    p.think_s = 36;
    CHECK_NEAR(plan_users(&p, 10, r), 30, 1e-9);
    p.think_s = 0;
    CHECK_NEAR(plan_users(&p, 10, r), 10, 1e-9);
}

static void test_chat_from_shape(void) {
    /* Chat set from a shape: P / A, and attention FLOPs at P / 2. */
    rl_shape s;
    rl_err err = {0};
    CHECK(shape_catalog_find("llama3.2-1b", &s, &err) == 0);
    plan_params p;
    plan_params_default(&p);
    p.prompt = 800;
    p.answer = 200;
    plan_model m;
    CHECK(plan_model_from_shape(&s, "Q4_0", &p, &m, &err) == 0);
    CHECK_NEAR(m.prefill_per_token, 4, 0);
    /* 4 x 16 layers x 32 heads x 64 x 400 positions = 52,428,800. */
    CHECK_NEAR(m.prefill_attn_flops, 52428800, 0.5);
}

static void test_barriers(void) {
    plan_part pt = part10();
    plan_model m = model1g();
    plan_params p;
    plan_params_default(&p);
    pt.sync_s = 1e-4; /* x 10 threads = 1 ms a step */
    /* 10 sessions: 0.04 + 0.001 s. */
    CHECK_NEAR(plan_step_rate(&pt, &m, 0.5, 0.5, 10), 1 / 0.041, 1e-9);
    /* Floor 10 tok/s: 0.1 - 0.001 = 0.099 s left a step.
     *   bandwidth: (0.099 - 0.02) / 0.002 = 39.5 -> 39
     *   compute:   (0.099 - 2 x 4e-4) / (4e-4 + 0.002) = 40.9 */
    plan_fit f = plan_fit_part(&pt, &m, &p, 0.5, 0.5);
    CHECK(f.batch == 39);
    CHECK(f.limit == PLAN_LIMIT_BANDWIDTH);
    CHECK_NEAR(f.batch_exact, 39.5, 1e-9);
    /* Arithmetic lost per thread: 0.1 x 10 threads halves C to 2.5e12.
     * 30 sessions, no barriers: max(0.02, 32 x 2e9 / 2.5e12 = 0.0256) + 30
     * x 0.002 = 0.0856 s (without the loss: max(0.02, 0.0128) + 0.06). */
    pt.sync_s = 0;
    CHECK_NEAR(plan_step_rate(&pt, &m, 0.5, 0.5, 30), 1 / 0.08, 1e-9);
    pt.thread_loss = 0.1;
    CHECK_NEAR(plan_step_rate(&pt, &m, 0.5, 0.5, 30), 1 / 0.0856, 1e-9);
}

/* ---- the fit on a hand-made evidence set ---- */

static const double TRUE_BW = 0.5, TRUE_C = 0.3, TRUE_U = 1, TRUE_SYNC = 2e-6;

/* One machine of 8 threads: 100 GB/s, 10 int8 TOPS, 5 float TFLOPS. A
 * point: procs x (8 / procs) threads, batch b, the 1 GB model above with
 * 1e8 attention FLOPs per token. Its speed by the formula, by hand:
 *   t = max(W / B, (u + b) Fw / C) + b (K / B + Fa / Ca) + sync x threads,
 * B, C, Ca the machine's share (1 / procs) times the efficiencies. */
static double by_hand(int procs, int b) {
    double B = TRUE_BW * 100e9 / procs, C = TRUE_C * 10e12 / procs, Ca = TRUE_C * 5e12 / procs;
    double W = 1e9, K = 1e5 * 1000, Fa = 1e8, Fw = 2e9 - Fa, threads = 8.0 / procs;
    double t = fmax(W / B, (TRUE_U + b) * Fw / C) + b * (K / B + Fa / Ca) + TRUE_SYNC * threads;
    return 1 / t;
}

static int hand_set(evidence *ev) {
    memset(ev, 0, sizeof *ev);
    ev->n_machines = 1;
    snprintf(ev->machines[0].id, sizeof ev->machines[0].id, "box");
    snprintf(ev->machines[0].uarch, sizeof ev->machines[0].uarch, "zen9");
    ev->machines[0].bw_gbs = 100;
    ev->machines[0].int8_tops = 10;
    ev->machines[0].float_tflops = 5;
    ev->n_software = 1;
    snprintf(ev->software[0].id, sizeof ev->software[0].id, "llama.cpp");
    static const int PROCS[3] = {1, 2, 4}, BATCH[4] = {1, 4, 16, 64};
    ev->points = calloc(12, sizeof *ev->points);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            ev_point *pt = &ev->points[ev->n_points++];
            pt->procs = PROCS[i];
            pt->threads = 8 / PROCS[i];
            pt->batch = BATCH[j];
            pt->m = model1g();
            pt->m.attn_flops_per_token = 1e8;
            pt->tok_s = by_hand(PROCS[i], BATCH[j]);
        }
    return ev->n_points;
}

static void test_predict_by_hand(void) {
    evidence ev;
    hand_set(&ev);
    ev_params x = {TRUE_BW, TRUE_C, TRUE_U, TRUE_SYNC, 0};
    for (int i = 0; i < ev.n_points; i++) CHECK_NEAR(evidence_predict(&ev, &ev.points[i], &x), ev.points[i].tok_s, 1e-9);
    /* Attention over every stream's cache: 16 streams, one process of 8
     * threads: the attention FLOPs are 16 x 1e8 per token: t = max(0.02,
     * 17 x 1.9e9 / 3e12 = 0.010767) + 16 x (0.002 + 1.6e9 / 1.5e12) +
     * 1.6e-5 = 0.020 + 0.049067 + 0.000016. */
    ev.software[0].attention_all_streams = true;
    const ev_point *p16 = &ev.points[2];
    CHECK(p16->procs == 1 && p16->batch == 16);
    CHECK_NEAR(evidence_predict(&ev, p16, &x), 1 / (0.02 + 16 * (0.002 + 1.6e9 / 1.5e12) + 1.6e-5), 1e-6);
    evidence_free(&ev);
}

static void test_fit_and_loo(void) {
    evidence ev;
    int n = hand_set(&ev), idx[12];
    for (int i = 0; i < n; i++) idx[i] = i;
    ev_params x = evidence_fit(&ev, idx, n);
    for (int i = 0; i < n; i++) CHECK_NEAR(evidence_predict(&ev, &ev.points[i], &x) / ev.points[i].tok_s, 1, 0.01);
    CHECK_NEAR(x.eff_bw, TRUE_BW, 0.01);
    /* Compute and the per-step part trade against each other (both only
     * slow the large batches): the speeds pin them down loosely. */
    CHECK_NEAR(x.eff_compute, TRUE_C, 0.05);
    double pred[12], med, worst;
    evidence_loo(&ev, idx, n, &x, pred);
    for (int i = 0; i < n; i++) CHECK_NEAR(pred[i] / ev.points[i].tok_s, 1, 0.01);
    evidence_error_stats(&ev, idx, n, pred, &med, &worst);
    CHECK(med < 0.01 && worst < 0.01);
    /* A point published 2x faster than the model can explain: its own
     * leave-one-out prediction misses it by about half. */
    ev.points[5].tok_s *= 2;
    x = evidence_fit(&ev, idx, n);
    evidence_loo(&ev, idx, n, &x, pred);
    CHECK_NEAR(pred[5] / ev.points[5].tok_s, 0.5, 0.05);
    evidence_free(&ev);
}

static void test_error_stats(void) {
    evidence ev;
    hand_set(&ev);
    int idx[4] = {0, 1, 2, 3};
    /* Errors 10%, -20%, 30%, 0%: median of |.| (0, 0.1, 0.2, 0.3) = 0.15,
     * worst 0.3. */
    double pred[4] = {1.1 * ev.points[0].tok_s, 0.8 * ev.points[1].tok_s, 1.3 * ev.points[2].tok_s, ev.points[3].tok_s};
    double med, worst;
    evidence_error_stats(&ev, idx, 4, pred, &med, &worst);
    CHECK_NEAR(med, 0.15, 1e-12);
    CHECK_NEAR(worst, 0.3, 1e-12);
    evidence_free(&ev);
}

/* ---- the labels ---- */

static void test_labels(void) {
    basis_fits f;
    memset(&f, 0, sizeof f);
    f.ev.n_software = 1;
    snprintf(f.ev.software[0].id, sizeof f.ev.software[0].id, "llama.cpp");
    f.n = 1;
    basis_group *g = &f.g[0];
    snprintf(g->uarch, sizeof g->uarch, "zen9");
    snprintf(g->version, sizeof g->version, "b1");
    snprintf(g->machines, sizeof g->machines, "box");
    g->n = 12;
    g->loo_done = true;
    g->loo_median = 0.05;
    g->loo_worst = 0.4;
    g->loo_within_15 = 12;
    plan_basis b = {.kind = BASIS_FITTED, .group = 0, .ratio_bw = 1.5, .ratio_compute = 4, .ratio_measured = true};
    char text[512];
    basis_describe(&f, &b, text, sizeof text);
    CHECK(strstr(text, "fitted to 12 published points for zen9 (llama.cpp b1 on box; leave-one-out error: median 5.0%,"
                       " worst 40%, 12 of 12 within 1.5x)") != NULL);
    CHECK(strstr(text, "x 1.5 bandwidth, x 4 compute") != NULL);
    basis_mark(&f, &b, text, sizeof text);
    CHECK(strcmp(text, "fit zen9 n=12 LOO 5%") == 0);
    b.ratio_bw = b.ratio_compute = 1;
    b.ratio_measured = false;
    basis_describe(&f, &b, text, sizeof text);
    CHECK(strstr(text, "not measured on this instruction set: llama.cpp's figure") != NULL);
    plan_basis none = {.kind = BASIS_NO_EVIDENCE, .range_lo = 100, .range_hi = 200};
    basis_describe(&f, &none, text, sizeof text);
    CHECK(strstr(text, "no evidence for this CPU: 100-200 sessions per rack") == text);
    plan_basis here = {.kind = BASIS_MEASURED};
    basis_describe(&f, &here, text, sizeof text);
    CHECK(strcmp(text, "measured here (--calibrate)") == 0);
}

/* ---- the published catalog ---- */

static void test_catalog(void) {
    basis_fits f;
    rl_err err = {0};
    CHECK(basis_fits_build(&f, 5, &err) == 0);
    if (f.ev.n_points == 0) return;
    CHECK(f.ev.n_points > 1000);
    int zen4 = basis_group_for(&f, "zen4");
    CHECK(zen4 >= 0 && f.g[zen4].n >= 100);
    CHECK(basis_group_for(&f, "zen4c") == -1);
    /* EPYC 9654 (zen4, avx512): the zen4 fit x rackllm's AVX-512 ratio. */
    plan_hw hw;
    plan_params p;
    plan_params_default(&p);
    CHECK(hwcatalog_find("epyc-9654", &hw, &err) == 0);
    plan_basis b;
    basis_apply(&f, &hw, &p, true, false, false, &b);
    CHECK(b.kind == BASIS_FITTED && hw.fitted);
    const ev_ratio *r = evidence_ratio(&f.ev, "avx512");
    CHECK(r != NULL);
    if (r) CHECK_NEAR(hw.eff_compute, f.g[zen4].x.eff_compute * r->compute, 1e-12);
    CHECK(f.g[zen4].loo_done && f.g[zen4].loo_median < 0.5);
    /* llama.cpp as published: the fit as it is. */
    CHECK(hwcatalog_find("epyc-9654", &hw, &err) == 0);
    basis_apply(&f, &hw, &p, false, false, false, &b);
    CHECK_NEAR(hw.eff_compute, f.g[zen4].x.eff_compute, 1e-12);
    /* Bergamo: no evidence, a range from the others. */
    CHECK(hwcatalog_find("epyc-9754", &hw, &err) == 0);
    basis_apply(&f, &hw, &p, true, false, false, &b);
    CHECK(b.kind == BASIS_NO_EVIDENCE && !hw.fitted);
    basis_fits_free(&f);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(test_prefill_share);
    RUN(test_chat_from_shape);
    RUN(test_barriers);
    RUN(test_predict_by_hand);
    RUN(test_fit_and_loo);
    RUN(test_error_stats);
    RUN(test_labels);
    RUN(test_catalog);
    return test_report("test_evidence");
}
