/*
 * test_engine.c — the engine's contract (engine.h) on a tiny synthetic
 * model (tiny_shape.h, built in memory: the weights' content does not matter):
 * sequences come and go, errors are clear, prompt chunks respect the step
 * budget, decoders always run first, a full context stops a sequence, and
 * a sequence's tokens do not depend on who else is in the batch.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "test.h"
#include "tiny_shape.h"


/* A prompt of n token ids from `first` on (any ids of the vocabulary do:
 * the test is about the engine, not the text). */
static int ids_from(int32_t first, int32_t *ids, int n) {
    for (int i = 0; i < n; i++) ids[i] = first + i;
    return n;
}

/* Greedy tokens of one prompt run alone. */
static void solo(const model *m, const int32_t *prompt, int n, int n_gen, int32_t *out) {
    rl_err err = {0};
    engine_params ep = engine_default_params();
    ep.n_ctx = 256;
    ep.n_threads = 1;
    engine *e = engine_open(m, &ep, &err);
    sampler_params sp = sampler_default_params();
    sp.temperature = 0;
    engine_seq *s = engine_seq_add(e, prompt, n, &sp, &err);
    int got = 0;
    while (got < n_gen && engine_step(e, &err) > 0)
        if (engine_seq_take(s, &out[got])) got++;
    CHECK_EQ_INT(got, n_gen);
    engine_close(e);
}

static void test_errors(const model *m) {
    rl_err err = {0};
    engine_params ep = engine_default_params();
    ep.n_ctx = 16;
    ep.max_seqs = 2;
    ep.n_threads = 1;
    engine *e = engine_open(m, &ep, &err);
    int32_t ids[64];
    for (int i = 0; i < 64; i++) ids[i] = 100 + i;
    CHECK(engine_seq_add(e, ids, 0, NULL, &err) == NULL && err.code == RL_ERR_INPUT);
    CHECK(engine_seq_add(e, ids, 17, NULL, &err) == NULL && err.code == RL_ERR_INPUT);
    CHECKF(strstr(err.msg, "context") != NULL, "%s", err.msg);
    engine_seq *a = engine_seq_add(e, ids, 4, NULL, &err), *b = engine_seq_add(e, ids, 4, NULL, &err);
    CHECK(a && b);
    CHECK(engine_seq_add(e, ids, 4, NULL, &err) == NULL && err.code == RL_ERR_INTERNAL);
    CHECK_EQ_INT(engine_active(e), 2);
    engine_seq_remove(e, b);
    CHECK_EQ_INT(engine_active(e), 1);
    /* a bad token id is refused by the step, not a crash */
    int32_t bad = 100000;
    b = engine_seq_add(e, &bad, 1, NULL, &err);
    CHECK(b != NULL);
    CHECK(engine_step(e, &err) == -1 && err.code == RL_ERR_INPUT);
    engine_seq_remove(e, b);
    /* manual sequence: logits after its input runs out, feeding past the context fails */
    CHECK(engine_step(e, &err) == 4);
    CHECK(engine_seq_logits(a) != NULL);
    CHECK(engine_seq_get_state(a) == SEQ_IDLE);
    CHECK(engine_seq_feed(a, ids, 13, &err) == -1 && err.code == RL_ERR_INPUT);
    CHECK(engine_seq_feed(a, ids, 12, &err) == 0);
    CHECK(engine_seq_logits(a) == NULL);
    CHECK(engine_step(e, &err) == 12);
    CHECK_EQ_INT(engine_seq_pos(a), 16);
    engine_close(e);
}

static void test_full_context(const model *m) {
    rl_err err = {0};
    engine_params ep = engine_default_params();
    ep.n_ctx = 12;
    ep.n_threads = 1;
    engine *e = engine_open(m, &ep, &err);
    int32_t ids[8];
    int n = ids_from(300, ids, 5);
    sampler_params sp = sampler_default_params();
    sp.temperature = 0;
    engine_seq *s = engine_seq_add(e, ids, n, &sp, &err);
    int produced = 0;
    int32_t t;
    for (int i = 0; i < 40 && engine_seq_get_state(s) != SEQ_FULL; i++) {
        CHECK(engine_step(e, &err) >= 0);
        produced += engine_seq_take(s, &t);
    }
    CHECK(engine_seq_get_state(s) == SEQ_FULL);
    CHECK_EQ_INT(engine_seq_pos(s), 12);
    CHECK_EQ_INT(produced, 12 - n + 1); /* the last token needs no room */
    CHECK_EQ_INT(engine_step(e, &err), 0);
    engine_close(e);
}

/* A sequence with a context of its own (engine_seq_add_ctx): full at 10
 * positions in an engine of 256, with the same tokens a sequence of the
 * engine's context makes up to there; its memory is counted smaller. */
static void test_own_context(const model *m) {
    rl_err err = {0};
    int32_t ids[8], want[12];
    int n = ids_from(300, ids, 5);
    solo(m, ids, n, 12, want);
    engine_params ep = engine_default_params();
    ep.n_ctx = 256;
    ep.n_threads = 1;
    engine *e = engine_open(m, &ep, &err);
    sampler_params sp = sampler_default_params();
    sp.temperature = 0;
    engine_seq *s = engine_seq_add_ctx(e, ids, n, &sp, 10, &err);
    CHECKF(s != NULL, "%s", err.msg);
    int32_t got[12];
    int produced = 0;
    for (int i = 0; s && i < 40 && engine_seq_get_state(s) != SEQ_FULL; i++) {
        CHECK(engine_step(e, &err) >= 0);
        produced += engine_seq_take(s, &got[produced]);
    }
    CHECK(s && engine_seq_get_state(s) == SEQ_FULL);
    CHECK_EQ_INT(produced, 10 - n + 1);
    CHECK(memcmp(got, want, (size_t)produced * sizeof *got) == 0);
    CHECK(engine_seq_add_ctx(e, ids, n, &sp, 4, &err) == NULL && err.code == RL_ERR_INPUT);
    CHECK(engine_seq_bytes(e, 10) < engine_seq_bytes(e, 0) && engine_seq_bytes(e, 0) == engine_seq_bytes(e, 256));
    CHECK(engine_seq_bytes(e, 0) > 256 * (uint64_t)m->shape.n_layer * 2 * m->shape.n_head_kv * m->shape.head_dim * 2);
    engine_close(e);
}

static void test_budget_and_batching(const model *m) {
    rl_err err = {0};
    int32_t p1[64], p2[64], want1[24], want2[24];
    int n1 = ids_from(300, p1, 5);  /* fits one step (max_batch 8) */
    int n2 = ids_from(400, p2, 20); /* takes several */
    solo(m, p1, n1, 24, want1);
    solo(m, p2, n2, 24, want2);

    engine_params ep = engine_default_params();
    ep.n_ctx = 256;
    ep.max_seqs = 2;
    ep.max_batch = 8;
    ep.n_threads = 2;
    engine *e = engine_open(m, &ep, &err);
    sampler_params sp = sampler_default_params();
    sp.temperature = 0;
    engine_seq *a = engine_seq_add(e, p1, n1, &sp, &err);
    int32_t got1[24], got2[24];
    int g1 = 0, g2 = 0;
    CHECK_EQ_INT(engine_step(e, &err), n1); /* the whole short prompt */
    CHECK(engine_seq_take(a, &got1[g1++]));
    CHECK(!engine_seq_take(a, &got1[g1])); /* one token per step, taken once */

    /* a long prompt arrives: with no budget only the decoder runs */
    engine_seq *b = engine_seq_add(e, p2, n2, &sp, &err);
    engine_set_prefill_budget(e, 0);
    CHECK_EQ_INT(engine_step(e, &err), 1);
    CHECK(engine_seq_get_state(b) == SEQ_PREFILL);
    CHECK_EQ_INT(engine_seq_pos(b), 0);
    CHECK(engine_seq_take(a, &got1[g1++]));
    /* budget 3: decoder first, then 3 prompt tokens */
    engine_set_prefill_budget(e, 3);
    CHECK_EQ_INT(engine_step(e, &err), 4);
    CHECK_EQ_INT(engine_seq_pos(b), 3);
    CHECK(engine_seq_take(a, &got1[g1++]));
    /* default budget: the step holds max_batch tokens */
    engine_set_prefill_budget(e, -1);
    while (g1 < 24 || g2 < 24) {
        int n = engine_step(e, &err);
        CHECK(n > 0 && n <= 8);
        if (n <= 0) break;
        int32_t t;
        if (engine_seq_take(a, &t) && g1 < 24) got1[g1++] = t;
        if (engine_seq_take(b, &t) && g2 < 24) got2[g2++] = t;
    }
    CHECK(memcmp(got1, want1, sizeof want1) == 0);
    CHECK(memcmp(got2, want2, sizeof want2) == 0);
    engine_stats st = engine_get_stats(e);
    CHECK_EQ_INT(st.prompt_tokens, n1 + n2);
    CHECK(st.decode_tokens >= 2 * 23);
    engine_close(e);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    void *data = NULL;
    model *m = tiny_model("q8_0", 1, &data);
    CHECK(m != NULL);
    if (!m) return test_report("test_engine");
    RUN_WITH(test_errors, m);
    RUN_WITH(test_full_context, m);
    RUN_WITH(test_own_context, m);
    RUN_WITH(test_budget_and_batching, m);
    model_free(m);
    free(data);
    return test_report("test_engine");
}
