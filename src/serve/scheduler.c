/*
 * scheduler.c — the scheduler's life: its partitions and their threads,
 * start-up and shutdown (see scheduler.h for the contract and the locking
 * rules, sched_internal.h for the other files of the module).
 *
 * Start-up is a little protocol between sched_new and the partition
 * threads, because an engine must be opened on the thread that will drive
 * it (the thread pool pins its caller to the partition's first core):
 * sched_new posts a command (open an engine, measure prefill, run a
 * calibration trial, measure attention, serve), every partition thread
 * runs it and reports; after "serve" each thread stays in its serving loop
 * (sched_loop.c) until sched_free.
 */
#include <stdlib.h>
#include <string.h>

#include "base/machine.h"
#include "base/threadpool.h"
#include "sched_internal.h"

sched_params sched_default_params(void) {
    sched_params p = {0};
    p.floor_tps = 10;
    p.partitions = 1;
    p.queue_max = -1;
    p.queue_timeout = 30;
    return p;
}

/* A partition thread: runs the start-up commands sched_new posts, then
 * serves until the scheduler stops. */
static void *part_main(void *arg) {
    partition *p = arg;
    sched *s = p->s;
    int seen = 0;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (s->cmd_gen == seen) pthread_cond_wait(&s->cond, &s->lock);
        seen = s->cmd_gen;
        enum cmd cmd = s->cmd;
        int seqs = s->cmd_seqs, batch = s->cmd_batch, n = s->cmd_n;
        pthread_mutex_unlock(&s->lock);
        if (cmd == CMD_QUIT) break;
        if (cmd == CMD_SERVE) {
            sched_serve(p);
            break;
        }
        rl_err err = {0};
        double result = 0;
        int rc = 0;
        if (cmd == CMD_OPEN) rc = sched_part_open(p, seqs, batch, &err);
        else if (cmd == CMD_PROBE && p->index == 0) rc = sched_part_probe(p, &result, &err);
        else if (cmd == CMD_TRIAL) rc = sched_part_trial(p, n, &result, &err);
        else if (cmd == CMD_ATTN) rc = engine_attention_cost(p->e, &result, &err);
        pthread_mutex_lock(&s->lock);
        p->result = result;
        if (rc && !s->cmd_failed) {
            s->cmd_failed = true;
            s->cmd_err = err;
        }
        s->cmd_done++;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->lock);
    }
    engine_close(p->e);
    p->e = NULL;
    return NULL;
}

/* Posts a start-up command to every partition and waits for all. */
int sched_run_cmd(sched *s, enum cmd cmd, int seqs, int batch, int n, rl_err *err) {
    pthread_mutex_lock(&s->lock);
    s->cmd = cmd;
    s->cmd_seqs = seqs;
    s->cmd_batch = batch;
    s->cmd_n = n;
    s->cmd_done = 0;
    s->cmd_gen++;
    pthread_cond_broadcast(&s->cond);
    if (cmd != CMD_SERVE && cmd != CMD_QUIT)
        while (s->cmd_done < s->K) pthread_cond_wait(&s->cond, &s->lock);
    int rc = 0;
    if (s->cmd_failed) {
        *err = s->cmd_err;
        rc = -1;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int start_partitions(sched *s, rl_err *err) {
    int n_cpu = tp_available_cpus();
    int T = s->p.n_threads > 0 ? s->p.n_threads : n_cpu;
    if (T < s->K)
        return rl_fail(err, RL_ERR_INPUT, "%d threads cannot make %d partitions (one thread each at least)", T, s->K);
    int cpu_list[CPU_SETSIZE];
    int n_list = machine_cpus(cpu_list, CPU_SETSIZE);
    for (int i = 0; i < s->K; i++) {
        partition *p = &s->parts[i];
        p->s = s;
        p->index = i;
        int first;
        p->n_threads = machine_split(T, s->K, i, &first);
        if (s->K > 1) { /* partitions keep to their own cores */
            p->cpus = rl_calloc((size_t)p->n_threads, sizeof *p->cpus, err);
            if (!p->cpus) return -1;
            machine_partition_cpus(cpu_list, n_list, T, s->K, i, p->cpus, p->n_threads);
        }
        cond_init_mono(&p->wake);
        sched_part_stats_init(p);
        p->piece_cap = tok_stream_bound(s->m->tok) + 8;
        p->piece = malloc(p->piece_cap);
        p->out = malloc(p->piece_cap + STOP_MAX_LEN + 8);
        if (!p->piece || !p->out) return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
        if (pthread_create(&p->thread, NULL, part_main, p) != 0)
            return rl_fail(err, RL_ERR_INTERNAL, "cannot start partition thread %d", i);
        p->started = true;
    }
    return 0;
}

/* The prefix cache, after calibration (whose trial sequences are nobody's
 * prefix): its budget comes out of the sessions' memory. */
static int start_prefix_cache(sched *s, rl_err *err) {
    uint64_t bytes = s->p.prefix_cache_bytes;
    if (bytes == SCHED_PREFIX_AUTO) bytes = s->mem_budget ? RL_MIN(s->mem_budget / 10, 1ull << 30) : 256ull << 20;
    if (bytes == 0) return 0;
    if (!(s->pc = prefix_cache_new(bytes, err))) return -1;
    sched_reserve_memory(s, bytes);
    for (int i = 0; i < s->K; i++) engine_set_prefix_cache(s->parts[i].e, s->pc);
    if (s->p.log)
        fprintf(s->p.log, "prefix cache: %.0f MiB for finished sessions' KV (out of the sessions' memory)\n",
                (double)bytes / 1048576.0);
    return 0;
}

sched *sched_new(const model *m, const sched_params *params, rl_err *err) {
    sched *s = rl_calloc(1, sizeof *s, err);
    if (!s) return NULL;
    s->m = m;
    s->p = params ? *params : sched_default_params();
    sched_params *p = &s->p;
    if (!(p->floor_tps > 0) || !isfinite(p->floor_tps)) p->floor_tps = 10;
    if (p->partitions < 1) p->partitions = 1;
    if (p->queue_max < 0) p->queue_max = 16;
    if (!(p->queue_timeout > 0)) p->queue_timeout = 30;
    if (!(p->step_delay >= 0) || !isfinite(p->step_delay)) p->step_delay = 0;
    s->K = p->partitions;
    pthread_mutex_init(&s->lock, NULL);
    cond_init_mono(&s->cond);
    s->parts = rl_calloc((size_t)s->K, sizeof *s->parts, err);
    if (!s->parts || start_partitions(s, err) || sched_configure(s, err)) {
        sched_free(s);
        return NULL;
    }
    if (start_prefix_cache(s, err)) {
        sched_free(s);
        return NULL;
    }
    sched_run_cmd(s, CMD_SERVE, 0, 0, 0, err);
    return s;
}

void sched_free(sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    s->draining = true;
    while (s->q_head) sched_reject_queued_locked(s, s->q_head, SCHED_REJECT_DRAINING);
    bool serving = s->cmd == CMD_SERVE;
    for (int i = 0; s->parts && i < s->K; i++) pthread_cond_signal(&s->parts[i].wake);
    pthread_mutex_unlock(&s->lock);
    if (!serving && s->parts) sched_run_cmd(s, CMD_QUIT, 0, 0, 0, &(rl_err){0});
    for (int i = 0; s->parts && i < s->K; i++) {
        partition *p = &s->parts[i];
        if (p->started) pthread_join(p->thread, NULL);
        engine_close(p->e);
        free(p->run);
        free(p->pace_first);
        free(p->pace_gen);
        free(p->live);
        free(p->cpus);
        free(p->piece);
        free(p->out);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->stats_lock);
    }
    free(s->parts);
    prefix_cache_free(s->pc); /* after the engines: they put their last sequences there */
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}
