/*
 * test_quantize.c — `rackllm quantize` and its module (quantize.c):
 *  - synth-s512-f16.gguf quantized to each type the shipped files have
 *    (made by llama-quantize) must give those very files: every tensor's
 *    type and bytes, the metadata (general.file_type included), the order;
 *    for the K-quant mixes also each tensor's reconstruction error against
 *    the F16 original, which must be no worse than llama.cpp's;
 *  - the per-tensor type rules against llama.cpp's known choices for real
 *    model shapes (7B: which layers get Q6_K; 70B attn_v; tied output;
 *    shape fallbacks);
 *  - threads change nothing; bad input and bad command lines fail cleanly
 *    with exit status 2;
 *  - a file's type: its general.file_type's mix, else the type of most of
 *    its bytes (synthetic files in memory, and two built by hand).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gguf/gguf.h"
#include "kernels/quant.h"
#include "tools/quantize.h"
#include "test.h"
#include "tiny_shape.h"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static bool file_equal(const char *a, const char *b, long *first_diff) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    bool eq = fa && fb;
    long pos = 0;
    *first_diff = -1;
    while (eq) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) {
            eq = false;
            *first_diff = pos;
        }
        if (ca == EOF || cb == EOF) break;
        pos++;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return eq;
}

static double nmse_tensor(const gguf_tensor *t, const float *ref) {
    int64_t n = (int64_t)gguf_tensor_nelements(t);
    float *y = malloc(sizeof(float) * (size_t)n);
    CHECK(quant_dequantize_row(t->type, t->data, y, n) == 0);
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)y[i] - ref[i]) * ((double)y[i] - ref[i]);
        den += (double)ref[i] * ref[i];
    }
    free(y);
    return num / den;
}

/* ---- the shipped files ---- */

static void compare_with_shipped(const char *type, const char *shipped_rel) {
    rl_err err = {0};
    const char *in = shared_path("models/synth-s512-f16.gguf");
    char in_copy[4096];
    snprintf(in_copy, sizeof in_copy, "%s", in);
    char out[512];
    snprintf(out, sizeof out, "%s", tmp_path(type));
    const quantize_mix *mix = quantize_mix_find(type);
    CHECKF(mix != NULL, "no mix %s", type);
    if (!mix) return;
    quantize_opts o = {.threads = 2};
    quantize_stats st;
    CHECKF(quantize_file(in_copy, out, mix, &o, &st, &err) == 0, "%s: %s", type, err.msg);
    const char *ship = shared_path(shipped_rel);
    gguf_file *ours = gguf_open(out, &err), *theirs = gguf_open(ship, &err);
    gguf_file *orig = gguf_open(in_copy, &err);
    CHECKF(ours && theirs && orig, "%s", err.msg);
    if (!ours || !theirs || !orig) goto done;

    /* metadata: same keys in the same order, same file type */
    uint64_t ft_ours = 0, ft_theirs = 1;
    CHECK(gguf_get_u64(ours, "general.file_type", &ft_ours) && gguf_get_u64(theirs, "general.file_type", &ft_theirs));
    CHECKF(ft_ours == ft_theirs, "%s: general.file_type %llu, llama.cpp %llu", type, (unsigned long long)ft_ours,
           (unsigned long long)ft_theirs);
    CHECK_EQ_INT(ours->n_kv, theirs->n_kv);
    for (uint64_t i = 0; i < ours->n_kv && i < theirs->n_kv; i++)
        CHECKF(ours->kv[i].key.len == theirs->kv[i].key.len &&
                   memcmp(ours->kv[i].key.ptr, theirs->kv[i].key.ptr, ours->kv[i].key.len) == 0,
               "%s: key %llu differs", type, (unsigned long long)i);

    /* tensors: order, types, bytes; reconstruction error */
    CHECK_EQ_INT(ours->n_tensors, theirs->n_tensors);
    CHECK_EQ_INT(st.n_tensors, theirs->n_tensors);
    for (uint64_t i = 0; i < ours->n_tensors && i < theirs->n_tensors; i++) {
        const gguf_tensor *a = &ours->tensors[i], *b = &theirs->tensors[i];
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)a->name.len, a->name.ptr);
        CHECKF(gguf_str_eq(b->name, name), "%s: tensor %llu is %s, llama.cpp has %.*s", type, (unsigned long long)i,
               name, (int)b->name.len, b->name.ptr);
        CHECKF(a->type == b->type, "%s: %s is %s, llama.cpp chose %s", type, name, rl_type_name(a->type),
               rl_type_name(b->type));
        if (a->type != b->type || a->size != b->size) continue;
        CHECKF(memcmp(a->data, b->data, a->size) == 0, "%s: %s: bytes differ from llama-quantize's", type, name);
        const gguf_tensor *o16 = gguf_find_tensor(orig, name);
        if (quant_block_size(a->type) > 1 && o16) {
            int64_t n = (int64_t)gguf_tensor_nelements(o16);
            float *ref = malloc(sizeof(float) * (size_t)n);
            CHECK(quant_dequantize_row(o16->type, o16->data, ref, n) == 0);
            double e_ours = nmse_tensor(a, ref), e_theirs = nmse_tensor(b, ref);
            CHECKF(e_ours <= e_theirs * (1 + 1e-9) + 1e-15, "%s: %s: NMSE %g, llama.cpp's %g", type, name, e_ours,
                   e_theirs);
            free(ref);
        }
    }
    /* and so the whole file */
    long diff;
    CHECKF(file_equal(out, ship, &diff), "%s: output differs from %s at byte %ld", type, shipped_rel, diff);
done:
    gguf_close(ours);
    gguf_close(theirs);
    gguf_close(orig);
}

static void test_shipped(void) {
    compare_with_shipped("Q8_0", "models/synth-s512-q8_0.gguf");
    compare_with_shipped("Q4_0", "models/synth-s512-q4_0.gguf");
    compare_with_shipped("Q4_1", "models/synth-s512-q4_1.gguf");
    compare_with_shipped("Q4_K_M", "models/synth-s512-q4_k_m.gguf");
    compare_with_shipped("Q5_K_M", "models/synth-s512-q5_k_m.gguf");
    compare_with_shipped("Q6_K", "models/synth-s512-q6_k.gguf");
    /* the BF16 file holds the same weights rounded: its Q8_0 is at most
     * one quantum away from the F16 one, and written in the same layout */
    rl_err err = {0};
    quantize_opts o = {.threads = 1};
    CHECKF(quantize_file(shared_path("models/synth-s512-bf16.gguf"), tmp_path("bf16-q8_0"),
                         quantize_mix_find("q8_0"), &o, NULL, &err) == 0, "%s", err.msg);
    gguf_file *a = gguf_open(tmp_path("bf16-q8_0"), &err), *b = gguf_open(shared_path("models/synth-s512-q8_0.gguf"), &err);
    CHECK(a && b && a->n_tensors == b->n_tensors && a->size == b->size);
    gguf_close(a);
    gguf_close(b);
}

/* ---- threads ---- */

static void test_threads(void) {
    rl_err err = {0};
    const char *in = shared_path("models/synth-s512-f16.gguf");
    char in_copy[4096];
    snprintf(in_copy, sizeof in_copy, "%s", in);
    const quantize_mix *mix = quantize_mix_find("q5_k_m");
    quantize_opts one = {.threads = 1}, three = {.threads = 3};
    CHECK(quantize_file(in_copy, tmp_path("t1"), mix, &one, NULL, &err) == 0);
    CHECK(quantize_file(in_copy, tmp_path("t3"), mix, &three, NULL, &err) == 0);
    long diff;
    CHECKF(file_equal(tmp_path("t1"), tmp_path("t3"), &diff), "1 and 3 threads differ at byte %ld", diff);

    /* quantize_rows = quant_quantize_row on each row, from any float type */
    const int64_t rows = 37, cols = 512;
    float *x = malloc(sizeof(float) * rows * cols);
    uint16_t *h = malloc(2 * rows * cols);
    for (int64_t i = 0; i < rows * cols; i++) {
        x[i] = sinf((float)i * 0.37f) * (1 + (float)(i % 7));
        h[i] = rl_f32_to_f16(x[i]);
    }
    const uint32_t types[] = {RL_TYPE_Q4_K, RL_TYPE_Q6_K, RL_TYPE_Q8_0, RL_TYPE_Q5_1, RL_TYPE_BF16};
    for (size_t k = 0; k < RL_ARRAY_LEN(types); k++) {
        uint64_t rb;
        CHECK(rl_type_row_bytes(types[k], cols, &rb));
        uint8_t *a = malloc(rb * rows), *b = malloc(rb * rows), *c = malloc(rb * rows);
        float *row = malloc(sizeof(float) * cols);
        for (int64_t r = 0; r < rows; r++) CHECK(quant_quantize_row(types[k], x + r * cols, a + r * rb, cols) == 0);
        CHECK(quantize_rows(types[k], b, RL_TYPE_F32, x, rows, cols, 4, NULL, NULL, &err) == 0);
        CHECKF(memcmp(a, b, rb * rows) == 0, "%s: threaded rows differ", rl_type_name(types[k]));
        for (int64_t r = 0; r < rows; r++) {
            CHECK(quant_dequantize_row(RL_TYPE_F16, h + r * cols, row, cols) == 0);
            CHECK(quant_quantize_row(types[k], row, a + r * rb, cols) == 0);
        }
        CHECK(quantize_rows(types[k], c, RL_TYPE_F16, h, rows, cols, 3, NULL, NULL, &err) == 0);
        CHECKF(memcmp(a, c, rb * rows) == 0, "%s: rows from f16 differ", rl_type_name(types[k]));
        free(a);
        free(b);
        free(c);
        free(row);
    }
    /* bad sources and shapes */
    uint8_t out[4096];
    CHECK(quantize_rows(RL_TYPE_Q8_0, out, RL_TYPE_Q4_0, h, 1, 32, 1, NULL, NULL, &err) == -1 && err.code == RL_ERR_INPUT);
    CHECK(quantize_rows(RL_TYPE_Q4_K, out, RL_TYPE_F32, x, 1, 100, 1, NULL, NULL, &err) == -1);
    CHECK(quantize_rows(RL_TYPE_Q3_K, out, RL_TYPE_F32, x, 1, 256, 1, NULL, NULL, &err) == -1);
    x[5 * cols + 17] = NAN;
    uint8_t *q = malloc((size_t)rows * cols * 2);
    CHECK(quantize_rows(RL_TYPE_Q8_0, q, RL_TYPE_F32, x, rows, cols, 2, NULL, NULL, &err) == -1);
    CHECKF(err.code == RL_ERR_INPUT && strstr(err.msg, "row 5"), "%s", err.msg);
    free(q);
    free(x);
    free(h);
}

/* ---- the per-tensor rules ---- */

static uint32_t pick(const char *mix, const quantize_model *m, const char *name, uint64_t cols, uint64_t rows) {
    uint64_t ne[4] = {cols, rows, 1, 1};
    return quantize_tensor_type(quantize_mix_find(mix), m, false, name, rows > 1 ? 2 : 1, ne, RL_TYPE_F16, NULL);
}

static void test_rules(void) {
    /* Llama-2 7B: 32 layers. llama.cpp's Q4_K_M gives attn_v and ffn_down
     * Q6_K in layers 0-3, 6, 9, ..., 27 and 28-31, Q4_K elsewhere. */
    quantize_model m7 = {.arch = "llama", .n_layer = 32, .n_attn_v = 32, .n_head = 32, .n_head_kv = 32};
    static const int SIX[] = {0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31};
    char name[64];
    for (int l = 0; l < 32; l++) {
        bool six = false;
        for (size_t i = 0; i < RL_ARRAY_LEN(SIX); i++) six = six || SIX[i] == l;
        uint32_t want = six ? RL_TYPE_Q6_K : RL_TYPE_Q4_K;
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", l);
        CHECKF(pick("Q4_K_M", &m7, name, 4096, 4096) == want, "Q4_K_M %s", name);
        CHECKF(pick("Q5_K_M", &m7, name, 4096, 4096) == (six ? RL_TYPE_Q6_K : RL_TYPE_Q5_K), "Q5_K_M %s", name);
        CHECKF(pick("Q4_K_S", &m7, name, 4096, 4096) == (l < 4 ? RL_TYPE_Q5_K : RL_TYPE_Q4_K), "Q4_K_S %s", name);
        CHECKF(pick("Q4_K", &m7, name, 4096, 4096) == RL_TYPE_Q4_K, "Q4_K %s", name);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", l);
        CHECKF(pick("Q4_K_M", &m7, name, 11008, 4096) == (six ? RL_TYPE_Q6_K : RL_TYPE_Q4_K), "Q4_K_M %s", name);
        CHECKF(pick("Q4_K_S", &m7, name, 11008, 4096) == (l < 4 ? RL_TYPE_Q5_K : RL_TYPE_Q4_K), "Q4_K_S %s", name);
        snprintf(name, sizeof name, "blk.%d.ffn_up.weight", l);
        CHECK(pick("Q4_K_M", &m7, name, 4096, 11008) == RL_TYPE_Q4_K);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", l);
        CHECK(pick("Q5_K_M", &m7, name, 4096, 4096) == RL_TYPE_Q5_K);
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
        CHECK(pick("Q4_K_M", &m7, name, 4096, 1) == RL_TYPE_F16); /* 1-D: kept */
    }
    CHECK(pick("Q4_K_M", &m7, "output.weight", 4096, 32000) == RL_TYPE_Q6_K);
    CHECK(pick("Q4_0", &m7, "output.weight", 4096, 32000) == RL_TYPE_Q6_K);
    CHECK(pick("Q8_0", &m7, "output.weight", 4096, 32000) == RL_TYPE_Q8_0);
    CHECK(pick("Q4_K_M", &m7, "token_embd.weight", 4096, 32000) == RL_TYPE_Q4_K);
    CHECK(pick("F16", &m7, "output.weight", 4096, 32000) == RL_TYPE_F16);
    CHECK(pick("BF16", &m7, "blk.0.attn_v.weight", 4096, 4096) == RL_TYPE_BF16);
    CHECK(pick("Q4_0", &m7, "rope_freqs.weight", 64, 1) == RL_TYPE_F16);
    {   /* a [4096, 1] norm stored with 2 dimensions is still 1-D */
        uint64_t ne[4] = {4096, 1, 1, 1};
        CHECK(!quantize_tensor_allowed("output_norm.weight", 2, ne));
        CHECK(!quantize_tensor_allowed("blk.0.ffn_gate_inp.weight", 2, (uint64_t[4]){4096, 8, 1, 1}));
        CHECK(quantize_tensor_allowed("blk.0.ffn_gate.weight", 2, (uint64_t[4]){4096, 8, 1, 1}));
        CHECK(!quantize_tensor_allowed("blk.0.attn_q.bias", 2, (uint64_t[4]){4096, 8, 1, 1}));
    }
    /* --pure: the base type everywhere */
    uint64_t ne[4] = {4096, 32000, 1, 1};
    CHECK(quantize_tensor_type(quantize_mix_find("Q4_K_M"), &m7, true, "output.weight", 2, ne, RL_TYPE_F16, NULL) ==
          RL_TYPE_Q4_K);

    /* Llama-3 70B (80 layers, 64 heads, 8 KV heads): attn_v never below Q5_K */
    quantize_model m70 = {.arch = "llama", .n_layer = 80, .n_attn_v = 80, .n_head = 64, .n_head_kv = 8};
    CHECK(pick("Q4_K_M", &m70, "blk.10.attn_v.weight", 8192, 1024) == RL_TYPE_Q5_K);
    CHECK(pick("Q4_K_M", &m70, "blk.12.attn_v.weight", 8192, 1024) == RL_TYPE_Q6_K);
    CHECK(pick("Q4_K_M", &m70, "blk.10.ffn_down.weight", 28672, 8192) == RL_TYPE_Q4_K);
    m70.n_head_kv = 64; /* Llama-1 65B: no such rule */
    CHECK(pick("Q4_K_M", &m70, "blk.10.attn_v.weight", 8192, 8192) == RL_TYPE_Q4_K);

    /* tied embeddings: token_embd is the output matrix */
    quantize_model tied = m7;
    tied.tied_output = true;
    CHECK(pick("Q4_K_M", &tied, "token_embd.weight", 4096, 32000) == RL_TYPE_Q6_K);
    CHECK(pick("Q8_0", &tied, "token_embd.weight", 4096, 32000) == RL_TYPE_Q8_0);

    /* rows that are not whole blocks (dim 64, ffn 172: stories260K) */
    quantize_model ms = {.arch = "llama", .n_layer = 5, .n_attn_v = 5, .n_head = 8, .n_head_kv = 4};
    bool fb = false;
    uint64_t ne64[4] = {64, 64, 1, 1}, ne172[4] = {172, 64, 1, 1};
    CHECK(quantize_tensor_type(quantize_mix_find("Q4_K_M"), &ms, false, "blk.1.attn_q.weight", 2, ne64, RL_TYPE_F32,
                               &fb) == RL_TYPE_Q5_0 && fb);
    CHECK(pick("Q5_K_M", &ms, "blk.1.attn_q.weight", 64, 64) == RL_TYPE_Q5_1);
    CHECK(pick("Q6_K", &ms, "blk.1.attn_q.weight", 64, 64) == RL_TYPE_Q8_0);
    CHECK(pick("Q4_K_M", &ms, "output.weight", 64, 512) == RL_TYPE_Q8_0);
    CHECK(pick("Q4_K_M", &ms, "blk.0.ffn_down.weight", 172, 64) == RL_TYPE_F16); /* Q6_K -> Q8_0 -> F16 */
    CHECK(quantize_tensor_type(quantize_mix_find("Q4_0"), &ms, false, "blk.0.ffn_down.weight", 2, ne172, RL_TYPE_F32,
                               &fb) == RL_TYPE_F16 && fb);
    CHECK(pick("Q4_0", &ms, "blk.0.ffn_up.weight", 64, 172) == RL_TYPE_Q4_0);

    /* the model facts read from a file */
    rl_err err = {0};
    gguf_file *f = gguf_open(shared_path("models/synth-l3-q8_0.gguf"), &err);
    CHECKF(f != NULL, "%s", err.msg);
    if (f) {
        quantize_model m;
        quantize_model_from_file(f, &m);
        CHECK_STR(m.arch, "llama");
        CHECK_EQ_INT(m.n_layer, 2);
        CHECK_EQ_INT(m.n_attn_v, 2);
        CHECK_EQ_INT(m.n_head, 4);
        CHECK_EQ_INT(m.n_head_kv, 2);
        CHECK(m.tied_output);
        gguf_close(f);
    }
    /* names */
    CHECK(quantize_mix_find("q4_k_m") && quantize_mix_find("q4_k_m")->file_type == 15);
    CHECK(quantize_mix_find("Q8_0")->file_type == 7 && quantize_mix_find("q6_k")->base_type == RL_TYPE_Q6_K);
    CHECK(quantize_mix_find("Q3_K_M") == NULL && quantize_mix_find("") == NULL);
}

/* ---- errors, and the command line ---- */

static int run(const char *args) {
    const char *bin = getenv("RACKLLM_BIN");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s >%s 2>&1", bin ? bin : "build/rackllm", args, tmp_path("cli.log"));
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static bool log_has(const char *needle) {
    FILE *f = fopen(tmp_path("cli.log"), "r");
    char buf[8192] = {0};
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
    return strstr(buf, needle) != NULL;
}

static void test_errors(void) {
    rl_err err = {0};
    /* already quantized input */
    CHECK(quantize_file(shared_path("models/synth-s512-q4_0.gguf"), tmp_path("x"), quantize_mix_find("Q8_0"), NULL,
                        NULL, &err) == -1);
    CHECKF(err.code == RL_ERR_INPUT && strstr(err.msg, "is q6_K") && strstr(err.msg, "not already quantized"), "%s", err.msg);
    CHECK(access(tmp_path("x"), F_OK) != 0 && access(tmp_path("x.tmp"), F_OK) != 0);

    /* NaN in a weight: named tensor and row */
    gguf_writer *w = gguf_writer_new(3);
    gguf_writer_add_str(w, "general.architecture", "llama");
    static float wgt[64 * 4];
    for (int i = 0; i < 64 * 4; i++) wgt[i] = (float)i / 100;
    wgt[64 * 2 + 3] = NAN;
    CHECK(gguf_writer_add_tensor(w, "blk.0.attn_q.weight", RL_TYPE_F32, 2, (uint64_t[]){64, 4}, wgt, &err) == 0);
    CHECK(gguf_writer_write(w, tmp_path("nan.gguf"), NULL, NULL, NULL, &err) == 0);
    gguf_writer_free(w);
    CHECK(quantize_file(tmp_path("nan.gguf"), tmp_path("nan-q8.gguf"), quantize_mix_find("Q8_0"), NULL, NULL, &err) == -1);
    CHECKF(err.code == RL_ERR_INPUT && strstr(err.msg, "blk.0.attn_q.weight") && strstr(err.msg, "row 2"), "%s",
           err.msg);
    /* output onto the input */
    CHECK(quantize_file(tmp_path("nan.gguf"), tmp_path("nan.gguf"), quantize_mix_find("Q8_0"), NULL, NULL, &err) == -1);
    CHECK(err.code == RL_ERR_INPUT);
    /* missing input */
    CHECK(quantize_file(tmp_path("absent.gguf"), tmp_path("y"), quantize_mix_find("Q8_0"), NULL, NULL, &err) == -1);
    CHECK(err.code == RL_ERR_INPUT);

    /* the command */
    char args[4096];
    CHECK(run("quantize --help") == 0 && log_has("usage: rackllm quantize") && log_has("Q4_K_M"));
    CHECK(run("quantize") == 2);
    snprintf(args, sizeof args, "quantize %s %s Q9_9", shared_path("models/stories260K.gguf"), tmp_path("z"));
    CHECK(run(args) == 2 && log_has("unknown TYPE 'Q9_9'"));
    snprintf(args, sizeof args, "quantize --threads 0 %s %s Q8_0", shared_path("models/stories260K.gguf"), tmp_path("z"));
    CHECK(run(args) == 2);
    snprintf(args, sizeof args, "quantize %s %s Q4_0", shared_path("models/synth-l3-q8_0.gguf"), tmp_path("z"));
    CHECK(run(args) == 2 && log_has("rackllm quantize: ") && log_has("is q8_0: rackllm quantize converts F32, F16 or BF16"));
    snprintf(args, sizeof args, "quantize %s %s q4_k_m", tmp_path("absent.gguf"), tmp_path("z"));
    CHECK(run(args) == 2);
    /* a real run: stories260K (F32, rows of 64 and 172) to Q4_K_M, with
     * llama.cpp's fallbacks, then read back */
    snprintf(args, sizeof args, "quantize -t 2 %s %s Q4_K_M", shared_path("models/stories260K.gguf"), tmp_path("s.gguf"));
    CHECK(run(args) == 0 && log_has("wrote"));
    gguf_file *f = gguf_open(tmp_path("s.gguf"), &err);
    CHECKF(f != NULL, "%s", err.msg);
    if (f) {
        const gguf_tensor *q = gguf_find_tensor(f, "blk.0.attn_q.weight"), *d = gguf_find_tensor(f, "blk.0.ffn_down.weight");
        const gguf_tensor *o = gguf_find_tensor(f, "output.weight"), *n = gguf_find_tensor(f, "blk.0.attn_norm.weight");
        CHECK(q && q->type == RL_TYPE_Q5_0);
        CHECK(d && d->type == RL_TYPE_F16);
        CHECK(o && o->type == RL_TYPE_Q8_0);
        CHECK(n && n->type == RL_TYPE_F32);
        uint64_t ft = 0;
        CHECK(gguf_get_u64(f, "general.file_type", &ft) && ft == 15);
        gguf_close(f);
    }
}

/* A file of two tensors: n_f32 floats and n_q8 Q8_0 values, no file type. */
static gguf_file *two_tensors(uint64_t n_f32, uint64_t n_q8, void **buf) {
    rl_err err = {0};
    gguf_writer *w = gguf_writer_new(3);
    gguf_writer_add_str(w, "general.architecture", "llama");
    static uint8_t zeros[4096];
    uint64_t a[1] = {n_f32}, b[1] = {n_q8};
    gguf_writer_add_tensor(w, "a.weight", RL_TYPE_F32, 1, a, zeros, &err);
    gguf_writer_add_tensor(w, "b.weight", RL_TYPE_Q8_0, 1, b, zeros, &err);
    size_t len = 0;
    char *mem = NULL;
    FILE *out = open_memstream(&mem, &len);
    int rc = out ? gguf_writer_write_stream(w, out, "two", NULL, NULL, NULL, &err) : -1;
    if (out) fclose(out);
    gguf_writer_free(w);
    *buf = mem;
    gguf_file *f = rc == 0 ? gguf_open_memory(mem, len, "two", &err) : NULL;
    CHECKF(f != NULL, "%s", err.msg);
    return f;
}

static void test_file_type(void) {
    char label[32];
    void *data;
    model *m = tiny_model("q8_0", 1, &data);
    CHECK(m != NULL);
    if (m) CHECK_EQ_INT(quantize_file_type(m->file, label, sizeof label), RL_TYPE_Q8_0);
    if (m) CHECK_STR(label, "q8_0");
    model_free(m);
    free(data);
    m = tiny_model("q4_k_m", 1, &data); /* mostly Q4_K, some Q6_K */
    if (m) CHECK_EQ_INT(quantize_file_type(m->file, label, sizeof label), RL_TYPE_Q4_K);
    if (m) CHECK_STR(label, "q4_k_m");
    model_free(m);
    free(data);
    m = tiny_model("q4_k", 1, &data); /* plain Q4_K writes Q4_K_S's number: the mix is named */
    if (m) CHECK_EQ_INT(quantize_file_type(m->file, NULL, 0), RL_TYPE_Q4_K);
    if (m) CHECK_STR((quantize_file_type(m->file, label, sizeof label), label), "q4_k_s");
    model_free(m);
    free(data);
    /* no general.file_type: the type of most bytes (32 floats are 128
     * bytes; 64 Q8_0 values 68; 256 of them 272) */
    gguf_file *f = two_tensors(32, 64, &data);
    if (f) CHECK_EQ_INT(quantize_file_type(f, label, sizeof label), RL_TYPE_F32);
    if (f) CHECK_STR(label, "f32");
    gguf_close(f);
    free(data);
    f = two_tensors(32, 256, &data);
    if (f) CHECK_EQ_INT(quantize_file_type(f, label, 3), RL_TYPE_Q8_0);
    if (f) CHECK_STR(label, "q8"); /* cut to the buffer */
    gguf_close(f);
    free(data);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    const char *base = getenv("RACKLLM_BUILD");
    snprintf(tmpdir, sizeof tmpdir, "%s/test_quantize.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_rules);
    RUN(test_threads);
    RUN(test_shipped);
    RUN(test_errors);
    RUN(test_file_type);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_report("test_quantize");
}
