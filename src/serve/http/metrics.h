/*
 * metrics.h — what the server counts, and /metrics in Prometheus' text
 * format.
 *
 * HTTP answers are counted here, by endpoint and status code, and so are
 * the connections the server closed on its own (limits, deadlines, bodies
 * too large) (atomics: any HTTP thread counts, /metrics reads); everything
 * about sessions, tokens, latencies and capacity is counted by the
 * scheduler where it happens and read from a sched_stats snapshot, the
 * HTTP side's gauges (connections, prep) from an http_stats one.
 */
#ifndef RACKLLM_SERVER_METRICS_H
#define RACKLLM_SERVER_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>

#include "prep.h"
#include "serve/scheduler.h"

typedef enum metrics_endpoint {
    EP_CHAT = 0,
    EP_COMPLETIONS,
    EP_MODELS,
    EP_HEALTH,
    EP_METRICS,
    EP_STATS, /* /v1/stats, /v1/plan/... (the pages' data) */
    EP_PAGES, /* /, /dashboard, /plan, /web/... */
    EP_OTHER,
    EP_COUNT
} metrics_endpoint;

#define METRICS_N_CODES 14 /* the codes the server answers, and "other" */

/* Why the server closed a connection on its own. */
typedef enum metrics_close {
    CLOSE_LIMIT = 0,     /* over --max-connections or --max-connections-per-ip at accept */
    CLOSE_HEADER_TIMEOUT,
    CLOSE_BODY_TIMEOUT,
    CLOSE_BODY_TOO_LARGE, /* a chunked body past --max-body */
    CLOSE_COUNT
} metrics_close;

typedef struct metrics {
    atomic_ullong requests[EP_COUNT][METRICS_N_CODES];
    atomic_ullong closed[CLOSE_COUNT];
} metrics;

/* The HTTP side's figures now. */
typedef struct http_stats {
    int connections;  /* open */
    int connections_peak; /* most open at once since start */
    int parked;       /* requests waiting without a thread */
    prep_stats prep;
} http_stats;

/* Counts one answer. */
void metrics_count(metrics *m, metrics_endpoint ep, int status);
/* Counts a connection the server closed. */
void metrics_close_count(metrics *m, metrics_close why);
/* The watcher's cut: past the header deadline, or the body's. */
void metrics_cut(metrics *m, bool headers);

/* The exposition text (malloc'ed; NULL if out of memory). */
char *metrics_render(const metrics *m, const sched_stats *st, const http_stats *hs);

#endif
