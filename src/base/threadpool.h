/*
 * threadpool.h — the pool that runs rackllm's parallel work: every compute
 * thread (the forward pass's, synth's and quantize's, the bandwidth
 * probe's) is one of its workers. The only other threads are drivers, one
 * per partition, each running an engine's loop (serve/scheduler.c,
 * bench/bench.c), and libmicrohttpd's connection threads.
 *
 * A pool of N threads (the caller counts as one) runs "jobs": a function
 * called once per task index, tasks handed out through an atomic counter so
 * threads that finish early take more and all finish together. Between
 * jobs, workers spin briefly (a decode step issues hundreds of small jobs;
 * waking a sleeping thread would cost more than the job) and then sleep on a
 * condition variable, so an idle process uses no CPU.
 *
 * Optional pinning puts thread i on cpus[i], which is how partitions keep to
 * their own cores.
 */
#ifndef RACKLLM_THREADPOOL_H
#define RACKLLM_THREADPOOL_H

#include "common.h"

typedef struct threadpool threadpool;

/* task: 0..n_tasks-1; thread: 0..n_threads-1 (0 is the caller). */
typedef void (*tp_fn)(void *ctx, int task, int thread);

/* cpus: NULL, or n_threads CPU numbers to pin to (thread i -> cpus[i]). */
threadpool *tp_new(int n_threads, const int *cpus, rl_err *err);
void tp_free(threadpool *tp);
int tp_threads(const threadpool *tp);

/* Runs fn for every task and returns when all are done. Not reentrant: one
 * job at a time per pool. */
void tp_run(threadpool *tp, tp_fn fn, void *ctx, int n_tasks);

/* Like tp_run, but runs everything on the caller when `work` (in rough
 * multiply-adds) is too small to pay for waking other threads. */
void tp_run_sized(threadpool *tp, tp_fn fn, void *ctx, int n_tasks, uint64_t work);

/* Number of CPUs this process may run on. */
int tp_available_cpus(void);

#endif
