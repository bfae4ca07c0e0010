/*
 * scheduler.c — partitions, admission and the decode loop (see
 * scheduler.h for the contract and the locking rules).
 *
 * Start-up is a little protocol between sched_new and the partition
 * threads, because an engine must be opened on the thread that will drive
 * it (the thread pool pins its caller to the partition's first core):
 * sched_new posts a command (open an engine, measure prefill, run a
 * calibration trial, serve), every partition thread runs it and reports;
 * after "serve" each thread stays in its decode loop until sched_free.
 */
#include "scheduler.h"

#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/machine.h"
#include "base/threadpool.h"
#include "engine/engine.h"
#include "text/tokenizer.h"

static const double TTFT_BOUNDS[SCHED_HIST_BUCKETS] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                       1, 2.5, 5, 10, 30, 60};
/* Around the 0.1 s that a 10 tok/s floor allows between tokens. */
static const double ITL_BOUNDS[SCHED_HIST_BUCKETS] = {0.005, 0.01, 0.02, 0.035, 0.05, 0.075,
                                                      0.1, 0.15, 0.25, 0.5, 1, 2.5};

#define PROBE_TOKENS 32      /* prompt tokens timed to size the prefill chunk */
#define CHUNK_SHARE 0.25     /* a chunk may cost this share of a floor period */
#define HEADROOM 1.1         /* calibration: sessions must decode this x the floor,
                                leaving time in every period for new prompts */
#define PACE_MARGIN 0.95     /* prefill may use the decoders' time ahead of this
                                x the floor's schedule */
#define PREFILL_STARVE 1.0   /* s without prompt progress before 1 token is forced */
#define TEXT_INITIAL 4096    /* a session's text buffer at first */

enum phase { PH_QUEUED, PH_ASSIGNED, PH_RUNNING, PH_DONE, PH_REJECTED };
enum cmd { CMD_NONE, CMD_OPEN, CMD_PROBE, CMD_TRIAL, CMD_ATTN, CMD_SERVE, CMD_QUIT };

struct sched_session {
    /* the request: written at submit, read-only afterwards */
    int32_t *prompt;
    int n_prompt, max_tokens;
    int ctx_reserved; /* the context it may reach: what admission counts */
    sampler_params sp;
    bool ignore_eos;
    stop_matcher *stop; /* NULL: no stop strings */
    double t_submit;

    /* sched.lock */
    enum phase phase;
    sched_admit admit;
    int part;
    sched_session *next; /* in the queue or an inbox */

    /* the partition thread's alone while it runs the session */
    engine_seq *seq;
    tok_stream ts;
    int n_gen;
    bool stop_hit;
    double t_first, t_last, win[SCHED_RATE_WINDOW];

    atomic_bool cancelled;

    /* session.lock: the output queue */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char *text;
    size_t len, cap, rd;
    bool done;
    sched_finish finish;
    int n_gen_pub;
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
    sched_ctl ctl;
    bool abort;
    double result; /* of the last start-up command */
    int trial_ctx; /* context a session reached in the last trial */

    /* the partition thread's */
    sched_session **run;
    int n_run, max_run;
    double t_decode;      /* a decode-only step, estimated (s) */
    double t_prefilled;   /* when a prompt token last went in */
    double *pace_first;   /* prefill_budget's scratch, max_run each */
    int *pace_gen;
    char *piece, *out; /* one token's text; what the stop matcher lets out */
    int piece_cap;

    /* stats_lock */
    pthread_mutex_t stats_lock;
    sched_hist ttft, itl;
    uint64_t prompt_tokens, completion_tokens, finished[SCHED_FINISH_ERROR + 1];
    double tps_min, tps_sum;
    int tps_n, peak;
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
    bool draining, stopping;

    /* start-up commands */
    enum cmd cmd;
    int cmd_gen, cmd_done, cmd_seqs, cmd_batch, cmd_n;
    bool cmd_failed;
    rl_err cmd_err;

    int capacity_base, chunk, n_ctx;
    sched_cost cost;  /* step time by sessions and context (set at start) */
    double per_token; /* seconds per prompt token in a step (probe) */
    uint64_t admitted, rej_full, rej_timeout, rej_draining, queue_cancelled;
    double mean_duration; /* of finished sessions (moving average), for Retry-After */
};

sched_params sched_default_params(void) {
    sched_params p = {0};
    p.floor_tps = 10;
    p.partitions = 1;
    p.queue_max = -1;
    p.queue_timeout = 30;
    return p;
}

/* ---- small helpers ---- */

static void abs_deadline(struct timespec *ts, double seconds_from_now) {
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
static void cond_init_mono(pthread_cond_t *c) {
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

static void timed_wait(pthread_cond_t *c, pthread_mutex_t *m, double seconds) {
    struct timespec ts;
    abs_deadline(&ts, seconds);
    pthread_cond_timedwait(c, m, &ts);
}

static void sleep_seconds(double s) {
    if (s <= 0) return;
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void hist_init(sched_hist *h, const double *bounds) {
    memset(h, 0, sizeof *h);
    h->bounds = bounds;
}

static void hist_add(sched_hist *h, double v) {
    int i = 0;
    while (i < SCHED_HIST_BUCKETS && v > h->bounds[i]) i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

static void hist_merge(sched_hist *into, const sched_hist *h) {
    for (int i = 0; i <= SCHED_HIST_BUCKETS; i++) into->counts[i] += h->counts[i];
    into->count += h->count;
    into->sum += h->sum;
}

/* ---- the capacity controller ---- */

void sched_ctl_init(sched_ctl *c, int base, double floor_tps, double recover_seconds) {
    memset(c, 0, sizeof *c);
    c->base = base < 1 ? 1 : base;
    c->cap = c->base;
    c->floor_tps = floor_tps;
    c->recover_seconds = recover_seconds > 0 ? recover_seconds : SCHED_RECOVER_SECONDS;
    c->healthy_since = -1;
}

void sched_ctl_update(sched_ctl *c, double now, int running, int measured, double min_tps) {
    if (measured > 0 && min_tps < c->floor_tps) {
        /* Lowering to one less than what runs now is idempotent while
         * the same sessions run: it only bites as sessions finish. */
        int target = RL_MAX(1, running - 1);
        if (target < c->cap) {
            c->cap = target;
            c->lowered++;
        }
        c->healthy_since = -1;
        return;
    }
    if (c->healthy_since < 0) c->healthy_since = now;
    if (c->cap < c->base && now - c->healthy_since >= c->recover_seconds) {
        c->cap++;
        c->healthy_since = now;
    }
}

/* ---- the cost of context ---- */

void sched_cost_add(sched_cost *c, int n, double step_seconds) {
    int i = 0;
    while (i < c->n_points && c->sessions[i] < n) i++;
    if (i < c->n_points && c->sessions[i] == n) {
        c->step[i] = step_seconds;
        return;
    }
    if (c->n_points == SCHED_COST_POINTS) return; /* calibration takes far fewer */
    memmove(c->sessions + i + 1, c->sessions + i, (size_t)(c->n_points - i) * sizeof *c->sessions);
    memmove(c->step + i + 1, c->step + i, (size_t)(c->n_points - i) * sizeof *c->step);
    c->sessions[i] = n;
    c->step[i] = step_seconds;
    c->n_points++;
}

/* t(n) at short contexts: the segment of points around n. */
static double short_step(const sched_cost *c, int n) {
    if (c->n_points == 0) return 0;
    if (c->n_points == 1 || n <= c->sessions[0]) return c->step[0];
    int i = 1;
    while (i < c->n_points - 1 && c->sessions[i] < n) i++;
    double x0 = c->sessions[i - 1], x1 = c->sessions[i], y0 = c->step[i - 1], y1 = c->step[i];
    return y0 + (y1 - y0) * (n - x0) / (x1 - x0);
}

double sched_cost_step(const sched_cost *c, int n, double ctx) {
    return short_step(c, n) + c->per_token * fmax(0, ctx - n * c->base_ctx);
}

bool sched_cost_fits(const sched_cost *c, int n, double ctx) {
    if (!(c->period > 0) || short_step(c, n) > c->period * (1 + 1e-9)) return true;
    return sched_cost_step(c, n, ctx) <= c->period * (1 + 1e-9);
}

/* ---- sessions ---- */

static void session_free(sched_session *ss) {
    stop_free(ss->stop);
    free(ss->prompt);
    free(ss->text);
    pthread_mutex_destroy(&ss->lock);
    pthread_cond_destroy(&ss->cond);
    free(ss);
}

static void session_unref(sched_session *ss) {
    pthread_mutex_lock(&ss->lock);
    int left = --ss->refs;
    pthread_mutex_unlock(&ss->lock);
    if (left == 0) session_free(ss);
}

/* Drops the scheduler's ref of a queued session: its reader still holds
 * one (a reader cancels before it releases), so this never frees. */
static void session_unqueued(sched_session *ss) {
    pthread_mutex_lock(&ss->lock);
    if (ss->refs > 1) ss->refs--;
    pthread_mutex_unlock(&ss->lock);
}

/* Appends text for the reader (the partition thread, per token). */
static void session_push(sched_session *ss, const char *bytes, size_t n) {
    pthread_mutex_lock(&ss->lock);
    if (ss->rd == ss->len) ss->rd = ss->len = 0; /* the reader has caught up */
    if (n > ss->cap - ss->len) {                 /* rare: a reader far behind */
        size_t cap = ss->cap;
        while (n > cap - ss->len) cap *= 2;
        char *t = realloc(ss->text, cap);
        if (t) {
            ss->text = t;
            ss->cap = cap;
        } else {
            n = ss->cap - ss->len; /* out of memory: the text is cut, never overrun */
        }
    }
    memcpy(ss->text + ss->len, bytes, n);
    ss->len += n;
    ss->n_gen_pub = ss->n_gen;
    ss->ttft = ss->t_first > 0 ? ss->t_first - ss->t_submit : 0;
    pthread_cond_signal(&ss->cond);
    pthread_mutex_unlock(&ss->lock);
}

static void session_end(sched_session *ss, sched_finish why, const char *msg) {
    pthread_mutex_lock(&ss->lock);
    ss->done = true;
    ss->finish = why;
    ss->n_gen_pub = ss->n_gen;
    ss->ttft = ss->t_first > 0 ? ss->t_first - ss->t_submit : 0;
    if (msg) snprintf(ss->error, sizeof ss->error, "%s", msg);
    pthread_cond_broadcast(&ss->cond);
    pthread_mutex_unlock(&ss->lock);
}

/* ---- admission (all under sched.lock) ---- */

static int total_capacity_locked(const sched *s) {
    int c = 0;
    for (int i = 0; i < s->K; i++) c += s->parts[i].ctl.cap;
    return c;
}

/* Whether p can take one more session reserving ctx tokens: room under
 * its capacity and, with every reservation, a step that keeps the floor
 * (a partition with no session can always take one: there is no one else
 * to protect). */
static bool has_room_locked(const sched *s, const partition *p, int ctx) {
    if (p->n_assigned >= p->ctl.cap) return false;
    return p->n_assigned == 0 || sched_cost_fits(&s->cost, p->n_assigned + 1, p->ctx_load + ctx);
}

/* The least loaded partition with room for ss, or NULL. */
static partition *pick_locked(sched *s, const sched_session *ss) {
    partition *best = NULL;
    for (int i = 0; i < s->K; i++) {
        partition *p = &s->parts[i];
        if (has_room_locked(s, p, ss->ctx_reserved) &&
            (!best || p->n_assigned < best->n_assigned ||
             (p->n_assigned == best->n_assigned && p->ctx_load < best->ctx_load)))
            best = p;
    }
    return best;
}

static void assign_locked(sched *s, partition *p, sched_session *ss) {
    ss->phase = PH_ASSIGNED;
    ss->admit = SCHED_RUN;
    ss->part = p->index;
    ss->next = NULL;
    if (p->inbox_tail) p->inbox_tail->next = ss;
    else p->inbox = ss;
    p->inbox_tail = ss;
    p->n_assigned++;
    p->ctx_load += ss->ctx_reserved;
    s->admitted++;
    pthread_cond_signal(&p->wake);
}

static void unqueue_locked(sched *s, sched_session *ss) {
    sched_session **pp = &s->q_head, *prev = NULL;
    while (*pp && *pp != ss) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp) return;
    *pp = ss->next;
    if (s->q_tail == ss) s->q_tail = prev;
    ss->next = NULL;
    s->q_len--;
}

/* Takes a queued session out with a rejection. */
static void reject_queued_locked(sched *s, sched_session *ss, sched_admit why) {
    unqueue_locked(s, ss);
    ss->phase = PH_REJECTED;
    ss->admit = why;
    if (why == SCHED_REJECT_TIMEOUT) s->rej_timeout++;
    if (why == SCHED_REJECT_DRAINING) s->rej_draining++;
    session_unqueued(ss);
}

static void expire_queue_locked(sched *s, double now) {
    while (s->q_head && now - s->q_head->t_submit >= s->p.queue_timeout)
        reject_queued_locked(s, s->q_head, SCHED_REJECT_TIMEOUT);
}

/* Gives free slots to the head of the queue. */
static void admit_queue_locked(sched *s) {
    expire_queue_locked(s, rl_now());
    partition *p;
    while (s->q_head && !s->draining && (p = pick_locked(s, s->q_head)) != NULL) {
        sched_session *ss = s->q_head;
        unqueue_locked(s, ss);
        assign_locked(s, p, ss);
    }
    pthread_cond_broadcast(&s->cond);
}

int sched_submit(sched *s, const sched_request *r, sched_session **out, rl_err *err) {
    *out = NULL;
    if (r->n_prompt < 1) return rl_fail(err, RL_ERR_INPUT, "the prompt is empty");
    if (r->n_prompt >= s->n_ctx)
        return rl_fail(err, RL_ERR_INPUT, "the prompt has %d tokens; the context holds %d, with room for the answer",
                       r->n_prompt, s->n_ctx);
    for (int i = 0; i < r->n_prompt; i++)
        if (r->prompt[i] < 0 || r->prompt[i] >= (int32_t)s->m->shape.n_vocab)
            return rl_fail(err, RL_ERR_INPUT, "prompt token %d is out of the vocabulary", i);
    sched_session *ss = rl_calloc(1, sizeof *ss, err);
    if (!ss) return -1;
    pthread_mutex_init(&ss->lock, NULL);
    cond_init_mono(&ss->cond);
    ss->prompt = malloc((size_t)r->n_prompt * sizeof *ss->prompt);
    ss->cap = TEXT_INITIAL;
    ss->text = malloc(ss->cap);
    if (!ss->prompt || !ss->text) {
        session_free(ss);
        return rl_fail(err, RL_ERR_INTERNAL, "out of memory for a session");
    }
    memcpy(ss->prompt, r->prompt, (size_t)r->n_prompt * sizeof *ss->prompt);
    ss->n_prompt = r->n_prompt;
    ss->max_tokens = r->max_tokens;
    /* a session ends at max_tokens or a full context, whichever is first */
    int64_t reach = (int64_t)r->n_prompt + (r->max_tokens > 0 ? r->max_tokens : s->n_ctx);
    ss->ctx_reserved = (int)RL_MIN(reach, (int64_t)s->n_ctx);
    ss->sp = r->sp;
    ss->ignore_eos = r->ignore_eos;
    if (r->n_stops > 0) {
        ss->stop = stop_new(r->stops, r->n_stops, err);
        if (!ss->stop) {
            session_free(ss);
            return -1;
        }
    }
    ss->t_submit = rl_now();
    ss->refs = 2;

    sched_admit how;
    pthread_mutex_lock(&s->lock);
    expire_queue_locked(s, ss->t_submit);
    partition *p = NULL;
    if (s->draining) {
        how = SCHED_REJECT_DRAINING;
        s->rej_draining++;
    } else if (!s->q_head && (p = pick_locked(s, ss)) != NULL) {
        assign_locked(s, p, ss);
        how = SCHED_RUN;
    } else if (s->q_len < s->p.queue_max) {
        ss->phase = PH_QUEUED;
        ss->admit = SCHED_QUEUED;
        if (s->q_tail) s->q_tail->next = ss;
        else s->q_head = ss;
        s->q_tail = ss;
        s->q_len++;
        how = SCHED_QUEUED;
    } else {
        how = SCHED_REJECT_FULL;
        s->rej_full++;
    }
    pthread_mutex_unlock(&s->lock);
    if (how != SCHED_RUN && how != SCHED_QUEUED) {
        session_free(ss);
        return how;
    }
    *out = ss;
    return how;
}

sched_admit sched_wait_admission(sched *s, sched_session *ss, double max_wait) {
    pthread_mutex_lock(&s->lock);
    double end = rl_now() + max_wait;
    while (ss->phase == PH_QUEUED) {
        double now = rl_now();
        double expires = ss->t_submit + s->p.queue_timeout;
        if (now >= expires) {
            reject_queued_locked(s, ss, SCHED_REJECT_TIMEOUT);
            break;
        }
        if (now >= end) break;
        timed_wait(&s->cond, &s->lock, RL_MIN(expires, end) - now);
    }
    sched_admit how = ss->phase == PH_QUEUED ? SCHED_QUEUED : ss->phase == PH_REJECTED ? ss->admit : SCHED_RUN;
    pthread_mutex_unlock(&s->lock);
    return how;
}

size_t sched_read(sched_session *ss, char *buf, size_t cap, double max_wait, sched_progress *pr) {
    pthread_mutex_lock(&ss->lock);
    if (ss->rd == ss->len && !ss->done && max_wait > 0) {
        struct timespec ts;
        abs_deadline(&ts, max_wait);
        while (ss->rd == ss->len && !ss->done)
            if (pthread_cond_timedwait(&ss->cond, &ss->lock, &ts) != 0) break;
    }
    size_t n = RL_MIN(cap, ss->len - ss->rd);
    if (n < ss->len - ss->rd) { /* cut between characters, never inside one */
        size_t k = n;
        while (k > 0 && ((unsigned char)ss->text[ss->rd + k] & 0xC0) == 0x80) k--;
        if (k > 0) n = k;
    }
    memcpy(buf, ss->text + ss->rd, n);
    ss->rd += n;
    pr->done = ss->done && ss->rd == ss->len;
    pr->finish = ss->finish;
    pr->n_prompt = ss->n_prompt;
    pr->n_generated = ss->n_gen_pub;
    pr->ttft = ss->ttft;
    pr->error = ss->error;
    pthread_mutex_unlock(&ss->lock);
    return n;
}

void sched_cancel(sched *s, sched_session *ss) {
    atomic_store(&ss->cancelled, true);
    pthread_mutex_lock(&s->lock);
    if (ss->phase == PH_QUEUED) {
        unqueue_locked(s, ss);
        ss->phase = PH_REJECTED;
        ss->admit = SCHED_REJECT_TIMEOUT;
        s->queue_cancelled++;
        session_end(ss, SCHED_FINISH_CANCELLED, NULL);
        session_unqueued(ss);
    }
    pthread_mutex_unlock(&s->lock);
}

void sched_release(sched *s, sched_session *ss) {
    if (!ss) return;
    pthread_mutex_lock(&ss->lock);
    bool done = ss->done;
    pthread_mutex_unlock(&ss->lock);
    if (!done) sched_cancel(s, ss);
    session_unref(ss);
}

void sched_drain(sched *s) {
    pthread_mutex_lock(&s->lock);
    s->draining = true;
    while (s->q_head) reject_queued_locked(s, s->q_head, SCHED_REJECT_DRAINING);
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

void sched_abort_all(sched *s) {
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->K; i++) {
        s->parts[i].abort = true;
        pthread_cond_signal(&s->parts[i].wake);
    }
    pthread_mutex_unlock(&s->lock);
}

static int busy_locked(const sched *s) {
    int n = s->q_len;
    for (int i = 0; i < s->K; i++) n += s->parts[i].n_assigned;
    return n;
}

bool sched_wait_idle(sched *s, double max_wait) {
    pthread_mutex_lock(&s->lock);
    double end = rl_now() + max_wait;
    double now;
    while (busy_locked(s) > 0 && (now = rl_now()) < end) timed_wait(&s->cond, &s->lock, end - now);
    bool idle = busy_locked(s) == 0;
    pthread_mutex_unlock(&s->lock);
    return idle;
}

int sched_retry_after(sched *s) {
    pthread_mutex_lock(&s->lock);
    /* About when the next slot frees: sessions last mean_duration, and
     * capacity of them end over that time. */
    int cap = RL_MAX(1, total_capacity_locked(s));
    double t = s->mean_duration / cap;
    pthread_mutex_unlock(&s->lock);
    return (int)RL_MIN(60.0, RL_MAX(1.0, ceil(t)));
}

/* ---- the partition thread: serving ---- */

static void finish_session(partition *p, int i, sched_finish why, const char *msg) {
    sched *s = p->s;
    sched_session *ss = p->run[i];
    if ((why == SCHED_FINISH_STOP || why == SCHED_FINISH_LENGTH) && !ss->stop_hit) {
        /* what the detokenizer and the stop matcher still hold */
        int n = tok_stream_flush(&ss->ts, p->piece, p->piece_cap);
        size_t k = n > 0 ? (size_t)n : 0;
        const char *text = p->piece;
        if (ss->stop) {
            bool hit = false;
            k = stop_push(ss->stop, p->piece, k, p->out, &hit);
            if (!hit) k += stop_flush(ss->stop, p->out + k);
            text = p->out;
        }
        if (k) session_push(ss, text, k);
    }
    engine_seq_remove(p->e, ss->seq);
    ss->seq = NULL;
    p->run[i] = p->run[--p->n_run];

    pthread_mutex_lock(&p->stats_lock);
    p->finished[why]++;
    pthread_mutex_unlock(&p->stats_lock);

    /* the slot is free before the reader hears of the end, so a client
     * that asks again at once finds it free */
    pthread_mutex_lock(&s->lock);
    ss->phase = PH_DONE;
    p->n_assigned--;
    p->ctx_load -= ss->ctx_reserved;
    double dur = rl_now() - ss->t_submit;
    s->mean_duration = s->mean_duration > 0 ? 0.9 * s->mean_duration + 0.1 * dur : dur;
    admit_queue_locked(s);
    pthread_mutex_unlock(&s->lock);
    session_end(ss, why, msg);
    session_unref(ss);
}

static void start_sessions(partition *p, sched_session *list) {
    while (list) {
        sched_session *ss = list;
        list = ss->next;
        ss->next = NULL;
        pthread_mutex_lock(&p->s->lock);
        ss->phase = PH_RUNNING;
        pthread_mutex_unlock(&p->s->lock);
        int i = p->n_run++;
        p->run[i] = ss;
        if (atomic_load(&ss->cancelled)) {
            finish_session(p, i, SCHED_FINISH_CANCELLED, NULL);
            continue;
        }
        rl_err err = {0};
        ss->seq = engine_seq_add(p->e, ss->prompt, ss->n_prompt, &ss->sp, &err);
        if (!ss->seq) {
            finish_session(p, i, SCHED_FINISH_ERROR, err.msg);
            continue;
        }
        pthread_mutex_lock(&p->stats_lock);
        p->prompt_tokens += (uint64_t)ss->n_prompt;
        int active = engine_active(p->e);
        if (active > p->peak) p->peak = active;
        pthread_mutex_unlock(&p->stats_lock);
    }
}

/* One token of a running session: text out, and whether it ends here. */
static sched_finish take_token(partition *p, sched_session *ss, int32_t t, double now) {
    const tokenizer *tok = p->s->m->tok;
    ss->n_gen++;
    pthread_mutex_lock(&p->stats_lock);
    p->completion_tokens++;
    if (ss->n_gen == 1) hist_add(&p->ttft, now - ss->t_submit);
    else hist_add(&p->itl, now - ss->t_last);
    pthread_mutex_unlock(&p->stats_lock);
    if (ss->n_gen == 1) ss->t_first = now;
    ss->t_last = now;
    ss->win[(ss->n_gen - 1) % SCHED_RATE_WINDOW] = now;

    if (!ss->ignore_eos && tok_is_eog(tok, t)) {
        session_push(ss, "", 0); /* counts the token for the reader */
        return SCHED_FINISH_STOP;
    }
    size_t k = 0;
    const char *text = p->piece;
    if (!tok_is_control(tok, t)) {
        int n = tok_stream_push(tok, &ss->ts, t, p->piece, p->piece_cap);
        k = n > 0 ? (size_t)n : 0;
        if (ss->stop && k) {
            k = stop_push(ss->stop, p->piece, k, p->out, &ss->stop_hit);
            text = p->out;
        }
    }
    session_push(ss, text, k);
    if (ss->stop_hit) return SCHED_FINISH_STOP;
    if (ss->max_tokens > 0 && ss->n_gen >= ss->max_tokens) return SCHED_FINISH_LENGTH;
    if (engine_seq_get_state(ss->seq) == SEQ_FULL) return SCHED_FINISH_LENGTH;
    return SCHED_FINISH_NONE;
}

/* A session's tok/s over its last SCHED_RATE_WINDOW tokens (< 0: too few). */
static double session_rate(const sched_session *ss) {
    if (ss->n_gen < SCHED_RATE_WINDOW) return -1;
    double newest = ss->win[(ss->n_gen - 1) % SCHED_RATE_WINDOW];
    double oldest = ss->win[ss->n_gen % SCHED_RATE_WINDOW];
    return newest > oldest ? (SCHED_RATE_WINDOW - 1) / (newest - oldest) : 1e9;
}

static void measure(partition *p, double now) {
    sched *s = p->s;
    double lo = 0, sum = 0;
    int n = 0;
    for (int i = 0; i < p->n_run; i++) {
        double r = session_rate(p->run[i]);
        if (r < 0) continue;
        lo = n == 0 ? r : RL_MIN(lo, r);
        sum += r;
        n++;
    }
    pthread_mutex_lock(&p->stats_lock);
    p->tps_min = lo;
    p->tps_sum = sum;
    p->tps_n = n;
    pthread_mutex_unlock(&p->stats_lock);
    pthread_mutex_lock(&s->lock);
    int before = p->ctl.cap;
    sched_ctl_update(&p->ctl, now, p->n_run, n, lo);
    if (p->ctl.cap > before) admit_queue_locked(s);
    pthread_mutex_unlock(&s->lock);
}

int sched_pace_budget(const sched_pace *pc, double now, const double *t_first, const int *n_gen, int n,
                      bool waiting, double t_prefilled) {
    double period = pc->margin / pc->floor_tps, slack = INFINITY;
    for (int i = 0; i < n; i++)
        if (n_gen[i] > 0) slack = RL_MIN(slack, n_gen[i] * period - (now - t_first[i]) - pc->t_decode);
    if (!waiting || slack == INFINITY) return -1;
    int budget = slack > 0 && pc->per_token > 0 ? (int)RL_MIN(pc->chunk, slack / pc->per_token) : 0;
    if (budget == 0 && now - t_prefilled > pc->starve) budget = 1;
    return budget;
}

/* The budget for this partition's next step (sched_pace_budget): prompts
 * go in at full speed on an idle partition, at the pace the running
 * sessions' slack allows otherwise. *decoders: sessions past their prompt. */
static int prefill_budget(partition *p, double now, int *decoders) {
    sched *s = p->s;
    sched_pace pc = {.floor_tps = s->p.floor_tps, .margin = PACE_MARGIN, .t_decode = p->t_decode,
                     .per_token = s->per_token, .chunk = s->chunk, .starve = PREFILL_STARVE};
    int n = 0;
    bool waiting = false;
    for (int i = 0; i < p->n_run; i++) {
        sched_session *ss = p->run[i];
        if (!ss->seq) continue;
        if (engine_seq_get_state(ss->seq) == SEQ_PREFILL) {
            waiting = true;
            continue;
        }
        ++*decoders;
        if (ss->n_gen > 0) {
            p->pace_first[n] = ss->t_first;
            p->pace_gen[n++] = ss->n_gen;
        }
    }
    return sched_pace_budget(&pc, now, p->pace_first, p->pace_gen, n, waiting, p->t_prefilled);
}

/* Runs one step under the budget and updates the decode-step estimate. */
static int paced_step(partition *p, rl_err *err) {
    double t0 = rl_now();
    int decoders = 0;
    int budget = prefill_budget(p, t0, &decoders);
    engine_set_prefill_budget(p->e, budget);
    int n = engine_step(p->e, err);
    double now = rl_now();
    int prompt = n - decoders;
    if (prompt > 0 || budget < 0) p->t_prefilled = now;
    if (n > 0 && decoders > 0) {
        double dt = now - t0 - RL_MAX(prompt, 0) * p->s->per_token;
        /* quick to rise (a slower step must not be missed), slow to fall */
        p->t_decode = dt > p->t_decode ? dt : 0.8 * p->t_decode + 0.2 * dt;
    }
    return n;
}

static void serve(partition *p) {
    sched *s = p->s;
    rl_err err = {0};
    for (;;) {
        pthread_mutex_lock(&s->lock);
        sched_session *fresh;
        for (;;) {
            fresh = p->inbox;
            p->inbox = p->inbox_tail = NULL;
            if (fresh || p->n_run > 0 || s->stopping) break;
            if (p->ctl.cap < p->ctl.base) { /* idle counts as healthy: recover */
                timed_wait(&p->wake, &s->lock, p->ctl.recover_seconds / 2);
                int before = p->ctl.cap;
                sched_ctl_update(&p->ctl, rl_now(), 0, 0, 0);
                if (p->ctl.cap > before) admit_queue_locked(s);
            } else {
                pthread_cond_wait(&p->wake, &s->lock);
            }
        }
        bool stopping = s->stopping, abort = p->abort || stopping;
        pthread_mutex_unlock(&s->lock);

        start_sessions(p, fresh);
        for (int i = p->n_run - 1; i >= 0; i--) {
            sched_session *ss = p->run[i];
            if (abort) finish_session(p, i, SCHED_FINISH_ABORTED, "the server is shutting down");
            else if (atomic_load(&ss->cancelled)) finish_session(p, i, SCHED_FINISH_CANCELLED, NULL);
        }
        if (stopping && p->n_run == 0) return;
        if (p->n_run == 0) continue;

        int n = paced_step(p, &err);
        double now = rl_now();
        for (int i = p->n_run - 1; i >= 0; i--) {
            sched_session *ss = p->run[i];
            int32_t t;
            sched_finish why = SCHED_FINISH_NONE;
            if (n < 0) why = SCHED_FINISH_ERROR;
            else if (engine_seq_take(ss->seq, &t)) why = take_token(p, ss, t, now);
            if (why != SCHED_FINISH_NONE) finish_session(p, i, why, n < 0 ? err.msg : NULL);
        }
        measure(p, now);
        if (n > 0) sleep_seconds(s->p.step_delay);
    }
}

/* ---- the partition thread: start-up commands ---- */

static int part_open(partition *p, int max_seqs, int max_batch, rl_err *err) {
    sched *s = p->s;
    engine_close(p->e);
    free(p->run);
    free(p->pace_first);
    free(p->pace_gen);
    p->run = NULL;
    p->pace_first = NULL;
    p->pace_gen = NULL;
    engine_params ep = engine_default_params();
    ep.n_threads = p->n_threads;
    ep.cpus = p->cpus;
    ep.max_seqs = max_seqs;
    ep.max_batch = max_batch;
    ep.n_ctx = s->p.n_ctx;
    p->e = engine_open(s->m, &ep, err);
    if (!p->e) return -1;
    p->max_run = max_seqs;
    p->run = rl_calloc((size_t)max_seqs, sizeof *p->run, err);
    p->pace_first = rl_calloc((size_t)max_seqs, sizeof *p->pace_first, err);
    p->pace_gen = rl_calloc((size_t)max_seqs, sizeof *p->pace_gen, err);
    return p->run && p->pace_first && p->pace_gen ? 0 : -1;
}

/* A deterministic filler prompt (ids spread over the vocabulary). */
static void filler(int32_t *ids, int n, int32_t n_vocab, int salt) {
    for (int i = 0; i < n; i++) ids[i] = (int32_t)(((int64_t)(i + 1) * 7919 + salt * 104729) % n_vocab);
}

/* Seconds per prompt token in one prefill step (the weights were touched
 * at load: no warm-up round, which on a slow machine would double the
 * start-up). */
static int part_probe(partition *p, double *per_token, rl_err *err) {
    int32_t ids[PROBE_TOKENS];
    int n = RL_MIN(PROBE_TOKENS, engine_n_ctx(p->e));
    filler(ids, n, (int32_t)p->s->m->shape.n_vocab, 0);
    engine_seq *q = engine_seq_add(p->e, ids, n, NULL, err);
    if (!q) return -1;
    double t0 = rl_now();
    int r = engine_step(p->e, err);
    double dt = rl_now() - t0;
    engine_seq_remove(p->e, q);
    if (r < 0) return -1;
    *per_token = dt / n;
    return 0;
}

/* n sessions decoding together: the slowest one's tok/s. */
static int part_trial(partition *p, int n, double *rate, rl_err *err) {
    int n_ctx = engine_n_ctx(p->e);
    int plen = RL_MAX(1, RL_MIN(8, n_ctx / 4));
    int max_steps = n_ctx - plen - 2;
    engine_seq **seqs = rl_calloc((size_t)n, sizeof *seqs, err);
    if (!seqs) return -1;
    int rc = -1;
    sampler_params sp = sampler_default_params();
    int32_t ids[8];
    for (int i = 0; i < n; i++) {
        filler(ids, plen, (int32_t)p->s->m->shape.n_vocab, i + 1);
        sp.seed = (uint64_t)i + 1;
        if (!(seqs[i] = engine_seq_add(p->e, ids, plen, &sp, err))) goto done;
    }
    int steps = 0;
    bool prefilling = true;
    while (prefilling && steps < max_steps) { /* until every one decodes */
        if (engine_step(p->e, err) < 0) goto done;
        steps++;
        prefilling = false;
        for (int i = 0; i < n; i++) prefilling |= engine_seq_get_state(seqs[i]) == SEQ_PREFILL;
    }
    if (steps < max_steps && engine_step(p->e, err) < 0) goto done; /* one untimed step */
    steps++;
    double t0 = rl_now(), dt = 0;
    int k = 0;
    while (steps + k < max_steps && (k < 3 || (dt < 0.3 && k < 64))) {
        if (engine_step(p->e, err) < 0) goto done;
        sleep_seconds(p->s->p.step_delay);
        k++;
        dt = rl_now() - t0;
    }
    *rate = k > 0 && dt > 0 ? k / dt : 0;
    p->trial_ctx = plen + steps + k; /* the context each session reached */
    rc = 0;
done:
    for (int i = 0; i < n; i++) engine_seq_remove(p->e, seqs[i]);
    free(seqs);
    return rc;
}

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
            serve(p);
            break;
        }
        rl_err err = {0};
        double result = 0;
        int rc = 0;
        if (cmd == CMD_OPEN) rc = part_open(p, seqs, batch, &err);
        else if (cmd == CMD_PROBE && p->index == 0) rc = part_probe(p, &result, &err);
        else if (cmd == CMD_TRIAL) rc = part_trial(p, n, &result, &err);
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
static int run_cmd(sched *s, enum cmd cmd, int seqs, int batch, int n, rl_err *err) {
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

/* The slowest partition's rate with n sessions in each. */
static int trial(sched *s, int n, double *rate, rl_err *err) {
    if (run_cmd(s, CMD_TRIAL, 0, 0, n, err)) return -1;
    *rate = s->parts[0].result;
    for (int i = 1; i < s->K; i++) *rate = RL_MIN(*rate, s->parts[i].result);
    if (*rate > 0) sched_cost_add(&s->cost, n, 1 / *rate);
    for (int i = 0; i < s->K; i++) s->cost.base_ctx = fmax(s->cost.base_ctx, s->parts[i].trial_ctx);
    if (s->p.log) fprintf(s->p.log, "calibration: %d session%s x %d partition%s: %.1f tok/s each\n", n, n > 1 ? "s" : "",
                          s->K, s->K > 1 ? "s" : "", *rate);
    return 0;
}

/* Largest per-partition n (<= limit) whose sessions all decode at
 * HEADROOM x the floor (the rest of each period is for new prompts); 0 if
 * even one does not. Doubling, then bisection. */
static int calibrate(sched *s, int limit, rl_err *err) {
    int good = 0, bad = limit + 1;
    double r;
    for (int n = 1; n <= limit; n *= 2) {
        if (trial(s, n, &r, err)) return -1;
        if (r < s->p.floor_tps * HEADROOM) {
            bad = n;
            break;
        }
        good = n;
        if (n > limit / 2 && n < limit) { /* try the limit itself next */
            if (trial(s, limit, &r, err)) return -1;
            if (r >= s->p.floor_tps * HEADROOM) good = limit;
            else bad = limit;
            break;
        }
    }
    while (good > 0 && bad - good > 1) {
        int mid = good + (bad - good) / 2;
        if (trial(s, mid, &r, err)) return -1;
        if (r >= s->p.floor_tps * HEADROOM) good = mid;
        else bad = mid;
    }
    return good;
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
        pthread_mutex_init(&p->stats_lock, NULL);
        hist_init(&p->ttft, TTFT_BOUNDS);
        hist_init(&p->itl, ITL_BOUNDS);
        p->piece_cap = tok_stream_bound(s->m->tok) + 8;
        p->piece = malloc((size_t)p->piece_cap);
        p->out = malloc((size_t)p->piece_cap + STOP_MAX_LEN + 8);
        if (!p->piece || !p->out) return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
        if (pthread_create(&p->thread, NULL, part_main, p) != 0)
            return rl_fail(err, RL_ERR_INTERNAL, "cannot start partition thread %d", i);
        p->started = true;
    }
    return 0;
}

/* The cost of context (sched_cost). Calibration's trials are in already;
 * with the capacity given, two such trials measure the step of one session
 * and of the capacity (a second or two). The cost per token of context is
 * given or measured on every partition at once (they share the memory
 * bus), the slowest counting. */
static int configure_context(sched *s, bool measured_cap, int per_part, rl_err *err) {
    const sched_params *p = &s->p;
    s->cost.period = 1 / (p->floor_tps * HEADROOM);
    if (!measured_cap) {
        double r;
        if (trial(s, 1, &r, err) || (per_part > 1 && trial(s, per_part, &r, err))) return -1;
    }
    if (p->ctx_cost > 0) {
        s->cost.per_token = p->ctx_cost;
    } else {
        if (run_cmd(s, CMD_ATTN, 0, 0, 0, err)) return -1;
        for (int i = 0; i < s->K; i++) s->cost.per_token = fmax(s->cost.per_token, s->parts[i].result);
    }
    if (p->log)
        fprintf(p->log, "context: %.2f us per token of context per step; a session at the full %d tokens adds "
                        "%.0f%% of a %.0f tok/s period\n", s->cost.per_token * 1e6, s->n_ctx,
                100 * s->cost.per_token * s->n_ctx * p->floor_tps, p->floor_tps);
    return 0;
}

/* Capacity, prefill chunk and engines, by measuring what is not given. */
static int configure(sched *s, rl_err *err) {
    const sched_params *p = &s->p;
    int K = s->K;
    int limit = p->max_sessions > 0 ? p->max_sessions : SCHED_CALIBRATE_LIMIT;
    int per_part_limit = RL_MAX(1, (limit + K - 1) / K);
    bool measure_cap = p->capacity <= 0, measure_chunk = p->prefill_chunk <= 0;
    if (measure_cap || measure_chunk) {
        int seqs = measure_cap ? per_part_limit : 1;
        if (run_cmd(s, CMD_OPEN, seqs, seqs + PROBE_TOKENS, 0, err)) return -1;
    }
    s->chunk = p->prefill_chunk;
    if (measure_chunk) {
        if (run_cmd(s, CMD_PROBE, 0, 0, 0, err)) return -1;
        double per_token = s->parts[0].result;
        s->per_token = per_token;
        double share = CHUNK_SHARE / p->floor_tps;
        s->chunk = per_token > 0 ? (int)(share / per_token) : 512;
        s->chunk = RL_MAX(4, RL_MIN(512, s->chunk));
        if (p->log)
            fprintf(p->log, "prefill: %.0f tok/s; chunk of %d tokens per step (%.0f%% of a %.0f tok/s period)\n",
                    per_token > 0 ? 1 / per_token : 0, s->chunk, CHUNK_SHARE * 100, p->floor_tps);
    }
    if (!(s->per_token > 0)) s->per_token = CHUNK_SHARE / p->floor_tps / s->chunk; /* chunk given */
    int cap = p->capacity;
    if (measure_cap) {
        int per = calibrate(s, per_part_limit, err);
        if (per < 0) return -1;
        if (per == 0 && p->log)
            fprintf(p->log, "warning: even one session per partition runs below %.1f tok/s here; "
                            "capacity set to one per partition\n", p->floor_tps);
        cap = RL_MAX(1, per) * K;
    }
    if (p->max_sessions > 0) cap = RL_MIN(cap, p->max_sessions);
    cap = RL_MAX(cap, 1);
    s->capacity_base = cap;
    int most = 0;
    for (int i = 0; i < K; i++) {
        int base = cap / K + (i < cap % K);
        sched_ctl_init(&s->parts[i].ctl, RL_MAX(base, 0), p->floor_tps, p->recover_seconds);
        if (base == 0) s->parts[i].ctl.cap = s->parts[i].ctl.base = 0; /* fewer sessions than partitions */
        most = RL_MAX(most, base);
    }
    if (run_cmd(s, CMD_OPEN, RL_MAX(most, 1), RL_MAX(most, 1) + s->chunk, 0, err)) return -1;
    s->n_ctx = engine_n_ctx(s->parts[0].e);
    return configure_context(s, measure_cap, most, err);
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
    if (!s->parts || start_partitions(s, err) || configure(s, err)) {
        sched_free(s);
        return NULL;
    }
    run_cmd(s, CMD_SERVE, 0, 0, 0, err);
    return s;
}

void sched_free(sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->stopping = true;
    s->draining = true;
    while (s->q_head) reject_queued_locked(s, s->q_head, SCHED_REJECT_DRAINING);
    bool serving = s->cmd == CMD_SERVE;
    for (int i = 0; s->parts && i < s->K; i++) pthread_cond_signal(&s->parts[i].wake);
    pthread_mutex_unlock(&s->lock);
    if (!serving && s->parts) run_cmd(s, CMD_QUIT, 0, 0, 0, &(rl_err){0});
    for (int i = 0; s->parts && i < s->K; i++) {
        partition *p = &s->parts[i];
        if (p->started) pthread_join(p->thread, NULL);
        engine_close(p->e);
        free(p->run);
        free(p->pace_first);
        free(p->pace_gen);
        free(p->cpus);
        free(p->piece);
        free(p->out);
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->stats_lock);
    }
    free(s->parts);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->cond);
    free(s);
}

void sched_get_stats(sched *s, sched_stats *o) {
    memset(o, 0, sizeof *o);
    hist_init(&o->ttft, TTFT_BOUNDS);
    hist_init(&o->itl, ITL_BOUNDS);
    pthread_mutex_lock(&s->lock);
    o->floor_tps = s->p.floor_tps;
    o->partitions = s->K;
    o->prefill_chunk = s->chunk;
    o->n_ctx = s->n_ctx;
    o->capacity_base = s->capacity_base;
    o->capacity = total_capacity_locked(s);
    o->ctx_cost = s->cost.per_token;
    for (int i = 0; i < s->K; i++) {
        o->active += s->parts[i].n_assigned;
        o->ctx_reserved += s->parts[i].ctx_load;
        o->capacity_lowered += s->parts[i].ctl.lowered;
    }
    o->queued = s->q_len;
    o->queue_max = s->p.queue_max;
    o->draining = s->draining;
    o->admitted = s->admitted;
    o->rejected_full = s->rej_full;
    o->rejected_timeout = s->rej_timeout;
    o->rejected_draining = s->rej_draining;
    o->finished[SCHED_FINISH_CANCELLED] = s->queue_cancelled;
    pthread_mutex_unlock(&s->lock);
    double sum = 0;
    for (int i = 0; i < s->K; i++) {
        partition *p = &s->parts[i];
        pthread_mutex_lock(&p->stats_lock);
        hist_merge(&o->ttft, &p->ttft);
        hist_merge(&o->itl, &p->itl);
        o->prompt_tokens += p->prompt_tokens;
        o->completion_tokens += p->completion_tokens;
        for (int f = 0; f <= SCHED_FINISH_ERROR; f++) o->finished[f] += p->finished[f];
        if (p->tps_n > 0) {
            o->tps_min = o->tps_sessions == 0 ? p->tps_min : RL_MIN(o->tps_min, p->tps_min);
            o->tps_sessions += p->tps_n;
            sum += p->tps_sum;
        }
        o->active_peak += p->peak;
        pthread_mutex_unlock(&p->stats_lock);
    }
    o->tps_mean = o->tps_sessions > 0 ? sum / o->tps_sessions : 0;
}

int sched_partition_cpus(const sched *s, int i, int *cpus, int max) {
    const partition *p = &s->parts[i];
    for (int j = 0; j < p->n_threads && j < max; j++) cpus[j] = p->cpus ? p->cpus[j] : -1;
    return p->n_threads;
}
