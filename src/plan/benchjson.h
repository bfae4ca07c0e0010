/*
 * benchjson.h — reading the JSON that `rackllm bench --json FILE` writes.
 *
 * The file is the interface between the bench (which measures) and the
 * planner (which predicts, calibrates and verifies); its contract is
 * docs/bench-json.md. The reader checks what it uses — the version, the
 * numbers' types and signs, the sweep's sizes — and ignores what it does
 * not know, so the bench can add fields without breaking the planner.
 */
#ifndef RACKLLM_BENCHJSON_H
#define RACKLLM_BENCHJSON_H

#include <stdbool.h>
#include <stddef.h>

#include "base/common.h"

#define BENCH_JSON_VERSION 1
#define BENCH_MAX_POINTS 64
#define BENCH_MAX_PASSES 32

/* One point of a session sweep. */
typedef struct bench_point {
    int partitions;          /* 1 for the batched sweep */
    int sessions;            /* concurrent sessions in all */
    double min_tok_s, median_tok_s, aggregate_tok_s;
    double pass_min_tok_s[BENCH_MAX_PASSES]; /* each pass's slowest session (optional) */
    int n_passes;
} bench_point;

typedef struct bench_json {
    char cpu[128];
    int cores, threads;
    char shape[48];          /* model.shape: a catalog id, or "" */
    char type[24];           /* model.type: "q4_0" */
    double params, weight_bytes, bytes_per_token, kv_bytes_per_token;
    int ctx;
    double floor_tok_s;
    double bandwidth_gbs;    /* measured streaming read */
    double roofline_tok_s;
    double decode_tok_s;     /* decode_tok_s.tg128, or the first tgN */
    int prompt_len, gen_len; /* the sweep's (0: no sweep) */
    int n_batched, n_partitioned;
    bench_point batched[BENCH_MAX_POINTS], partitioned[BENCH_MAX_POINTS];
    int max_batched, max_partitioned; /* max_sessions_at_floor; -1 absent */
} bench_json;

/* Parses text (len bytes); `name` names it in messages. */
int bench_json_parse(const char *text, size_t len, const char *name, bench_json *b, rl_err *err);

/* Reads and parses a file (at most 16 MiB). */
int bench_json_load(const char *path, bench_json *b, rl_err *err);

/* Most sessions among sweep points whose slowest session kept the floor
 * (0 if none did). */
int bench_json_max_at_floor(const bench_point *pts, int n, double floor_tok_s);

/* Sessions at which the slowest session's speed meets the floor, as a
 * fraction: between the most sessions that kept the floor (lo) and the
 * next larger point (hi), step time 1/speed interpolated linearly:
 * lo + (hi - lo) (1/floor - 1/v_lo) / (1/v_hi - 1/v_lo). lo itself if no
 * larger point was measured; 0 if no point kept the floor. */
double bench_json_capacity(const bench_point *pts, int n, double floor_tok_s);

/* The measurement's own repeatability: a sweep whose points were each
 * measured in several passes, split into two interleaved halves that saw
 * the machine alike (odd pass counts A B A ..., even ones A B B A ...),
 * each half's point the median of its passes' slowest sessions. */
typedef struct bench_halves {
    int sessions[2];    /* bench_json_max_at_floor of each half */
    double capacity[2]; /* bench_json_capacity of each half */
    int passes[2];      /* passes in each half */
} bench_halves;

/* Fills h; false if some point has fewer than 2 passes or the points
 * differ in their number of passes. */
bool bench_json_halves(const bench_point *pts, int n, double floor_tok_s, bench_halves *h);

/* Whether the run measured a session sweep: points, or at least its
 * max_sessions_at_floor. */
bool bench_json_has_sweep(const bench_json *b);

/* The batched sweep's point with exactly `sessions` (NULL if none). */
const bench_point *bench_json_batched_at(const bench_json *b, int sessions);

#endif
