/*
 * metrics.c — counting answers and writing the Prometheus exposition (see
 * metrics.h). Names follow Prometheus' conventions: base units (seconds),
 * counters end in _total, histograms have cumulative `le` buckets.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int CODES[METRICS_N_CODES - 1] = {200, 204, 400, 401, 403, 404, 405, 408, 413, 415, 429, 500, 503};
static const char *const ENDPOINTS[EP_COUNT] = {"chat_completions", "completions", "models",
                                                "health", "metrics", "stats", "pages", "other"};

void metrics_count(metrics *m, metrics_endpoint ep, int status) {
    int i = 0;
    while (i < METRICS_N_CODES - 1 && CODES[i] != status) i++;
    atomic_fetch_add_explicit(&m->requests[ep][i], 1, memory_order_relaxed);
}

void metrics_close_count(metrics *m, metrics_close why) {
    atomic_fetch_add_explicit(&m->closed[why], 1, memory_order_relaxed);
}

void metrics_cut(metrics *m, bool headers) { metrics_close_count(m, headers ? CLOSE_HEADER_TIMEOUT : CLOSE_BODY_TIMEOUT); }

/* A growing text. */
typedef struct buf {
    char *s;
    size_t n, cap;
    bool failed;
} buf;

static void out(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(buf *b, const char *fmt, ...) {
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)k;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = true;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
}

static void head(buf *b, const char *name, const char *type, const char *help) {
    out(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void gauge(buf *b, const char *name, const char *help, double v) {
    head(b, name, "gauge", help);
    out(b, "%s %.17g\n", name, v);
}

static void counter(buf *b, const char *name, const char *help, unsigned long long v) {
    head(b, name, "counter", help);
    out(b, "%s %llu\n", name, v);
}

static void histogram(buf *b, const char *name, const char *help, const sched_hist *h) {
    head(b, name, "histogram", help);
    unsigned long long cum = 0;
    for (int i = 0; i < SCHED_HIST_BUCKETS; i++) {
        cum += h->counts[i];
        out(b, "%s_bucket{le=\"%g\"} %llu\n", name, h->bounds[i], cum);
    }
    out(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    out(b, "%s_sum %.17g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->count);
}

static void http_figures(buf *b, const metrics *m, const http_stats *hs) {
    static const char *const CLOSE[CLOSE_COUNT] = {"limit", "header_timeout", "body_timeout", "body_too_large"};
    head(b, "rackllm_connections_closed_total", "counter",
         "Connections the server closed on its own: over a connection limit, past a deadline, a body too large.");
    for (int i = 0; i < CLOSE_COUNT; i++)
        out(b, "rackllm_connections_closed_total{reason=\"%s\"} %llu\n", CLOSE[i],
            (unsigned long long)atomic_load_explicit(&m->closed[i], memory_order_relaxed));
    gauge(b, "rackllm_connections", "Open HTTP connections.", hs->connections);
    gauge(b, "rackllm_connections_peak", "Most HTTP connections open at once since start (at most --max-connections).",
          hs->connections_peak);
    gauge(b, "rackllm_requests_parked", "Requests waiting (prep, queue, next token) without a thread.", hs->parked);
    gauge(b, "rackllm_prep_queue_length", "Requests waiting to be parsed and tokenized.", hs->prep.queued);
    gauge(b, "rackllm_prep_running", "Requests being parsed and tokenized now (at most --prep-threads).",
          hs->prep.running);
    gauge(b, "rackllm_prep_running_peak", "Most requests parsed and tokenized at once since start.",
          hs->prep.running_peak);
    counter(b, "rackllm_prep_done_total", "Requests parsed and tokenized.", hs->prep.done);
}

char *metrics_render(const metrics *m, const sched_stats *st, const http_stats *hs) {
    buf b = {.cap = 8192};
    b.s = malloc(b.cap);
    if (!b.s) return NULL;

    head(&b, "rackllm_requests_total", "counter", "HTTP requests answered, by endpoint and status code.");
    for (int e = 0; e < EP_COUNT; e++)
        for (int i = 0; i < METRICS_N_CODES; i++) {
            unsigned long long v = atomic_load_explicit(&m->requests[e][i], memory_order_relaxed);
            if (!v) continue;
            char code[16];
            if (i < METRICS_N_CODES - 1) snprintf(code, sizeof code, "%d", CODES[i]);
            else snprintf(code, sizeof code, "other");
            out(&b, "rackllm_requests_total{endpoint=\"%s\",code=\"%s\"} %llu\n", ENDPOINTS[e], code, v);
        }

    counter(&b, "rackllm_prompt_tokens_total", "Prompt tokens of admitted requests.", st->prompt_tokens);
    counter(&b, "rackllm_completion_tokens_total", "Tokens generated.", st->completion_tokens);
    histogram(&b, "rackllm_time_to_first_token_seconds",
              "Seconds from a request's arrival (queueing included) to its first token.", &st->ttft);
    histogram(&b, "rackllm_inter_token_latency_seconds", "Seconds between consecutive tokens of a session.",
              &st->itl);

    gauge(&b, "rackllm_active_sessions", "Sessions admitted and not finished.", st->active);
    gauge(&b, "rackllm_active_sessions_peak", "Most sessions in the engines at once since start.", st->active_peak);
    gauge(&b, "rackllm_queue_length", "Requests waiting for a session slot.", st->queued);
    gauge(&b, "rackllm_queue_limit", "Most requests that may wait.", st->queue_max);
    gauge(&b, "rackllm_capacity_sessions", "Sessions admitted at once now (lowered while sessions fall below the floor).",
          st->capacity);
    gauge(&b, "rackllm_capacity_calibrated_sessions", "Sessions that hold the floor, from calibration or --capacity.",
          st->capacity_base);
    counter(&b, "rackllm_capacity_lowered_total", "Times a partition lowered its capacity (sessions below the floor).",
            st->capacity_lowered);
    gauge(&b, "rackllm_floor_tokens_per_second", "The per-session speed the server promises.", st->floor_tps);
    gauge(&b, "rackllm_context_reserved_tokens",
          "Tokens of context the admitted sessions may reach (prompt + max_tokens, or the whole context).",
          st->ctx_reserved);
    gauge(&b, "rackllm_context_cost_seconds",
          "Seconds a step spends per token of context its sessions hold (attention; measured at start).",
          st->ctx_cost);
    gauge(&b, "rackllm_memory_available_bytes", "Memory available to the process at start (0: unknown).",
          (double)st->mem_available);
    gauge(&b, "rackllm_memory_budget_bytes", "Memory all sessions may allocate (0: no limit).", (double)st->mem_budget);
    gauge(&b, "rackllm_memory_reserved_bytes", "Memory the admitted sessions may allocate (KV caches at their reach).",
          (double)st->mem_reserved);
    gauge(&b, "rackllm_memory_session_bytes", "Memory one session at the full context may allocate.",
          (double)st->mem_session);
    gauge(&b, "rackllm_weights_bytes", "The model's tensors.", (double)st->weights_bytes);
    if (st->prefix_on) {
        const prefix_cache_stats *pc = &st->prefix;
        gauge(&b, "rackllm_prefix_cache_budget_bytes", "Memory the prefix cache may hold.", (double)pc->budget);
        gauge(&b, "rackllm_prefix_cache_bytes", "Memory the prefix cache holds (finished sessions' KV).",
              (double)pc->bytes);
        gauge(&b, "rackllm_prefix_cache_entries", "Token sequences the prefix cache holds.", pc->entries);
        counter(&b, "rackllm_prefix_cache_lookups_total", "Sessions started with a prefix cache lookup.", pc->lookups);
        counter(&b, "rackllm_prefix_cache_hits_total", "Sessions that started from a cached prefix.", pc->hits);
        counter(&b, "rackllm_prefix_cache_reused_tokens_total", "Prompt tokens taken from the prefix cache.",
                pc->tokens_reused);
        counter(&b, "rackllm_prefix_cache_evictions_total", "Entries evicted for room (least recently used).",
                pc->evictions);
    }
    head(&b, "rackllm_session_tokens_per_second", "gauge",
         "Measured tok/s of running sessions over their last tokens (slowest and mean).");
    out(&b, "rackllm_session_tokens_per_second{stat=\"min\"} %.17g\n", st->tps_min);
    out(&b, "rackllm_session_tokens_per_second{stat=\"mean\"} %.17g\n", st->tps_mean);
    gauge(&b, "rackllm_draining", "1 while shutting down.", st->draining);
    gauge(&b, "rackllm_prefill_backlog_tokens", "Prompt tokens admitted and not yet through.", st->prefill_backlog);
    gauge(&b, "rackllm_prefill_tokens_per_second", "Rate prompts go in while some wait (measured).", st->prefill_rate);
    gauge(&b, "rackllm_expected_ttft_seconds", "Expected time to first token of a request of the mean prompt now.",
          st->expected_ttft);
    http_figures(&b, m, hs);

    counter(&b, "rackllm_admitted_total", "Requests given a session slot.", st->admitted);
    head(&b, "rackllm_rejections_total", "counter", "Requests turned away, by reason.");
    out(&b, "rackllm_rejections_total{reason=\"queue_full\"} %llu\n", (unsigned long long)st->rejected_full);
    out(&b, "rackllm_rejections_total{reason=\"queue_timeout\"} %llu\n", (unsigned long long)st->rejected_timeout);
    out(&b, "rackllm_rejections_total{reason=\"draining\"} %llu\n", (unsigned long long)st->rejected_draining);
    out(&b, "rackllm_rejections_total{reason=\"ttft_limit\"} %llu\n", (unsigned long long)st->rejected_ttft);
    static const char *const FINISH[] = {NULL, "stop", "length", "cancelled", "aborted", "error"};
    head(&b, "rackllm_sessions_finished_total", "counter", "Sessions ended, by reason.");
    for (int f = SCHED_FINISH_STOP; f <= SCHED_FINISH_ERROR; f++)
        out(&b, "rackllm_sessions_finished_total{reason=\"%s\"} %llu\n", FINISH[f], (unsigned long long)st->finished[f]);

    if (b.failed) {
        free(b.s);
        return NULL;
    }
    return b.s;
}
