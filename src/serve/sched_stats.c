/*
 * sched_stats.c — the scheduler's figures for /health and /metrics: each
 * partition's counters and its time-to-first-token and inter-token
 * histograms (under its stats_lock), gathered with the admission figures
 * (under sched.lock) into one sched_stats.
 */
#include <math.h>
#include <string.h>

#include "sched_internal.h"

static const double TTFT_BOUNDS[SCHED_HIST_BUCKETS] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                       1, 2.5, 5, 10, 30, 60};
/* Around the 0.1 s that a 10 tok/s floor allows between tokens. */
static const double ITL_BOUNDS[SCHED_HIST_BUCKETS] = {0.005, 0.01, 0.02, 0.035, 0.05, 0.075,
                                                      0.1, 0.15, 0.25, 0.5, 1, 2.5};

static void hist_init(sched_hist *h, const double *bounds) {
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
}

void sched_hist_add(sched_hist *h, double v) {
    int i = 0;
    while (i < SCHED_HIST_BUCKETS && v > h->bounds[i]) i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

static void hist_merge(sched_hist *into, const sched_hist *h) {
    for (int i = 0; i <= SCHED_HIST_BUCKETS; i++) into->counts[i] += h->counts[i];
    into->count += h->count;
    into->sum += h->sum;
}

/* A partition's counters and histograms, at start. */
void sched_part_stats_init(partition *p) {
    pthread_mutex_init(&p->stats_lock, NULL);
    hist_init(&p->ttft, TTFT_BOUNDS);
    hist_init(&p->itl, ITL_BOUNDS);
}

void sched_get_stats(sched *s, sched_stats *o) {
    memset(o, 0, sizeof *o);
    hist_init(&o->ttft, TTFT_BOUNDS);
    hist_init(&o->itl, ITL_BOUNDS);
    pthread_mutex_lock(&s->lock);
    o->floor_tps = s->p.floor_tps;
    o->partitions = s->K;
    o->prefill_chunk = s->chunk;
    o->n_ctx = s->n_ctx;
    o->capacity_base = s->capacity_base;
    o->capacity = sched_total_capacity_locked(s);
    o->ctx_cost = s->cost.per_token;
    o->mem_available = s->mem_available;
    o->mem_budget = s->mem_budget;
    o->mem_reserved = s->mem_used;
    o->mem_session = s->mem_session;
    o->weights_bytes = s->m->weight_bytes;
    o->capacity_memory = s->mem_budget && s->mem_session ? (int)RL_MIN(s->mem_budget / s->mem_session, 1u << 30) : -1;
    for (int i = 0; i < s->K; i++) {
        o->active += s->parts[i].n_assigned;
        o->ctx_reserved += s->parts[i].ctx_load;
        o->capacity_lowered += s->parts[i].ctl.lowered;
    }
    o->free_sessions = sched_free_sessions_locked(s);
    o->queued = s->q_len;
    o->queue_max = s->p.queue_max;
    o->draining = s->draining;
    o->admitted = s->admitted;
    o->rejected_full = s->rej_full;
    o->rejected_timeout = s->rej_timeout;
    o->rejected_draining = s->rej_draining;
    o->rejected_ttft = s->rej_ttft;
    o->ttft_limit = s->p.ttft_limit;
    o->finished[SCHED_FINISH_CANCELLED] = s->queue_cancelled;
    for (int i = 0; i < s->K; i++) {
        o->prefill_backlog += s->parts[i].prompt_load;
        o->prefill_rate += s->parts[i].prefill_rate;
    }
    int mean_prompt = (int)lround(s->mean_prompt);
    pthread_mutex_unlock(&s->lock);
    o->expected_ttft = sched_expected_wait(s, mean_prompt);
    o->prefix_on = s->pc != NULL;
    if (s->pc) o->prefix = prefix_cache_get_stats(s->pc);
    double sum = 0;
    for (int i = 0; i < s->K; i++) {
        partition *p = &s->parts[i];
        pthread_mutex_lock(&p->stats_lock);
        hist_merge(&o->ttft, &p->ttft);
        hist_merge(&o->itl, &p->itl);
        o->prompt_tokens += p->prompt_tokens;
        o->completion_tokens += p->completion_tokens;
        for (int f = 0; f <= SCHED_FINISH_ERROR; f++) o->finished[f] += p->finished[f];
        if (p->tps_n > 0) {
            o->tps_min = o->tps_sessions == 0 ? p->tps_min : RL_MIN(o->tps_min, p->tps_min);
            o->tps_sessions += p->tps_n;
            sum += p->tps_sum;
        }
        o->active_peak += p->peak;
        pthread_mutex_unlock(&p->stats_lock);
    }
    o->tps_mean = o->tps_sessions > 0 ? sum / o->tps_sessions : 0;
}

int sched_get_sessions(sched *s, sched_session_info *out, int max) {
    double now = rl_now();
    int n = 0;
    for (int i = 0; i < s->K; i++) {
        partition *p = &s->parts[i];
        pthread_mutex_lock(&p->stats_lock);
        for (int j = 0; j < p->n_live; j++, n++) {
            if (n >= max) continue;
            out[n] = p->live[j];
            out[n].age = now - p->live[j].age; /* published as the submit time */
        }
        pthread_mutex_unlock(&p->stats_lock);
    }
    return n;
}

bool sched_capacity_measured(const sched *s) { return s->p.capacity <= 0; }

void sched_get_cost(sched *s, sched_cost *out) {
    pthread_mutex_lock(&s->lock);
    *out = s->cost;
    pthread_mutex_unlock(&s->lock);
}

int sched_partition_cpus(const sched *s, int i, int *cpus, int max) {
    const partition *p = &s->parts[i];
    for (int j = 0; j < p->n_threads && j < max; j++) cpus[j] = p->cpus ? p->cpus[j] : -1;
    return p->n_threads;
}
