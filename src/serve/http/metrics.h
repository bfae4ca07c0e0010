/*
 * metrics.h — what the server counts, and /metrics in Prometheus' text
 * format.
 *
 * HTTP answers are counted here, by endpoint and status code (atomics: any
 * connection thread counts, /metrics reads); everything about sessions,
 * tokens, latencies and capacity is counted by the scheduler where it
 * happens and read from a sched_stats snapshot.
 */
#ifndef RACKLLM_SERVER_METRICS_H
#define RACKLLM_SERVER_METRICS_H

#include <stdatomic.h>

#include "serve/scheduler.h"

typedef enum metrics_endpoint {
    EP_CHAT = 0,
    EP_COMPLETIONS,
    EP_MODELS,
    EP_HEALTH,
    EP_METRICS,
    EP_OTHER,
    EP_COUNT
} metrics_endpoint;

#define METRICS_N_CODES 11 /* the codes the server answers, and "other" */

typedef struct metrics {
    atomic_ullong requests[EP_COUNT][METRICS_N_CODES];
} metrics;

/* Counts one answer. */
void metrics_count(metrics *m, metrics_endpoint ep, int status);

/* The exposition text (malloc'ed; NULL if out of memory). */
char *metrics_render(const metrics *m, const sched_stats *st);

#endif
