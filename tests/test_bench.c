/*
 * test_bench.c — the bench's logic and its JSON contract (no timed
 * assertions: speeds are only checked for sign and for consistency).
 *
 *  - list parsing; the sweep search on formula probes whose answers are
 *    worked out by hand; the count of sessions at the floor;
 *  - a quick run on a tiny synthetic model: the JSON it writes is read back
 *    by the planner's reader (plan/benchjson.h), every figure positive, the
 *    aggregate the sum of the sessions, the bytes per token and roofline
 *    what their definitions say, max_sessions_at_floor what the points say;
 *    floors that everything or nothing keeps give the sweeps' bounds;
 *  - the SVG names every point; bad parameters are refused.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "plan/benchjson.h"
#include "bench/benchsvg.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "model/shape.h"
#include "tools/synth.h"
#include "test.h"
#include "tiny_shape.h"

static void test_lists(void) {
    int v[BENCH_MAX_LIST], n = -1;
    CHECK(bench_parse_list("1,2,4", 1, 100, v, BENCH_MAX_LIST, &n) == 0 && n == 3 && v[0] == 1 && v[2] == 4);
    CHECK(bench_parse_list("7", 1, 100, v, BENCH_MAX_LIST, &n) == 0 && n == 1 && v[0] == 7);
    CHECK(bench_parse_list("", 1, 100, v, BENCH_MAX_LIST, &n) == -1);
    CHECK(bench_parse_list("1,,2", 1, 100, v, BENCH_MAX_LIST, &n) == -1);
    CHECK(bench_parse_list("1,2,", 1, 100, v, BENCH_MAX_LIST, &n) == -1);
    CHECK(bench_parse_list("0", 1, 100, v, BENCH_MAX_LIST, &n) == -1);
    CHECK(bench_parse_list("101", 1, 100, v, BENCH_MAX_LIST, &n) == -1);
    CHECK(bench_parse_list("-1", 1, 100, v, BENCH_MAX_LIST, &n) == -1);
    CHECK(bench_parse_list("2x", 1, 100, v, BENCH_MAX_LIST, &n) == -1);
    CHECK(bench_parse_list("1,2,3", 1, 100, v, 2, &n) == -1);
}

/* speed = k / n: every session shares a fixed budget */
static double inverse(void *ctx, int n) { return *(double *)ctx / n; }
static double constant(void *ctx, int n) {
    (void)n;
    return *(double *)ctx;
}
static double failing(void *ctx, int n) {
    (void)ctx;
    return n > 2 ? -1 : 100;
}

static void check_sizes(const int *got, int n, const int *want, int n_want, const char *what) {
    bool same = n == n_want;
    for (int i = 0; same && i < n; i++) same = got[i] == want[i];
    CHECKF(same, "%s: %d sizes probed", what, n);
    if (!same)
        for (int i = 0; i < n; i++) fprintf(stderr, "  probed %d\n", got[i]);
}

static void test_search(void) {
    int sizes[64], n = 0;
    double speeds[64];
    /* 100/n against 10: doubling to 16 (6.25, clearly below), then 12
     * (8.3, no), 10 (10, yes), 11 (9.1, no): the answer is 10 */
    double k = 100;
    CHECK(bench_search(inverse, &k, 256, 1, 10, sizes, speeds, 64, &n) == 0);
    check_sizes(sizes, n, (int[]){1, 2, 4, 8, 16, 12, 10, 11}, 8, "100/n, floor 10");
    CHECK_EQ_INT(n, 8);
    /* 100/n against 1: up to 128 (0.78), then 96 yes, 112 no, 104 no, 100
     * yes; 100 and 104 are within 100/16 of each other: stop */
    CHECK(bench_search(inverse, &k, 1000, 1, 1, sizes, speeds, 64, &n) == 0);
    check_sizes(sizes, n, (int[]){1, 2, 4, 8, 16, 32, 64, 128, 96, 112, 104, 100}, 12, "100/n, floor 1");
    /* never below: doubling stops at the cap, which need not be a power of two */
    double fast = 1000;
    CHECK(bench_search(constant, &fast, 6, 1, 10, sizes, speeds, 64, &n) == 0);
    check_sizes(sizes, n, (int[]){1, 2, 4, 6}, 4, "always above, cap 6");
    /* clearly below at once: one probe */
    double slow = 1;
    CHECK(bench_search(constant, &slow, 256, 1, 10, sizes, speeds, 64, &n) == 0);
    check_sizes(sizes, n, (int[]){1}, 1, "always far below");
    /* just below (within 10%): one more size, then stop */
    double near = 9.5;
    CHECK(bench_search(constant, &near, 256, 1, 10, sizes, speeds, 64, &n) == 0);
    check_sizes(sizes, n, (int[]){1, 2}, 2, "always just below");
    /* a minimum size: doubling goes on below the floor up to it */
    CHECK(bench_search(constant, &slow, 256, 8, 10, sizes, speeds, 64, &n) == 0);
    check_sizes(sizes, n, (int[]){1, 2, 4, 8}, 4, "always far below, min 8");
    CHECK(bench_search(constant, &slow, 4, 8, 10, sizes, speeds, 64, &n) == 0);
    check_sizes(sizes, n, (int[]){1, 2, 4}, 3, "min 8 above the cap of 4");
    /* ... and the bisection still finds 100/n's answer */
    CHECK(bench_search(inverse, &k, 256, 32, 10, sizes, speeds, 64, &n) == 0);
    check_sizes(sizes, n, (int[]){1, 2, 4, 8, 16, 32, 12, 10, 11}, 9, "100/n, floor 10, min 32");
    /* a failing probe fails the search */
    CHECK(bench_search(failing, NULL, 256, 1, 10, sizes, speeds, 64, &n) == -1);
    /* the room given is respected */
    CHECK(bench_search(inverse, &k, 1000, 1, 1, sizes, speeds, 3, &n) == 0 && n == 3);
}

static void test_max_at_floor(void) {
    bench_point_result pts[4] = {
        {.sessions = 1, .min_tok_s = 20}, {.sessions = 8, .min_tok_s = 9.99},
        {.sessions = 4, .min_tok_s = 10}, {.sessions = 6, .min_tok_s = 12}, /* noise: 6 kept it, 8 did not */
    };
    CHECK_EQ_INT(bench_max_at_floor(pts, 4, 10), 6);
    CHECK_EQ_INT(bench_max_at_floor(pts, 4, 21), 0);
    CHECK_EQ_INT(bench_max_at_floor(pts, 4, 9), 8);
    CHECK_EQ_INT(bench_max_at_floor(pts, 0, 9), 0);
}

/* ---- a real (quick) run on a tiny synthetic model ---- */

static bench_params quick_params(void) {
    bench_params p = bench_default_params();
    bench_make_quick(&p);
    p.n_threads = 2;
    p.bw_bytes = 16u << 20;
    p.shape_id = "llama3.2-1b"; /* a label: the planner's reader wants a catalog id or "" */
    return p;
}

static double middle_of_three(const double *v) {
    return fmax(fmin(v[0], v[1]), fmin(fmax(v[0], v[1]), v[2]));
}

static void check_points(const bench_point_result *pts, int n, bool batched, int passes) {
    for (int i = 0; i < n; i++) {
        const bench_point_result *pt = &pts[i];
        CHECK_EQ_INT(pt->n_passes, passes);
        double slowest_pass = INFINITY;
        for (int w = 0; w < pt->n_passes; w++) slowest_pass = fmin(slowest_pass, pt->pass_min_tok_s[w]);
        CHECK(slowest_pass > 0 && pt->min_tok_s >= slowest_pass); /* each session's median >= its worst */
        /* batched sessions share every step: the point's speed is the median pass's */
        if (batched && passes == 1) CHECK_NEAR(pt->min_tok_s, pt->pass_min_tok_s[0], 0);
        if (batched && passes == 3) CHECK_NEAR(pt->min_tok_s, middle_of_three(pt->pass_min_tok_s), 0);
        CHECK(pt->min_tok_s > 0 && pt->min_tok_s <= pt->median_tok_s && pt->median_tok_s <= pt->max_tok_s);
        double sum = 0;
        for (int s = 0; s < pt->sessions; s++) sum += pt->session_tok_s[s];
        CHECK_NEAR(pt->aggregate_tok_s, sum, 1e-9 * sum);
        if (batched) { /* lock-step: every session at the step rate */
            CHECK_EQ_INT(pt->partitions, 1);
            CHECK_NEAR(pt->aggregate_tok_s, pt->sessions * pt->min_tok_s, 1e-9 * pt->aggregate_tok_s);
        } else {
            CHECK_EQ_INT(pt->partitions, pt->sessions);
        }
        CHECK(pt->prefill_s > 0 && pt->decode_s > 0);
        if (i > 0) CHECK(pt->sessions > pts[i - 1].sessions); /* sorted, no repeats */
    }
}

static void test_run(const model *m) {
    bench_params p = quick_params();
    p.floor_tok_s = 1e-6; /* every point keeps it: the sweeps run to their caps */
    bench_result r;
    rl_err err = {0};
    CHECKF(bench_run(m, &p, &r, &err) == 0, "%s", err.msg);
    CHECK(r.bandwidth_gbs > 0 && r.roofline_tok_s > 0);
    CHECK_EQ_INT(r.n_bw, 2); /* before and after the single-stream tests; the best counts */
    CHECK(r.bandwidth_gbs == fmax(r.bw_runs_gbs[0], r.bw_runs_gbs[1]));
    CHECK_EQ_INT(r.n_pp, 1);
    CHECK(r.pp[0].median > 0 && strcmp(r.pp[0].name, "pp16") == 0);
    CHECK(r.have_tg && r.tg.median > 0 && strcmp(r.tg.name, "tg16") == 0);
    /* KV bytes per token: 2 layers x (K + V) x 2 KV heads x 32 x 2 bytes (F16) */
    CHECK_EQ_INT(r.kv_bytes_per_token, 2 * 2 * 2 * 32 * 2);
    CHECK_EQ_INT(r.ctx, 16);
    CHECK_NEAR(r.bytes_per_token, (double)model_bytes_per_token(m) + 512.0 * 16, 0.5);
    CHECK_NEAR(r.roofline_tok_s, r.bandwidth_gbs * 1e9 / r.bytes_per_token, 1e-9 * r.roofline_tok_s);
    /* the int8 peak: threads x reported clock x the kernels' ops per cycle;
     * the compute fraction from the fastest batch */
    CHECK(r.int8_ops_per_cycle >= 2);
    CHECK_NEAR(r.int8_peak_ops, r.threads * r.ghz * 1e9 * r.int8_ops_per_cycle, 1e-6 * r.int8_peak_ops + 1e-9);
    CHECK_NEAR(r.matrix_ops_per_token, shape_flops_per_token(&m->shape, 0) - shape_attention_flops(&m->shape, 0), 0);
    double fastest = 0;
    for (int i = 0; i < r.n_batched; i++) fastest = fmax(fastest, r.batched[i].aggregate_tok_s);
    if (r.ghz > 0) CHECK_NEAR(bench_compute_fraction(&r), fastest * r.matrix_ops_per_token / r.int8_peak_ops, 1e-12);
    /* the quick sweep: 1, 2, 4 batched (cap 4), 1, 2 partitioned (2 threads) */
    CHECK_EQ_INT(r.n_batched, 3);
    CHECK_EQ_INT(r.n_partitioned, 2);
    check_points(r.batched, r.n_batched, true, 1);
    check_points(r.partitioned, r.n_partitioned, false, 1);
    CHECK_EQ_INT(r.max_batched, 4);
    CHECK_EQ_INT(r.max_partitioned, 2);

    /* the JSON, read by the planner's reader */
    char path[] = "/tmp/rackllm-test-bench-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    CHECKF(bench_write_json(&r, path, &err) == 0, "%s", err.msg);
    bench_json b;
    CHECKF(bench_json_load(path, &b, &err) == 0, "%s", err.msg);
    unlink(path);
    CHECK_STR(b.shape, "llama3.2-1b");
    CHECK_STR(b.type, "q8_0");
    CHECK_EQ_INT(b.threads, 2);
    CHECK(b.cores >= 1);
    CHECK_NEAR(b.params, (double)m->n_params, 0.5);
    CHECK_NEAR(b.weight_bytes, (double)m->weight_bytes, 0.5);
    CHECK_NEAR(b.bytes_per_token, r.bytes_per_token, 1e-6 * r.bytes_per_token);
    CHECK_NEAR(b.bandwidth_gbs, r.bandwidth_gbs, 1e-9 * r.bandwidth_gbs);
    CHECK_NEAR(b.decode_tok_s, r.tg.median, 1e-9 * r.tg.median); /* the tgN entry, the only one */
    CHECK_NEAR(b.floor_tok_s, 1e-6, 1e-12);
    CHECK_EQ_INT(b.prompt_len, 16);
    CHECK_EQ_INT(b.gen_len, 8);
    CHECK_EQ_INT(b.n_batched, r.n_batched);
    CHECK_EQ_INT(b.n_partitioned, r.n_partitioned);
    for (int i = 0; i < b.n_batched; i++) {
        CHECK_EQ_INT(b.batched[i].sessions, r.batched[i].sessions);
        CHECK_EQ_INT(b.batched[i].partitions, 1);
        CHECK_NEAR(b.batched[i].aggregate_tok_s, b.batched[i].sessions * b.batched[i].min_tok_s,
                   1e-9 * b.batched[i].aggregate_tok_s);
    }
    for (int i = 0; i < b.n_partitioned; i++) CHECK_EQ_INT(b.partitioned[i].partitions, b.partitioned[i].sessions);
    CHECK_EQ_INT(b.max_batched, bench_json_max_at_floor(b.batched, b.n_batched, b.floor_tok_s));
    CHECK_EQ_INT(b.max_partitioned, bench_json_max_at_floor(b.partitioned, b.n_partitioned, b.floor_tok_s));
    CHECK_EQ_INT(b.max_batched, 4);

    /* the SVG: a marker per point in each panel, the floor line */
    char *svg = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&svg, &len);
    CHECK(mem && benchsvg_write(mem, &r, &err) == 0);
    if (mem) fclose(mem);
    if (svg) {
        CHECK(strncmp(svg, "<?xml", 5) == 0 && strstr(svg, "</svg>") != NULL);
        int circles = 0, rects = 0;
        for (const char *q = svg; (q = strstr(q, "<circle")) != NULL; q++) circles++;
        for (const char *q = svg; (q = strstr(q, "<rect x=")) != NULL; q++) rects++;
        CHECK_EQ_INT(circles, 2 * r.n_batched + 1);        /* + the legend's */
        CHECK_EQ_INT(rects, 2 * r.n_partitioned + 1 + 2);  /* + the legend's, + two panel frames */
        CHECK(strstr(svg, "floor: 1e-06 tok/s") != NULL);
        CHECK(strstr(svg, "4 sessions at") != NULL);
    }
    free(svg);
    bench_result_free(&r);
}

static void test_floors_and_lists(const model *m) {
    rl_err err = {0};
    bench_result r;
    /* nobody keeps a floor of 1e9 tok/s: one point per sweep, answers 0 */
    bench_params p = quick_params();
    p.floor_tok_s = 1e9;
    p.single = false;
    CHECKF(bench_run(m, &p, &r, &err) == 0, "%s", err.msg);
    CHECK(r.n_pp == 0 && !r.have_tg);
    CHECK_EQ_INT(r.n_bw, 1);
    CHECK_EQ_INT(r.n_batched, 1);
    CHECK_EQ_INT(r.n_partitioned, 1);
    CHECK_EQ_INT(r.max_batched, 0);
    CHECK_EQ_INT(r.max_partitioned, 0);
    char path[] = "/tmp/rackllm-test-bench-XXXXXX";
    int fd = mkstemp(path);
    if (fd >= 0) close(fd);
    bench_json b;
    CHECK(bench_write_json(&r, path, &err) == 0 && bench_json_load(path, &b, &err) == 0);
    CHECK_EQ_INT(b.max_batched, 0);
    CHECK(b.decode_tok_s == 0); /* --sweep-only: no decode test in the file */
    unlink(path);
    bench_result_free(&r);

    /* explicit sizes are measured as given, reported in order */
    p = quick_params();
    p.single = false;
    p.sessions[0] = 3;
    p.sessions[1] = 1;
    p.n_sessions = 2;
    p.partitions[0] = 2;
    p.n_partitions = 1;
    CHECKF(bench_run(m, &p, &r, &err) == 0, "%s", err.msg);
    CHECK(r.n_batched == 2 && r.batched[0].sessions == 1 && r.batched[1].sessions == 3);
    CHECK(r.n_partitioned == 1 && r.partitioned[0].sessions == 2);
    check_points(r.batched, r.n_batched, true, 1);
    check_points(r.partitioned, r.n_partitioned, false, 1);
    bench_result_free(&r);

    /* three passes over the points: each session's speed is the median of
     * its three; given sizes stay as given, the automatic search may add
     * sizes (measured three times each) but never repeats one */
    p = quick_params();
    p.single = false;
    p.sweep_repeat = 3;
    p.sessions[0] = 2;
    p.n_sessions = 1;
    CHECKF(bench_run(m, &p, &r, &err) == 0, "%s", err.msg);
    CHECK_EQ_INT(r.sweep_repeat, 3);
    CHECK(r.n_batched == 1 && r.batched[0].sessions == 2);
    CHECK_EQ_INT(r.n_partitioned, 2);
    check_points(r.batched, r.n_batched, true, 3);
    check_points(r.partitioned, r.n_partitioned, false, 3);
    bench_result_free(&r);

    /* an automatic sweep with passes, against a floor between the 2- and
     * 4-session speeds of a first run: whatever the medians come to, the
     * floor ends bracketed by neighbouring sizes (the bisection is redone
     * on the medians), every size measured three times */
    p = quick_params();
    p.single = false;
    p.partitioned = false;
    CHECKF(bench_run(m, &p, &r, &err) == 0, "%s", err.msg);
    CHECK(r.n_batched == 3 && r.batched[1].sessions == 2 && r.batched[2].sessions == 4);
    if (r.n_batched == 3) p.floor_tok_s = sqrt(r.batched[1].min_tok_s * r.batched[2].min_tok_s);
    bench_result_free(&r);
    p.sweep_repeat = 3;
    CHECKF(bench_run(m, &p, &r, &err) == 0, "%s", err.msg);
    check_points(r.batched, r.n_batched, true, 3);
    int lo = r.max_batched, next = 0;
    for (int i = 0; i < r.n_batched; i++)
        if (r.batched[i].sessions > lo && (!next || r.batched[i].sessions < next)) next = r.batched[i].sessions;
    CHECKF(lo == 0 || next == 0 || next == lo + 1, "floor %g: %d kept it, next size measured %d", p.floor_tok_s, lo, next);
    bench_result_free(&r);

    /* bad parameters */
    p = quick_params();
    p.sweep_repeat = 0;
    err = (rl_err){0};
    CHECK(bench_run(m, &p, &r, &err) == -1 && err.code == RL_ERR_INPUT);
    bench_result_free(&r);
    p = quick_params();
    p.partitions[0] = 3; /* more partitions than the 2 threads */
    p.n_partitions = 1;
    err = (rl_err){0};
    CHECK(bench_run(m, &p, &r, &err) == -1 && err.code == RL_ERR_INPUT);
    bench_result_free(&r);
    p = quick_params();
    p.gen_len = 1;
    err = (rl_err){0};
    CHECK(bench_run(m, &p, &r, &err) == -1 && err.code == RL_ERR_INPUT);
    bench_result_free(&r);
    p = quick_params();
    p.n_ctx = 10; /* the tests need more */
    err = (rl_err){0};
    CHECK(bench_run(m, &p, &r, &err) == -1 && err.code == RL_ERR_INPUT);
    bench_result_free(&r);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(test_lists);
    RUN(test_search);
    RUN(test_max_at_floor);
    void *data = NULL;
    model *m = tiny_model("q8_0", 1, &data);
    CHECK(m != NULL);
    if (m) {
        RUN_WITH(test_run, m);
        RUN_WITH(test_floors_and_lists, m);
        model_free(m);
    }
    free(data);
    return test_report("test_bench");
}
