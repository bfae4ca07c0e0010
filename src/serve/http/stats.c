/*
 * stats.c — the /v1/stats object (see stats.h), built with cJSON from one
 * sched_stats snapshot, the running sessions and the cost model.
 */
#include "stats.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <time.h>

#define MAX_SHOWN 1024 /* sessions listed at most (the count is always whole) */
#define MAX_CPUS 4096

static void add_hist(cJSON *o, const char *key, const sched_hist *h) {
    cJSON *j = cJSON_AddObjectToObject(o, key);
    cJSON *b = cJSON_AddArrayToObject(j, "bounds_seconds");
    cJSON *c = cJSON_AddArrayToObject(j, "counts");
    for (int i = 0; i < SCHED_HIST_BUCKETS; i++) cJSON_AddItemToArray(b, cJSON_CreateNumber(h->bounds[i]));
    for (int i = 0; i <= SCHED_HIST_BUCKETS; i++) cJSON_AddItemToArray(c, cJSON_CreateNumber((double)h->counts[i]));
    cJSON_AddNumberToObject(j, "count", (double)h->count);
    cJSON_AddNumberToObject(j, "sum_seconds", h->sum);
}

/* Capacity, and how it was set: measured (the step times it was judged
 * by) or given. */
static void add_capacity(cJSON *o, sched *s, const sched_stats *st) {
    cJSON *c = cJSON_AddObjectToObject(o, "capacity");
    cJSON_AddNumberToObject(c, "now", st->capacity);
    cJSON_AddNumberToObject(c, "at_start", st->capacity_base);
    cJSON_AddStringToObject(c, "how", sched_capacity_measured(s) ? "measured" : "given");
    cJSON_AddNumberToObject(c, "times_lowered", (double)st->capacity_lowered);
    sched_cost cost;
    sched_get_cost(s, &cost);
    cJSON *pts = cJSON_AddArrayToObject(c, "step_seconds_by_sessions");
    for (int i = 0; i < cost.n_points; i++) {
        cJSON *p = cJSON_CreateObject();
        cJSON_AddNumberToObject(p, "sessions", cost.sessions[i]);
        cJSON_AddNumberToObject(p, "step_seconds", cost.step[i]);
        cJSON_AddItemToArray(pts, p);
    }
    cJSON_AddNumberToObject(c, "period_seconds", cost.period);
}

static void add_sessions(cJSON *o, sched *s) {
    sched_session_info *info = malloc(MAX_SHOWN * sizeof *info);
    int n = info ? sched_get_sessions(s, info, MAX_SHOWN) : 0;
    cJSON_AddNumberToObject(o, "running_sessions", n);
    cJSON *arr = cJSON_AddArrayToObject(o, "sessions");
    for (int i = 0; i < n && i < MAX_SHOWN; i++) {
        const sched_session_info *f = &info[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "partition", f->partition);
        cJSON_AddNumberToObject(j, "prompt_tokens", f->n_prompt);
        cJSON_AddNumberToObject(j, "generated_tokens", f->n_generated);
        cJSON_AddBoolToObject(j, "prefilling", f->prefilling);
        cJSON_AddNumberToObject(j, "tokens_per_second", f->tps);
        cJSON_AddNumberToObject(j, "ttft_seconds", f->ttft);
        cJSON_AddNumberToObject(j, "age_seconds", f->age);
        cJSON_AddItemToArray(arr, j);
    }
    free(info);
}

static void add_partitions(cJSON *o, sched *s, int k) {
    int *cpus = malloc(MAX_CPUS * sizeof *cpus);
    cJSON *arr = cJSON_AddArrayToObject(o, "partitions");
    for (int i = 0; cpus && i < k; i++) {
        int n = sched_partition_cpus(s, i, cpus, MAX_CPUS);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "threads", n);
        cJSON *c = cJSON_AddArrayToObject(j, "cpus"); /* empty: not pinned */
        for (int t = 0; t < n && t < MAX_CPUS; t++)
            if (cpus[t] >= 0) cJSON_AddItemToArray(c, cJSON_CreateNumber(cpus[t]));
        cJSON_AddItemToArray(arr, j);
    }
    free(cpus);
}

void http_add_prefill(cJSON *o, const sched_stats *st) {
    cJSON *f = cJSON_AddObjectToObject(o, "prefill");
    cJSON_AddNumberToObject(f, "backlog_tokens", st->prefill_backlog);
    cJSON_AddNumberToObject(f, "tokens_per_second", st->prefill_rate);
    cJSON_AddNumberToObject(f, "expected_ttft_seconds", st->expected_ttft);
    if (st->ttft_limit > 0) cJSON_AddNumberToObject(f, "ttft_limit_seconds", st->ttft_limit);
    else cJSON_AddNullToObject(f, "ttft_limit_seconds");
}

void http_add_memory(cJSON *o, const sched_stats *st) {
    cJSON *mem = cJSON_AddObjectToObject(o, "memory");
    cJSON_AddNumberToObject(mem, "available_bytes", (double)st->mem_available);
    cJSON_AddNumberToObject(mem, "budget_bytes", (double)st->mem_budget);
    cJSON_AddNumberToObject(mem, "reserved_bytes", (double)st->mem_reserved);
    cJSON_AddNumberToObject(mem, "session_bytes", (double)st->mem_session);
    cJSON_AddNumberToObject(mem, "weights_bytes", (double)st->weights_bytes);
    if (!st->prefix_on) {
        cJSON_AddNullToObject(o, "prefix_cache");
        return;
    }
    cJSON *pc = cJSON_AddObjectToObject(o, "prefix_cache");
    cJSON_AddNumberToObject(pc, "budget_bytes", (double)st->prefix.budget);
    cJSON_AddNumberToObject(pc, "bytes", (double)st->prefix.bytes);
    cJSON_AddNumberToObject(pc, "entries", st->prefix.entries);
    cJSON_AddNumberToObject(pc, "lookups", (double)st->prefix.lookups);
    cJSON_AddNumberToObject(pc, "hits", (double)st->prefix.hits);
    cJSON_AddNumberToObject(pc, "reused_tokens", (double)st->prefix.tokens_reused);
    cJSON_AddNumberToObject(pc, "evictions", (double)st->prefix.evictions);
}

char *stats_json(sched *s, const char *model_id) {
    sched_stats st;
    sched_get_stats(s, &st);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "model", model_id);
    cJSON_AddNumberToObject(o, "time", (double)ts.tv_sec + ts.tv_nsec * 1e-9);
    cJSON_AddStringToObject(o, "status", st.draining ? "draining" : "ok");
    cJSON_AddNumberToObject(o, "floor_tokens_per_second", st.floor_tps);
    add_capacity(o, s, &st);
    cJSON_AddNumberToObject(o, "active_sessions", st.active);
    cJSON_AddNumberToObject(o, "active_sessions_peak", st.active_peak);
    cJSON_AddNumberToObject(o, "queue_length", st.queued);
    cJSON_AddNumberToObject(o, "queue_limit", st.queue_max);
    add_sessions(o, s);
    cJSON *tps = cJSON_AddObjectToObject(o, "tokens_per_second");
    cJSON_AddNumberToObject(tps, "min", st.tps_min);
    cJSON_AddNumberToObject(tps, "mean", st.tps_mean);
    cJSON_AddNumberToObject(tps, "sessions", st.tps_sessions);
    add_hist(o, "ttft", &st.ttft);
    add_hist(o, "inter_token", &st.itl);
    cJSON *n = cJSON_AddObjectToObject(o, "counters");
    cJSON_AddNumberToObject(n, "admitted", (double)st.admitted);
    cJSON_AddNumberToObject(n, "rejected_full", (double)st.rejected_full);
    cJSON_AddNumberToObject(n, "rejected_timeout", (double)st.rejected_timeout);
    cJSON_AddNumberToObject(n, "rejected_draining", (double)st.rejected_draining);
    cJSON_AddNumberToObject(n, "rejected_ttft", (double)st.rejected_ttft);
    cJSON_AddNumberToObject(n, "prompt_tokens", (double)st.prompt_tokens);
    cJSON_AddNumberToObject(n, "completion_tokens", (double)st.completion_tokens);
    cJSON *c = cJSON_AddObjectToObject(o, "context");
    cJSON_AddNumberToObject(c, "per_session", st.n_ctx);
    cJSON_AddNumberToObject(c, "reserved_tokens", st.ctx_reserved);
    cJSON_AddNumberToObject(c, "cost_seconds_per_token", st.ctx_cost);
    cJSON_AddNumberToObject(o, "prefill_chunk", st.prefill_chunk);
    http_add_prefill(o, &st);
    http_add_memory(o, &st);
    add_partitions(o, s, st.partitions);
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return json;
}
