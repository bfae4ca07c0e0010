/*
 * sched_internal.h — what the scheduler's files share and nobody else sees:
 * the session, partition and scheduler structs (their fields grouped by
 * the lock that guards them, as scheduler.h's locking rules say), the
 * start-up commands, the tuning constants, and the functions one file
 * calls in another. Not a public header: include it only from
 * src/serve/sched*.c and scheduler.c.
 *
 * The files: scheduler.c (partitions, their threads, start-up and
 * shutdown), sched_calibrate.c (what start-up measures), sched_admit.c
 * (the queue and admission), sched_capacity.c (the capacity controller
 * and the cost of context), sched_loop.c (a partition's serving loop and
 * its prefill pacing), sched_session.c (a session's output queue),
 * sched_stats.c (counters and histograms for /health and /metrics).
 */
#ifndef RACKLLM_SCHED_INTERNAL_H
#define RACKLLM_SCHED_INTERNAL_H

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "engine/engine.h"
#include "scheduler.h"
#include "text/tokenizer.h"

#define PROBE_TOKENS 64      /* prompt tokens timed to size the prefill chunk */
#define TRIAL_CTX 128        /* context of a calibration trial's sessions (they reach < 80) */
#define CHUNK_PERIODS 2.0    /* a step's prompt tokens may cost at most this many
                                floor periods (a pause a reader hardly notices);
                                the decoders' slack decides how many it takes */
#define HEADROOM 1.1         /* calibration: sessions must decode this x the floor,
                                leaving time in every period for new prompts */
#define PACE_MARGIN 0.95     /* prefill may use the decoders' time ahead of this
                                x the floor's schedule */
#define PREFILL_STARVE 1.0   /* s without prompt progress before 1 token is forced */
#define RATE_WINDOW 1.0      /* s of steps with prompts waiting per prefill_rate update */
#define TEXT_INITIAL 4096    /* a session's text buffer at first */
#define MEM_SHARE 0.9        /* of the memory available at start, what sessions may take */

enum phase { PH_QUEUED, PH_ASSIGNED, PH_RUNNING, PH_DONE, PH_REJECTED };
enum cmd { CMD_NONE, CMD_OPEN, CMD_PROBE, CMD_TRIAL, CMD_ATTN, CMD_SERVE, CMD_QUIT };

struct sched_session {
    /* the request: written at submit, read-only afterwards */
    int32_t *prompt;
    int n_prompt, max_tokens;
    int ctx_reserved; /* the context it may reach: what admission counts */
    uint64_t mem_need; /* what it may allocate (its engine sequence at ctx_reserved, its text) */
    sampler_params sp;
    bool ignore_eos;
    int top_logprobs;   /* with lp_cap > 0 */
    stop_matcher *stop; /* NULL: no stop strings */
    double t_submit, t_admit;
    void (*notify)(void *ctx, sched_news what); /* session.lock: cleared at release */
    void *notify_ctx;

    /* sched.lock */
    enum phase phase;
    sched_admit admit;
    int part;
    sched_session *next; /* in the queue or an inbox */

    /* the partition thread's alone while it runs the session */
    engine_seq *seq;
    tok_stream ts;
    int n_gen;
    int prompt_new;     /* of its prompt, what the prefix cache did not hold at submit */
    int prompt_pending; /* (sched.lock) of prompt_new, in its partition's prompt_load */
    bool stop_hit;
    double t_first, t_last, win[SCHED_RATE_WINDOW];

    atomic_bool cancelled;

    /* session.lock: the output queue */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char *text;
    size_t len, cap, rd;
    sampler_logprob *lp; /* logprobs asked for: one per token, allocated at submit */
    int lp_len, lp_cap, lp_rd;
    bool done;
    sched_finish finish;
    int n_gen_pub;
    int n_cached;     /* of the prompt, from the prefix cache */
    double ttft;
    char error[200];
    int refs; /* the reader's and (while queued or running) the scheduler's */
};

typedef struct partition {
    sched *s;
    int index;
    pthread_t thread;
    bool started;
    int n_threads;
    int *cpus; /* NULL: not pinned */
    engine *e;

    /* sched.lock */
    pthread_cond_t wake;
    sched_session *inbox, *inbox_tail;
    int n_assigned; /* in the inbox or running */
    double ctx_load; /* their ctx_reserved, summed */
    int prompt_load;     /* prompt tokens of theirs not yet through (prompt_pending) */
    double prefill_rate; /* prompt tokens/s while prompts wait (measured; at first a guess) */
    sched_ctl ctl;
    bool abort;
    double result; /* of the last start-up command */
    int trial_ctx; /* context a session reached in the last trial */

    /* the partition thread's */
    sched_session **run;
    int n_run, max_run;
    double t_decode;      /* a decode-only step, estimated (s) */
    double pt_cost;       /* a prompt token in a step beside the decoders, estimated (s) */
    double t_prefilled;   /* when a prompt token last went in */
    double pf_tokens, pf_time; /* prompt tokens and seconds of steps with prompts waiting,
                                  since prefill_rate was last updated */
    double *pace_first;   /* prefill_budget's scratch, max_run each */
    int *pace_gen;
    char *piece, *out; /* one token's text; what the stop matcher lets out */
    size_t piece_cap;

    /* stats_lock */
    pthread_mutex_t stats_lock;
    sched_hist ttft, itl;
    uint64_t prompt_tokens, completion_tokens, finished[SCHED_FINISH_ERROR + 1];
    double tps_min, tps_sum;
    int tps_n, peak;
    sched_session_info *live; /* the running sessions after the last step (max_run) */
    int n_live;
} partition;

struct sched {
    const model *m;
    sched_params p;
    partition *parts;
    int K;

    pthread_mutex_t lock;
    pthread_cond_t cond;
    sched_session *q_head, *q_tail;
    int q_len;
    int64_t q_prompt; /* the queued requests' prompt tokens the prefix cache lacks */
    bool draining, stopping;

    /* start-up commands */
    enum cmd cmd;
    int cmd_gen, cmd_done, cmd_seqs, cmd_batch, cmd_n;
    bool cmd_failed;
    rl_err cmd_err;

    int capacity_base, chunk, n_ctx;
    uint64_t mem_available, mem_budget, mem_used, mem_session; /* (mem_used: sched.lock) */
    sched_cost cost;  /* step time by sessions and context (set at start) */
    double per_token; /* seconds per prompt token in a step (probe) */
    uint64_t admitted, rej_full, rej_timeout, rej_draining, rej_ttft, queue_cancelled;
    double mean_duration; /* of finished sessions (moving average), for Retry-After */
    double mean_run;      /* of finished sessions from admission to end (moving average) */
    double mean_reserved; /* context admitted sessions reserve (moving average), for sched_free_sessions */
    double mean_prompt;   /* prompt tokens of admitted sessions (moving average), for /health */
    prefix_cache *pc;     /* NULL: none */
};

/* ---- time: condition variables on the monotonic clock (rl_now's) ---- */

static inline void abs_deadline(struct timespec *ts, double seconds_from_now) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    if (seconds_from_now < 0) seconds_from_now = 0;
    double whole = floor(seconds_from_now);
    ts->tv_sec += (time_t)whole;
    ts->tv_nsec += (long)((seconds_from_now - whole) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Condition variables wait on the monotonic clock (rl_now's clock). */
static inline void cond_init_mono(pthread_cond_t *c) {
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

static inline void timed_wait(pthread_cond_t *c, pthread_mutex_t *m, double seconds) {
    struct timespec ts;
    abs_deadline(&ts, seconds);
    pthread_cond_timedwait(c, m, &ts);
}

static inline void sleep_seconds(double s) {
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* ---- across the files ---- */

/* scheduler.c: posts a start-up command to every partition and waits for
 * all (but "serve" and "quit", which are not answered). */
int sched_run_cmd(sched *s, enum cmd cmd, int seqs, int batch, int n, rl_err *err);

/* sched_calibrate.c: the start-up commands a partition thread runs, and
 * the measuring that posts them. */
int sched_part_open(partition *p, int max_seqs, int max_batch, rl_err *err);
int sched_part_probe(partition *p, double *per_token, rl_err *err);
int sched_part_trial(partition *p, int n, double *rate, rl_err *err);
int sched_configure(sched *s, rl_err *err);

/* sched_admit.c (all under sched.lock) */
int sched_total_capacity_locked(const sched *s);
int sched_free_sessions_locked(const sched *s);
void sched_reject_queued_locked(sched *s, sched_session *ss, sched_admit why);
void sched_admit_queue_locked(sched *s);

/* sched_loop.c: a partition thread after "serve", until the scheduler stops. */
void sched_serve(partition *p);

/* sched_session.c */
void sched_session_free(sched_session *ss);
void sched_session_unref(sched_session *ss);
void sched_session_unqueued(sched_session *ss);
void sched_session_push(sched_session *ss, const char *bytes, size_t n);
void sched_session_push_logprob(sched_session *ss, const sampler_logprob *lp);
void sched_session_end(sched_session *ss, sched_finish why, const char *msg);
/* Tells the reader (under session.lock, which it takes). */
void sched_session_notify(sched_session *ss, sched_news what);

/* sched_stats.c */
void sched_part_stats_init(partition *p);
void sched_hist_add(sched_hist *h, double v);

#endif
