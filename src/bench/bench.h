/*
 * bench.h — how fast the engine runs a model on this machine, and how many
 * sessions it holds at a floor speed (`rackllm bench`).
 *
 * One run measures, the way llama-bench and llama-batched-bench do:
 *  - memory bandwidth: a streaming read with every thread over a buffer far
 *    larger than the caches (machine_bandwidth, the planner's too), before
 *    the tests and again after prefill and decode, the best counting; and
 *    the roofline it implies for one stream (bandwidth / bytes read per
 *    decoded token);
 *  - prefill, ppN: one sequence's prompt of N tokens, in tok/s;
 *  - decode, tgN: one sequence generating N tokens one at a time (from an
 *    empty context, as llama-bench's tg);
 *  - the session sweep: N sequences each prefill a prompt, then generate
 *    together, either batched (one engine, all threads: every weight matrix
 *    read once per step for all of them) or partitioned (K engines, each
 *    pinned to its own cores, split as the server splits them
 *    (machine_partition_cpus), and driven by its own thread, one session
 *    each). For every point the generation speed of each session (tokens
 *    after its first, divided by the time from its first to its last; with
 *    --sweep-repeat N, the median of N passes over all the points, taken
 *    backwards and forwards in turn so that a drift of the machine's speed
 *    reaches every point alike), the slowest, the median and the sum; and
 *    the most sessions whose slowest one keeps the floor. The sweep
 *    doubles N until the speed is clearly below the floor (and N is at
 *    least 8, so that the largest batch shows the machine's compute limit),
 *    then bisects between the last point above and the first below, so the
 *    answer is not just a power of two (with passes: again on the medians).
 * Generation is greedy (argmax of the logits), as a server would sample.
 *
 * The results are plain numbers in bench_result: bench_write_json writes
 * them in the format of docs/bench-json.md (the planner's input),
 * bench_print the human table, benchsvg.h draws the sweep.
 */
#ifndef RACKLLM_BENCH_H
#define RACKLLM_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/common.h"
#include "model/model.h"

#define BENCH_MAX_LIST 16     /* entries of --pp, --sessions, --partitions */
#define BENCH_MAX_RUNS 32     /* --repeat */
#define BENCH_MAX_POINTS_SWEEP 64
#define BENCH_MAX_SESSIONS 4096

typedef struct bench_params {
    int n_threads;           /* 0: every CPU this process may use */
    int n_ctx;               /* KV cache per sequence; 0: just what the tests need */
    double floor_tok_s;      /* per-session speed to hold (10) */
    int pp[BENCH_MAX_LIST];  /* prefill tests (128, 512) */
    int n_pp;
    int tg;                  /* decode test length (128); 0: none */
    int repeat;              /* runs of each pp/tg test (3) */
    int prompt_len, gen_len; /* each sweep session's (128, 64) */
    int sweep_repeat;        /* passes over the sweep's points (1); each session's
                                speed is the median of its passes */
    int sessions[BENCH_MAX_LIST]; /* batched sweep; none: 1, 2, 4, ... then bisect */
    int n_sessions;
    int partitions[BENCH_MAX_LIST]; /* partitioned sweep; none: 1, 2, 4, ... threads */
    int n_partitions;
    bool partitioned;        /* run the partitioned sweep (true) */
    int max_sessions;        /* cap of the automatic sweep (256) */
    int min_sessions;        /* ... which goes at least this far (8), even below
                                the floor: its largest batch shows the compute
                                limit the planner calibrates with */
    bool sweep;              /* run the session sweep (true) */
    bool single;             /* run pp and tg (true); false for --sweep-only */
    uint64_t bw_bytes;       /* bandwidth probe buffer; 0: 1 GiB (at most 1/8 of RAM) */
    uint64_t seed;           /* prompt tokens */
    bool progress;           /* progress bars on a TTY */
    FILE *log;               /* a line per finished measurement, or NULL */
    const char *shape_id;    /* labels for the report; NULL: from the model */
    const char *type_name;
} bench_params;

bench_params bench_default_params(void);
/* --quick: short prompts and generations, one run each, small sweeps, a
 * small bandwidth buffer; for tests and CI (the numbers are rough). */
void bench_make_quick(bench_params *p);

/* One ppN or tgN test. */
typedef struct bench_timing {
    char name[16];           /* "pp512", "tg128" */
    int n_tokens;
    int n_runs;
    double tok_s[BENCH_MAX_RUNS];
    double median;
} bench_timing;

/* One point of a sweep. A session's speed is the median over the point's
 * passes (sweep_repeat measurements, each with its own prefill, taken in
 * alternating order across the points); min/median/max/aggregate are over
 * those session speeds. */
typedef struct bench_point_result {
    int partitions, sessions, threads; /* threads: in all */
    double min_tok_s, median_tok_s, max_tok_s, aggregate_tok_s;
    double prefill_s, decode_s;         /* wall time of the two phases, all passes */
    double *session_tok_s;              /* `sessions` entries */
    double pass_min_tok_s[BENCH_MAX_RUNS]; /* each pass's slowest session */
    int n_passes;
    double *runs;                       /* n_passes x sessions: every pass's speeds */
    int *part_threads;                  /* partitioned: each partition's threads (machine_split) */
    int *part_cpus;                     /* ... the CPUs they were pinned to, partition after partition */
} bench_point_result;

typedef struct bench_result {
    /* machine */
    char cpu[128];
    char features[512];      /* instruction-set features the kernels care about, space-separated */
    char kernels[16];        /* the kernel level in use */
    int cpus, threads;
    double ghz;              /* the clock /proc/cpuinfo reports (0: unknown) */
    double int8_ops_per_cycle; /* per core, for these kernels (machine_peak_per_cycle) */
    double int8_peak_ops;    /* threads x ghz x that: the int8 peak of the threads used */
    double matrix_ops_per_token; /* int8 ops of the weight products per token (2 per multiply-add) */
    /* model */
    char shape[48], name[64], type[24];
    uint32_t n_layer;
    uint64_t params, weight_bytes, weight_bytes_per_token, kv_bytes_per_token;
    /* single stream */
    int n_ctx;               /* KV cache per sequence in the tests */
    int ctx;                 /* context the single-stream decode reaches (= tg length) */
    double bytes_per_token;  /* weights read per token + KV read at ctx */
    double floor_tok_s;
    double bandwidth_gbs, roofline_tok_s; /* the best probe, and what it implies */
    double bw_runs_gbs[4];   /* each probe: before the tests, after the single-stream ones */
    int n_bw;
    bench_timing pp[BENCH_MAX_LIST];
    int n_pp;
    bench_timing tg;
    bool have_tg;
    /* sweep */
    bool have_sweep;
    int prompt_len, gen_len, sweep_repeat;
    bench_point_result batched[BENCH_MAX_POINTS_SWEEP], partitioned[BENCH_MAX_POINTS_SWEEP];
    int n_batched, n_partitioned;
    bool have_partitioned;
    int max_batched, max_partitioned; /* most sessions at the floor */
    int repeat;
    double seconds;          /* the whole run */
} bench_result;

/* Runs everything `p` asks for on model `m`. */
int bench_run(const model *m, const bench_params *p, bench_result *r, rl_err *err);
void bench_result_free(bench_result *r);

/* The search of the automatic sweep, on any probe (tests give it a
 * formula): probe(ctx, n) is the slowest session's tok/s with n sessions,
 * < 0 for an error. Sizes 1, 2, 4, ... up to cap until one is clearly below
 * the floor (under 90% of it, or two in a row below it) and at least
 * min_size; then bisection
 * between the largest size that kept the floor and the smallest larger one
 * that did not, until they are within 1/16 of each other. The sizes probed
 * and their speeds go to sizes[], speeds[] (at most max); -1 if a probe
 * failed. */
typedef double (*bench_probe_fn)(void *ctx, int n);
int bench_search(bench_probe_fn probe, void *ctx, int cap, int min_size, double floor_tok_s, int *sizes, double *speeds,
                 int max, int *n);

/* The most sessions among points whose slowest session kept the floor. */
int bench_max_at_floor(const bench_point_result *pts, int n, double floor_tok_s);

/* The largest batched sweep point's int8 ops per second (aggregate tok/s x
 * matrix_ops_per_token) as a fraction of int8_peak_ops; 0 if unknown. The
 * clock is the one the system reports: a CPU boosting above it makes this
 * look higher than it is. */
double bench_compute_fraction(const bench_result *r);

int bench_write_json(const bench_result *r, const char *path, rl_err *err);
void bench_print(const bench_result *r, FILE *out);

/* "1,2,4" -> {1, 2, 4}: whole numbers in [lo, hi], at most max of them. */
int bench_parse_list(const char *s, int lo, int hi, int *out, int max, int *n);

#endif
