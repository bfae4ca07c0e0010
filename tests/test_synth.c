/*
 * test_synth.c — synthetic models (synth.h).
 *
 *  - the tensor list of a catalog shape: names, shapes and the parameter
 *    count, against figures computed by hand from the model's config
 *    (Llama 3.2 1B: 1,235,814,432 parameters with rope_freqs), also with
 *    --layers; the per-tensor types of the mixes (llama.cpp's rules);
 *  - same seed, same bytes (whatever the thread count); another seed,
 *    other bytes; the file on disk is the bytes built in memory;
 *  - every advertised type builds and loads with model_from_gguf;
 *  - the synthetic tokenizer round-trips text and knows its specials;
 *  - a small synthetic model runs engine steps, alone and batched, with
 *    the same greedy tokens either way.
 * Most cases use a tiny shape (the catalog's vocabulary alone is 262M
 * parameters); one builds a one-layer Llama 3.2 1B for real.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/engine.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "model/shape.h"
#include "tools/synth.h"
#include "test.h"
#include "tiny_shape.h"
#include "text/tokenizer.h"
#include "base/types.h"

/* Llama 3.2 1B by hand, from its config.json: d = 2048, 32 heads of 64,
 * 8 KV heads, n_ff = 8192, vocabulary 128256, tied embeddings. */
#define L1B_EMBD 262668288ull   /* 128256 x 2048 */
#define L1B_LAYER 60821504ull   /* q, o: 2048x2048; k, v: 2048x512; gate, up, down: 2048x8192; 2 norms */
#define L1B_ROPE 32ull          /* head_dim / 2 frequency factors */
#define L1B_NORM 2048ull        /* output_norm */

static const synth_tensor *find(const synth_tensor *t, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(t[i].name, name) == 0) return &t[i];
    return NULL;
}

static uint64_t param_sum(const synth_tensor *t, int n) {
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) sum += t[i].ne[0] * t[i].ne[1];
    return sum;
}

static void check_dims(const synth_tensor *t, int n, const char *name, uint64_t cols, uint64_t rows) {
    const synth_tensor *x = find(t, n, name);
    CHECKF(x != NULL, "tensor %s missing", name);
    if (!x) return;
    CHECKF(x->ne[0] == cols && x->ne[1] == rows, "%s is [%llu, %llu], expected [%llu, %llu]", name,
           (unsigned long long)x->ne[0], (unsigned long long)x->ne[1], (unsigned long long)cols,
           (unsigned long long)rows);
    CHECK_EQ_INT(x->n_dims, rows > 1 ? 2 : 1);
}

static uint32_t type_of(const synth_tensor *t, int n, const char *name) {
    const synth_tensor *x = find(t, n, name);
    return x ? x->type : 9999;
}

static void test_catalog_tensors(void) {
    rl_err err = {0};
    synth_params p = {.type = "q4_0", .seed = 1};
    CHECK(shape_catalog_find("llama3.2-1b", &p.shape, &err) == 0);
    synth_tensor *t = NULL;
    int n = 0;
    CHECK(synth_tensors(&p, &t, &n, &err) == 0);
    CHECK_EQ_INT(n, 1 + 1 + 16 * 9 + 1); /* embeddings, rope_freqs, 16 blocks, output_norm (tied) */
    CHECK_EQ_INT(param_sum(t, n), 1235814432ull);
    CHECK_EQ_INT(param_sum(t, n), L1B_EMBD + L1B_ROPE + 16 * L1B_LAYER + L1B_NORM);
    CHECK_EQ_INT(param_sum(t, n), shape_param_count(&p.shape));
    CHECK(find(t, n, "output.weight") == NULL);
    check_dims(t, n, "token_embd.weight", 2048, 128256);
    check_dims(t, n, "rope_freqs.weight", 32, 1);
    check_dims(t, n, "blk.0.attn_norm.weight", 2048, 1);
    check_dims(t, n, "blk.0.attn_q.weight", 2048, 2048);
    check_dims(t, n, "blk.7.attn_k.weight", 2048, 512);
    check_dims(t, n, "blk.7.attn_v.weight", 2048, 512);
    check_dims(t, n, "blk.15.attn_output.weight", 2048, 2048);
    check_dims(t, n, "blk.15.ffn_norm.weight", 2048, 1);
    check_dims(t, n, "blk.15.ffn_gate.weight", 2048, 8192);
    check_dims(t, n, "blk.15.ffn_up.weight", 2048, 8192);
    check_dims(t, n, "blk.15.ffn_down.weight", 8192, 2048);
    check_dims(t, n, "output_norm.weight", 2048, 1);
    CHECK(find(t, n, "blk.16.attn_q.weight") == NULL);
    /* Q4_0: the tied embeddings are the output matrix, so Q6_K (llama.cpp) */
    CHECK_EQ_INT(type_of(t, n, "token_embd.weight"), RL_TYPE_Q6_K);
    CHECK_EQ_INT(type_of(t, n, "blk.3.ffn_down.weight"), RL_TYPE_Q4_0);
    CHECK_EQ_INT(type_of(t, n, "blk.3.attn_norm.weight"), RL_TYPE_F32);
    CHECK_EQ_INT(type_of(t, n, "rope_freqs.weight"), RL_TYPE_F32);
    free(t);

    /* --layers 2: the same minus 14 blocks */
    p.layers = 2;
    CHECK(synth_tensors(&p, &t, &n, &err) == 0);
    CHECK_EQ_INT(n, 1 + 1 + 2 * 9 + 1);
    CHECK_EQ_INT(param_sum(t, n), 384313376ull);
    CHECK_EQ_INT(param_sum(t, n), L1B_EMBD + L1B_ROPE + 2 * L1B_LAYER + L1B_NORM);
    CHECK(find(t, n, "blk.1.ffn_down.weight") != NULL && find(t, n, "blk.2.attn_q.weight") == NULL);
    free(t);

    /* Q8_0: the output matrix stays Q8_0 */
    p.type = "q8_0";
    CHECK(synth_tensors(&p, &t, &n, &err) == 0);
    CHECK_EQ_INT(type_of(t, n, "token_embd.weight"), RL_TYPE_Q8_0);
    CHECK_EQ_INT(type_of(t, n, "blk.0.attn_q.weight"), RL_TYPE_Q8_0);
    free(t);

    /* Q4_K_M over 16 layers: attn_v and ffn_down get Q6_K in the first and
     * last eighth (0, 1, 14, 15) and every third layer from 2 + 2 (4, 7,
     * 10, 13) — llama.cpp's use_more_bits; Q4_K elsewhere. */
    p.type = "Q4_K_M";
    p.layers = 0;
    CHECK(synth_tensors(&p, &t, &n, &err) == 0);
    const int more[16] = {1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1};
    for (int i = 0; i < 16; i++) {
        char name[64];
        uint32_t want = more[i] ? RL_TYPE_Q6_K : RL_TYPE_Q4_K;
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", i);
        CHECKF(type_of(t, n, name) == want, "%s", name);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", i);
        CHECKF(type_of(t, n, name) == want, "%s", name);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", i);
        CHECKF(type_of(t, n, name) == RL_TYPE_Q4_K, "%s", name);
    }
    CHECK_EQ_INT(type_of(t, n, "token_embd.weight"), RL_TYPE_Q6_K);
    free(t);

    /* an untied shape (Llama 2 7B): its own output matrix, 4096 x 32000 */
    p.type = "q4_0";
    CHECK(shape_catalog_find("llama2-7b", &p.shape, &err) == 0);
    CHECK(synth_tensors(&p, &t, &n, &err) == 0);
    check_dims(t, n, "output.weight", 4096, 32000);
    check_dims(t, n, "token_embd.weight", 4096, 32000);
    CHECK(find(t, n, "rope_freqs.weight") == NULL);
    CHECK_EQ_INT(type_of(t, n, "output.weight"), RL_TYPE_Q6_K);
    CHECK_EQ_INT(type_of(t, n, "token_embd.weight"), RL_TYPE_Q4_0);
    CHECK_EQ_INT(param_sum(t, n), shape_param_count(&p.shape));
    free(t);

    /* bad input */
    p.type = "q3_k_xl";
    rl_err e2 = {0};
    CHECK(synth_tensors(&p, &t, &n, &e2) == -1 && e2.code == RL_ERR_INPUT);
}

static int build(const rl_shape *s, const char *type, uint64_t seed, int threads, void **data, uint64_t *size) {
    synth_params p = {.shape = *s, .type = type, .seed = seed, .n_threads = threads};
    rl_err err = {0};
    int rc = synth_build(&p, data, size, &err);
    if (rc) fprintf(stderr, "synth_build %s: %s\n", type, err.msg);
    return rc;
}

static model *load(void *data, uint64_t size, rl_err *err) {
    gguf_file *f = gguf_open_memory(data, size, "synth", err);
    if (!f) return NULL;
    model *m = model_from_gguf(f, NULL, err);
    if (!m) gguf_close(f);
    return m;
}

static void test_seeds(void) {
    rl_shape s = tiny_shape();
    void *a = NULL, *b = NULL, *c = NULL;
    uint64_t na = 0, nb = 0, nc = 0;
    CHECK(build(&s, "q4_k_m", 7, 1, &a, &na) == 0);
    CHECK(build(&s, "q4_k_m", 7, 3, &b, &nb) == 0);
    CHECK(build(&s, "q4_k_m", 8, 2, &c, &nc) == 0);
    CHECK(na > 0 && na == nb && na == nc);
    CHECKF(a && b && na == nb && memcmp(a, b, na) == 0, "same seed, different bytes");
    CHECKF(a && c && na == nc && memcmp(a, c, na) != 0, "different seeds, same bytes");

    /* the file on disk is the same bytes */
    char path[] = "/tmp/rackllm-test-synth-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    synth_params p = {.shape = s, .type = "q4_k_m", .seed = 7};
    rl_err err = {0};
    CHECK(synth_write(&p, path, &err) == 0);
    FILE *f = fopen(path, "rb");
    void *d = malloc(na + 1);
    size_t got = f && d ? fread(d, 1, na + 1, f) : 0;
    CHECK_EQ_INT(got, na);
    CHECK(d && a && got == na && memcmp(d, a, na) == 0);
    if (f) fclose(f);
    unlink(path);
    free(d);

    /* the tensor data is what synth_file_size promised, laid out as planned */
    gguf_file *g = a ? gguf_open_memory(a, na, "a", &err) : NULL;
    CHECK(g != NULL);
    synth_tensor *t = NULL;
    int n = 0;
    CHECK(synth_tensors(&p, &t, &n, &err) == 0);
    if (g && t) {
        CHECK_EQ_INT(g->n_tensors, n);
        uint64_t bytes = 0;
        for (int i = 0; i < n && (uint64_t)i < g->n_tensors; i++) {
            const gguf_tensor *x = &g->tensors[i];
            CHECKF(gguf_str_eq(x->name, t[i].name) && x->type == t[i].type && x->ne[0] == t[i].ne[0] &&
                       (t[i].n_dims == 1 || x->ne[1] == t[i].ne[1]),
                   "tensor %d (%s) differs from the plan", i, t[i].name);
            bytes += x->size;
        }
        CHECK_EQ_INT(bytes, synth_file_size(&p, &err));
        uint64_t seed = 0;
        CHECK(gguf_get_u64(g, "rackllm.synth.seed", &seed) && seed == 7);
        uint64_t ft = 0, qv = 0;
        CHECK(gguf_get_u64(g, "general.file_type", &ft) && ft == 15); /* LLAMA_FTYPE_MOSTLY_Q4_K_M */
        CHECK(gguf_get_u64(g, "general.quantization_version", &qv) && qv == 2);
    }
    gguf_close(g);
    free(t);
    free(a);
    free(b);
    free(c);
}

static void test_types_load(void) {
    static const char *const TYPES[] = {"f16", "q8_0", "q4_0", "q4_k", "q6_k", "q4_k_m", "q5_k_m"};
    static const uint32_t MAIN[] = {RL_TYPE_F16, RL_TYPE_Q8_0, RL_TYPE_Q4_0, RL_TYPE_Q4_K,
                                    RL_TYPE_Q6_K, RL_TYPE_Q4_K, RL_TYPE_Q5_K};
    rl_shape s = tiny_shape();
    for (size_t i = 0; i < RL_ARRAY_LEN(TYPES); i++) {
        void *d = NULL;
        uint64_t n = 0;
        if (build(&s, TYPES[i], 1, 2, &d, &n)) {
            CHECKF(0, "%s does not build", TYPES[i]);
            continue;
        }
        rl_err err = {0};
        model *m = load(d, n, &err);
        CHECKF(m != NULL, "%s: %s", TYPES[i], err.msg);
        if (m) {
            CHECK_EQ_INT(m->shape.n_layer, 2);
            CHECK_EQ_INT(m->shape.n_vocab, 1024);
            CHECK_EQ_INT(m->n_params, shape_param_count(&s));
            CHECKF(m->layers[1].w_gate.type == MAIN[i], "%s: ffn_gate is %s", TYPES[i],
                   rl_type_name(m->layers[1].w_gate.type));
            CHECK(m->rope_freqs != NULL);
            model_free(m);
        }
        free(d);
    }
}

static void test_tokenizer(const model *m) {
    const tokenizer *t = m->tok;
    CHECK_EQ_INT(tok_n_vocab(t), 1024);
    const char *texts[] = {"Hello, world! the quick brown fox", "  spaces\tand\nnewlines ",
                           "\xc3\xbc" "n\xc3\xaf" "c\xc3\xb6" "d\xc3\xa9 \xe2\x80\x94 \xf0\x9f\xa6\x99 12345"};
    for (size_t i = 0; i < RL_ARRAY_LEN(texts); i++) {
        int32_t ids[256];
        rl_err err = {0};
        size_t len = strlen(texts[i]);
        int n = tok_encode(t, texts[i], len, false, false, ids, 256, &err);
        CHECKF(n > 0 && n <= 256, "%s", err.msg);
        char back[512];
        int nb = n > 0 ? tok_decode(t, ids, n, false, back, sizeof back) : 0;
        CHECKF(nb == (int)len && memcmp(back, texts[i], len) == 0, "round trip of \"%s\"", texts[i]);
    }
    /* the letter-pair merges apply: " the" is fewer tokens than bytes */
    int32_t ids[16];
    rl_err err = {0};
    CHECK(tok_encode(t, " the", 4, false, false, ids, 16, &err) < 4);
    /* the Llama 3 specials are there, as control tokens */
    int32_t eot = tok_find(t, "<|eot_id|>", 10);
    CHECK(eot >= 0 && tok_is_control(t, eot) && tok_is_eog(t, eot));
    CHECK(tok_encode(t, "<|eot_id|>", 10, false, true, ids, 16, &err) == 1 && ids[0] == eot);
    CHECK(tok_bos(t) >= 0 && tok_is_control(t, tok_bos(t)));
    CHECK(m->chat_template != NULL); /* a llama3 shape gets the Llama 3 template */
}

/* Greedy tokens of `n_prompts` prompts decoded together for `steps` steps. */
static int generate(const model *m, int n_prompts, int steps, int32_t out[][8]) {
    engine_params ep = engine_default_params();
    ep.n_threads = 2;
    ep.max_seqs = n_prompts;
    ep.n_ctx = 64;
    rl_err err = {0};
    engine *e = engine_open(m, &ep, &err);
    if (!e) return -1;
    sampler_params sp = sampler_default_params();
    sp.temperature = 0;
    engine_seq *seqs[4];
    for (int i = 0; i < n_prompts; i++) {
        int32_t prompt[6] = {tok_bos(m->tok), 300 + i, 400 + 7 * i, 500, 600 + i, 700};
        seqs[i] = engine_seq_add(e, prompt, 6, &sp, &err);
        if (!seqs[i]) {
            engine_close(e);
            return -1;
        }
    }
    for (int k = 0; k < steps; k++) {
        if (engine_step(e, &err) <= 0) {
            engine_close(e);
            return -1;
        }
        for (int i = 0; i < n_prompts; i++)
            if (!engine_seq_take(seqs[i], &out[i][k])) out[i][k] = -1;
    }
    engine_close(e);
    return 0;
}

static void test_engine(const model *m) {
    int32_t together[3][8], alone[8];
    CHECK(generate(m, 3, 8, together) == 0);
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 8; k++)
            CHECKF(together[i][k] >= 0 && together[i][k] < 1024, "seq %d step %d: token %d", i, k, together[i][k]);
    int32_t one[1][8];
    CHECK(generate(m, 1, 8, one) == 0);
    memcpy(alone, one[0], sizeof alone);
    CHECK(memcmp(alone, together[0], sizeof alone) == 0);
}

/* One real-shape file: a one-layer Llama 3.2 1B, built and loaded. */
static void test_real_shape(void) {
    rl_err err = {0};
    synth_params p = {.type = "q8_0", .seed = 3, .layers = 1};
    CHECK(shape_catalog_find("llama3.2-1b", &p.shape, &err) == 0);
    void *d = NULL;
    uint64_t n = 0;
    CHECK(synth_build(&p, &d, &n, &err) == 0);
    model *m = d ? load(d, n, &err) : NULL;
    CHECKF(m != NULL, "%s", err.msg);
    if (m) {
        CHECK_EQ_INT(m->n_params, L1B_EMBD + L1B_ROPE + L1B_LAYER + L1B_NORM);
        CHECK_EQ_INT(m->shape.n_layer, 1);
        CHECK_EQ_INT(m->shape.n_vocab, 128256);
        CHECK_EQ_INT(m->shape.n_embd, 2048);
        CHECK_EQ_INT(m->shape.n_head_kv, 8);
        CHECK_EQ_INT(m->shape.n_ff, 8192);
        CHECK(m->shape.tied_embeddings);
        CHECK(m->shape.rope_scaling == RL_ROPE_SCALING_LLAMA3);
        CHECK_EQ_INT(m->tok_embd.type, RL_TYPE_Q8_0);
        CHECK_EQ_INT(tok_n_vocab(m->tok), 128256);
        model_free(m);
    }
    free(d);
}

/* Every catalog entry has an architecture, and its synthetic tensors are
 * the parameters shape_param_count says. Qwen2.5 0.5B by hand, from its
 * config.json (d 896, 14 heads of 64, 2 KV heads, ffn 4864, Q/K/V biases,
 * tied): 494,032,768, the count its model card gives. */
static void test_catalog_archs(void) {
    rl_err err = {0};
    for (int i = 0; i < shape_catalog_count(); i++) {
        synth_params p = {.type = "f16", .seed = 1};
        CHECKF(shape_catalog_get(i, &p.shape, &err) == 0, "%s", err.msg);
        CHECKF(shape_arch_find(p.shape.arch, strlen(p.shape.arch)) != NULL, "%s: arch '%s'", p.shape.id, p.shape.arch);
        synth_tensor *t = NULL;
        int n = 0;
        CHECKF(synth_tensors(&p, &t, &n, &err) == 0, "%s: %s", p.shape.id, err.msg);
        CHECKF(param_sum(t, n) == shape_param_count(&p.shape), "%s: %llu tensors' parameters vs %llu", p.shape.id,
               (unsigned long long)param_sum(t, n), (unsigned long long)shape_param_count(&p.shape));
        free(t);
    }
    synth_params p = {.type = "q8_0", .seed = 1};
    CHECK(shape_catalog_find("qwen2.5-0.5b", &p.shape, &err) == 0);
    CHECK_EQ_INT(shape_param_count(&p.shape), 494032768ull);
    CHECK(p.shape.qkv_bias && !p.shape.qk_norm && p.shape.rope_type == RL_ROPE_NEOX);
    synth_tensor *t = NULL;
    int n = 0;
    CHECK(synth_tensors(&p, &t, &n, &err) == 0);
    check_dims(t, n, "blk.23.attn_q.bias", 896, 1);
    check_dims(t, n, "blk.0.attn_k.bias", 128, 1);
    CHECK_EQ_INT(type_of(t, n, "blk.0.attn_v.bias"), RL_TYPE_F32);
    CHECK(find(t, n, "blk.0.attn_q_norm.weight") == NULL && find(t, n, "output.weight") == NULL);
    free(t);
    CHECK(shape_catalog_find("qwen3-8b", &p.shape, &err) == 0);
    CHECK(!p.shape.qkv_bias && p.shape.qk_norm && p.shape.head_dim == 128);
    CHECK(synth_tensors(&p, &t, &n, &err) == 0);
    check_dims(t, n, "blk.35.attn_q_norm.weight", 128, 1);
    check_dims(t, n, "blk.35.attn_q.weight", 4096, 32 * 128);
    CHECK(find(t, n, "blk.0.attn_q.bias") == NULL && find(t, n, "output.weight") != NULL);
    free(t);
}

/* A small Qwen file of each architecture, written by synth and loaded:
 * the architecture's own tensors are found, and it generates. */
static void test_qwen_load(void) {
    static const char *const ARCHS[] = {"qwen2", "qwen3"};
    for (size_t i = 0; i < RL_ARRAY_LEN(ARCHS); i++) {
        rl_shape s = tiny_shape();
        rl_err err = {0};
        CHECK(shape_set_arch(&s, ARCHS[i], &err) == 0);
        s.rope_scaling = RL_ROPE_SCALING_NONE;
        void *d = NULL;
        uint64_t n = 0;
        model *m = build(&s, "q8_0", 5, 2, &d, &n) == 0 ? load(d, n, &err) : NULL;
        CHECKF(m != NULL, "%s: %s", ARCHS[i], err.msg);
        if (m) {
            CHECK_STR(m->shape.arch, ARCHS[i]);
            CHECK(m->shape.rope_type == RL_ROPE_NEOX);
            CHECK((m->layers[1].bq != NULL) == (i == 0) && (m->layers[1].q_norm != NULL) == (i == 1));
            CHECK_EQ_INT(m->n_params, shape_param_count(&m->shape));
            CHECK(tok_bos(m->tok) >= 0 && !tok_add_bos(m->tok));
            test_engine(m);
            model_free(m);
        }
        free(d);
    }
}

/* A file of an architecture rackllm does not run: the error names it. */
static void test_unknown_arch(void) {
    gguf_writer *w = gguf_writer_new(3);
    gguf_writer_add_str(w, "general.architecture", "gemma3");
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    rl_err err = {0};
    CHECK(gguf_writer_write_stream(w, mem, "mem", NULL, NULL, NULL, &err) == 0);
    fclose(mem);
    gguf_writer_free(w);
    gguf_file *f = gguf_open_memory(buf, len, "gemma.gguf", &err);
    CHECKF(f != NULL, "%s", err.msg);
    rl_shape s;
    CHECK(f && shape_from_gguf(f, &s, &err) == -1);
    CHECKF(strstr(err.msg, "architecture 'gemma3' is not supported") && strstr(err.msg, "qwen3"), "%s", err.msg);
    gguf_close(f);
    free(buf);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(test_catalog_tensors);
    RUN(test_seeds);
    RUN(test_types_load);
    rl_shape s = tiny_shape();
    void *d = NULL;
    uint64_t n = 0;
    rl_err err = {0};
    model *m = build(&s, "q8_0", 5, 2, &d, &n) == 0 ? load(d, n, &err) : NULL;
    CHECKF(m != NULL, "%s", err.msg);
    if (m) {
        RUN_WITH(test_tokenizer, m);
        RUN_WITH(test_engine, m);
        model_free(m);
    }
    free(d);
    RUN(test_real_shape);
    RUN(test_catalog_archs);
    RUN(test_qwen_load);
    RUN(test_unknown_arch);
    return test_report("test_synth");
}
