/*
 * sched_calibrate.c — what the scheduler measures at start-up, unless it
 * is given: the cost of a prompt token (and the most a step takes), the capacity
 * (N sessions per partition decoding together, N doubled then bisected,
 * each keeping the floor with HEADROOM), the step time t(n) and the cost
 * per token of context that admission counts (sched_cost), and the memory
 * budget of the sessions (once the engines are open). Each
 * measurement is a start-up command every partition thread runs on its own
 * engine (scheduler.c posts them).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/machine.h"
#include "sched_internal.h"

int sched_part_open(partition *p, int max_seqs, int max_batch, rl_err *err) {
    sched *s = p->s;
    engine_close(p->e);
    free(p->run);
    free(p->pace_first);
    free(p->pace_gen);
    pthread_mutex_lock(&p->stats_lock);
    free(p->live);
    p->live = NULL;
    p->n_live = 0;
    pthread_mutex_unlock(&p->stats_lock);
    p->run = NULL;
    p->pace_first = NULL;
    p->pace_gen = NULL;
    engine_params ep = engine_default_params();
    ep.n_threads = p->n_threads;
    ep.cpus = p->cpus;
    ep.max_seqs = max_seqs;
    ep.max_batch = max_batch;
    ep.n_ctx = s->p.n_ctx;
    p->e = engine_open(s->m, &ep, err);
    if (!p->e) return -1;
    p->max_run = max_seqs;
    p->run = rl_calloc((size_t)max_seqs, sizeof *p->run, err);
    p->pace_first = rl_calloc((size_t)max_seqs, sizeof *p->pace_first, err);
    p->pace_gen = rl_calloc((size_t)max_seqs, sizeof *p->pace_gen, err);
    sched_session_info *live = rl_calloc((size_t)max_seqs, sizeof *live, err);
    pthread_mutex_lock(&p->stats_lock);
    p->live = live;
    pthread_mutex_unlock(&p->stats_lock);
    return p->run && p->pace_first && p->pace_gen && live ? 0 : -1;
}

/* A deterministic filler prompt (ids spread over the vocabulary). */
static void filler(int32_t *ids, int n, int32_t n_vocab, int salt) {
    for (int i = 0; i < n; i++) ids[i] = (int32_t)(((int64_t)(i + 1) * 7919 + salt * 104729) % n_vocab);
}

/* Seconds per prompt token in one prefill step: the faster of two, since
 * the first step of a fresh engine also pays for first touches of its
 * buffers (it measured half the speed of the second here). */
int sched_part_probe(partition *p, double *per_token, rl_err *err) {
    int32_t ids[PROBE_TOKENS];
    int n = RL_MIN(PROBE_TOKENS, engine_n_ctx(p->e));
    filler(ids, n, (int32_t)p->s->m->shape.n_vocab, 0);
    double best = INFINITY;
    for (int round = 0; round < 2; round++) {
        engine_seq *q = engine_seq_add_ctx(p->e, ids, n, NULL, n, err); /* a cache of its size: --ctx may be huge */
        if (!q) return -1;
        double t0 = rl_now();
        int r = engine_step(p->e, err);
        double dt = rl_now() - t0;
        engine_seq_remove(p->e, q);
        if (r < 0) return -1;
        best = fmin(best, dt / n);
    }
    *per_token = best;
    return 0;
}

/* n sessions decoding together: the slowest one's tok/s. Their caches
 * hold what a trial reaches (a few dozen positions), not the whole
 * context, which may be larger than memory. */
int sched_part_trial(partition *p, int n, double *rate, rl_err *err) {
    int n_ctx = RL_MIN(engine_n_ctx(p->e), TRIAL_CTX);
    int plen = RL_MAX(1, RL_MIN(8, n_ctx / 4));
    int max_steps = n_ctx - plen - 2;
    engine_seq **seqs = rl_calloc((size_t)n, sizeof *seqs, err);
    if (!seqs) return -1;
    int rc = -1;
    sampler_params sp = sampler_default_params();
    int32_t ids[8];
    for (int i = 0; i < n; i++) {
        filler(ids, plen, (int32_t)p->s->m->shape.n_vocab, i + 1);
        sp.seed = (uint64_t)i + 1;
        if (!(seqs[i] = engine_seq_add_ctx(p->e, ids, plen, &sp, n_ctx, err))) goto done;
    }
    int steps = 0;
    bool prefilling = true;
    while (prefilling && steps < max_steps) { /* until every one decodes */
        if (engine_step(p->e, err) < 0) goto done;
        steps++;
        prefilling = false;
        for (int i = 0; i < n; i++) prefilling |= engine_seq_get_state(seqs[i]) == SEQ_PREFILL;
    }
    if (steps < max_steps && engine_step(p->e, err) < 0) goto done; /* one untimed step */
    steps++;
    double t0 = rl_now(), dt = 0;
    int k = 0;
    while (steps + k < max_steps && (k < 3 || (dt < 0.3 && k < 64))) {
        if (engine_step(p->e, err) < 0) goto done;
        sleep_seconds(p->s->p.step_delay);
        k++;
        dt = rl_now() - t0;
    }
    *rate = k > 0 && dt > 0 ? k / dt : 0;
    p->trial_ctx = plen + steps + k; /* the context each session reached */
    rc = 0;
done:
    for (int i = 0; i < n; i++) engine_seq_remove(p->e, seqs[i]);
    free(seqs);
    return rc;
}

/* The slowest partition's rate with n sessions in each. */
static int trial(sched *s, int n, double *rate, rl_err *err) {
    if (sched_run_cmd(s, CMD_TRIAL, 0, 0, n, err)) return -1;
    *rate = s->parts[0].result;
    for (int i = 1; i < s->K; i++) *rate = RL_MIN(*rate, s->parts[i].result);
    if (*rate > 0) sched_cost_add(&s->cost, n, 1 / *rate);
    for (int i = 0; i < s->K; i++) s->cost.base_ctx = fmax(s->cost.base_ctx, s->parts[i].trial_ctx);
    if (s->p.log) fprintf(s->p.log, "calibration: %d session%s x %d partition%s: %.1f tok/s each\n", n, n > 1 ? "s" : "",
                          s->K, s->K > 1 ? "s" : "", *rate);
    return 0;
}

/* Largest per-partition n (<= limit) whose sessions all decode at
 * HEADROOM x the floor (the rest of each period is for new prompts); 0 if
 * even one does not. Doubling, then bisection. */
static int calibrate(sched *s, int limit, rl_err *err) {
    int good = 0, bad = limit + 1;
    double r;
    for (int n = 1; n <= limit; n *= 2) {
        if (trial(s, n, &r, err)) return -1;
        if (r < s->p.floor_tps * HEADROOM) {
            bad = n;
            break;
        }
        good = n;
        if (n > limit / 2 && n < limit) { /* try the limit itself next */
            if (trial(s, limit, &r, err)) return -1;
            if (r >= s->p.floor_tps * HEADROOM) good = limit;
            else bad = limit;
            break;
        }
    }
    while (good > 0 && bad - good > 1) {
        int mid = good + (bad - good) / 2;
        if (trial(s, mid, &r, err)) return -1;
        if (r >= s->p.floor_tps * HEADROOM) good = mid;
        else bad = mid;
    }
    return good;
}

/* The cost of context (sched_cost). Calibration's trials are in already;
 * with the capacity given, two such trials measure the step of one session
 * and of the capacity (a second or two). The cost per token of context is
 * given or measured on every partition at once (they share the memory
 * bus), the slowest counting. */
static int configure_context(sched *s, bool measured_cap, int per_part, rl_err *err) {
    const sched_params *p = &s->p;
    s->cost.period = 1 / (p->floor_tps * HEADROOM);
    if (!measured_cap) {
        double r;
        if (trial(s, 1, &r, err) || (per_part > 1 && trial(s, per_part, &r, err))) return -1;
    }
    if (p->ctx_cost > 0) {
        s->cost.per_token = p->ctx_cost;
    } else {
        if (sched_run_cmd(s, CMD_ATTN, 0, 0, 0, err)) return -1;
        for (int i = 0; i < s->K; i++) s->cost.per_token = fmax(s->cost.per_token, s->parts[i].result);
    }
    if (p->log)
        fprintf(p->log, "context: %.2f us per token of context per step; a session at the full %d tokens adds "
                        "%.0f%% of a %.0f tok/s period\n", s->cost.per_token * 1e6, s->n_ctx,
                100 * s->cost.per_token * s->n_ctx * p->floor_tps, p->floor_tps);
    return 0;
}

/* The memory budget: given, or MEM_SHARE of what is available now, with
 * the weights loaded and the engines' buffers allocated (0: unknown, no
 * limit); and what one session at the full context may take. */
static void configure_memory(sched *s) {
    const sched_params *p = &s->p;
    s->mem_session = engine_seq_bytes(s->parts[0].e, 0) + TEXT_INITIAL;
    s->mem_available = machine_available_bytes();
    s->mem_budget = p->mem_limit ? p->mem_limit : (uint64_t)((double)s->mem_available * MEM_SHARE);
    if (!p->log) return;
    if (!s->mem_budget) {
        fprintf(p->log, "memory: the available memory is unknown; sessions are not limited by it\n");
        return;
    }
    uint64_t fit = s->mem_budget / s->mem_session;
    fprintf(p->log, "memory: %.0f MiB for sessions (%s); one at the full %d tokens may take %.1f MiB: %llu of them "
                    "fit%s\n", (double)s->mem_budget / 1048576.0, p->mem_limit ? "given" : "of what is available",
            s->n_ctx, (double)s->mem_session / 1048576.0, (unsigned long long)fit,
            fit < (uint64_t)s->capacity_base ? "; requests that state max_tokens reserve less" : "");
}

/* Capacity, prefill chunk and engines, by measuring what is not given. */
int sched_configure(sched *s, rl_err *err) {
    const sched_params *p = &s->p;
    int K = s->K;
    int limit = p->max_sessions > 0 ? p->max_sessions : SCHED_CALIBRATE_LIMIT;
    int per_part_limit = RL_MAX(1, (limit + K - 1) / K);
    bool measure_cap = p->capacity <= 0, measure_chunk = p->prefill_chunk <= 0;
    if (measure_cap || measure_chunk) {
        int seqs = measure_cap ? per_part_limit : 1;
        if (sched_run_cmd(s, CMD_OPEN, seqs, seqs + PROBE_TOKENS, 0, err)) return -1;
    }
    s->chunk = p->prefill_chunk;
    if (measure_chunk) {
        if (sched_run_cmd(s, CMD_PROBE, 0, 0, 0, err)) return -1;
        double per_token = s->parts[0].result;
        s->per_token = per_token;
        double most = CHUNK_PERIODS / p->floor_tps;
        s->chunk = per_token > 0 ? (int)(most / per_token) : 512;
        s->chunk = RL_MAX(4, RL_MIN(512, s->chunk));
        if (p->log)
            fprintf(p->log, "prefill: %.0f tok/s; at most %d prompt tokens per step (%.0f periods at %.0f tok/s), "
                            "as many as the running sessions' lead over the floor allows\n",
                    per_token > 0 ? 1 / per_token : 0, s->chunk, CHUNK_PERIODS, p->floor_tps);
    }
    if (!(s->per_token > 0)) s->per_token = CHUNK_PERIODS / p->floor_tps / s->chunk; /* chunk given */
    int cap = p->capacity;
    if (measure_cap) {
        int per = calibrate(s, per_part_limit, err);
        if (per < 0) return -1;
        if (per == 0 && p->log)
            fprintf(p->log, "warning: even one session per partition runs below %.1f tok/s here; "
                            "capacity set to one per partition\n", p->floor_tps);
        cap = RL_MAX(1, per) * K;
    }
    if (p->max_sessions > 0) cap = RL_MIN(cap, p->max_sessions);
    cap = RL_MAX(cap, 1);
    s->capacity_base = cap;
    int most = 0;
    for (int i = 0; i < K; i++) {
        int base = cap / K + (i < cap % K);
        sched_ctl_init(&s->parts[i].ctl, RL_MAX(base, 0), p->floor_tps, p->recover_seconds);
        s->parts[i].prefill_rate = 0.5 / s->per_token; /* a guess until prompts have waited */
        s->parts[i].pt_cost = s->per_token;
        if (base == 0) s->parts[i].ctl.cap = s->parts[i].ctl.base = 0; /* fewer sessions than partitions */
        most = RL_MAX(most, base);
    }
    if (sched_run_cmd(s, CMD_OPEN, RL_MAX(most, 1), RL_MAX(most, 1) + s->chunk, 0, err)) return -1;
    s->n_ctx = engine_n_ctx(s->parts[0].e);
    if (configure_context(s, measure_cap, most, err)) return -1;
    configure_memory(s);
    return 0;
}
