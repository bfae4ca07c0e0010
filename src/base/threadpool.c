/*
 * threadpool.c — a job-at-a-time pool with spin-then-sleep workers (see
 * threadpool.h).
 *
 * A job is published by storing its fields and bumping `generation`. Workers
 * watch `generation`: spinning for a short while after each job, then
 * sleeping on `wake` until the next one. The caller takes part in the job,
 * then waits (spinning: jobs are short) until `active` drops to zero.
 */
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#define SPIN_ROUNDS 20000 /* ~50-100 us of polling before a worker sleeps */

typedef struct worker {
    threadpool *tp;
    int index;
    int cpu; /* -1: not pinned */
    pthread_t thread;
} worker;

struct threadpool {
    int n_threads;
    worker *workers; /* n_threads - 1 of them */

    /* the current job */
    tp_fn fn;
    void *ctx;
    int n_tasks;
    atomic_int next_task;
    atomic_int active;        /* workers still inside the current job */
    atomic_uint generation;   /* bumped per job */
    atomic_bool stop;

    pthread_mutex_t lock;     /* guards sleeping + wake */
    pthread_cond_t wake;
    int sleeping;
};

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void run_tasks(threadpool *tp, int thread) {
    for (;;) {
        int t = atomic_fetch_add_explicit(&tp->next_task, 1, memory_order_relaxed);
        if (t >= tp->n_tasks) break;
        tp->fn(tp->ctx, t, thread);
    }
}

static void pin(int cpu) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* Waits for a generation other than `seen`; false when the pool stops. */
static bool wait_for_job(threadpool *tp, unsigned seen) {
    for (int i = 0; i < SPIN_ROUNDS; i++) {
        if (atomic_load_explicit(&tp->generation, memory_order_acquire) != seen) return true;
        if (atomic_load_explicit(&tp->stop, memory_order_relaxed)) return false;
        cpu_relax();
    }
    pthread_mutex_lock(&tp->lock);
    tp->sleeping++;
    while (atomic_load(&tp->generation) == seen && !atomic_load(&tp->stop)) pthread_cond_wait(&tp->wake, &tp->lock);
    tp->sleeping--;
    pthread_mutex_unlock(&tp->lock);
    return !atomic_load(&tp->stop);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    threadpool *tp = w->tp;
    pin(w->cpu);
    unsigned seen = 0;
    while (wait_for_job(tp, seen)) {
        seen = atomic_load_explicit(&tp->generation, memory_order_acquire);
        run_tasks(tp, w->index);
        atomic_fetch_sub_explicit(&tp->active, 1, memory_order_release);
    }
    return NULL;
}

threadpool *tp_new(int n_threads, const int *cpus, rl_err *err) {
    if (n_threads < 1) n_threads = 1;
    threadpool *tp = rl_calloc(1, sizeof *tp, err);
    if (!tp) return NULL;
    tp->n_threads = n_threads;
    pthread_mutex_init(&tp->lock, NULL);
    pthread_cond_init(&tp->wake, NULL);
    tp->workers = rl_calloc((size_t)n_threads, sizeof *tp->workers, err);
    if (!tp->workers) {
        free(tp);
        return NULL;
    }
    if (cpus) pin(cpus[0]);
    for (int i = 1; i < n_threads; i++) {
        worker *w = &tp->workers[i];
        w->tp = tp;
        w->index = i;
        w->cpu = cpus ? cpus[i] : -1;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            tp->n_threads = i; /* tp_free joins the ones that started */
            tp_free(tp);
            rl_fail(err, RL_ERR_INTERNAL, "cannot start thread %d of %d", i, n_threads);
            return NULL;
        }
    }
    return tp;
}

void tp_free(threadpool *tp) {
    if (!tp) return;
    pthread_mutex_lock(&tp->lock);
    atomic_store(&tp->stop, true);
    pthread_cond_broadcast(&tp->wake);
    pthread_mutex_unlock(&tp->lock);
    for (int i = 1; i < tp->n_threads; i++) pthread_join(tp->workers[i].thread, NULL);
    pthread_mutex_destroy(&tp->lock);
    pthread_cond_destroy(&tp->wake);
    free(tp->workers);
    free(tp);
}

int tp_threads(const threadpool *tp) { return tp->n_threads; }

void tp_run(threadpool *tp, tp_fn fn, void *ctx, int n_tasks) {
    if (tp->n_threads == 1 || n_tasks <= 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    tp->fn = fn;
    tp->ctx = ctx;
    tp->n_tasks = n_tasks;
    atomic_store_explicit(&tp->next_task, 0, memory_order_relaxed);
    atomic_store_explicit(&tp->active, tp->n_threads - 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&tp->generation, 1, memory_order_release);
    pthread_mutex_lock(&tp->lock);
    if (tp->sleeping) pthread_cond_broadcast(&tp->wake);
    pthread_mutex_unlock(&tp->lock);
    run_tasks(tp, 0);
    while (atomic_load_explicit(&tp->active, memory_order_acquire) > 0) cpu_relax();
}

/* Below this much work a job runs on the caller alone: a few tens of
 * microseconds, about what handing work to another core costs. */
#define MIN_PARALLEL_WORK (1u << 17)

void tp_run_sized(threadpool *tp, tp_fn fn, void *ctx, int n_tasks, uint64_t work) {
    if (work < MIN_PARALLEL_WORK) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    tp_run(tp, fn, ctx, n_tasks);
}

int tp_available_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
