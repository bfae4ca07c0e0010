/*
 * prep.c — the pre-admission pool (see prep.h): a FIFO of jobs under one
 * lock, and threads that lower their own priority to nice 19 when they
 * start and then take jobs one at a time.
 */
#include "prep.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct job {
    void *arg;
    struct job *next;
} job;

struct prep {
    void (*fn)(void *job);
    pthread_t *threads;
    int n_threads, n_started;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    job *head, *tail;
    bool stop;
    int queued, running, running_peak;
    unsigned long long done;
};

static void *prep_main(void *arg) {
    prep *p = arg;
    /* The lowest priority, this thread alone (Linux: a thread's nice is its
     * own): it runs on what the decoders leave. */
    setpriority(PRIO_PROCESS, (id_t)gettid(), 19);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->head && !p->stop) pthread_cond_wait(&p->cond, &p->lock);
        if (p->stop) break;
        job *j = p->head;
        p->head = j->next;
        if (!p->head) p->tail = NULL;
        p->queued--;
        p->running++;
        if (p->running > p->running_peak) p->running_peak = p->running;
        pthread_mutex_unlock(&p->lock);
        p->fn(j->arg);
        free(j);
        pthread_mutex_lock(&p->lock);
        p->running--;
        p->done++;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

prep *prep_start(int threads, void (*fn)(void *job), rl_err *err) {
    prep *p = rl_calloc(1, sizeof *p, err);
    if (!p) return NULL;
    p->fn = fn;
    p->n_threads = threads < 1 ? 1 : threads;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    p->threads = rl_calloc((size_t)p->n_threads, sizeof *p->threads, err);
    for (int i = 0; p->threads && i < p->n_threads; i++) {
        if (pthread_create(&p->threads[i], NULL, prep_main, p) != 0) {
            rl_fail(err, RL_ERR_INTERNAL, "cannot start prep thread %d", i);
            break;
        }
        p->n_started++;
    }
    if (p->n_started < p->n_threads) {
        prep_stop(p, NULL);
        return NULL;
    }
    return p;
}

bool prep_submit(prep *p, void *arg) {
    job *j = malloc(sizeof *j);
    if (!j) return false;
    j->arg = arg;
    j->next = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->tail) p->tail->next = j;
    else p->head = j;
    p->tail = j;
    p->queued++;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return true;
}

void prep_stop(prep *p, void (*dropped)(void *job)) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->threads[i], NULL);
    while (p->head) {
        job *j = p->head;
        p->head = j->next;
        if (dropped) dropped(j->arg);
        free(j);
    }
    free(p->threads);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p);
}

prep_stats prep_get_stats(prep *p) {
    pthread_mutex_lock(&p->lock);
    prep_stats st = {p->queued, p->running, p->running_peak, p->done};
    pthread_mutex_unlock(&p->lock);
    return st;
}
