/*
 * sched_session.c — a session's output queue, between the partition thread
 * that writes its text and the one reader (an HTTP connection) that takes
 * it: text appended per token, read in whole UTF-8 characters, the end and
 * its reason, and the two references (the reader's and, while queued or
 * running, the scheduler's) that decide when it is freed.
 */
#include <stdlib.h>
#include <string.h>

#include "sched_internal.h"

void sched_session_free(sched_session *ss) {
    stop_free(ss->stop);
    free(ss->prompt);
    free(ss->text);
    free(ss->lp);
    pthread_mutex_destroy(&ss->lock);
    pthread_cond_destroy(&ss->cond);
    free(ss);
}

void sched_session_unref(sched_session *ss) {
    pthread_mutex_lock(&ss->lock);
    int left = --ss->refs;
    pthread_mutex_unlock(&ss->lock);
    if (left == 0) sched_session_free(ss);
}

/* Drops the scheduler's ref of a queued session: its reader still holds
 * one (a reader cancels before it releases), so this never frees. */
void sched_session_unqueued(sched_session *ss) {
    pthread_mutex_lock(&ss->lock);
    if (ss->refs > 1) ss->refs--;
    pthread_mutex_unlock(&ss->lock);
}

/* Appends text for the reader (the partition thread, per token). */
void sched_session_push(sched_session *ss, const char *bytes, size_t n) {
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
    if (ss->notify) ss->notify(ss->notify_ctx, SCHED_NEWS_TEXT);
    pthread_mutex_unlock(&ss->lock);
}

/* Appends a token's log-probabilities (the partition thread, before the
 * token's text); room for every token the session may generate was made
 * at submit. */
void sched_session_push_logprob(sched_session *ss, const sampler_logprob *lp) {
    pthread_mutex_lock(&ss->lock);
    if (ss->lp_len < ss->lp_cap) ss->lp[ss->lp_len++] = *lp;
    pthread_mutex_unlock(&ss->lock);
}

int sched_read_logprobs(sched_session *ss, sampler_logprob *out, int cap) {
    pthread_mutex_lock(&ss->lock);
    int n = RL_MIN(cap, ss->lp_len - ss->lp_rd);
    if (n > 0) memcpy(out, ss->lp + ss->lp_rd, (size_t)n * sizeof *out);
    ss->lp_rd += n > 0 ? n : 0;
    pthread_mutex_unlock(&ss->lock);
    return n > 0 ? n : 0;
}

void sched_session_notify(sched_session *ss, sched_news what) {
    pthread_mutex_lock(&ss->lock);
    if (ss->notify) ss->notify(ss->notify_ctx, what);
    pthread_mutex_unlock(&ss->lock);
}

void sched_session_end(sched_session *ss, sched_finish why, const char *msg) {
    pthread_mutex_lock(&ss->lock);
    ss->done = true;
    ss->finish = why;
    ss->n_gen_pub = ss->n_gen;
    ss->ttft = ss->t_first > 0 ? ss->t_first - ss->t_submit : 0;
    if (msg) snprintf(ss->error, sizeof ss->error, "%s", msg);
    pthread_cond_broadcast(&ss->cond);
    if (ss->notify) ss->notify(ss->notify_ctx, SCHED_NEWS_END);
    pthread_mutex_unlock(&ss->lock);
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
    pr->n_cached = ss->n_cached;
    pr->ttft = ss->ttft;
    pr->error = ss->error;
    pthread_mutex_unlock(&ss->lock);
    return n;
}
