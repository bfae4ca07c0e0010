/*
 * test_scheduler.c — the scheduler without HTTP: the capacity controller,
 * the cost of context, prefill pacing and the expected time to first token
 * on made-up measurements, then the
 * real thing on a tiny synthetic model (tiny_shape.h, built in memory):
 * admission (run, queue, reject), texts identical to a lone engine's, stop
 * strings, cancellation, queue timeout, drain and abort, calibration,
 * capacity lowered below the floor and recovered, admission by memory, the
 * news a reader that does not wait in a thread is given, the prefix cache,
 * and the refusal of a request whose first token would come too late.
 *
 * Sessions are kept running long enough to be seen by a step delay (the
 * scheduler's simulated slower machine), never by sleeping in the test:
 * every wait here is on the scheduler's own condition, with a deadline.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine.h"
#include "serve/scheduler.h"
#include "test.h"
#include "tiny_shape.h"

static model *M;
static int32_t PROMPT[64];
static int N_PROMPT;

/* ---- prefill pacing ---- */

static void test_pace(void) {
    /* floor 10, margin 1 (period 0.1 s), decoders' step 0.05 s, a prompt
     * token 0.01 s, chunks of at most 8. */
    sched_pace pc = {.floor_tps = 10, .margin = 1, .t_decode = 0.05, .per_token = 0.01, .chunk = 8, .starve = 1};
    double first[2] = {0, 0};
    int gen[2] = {5, 3};
    /* nothing waiting, or nobody decoding: no limit */
    CHECK_EQ_INT(sched_pace_budget(&pc, 0.3, first, gen, 2, false, 0.3), -1);
    CHECK_EQ_INT(sched_pace_budget(&pc, 0.3, first, gen, 0, true, 0.3), -1);
    /* at 0.3 s: session 0 (5 tokens) may end its next step by 0.5 s, session
     * 1 (3 tokens) by 0.3 s: its slack is 0.3 - 0.3 - 0.05 < 0: nothing */
    CHECK_EQ_INT(sched_pace_budget(&pc, 0.3, first, gen, 2, true, 0.3), 0);
    /* session 1 alone, 0.13 s earlier: slack 0.3 - 0.17 - 0.05 = 0.08 s = 8
     * tokens (floating point may make it 7) */
    int b = sched_pace_budget(&pc, 0.17, first, gen + 1, 1, true, 0.17);
    CHECK(b == 7 || b == 8);
    /* session 0 alone: slack 0.5 - 0.17 - 0.05 = 0.28 s = 28 tokens, capped
     * at the chunk */
    CHECK_EQ_INT(sched_pace_budget(&pc, 0.17, first, gen, 1, true, 0.17), 8);
    /* no slack but a prompt waiting for more than `starve`: one token */
    CHECK_EQ_INT(sched_pace_budget(&pc, 0.3, first, gen, 2, true, 0.3 - 1.01), 1);
    /* the margin tightens the schedule: margin 0.5, session 0 by 0.25 s:
     * 0.03 s, 3 tokens (or 2 after rounding) */
    pc.margin = 0.5;
    b = sched_pace_budget(&pc, 0.17, first, gen, 1, true, 0.17);
    CHECK(b == 2 || b == 3);
    /* a session that has no token yet sets no deadline */
    int none[1] = {0};
    CHECK_EQ_INT(sched_pace_budget(&pc, 5.0, first, none, 1, true, 5.0), -1);
}

/* The expected time to first token (--ttft-limit's rule), by hand. */
static void test_expected_ttft(void) {
    /* a free slot, nothing ahead: its own 10 tokens at 20 tok/s */
    CHECK_NEAR(sched_expected_ttft(0, 5, 2, 0, 10, 20), 0.5, 1e-12);
    /* a free slot behind 30 tokens: 40 tokens at 20 tok/s */
    CHECK_NEAR(sched_expected_ttft(0, 5, 2, 30, 10, 20), 2.0, 1e-12);
    /* second in the queue, 3 sessions running 6 s each: a slot in 4 s,
     * then its 20 tokens at 40 tok/s; the 120 tokens in all take only 3 s */
    CHECK_NEAR(sched_expected_ttft(2, 6, 3, 100, 20, 40), 4.5, 1e-12);
    /* first in the queue, but 400 tokens ahead: those decide (420 / 40) */
    CHECK_NEAR(sched_expected_ttft(1, 1, 1, 400, 20, 40), 10.5, 1e-12);
    /* no rate known yet: the slot's wait alone */
    CHECK_NEAR(sched_expected_ttft(3, 2, 2, 400, 20, 0), 3.0, 1e-12);
}

static void test_ctl(void) {
    sched_ctl c;
    sched_ctl_init(&c, 4, 10, 3);
    CHECK_EQ_INT(c.cap, 4);
    /* nothing measured yet: no change */
    sched_ctl_update(&c, 0.0, 4, 0, 0);
    CHECK_EQ_INT(c.cap, 4);
    /* 4 running, the slowest at 8 tok/s: one less than runs */
    sched_ctl_update(&c, 1.0, 4, 4, 8);
    CHECK_EQ_INT(c.cap, 3);
    CHECK_EQ_INT(c.lowered, 1);
    /* the same 4 still slow: idempotent (no further drop until one ends) */
    sched_ctl_update(&c, 1.1, 4, 4, 8);
    sched_ctl_update(&c, 1.2, 4, 4, 8);
    CHECK_EQ_INT(c.cap, 3);
    /* one ended, the other 3 still slow */
    sched_ctl_update(&c, 2.0, 3, 3, 9);
    CHECK_EQ_INT(c.cap, 2);
    /* never below 1 */
    sched_ctl_update(&c, 3.0, 1, 1, 1);
    sched_ctl_update(&c, 3.1, 0, 1, 1);
    CHECK_EQ_INT(c.cap, 1);
    /* healthy: nothing for 3.0, then one step at a time */
    sched_ctl_update(&c, 10.0, 1, 1, 20);
    CHECK_EQ_INT(c.cap, 1);
    sched_ctl_update(&c, 10.0 + 3.0 * 0.5, 1, 1, 20);
    CHECK_EQ_INT(c.cap, 1);
    sched_ctl_update(&c, 10.0 + 3.0, 1, 1, 20);
    CHECK_EQ_INT(c.cap, 2);
    /* a slow observation resets the healthy clock (and, one running,
     * brings the cap to 1) */
    sched_ctl_update(&c, 10.0 + 3.0 * 1.5, 1, 1, 5);
    CHECK_EQ_INT(c.cap, 1);
    sched_ctl_update(&c, 10.0 + 3.0 * 2.1, 0, 0, 0);
    sched_ctl_update(&c, 10.0 + 3.0 * 2.9, 0, 0, 0);
    CHECK_EQ_INT(c.cap, 1); /* healthy again only since 2.1: not long enough */
    sched_ctl_update(&c, 10.0 + 3.0 * 3.1, 0, 0, 0);
    CHECK_EQ_INT(c.cap, 2);
    /* idle counts as healthy: back to base, never above */
    for (double t = 20; t < 40; t += 0.5) sched_ctl_update(&c, t, 0, 0, 0);
    CHECK_EQ_INT(c.cap, 4);
    /* exactly at the floor is not below it */
    sched_ctl_update(&c, 50, 4, 4, 10);
    CHECK_EQ_INT(c.cap, 4);
}

/* ---- the cost of context ---- */

static void test_cost(void) {
    /* period 0.1 s, 10 us per token of context; points added out of order */
    sched_cost c = {.period = 0.1, .per_token = 1e-5};
    sched_cost_add(&c, 1, 0.05);
    sched_cost_add(&c, 4, 0.065);
    sched_cost_add(&c, 2, 0.055);
    sched_cost_add(&c, 8, 0.12);
    CHECK_EQ_INT(c.n_points, 4);
    CHECK(c.sessions[0] == 1 && c.sessions[1] == 2 && c.sessions[2] == 4 && c.sessions[3] == 8);
    /* 3 sessions: halfway from 2 (0.055) to 4 (0.065): 0.06 s; with 2000
     * tokens of context 0.08 s, fits; 4000 reach the period exactly, 4001
     * pass it */
    CHECK_NEAR(sched_cost_step(&c, 3, 0), 0.06, 1e-15);
    CHECK_NEAR(sched_cost_step(&c, 3, 2000), 0.08, 1e-15);
    CHECK(sched_cost_fits(&c, 3, 2000));
    CHECK(sched_cost_fits(&c, 3, 4000));
    CHECK(!sched_cost_fits(&c, 3, 4001));
    /* 6: from 4 (0.065) to 8 (0.12): 0.0925 s, room for 750 tokens */
    CHECK_NEAR(sched_cost_step(&c, 6, 0), 0.0925, 1e-15);
    CHECK(sched_cost_fits(&c, 6, 750));
    CHECK(!sched_cost_fits(&c, 6, 800));
    /* below the first point its step; beyond the last the last segment's
     * slope: 0.12 + 2 x 0.055 / 4 */
    CHECK_NEAR(sched_cost_step(&c, 0, 0), 0.05, 0);
    CHECK_NEAR(sched_cost_step(&c, 10, 0), 0.1475, 1e-15);
    /* a point measured again replaces the old one */
    sched_cost_add(&c, 4, 0.07);
    CHECK_EQ_INT(c.n_points, 4);
    CHECK_NEAR(sched_cost_step(&c, 4, 0), 0.07, 0);
    /* no points (capacity given): only the context's own cost counts */
    sched_cost none = {.period = 0.1, .per_token = 1e-5};
    CHECK_NEAR(sched_cost_step(&none, 3, 1000), 0.01, 1e-15);
    CHECK(sched_cost_fits(&none, 50, 10000));
    CHECK(!sched_cost_fits(&none, 1, 10001));
    /* no period: no limit */
    none.period = 0;
    CHECK(sched_cost_fits(&none, 1, 1e12));
    /* sessions that held base_ctx tokens each while t(n) was measured:
     * only context beyond that costs more (and less never costs less) */
    c.base_ctx = 100;
    CHECK_NEAR(sched_cost_step(&c, 3, 2300), 0.0625 + 0.02, 1e-15);
    CHECK_NEAR(sched_cost_step(&c, 3, 200), 0.0625, 0);
    /* a step that alone passes the period: the floor is out of reach, the
     * count decides (10 sessions: 0.1475 s) */
    CHECK(sched_cost_fits(&c, 10, 1e9));
    /* full: further points are dropped, never written past the arrays */
    sched_cost many = {0};
    for (int i = 1; i <= SCHED_COST_POINTS + 5; i++) sched_cost_add(&many, i, i);
    CHECK_EQ_INT(many.n_points, SCHED_COST_POINTS);
    CHECK_EQ_INT(many.sessions[SCHED_COST_POINTS - 1], SCHED_COST_POINTS);
}

/* ---- the real scheduler ---- */

enum { TEXT_SLACK = 1 << 16 }; /* a session's prompt and text buffers, beside its engine sequence */

static sched_params base_params(int capacity, int queue) {
    sched_params p = sched_default_params();
    p.capacity = capacity;
    p.queue_max = queue;
    p.n_threads = 1;
    p.prefill_chunk = 16;
    p.n_ctx = 256;
    p.floor_tps = 1; /* any machine, even under a sanitizer: admission is what is tested */
    p.ctx_cost = 1e-12; /* context as good as free (test_context measures and reserves) */
    return p;
}

static sched_request greedy_request(int max_tokens) {
    sched_request r = {.prompt = PROMPT, .n_prompt = N_PROMPT, .max_tokens = max_tokens, .ignore_eos = true};
    r.sp = sampler_default_params();
    r.sp.temperature = 0;
    return r;
}

/* Reads a session to its end (bounded), appending its text to buf. */
static size_t read_all(sched_session *ss, char *buf, size_t cap, sched_progress *pr) {
    size_t n = 0;
    double end = rl_now() + 60;
    memset(pr, 0, sizeof *pr);
    while (!pr->done && rl_now() < end) n += sched_read(ss, buf + n, cap - 1 - n, 0.5, pr);
    buf[n] = 0;
    return n;
}

/* The text a lone engine generates greedily (every token's bytes, control
 * tokens giving none) — what a session must stream. */
static void reference_text(int n_tokens, char *out, size_t cap) {
    rl_err err = {0};
    engine_params ep = engine_default_params();
    ep.n_threads = 1;
    ep.n_ctx = 256;
    engine *e = engine_open(M, &ep, &err);
    sampler_params sp = sampler_default_params();
    sp.temperature = 0;
    engine_seq *q = e ? engine_seq_add(e, PROMPT, N_PROMPT, &sp, &err) : NULL;
    CHECKF(q != NULL, "%s", err.msg);
    size_t n = 0;
    int got = 0;
    while (q && got < n_tokens && engine_step(e, &err) > 0) {
        int32_t t;
        if (!engine_seq_take(q, &t)) continue;
        got++;
        char piece[256];
        int k = tok_token_bytes(M->tok, t, false, piece, sizeof piece);
        if (k > 0 && n + (size_t)k < cap) {
            memcpy(out + n, piece, (size_t)k);
            n += (size_t)k;
        }
    }
    out[n] = 0;
    engine_close(e);
}

static void test_admission(void) {
    rl_err err = {0};
    sched_params p = base_params(2, 1);
    p.step_delay = 0.02; /* 40 tokens take >= 0.8 s: all four arrive while two run */
    sched *s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    char want[8192];
    reference_text(40, want, sizeof want);
    CHECK(strlen(want) > 20);

    sched_request r = greedy_request(40);
    sched_session *ss[4] = {0};
    int how[4];
    for (int i = 0; i < 4; i++) how[i] = sched_submit(s, &r, &ss[i], &err);
    CHECK_EQ_INT(how[0], SCHED_RUN);
    CHECK_EQ_INT(how[1], SCHED_RUN);
    CHECK_EQ_INT(how[2], SCHED_QUEUED);
    CHECK_EQ_INT(how[3], SCHED_REJECT_FULL);
    CHECK(ss[3] == NULL);
    sched_stats st;
    sched_get_stats(s, &st);
    CHECK_EQ_INT(st.active, 2);
    CHECK_EQ_INT(st.queued, 1);
    CHECK_EQ_INT(st.rejected_full, 1);
    CHECK_EQ_INT(st.capacity, 2);
    CHECK(sched_retry_after(s) >= 1);

    /* the queued one gets the first free slot */
    CHECK_EQ_INT(sched_wait_admission(s, ss[2], 0), SCHED_QUEUED);
    char text[8192];
    sched_progress pr;
    for (int i = 0; i < 3; i++) {
        if (i == 2) CHECK_EQ_INT(sched_wait_admission(s, ss[2], 30), SCHED_RUN);
        read_all(ss[i], text, sizeof text, &pr);
        CHECK(pr.done);
        CHECK_EQ_INT(pr.finish, SCHED_FINISH_LENGTH);
        CHECK_EQ_INT(pr.n_generated, 40);
        CHECK_EQ_INT(pr.n_prompt, N_PROMPT);
        CHECK(pr.ttft > 0);
        CHECK_STR(text, want); /* batched or alone, the same text */
        sched_release(s, ss[i]);
    }
    CHECK(sched_wait_idle(s, 10));
    sched_get_stats(s, &st);
    CHECK_EQ_INT(st.active, 0);
    CHECK(st.active_peak <= 2);
    CHECK_EQ_INT(st.active_peak, 2);
    CHECK_EQ_INT(st.admitted, 3);
    CHECK_EQ_INT(st.finished[SCHED_FINISH_LENGTH], 3);
    CHECK_EQ_INT(st.completion_tokens, 120);
    CHECK_EQ_INT(st.prompt_tokens, 3 * N_PROMPT);
    CHECK_EQ_INT(st.ttft.count, 3);
    CHECK_EQ_INT(st.itl.count, 3 * 39);
    uint64_t sum = 0;
    for (int i = 0; i <= SCHED_HIST_BUCKETS; i++) sum += st.itl.counts[i];
    CHECK_EQ_INT(sum, st.itl.count);
    sched_free(s);
}

/* The running sessions as the dashboard reads them (sched_get_sessions):
 * two sessions of 200 tokens, polled until both have tokens; their figures;
 * a short buffer still counts them all; none once they are cancelled. */
static void test_sessions(void) {
    rl_err err = {0};
    sched_params p = base_params(2, 1);
    p.step_delay = 0.01;
    sched *s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    CHECK(!sched_capacity_measured(s));
    sched_cost cost;
    sched_get_cost(s, &cost);
    CHECK(cost.n_points >= 1 && cost.step[0] > 0);
    sched_request r = greedy_request(200);
    sched_session *ss[2] = {0};
    for (int i = 0; i < 2; i++) CHECK_EQ_INT(sched_submit(s, &r, &ss[i], &err), SCHED_RUN);
    sched_session_info info[4];
    int n = 0;
    double end = rl_now() + 60;
    while (rl_now() < end) { /* until both have more than two tokens */
        n = sched_get_sessions(s, info, 4);
        if (n == 2 && info[0].n_generated > 2 && info[1].n_generated > 2) break;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CHECK_EQ_INT(n, 2);
    for (int i = 0; i < n && i < 2; i++) {
        CHECK_EQ_INT(info[i].partition, 0);
        CHECK_EQ_INT(info[i].n_prompt, N_PROMPT);
        CHECK(info[i].n_generated > 2 && info[i].n_generated <= 200);
        CHECK(!info[i].prefilling);
        CHECK(info[i].tps > 0);
        CHECK(info[i].ttft > 0 && info[i].age >= info[i].ttft);
    }
    CHECK_EQ_INT(sched_get_sessions(s, info, 1), 2); /* all counted, one copied */
    for (int i = 0; i < 2; i++) sched_release(s, ss[i]); /* cancels them */
    CHECK(sched_wait_idle(s, 30));
    end = rl_now() + 30;
    while (sched_get_sessions(s, info, 4) != 0 && rl_now() < end) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CHECK_EQ_INT(sched_get_sessions(s, info, 4), 0);
    sched_free(s);
}

/* Admission by context. Capacity 4 given, floor 1: the period is 1/1.1 s,
 * and the steps measured at 1 and 4 sessions (a few ms with the delay)
 * leave nearly all of it to context. At 2 ms per token, a request without
 * max_tokens reserves the whole context (256) of which the measured steps'
 * own (60 to 75 tokens) is not counted again: 0.36 to 0.39 s each. Two fit
 * (up to 0.78 s), a third (1.08 s or more) waits although the count (4)
 * has room, and gets the first freed reservation. */
static void test_context(void) {
    rl_err err = {0};
    sched_params p = base_params(4, 2);
    p.ctx_cost = 2e-3;
    p.step_delay = 0.002; /* the two run while the third arrives */
    sched *s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    sched_request r = greedy_request(0);
    sched_session *ss[3] = {0};
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(sched_submit(s, &r, &ss[i], &err), i < 2 ? SCHED_RUN : SCHED_QUEUED);
    sched_stats st;
    sched_get_stats(s, &st);
    CHECK_EQ_INT(st.active, 2);
    CHECK_EQ_INT(st.queued, 1);
    CHECK_NEAR(st.ctx_reserved, 2 * 256, 0);
    CHECK_NEAR(st.ctx_cost, 2e-3, 0);
    CHECK_EQ_INT(st.capacity, 4);
    char text[8192];
    sched_progress pr;
    for (int i = 0; i < 3; i++) {
        if (i == 2) CHECK_EQ_INT(sched_wait_admission(s, ss[2], 60), SCHED_RUN);
        read_all(ss[i], text, sizeof text, &pr);
        CHECK_EQ_INT(pr.finish, SCHED_FINISH_LENGTH);
        /* ran to the full context: every position, and the token sampled
         * after the last */
        CHECK_EQ_INT(pr.n_prompt + pr.n_generated, 257);
        sched_release(s, ss[i]);
    }
    CHECK(sched_wait_idle(s, 10));
    sched_get_stats(s, &st);
    CHECK_NEAR(st.ctx_reserved, 0, 0);
    CHECK_EQ_INT(st.active_peak, 2); /* never three at once, though the count allowed four */
    sched_free(s);

    /* a reservation beyond the period still runs alone (no one to protect),
     * but nothing joins it */
    p = base_params(2, 1);
    p.ctx_cost = 1; /* a second per token */
    p.step_delay = 0.002;
    s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    sched_request r200 = greedy_request(200); /* more context than the measured step held */
    sched_session *a = NULL, *b = NULL;
    CHECK_EQ_INT(sched_submit(s, &r200, &a, &err), SCHED_RUN);
    CHECK_EQ_INT(sched_submit(s, &r200, &b, &err), SCHED_QUEUED);
    read_all(a, text, sizeof text, &pr);
    CHECK_EQ_INT(pr.n_generated, 200);
    sched_release(s, a);
    CHECK_EQ_INT(sched_wait_admission(s, b, 60), SCHED_RUN);
    read_all(b, text, sizeof text, &pr);
    sched_release(s, b);
    sched_free(s);

    /* measured at start (ctx_cost 0): some positive, finite cost */
    p = base_params(1, 0);
    p.ctx_cost = 0;
    s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    sched_get_stats(s, &st);
    CHECK(st.ctx_cost > 0 && st.ctx_cost < 1);
    sched_free(s);
}

/* Admission by memory: a budget of two sessions at the full context (256
 * tokens; capacity 4 by count, context free). Two such run, a third waits
 * for memory although the count has room; a short one (max_tokens 8)
 * still fits beside them, and its engine sequence holds only its reach; a
 * request that needs more than the whole budget is refused at submit. */
static void test_memory(void) {
    rl_err err = {0};
    sched_params p = base_params(4, 2);
    p.step_delay = 0.002;
    sched *s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    sched_stats st;
    sched_get_stats(s, &st);
    uint64_t full = st.mem_session;
    CHECK(full > 0 && st.mem_budget > 2 * full && st.capacity_memory >= 2 && st.weights_bytes == M->weight_bytes);
    CHECK(st.mem_available > 0 && st.mem_budget <= st.mem_available);
    sched_free(s);

    p.mem_limit = 2 * full + full / 2; /* room for two full, and a short one */
    s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    sched_get_stats(s, &st);
    CHECK_EQ_INT(st.mem_budget, p.mem_limit);
    CHECK_EQ_INT(st.capacity_memory, 2);
    sched_request r = greedy_request(0), shorter = greedy_request(8);
    sched_session *ss[4] = {0};
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(sched_submit(s, &r, &ss[i], &err), i < 2 ? SCHED_RUN : SCHED_QUEUED);
    CHECK_EQ_INT(sched_blocking_limit(s, N_PROMPT, 0), SCHED_LIMIT_MEMORY);
    CHECK_EQ_INT(sched_blocking_limit(s, N_PROMPT, 8), SCHED_LIMIT_NONE);
    sched_get_stats(s, &st);
    CHECK(st.mem_reserved >= 2 * full - 2 * TEXT_SLACK && st.mem_reserved <= 2 * full + 2 * TEXT_SLACK);
    sched_cancel(s, ss[2]); /* out of the queue: the short one is next */
    sched_release(s, ss[2]);
    CHECK_EQ_INT(sched_submit(s, &shorter, &ss[3], &err), SCHED_RUN);
    char text[8192];
    sched_progress pr;
    read_all(ss[3], text, sizeof text, &pr);
    CHECK_EQ_INT(pr.n_generated, 8);
    for (int i = 0; i < 4; i++)
        if (i != 2) sched_release(s, ss[i]);
    CHECK(sched_wait_idle(s, 30));
    sched_get_stats(s, &st);
    CHECK_EQ_INT(st.mem_reserved, 0);
    sched_free(s);

    p.mem_limit = full / 2; /* not even one full session */
    s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    sched_session *one = NULL;
    CHECK_EQ_INT(sched_submit(s, &r, &one, &err), -1);
    CHECKF(err.code == RL_ERR_INPUT && strstr(err.msg, "ask for fewer max_tokens"), "%s", err.msg);
    CHECK_EQ_INT(sched_submit(s, &shorter, &one, &err), SCHED_RUN);
    read_all(one, text, sizeof text, &pr);
    sched_release(s, one);
    sched_free(s);
}

/* News for readers that do not wait in a thread: a queued session is told
 * when it leaves the queue (admitted, or rejected when its wait runs out:
 * sched_expire_queue), every session of its text and its end; nothing
 * after sched_release. */
typedef struct news_log {
    atomic_int admission, text, end;
} news_log;

static void count_news(void *ctx, sched_news what) {
    news_log *n = ctx;
    if (what == SCHED_NEWS_ADMISSION) atomic_fetch_add(&n->admission, 1);
    if (what == SCHED_NEWS_TEXT) atomic_fetch_add(&n->text, 1);
    if (what == SCHED_NEWS_END) atomic_fetch_add(&n->end, 1);
}

static void test_notify(void) {
    rl_err err = {0};
    sched_params p = base_params(1, 2);
    p.queue_timeout = 0.5;
    p.step_delay = 0.02;
    sched *s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    news_log logs[3] = {0};
    sched_session *ss[3] = {0};
    for (int i = 0; i < 3; i++) {
        sched_request r = greedy_request(i == 0 ? 20 : 5);
        r.notify = count_news;
        r.notify_ctx = &logs[i];
        CHECK_EQ_INT(sched_submit(s, &r, &ss[i], &err), i == 0 ? SCHED_RUN : SCHED_QUEUED);
    }
    double end = rl_now() + 30; /* the third waits out its 0.5 s; the first runs 20 tokens (>= 0.4 s) */
    while (atomic_load(&logs[2].admission) == 0 && rl_now() < end) {
        sched_expire_queue(s);
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL); /* a poll with a deadline */
    }
    CHECK_EQ_INT(sched_wait_admission(s, ss[2], 0), SCHED_REJECT_TIMEOUT);
    char text[8192];
    sched_progress pr;
    read_all(ss[0], text, sizeof text, &pr);
    CHECK_EQ_INT(atomic_load(&logs[0].end), 1);
    CHECKF(atomic_load(&logs[0].text) >= 1 && atomic_load(&logs[0].admission) == 0, "%d %d", atomic_load(&logs[0].text), atomic_load(&logs[0].admission)); /* ran at once */
    CHECK_EQ_INT(sched_wait_admission(s, ss[1], 30), SCHED_RUN); /* the second took the slot */
    CHECK_EQ_INT(atomic_load(&logs[1].admission), 1);
    sched_release(s, ss[1]); /* gone mid-way: no news after this */
    int text_then = atomic_load(&logs[1].text), end_then = atomic_load(&logs[1].end);
    CHECK(sched_wait_idle(s, 30));
    CHECK(atomic_load(&logs[1].text) == text_then && atomic_load(&logs[1].end) == end_then);
    CHECK_EQ_INT(atomic_load(&logs[2].admission), 1);
    sched_release(s, ss[0]);
    sched_release(s, ss[2]);
    sched_free(s);
}

static void test_stop_and_eos(void) {
    rl_err err = {0};
    sched_params p = base_params(2, 0);
    sched *s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    char want[8192], text[8192];
    reference_text(40, want, sizeof want);
    /* a stop string from the middle of the text: output ends before its
     * first occurrence */
    char stop[8];
    size_t at = strlen(want) / 2;
    memcpy(stop, want + at, 5);
    stop[5] = 0;
    const char *stops[] = {"never appears", stop};
    sched_request r = greedy_request(40);
    r.stops = stops;
    r.n_stops = 2;
    sched_session *ss;
    CHECK_EQ_INT(sched_submit(s, &r, &ss, &err), SCHED_RUN);
    sched_progress pr;
    size_t n = read_all(ss, text, sizeof text, &pr);
    size_t first = (size_t)(strstr(want, stop) - want);
    CHECK_EQ_INT(pr.finish, SCHED_FINISH_STOP);
    CHECK_EQ_INT(n, first);
    CHECK(strncmp(text, want, first) == 0);
    CHECK(pr.n_generated < 40);
    sched_release(s, ss);

    /* ignore_eos: generation runs until the context is full */
    r = greedy_request(0);
    CHECK_EQ_INT(sched_submit(s, &r, &ss, &err), SCHED_RUN);
    read_all(ss, text, sizeof text, &pr);
    CHECK_EQ_INT(pr.finish, SCHED_FINISH_LENGTH);
    /* every position holds a token, and the last one sampled is output
     * though nothing is left to feed it to */
    CHECK_EQ_INT(pr.n_generated + N_PROMPT, 256 + 1);
    sched_release(s, ss);

    /* requests that cannot run */
    int32_t big[300];
    for (int i = 0; i < 300; i++) big[i] = 1;
    r.prompt = big;
    r.n_prompt = 256;
    CHECK_EQ_INT(sched_submit(s, &r, &ss, &err), -1);
    CHECK_EQ_INT(err.code, RL_ERR_INPUT);
    r.n_prompt = 0;
    CHECK_EQ_INT(sched_submit(s, &r, &ss, &err), -1);
    big[0] = 100000;
    r.n_prompt = 3;
    CHECK_EQ_INT(sched_submit(s, &r, &ss, &err), -1);
    sched_free(s);
}

static void test_cancel_and_timeout(void) {
    rl_err err = {0};
    sched_params p = base_params(1, 2);
    p.step_delay = 0.01;
    p.queue_timeout = 0.3;
    sched *s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    sched_request r = greedy_request(10000); /* the context (256) ends it: >= 2.5 s */
    sched_session *a, *b, *c;
    CHECK_EQ_INT(sched_submit(s, &r, &a, &err), SCHED_RUN);
    CHECK_EQ_INT(sched_submit(s, &r, &b, &err), SCHED_QUEUED);
    /* b times out in the queue */
    double t0 = rl_now();
    sched_admit how = SCHED_QUEUED;
    while (how == SCHED_QUEUED && rl_now() - t0 < 10) how = sched_wait_admission(s, b, 1);
    CHECK_EQ_INT(how, SCHED_REJECT_TIMEOUT);
    CHECK(rl_now() - t0 < 2);
    sched_release(s, b);
    /* c is queued, then its client goes away */
    CHECK_EQ_INT(sched_submit(s, &r, &c, &err), SCHED_QUEUED);
    sched_release(s, c);
    sched_stats st;
    sched_get_stats(s, &st);
    CHECK_EQ_INT(st.queued, 0);
    CHECK_EQ_INT(st.rejected_timeout, 1);
    /* a streams; its client leaves after some text: the slot frees */
    char buf[256];
    sched_progress pr = {0};
    size_t got = 0;
    while (got == 0 && rl_now() - t0 < 30) got = sched_read(a, buf, sizeof buf, 1, &pr);
    CHECK(got > 0 && !pr.done);
    sched_get_stats(s, &st);
    uint64_t before = st.completion_tokens; /* a's tokens so far (b and c never ran) */
    sched_release(s, a);
    CHECK(sched_wait_idle(s, 5));
    sched_get_stats(s, &st);
    CHECK_EQ_INT(st.active, 0);
    CHECK_EQ_INT(st.finished[SCHED_FINISH_CANCELLED], 2);
    /* gone within one step: at most the step already running when the
     * client left produced a token after it */
    CHECKF(st.completion_tokens <= before + 1, "%llu tokens after the cancel",
           (unsigned long long)(st.completion_tokens - before));
    sched_free(s);
}

static void test_drain(void) {
    rl_err err = {0};
    sched_params p = base_params(1, 2);
    p.step_delay = 0.01;
    sched *s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    sched_request r = greedy_request(20);
    sched_session *a, *b, *c;
    CHECK_EQ_INT(sched_submit(s, &r, &a, &err), SCHED_RUN);
    r.max_tokens = 10000;
    CHECK_EQ_INT(sched_submit(s, &r, &b, &err), SCHED_QUEUED);
    sched_drain(s);
    CHECK_EQ_INT(sched_wait_admission(s, b, 1), SCHED_REJECT_DRAINING);
    CHECK_EQ_INT(sched_submit(s, &r, &c, &err), SCHED_REJECT_DRAINING);
    sched_release(s, b);
    /* the running one completes */
    char text[4096];
    sched_progress pr;
    read_all(a, text, sizeof text, &pr);
    CHECK_EQ_INT(pr.finish, SCHED_FINISH_LENGTH);
    CHECK_EQ_INT(pr.n_generated, 20);
    sched_release(s, a);
    CHECK(sched_wait_idle(s, 5));
    sched_free(s);

    /* abort: what still runs ends as aborted */
    p.capacity = 2;
    s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    CHECK_EQ_INT(sched_submit(s, &r, &a, &err), SCHED_RUN);
    sched_drain(s);
    CHECK(!sched_wait_idle(s, 0.05));
    sched_abort_all(s);
    read_all(a, text, sizeof text, &pr);
    CHECK_EQ_INT(pr.finish, SCHED_FINISH_ABORTED);
    CHECK(pr.n_generated < 10000);
    sched_release(s, a);
    CHECK(sched_wait_idle(s, 5));
    sched_free(s);
}

static void test_calibration(void) {
    rl_err err = {0};
    sched_params p = base_params(0, 0);
    p.prefill_chunk = 0; /* measured too */
    p.max_sessions = 3;
    p.floor_tps = 1; /* stories260K is far faster: the cap decides */
    sched *s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    sched_stats st;
    sched_get_stats(s, &st);
    CHECK_EQ_INT(st.capacity_base, 3);
    CHECK_EQ_INT(st.capacity, 3);
    CHECK(st.prefill_chunk >= 8 && st.prefill_chunk <= 512);
    sched_free(s);

    /* a floor no machine reaches: one session, with a warning */
    p.floor_tps = 1e12;
    p.max_sessions = 2;
    s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    sched_get_stats(s, &st);
    CHECK_EQ_INT(st.capacity_base, 1);
    sched_free(s);

    /* two partitions: capacity split between them, sessions in both */
    p = base_params(2, 0);
    p.partitions = 2;
    p.n_threads = 2;
    p.step_delay = 0.02; /* a and b still run when c arrives */
    s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    sched_request r = greedy_request(30);
    sched_session *a, *b, *c;
    CHECK_EQ_INT(sched_submit(s, &r, &a, &err), SCHED_RUN);
    CHECK_EQ_INT(sched_submit(s, &r, &b, &err), SCHED_RUN);
    CHECK_EQ_INT(sched_submit(s, &r, &c, &err), SCHED_REJECT_FULL);
    char t1[4096], t2[4096];
    sched_progress pr;
    read_all(a, t1, sizeof t1, &pr);
    read_all(b, t2, sizeof t2, &pr);
    CHECK_STR(t1, t2);
    sched_release(s, a);
    sched_release(s, b);
    sched_get_stats(s, &st);
    CHECK_EQ_INT(st.partitions, 2);
    CHECK_EQ_INT(st.active_peak, 2);
    sched_free(s);

    /* more partitions than threads is bad input */
    p.partitions = 3;
    p.n_threads = 2;
    CHECK(sched_new(M, &p, &err) == NULL);
    CHECK_EQ_INT(err.code, RL_ERR_INPUT);
}

static void test_lowering(void) {
    rl_err err = {0};
    sched_params p = base_params(3, 4);
    p.floor_tps = 1e12; /* every session falls below it */
    p.recover_seconds = 0.3;
    p.step_delay = 0.01; /* all three are in before the first is measured (16 tokens) */
    sched *s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    sched_request r = greedy_request(100);
    sched_session *ss[3];
    for (int i = 0; i < 3; i++) CHECK_EQ_INT(sched_submit(s, &r, &ss[i], &err), SCHED_RUN);
    char text[8192];
    sched_progress pr;
    for (int i = 0; i < 3; i++) {
        read_all(ss[i], text, sizeof text, &pr);
        CHECK_EQ_INT(pr.n_generated, 100);
        sched_release(s, ss[i]);
    }
    sched_stats st;
    sched_get_stats(s, &st);
    CHECK(st.capacity_lowered >= 1);
    CHECK(st.capacity < 3);
    CHECK_EQ_INT(st.capacity_base, 3);
    /* idle counts as healthy: capacity climbs back, one step per
     * recover_seconds (polled, with a deadline) */
    double end = rl_now() + 30;
    while (st.capacity < 3 && rl_now() < end) {
        nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
        sched_get_stats(s, &st);
    }
    CHECK_EQ_INT(st.capacity, 3);
    sched_free(s);
}

/* A prompt seen before starts from the prefix cache: the same text, all
 * but its last token reused, and the figures say so. */
static void test_prefix(void) {
    rl_err err = {0};
    sched_params p = base_params(2, 0);
    p.prefix_cache_bytes = 64u << 20;
    sched *s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    char want[4096], got[4096];
    reference_text(12, want, sizeof want);
    sched_request r = greedy_request(12);
    for (int round = 0; round < 2; round++) {
        sched_session *ss = NULL;
        sched_progress pr;
        CHECK_EQ_INT(sched_submit(s, &r, &ss, &err), SCHED_RUN);
        read_all(ss, got, sizeof got, &pr);
        CHECK_STR(got, want);
        CHECK_EQ_INT(pr.n_prompt, N_PROMPT);
        CHECK_EQ_INT(pr.n_cached, round == 0 ? 0 : N_PROMPT - 1);
        sched_release(s, ss);
    }
    sched_stats st;
    sched_get_stats(s, &st);
    CHECK(st.prefix_on);
    CHECK_EQ_INT(st.prefix.hits, 1);
    CHECK_EQ_INT(st.prefix.tokens_reused, N_PROMPT - 1);
    CHECK(st.prefix.entries == 1 && st.prefix.bytes > 0 && st.prefix.bytes <= st.prefix.budget);
    sched_free(s);
}

/* --ttft-limit on the real scheduler. With a chunk of 16 given, a prompt
 * token is taken to cost 2 floor periods / 16 = 0.125 s, and prompts to go
 * in at half that speed (4 tok/s) until measured (it takes a second of
 * prefill, which this tiny model never spends). After one session of 40
 * tokens (>= 0.8 s of step delays), a request expects N / 4 s with a free
 * slot (admitted under a limit of N / 4 + 0.5 s) and at least 0.8 + N / 4 s
 * behind it in the queue (refused at once, not queued). */
static void test_ttft_limit(void) {
    rl_err err = {0};
    sched_params p = base_params(1, 4);
    p.step_delay = 0.02;
    p.prefix_cache_bytes = 0;
    p.ttft_limit = N_PROMPT / 4.0 + 0.5;
    sched *s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    sched_request r = greedy_request(40);
    sched_session *ss = NULL, *next = NULL;
    char text[8192];
    sched_progress pr;
    CHECK_EQ_INT(sched_submit(s, &r, &ss, &err), SCHED_RUN);
    read_all(ss, text, sizeof text, &pr);
    sched_release(s, ss);
    CHECK(sched_wait_idle(s, 10));
    CHECK_NEAR(sched_expected_wait(s, N_PROMPT), N_PROMPT / 4.0, 1e-9);

    CHECK_EQ_INT(sched_submit(s, &r, &ss, &err), SCHED_RUN);
    CHECK(sched_expected_wait(s, N_PROMPT) >= 0.8 + N_PROMPT / 4.0);
    double said = 0;
    sched_request late = r;
    late.expected_ttft = &said;
    CHECK_EQ_INT(sched_submit(s, &late, &next, &err), SCHED_REJECT_TTFT);
    CHECK(next == NULL);
    CHECK(said >= 0.8 + N_PROMPT / 4.0 && said > p.ttft_limit); /* the reason, for the 429 */
    sched_stats st;
    sched_get_stats(s, &st);
    CHECK_EQ_INT(st.rejected_ttft, 1);
    CHECK_EQ_INT(st.rejected_full, 0);
    CHECK_EQ_INT(st.queued, 0);
    CHECK_NEAR(st.ttft_limit, p.ttft_limit, 1e-12);
    CHECK(st.expected_ttft >= 0.8 + N_PROMPT / 4.0);
    read_all(ss, text, sizeof text, &pr);
    CHECK_EQ_INT(pr.n_generated, 40);
    sched_release(s, ss);
    CHECK(sched_wait_idle(s, 10));
    sched_get_stats(s, &st);
    CHECK_EQ_INT(st.prefill_backlog, 0); /* every prompt counted out again */
    sched_free(s);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(test_pace);
    RUN(test_expected_ttft);
    RUN(test_ctl);
    RUN(test_cost);
    rl_err err = {0};
    void *data = NULL;
    M = tiny_model("q8_0", 1, &data);
    CHECK(M != NULL);
    if (!M) return test_report("test_scheduler");
    const char *text = "Once upon a time, there was a little dog";
    N_PROMPT = tok_encode(M->tok, text, strlen(text), true, false, PROMPT, 64, &err);
    CHECK(N_PROMPT > 5 && N_PROMPT < 64);
    RUN(test_admission);
    RUN(test_sessions);
    RUN(test_context);
    RUN(test_memory);
    RUN(test_notify);
    RUN(test_stop_and_eos);
    RUN(test_cancel_and_timeout);
    RUN(test_drain);
    RUN(test_calibration);
    RUN(test_lowering);
    RUN(test_prefix);
    RUN(test_ttft_limit);
    model_free(M);
    free(data);
    return test_report("test_scheduler");
}
