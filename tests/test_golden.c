/*
 * test_golden.c — rackllm against llama.cpp's own outputs.
 *
 * For every model in ../shared/models and every prompt in its golden file
 * (../shared/golden/generate/<model>.jsonl, written by llama.cpp), and the
 * same for the Qwen and SmolLM2 files of tests/data/golden (models and
 * outputs side by side, made as its README.md says), following
 * the comparison rule of ../shared/README.md:
 *  1. the prompt tokenizes to the same ids;
 *  2. teacher forcing: feeding the reference's prompt and generated tokens,
 *     at every step our logits for the reference's top-10 ids match its
 *     logits (NMSE over all compared logits ≤ 1e-5 for F32/F16 models with
 *     every |Δ| ≤ 0.05 + 0.005·|ref|; ≤ 5e-4 for quantized and BF16 ones);
 *  3. free-running greedy generation reproduces the reference's tokens up to
 *     the first near-tie (margin below 0.02 for F32/F16, 1.0 otherwise) or
 *     end-of-generation token.
 * All prompts of a model also run together as one batch, and must give the
 * same greedy tokens as when run alone. The tests/data models run at every
 * kernel level the CPU has (the others at the default level).
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"
#include "test.h"

#define MAX_STEPS 256
#define MAX_PROMPTS 16

typedef struct golden_step {
    int32_t token;
    float margin;
    int32_t top_id[10];
    float top_logit[10];
    int n_top;
} golden_step;

typedef struct golden_case {
    char *prompt;
    bool add_bos;
    int32_t prompt_tokens[512];
    int n_prompt;
    golden_step steps[MAX_STEPS];
    int n_steps;
} golden_case;

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) n = 0;
    buf[n] = 0;
    fclose(f);
    return buf;
}

static int load_cases(const char *path, golden_case *cases) {
    char *text = read_file(path);
    CHECKF(text != NULL, "cannot read %s", path);
    if (!text) return 0;
    int n = 0;
    for (char *line = strtok(text, "\n"); line && n < MAX_PROMPTS; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        CHECKF(o != NULL, "bad JSON line in %s", path);
        if (!o) continue;
        golden_case *c = &cases[n++];
        memset(c, 0, sizeof *c);
        c->prompt = strdup(cJSON_GetObjectItem(o, "prompt")->valuestring);
        c->add_bos = cJSON_IsTrue(cJSON_GetObjectItem(o, "add_bos"));
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(o, "prompt_tokens")) c->prompt_tokens[c->n_prompt++] = t->valueint;
        const cJSON *st;
        cJSON_ArrayForEach(st, cJSON_GetObjectItem(o, "steps")) {
            if (c->n_steps == MAX_STEPS) break;
            golden_step *g = &c->steps[c->n_steps++];
            g->token = cJSON_GetObjectItem(st, "token")->valueint;
            g->margin = (float)cJSON_GetObjectItem(st, "margin")->valuedouble;
            const cJSON *pair;
            cJSON_ArrayForEach(pair, cJSON_GetObjectItem(st, "top")) {
                if (g->n_top == 10) break;
                g->top_id[g->n_top] = cJSON_GetArrayItem(pair, 0)->valueint;
                g->top_logit[g->n_top] = (float)cJSON_GetArrayItem(pair, 1)->valuedouble;
                g->n_top++;
            }
        }
        cJSON_Delete(o);
    }
    free(text);
    return n;
}

typedef struct model_stats {
    double err2, ref2, max_abs;
    int bad_elems, compared, greedy_matched, greedy_steps;
} model_stats;

/* Teacher forcing over one case; accumulates the logit comparison. */
static void teacher_force(engine *e, const golden_case *c, bool exact_type, model_stats *ms) {
    rl_err err = {0};
    engine_seq *s = engine_seq_add(e, c->prompt_tokens, c->n_prompt, NULL, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    for (int i = 0; i < c->n_steps; i++) {
        CHECKF(engine_step(e, &err) > 0, "%s", err.msg);
        const float *logits = engine_seq_logits(s);
        CHECK(logits != NULL);
        if (!logits) break;
        const golden_step *g = &c->steps[i];
        for (int j = 0; j < g->n_top; j++) {
            double ours = logits[g->top_id[j]], ref = g->top_logit[j], d = fabs(ours - ref);
            ms->err2 += d * d;
            ms->ref2 += ref * ref;
            if (d > ms->max_abs) ms->max_abs = d;
            if (exact_type && d > 0.05 + 0.005 * fabs(ref)) ms->bad_elems++;
            ms->compared++;
        }
        if (i + 1 < c->n_steps && engine_seq_feed(s, &g->token, 1, &err) != 0) {
            CHECKF(0, "feed: %s", err.msg);
            break;
        }
    }
    engine_seq_remove(e, s);
}

/* How many reference steps greedy generation must reproduce. */
static int steps_to_match(const golden_case *c, const tokenizer *tok, float tie) {
    int n = 0;
    while (n < c->n_steps) {
        const golden_step *g = &c->steps[n];
        if (g->margin < tie) break;
        n++;
        if (tok_is_eog(tok, g->token) || tok_is_control(tok, g->token)) break;
    }
    return n;
}

/* Runs the cases greedily, all in one batch (n_cases > 1) or one alone, and
 * stores the generated ids in out[case][step]. */
static void greedy(engine *e, golden_case *cases, int n_cases, int n_gen, int32_t out[][MAX_STEPS]) {
    rl_err err = {0};
    sampler_params sp = sampler_default_params();
    sp.temperature = 0;
    engine_seq *seqs[MAX_PROMPTS];
    for (int i = 0; i < n_cases; i++) {
        seqs[i] = engine_seq_add(e, cases[i].prompt_tokens, cases[i].n_prompt, &sp, &err);
        CHECKF(seqs[i] != NULL, "%s", err.msg);
        if (!seqs[i]) return;
    }
    int got[MAX_PROMPTS] = {0};
    for (int step = 0; step < 2 * n_gen + 8; step++) {
        int done = 0;
        for (int i = 0; i < n_cases; i++) done += got[i] >= n_gen;
        if (done == n_cases) break;
        CHECKF(engine_step(e, &err) >= 0, "%s", err.msg);
        for (int i = 0; i < n_cases; i++) {
            int32_t t;
            if (engine_seq_take(seqs[i], &t) && got[i] < n_gen) out[i][got[i]++] = t;
        }
    }
    for (int i = 0; i < n_cases; i++) engine_seq_remove(e, seqs[i]);
}

/* The model and its reference outputs: ../shared's, or (here) a directory
 * holding both, as tests/data/golden does. */
static void paths(const char *stem, const char *here, char *model_path, char *golden_path, size_t size) {
    char rel[512];
    if (here) {
        snprintf(model_path, size, "%s/%s.gguf", here, stem);
        snprintf(golden_path, size, "%s/%s.jsonl", here, stem);
        return;
    }
    snprintf(rel, sizeof rel, "models/%s.gguf", stem);
    snprintf(model_path, size, "%s", shared_path(rel));
    snprintf(rel, sizeof rel, "golden/generate/%s.jsonl", stem);
    snprintf(golden_path, size, "%s", shared_path(rel));
}

static void run_model(const char *stem, const char *here, bool exact_type, int level) {
    char model_path[4096], golden_path[4096];
    rl_err err = {0};
    paths(stem, here, model_path, golden_path, sizeof model_path);
    model *m = model_load(model_path, NULL, &err);
    CHECKF(m != NULL, "%s", err.msg);
    if (!m) return;
    static golden_case cases[MAX_PROMPTS];
    int n_cases = load_cases(golden_path, cases);
    CHECKF(n_cases > 0, "no golden cases for %s", stem);

    engine_params ep = engine_default_params();
    ep.n_ctx = 512;
    ep.max_seqs = n_cases;
    ep.n_threads = 2;
    ep.kern_level = level;
    engine *e = engine_open(m, &ep, &err);
    CHECKF(e != NULL, "%s", err.msg);
    if (!e) {
        model_free(m);
        return;
    }
    model_stats ms = {0};
    float tie = exact_type ? 0.02f : 1.0f;
    static int32_t alone[MAX_PROMPTS][MAX_STEPS], batched[MAX_PROMPTS][MAX_STEPS];
    int n_gen_max = 0;
    for (int i = 0; i < n_cases; i++) {
        golden_case *c = &cases[i];
        /* 1. tokenizer */
        int32_t ids[512];
        /* golden.c lets llama.cpp add BOS as the vocabulary says (add_special) */
        bool bos = c->add_bos && tok_add_bos(m->tok);
        int n = tok_encode(m->tok, c->prompt, strlen(c->prompt), bos, false, ids, 512, &err);
        bool same = n == c->n_prompt && memcmp(ids, c->prompt_tokens, (size_t)n * sizeof *ids) == 0;
        CHECKF(same, "%s: prompt \"%s\" tokenizes differently (%d vs %d tokens)", stem, c->prompt, n, c->n_prompt);
        /* 2. teacher forcing */
        teacher_force(e, c, exact_type, &ms);
        /* 3. greedy, alone */
        int n_gen = steps_to_match(c, m->tok, tie);
        if (n_gen > n_gen_max) n_gen_max = n_gen;
        greedy(e, c, 1, n_gen, &alone[i]);
        int matched = 0;
        while (matched < n_gen && alone[i][matched] == c->steps[matched].token) matched++;
        CHECKF(matched == n_gen, "%s: prompt %d: greedy diverges at step %d of %d (got %d, expected %d)", stem, i,
               matched, n_gen, alone[i][matched], c->steps[matched].token);
        ms.greedy_matched += matched;
        ms.greedy_steps += n_gen;
    }
    /* all prompts in one batch: identical greedy tokens */
    greedy(e, cases, n_cases, n_gen_max, batched);
    for (int i = 0; i < n_cases; i++) {
        int n_gen = steps_to_match(&cases[i], m->tok, tie);
        CHECKF(memcmp(alone[i], batched[i], (size_t)n_gen * sizeof(int32_t)) == 0,
               "%s: prompt %d: batched greedy differs from single-sequence", stem, i);
    }
    double nmse = ms.ref2 > 0 ? ms.err2 / ms.ref2 : 1;
    double limit = exact_type ? 1e-5 : 5e-4;
    printf("%-22s %-8s NMSE %.3g (limit %.0e)  max|d| %.4f  over %d logits; greedy %d/%d steps\n", stem,
           level < 0 ? "default" : kern_level_name((kern_level)level), nmse, limit, ms.max_abs, ms.compared,
           ms.greedy_matched, ms.greedy_steps);
    CHECKF(nmse <= limit, "%s: NMSE %.3g > %.0e", stem, nmse, limit);
    CHECKF(ms.bad_elems == 0, "%s: %d logits outside 0.05 + 0.005|ref|", stem, ms.bad_elems);
    for (int i = 0; i < n_cases; i++) free(cases[i].prompt);
    engine_close(e);
    model_free(m);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    /* ../shared's models, then the other architectures' and SmolLM2's (tests/data/golden/README.md) */
    static const char *const HERE = "tests/data/golden";
    static const struct { const char *stem, *here; bool exact; } MODELS[] = {
        {"stories260K", NULL, true},        {"synth-s512-f16", NULL, true},     {"synth-s512-bf16", NULL, false},
        {"synth-s512-q8_0", NULL, false},   {"synth-s512-q4_0", NULL, false},   {"synth-s512-q4_1", NULL, false},
        {"synth-s512-q4_k_m", NULL, false}, {"synth-s512-q5_k_m", NULL, false}, {"synth-s512-q6_k", NULL, false},
        {"synth-l3-q8_0", NULL, false},     {"qwen2-f16", HERE, true},          {"qwen2-q8_0", HERE, false},
        {"qwen3-f16", HERE, true},          {"qwen3-q4_0", HERE, false},    {"smollm2-f16", HERE, true},
    };
    for (size_t i = 0; i < RL_ARRAY_LEN(MODELS); i++) {
        if (!test_selected(MODELS[i].stem)) continue;
        if (!MODELS[i].here) {
            run_model(MODELS[i].stem, NULL, MODELS[i].exact, -1);
            continue;
        }
        /* the architectures' own steps (biases, per-head norms, NeoX RoPE) at every level this CPU has */
        for (int l = 0; l < KERN_LEVEL_COUNT; l++)
            if (kern_level_supported((kern_level)l) && (l == KERN_REF || kern_impl_for((kern_level)l)))
                run_model(MODELS[i].stem, MODELS[i].here, MODELS[i].exact, l);
    }
    return test_report("test_golden");
}
