/*
 * sched_admit.c — admission: who runs, who waits, who is turned away.
 *
 * A request is admitted to the least loaded partition with room in both
 * its capacity (sched_ctl) and its step time with every reservation of
 * context (sched_cost, sched_capacity.c), when the memory budget holds it
 * beside every admitted session; otherwise it waits in the
 * bounded FIFO queue until a slot frees or queue_timeout passes, or is
 * rejected (the server's 429). With a ttft_limit, a request whose first
 * token others would delay past it (a slot's wait, then its prompt behind
 * the prompts not yet through: sched_expected_ttft) is rejected at once
 * instead of waiting. Draining rejects the queue and admits no more. The
 * queue, the partitions' counts and a session's phase are sched.lock's:
 * the functions named *_locked expect it held.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched_internal.h"

int sched_total_capacity_locked(const sched *s) {
    int c = 0;
    for (int i = 0; i < s->K; i++) c += s->parts[i].ctl.cap;
    return c;
}

/* What keeps a session reserving ctx tokens and mem bytes out of p:
 * its capacity, or its step with every reservation of context missing the
 * floor (a partition with no session can always take one: there is no one
 * else to protect), or the memory budget (all partitions share it). */
static sched_limit limit_locked(const sched *s, const partition *p, int ctx, uint64_t mem) {
    if (p->n_assigned >= p->ctl.cap) return SCHED_LIMIT_SESSIONS;
    if (p->n_assigned > 0 && !sched_cost_fits(&s->cost, p->n_assigned + 1, p->ctx_load + ctx))
        return SCHED_LIMIT_CONTEXT;
    if (s->mem_budget && s->mem_used + mem > s->mem_budget) return SCHED_LIMIT_MEMORY;
    return SCHED_LIMIT_NONE;
}

static bool has_room_locked(const sched *s, const partition *p, const sched_session *ss) {
    return limit_locked(s, p, ss->ctx_reserved, ss->mem_need) == SCHED_LIMIT_NONE;
}

/* The least loaded partition with room for ss, or NULL. */
static partition *pick_locked(sched *s, const sched_session *ss) {
    partition *best = NULL;
    for (int i = 0; i < s->K; i++) {
        partition *p = &s->parts[i];
        if (has_room_locked(s, p, ss) &&
            (!best || p->n_assigned < best->n_assigned ||
             (p->n_assigned == best->n_assigned && p->ctx_load < best->ctx_load)))
            best = p;
    }
    return best;
}

/* How many more sessions p could take, each reserving ctx tokens, by
 * has_room_locked's rule. */
static int room_locked(const sched *s, const partition *p, double ctx) {
    int n = p->n_assigned, k = 0;
    double load = p->ctx_load;
    while (n < p->ctl.cap && (n == 0 || sched_cost_fits(&s->cost, n + 1, load + ctx))) {
        n++;
        load += ctx;
        k++;
    }
    return k;
}

int sched_free_sessions_locked(const sched *s) {
    if (s->draining) return 0;
    int k = 0;
    for (int i = 0; i < s->K; i++) k += room_locked(s, &s->parts[i], s->mean_reserved);
    return RL_MAX(0, k - s->q_len);
}

static void assign_locked(sched *s, partition *p, sched_session *ss) {
    bool was_queued = ss->admit == SCHED_QUEUED; /* (a new session is PH_QUEUED by its zeroes) */
    ss->phase = PH_ASSIGNED;
    ss->admit = SCHED_RUN;
    ss->t_admit = rl_now();
    ss->part = p->index;
    ss->next = NULL;
    if (p->inbox_tail) p->inbox_tail->next = ss;
    else p->inbox = ss;
    p->inbox_tail = ss;
    p->n_assigned++;
    p->ctx_load += ss->ctx_reserved;
    ss->prompt_pending = ss->prompt_new;
    p->prompt_load += ss->prompt_new;
    s->mem_used += ss->mem_need;
    s->admitted++;
    s->mean_reserved = s->admitted > 1 ? 0.9 * s->mean_reserved + 0.1 * ss->ctx_reserved : ss->ctx_reserved;
    s->mean_prompt = s->admitted > 1 ? 0.9 * s->mean_prompt + 0.1 * ss->n_prompt : ss->n_prompt;
    pthread_cond_signal(&p->wake);
    if (was_queued) sched_session_notify(ss, SCHED_NEWS_ADMISSION);
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
    s->q_prompt -= ss->prompt_new;
}

/* Takes a queued session out with a rejection. */
void sched_reject_queued_locked(sched *s, sched_session *ss, sched_admit why) {
    unqueue_locked(s, ss);
    ss->phase = PH_REJECTED;
    ss->admit = why;
    if (why == SCHED_REJECT_TIMEOUT) s->rej_timeout++;
    if (why == SCHED_REJECT_DRAINING) s->rej_draining++;
    sched_session_notify(ss, SCHED_NEWS_ADMISSION);
    sched_session_unqueued(ss);
}

static void expire_queue_locked(sched *s, double now) {
    while (s->q_head && now - s->q_head->t_submit >= s->p.queue_timeout)
        sched_reject_queued_locked(s, s->q_head, SCHED_REJECT_TIMEOUT);
}

void sched_expire_queue(sched *s) {
    pthread_mutex_lock(&s->lock);
    expire_queue_locked(s, rl_now());
    pthread_mutex_unlock(&s->lock);
}

/* Gives free slots to the head of the queue. */
void sched_admit_queue_locked(sched *s) {
    expire_queue_locked(s, rl_now());
    partition *p;
    while (s->q_head && !s->draining && (p = pick_locked(s, s->q_head)) != NULL) {
        sched_session *ss = s->q_head;
        unqueue_locked(s, ss);
        assign_locked(s, p, ss);
    }
    pthread_cond_broadcast(&s->cond);
}

/* The context a request may reach: a session ends at max_tokens or a full
 * context, whichever is first. */
static int reach_of(const sched *s, int n_prompt, int max_tokens) {
    int64_t reach = (int64_t)n_prompt + (max_tokens > 0 ? max_tokens : s->n_ctx);
    return (int)RL_MIN(reach, (int64_t)s->n_ctx);
}

/* The memory a session reaching ctx tokens may allocate: its engine
 * sequence, its prompt and text buffer, its log-probability records. */
static uint64_t mem_of(const sched *s, int ctx, int n_prompt, bool logprobs) {
    uint64_t lp = logprobs ? (uint64_t)(ctx - n_prompt + 1) * sizeof(sampler_logprob) : 0;
    return engine_seq_bytes(s->parts[0].e, ctx) + 4 * (uint64_t)n_prompt + TEXT_INITIAL + lp;
}

sched_limit sched_blocking_limit(sched *s, int n_prompt, int max_tokens) {
    int ctx = reach_of(s, n_prompt, max_tokens);
    uint64_t mem = mem_of(s, ctx, n_prompt, false);
    sched_limit worst = SCHED_LIMIT_NONE;
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < s->K; i++) {
        sched_limit l = limit_locked(s, &s->parts[i], ctx, mem);
        if (l == SCHED_LIMIT_NONE) {
            worst = l;
            break;
        }
        if (l > worst) worst = l; /* the most telling: memory, context, then sessions */
    }
    pthread_mutex_unlock(&s->lock);
    return worst;
}

void sched_reserve_memory(sched *s, uint64_t bytes) {
    pthread_mutex_lock(&s->lock);
    if (s->mem_budget) s->mem_budget = s->mem_budget > bytes ? s->mem_budget - bytes : 1;
    pthread_mutex_unlock(&s->lock);
}

double sched_expected_ttft(int queue_pos, double mean_run, int running, double backlog, int n_prompt, double rate) {
    double slot = queue_pos > 0 ? queue_pos * mean_run / RL_MAX(1, running) : 0;
    if (!(rate > 0)) return slot;
    return fmax(slot + n_prompt / rate, (backlog + n_prompt) / rate);
}

/* sched_expected_ttft on p, or (NULL) on the partition whose prompts
 * clear soonest. */
static double expected_locked(const sched *s, const partition *p, int queue_pos, int n_prompt) {
    double best = INFINITY;
    int running = 0;
    for (int i = 0; i < s->K; i++) running += s->parts[i].n_assigned;
    for (int i = 0; i < s->K; i++) {
        const partition *q = &s->parts[i];
        if (p && q != p) continue;
        double ahead = q->prompt_load + (queue_pos > 0 ? (double)s->q_prompt : 0);
        best = fmin(best, sched_expected_ttft(queue_pos, s->mean_run, running, ahead, n_prompt, q->prefill_rate));
    }
    return best;
}

/* Whether a request whose prompt needs n_new tokens computed would see
 * its first token later than ttft_limit because of others: one whose own
 * prompt alone takes longer goes in when nothing is ahead of it. */
static bool over_ttft_locked(const sched *s, const partition *p, int queue_pos, int n_new) {
    if (!(s->p.ttft_limit > 0) || expected_locked(s, p, queue_pos, n_new) <= s->p.ttft_limit) return false;
    bool ahead = queue_pos > 0;
    for (int i = 0; i < s->K; i++)
        if (!p || &s->parts[i] == p) ahead |= s->parts[i].prompt_load > 0;
    return ahead;
}

double sched_expected_wait(sched *s, int n_prompt) {
    pthread_mutex_lock(&s->lock);
    double t = expected_locked(s, NULL, s->q_head || !sched_free_sessions_locked(s) ? s->q_len + 1 : 0, n_prompt);
    pthread_mutex_unlock(&s->lock);
    return t;
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
        sched_session_free(ss);
        return rl_fail(err, RL_ERR_INTERNAL, "out of memory for a session");
    }
    memcpy(ss->prompt, r->prompt, (size_t)r->n_prompt * sizeof *ss->prompt);
    ss->n_prompt = r->n_prompt;
    ss->max_tokens = r->max_tokens;
    ss->ctx_reserved = reach_of(s, r->n_prompt, r->max_tokens);
    ss->mem_need = mem_of(s, ss->ctx_reserved, r->n_prompt, r->logprobs);
    if (s->mem_budget && ss->mem_need > s->mem_budget) {
        int ctx = ss->ctx_reserved;
        double need = (double)ss->mem_need;
        sched_session_free(ss);
        return rl_fail(err, RL_ERR_INPUT,
                       "the context this request may reach (%d tokens) needs %.0f MiB of memory, more than the "
                       "%.0f MiB this server has for all its sessions: ask for fewer max_tokens",
                       ctx, need / 1048576.0, (double)s->mem_budget / 1048576.0);
    }
    ss->sp = r->sp;
    ss->ignore_eos = r->ignore_eos;
    if (r->logprobs) {
        ss->lp_cap = ss->ctx_reserved - r->n_prompt + 1;
        ss->top_logprobs = RL_MAX(0, RL_MIN(r->top_logprobs, SAMPLER_MAX_TOP_LOGPROBS));
        if (!(ss->lp = malloc((size_t)ss->lp_cap * sizeof *ss->lp))) {
            sched_session_free(ss);
            return rl_fail(err, RL_ERR_INTERNAL, "out of memory for a session's log-probabilities");
        }
    }
    ss->notify = r->notify;
    ss->notify_ctx = r->notify_ctx;
    if (r->n_stops > 0) {
        ss->stop = stop_new(r->stops, r->n_stops, err);
        if (!ss->stop) {
            sched_session_free(ss);
            return -1;
        }
    }
    ss->t_submit = rl_now();
    ss->refs = 2;
    /* what its prompt will compute, the prefix cache's share aside */
    int n_new = r->n_prompt - (s->pc ? prefix_cache_peek(s->pc, r->prompt, r->n_prompt, r->n_prompt - 1) : 0);
    ss->prompt_new = n_new;

    sched_admit how;
    pthread_mutex_lock(&s->lock);
    expire_queue_locked(s, ss->t_submit);
    partition *p = NULL;
    if (s->draining) {
        how = SCHED_REJECT_DRAINING;
        s->rej_draining++;
    } else if (!s->q_head && (p = pick_locked(s, ss)) != NULL) {
        how = over_ttft_locked(s, p, 0, n_new) ? SCHED_REJECT_TTFT : SCHED_RUN;
        if (how == SCHED_RUN) assign_locked(s, p, ss);
        else if (r->expected_ttft) *r->expected_ttft = expected_locked(s, p, 0, n_new);
    } else if (s->q_len < s->p.queue_max && over_ttft_locked(s, NULL, s->q_len + 1, n_new)) {
        how = SCHED_REJECT_TTFT;
        if (r->expected_ttft) *r->expected_ttft = expected_locked(s, NULL, s->q_len + 1, n_new);
    } else if (s->q_len < s->p.queue_max) {
        ss->phase = PH_QUEUED;
        ss->admit = SCHED_QUEUED;
        if (s->q_tail) s->q_tail->next = ss;
        else s->q_head = ss;
        s->q_tail = ss;
        s->q_len++;
        s->q_prompt += ss->prompt_new;
        how = SCHED_QUEUED;
    } else {
        how = SCHED_REJECT_FULL;
    }
    if (how == SCHED_REJECT_FULL) s->rej_full++;
    if (how == SCHED_REJECT_TTFT) s->rej_ttft++;
    pthread_mutex_unlock(&s->lock);
    if (how != SCHED_RUN && how != SCHED_QUEUED) {
        sched_session_free(ss);
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
            sched_reject_queued_locked(s, ss, SCHED_REJECT_TIMEOUT);
            break;
        }
        if (now >= end) break;
        timed_wait(&s->cond, &s->lock, RL_MIN(expires, end) - now);
    }
    sched_admit how = ss->phase == PH_QUEUED ? SCHED_QUEUED : ss->phase == PH_REJECTED ? ss->admit : SCHED_RUN;
    pthread_mutex_unlock(&s->lock);
    return how;
}

void sched_cancel(sched *s, sched_session *ss) {
    atomic_store(&ss->cancelled, true);
    pthread_mutex_lock(&s->lock);
    if (ss->phase == PH_QUEUED) {
        unqueue_locked(s, ss);
        ss->phase = PH_REJECTED;
        ss->admit = SCHED_REJECT_TIMEOUT;
        s->queue_cancelled++;
        sched_session_end(ss, SCHED_FINISH_CANCELLED, NULL);
        sched_session_unqueued(ss);
    }
    pthread_mutex_unlock(&s->lock);
}

void sched_release(sched *s, sched_session *ss) {
    if (!ss) return;
    pthread_mutex_lock(&ss->lock);
    ss->notify = NULL; /* the reader is leaving */
    bool done = ss->done;
    pthread_mutex_unlock(&ss->lock);
    if (!done) sched_cancel(s, ss);
    sched_session_unref(ss);
}

void sched_drain(sched *s) {
    pthread_mutex_lock(&s->lock);
    s->draining = true;
    while (s->q_head) sched_reject_queued_locked(s, s->q_head, SCHED_REJECT_DRAINING);
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
    int cap = RL_MAX(1, sched_total_capacity_locked(s));
    double t = s->mean_duration / cap;
    pthread_mutex_unlock(&s->lock);
    return (int)RL_MIN(60.0, RL_MAX(1.0, ceil(t)));
}
