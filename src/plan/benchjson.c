/*
 * benchjson.c — the reader of docs/bench-json.md (see benchjson.h).
 */
#include "benchjson.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BENCH_MAX_FILE (16u << 20)

static const cJSON *item(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

/* A number at key: absent -> def; present but not a finite number -> error. */
static int number(const cJSON *o, const char *key, double def, double *out, const char *name, rl_err *err) {
    const cJSON *v = item(o, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return rl_fail(err, RL_ERR_INPUT, "%s: '%s' must be a number", name, key);
    *out = v->valuedouble;
    return 0;
}

/* A non-negative whole number below 2^31. */
static int count(const cJSON *o, const char *key, int def, int *out, const char *name, rl_err *err) {
    double d;
    if (number(o, key, def, &d, name, err)) return -1;
    if (d < 0 || d > 2147483647.0 || d != floor(d))
        return rl_fail(err, RL_ERR_INPUT, "%s: '%s' must be a whole number >= 0", name, key);
    *out = (int)d;
    return 0;
}

static void string(const cJSON *o, const char *key, char *out, size_t size) {
    const cJSON *v = item(o, key);
    if (cJSON_IsString(v)) snprintf(out, size, "%s", v->valuestring);
}

/* A point's optional pass_min_tok_s: numbers >= 0, at most
 * BENCH_MAX_PASSES. */
static int pass_speeds(const cJSON *arr, bench_point *p, const char *name, const char *what, int i, rl_err *err) {
    p->n_passes = 0;
    if (!arr) return 0;
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > BENCH_MAX_PASSES)
        return rl_fail(err, RL_ERR_INPUT, "%s: sweep.%s point %d: pass_min_tok_s must be an array of at most %d numbers",
                       name, what, i, BENCH_MAX_PASSES);
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) {
        if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || !isfinite(v->valuedouble))
            return rl_fail(err, RL_ERR_INPUT, "%s: sweep.%s point %d: pass_min_tok_s holds something not a number >= 0",
                           name, what, i);
        p->pass_min_tok_s[p->n_passes++] = v->valuedouble;
    }
    return 0;
}

static int points(const cJSON *arr, const char *what, bench_point *out, int *n, const char *name, rl_err *err) {
    *n = 0;
    if (!arr) return 0;
    if (!cJSON_IsArray(arr)) return rl_fail(err, RL_ERR_INPUT, "%s: sweep.%s must be an array", name, what);
    if (cJSON_GetArraySize(arr) > BENCH_MAX_POINTS)
        return rl_fail(err, RL_ERR_INPUT, "%s: sweep.%s has more than %d points", name, what, BENCH_MAX_POINTS);
    const cJSON *pt;
    cJSON_ArrayForEach(pt, arr) {
        bench_point *p = &out[(*n)++];
        if (!cJSON_IsObject(pt)) return rl_fail(err, RL_ERR_INPUT, "%s: sweep.%s holds a non-object", name, what);
        if (count(pt, "partitions", 1, &p->partitions, name, err) || count(pt, "sessions", 0, &p->sessions, name, err) ||
            number(pt, "min_tok_s", 0, &p->min_tok_s, name, err) ||
            number(pt, "median_tok_s", 0, &p->median_tok_s, name, err) ||
            number(pt, "aggregate_tok_s", 0, &p->aggregate_tok_s, name, err))
            return -1;
        if (p->sessions < 1 || p->partitions < 1 || p->min_tok_s < 0 || p->aggregate_tok_s < 0)
            return rl_fail(err, RL_ERR_INPUT, "%s: sweep.%s point %d: sessions and partitions must be >= 1, speeds >= 0",
                           name, what, *n);
        if (pass_speeds(item(pt, "pass_min_tok_s"), p, name, what, *n, err)) return -1;
    }
    return 0;
}

/* decode_tok_s.tg128, or the first entry if tg128 is absent. */
static int decode_rate(const cJSON *root, double *out, const char *name, rl_err *err) {
    const cJSON *d = item(root, "decode_tok_s");
    *out = 0;
    if (!d) return 0;
    if (!cJSON_IsObject(d)) return rl_fail(err, RL_ERR_INPUT, "%s: decode_tok_s must be an object", name);
    const cJSON *v = item(d, "tg128");
    if (!v) v = d->child;
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || !isfinite(v->valuedouble))
        return rl_fail(err, RL_ERR_INPUT, "%s: decode_tok_s.%s must be a number >= 0", name, v->string);
    *out = v->valuedouble;
    return 0;
}

static int parse_root(const cJSON *root, const char *name, bench_json *b, rl_err *err) {
    const cJSON *ver = item(root, "rackllm_bench");
    if (!cJSON_IsNumber(ver) || ver->valuedouble != BENCH_JSON_VERSION)
        return rl_fail(err, RL_ERR_INPUT, "%s: not a rackllm bench JSON of version %d (key rackllm_bench)", name,
                       BENCH_JSON_VERSION);
    const cJSON *machine = item(root, "machine"), *model = item(root, "model");
    if (machine) {
        string(machine, "cpu", b->cpu, sizeof b->cpu);
        if (count(machine, "cores", 0, &b->cores, name, err) || count(machine, "threads", 0, &b->threads, name, err))
            return -1;
    }
    if (!cJSON_IsObject(model)) return rl_fail(err, RL_ERR_INPUT, "%s: missing object 'model'", name);
    string(model, "shape", b->shape, sizeof b->shape);
    string(model, "type", b->type, sizeof b->type);
    if (number(model, "params", 0, &b->params, name, err) ||
        number(model, "weight_bytes", 0, &b->weight_bytes, name, err) ||
        number(model, "bytes_per_token", 0, &b->bytes_per_token, name, err) ||
        number(model, "kv_bytes_per_token", 0, &b->kv_bytes_per_token, name, err) ||
        count(root, "ctx", 0, &b->ctx, name, err) || number(root, "floor", 10, &b->floor_tok_s, name, err) ||
        number(root, "bandwidth_gbs", 0, &b->bandwidth_gbs, name, err) ||
        number(root, "roofline_tok_s", 0, &b->roofline_tok_s, name, err) || decode_rate(root, &b->decode_tok_s, name, err))
        return -1;
    if (b->bandwidth_gbs < 0 || b->bytes_per_token < 0 || b->weight_bytes < 0 || b->kv_bytes_per_token < 0 ||
        !(b->floor_tok_s > 0))
        return rl_fail(err, RL_ERR_INPUT, "%s: bandwidth, byte counts must be >= 0 and the floor > 0", name);

    const cJSON *sweep = item(root, "sweep");
    if (sweep) {
        if (!cJSON_IsObject(sweep)) return rl_fail(err, RL_ERR_INPUT, "%s: sweep must be an object", name);
        if (count(sweep, "prompt_len", 0, &b->prompt_len, name, err) ||
            count(sweep, "gen_len", 0, &b->gen_len, name, err) ||
            points(item(sweep, "batched"), "batched", b->batched, &b->n_batched, name, err) ||
            points(item(sweep, "partitioned"), "partitioned", b->partitioned, &b->n_partitioned, name, err))
            return -1;
    }
    b->max_batched = b->max_partitioned = -1;
    const cJSON *mx = item(root, "max_sessions_at_floor");
    if (mx) {
        if (!cJSON_IsObject(mx)) return rl_fail(err, RL_ERR_INPUT, "%s: max_sessions_at_floor must be an object", name);
        if ((item(mx, "batched") && count(mx, "batched", 0, &b->max_batched, name, err)) ||
            (item(mx, "partitioned") && count(mx, "partitioned", 0, &b->max_partitioned, name, err)))
            return -1;
    }
    return 0;
}

int bench_json_parse(const char *text, size_t len, const char *name, bench_json *b, rl_err *err) {
    memset(b, 0, sizeof *b);
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (!root) return rl_fail(err, RL_ERR_INPUT, "%s: not valid JSON", name);
    int rc = cJSON_IsObject(root) ? parse_root(root, name, b, err)
                                  : rl_fail(err, RL_ERR_INPUT, "%s: the top level must be an object", name);
    cJSON_Delete(root);
    return rc;
}

int bench_json_load(const char *path, bench_json *b, rl_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return rl_fail(err, RL_ERR_INPUT, "%s: %s", path, strerror(errno));
    char *buf = malloc(BENCH_MAX_FILE + 1);
    if (!buf) {
        fclose(f);
        return rl_fail(err, RL_ERR_INTERNAL, "out of memory reading %s", path);
    }
    size_t n = fread(buf, 1, BENCH_MAX_FILE + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc;
    if (bad) rc = rl_fail(err, RL_ERR_INPUT, "%s: read error", path);
    else if (n > BENCH_MAX_FILE) rc = rl_fail(err, RL_ERR_INPUT, "%s: larger than 16 MiB, not a bench JSON", path);
    else rc = bench_json_parse(buf, n, path, b, err);
    free(buf);
    return rc;
}

bool bench_json_has_sweep(const bench_json *b) { return b->n_batched > 0 || b->max_batched >= 0; }

const bench_point *bench_json_batched_at(const bench_json *b, int sessions) {
    for (int i = 0; i < b->n_batched; i++)
        if (b->batched[i].sessions == sessions) return &b->batched[i];
    return NULL;
}

int bench_json_max_at_floor(const bench_point *pts, int n, double floor_tok_s) {
    int best = 0;
    for (int i = 0; i < n; i++)
        if (pts[i].min_tok_s >= floor_tok_s && pts[i].sessions > best) best = pts[i].sessions;
    return best;
}

double bench_json_capacity(const bench_point *pts, int n, double floor_tok_s) {
    int lo = bench_json_max_at_floor(pts, n, floor_tok_s);
    if (lo == 0) return 0;
    const bench_point *a = NULL, *b = NULL;
    for (int i = 0; i < n; i++) {
        if (pts[i].sessions == lo && pts[i].min_tok_s >= floor_tok_s) a = &pts[i];
        if (pts[i].sessions > lo && (!b || pts[i].sessions < b->sessions)) b = &pts[i];
    }
    if (!b || !(b->min_tok_s > 0)) return lo; /* nothing above, or a stalled point: lo is what is known */
    double t_lo = 1 / a->min_tok_s, t_hi = 1 / b->min_tok_s, t_f = 1 / floor_tok_s;
    if (!(t_hi > t_lo)) return lo;
    return lo + (b->sessions - lo) * (t_f - t_lo) / (t_hi - t_lo);
}

/* Which half pass i of n belongs to: A B A B ... for an odd n (the two
 * halves then centre on the same moment), A B B A A B B A ... for an even
 * one (the same, pair by pair). */
static int half_of(int i, int n) {
    if (n % 2) return i % 2;
    return (i % 4 == 1 || i % 4 == 2);
}

bool bench_json_halves(const bench_point *pts, int n, double floor_tok_s, bench_halves *h) {
    memset(h, 0, sizeof *h);
    if (n < 1 || n > BENCH_MAX_POINTS) return false;
    int passes = pts[0].n_passes;
    for (int i = 0; i < n; i++)
        if (pts[i].n_passes != passes) return false;
    if (passes < 2) return false;
    bench_point half[2][BENCH_MAX_POINTS];
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < n; i++) {
            double v[BENCH_MAX_PASSES];
            int m = 0;
            for (int r = 0; r < passes; r++)
                if (half_of(r, passes) == k) v[m++] = pts[i].pass_min_tok_s[r];
            half[k][i] = pts[i];
            half[k][i].min_tok_s = rl_median(v, m);
            h->passes[k] = m;
        }
        h->sessions[k] = bench_json_max_at_floor(half[k], n, floor_tok_s);
        h->capacity[k] = bench_json_capacity(half[k], n, floor_tok_s);
    }
    return true;
}
