/*
 * bench.c — the measurements of `rackllm bench` (see bench.h).
 *
 * Every measurement drives the same engine API the server uses, with
 * "manual" sequences (no sampler inside the engine) so that the phases stay
 * apart as in llama-batched-bench: all prompts are prefilled first, then all
 * sessions generate together, each step feeding every session the argmax of
 * its last logits. Timings are wall-clock (rl_now) around engine steps.
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "base/machine.h"
#include "base/progress.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "base/types.h"
#include "engine/engine.h"
#include "engine/forward.h"
#include "engine/sampler.h"
#include "model/shape.h"
#include "text/tokenizer.h"
#include "tools/quantize.h"

#define WARMUP_PROMPT 32

bench_params bench_default_params(void) {
    bench_params p = {0};
    p.floor_tok_s = 10;
    p.pp[0] = 128;
    p.pp[1] = 512;
    p.n_pp = 2;
    p.tg = 128;
    p.repeat = 3;
    p.prompt_len = 128;
    p.gen_len = 64;
    p.sweep_repeat = 1;
    p.max_sessions = 256;
    p.min_sessions = 8;
    p.sweep = true;
    p.partitioned = true;
    p.single = true;
    p.seed = 42;
    return p;
}

void bench_make_quick(bench_params *p) {
    p->pp[0] = 16;
    p->n_pp = 1;
    p->tg = 16;
    p->repeat = 1;
    p->prompt_len = 16;
    p->gen_len = 8;
    p->max_sessions = 4;
    p->min_sessions = 1;
    p->bw_bytes = 64u << 20;
}

/* ---- the machine ---- */

/* The CPU, and the int8 peak of r->threads threads running r->kernels. */
static void describe_machine(bench_result *r) {
    machine_cpu c;
    machine_cpu_describe(&c);
    snprintf(r->cpu, sizeof r->cpu, "%s", c.model[0] ? c.model : "unknown CPU");
    machine_features(c.flags, r->features, sizeof r->features);
    double f16;
    machine_peak_per_cycle(&c, r->kernels, &r->int8_ops_per_cycle, &f16);
    r->ghz = c.ghz;
    r->int8_peak_ops = r->threads * c.ghz * 1e9 * r->int8_ops_per_cycle;
}

/* ---- the model ---- */

/* The catalog id whose shape this is, or "" (e.g. a model cut with --layers). */
static void catalog_id(const rl_shape *s, char *out, size_t size) {
    out[0] = 0;
    for (int i = 0; i < shape_catalog_count(); i++) {
        rl_shape c;
        rl_err err = {0};
        if (shape_catalog_get(i, &c, &err)) continue;
        if (c.n_vocab == s->n_vocab && c.n_embd == s->n_embd && c.n_layer == s->n_layer && c.n_head == s->n_head &&
            c.n_head_kv == s->n_head_kv && c.n_ff == s->n_ff && c.tied_embeddings == s->tied_embeddings) {
            snprintf(out, size, "%s", c.id);
            return;
        }
    }
}

static void describe_model(const model *m, const bench_params *p, bench_result *r) {
    if (p->shape_id) snprintf(r->shape, sizeof r->shape, "%s", p->shape_id);
    else catalog_id(&m->shape, r->shape, sizeof r->shape);
    if (p->type_name) {
        size_t i = 0;
        for (; p->type_name[i] && i + 1 < sizeof r->type; i++)
            r->type[i] = (char)(p->type_name[i] >= 'A' && p->type_name[i] <= 'Z' ? p->type_name[i] + 32 : p->type_name[i]);
        r->type[i] = 0;
    } else {
        quantize_file_type(m->file, r->type, sizeof r->type);
    }
    snprintf(r->name, sizeof r->name, "%s", m->shape.name[0] ? m->shape.name : r->shape);
    r->n_layer = m->shape.n_layer;
    r->params = m->n_params;
    r->weight_bytes = m->weight_bytes;
    r->weight_bytes_per_token = model_bytes_per_token(m);
    r->kv_bytes_per_token = shape_kv_bytes_per_token(&m->shape, 2.0); /* the engine's F16 cache */
    r->matrix_ops_per_token = shape_flops_per_token(&m->shape, 0) - shape_attention_flops(&m->shape, 0);
}

/* ---- shared helpers ---- */

typedef struct bench_ctx {
    const model *m;
    const bench_params *p;
    bench_result *r;
    int threads;
    int cpus[1024];          /* CPUs this process may use, in order */
    int n_cpus;
    int n_ctx_single, n_ctx_sweep;
    rl_rng rng;              /* prompt tokens (partitions seed their own) */
    progress prog;
    char label[96];
    uint64_t done;
} bench_ctx;

static void random_tokens(rl_rng *rng, int32_t *out, int n, int32_t n_vocab) {
    for (int i = 0; i < n; i++) out[i] = (int32_t)(rl_rng_next(rng) % (uint64_t)n_vocab);
}

static void phase(bench_ctx *B, uint64_t total, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void phase(bench_ctx *B, uint64_t total, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(B->label, sizeof B->label, fmt, ap);
    va_end(ap);
    B->done = 0;
    progress_start(&B->prog, B->label, total);
    if (!B->p->progress) B->prog.enabled = false;
}

static void advance(bench_ctx *B, uint64_t n) {
    B->done += n;
    progress_update(&B->prog, B->done);
}

static void log_line(bench_ctx *B, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_line(bench_ctx *B, const char *fmt, ...) {
    progress_done(&B->prog);
    if (!B->p->log) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", B->p->log);
    vfprintf(B->p->log, fmt, ap);
    fputc('\n', B->p->log);
    va_end(ap);
    fflush(B->p->log);
}

/* Steps until every sequence in s[] has consumed its input (manual
 * sequences: their logits are ready). */
static int run_until_idle(bench_ctx *B, engine *e, engine_seq **s, int n, bool show, rl_err *err) {
    for (;;) {
        bool pending = false;
        for (int i = 0; i < n && !pending; i++) pending = engine_seq_get_state(s[i]) != SEQ_IDLE;
        if (!pending) return 0;
        int k = engine_step(e, err);
        if (k < 0) return -1;
        if (k == 0) return rl_fail(err, RL_ERR_INTERNAL, "bench: the engine made no progress");
        if (show) advance(B, (uint64_t)k);
    }
}

/* One decode step for every sequence: feed it the argmax of its logits. */
static int decode_step(engine *e, engine_seq **s, int n, int32_t n_vocab, rl_err *err) {
    for (int i = 0; i < n; i++) {
        const float *logits = engine_seq_logits(s[i]);
        if (!logits) return rl_fail(err, RL_ERR_INTERNAL, "bench: a sequence has no logits");
        int32_t tok = sampler_argmax(logits, n_vocab);
        if (engine_seq_feed(s[i], &tok, 1, err)) return -1;
    }
    return run_until_idle(NULL, e, s, n, false, err);
}

/* ---- bandwidth ---- */

static int measure_bandwidth(bench_ctx *B, rl_err *err) {
    uint64_t bytes = B->p->bw_bytes ? B->p->bw_bytes : 1ull << 30, phys = machine_memory_bytes();
    if (phys > 0 && bytes > phys / 8) bytes = phys / 8;
    phase(B, 1, "bandwidth (%d threads, %llu MiB)", B->threads, (unsigned long long)(bytes >> 20));
    advance(B, 0);
    double gbs = 0;
    if (machine_bandwidth(B->threads, (size_t)bytes, &gbs, err)) return -1;
    bench_result *r = B->r;
    if (r->n_bw < (int)RL_ARRAY_LEN(r->bw_runs_gbs)) r->bw_runs_gbs[r->n_bw++] = gbs;
    r->bandwidth_gbs = fmax(r->bandwidth_gbs, gbs);
    r->roofline_tok_s = r->bandwidth_gbs * 1e9 / r->bytes_per_token;
    log_line(B, "memory bandwidth %.1f GB/s (streaming read, %d threads, %llu MiB; best so far %.1f) -> roofline %.1f tok/s",
             gbs, B->threads, (unsigned long long)(bytes >> 20), r->bandwidth_gbs, r->roofline_tok_s);
    return 0;
}

/* ---- single stream: ppN and tgN ---- */

static engine *open_single(bench_ctx *B, rl_err *err) {
    engine_params ep = engine_default_params();
    ep.n_threads = B->threads;
    ep.max_seqs = 1;
    ep.n_ctx = B->n_ctx_single;
    return engine_open(B->m, &ep, err);
}

/* Prefill of n random tokens; returns the seconds, < 0 on error. */
static double time_prefill(bench_ctx *B, engine *e, int n, bool show, rl_err *err) {
    int32_t *toks = malloc((size_t)n * sizeof *toks);
    if (!toks) return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    random_tokens(&B->rng, toks, n, (int32_t)B->m->shape.n_vocab);
    engine_seq *s = engine_seq_add(e, toks, n, NULL, err);
    free(toks);
    if (!s) return -1;
    double t0 = rl_now();
    int rc = run_until_idle(B, e, &s, 1, show, err);
    double dt = rl_now() - t0;
    engine_seq_remove(e, s);
    return rc ? -1 : dt;
}

/* n decode steps from an empty context (a BOS prompt, not timed). */
static double time_decode(bench_ctx *B, engine *e, int n, bool show, rl_err *err) {
    int32_t bos = tok_bos(B->m->tok) >= 0 ? tok_bos(B->m->tok) : 0;
    engine_seq *s = engine_seq_add(e, &bos, 1, NULL, err);
    if (!s) return -1;
    int rc = run_until_idle(B, e, &s, 1, false, err);
    double t0 = rl_now();
    for (int i = 0; i < n && rc == 0; i++) {
        rc = decode_step(e, &s, 1, (int32_t)B->m->shape.n_vocab, err);
        if (show) advance(B, 1);
    }
    double dt = rl_now() - t0;
    engine_seq_remove(e, s);
    return rc ? -1 : dt;
}

static int run_single(bench_ctx *B, rl_err *err) {
    const bench_params *p = B->p;
    bench_result *r = B->r;
    engine *e = open_single(B, err);
    if (!e) return -1;
    snprintf(r->kernels, sizeof r->kernels, "%s", kern_level_name(kern_get_level(engine_kernels(e))));
    /* warm up: threads, first-touch pages, caches (as llama-bench does) */
    int rc = time_prefill(B, e, RL_MIN(WARMUP_PROMPT, B->n_ctx_single), false, err) < 0 ||
             time_decode(B, e, 2, false, err) < 0;
    for (int t = 0; t < p->n_pp && !rc; t++) {
        bench_timing *x = &r->pp[r->n_pp++];
        x->n_tokens = p->pp[t];
        snprintf(x->name, sizeof x->name, "pp%d", p->pp[t]);
        phase(B, (uint64_t)p->pp[t] * (uint64_t)p->repeat, "prefill %s", x->name);
        for (int k = 0; k < p->repeat && !rc; k++) {
            double dt = time_prefill(B, e, p->pp[t], true, err);
            if (dt < 0) rc = -1;
            else x->tok_s[x->n_runs++] = p->pp[t] / dt;
        }
        x->median = rl_median(x->tok_s, x->n_runs);
        if (!rc) log_line(B, "prefill %s %.2f tok/s (median of %d)", x->name, x->median, x->n_runs);
    }
    if (p->tg > 0 && !rc) {
        bench_timing *x = &r->tg;
        x->n_tokens = p->tg;
        snprintf(x->name, sizeof x->name, "tg%d", p->tg);
        phase(B, (uint64_t)p->tg * (uint64_t)p->repeat, "decode %s", x->name);
        for (int k = 0; k < p->repeat && !rc; k++) {
            double dt = time_decode(B, e, p->tg, true, err);
            if (dt < 0) rc = -1;
            else x->tok_s[x->n_runs++] = p->tg / dt;
        }
        x->median = rl_median(x->tok_s, x->n_runs);
        r->have_tg = !rc;
        if (!rc)
            log_line(B, "decode %s %.2f tok/s (median of %d)", x->name, x->median, x->n_runs);
    }
    engine_close(e);
    return rc ? -1 : 0;
}

/* ---- the sweep: batched ---- */

static void summarise(bench_point_result *pt) {
    double sum = 0, lo = INFINITY, hi = 0;
    for (int i = 0; i < pt->sessions; i++) {
        sum += pt->session_tok_s[i];
        lo = fmin(lo, pt->session_tok_s[i]);
        hi = fmax(hi, pt->session_tok_s[i]);
    }
    pt->min_tok_s = lo;
    pt->max_tok_s = hi;
    pt->median_tok_s = rl_median(pt->session_tok_s, pt->sessions);
    pt->aggregate_tok_s = sum;
}

static int run_batched(bench_ctx *B, int n, bench_point_result *pt, rl_err *err) {
    const bench_params *p = B->p;
    int32_t n_vocab = (int32_t)B->m->shape.n_vocab;
    engine_params ep = engine_default_params();
    ep.n_threads = B->threads;
    ep.max_seqs = n;
    ep.n_ctx = B->n_ctx_sweep;
    engine *e = engine_open(B->m, &ep, err);
    engine_seq **s = calloc((size_t)n, sizeof *s);
    int32_t *prompt = malloc((size_t)p->prompt_len * sizeof *prompt);
    pt->session_tok_s = calloc((size_t)n, sizeof *pt->session_tok_s);
    int rc = e && s && prompt && pt->session_tok_s ? 0 : (e ? rl_fail(err, RL_ERR_INTERNAL, "out of memory") : -1);
    for (int i = 0; i < n && !rc; i++) {
        random_tokens(&B->rng, prompt, p->prompt_len, n_vocab);
        s[i] = engine_seq_add(e, prompt, p->prompt_len, NULL, err);
        if (!s[i]) rc = -1;
    }
    pt->partitions = 1;
    pt->sessions = n;
    pt->threads = B->threads;
    if (!rc) {
        phase(B, (uint64_t)n * (uint64_t)(p->prompt_len + p->gen_len), "batched: %d session%s", n, n > 1 ? "s" : "");
        double t0 = rl_now();
        rc = run_until_idle(B, e, s, n, true, err);
        double t1 = rl_now(); /* every session has its first token now */
        for (int k = 1; k < p->gen_len && !rc; k++) {
            rc = decode_step(e, s, n, n_vocab, err);
            advance(B, (uint64_t)n);
        }
        double t2 = rl_now();
        pt->prefill_s = t1 - t0;
        pt->decode_s = t2 - t1;
        /* one engine step serves every session: they share its speed */
        for (int i = 0; i < n && !rc; i++) pt->session_tok_s[i] = (p->gen_len - 1) / (t2 - t1);
    }
    free(prompt);
    free(s);
    engine_close(e);
    if (rc) return -1;
    summarise(pt);
    log_line(B, "batched %3d sessions: %7.2f tok/s each, %8.2f in all (prefill %.1f s, generation %.1f s)", n,
             pt->min_tok_s, pt->aggregate_tok_s, pt->prefill_s, pt->decode_s);
    return 0;
}

/* ---- the sweep: partitioned ---- */

typedef struct part_shared {
    bench_ctx *B;
    int n_parts;
    pthread_mutex_t lock; /* the start gate: all prefilled, or aborted */
    pthread_cond_t cond;
    int arrived;
    bool abort;
    atomic_int finished, failed;
} part_shared;

/* Waits until every partition has arrived (or the run is called off). */
static void gate_wait(part_shared *sh) {
    pthread_mutex_lock(&sh->lock);
    sh->arrived++;
    pthread_cond_broadcast(&sh->cond);
    while (sh->arrived < sh->n_parts && !sh->abort) pthread_cond_wait(&sh->cond, &sh->lock);
    pthread_mutex_unlock(&sh->lock);
}

static void gate_abort(part_shared *sh) {
    pthread_mutex_lock(&sh->lock);
    sh->abort = true;
    pthread_cond_broadcast(&sh->cond);
    pthread_mutex_unlock(&sh->lock);
}

typedef struct part_job {
    part_shared *sh;
    int index;
    int cpus[1024];
    int n_cpus;
    double tok_s, prefill_s, decode_s;
    rl_err err;
    int rc;
} part_job;

/* One partition, one session. Its engine is created on this thread, so
 * the pool pins this thread (its thread 0) to the partition's first CPU.
 * All partitions prefill, meet at the barrier, then generate concurrently;
 * one that is done keeps decoding, untimed, until all are, so that every
 * timed step runs under the same contention. Partition 0 moves the
 * progress bar (the main thread only waits). */
static void *partition_main(void *arg) {
    part_job *j = arg;
    part_shared *sh = j->sh;
    bench_ctx *B = sh->B;
    const bench_params *p = B->p;
    int32_t n_vocab = (int32_t)B->m->shape.n_vocab;
    bool show = j->index == 0;
    engine_params ep = engine_default_params();
    ep.n_threads = j->n_cpus;
    ep.cpus = j->cpus;
    ep.max_seqs = 1;
    ep.n_ctx = B->n_ctx_sweep;
    engine *e = engine_open(B->m, &ep, &j->err);
    engine_seq *s = NULL;
    int32_t *prompt = malloc((size_t)p->prompt_len * sizeof *prompt);
    j->rc = e && prompt ? 0 : e ? rl_fail(&j->err, RL_ERR_INTERNAL, "out of memory") : -1;
    if (!j->rc) {
        rl_rng rng;
        rl_rng_seed(&rng, p->seed + 7919u * (uint64_t)(j->index + 1));
        random_tokens(&rng, prompt, p->prompt_len, n_vocab);
        s = engine_seq_add(e, prompt, p->prompt_len, NULL, &j->err);
        if (!s) j->rc = -1;
    }
    double t0 = rl_now();
    if (!j->rc) j->rc = run_until_idle(B, e, &s, 1, show, &j->err);
    j->prefill_s = rl_now() - t0;
    if (j->rc) atomic_store(&sh->failed, 1);
    gate_wait(sh);
    if (!j->rc && !atomic_load(&sh->failed)) {
        double t1 = rl_now();
        for (int k = 1; k < p->gen_len && !j->rc; k++) {
            j->rc = decode_step(e, &s, 1, n_vocab, &j->err);
            if (show) advance(B, 1);
        }
        double t2 = rl_now();
        j->decode_s = t2 - t1;
        j->tok_s = (p->gen_len - 1) / (t2 - t1);
        atomic_fetch_add(&sh->finished, 1);
        while (!j->rc && atomic_load(&sh->finished) < sh->n_parts && !atomic_load(&sh->failed) &&
               engine_seq_pos(s) + 1 < engine_n_ctx(e))
            j->rc = decode_step(e, &s, 1, n_vocab, &j->err);
    }
    if (j->rc) atomic_store(&sh->failed, 1);
    free(prompt);
    engine_close(e);
    return NULL;
}

static int run_partitioned(bench_ctx *B, int k, bench_point_result *pt, rl_err *err) {
    const bench_params *p = B->p;
    part_shared sh = {.B = B, .n_parts = k};
    part_job *jobs = calloc((size_t)k, sizeof *jobs);
    pthread_t *tid = calloc((size_t)k, sizeof *tid);
    pt->session_tok_s = calloc((size_t)k, sizeof *pt->session_tok_s);
    pt->part_threads = calloc((size_t)k, sizeof *pt->part_threads);
    pt->part_cpus = calloc((size_t)B->threads, sizeof *pt->part_cpus);
    if (!jobs || !tid || !pt->session_tok_s || !pt->part_threads || !pt->part_cpus) {
        free(jobs);
        free(tid);
        return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    }
    /* the arrays stay with pt: the caller releases them */
    atomic_init(&sh.finished, 0);
    atomic_init(&sh.failed, 0);
    pthread_mutex_init(&sh.lock, NULL);
    pthread_cond_init(&sh.cond, NULL);
    pt->partitions = k;
    pt->sessions = k;
    pt->threads = B->threads;
    phase(B, (uint64_t)(p->prompt_len + p->gen_len - 1), "partitioned: %d partition%s", k, k > 1 ? "s" : "");
    int started = 0, rc = 0, pinned = 0;
    for (int i = 0; i < k; i++) {
        part_job *j = &jobs[i];
        j->sh = &sh;
        j->index = i;
        j->n_cpus = machine_partition_cpus(B->cpus, B->n_cpus, B->threads, k, i, j->cpus, (int)RL_ARRAY_LEN(j->cpus));
        j->n_cpus = RL_MIN(j->n_cpus, (int)RL_ARRAY_LEN(j->cpus));
        pt->part_threads[i] = j->n_cpus;
        for (int c = 0; c < j->n_cpus && pinned < B->threads; c++) pt->part_cpus[pinned++] = j->cpus[c];
    }
    for (; started < k; started++)
        if (pthread_create(&tid[started], NULL, partition_main, &jobs[started]) != 0) break;
    if (started < k) {
        rc = rl_fail(err, RL_ERR_INTERNAL, "cannot start %d partition threads", k);
        atomic_store(&sh.failed, 1);
        gate_abort(&sh);
    }
    double prefill = 0, decode = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(tid[i], NULL);
        if (jobs[i].rc && !rc) {
            *err = jobs[i].err;
            rc = -1;
        }
        pt->session_tok_s[i] = jobs[i].tok_s;
        prefill = fmax(prefill, jobs[i].prefill_s);
        decode = fmax(decode, jobs[i].decode_s);
    }
    pthread_mutex_destroy(&sh.lock);
    pthread_cond_destroy(&sh.cond);
    free(jobs);
    free(tid);
    if (rc) return -1;
    pt->prefill_s = prefill;
    pt->decode_s = decode;
    summarise(pt);
    int most = pt->part_threads[0], least = pt->part_threads[k - 1]; /* machine_split: the first have more */
    if (most == least)
        log_line(B, "partitioned %2d x %d thread%s: %7.2f tok/s slowest, %8.2f in all", k, most, most > 1 ? "s" : "",
                 pt->min_tok_s, pt->aggregate_tok_s);
    else
        log_line(B, "partitioned %2d x %d-%d threads: %7.2f tok/s slowest, %8.2f in all", k, least, most,
                 pt->min_tok_s, pt->aggregate_tok_s);
    return 0;
}

/* ---- the sweep driver ---- */

/* The next size to bisect at: between the largest size that kept the floor
 * and the smallest larger one that did not, unless they are within 1/16 of
 * each other (0: done). */
static int next_bisection(const int *sizes, const double *speeds, int n, double floor_tok_s) {
    int lo = 0, hi = 0;
    for (int i = 0; i < n; i++)
        if (speeds[i] >= floor_tok_s && sizes[i] > lo) lo = sizes[i];
    for (int i = 0; i < n; i++)
        if (sizes[i] > lo && speeds[i] < floor_tok_s && (!hi || sizes[i] < hi)) hi = sizes[i];
    if (!hi || lo == 0 || hi - lo <= RL_MAX(1, lo / 16)) return 0;
    return lo + (hi - lo) / 2;
}

int bench_search(bench_probe_fn probe, void *ctx, int cap, int min_size, double floor_tok_s, int *sizes, double *speeds,
                 int max, int *n) {
    *n = 0;
    if (cap < 1 || max < 1) return 0;
    int below = 0;
    for (int size = 1; *n < max; size = 2 * size > cap ? cap : 2 * size) {
        double v = probe(ctx, size);
        if (v < 0) return -1;
        sizes[*n] = size;
        speeds[(*n)++] = v;
        if (v < floor_tok_s && (v < 0.9 * floor_tok_s || ++below >= 2) && size >= min_size) break;
        if (v >= floor_tok_s) below = 0;
        if (size == cap) break;
    }
    for (int mid; *n < max && (mid = next_bisection(sizes, speeds, *n, floor_tok_s)) > 0;) {
        double v = probe(ctx, mid);
        if (v < 0) return -1;
        sizes[*n] = mid;
        speeds[(*n)++] = v;
    }
    return 0;
}

typedef int (*point_fn)(bench_ctx *B, int n, bench_point_result *pt, rl_err *err);

/* One sweep's points, and what measuring the next one needs. */
typedef struct sweep_list {
    bench_ctx *B;
    point_fn fn;
    bench_point_result *pts;
    int *n;
    rl_err *err;
} sweep_list;

/* A point's speeds from all its passes so far: each session's median. */
static void combine_passes(bench_point_result *pt) {
    double v[BENCH_MAX_RUNS];
    for (int s = 0; s < pt->sessions; s++) {
        for (int r = 0; r < pt->n_passes; r++) v[r] = pt->runs[(size_t)r * (size_t)pt->sessions + (size_t)s];
        pt->session_tok_s[s] = rl_median(v, pt->n_passes);
    }
    summarise(pt);
}

/* Measures point pt once more (one pass) and folds it in. */
static int measure_pass(sweep_list *l, bench_point_result *pt) {
    bench_point_result m = {0};
    int rc = l->fn(l->B, pt->sessions, &m, l->err);
    if (!rc) {
        pt->partitions = m.partitions;
        pt->threads = m.threads;
        memcpy(pt->runs + (size_t)pt->n_passes * (size_t)pt->sessions, m.session_tok_s,
               (size_t)pt->sessions * sizeof *m.session_tok_s);
        pt->pass_min_tok_s[pt->n_passes++] = m.min_tok_s;
        pt->prefill_s += m.prefill_s;
        pt->decode_s += m.decode_s;
        if (!pt->part_threads) { /* every pass pins alike: the first one's layout */
            pt->part_threads = m.part_threads;
            pt->part_cpus = m.part_cpus;
            m.part_threads = NULL;
            m.part_cpus = NULL;
        }
        combine_passes(pt);
    }
    free(m.session_tok_s);
    free(m.part_threads);
    free(m.part_cpus);
    return rc;
}

/* Measures n sessions (or partitions) into the next point, one pass; its
 * slowest session's tok/s, -1 on error. */
static double probe_point(void *ctx, int n) {
    sweep_list *l = ctx;
    if (*l->n >= BENCH_MAX_POINTS_SWEEP) return rl_fail(l->err, RL_ERR_INTERNAL, "too many sweep points");
    bench_point_result *pt = &l->pts[*l->n];
    memset(pt, 0, sizeof *pt);
    pt->sessions = n;
    pt->session_tok_s = calloc((size_t)n, sizeof *pt->session_tok_s);
    pt->runs = calloc((size_t)n * (size_t)l->B->p->sweep_repeat, sizeof *pt->runs);
    if (!pt->session_tok_s || !pt->runs) {
        free(pt->session_tok_s);
        free(pt->runs);
        return rl_fail(l->err, RL_ERR_INTERNAL, "out of memory");
    }
    (*l->n)++; /* bench_result_free releases it from here on */
    return measure_pass(l, pt) ? -1 : pt->min_tok_s;
}

static int cmp_point(const void *a, const void *b) {
    const bench_point_result *x = a, *y = b;
    return (x->sessions > y->sessions) - (x->sessions < y->sessions);
}

/* Passes 2..repeat over every point, alternately backwards and forwards:
 * when the machine's speed drifts during the sweep (a shared VM's does,
 * by 10-20% within minutes), every point sees the same mix of its states,
 * and the medians compare like with like. */
static int more_passes(sweep_list *l) {
    int n = *l->n, repeat = l->B->p->sweep_repeat;
    for (int r = 1; r < repeat; r++)
        for (int k = 0; k < n; k++)
            if (measure_pass(l, &l->pts[r % 2 ? n - 1 - k : k])) return -1;
    return 0;
}

/* After the passes the medians may place the floor between two sizes
 * further apart than the search left them: bisect again, every new size
 * measured `repeat` times in a row. */
static int bisect_medians(sweep_list *l) {
    int sizes[BENCH_MAX_POINTS_SWEEP];
    double speeds[BENCH_MAX_POINTS_SWEEP];
    for (;;) {
        for (int i = 0; i < *l->n; i++) {
            sizes[i] = l->pts[i].sessions;
            speeds[i] = l->pts[i].min_tok_s;
        }
        int mid = next_bisection(sizes, speeds, *l->n, l->B->p->floor_tok_s);
        if (mid == 0) return 0;
        if (probe_point(l, mid) < 0) return -1;
        bench_point_result *pt = &l->pts[*l->n - 1];
        while (pt->n_passes < l->B->p->sweep_repeat)
            if (measure_pass(l, pt)) return -1;
    }
}

/* A sweep: the sizes given, or bench_search's; then the further passes. */
static int sweep(bench_ctx *B, point_fn fn, const int *list, int n_list, int cap, int min_size,
                 bench_point_result *pts, int *n_pts, rl_err *err) {
    sweep_list l = {B, fn, pts, n_pts, err};
    if (n_list > 0) {
        for (int i = 0; i < n_list; i++)
            if (probe_point(&l, list[i]) < 0) return -1;
    } else {
        int sizes[BENCH_MAX_POINTS_SWEEP], n = 0;
        double speeds[BENCH_MAX_POINTS_SWEEP];
        if (bench_search(probe_point, &l, cap, min_size, B->p->floor_tok_s, sizes, speeds, BENCH_MAX_POINTS_SWEEP, &n))
            return -1;
    }
    if (more_passes(&l) || (n_list == 0 && bisect_medians(&l))) return -1;
    qsort(pts, (size_t)*n_pts, sizeof *pts, cmp_point);
    return 0;
}

int bench_max_at_floor(const bench_point_result *pts, int n, double floor_tok_s) {
    int best = 0;
    for (int i = 0; i < n; i++)
        if (pts[i].min_tok_s >= floor_tok_s && pts[i].sessions > best) best = pts[i].sessions;
    return best;
}

/* Sessions whose KV caches fit half of the memory. */
static int memory_cap(bench_ctx *B) {
    uint64_t phys = machine_memory_bytes();
    if (phys == 0) return BENCH_MAX_SESSIONS;
    uint64_t per = forward_kv_bytes(B->m, B->n_ctx_sweep, true) + B->m->shape.n_vocab * sizeof(float) * 2 +
                   (uint64_t)B->n_ctx_sweep * sizeof(int32_t);
    uint64_t fit = phys / 2 / (per ? per : 1);
    return (int)RL_MAX(1, RL_MIN(fit, (uint64_t)BENCH_MAX_SESSIONS));
}

static int run_sweep(bench_ctx *B, rl_err *err) {
    const bench_params *p = B->p;
    bench_result *r = B->r;
    r->have_sweep = true;
    r->prompt_len = p->prompt_len;
    r->gen_len = p->gen_len;
    r->sweep_repeat = p->sweep_repeat;
    int cap = RL_MIN(p->max_sessions > 0 ? p->max_sessions : 256, memory_cap(B));
    if (sweep(B, run_batched, p->sessions, p->n_sessions, cap, p->min_sessions, r->batched, &r->n_batched, err))
        return -1;
    r->have_partitioned = p->partitioned;
    if (p->partitioned &&
        sweep(B, run_partitioned, p->partitions, p->n_partitions, B->threads, 1, r->partitioned, &r->n_partitioned, err))
        return -1;
    r->max_batched = bench_max_at_floor(r->batched, r->n_batched, p->floor_tok_s);
    r->max_partitioned = bench_max_at_floor(r->partitioned, r->n_partitioned, p->floor_tok_s);
    if (p->partitioned)
        log_line(B, "sessions at >= %g tok/s: %d batched, %d partitioned", p->floor_tok_s, r->max_batched,
                 r->max_partitioned);
    else
        log_line(B, "sessions at >= %g tok/s: %d batched", p->floor_tok_s, r->max_batched);
    return 0;
}

/* ---- the run ---- */

static int check_params(const bench_params *p, int threads, rl_err *err) {
    if (!(p->floor_tok_s > 0)) return rl_fail(err, RL_ERR_INPUT, "--floor must be positive");
    if (p->repeat < 1 || p->repeat > BENCH_MAX_RUNS)
        return rl_fail(err, RL_ERR_INPUT, "--repeat must be 1 to %d", BENCH_MAX_RUNS);
    if (p->sweep_repeat < 1 || p->sweep_repeat > BENCH_MAX_RUNS)
        return rl_fail(err, RL_ERR_INPUT, "--sweep-repeat must be 1 to %d", BENCH_MAX_RUNS);
    if (p->sweep && (p->prompt_len < 1 || p->gen_len < 2))
        return rl_fail(err, RL_ERR_INPUT, "the sweep needs a prompt of at least 1 token and at least 2 generated");
    for (int i = 0; i < p->n_partitions; i++)
        if (p->partitions[i] > threads)
            return rl_fail(err, RL_ERR_INPUT, "%d partitions need at least as many threads (have %d)",
                           p->partitions[i], threads);
    if (p->n_pp > BENCH_MAX_LIST || p->n_sessions > BENCH_MAX_LIST || p->n_partitions > BENCH_MAX_LIST)
        return rl_fail(err, RL_ERR_INPUT, "at most %d entries per list", BENCH_MAX_LIST);
    return 0;
}

/* Contexts: what each test needs, or --ctx if that is enough. */
static int size_contexts(bench_ctx *B, rl_err *err) {
    const bench_params *p = B->p;
    int single = RL_MAX(WARMUP_PROMPT, p->tg + 1);
    for (int i = 0; i < p->n_pp; i++) single = RL_MAX(single, p->pp[i]);
    int sweep = p->prompt_len + 2 * p->gen_len; /* room to keep decoding while other partitions finish */
    int need = RL_MAX(p->single ? single : 0, p->sweep ? p->prompt_len + p->gen_len : 0);
    if (p->n_ctx > 0 && p->n_ctx < need)
        return rl_fail(err, RL_ERR_INPUT, "--ctx %d is too small: the tests need %d tokens per sequence", p->n_ctx, need);
    B->n_ctx_single = p->n_ctx > 0 ? p->n_ctx : single;
    B->n_ctx_sweep = p->n_ctx > 0 ? p->n_ctx : sweep;
    B->r->n_ctx = p->n_ctx > 0 ? p->n_ctx : RL_MAX(p->single ? single : 0, p->sweep ? sweep : 0);
    return 0;
}

int bench_run(const model *m, const bench_params *p, bench_result *r, rl_err *err) {
    double t0 = rl_now();
    memset(r, 0, sizeof *r);
    bench_ctx *B = rl_calloc(1, sizeof *B, err);
    if (!B) return -1;
    B->m = m;
    B->p = p;
    B->r = r;
    rl_rng_seed(&B->rng, p->seed);
    B->n_cpus = machine_cpus(B->cpus, (int)RL_ARRAY_LEN(B->cpus));
    B->threads = p->n_threads > 0 ? p->n_threads : tp_available_cpus();
    int rc = check_params(p, B->threads, err) || size_contexts(B, err) ? -1 : 0;
    if (!rc) {
        snprintf(r->kernels, sizeof r->kernels, "%s", kern_level_name(kern_default_level()));
        r->cpus = B->n_cpus;
        r->threads = B->threads;
        describe_machine(r);
        describe_model(m, p, r);
        r->floor_tok_s = p->floor_tok_s;
        r->repeat = p->repeat;
        r->ctx = p->tg > 0 ? p->tg : 128;
        r->bytes_per_token = (double)r->weight_bytes_per_token + (double)r->kv_bytes_per_token * r->ctx;
        r->max_batched = r->max_partitioned = -1;
        rc = measure_bandwidth(B, err);
    }
    /* probed again after the single-stream tests: on a shared machine the
     * bandwidth available moves, and the best figure is the machine's */
    if (!rc && p->single) rc = run_single(B, err) || measure_bandwidth(B, err);
    if (!rc && p->sweep) rc = run_sweep(B, err);
    progress_done(&B->prog);
    free(B);
    r->seconds = rl_now() - t0;
    return rc;
}

void bench_result_free(bench_result *r) {
    for (int i = 0; i < r->n_batched; i++) {
        free(r->batched[i].session_tok_s);
        free(r->batched[i].runs);
    }
    for (int i = 0; i < r->n_partitioned; i++) {
        free(r->partitioned[i].session_tok_s);
        free(r->partitioned[i].runs);
        free(r->partitioned[i].part_threads);
        free(r->partitioned[i].part_cpus);
    }
    r->n_batched = r->n_partitioned = 0;
}

/* ---- output ---- */

static cJSON *point_json(const bench_point_result *pt, bool per_session) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "partitions", pt->partitions);
    cJSON_AddNumberToObject(o, "sessions", pt->sessions);
    cJSON_AddNumberToObject(o, "threads", pt->threads);
    cJSON_AddNumberToObject(o, "min_tok_s", pt->min_tok_s);
    cJSON_AddNumberToObject(o, "median_tok_s", pt->median_tok_s);
    cJSON_AddNumberToObject(o, "max_tok_s", pt->max_tok_s);
    cJSON_AddNumberToObject(o, "aggregate_tok_s", pt->aggregate_tok_s);
    cJSON_AddNumberToObject(o, "prefill_s", pt->prefill_s);
    cJSON_AddNumberToObject(o, "decode_s", pt->decode_s);
    cJSON_AddItemToObject(o, "pass_min_tok_s", cJSON_CreateDoubleArray(pt->pass_min_tok_s, pt->n_passes));
    if (per_session) cJSON_AddItemToObject(o, "session_tok_s", cJSON_CreateDoubleArray(pt->session_tok_s, pt->sessions));
    return o;
}

static cJSON *build_json(const bench_result *r) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "rackllm_bench", 1);
    cJSON *mach = cJSON_AddObjectToObject(root, "machine");
    cJSON_AddStringToObject(mach, "cpu", r->cpu);
    cJSON *feat = cJSON_AddArrayToObject(mach, "features");
    char buf[sizeof r->features];
    snprintf(buf, sizeof buf, "%s", r->features);
    for (char *save = NULL, *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save))
        cJSON_AddItemToArray(feat, cJSON_CreateString(w));
    cJSON_AddNumberToObject(mach, "cores", r->cpus);
    cJSON_AddNumberToObject(mach, "threads", r->threads);
    cJSON_AddStringToObject(mach, "kernels", r->kernels);
    cJSON_AddNumberToObject(mach, "ghz", r->ghz);
    cJSON_AddNumberToObject(mach, "int8_ops_per_cycle", r->int8_ops_per_cycle);
    cJSON_AddNumberToObject(mach, "int8_peak_ops", r->int8_peak_ops);
    cJSON *mod = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(mod, "shape", r->shape);
    cJSON_AddStringToObject(mod, "name", r->name);
    cJSON_AddStringToObject(mod, "type", r->type);
    cJSON_AddNumberToObject(mod, "layers", r->n_layer);
    cJSON_AddNumberToObject(mod, "params", (double)r->params);
    cJSON_AddNumberToObject(mod, "weight_bytes", (double)r->weight_bytes);
    cJSON_AddNumberToObject(mod, "bytes_per_token", r->bytes_per_token);
    cJSON_AddNumberToObject(mod, "weight_bytes_per_token", (double)r->weight_bytes_per_token);
    cJSON_AddNumberToObject(mod, "kv_bytes_per_token", (double)r->kv_bytes_per_token);
    cJSON_AddNumberToObject(mod, "matrix_ops_per_token", r->matrix_ops_per_token);
    cJSON_AddNumberToObject(root, "ctx", r->ctx);
    cJSON_AddNumberToObject(root, "n_ctx", r->n_ctx);
    cJSON_AddNumberToObject(root, "floor", r->floor_tok_s);
    cJSON_AddNumberToObject(root, "bandwidth_gbs", r->bandwidth_gbs);
    cJSON_AddItemToObject(root, "bandwidth_runs_gbs", cJSON_CreateDoubleArray(r->bw_runs_gbs, r->n_bw));
    cJSON_AddNumberToObject(root, "roofline_tok_s", r->roofline_tok_s);
    cJSON_AddNumberToObject(root, "repeat", r->repeat);
    cJSON *runs = NULL;
    if (r->n_pp > 0 || r->have_tg) runs = cJSON_AddObjectToObject(root, "runs_tok_s");
    if (r->n_pp > 0) {
        cJSON *pp = cJSON_AddObjectToObject(root, "prefill_tok_s");
        for (int i = 0; i < r->n_pp; i++) {
            cJSON_AddNumberToObject(pp, r->pp[i].name, r->pp[i].median);
            cJSON_AddItemToObject(runs, r->pp[i].name, cJSON_CreateDoubleArray(r->pp[i].tok_s, r->pp[i].n_runs));
        }
    }
    if (r->have_tg) {
        cJSON *tg = cJSON_AddObjectToObject(root, "decode_tok_s");
        cJSON_AddNumberToObject(tg, r->tg.name, r->tg.median);
        cJSON_AddItemToObject(runs, r->tg.name, cJSON_CreateDoubleArray(r->tg.tok_s, r->tg.n_runs));
    }
    if (r->have_sweep) {
        cJSON *sw = cJSON_AddObjectToObject(root, "sweep");
        cJSON_AddNumberToObject(sw, "prompt_len", r->prompt_len);
        cJSON_AddNumberToObject(sw, "gen_len", r->gen_len);
        cJSON_AddNumberToObject(sw, "repeat", r->sweep_repeat);
        cJSON *b = cJSON_AddArrayToObject(sw, "batched");
        for (int i = 0; i < r->n_batched; i++) cJSON_AddItemToArray(b, point_json(&r->batched[i], false));
        cJSON *pa = cJSON_AddArrayToObject(sw, "partitioned");
        for (int i = 0; i < r->n_partitioned; i++) cJSON_AddItemToArray(pa, point_json(&r->partitioned[i], true));
        cJSON *mx = cJSON_AddObjectToObject(root, "max_sessions_at_floor");
        cJSON_AddNumberToObject(mx, "batched", r->max_batched);
        if (r->have_partitioned) cJSON_AddNumberToObject(mx, "partitioned", r->max_partitioned);
        cJSON_AddNumberToObject(sw, "compute_fraction", bench_compute_fraction(r));
    }
    cJSON_AddNumberToObject(root, "seconds", r->seconds);
    return root;
}

int bench_write_json(const bench_result *r, const char *path, rl_err *err) {
    cJSON *root = build_json(r);
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) return rl_fail(err, RL_ERR_INTERNAL, "out of memory writing the JSON");
    FILE *f = fopen(path, "w");
    if (!f) {
        free(text);
        return rl_fail(err, RL_ERR_INPUT, "%s: cannot write: %s", path, strerror(errno));
    }
    bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = fclose(f) == 0 && ok;
    free(text);
    return ok ? 0 : rl_fail(err, RL_ERR_INTERNAL, "%s: write failed", path);
}

static void print_timing(FILE *out, const char *what, const bench_timing *t, const char *extra) {
    double lo = INFINITY, hi = 0;
    for (int i = 0; i < t->n_runs; i++) {
        lo = fmin(lo, t->tok_s[i]);
        hi = fmax(hi, t->tok_s[i]);
    }
    fprintf(out, "  %-8s %-6s %9.2f tok/s", what, t->name, t->median);
    if (t->n_runs > 1) fprintf(out, "   (median of %d: %.2f - %.2f)", t->n_runs, lo, hi);
    fprintf(out, "%s\n", extra);
}

static void print_points(FILE *out, const char *mode, const bench_point_result *pts, int n, double floor_tok_s) {
    for (int i = 0; i < n; i++) {
        const bench_point_result *pt = &pts[i];
        fprintf(out, "  %-12s %5d %8d %11.2f %10.2f %12.2f  %s\n", mode, pt->partitions, pt->sessions, pt->min_tok_s,
                pt->median_tok_s, pt->aggregate_tok_s, pt->min_tok_s >= floor_tok_s ? "yes" : "no");
    }
}

double bench_compute_fraction(const bench_result *r) {
    double best = 0;
    for (int i = 0; i < r->n_batched; i++) best = fmax(best, r->batched[i].aggregate_tok_s);
    return r->int8_peak_ops > 0 ? best * r->matrix_ops_per_token / r->int8_peak_ops : 0;
}

void bench_print(const bench_result *r, FILE *out) {
    fprintf(out, "rackllm bench: %s %s (%u layer%s, %.4g M parameters, %.4g MB of weights)\n",
            r->shape[0] ? r->shape : r->name, r->type, r->n_layer, r->n_layer == 1 ? "" : "s", r->params / 1e6,
            r->weight_bytes / 1e6);
    fprintf(out, "machine: %s; %d CPUs, %d threads, kernels %s\n", r->cpu, r->cpus, r->threads, r->kernels);
    if (r->int8_peak_ops > 0)
        fprintf(out, "  int8 peak        %9.2f Tops/s  (%d threads x %.2f GHz as reported x %g ops/cycle for %s)\n",
                r->int8_peak_ops / 1e12, r->threads, r->ghz, r->int8_ops_per_cycle, r->kernels);
    fprintf(out, "  memory bandwidth %9.2f GB/s    (streaming read, all threads; best of %d probe%s)\n", r->bandwidth_gbs,
            r->n_bw, r->n_bw == 1 ? "" : "s");
    fprintf(out, "  roofline         %9.2f tok/s   (bandwidth / %.4g MB read per token)\n", r->roofline_tok_s,
            r->bytes_per_token / 1e6);
    for (int i = 0; i < r->n_pp; i++) print_timing(out, "prefill", &r->pp[i], "");
    if (r->have_tg) {
        char extra[64];
        snprintf(extra, sizeof extra, "   %.0f%% of the roofline",
                 r->roofline_tok_s > 0 ? 100 * r->tg.median / r->roofline_tok_s : 0);
        print_timing(out, "decode", &r->tg, extra);
    }
    if (!r->have_sweep) return;
    fprintf(out, "\nsession sweep: prompt %d, generate %d per session", r->prompt_len, r->gen_len);
    if (r->sweep_repeat > 1) fprintf(out, " (%d passes; each session's median)", r->sweep_repeat);
    fprintf(out, "; floor %g tok/s per session\n", r->floor_tok_s);
    fprintf(out, "  %-12s %5s %8s %11s %10s %12s  %s\n", "mode", "parts", "sessions", "slowest t/s", "median t/s",
            "aggregate", ">= floor");
    print_points(out, "batched", r->batched, r->n_batched, r->floor_tok_s);
    print_points(out, "partitioned", r->partitioned, r->n_partitioned, r->floor_tok_s);
    fprintf(out, "\nsessions at >= %g tok/s each: %d batched (one engine, %d threads)", r->floor_tok_s, r->max_batched,
            r->threads);
    if (r->have_partitioned) fprintf(out, ", %d partitioned (one session per partition)", r->max_partitioned);
    fputc('\n', out);
    if (bench_compute_fraction(r) > 0)
        fprintf(out, "compute: the fastest batch ran the weight products at %.0f%% of the int8 peak (%.3g GFLOP a token)\n",
                100 * bench_compute_fraction(r), r->matrix_ops_per_token / 1e9);
}

int bench_parse_list(const char *s, int lo, int hi, int *out, int max, int *n) {
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end = NULL;
        if (*p < '0' || *p > '9') return -1;
        long v = strtol(p, &end, 10);
        if (end == p || v < lo || v > hi || *n >= max) return -1;
        out[(*n)++] = (int)v;
        p = end;
        if (*p == ',') {
            p++;
            if (!*p) return -1;
        } else if (*p) {
            return -1;
        }
    }
    return *n > 0 ? 0 : -1;
}
