/*
 * test_batch.c — batched forward passes give exactly the single-sequence
 * results.
 *
 * For several models (the real stories260K: F32, untied output; tiny
 * synthetic ones built in memory, whose weights' content does not matter
 * here: F16, Q8_0, Q4_0, Q4_K_M, tied output, Llama 3 RoPE scaling; the
 * Qwen2 and Qwen3 files of tests/data/golden: biases, per-head norms) and
 * every kernel level the machine has (the reference level on two of
 * them): four sequences with prompts of different lengths are first run
 * one at a time (prefill, then greedy decoding, one token per step),
 * recording the logits of every step. Then they run together in one
 * engine, started at different steps (so their positions differ), with a
 * step budget small enough that long prompts are cut into chunks that
 * share passes with the others' decode tokens. Every sequence's logits at
 * every step must be bitwise those of its solo run, and so must its greedy
 * tokens.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"
#include "test.h"
#include "tiny_shape.h"

enum { N_SEQ = 4, GEN = 10, MAX_PROMPT = 24 };

static const int PROMPT_LEN[N_SEQ] = {6, 19, 3, 11};
static const int START_STEP[N_SEQ] = {0, 1, 3, 4};

typedef struct run {
    int32_t prompt[N_SEQ][MAX_PROMPT];
    float *logits[N_SEQ][GEN + 1]; /* solo run: after the prompt, then after each generated token */
    int32_t tokens[N_SEQ][GEN + 1];
} run;

static int32_t argmax(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static engine *open_engine(const model *m, kern_level level, int max_seqs, int max_batch) {
    rl_err err = {0};
    engine_params ep = engine_default_params();
    ep.n_ctx = 64;
    ep.max_seqs = max_seqs;
    ep.max_batch = max_batch;
    ep.n_threads = 2;
    ep.kern_level = (int)level;
    engine *e = engine_open(m, &ep, &err);
    CHECKF(e != NULL, "%s", err.msg);
    return e;
}

/* Each sequence alone: prompt, then GEN greedy tokens one step at a time. */
static void solo(const model *m, kern_level level, run *R) {
    int nv = (int)m->shape.n_vocab;
    engine *e = open_engine(m, level, 1, 512);
    if (!e) return;
    rl_err err = {0};
    for (int s = 0; s < N_SEQ; s++) {
        engine_seq *q = engine_seq_add(e, R->prompt[s], PROMPT_LEN[s], NULL, &err);
        CHECKF(q != NULL, "%s", err.msg);
        if (!q) break;
        for (int k = 0; k <= GEN; k++) {
            CHECKF(engine_step(e, &err) > 0, "%s", err.msg);
            const float *lg = engine_seq_logits(q);
            CHECK(lg != NULL);
            if (!lg) break;
            R->logits[s][k] = malloc((size_t)nv * sizeof(float));
            memcpy(R->logits[s][k], lg, (size_t)nv * sizeof(float));
            R->tokens[s][k] = argmax(lg, nv);
            if (k < GEN) engine_seq_feed(q, &R->tokens[s][k], 1, &err);
        }
        engine_seq_remove(e, q);
    }
    engine_close(e);
}

/* All together, staggered, prompts chunked by a small step budget. */
static void together(const model *m, kern_level level, const char *name, const run *R) {
    int nv = (int)m->shape.n_vocab;
    engine *e = open_engine(m, level, N_SEQ, 8);
    if (!e) return;
    rl_err err = {0};
    engine_seq *q[N_SEQ] = {0};
    int got[N_SEQ] = {0}, mismatched[N_SEQ] = {0}, wrong_token[N_SEQ] = {0};
    for (int step = 0; step < 200; step++) {
        int done = 0;
        for (int s = 0; s < N_SEQ; s++) {
            if (!q[s] && step >= START_STEP[s]) {
                q[s] = engine_seq_add(e, R->prompt[s], PROMPT_LEN[s], NULL, &err);
                CHECKF(q[s] != NULL, "%s", err.msg);
            }
            done += got[s] > GEN;
        }
        if (done == N_SEQ) break;
        CHECKF(engine_step(e, &err) >= 0, "%s", err.msg);
        for (int s = 0; s < N_SEQ; s++) {
            if (!q[s] || got[s] > GEN || engine_seq_get_state(q[s]) != SEQ_IDLE) continue;
            const float *lg = engine_seq_logits(q[s]);
            int k = got[s]++;
            if (!lg || !R->logits[s][k]) continue;
            if (memcmp(lg, R->logits[s][k], (size_t)nv * sizeof(float)) != 0) mismatched[s]++;
            int32_t t = argmax(lg, nv);
            if (t != R->tokens[s][k]) wrong_token[s]++;
            if (k < GEN) engine_seq_feed(q[s], &t, 1, &err);
        }
    }
    for (int s = 0; s < N_SEQ; s++) {
        CHECKF(got[s] == GEN + 1, "%s/%s: sequence %d produced %d of %d steps", name, kern_level_name(level), s,
               got[s], GEN + 1);
        CHECKF(mismatched[s] == 0, "%s/%s: sequence %d: logits differ from its solo run at %d of %d steps", name,
               kern_level_name(level), s, mismatched[s], GEN + 1);
        CHECKF(wrong_token[s] == 0, "%s/%s: sequence %d: %d greedy tokens differ from its solo run", name,
               kern_level_name(level), s, wrong_token[s]);
        engine_seq_remove(e, q[s]);
    }
    engine_close(e);
}

/* The reference level is the oracle (one dot product per output, nothing
 * shared between rows); two small models are enough for it. */
static bool ref_too(const char *name) {
    return strcmp(name, "stories260K") == 0 || strcmp(name, "q4_0") == 0 || strncmp(name, "qwen", 4) == 0;
}

/* Case `name`: stories260K from ../shared, a Qwen file of tests/data/golden,
 * else a tiny synthetic model of that type. */
static void test_model(const char *name) {
    rl_err err = {0};
    void *data = NULL;
    char path[256];
    snprintf(path, sizeof path, "tests/data/golden/%s.gguf", name);
    model *m = strcmp(name, "stories260K") == 0 ? model_load(shared_path("models/stories260K.gguf"), NULL, &err)
               : strncmp(name, "qwen", 4) == 0  ? model_load(path, NULL, &err)
                                                : tiny_model(name, 7, &data);
    CHECKF(m != NULL, "%s: %s", name, err.msg);
    if (!m) return;
    for (int l = 0; l < KERN_LEVEL_COUNT; l++) {
        kern_level level = (kern_level)l;
        if (!kern_level_supported(level) || (level != KERN_REF && !kern_impl_for(level))) continue;
        if (level == KERN_REF && !ref_too(name)) continue;
        static run R;
        memset(&R, 0, sizeof R);
        uint64_t seed = 12345;
        for (int s = 0; s < N_SEQ; s++)
            for (int i = 0; i < PROMPT_LEN[s]; i++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                R.prompt[s][i] = (int32_t)((seed >> 33) % m->shape.n_vocab);
            }
        solo(m, level, &R);
        together(m, level, name, &R);
        for (int s = 0; s < N_SEQ; s++)
            for (int k = 0; k <= GEN; k++) free(R.logits[s][k]);
    }
    model_free(m);
    free(data);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    static const char *MODELS[] = {"stories260K", "f16", "q8_0", "q4_0", "q4_k_m", "qwen2-q8_0", "qwen3-q4_0"};
    for (size_t i = 0; i < RL_ARRAY_LEN(MODELS); i++)
        if (test_selected(MODELS[i])) test_model(MODELS[i]);
    return test_report("test_batch");
}
