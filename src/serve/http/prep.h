/*
 * prep.h — the bounded pool where the server's pre-admission work runs:
 * parsing a request body, rendering the chat template, tokenizing. That
 * work scales with what clients send, not with what the server admits, so
 * it gets a fixed number of threads (--prep-threads) at the lowest CPU
 * priority (nice 19): however many requests arrive at once, it never
 * takes more than those threads, and never the cores from the decoders
 * that keep every running session at its floor. Jobs wait in FIFO order;
 * the queue is bounded by the connections that can hold a request.
 */
#ifndef RACKLLM_PREP_H
#define RACKLLM_PREP_H

#include <stdbool.h>

#include "base/common.h"

typedef struct prep prep;

/* Starts `threads` threads (>= 1) that run fn(job) for each job. */
prep *prep_start(int threads, void (*fn)(void *job), rl_err *err);
/* Queues a job (false: out of memory). */
bool prep_submit(prep *p, void *job);
/* Finishes the jobs that run, drops the queued ones (each given to
 * `dropped`, which may be NULL), joins the threads, frees the pool. */
void prep_stop(prep *p, void (*dropped)(void *job));

typedef struct prep_stats {
    int queued, running; /* now */
    int running_peak;    /* most jobs at once since start */
    unsigned long long done;
} prep_stats;
prep_stats prep_get_stats(prep *p);

#endif
