/*
 * test_prefix_cache.c — the prefix cache (prefix_cache.h) through the
 * engine, on the tiny synthetic model: a chat's next turn and prompts
 * behind one system prompt start from the cached state and produce the
 * same tokens and bit-identical logits as without a cache, also from a long
 * prompt copied while its session still runs; only an exact
 * token prefix is ever reused; entries that a newer one covers go; the
 * budget holds, least recently used first, and an entry being copied from
 * is never evicted.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/forward.h"
#include "test.h"
#include "tiny_shape.h"

enum { N_GEN = 8, CTX = 256 };

static engine *open_engine(const model *m, prefix_cache *pc, int max_seqs) {
    rl_err err = {0};
    engine_params ep = engine_default_params();
    ep.n_ctx = CTX;
    ep.max_seqs = max_seqs;
    ep.n_threads = 2;
    engine *e = engine_open(m, &ep, &err);
    CHECKF(e != NULL, "%s", err.msg);
    if (e) engine_set_prefix_cache(e, pc);
    return e;
}

/* What one greedy generation gave: its tokens, the logits its first token
 * was drawn from, and how much of its prompt came from the cache. */
typedef struct run_out {
    int32_t tok[N_GEN];
    float *logits;
    int cached;
} run_out;

/* Runs prompts[i] (n[i] tokens) together in one engine, N_GEN greedy
 * tokens each, then removes them (into the cache, if it has one). */
static void run_together(engine *e, int k, int32_t *const *prompts, const int *n, run_out *out) {
    rl_err err = {0};
    sampler_params sp = sampler_default_params();
    sp.temperature = 0;
    engine_seq *s[4];
    int got[4] = {0}, n_vocab = (int)engine_model(e)->shape.n_vocab;
    for (int i = 0; i < k; i++) {
        s[i] = engine_seq_add(e, prompts[i], n[i], &sp, &err);
        CHECKF(s[i] != NULL, "%s", err.msg);
        out[i].logits = calloc((size_t)n_vocab, sizeof(float));
    }
    for (int steps = 0; steps < 10 * CTX; steps++) {
        int done = 0;
        if (engine_step(e, &err) < 0) break;
        for (int i = 0; i < k; i++) {
            int32_t t;
            if (engine_seq_take(s[i], &t) && got[i] < N_GEN) {
                if (got[i] == 0) {
                    memcpy(out[i].logits, engine_seq_logits(s[i]), (size_t)n_vocab * sizeof(float));
                    out[i].cached = engine_seq_cached(s[i]); /* known once its prompt went in */
                }
                out[i].tok[got[i]++] = t;
            }
            done += got[i] == N_GEN;
        }
        if (done == k) break;
    }
    for (int i = 0; i < k; i++) {
        CHECK_EQ_INT(got[i], N_GEN);
        engine_seq_remove(e, s[i]);
    }
}

static void run_one(engine *e, int32_t *prompt, int n, run_out *out) { run_together(e, 1, &prompt, &n, out); }

/* The same result with and without the cache, to the last bit. */
static void check_same(const model *m, const run_out *a, const run_out *b) {
    CHECK(memcmp(a->tok, b->tok, sizeof a->tok) == 0);
    CHECK(memcmp(a->logits, b->logits, m->shape.n_vocab * sizeof(float)) == 0);
}

static int ids(int32_t first, int32_t *out, int n) {
    for (int i = 0; i < n; i++) out[i] = (first + 7 * i) % 1000 + 1;
    return n;
}

static void test_chat_turns(const model *m) {
    rl_err err = {0};
    prefix_cache *pc = prefix_cache_new(64u << 20, &err);
    engine *e = open_engine(m, pc, 1), *plain = open_engine(m, NULL, 1);
    int32_t p[CTX];
    int n = ids(11, p, 20);
    run_out t1, t2, ref;
    run_one(e, p, n, &t1);
    CHECK_EQ_INT(t1.cached, 0);
    /* turn 2: the whole of turn 1, its answer, a new message */
    memcpy(p + n, t1.tok, sizeof t1.tok);
    n += N_GEN;
    n += ids(500, p + n, 10);
    run_one(e, p, n, &t2);
    run_one(plain, p, n, &ref);
    CHECK_EQ_INT(t2.cached, 20 + N_GEN - 1); /* the last answer token never went in */
    check_same(m, &t2, &ref);
    /* turn 2's state covers turn 1's: one entry left */
    CHECK_EQ_INT(prefix_cache_get_stats(pc).entries, 1);
    /* the very same prompt again: all but its last token come from the cache */
    run_out again;
    run_one(e, p, n, &again);
    CHECK_EQ_INT(again.cached, n - 1);
    check_same(m, &again, &ref);
    free(t1.logits), free(t2.logits), free(ref.logits), free(again.logits);
    engine_close(e);
    engine_close(plain);
    prefix_cache_free(pc);
}

static void test_exact_prefix_only(const model *m) {
    rl_err err = {0};
    prefix_cache *pc = prefix_cache_new(64u << 20, &err);
    engine *e = open_engine(m, pc, 1), *plain = open_engine(m, NULL, 1);
    int32_t p[64], q[64];
    int n = ids(3, p, 30);
    run_out a, b, ref;
    run_one(e, p, n, &a);
    memcpy(q, p, sizeof p);
    q[5] = p[5] + 1; /* differs from token 5 on */
    run_one(e, q, n, &b);
    run_one(plain, q, n, &ref);
    CHECK_EQ_INT(b.cached, 5);
    check_same(m, &b, &ref);
    free(b.logits), free(ref.logits);
    /* a prompt sharing no first token reuses nothing */
    q[0] = p[0] + 1;
    uint64_t hits = prefix_cache_get_stats(pc).hits;
    run_one(e, q, n, &b);
    CHECK_EQ_INT(b.cached, 0);
    CHECK_EQ_INT(prefix_cache_get_stats(pc).hits, hits);
    free(a.logits), free(b.logits);
    engine_close(e);
    engine_close(plain);
    prefix_cache_free(pc);
}

/* Many users behind one system prompt, two at a time in one batch. */
static void test_shared_system_prompt(const model *m) {
    rl_err err = {0};
    prefix_cache *pc = prefix_cache_new(64u << 20, &err);
    engine *e = open_engine(m, pc, 2), *plain = open_engine(m, NULL, 2);
    int32_t u[3][96];
    int n[3];
    for (int i = 0; i < 3; i++) {
        ids(40, u[i], 48);                       /* the system prompt */
        n[i] = 48 + ids(600 + 37 * i, u[i] + 48, 12); /* each user's own */
    }
    run_out first, two[2], ref[2];
    run_one(e, u[0], n[0], &first);
    int32_t *pair[2] = {u[1], u[2]};
    run_together(e, 2, pair, n + 1, two);
    run_together(plain, 2, pair, n + 1, ref);
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_INT(two[i].cached, 48);
        check_same(m, &two[i], &ref[i]);
        free(two[i].logits), free(ref[i].logits);
    }
    prefix_cache_stats st = prefix_cache_get_stats(pc);
    CHECK_EQ_INT(st.hits, 2);
    CHECK_EQ_INT(st.tokens_reused, 96);
    CHECK_EQ_INT(st.entries, 3); /* none covers another */
    free(first.logits);
    engine_close(e);
    engine_close(plain);
    prefix_cache_free(pc);
}

/* A long prompt is copied to the cache as soon as it has gone in: a user
 * arriving while the first still runs starts from it (same tokens and
 * logits as without a cache), and the copy goes once a state that begins
 * with it (here the second user's, at its end) is kept. */
static void test_snapshot_while_running(const model *m) {
    rl_err err = {0};
    prefix_cache *pc = prefix_cache_new(64u << 20, &err);
    engine *e = open_engine(m, pc, 2), *plain = open_engine(m, NULL, 1);
    int32_t a[96], b[96];
    int na = ids(40, a, 80);
    memcpy(b, a, sizeof a);
    int nb = na + ids(700, b + na, 10);
    sampler_params sp = sampler_default_params();
    sp.temperature = 0;
    engine_seq *sa = engine_seq_add(e, a, na, &sp, &err);
    CHECKF(sa != NULL, "%s", err.msg);
    for (int i = 0; i < 10 && sa && engine_seq_get_state(sa) == SEQ_PREFILL; i++) CHECK(engine_step(e, &err) > 0);
    CHECK(sa && engine_seq_get_state(sa) == SEQ_DECODE);
    CHECK_EQ_INT(prefix_cache_get_stats(pc).entries, 1); /* the copy, while a runs */
    run_out got, ref;
    run_one(e, b, nb, &got); /* beside a, which keeps its slot */
    run_one(plain, b, nb, &ref);
    CHECK_EQ_INT(got.cached, na);
    check_same(m, &got, &ref);
    CHECK_EQ_INT(prefix_cache_get_stats(pc).entries, 1); /* b's state, which begins with the copy */
    engine_seq_remove(e, sa);
    prefix_cache_stats st = prefix_cache_get_stats(pc);
    CHECK_EQ_INT(st.entries, 2); /* and a's */
    CHECK(st.bytes <= st.budget);
    free(got.logits), free(ref.logits);
    engine_close(e);
    engine_close(plain);
    prefix_cache_free(pc);
}

/* Two prompts that begin the same way, added together, the step's budget
 * taking one at a time: the second looks the cache up when its turn
 * comes, and starts from the first's copy. */
static void test_waiting_prompt_reuses(const model *m) {
    rl_err err = {0};
    prefix_cache *pc = prefix_cache_new(64u << 20, &err);
    engine *e = open_engine(m, pc, 2), *plain = open_engine(m, NULL, 1);
    int32_t a[96], b[96];
    int na = ids(90, a, 72);
    memcpy(b, a, sizeof a);
    int nb = na + ids(800, b + na, 8);
    sampler_params sp = sampler_default_params();
    sp.temperature = 0;
    engine_seq *sa = engine_seq_add(e, a, na, &sp, &err), *sb = engine_seq_add(e, b, nb, &sp, &err);
    CHECK(sa && sb);
    engine_set_prefill_budget(e, na); /* a's prompt, then b's */
    CHECK_EQ_INT(engine_step(e, &err), na);
    CHECK_EQ_INT(engine_seq_cached(sb), 0); /* not yet looked up */
    CHECK(engine_step(e, &err) > 0);
    CHECK_EQ_INT(engine_seq_cached(sb), na);
    int32_t t;
    CHECK(engine_seq_take(sb, &t));
    run_out ref;
    run_one(plain, b, nb, &ref);
    CHECK_EQ_INT(t, ref.tok[0]);
    CHECK(memcmp(engine_seq_logits(sb), ref.logits, m->shape.n_vocab * sizeof(float)) == 0);
    free(ref.logits);
    engine_seq_remove(e, sa);
    engine_seq_remove(e, sb);
    engine_close(e);
    engine_close(plain);
    prefix_cache_free(pc);
}

/* A kv buffer of `bytes` the cache may own, marked so a bad read shows. */
static void *kv_block(uint64_t bytes, int mark) {
    void *p = malloc(bytes);
    memset(p, mark, bytes);
    return p;
}

static void test_budget_and_pins(void) {
    rl_err err = {0};
    prefix_cache *pc = prefix_cache_new(3000, &err);
    int32_t a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, c[4] = {9, 10, 11, 12};
    prefix_cache_put(pc, a, 4, kv_block(1000, 1), 4, 1000);
    prefix_cache_put(pc, b, 4, kv_block(1000, 2), 4, 1000);
    int len = 0, n_ctx = 0;
    prefix_entry *pa = prefix_cache_match(pc, a, 4, 3, &len); /* a: pinned, most recent */
    CHECK(pa != NULL);
    CHECK_EQ_INT(len, 3);
    prefix_cache_put(pc, c, 4, kv_block(1500, 3), 4, 1500); /* b goes, not a */
    prefix_cache_stats st = prefix_cache_get_stats(pc);
    CHECK_EQ_INT(st.evictions, 1);
    CHECK(st.bytes <= st.budget);
    CHECK(prefix_cache_match(pc, b, 4, 3, &len) == NULL && len == 0);
    const unsigned char *kv = prefix_entry_kv(pa, &n_ctx);
    CHECK(kv[0] == 1 && kv[999] == 1 && n_ctx == 4);
    /* with a and c pinned, nothing can make room: the new entry is dropped */
    prefix_entry *pcc = prefix_cache_match(pc, c, 4, 4, &len);
    prefix_cache_put(pc, b, 4, kv_block(1000, 2), 4, 1000);
    CHECK_EQ_INT(prefix_cache_get_stats(pc).entries, 2);
    CHECK(kv[500] == 1);
    prefix_cache_release(pc, pa);
    prefix_cache_release(pc, pcc);
    /* too big for the budget at all: not kept */
    prefix_cache_put(pc, b, 4, kv_block(4000, 2), 4, 4000);
    CHECK_EQ_INT(prefix_cache_get_stats(pc).entries, 2);
    /* a sequence that a kept one extends is not kept twice */
    prefix_cache_put(pc, a, 2, kv_block(500, 4), 4, 500);
    CHECK_EQ_INT(prefix_cache_get_stats(pc).entries, 2);
    prefix_cache_free(pc);
    /* budget 0 keeps nothing */
    pc = prefix_cache_new(0, &err);
    prefix_cache_put(pc, a, 4, kv_block(10, 1), 4, 10);
    CHECK_EQ_INT(prefix_cache_get_stats(pc).entries, 0);
    prefix_cache_free(pc);
}

/* Evicted by the engine's own stores: the oldest conversation goes first. */
static void test_lru_through_engine(const model *m) {
    rl_err err = {0};
    /* room for two 39-token states (32 prompt + 7 answer tokens), not three */
    prefix_cache *pc = prefix_cache_new(2 * forward_kv_resident(m, 40, true) + 100, &err);
    engine *e = open_engine(m, pc, 1);
    int32_t p[3][64];
    run_out r;
    for (int i = 0; i < 3; i++) {
        ids(100 * (i + 1), p[i], 32);
        run_one(e, p[i], 32, &r);
        free(r.logits);
    }
    prefix_cache_stats st = prefix_cache_get_stats(pc);
    CHECK_EQ_INT(st.entries, 2);
    CHECK_EQ_INT(st.evictions, 1);
    CHECK(st.bytes <= st.budget);
    run_one(e, p[0], 32, &r); /* the first went */
    CHECK_EQ_INT(r.cached, 0);
    free(r.logits);
    run_one(e, p[2], 32, &r); /* the last stayed */
    CHECK_EQ_INT(r.cached, 31);
    free(r.logits);
    engine_close(e);
    prefix_cache_free(pc);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    void *data = NULL;
    model *m = tiny_model("q8_0", 1, &data);
    CHECK(m != NULL);
    if (!m) return test_report("test_prefix_cache");
    RUN_WITH(test_chat_turns, m);
    RUN_WITH(test_exact_prefix_only, m);
    RUN_WITH(test_shared_system_prompt, m);
    RUN_WITH(test_snapshot_while_running, m);
    RUN_WITH(test_waiting_prompt_reuses, m);
    RUN(test_budget_and_pins);
    RUN_WITH(test_lru_through_engine, m);
    model_free(m);
    free(data);
    return test_report("test_prefix_cache");
}
