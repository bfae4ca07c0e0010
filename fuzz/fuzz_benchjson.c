/*
 * fuzz_benchjson.c — libFuzzer target for the bench JSON reader (see
 * src/plan/benchjson.h), which `rackllm plan --calibrate / --verify-from` runs on
 * files a user hands it: any bytes must give either a bench_json whose
 * fields are all in the ranges the reader promises or an input error naming
 * the file, never a crash, a hang or a leak. Whatever parses then goes
 * through every helper the planner calls on it, whose results must stay in
 * their own promised ranges.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "plan/benchjson.h"

static void check_points(const bench_point *pts, int n, double floor_tok_s) {
    if (n < 0 || n > BENCH_MAX_POINTS) abort();
    int most = 0;
    for (int i = 0; i < n; i++) {
        const bench_point *p = &pts[i];
        if (p->sessions < 1 || p->partitions < 1 || !(p->min_tok_s >= 0) || !(p->aggregate_tok_s >= 0)) abort();
        if (p->n_passes < 0 || p->n_passes > BENCH_MAX_PASSES) abort();
        for (int r = 0; r < p->n_passes; r++)
            if (!(p->pass_min_tok_s[r] >= 0) || !isfinite(p->pass_min_tok_s[r])) abort();
        if (p->min_tok_s >= floor_tok_s && p->sessions > most) most = p->sessions;
    }
    int kept = bench_json_max_at_floor(pts, n, floor_tok_s);
    if (kept != most) abort();
    /* The crossing lies between the most sessions kept and the next point. */
    double cap = bench_json_capacity(pts, n, floor_tok_s);
    if (kept == 0 ? cap != 0 : !(cap >= kept)) abort();
    bench_halves h;
    if (bench_json_halves(pts, n, floor_tok_s, &h)) {
        for (int k = 0; k < 2; k++)
            if (h.sessions[k] < 0 || h.passes[k] < 1 || (h.sessions[k] == 0 ? h.capacity[k] != 0 : !(h.capacity[k] >= h.sessions[k])))
                abort();
        if (h.passes[0] + h.passes[1] != pts[0].n_passes) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1 << 20)) return 0;
    bench_json b;
    rl_err err = {0};
    if (bench_json_parse((const char *)data, size, "fuzz", &b, &err) != 0) {
        if (err.code != RL_ERR_INPUT || !err.msg[0]) abort(); /* a rejection names what is wrong */
        return 0;
    }
    if (!(b.floor_tok_s > 0) || b.bandwidth_gbs < 0 || b.weight_bytes < 0 || b.bytes_per_token < 0) abort();
    check_points(b.batched, b.n_batched, b.floor_tok_s);
    check_points(b.partitioned, b.n_partitioned, b.floor_tok_s);
    for (int i = 0; i < b.n_batched; i++) {
        const bench_point *at = bench_json_batched_at(&b, b.batched[i].sessions);
        if (!at || at->sessions != b.batched[i].sessions) abort();
    }
    return 0;
}
