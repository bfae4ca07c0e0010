/*
 * sched_loop.c — a partition thread's serving loop. Before each
 * engine_step it starts the sessions admitted to it and drops the
 * cancelled ones; the step itself (decoders first, then prompt chunks) is
 * the engine's; the prompt tokens a step may take are paced so that every
 * running session keeps the floor (sched_pace_budget); after the step each
 * session's token becomes text for its reader, and a session that ends
 * leaves the engine at once, its slot going to the head of the queue. The
 * partition measures its sessions' tok/s as it goes and feeds its
 * capacity controller.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sched_internal.h"

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
        if (k) sched_session_push(ss, text, k);
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
    p->prompt_load -= ss->prompt_pending;
    ss->prompt_pending = 0;
    s->mem_used -= ss->mem_need;
    double now = rl_now(), dur = now - ss->t_submit, run = now - ss->t_admit;
    s->mean_duration = s->mean_duration > 0 ? 0.9 * s->mean_duration + 0.1 * dur : dur;
    s->mean_run = s->mean_run > 0 ? 0.9 * s->mean_run + 0.1 * run : run;
    sched_admit_queue_locked(s);
    pthread_mutex_unlock(&s->lock);
    sched_session_end(ss, why, msg);
    sched_session_unref(ss);
}

/* ss's prompt has gone in (its first token came): out of the
 * partition's prompt load. */
static void prompt_through(partition *p, sched_session *ss) {
    pthread_mutex_lock(&p->s->lock);
    p->prompt_load -= ss->prompt_pending;
    ss->prompt_pending = 0;
    pthread_mutex_unlock(&p->s->lock);
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
        ss->seq = engine_seq_add_ctx(p->e, ss->prompt, ss->n_prompt, &ss->sp, ss->ctx_reserved, &err);
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
    if (ss->n_gen == 1) sched_hist_add(&p->ttft, now - ss->t_submit);
    else sched_hist_add(&p->itl, now - ss->t_last);
    pthread_mutex_unlock(&p->stats_lock);
    if (ss->n_gen == 1) {
        ss->t_first = now;
        prompt_through(p, ss);
        pthread_mutex_lock(&ss->lock);
        ss->n_cached = engine_seq_cached(ss->seq); /* (known once its prompt went in) */
        pthread_mutex_unlock(&ss->lock);
    }
    ss->t_last = now;
    ss->win[(ss->n_gen - 1) % SCHED_RATE_WINDOW] = now;

    if (ss->lp_cap > 0 && !(!ss->ignore_eos && tok_is_eog(tok, t))) {
        const float *logits = engine_seq_logits(ss->seq);
        if (logits) {
            sampler_logprob lp;
            sampler_logprobs(logits, (int32_t)p->s->m->shape.n_vocab, t, ss->top_logprobs, &lp);
            sched_session_push_logprob(ss, &lp);
        }
    }
    if (!ss->ignore_eos && tok_is_eog(tok, t)) {
        sched_session_push(ss, "", 0); /* counts the token for the reader */
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
    sched_session_push(ss, text, k);
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

/* What the dashboard shows of a running session (under stats_lock). */
static void publish(partition *p, int i, double rate) {
    const sched_session *ss = p->run[i];
    double tps = rate;
    if (tps < 0) tps = ss->n_gen >= 2 && ss->t_last > ss->t_first ? (ss->n_gen - 1) / (ss->t_last - ss->t_first) : 0;
    p->live[i] = (sched_session_info){.partition = p->index, .n_prompt = ss->n_prompt, .n_generated = ss->n_gen,
                                      .prefilling = ss->seq && engine_seq_get_state(ss->seq) == SEQ_PREFILL,
                                      .tps = tps, .ttft = ss->n_gen > 0 ? ss->t_first - ss->t_submit : 0,
                                      .age = ss->t_submit};
}

static void measure(partition *p, double now) {
    sched *s = p->s;
    double lo = 0, sum = 0;
    int n = 0;
    pthread_mutex_lock(&p->stats_lock);
    for (int i = 0; i < p->n_run; i++) {
        double r = session_rate(p->run[i]);
        publish(p, i, r);
        if (r < 0) continue;
        lo = n == 0 ? r : RL_MIN(lo, r);
        sum += r;
        n++;
    }
    p->n_live = p->n_run;
    p->tps_min = lo;
    p->tps_sum = sum;
    p->tps_n = n;
    pthread_mutex_unlock(&p->stats_lock);
    pthread_mutex_lock(&s->lock);
    int before = p->ctl.cap;
    sched_ctl_update(&p->ctl, now, p->n_run, n, lo);
    if (p->ctl.cap > before) sched_admit_queue_locked(s);
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
static int prefill_budget(partition *p, double now, int *decoders, bool *waiting) {
    sched *s = p->s;
    sched_pace pc = {.floor_tps = s->p.floor_tps, .margin = PACE_MARGIN, .t_decode = p->t_decode,
                     .per_token = p->pt_cost, .chunk = s->chunk, .starve = PREFILL_STARVE};
    int n = 0;
    *waiting = false;
    for (int i = 0; i < p->n_run; i++) {
        sched_session *ss = p->run[i];
        if (!ss->seq) continue;
        if (engine_seq_get_state(ss->seq) == SEQ_PREFILL) {
            *waiting = true;
            continue;
        }
        ++*decoders;
        if (ss->n_gen > 0) {
            p->pace_first[n] = ss->t_first;
            p->pace_gen[n++] = ss->n_gen;
        }
    }
    return sched_pace_budget(&pc, now, p->pace_first, p->pace_gen, n, *waiting, p->t_prefilled);
}

/* The rate prompts go in while some wait, over windows of RATE_WINDOW s
 * of such steps (what sched_expected_ttft divides the backlog by). */
static void measure_prefill(partition *p, int prompt, double dt) {
    p->pf_tokens += RL_MAX(prompt, 0);
    p->pf_time += dt;
    if (p->pf_time < RATE_WINDOW) return;
    double rate = p->pf_tokens / p->pf_time;
    pthread_mutex_lock(&p->s->lock);
    p->prefill_rate = 0.5 * p->prefill_rate + 0.5 * rate;
    pthread_mutex_unlock(&p->s->lock);
    p->pf_tokens = p->pf_time = 0;
}

/* Runs one step under the budget and updates the estimates of a decode
 * step and of a prompt token beside it. */
static int paced_step(partition *p, rl_err *err) {
    double t0 = rl_now();
    int decoders = 0;
    bool waiting;
    int budget = prefill_budget(p, t0, &decoders, &waiting);
    engine_set_prefill_budget(p->e, budget);
    int n = engine_step(p->e, err);
    double now = rl_now();
    int prompt = n - decoders;
    if (prompt > 0 || budget < 0) p->t_prefilled = now;
    if (waiting && n >= 0) measure_prefill(p, prompt, now - t0);
    if (n > 0 && decoders > 0) {
        /* both estimates quick to rise (a slower step must not be missed),
         * slow to fall; a prompt token costs at least the probe's, more at
         * long positions (attention) or when the prefix cache copies */
        double dt = now - t0;
        if (prompt > 0) {
            double pt = (dt - p->t_decode) / prompt;
            p->pt_cost = pt > p->pt_cost ? pt : fmax(p->s->per_token, 0.8 * p->pt_cost + 0.2 * pt);
            dt -= prompt * p->pt_cost;
        }
        p->t_decode = dt > p->t_decode ? dt : 0.8 * p->t_decode + 0.2 * dt;
    }
    return n;
}

void sched_serve(partition *p) {
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
                if (p->ctl.cap > before) sched_admit_queue_locked(s);
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
        if (p->n_run == 0) { /* the last ones left before a step: none to show */
            pthread_mutex_lock(&p->stats_lock);
            p->n_live = 0;
            pthread_mutex_unlock(&p->stats_lock);
            continue;
        }

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
