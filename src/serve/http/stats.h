/*
 * stats.h — /v1/stats: everything the dashboard draws, as one JSON object
 * read from the scheduler (sched_get_stats, its running sessions, its cost
 * model, its partitions' cores).
 *
 * The object (docs/server.md lists every field): the floor and capacity
 * (now, at start, and whether measured or given, with the start-up step
 * times t(n) it was judged by), active and queued sessions, each running
 * session's tok/s, TTFT and inter-token histograms, counters (admitted,
 * rejected: the 429s), the context reserved, and each partition's cores.
 * Counters are cumulative; the dashboard turns them into rates.
 */
#ifndef RACKLLM_SERVER_STATS_H
#define RACKLLM_SERVER_STATS_H

#include <cjson/cJSON.h>

#include "serve/scheduler.h"

/* The prefill figures /health and /v1/stats share, as o.prefill:
 * backlog_tokens, tokens_per_second, expected_ttft_seconds (a request of
 * the mean prompt, now), ttft_limit_seconds (null: none). */
void http_add_prefill(cJSON *o, const sched_stats *st);

/* The memory figures /health and /v1/stats share: o.memory {available,
 * budget, reserved, session, weights _bytes} and o.prefix_cache {budget_bytes,
 * bytes, entries, lookups, hits, reused_tokens, evictions} (null: none). */
void http_add_memory(cJSON *o, const sched_stats *st);

/* The JSON text (malloc'ed; NULL if out of memory). */
char *stats_json(sched *s, const char *model_id);

#endif
