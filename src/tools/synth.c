/*
 * synth.c — synthetic models (see synth.h).
 *
 * Weights: each tensor is cut into blocks of rows; each block draws from its
 * own random stream seeded by (seed, tensor, block), so the bytes do not
 * depend on how many threads made them. Values are roughly normal with
 * standard deviation 0.02 (the usual initialisation), then quantized with
 * the reference quantizers, exactly as a real model would be. Norm weights
 * are 1, rope_freqs are the Llama 3.1 factors of the shape.
 */
#include "synth.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/progress.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "base/types.h"
#include "gguf/gguf.h"
#include "kernels/quant.h"
#include "quantize.h"

#define ROWS_PER_BLOCK 64
#define WEIGHT_STD 0.02f
/* GGML_QNT_VERSION, which llama.cpp writes into every quantized file. */
#define QUANTIZATION_VERSION 2

/* ---- random numbers (rng.h): one stream per (seed, tensor, block) ---- */

static void rng_seed(rl_rng *r, uint64_t a, uint64_t b, uint64_t c) {
    rl_rng_seed(r, a ^ (b * 0x632be59bd9b4e019ull) ^ (c * 0x8cb92ba72f3d8dd7ull));
}

/* Approximately N(0, 1): the sum of four uniforms (Irwin-Hall), rescaled. */
static float rng_normal(rl_rng *r) {
    uint64_t x = rl_rng_next(r);
    float sum = (float)(x & 0xffff) + (float)((x >> 16) & 0xffff) + (float)((x >> 32) & 0xffff) + (float)(x >> 48);
    return (sum / 65536.0f - 2.0f) * 1.7320508f;
}

/* ---- the tensors ---- */

typedef struct stensor {
    synth_tensor info;
    int kind; /* K_RANDOM, K_ONES, K_ROPE */
} stensor;

enum { K_RANDOM, K_ONES, K_ROPE };

typedef struct synth {
    const synth_params *p;
    rl_shape s;
    const quantize_mix *mix;
    quantize_model qm; /* what the mix's per-tensor rules need to know */
    stensor *t;
    int n_t;
    threadpool *pool;
    float *rows;       /* one row of floats per thread, max_cols each */
    uint64_t max_cols;
    progress prog;
    uint64_t bytes_done, bytes_total;
} synth;

/* The target: one of the quantize module's mixes (Q4_0, Q8_0, Q4_K_M, ...),
 * whose per-tensor rules lay the file out as llama-quantize would. */
static int parse_type(const char *name, const quantize_mix **mix, rl_err *err) {
    *mix = quantize_mix_find(name);
    if (!*mix) {
        char known[256] = "";
        for (size_t i = 0; quantize_mix_at(i); i++) {
            size_t n = strlen(known);
            snprintf(known + n, sizeof known - n, "%s%s", i ? ", " : "", quantize_mix_at(i)->name);
        }
        return rl_fail(err, RL_ERR_INPUT, "unknown type '%s' (known: %s)", name, known);
    }
    return 0;
}

static void add(synth *S, const char *name, uint64_t cols, uint64_t rows) {
    stensor *st = &S->t[S->n_t++];
    synth_tensor *t = &st->info;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ne[0] = cols;
    t->ne[1] = rows;
    t->n_dims = rows > 1 ? 2 : 1;
    bool bias = strstr(name, ".bias") != NULL;
    st->kind = rows > 1 || bias ? K_RANDOM : strcmp(name, "rope_freqs.weight") == 0 ? K_ROPE : K_ONES;
    t->type = quantize_tensor_type(S->mix, &S->qm, false, name, t->n_dims, t->ne, RL_TYPE_F32, NULL);
}

static void plan_tensors(synth *S) {
    const rl_shape *s = &S->s;
    uint64_t d = s->n_embd, q = (uint64_t)s->n_head * s->head_dim, kv = (uint64_t)s->n_head_kv * s->head_dim;
    char name[64];
    add(S, "token_embd.weight", d, s->n_vocab);
    if (s->rope_scaling == RL_ROPE_SCALING_LLAMA3) add(S, "rope_freqs.weight", s->head_dim / 2, 1);
    for (uint32_t i = 0; i < s->n_layer; i++) {
#define L(x) (snprintf(name, sizeof name, "blk.%u." x ".weight", i), name)
#define B(x) (snprintf(name, sizeof name, "blk.%u." x ".bias", i), name)
        add(S, L("attn_norm"), d, 1);
        add(S, L("attn_q"), d, q);
        add(S, L("attn_k"), d, kv);
        add(S, L("attn_v"), d, kv);
        if (s->qkv_bias) {
            add(S, B("attn_q"), q, 1);
            add(S, B("attn_k"), kv, 1);
            add(S, B("attn_v"), kv, 1);
        }
        if (s->qk_norm) {
            add(S, L("attn_q_norm"), s->head_dim, 1);
            add(S, L("attn_k_norm"), s->head_dim, 1);
        }
        add(S, L("attn_output"), q, d);
        add(S, L("ffn_norm"), d, 1);
        add(S, L("ffn_gate"), d, s->n_ff);
        add(S, L("ffn_up"), d, s->n_ff);
        add(S, L("ffn_down"), s->n_ff, d);
#undef L
#undef B
    }
    add(S, "output_norm.weight", d, 1);
    if (!s->tied_embeddings) add(S, "output.weight", d, s->n_vocab);
}

/* ---- the tokenizer ---- */

/* GPT-2's byte -> printable code point map, as UTF-8. */
static void byte_token(int b, char out[4]) {
    int cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
        cp = b;
    } else {
        int n = 0; /* rank among the bytes that are remapped */
        for (int x = 0; x < b; x++)
            if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) n++;
        cp = 256 + n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        out[2] = 0;
    }
}

static const char *const LLAMA3_SPECIALS[] = {
    "<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
    "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|eom_id|>", "<|eot_id|>", "<|python_tag|>", "<|im_start|>", "<|im_end|>",
};
static const char *const CHATML_SPECIALS[] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

static const char LETTERS[] = "etaoinshrdlcumwfgypbvkjxqz";

static const char LLAMA3_TEMPLATE[] =
    "{{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}{%- if "
    "add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";
static const char CHATML_TEMPLATE[] =
    "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

/* What a family's real files carry besides the tokens: the pre-tokenizer,
 * the special tokens (at the end of the vocabulary) and which are BOS, EOS
 * and end of turn, whether BOS is added, the chat template. */
typedef struct vocab_style {
    const char *pre;
    const char *const *specials;
    uint32_t n_specials, bos, eos, eot;
    bool add_bos;
    const char *chat_template; /* NULL: none */
} vocab_style;

static vocab_style style_of(const rl_shape *s) {
    if (strncmp(s->arch, "qwen", 4) == 0 || strncmp(s->id, "smollm", 6) == 0)
        return (vocab_style){strncmp(s->arch, "qwen", 4) == 0 ? "qwen2" : "smollm", CHATML_SPECIALS,
                             (uint32_t)RL_ARRAY_LEN(CHATML_SPECIALS), 0, 2, 2, false, CHATML_TEMPLATE};
    return (vocab_style){"llama-bpe", LLAMA3_SPECIALS, (uint32_t)RL_ARRAY_LEN(LLAMA3_SPECIALS), 0, 1, 9, true,
                         strncmp(s->id, "llama3", 6) == 0 ? LLAMA3_TEMPLATE : NULL};
}

/* Every byte, then letter pairs (and space + letter) with their merges. */
static uint32_t add_bytes_and_pairs(char **tok, int32_t *types, char **merges, uint32_t *n_merges) {
    uint32_t id = 0, m = 0, n_letters = (uint32_t)strlen(LETTERS);
    for (int b = 0; b < 256; b++) {
        tok[id] = malloc(4);
        byte_token(b, tok[id]);
        types[id++] = 1;
    }
    for (uint32_t i = 0; i <= n_letters; i++) {
        for (uint32_t j = 0; j < n_letters; j++) {
            const char *first = i < n_letters ? (char[]){LETTERS[i], 0} : "\xc4\xa0"; /* Ġ */
            char buf[16];
            snprintf(buf, sizeof buf, "%s%c", first, LETTERS[j]);
            tok[id] = strdup(buf);
            types[id++] = 1;
            snprintf(buf, sizeof buf, "%s %c", first, LETTERS[j]);
            merges[m++] = strdup(buf);
        }
    }
    *n_merges = m;
    return id;
}

static int add_tokenizer(gguf_writer *w, const rl_shape *s, rl_err *err) {
    vocab_style vs = style_of(s);
    uint32_t n = s->n_vocab, n_special = vs.n_specials;
    uint32_t n_letters = (uint32_t)strlen(LETTERS), n_pairs = (n_letters + 1) * n_letters;
    if (n < 256 + n_pairs + n_special)
        return rl_fail(err, RL_ERR_INPUT, "vocabulary of %u is too small for the synthetic tokenizer", n);
    char **tok = calloc(n, sizeof *tok);
    char **merges = calloc(n_pairs, sizeof *merges);
    int32_t *types = calloc(n, sizeof *types);
    if (!tok || !merges || !types) {
        free(tok);
        free(merges);
        free(types);
        return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    }
    uint32_t m, special0 = n - (n >= 128256 ? 256 : n_special);
    uint32_t id = add_bytes_and_pairs(tok, types, merges, &m);
    for (; id < special0; id++) {
        char buf[32];
        snprintf(buf, sizeof buf, "<|synth_%u|>", id);
        tok[id] = strdup(buf);
        types[id] = 1;
    }
    for (uint32_t k = 0; id < n; id++, k++) {
        char buf[48];
        if (k < n_special) snprintf(buf, sizeof buf, "%s", vs.specials[k]);
        else snprintf(buf, sizeof buf, "<|reserved_special_token_%u|>", k);
        tok[id] = strdup(buf);
        types[id] = 3; /* control */
    }
    gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_add_str(w, "tokenizer.ggml.pre", vs.pre);
    gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, n);
    gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, types, n);
    gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", (const char *const *)merges, m);
    gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", special0 + vs.bos);
    gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", special0 + vs.eos);
    gguf_writer_add_u32(w, "tokenizer.ggml.eot_token_id", special0 + vs.eot);
    gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", vs.add_bos);
    if (vs.chat_template) gguf_writer_add_str(w, "tokenizer.chat_template", vs.chat_template);
    for (uint32_t i = 0; i < n; i++) free(tok[i]);
    for (uint32_t i = 0; i < m; i++) free(merges[i]);
    free(tok);
    free(merges);
    free(types);
    return 0;
}

static void add_metadata(gguf_writer *w, const synth *S) {
    const rl_shape *s = &S->s;
    char name[128];
    snprintf(name, sizeof name, "synthetic %s", s->name[0] ? s->name : s->id);
    gguf_writer_add_str(w, "general.architecture", s->arch);
    gguf_writer_add_str(w, "general.name", name);
    gguf_writer_add_u32(w, "general.alignment", GGUF_DEFAULT_ALIGNMENT);
    shape_write_gguf(w, s);
    gguf_writer_add_u64(w, "rackllm.synth.seed", S->p->seed);
}

/* ---- filling ---- */

typedef struct fill_job {
    synth *S;
    const synth_tensor *t;
    uint64_t index;
    uint8_t *out;
    size_t row_bytes;
} fill_job;

static void fill_block(void *ctx, int block, int thread) {
    fill_job *j = ctx;
    const synth_tensor *t = j->t;
    uint64_t r0 = (uint64_t)block * ROWS_PER_BLOCK, r1 = RL_MIN(r0 + ROWS_PER_BLOCK, t->ne[1]);
    float *row = j->S->rows + (size_t)thread * j->S->max_cols;
    rl_rng r;
    rng_seed(&r, j->S->p->seed, j->index, (uint64_t)block);
    for (uint64_t i = r0; i < r1; i++) {
        for (uint64_t c = 0; c < t->ne[0]; c++) row[c] = WEIGHT_STD * rng_normal(&r);
        quant_quantize_row(t->type, row, j->out + i * j->row_bytes, (int64_t)t->ne[0]);
    }
}

static int fill(void *ctx, uint64_t index, void *buf, uint64_t size, rl_err *err) {
    synth *S = ctx;
    const synth_tensor *t = &S->t[index].info;
    if (S->t[index].kind == K_ONES) {
        for (uint64_t i = 0; i < t->ne[0]; i++) ((float *)buf)[i] = 1.0f;
    } else if (S->t[index].kind == K_ROPE) {
        if (!shape_llama3_rope_freqs(&S->s, buf)) return rl_fail(err, RL_ERR_INTERNAL, "no rope factors");
    } else {
        fill_job j = {S, t, index, buf, (size_t)(size / t->ne[1])};
        tp_run(S->pool, fill_block, &j, (int)((t->ne[1] + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK));
    }
    S->bytes_done += size;
    progress_update(&S->prog, S->bytes_done);
    return 0;
}

static gguf_writer *prepare(synth *S, const synth_params *p, rl_err *err) {
    memset(S, 0, sizeof *S);
    S->p = p;
    S->s = p->shape;
    if (p->layers > 0 && p->layers < S->s.n_layer) S->s.n_layer = p->layers;
    if (parse_type(p->type, &S->mix, err)) return NULL;
    if (shape_set_arch(&S->s, S->s.arch[0] ? S->s.arch : "llama", err)) return NULL;
    S->qm = (quantize_model){.n_layer = S->s.n_layer, .n_attn_v = S->s.n_layer,
                             .n_head = S->s.n_head, .n_head_kv = S->s.n_head_kv, .tied_output = S->s.tied_embeddings};
    snprintf(S->qm.arch, sizeof S->qm.arch, "%s", S->s.arch);
    S->t = calloc((size_t)S->s.n_layer * 14 + 4, sizeof *S->t); /* 9 a layer, 3 biases, 2 norms */
    gguf_writer *w = gguf_writer_new(3);
    if (!S->t || !w) {
        free(S->t);
        gguf_writer_free(w);
        rl_fail(err, RL_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    plan_tensors(S);
    add_metadata(w, S);
    gguf_writer_add_u32(w, "general.file_type", S->mix->file_type);
    if (S->mix->base_type != RL_TYPE_F32 && S->mix->base_type != RL_TYPE_F16 && S->mix->base_type != RL_TYPE_BF16)
        gguf_writer_add_u32(w, "general.quantization_version", QUANTIZATION_VERSION);
    if (add_tokenizer(w, &S->s, err)) goto fail;
    for (int i = 0; i < S->n_t; i++) {
        const synth_tensor *t = &S->t[i].info;
        if (gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, NULL, err)) goto fail;
        uint64_t rb;
        rl_type_row_bytes(t->type, t->ne[0], &rb);
        S->bytes_total += rb * t->ne[1];
    }
    return w;
fail:
    free(S->t);
    gguf_writer_free(w);
    return NULL;
}

static int run(const synth_params *p, const char *path, FILE *stream, rl_err *err) {
    synth S;
    gguf_writer *w = prepare(&S, p, err);
    if (!w) return -1;
    int n_threads = p->n_threads > 0 ? p->n_threads : tp_available_cpus();
    for (int i = 0; i < S.n_t; i++) S.max_cols = RL_MAX(S.max_cols, S.t[i].info.ne[0]);
    S.rows = rl_calloc((size_t)n_threads * S.max_cols, sizeof *S.rows, err);
    S.pool = S.rows ? tp_new(n_threads, NULL, err) : NULL;
    int rc = -1;
    if (S.pool) {
        progress_start(&S.prog, "synthesising", S.bytes_total);
        if (!p->progress) S.prog.enabled = false;
        rc = path ? gguf_writer_write(w, path, fill, &S, NULL, err)
                  : gguf_writer_write_stream(w, stream, "memory", fill, &S, NULL, err);
        progress_done(&S.prog);
    }
    tp_free(S.pool);
    free(S.rows);
    gguf_writer_free(w);
    free(S.t);
    return rc;
}

int synth_write(const synth_params *p, const char *path, rl_err *err) { return run(p, path, NULL, err); }

int synth_build(const synth_params *p, void **data, uint64_t *size, rl_err *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) return rl_fail(err, RL_ERR_INTERNAL, "open_memstream failed");
    int rc = run(p, NULL, mem, err);
    if (fclose(mem) != 0 && rc == 0) rc = rl_fail(err, RL_ERR_INTERNAL, "out of memory building the model");
    if (rc) {
        free(buf);
        return -1;
    }
    *data = buf;
    *size = len;
    return 0;
}

uint64_t synth_file_size(const synth_params *p, rl_err *err) {
    synth S;
    gguf_writer *w = prepare(&S, p, err);
    if (!w) return 0;
    uint64_t total = S.bytes_total;
    gguf_writer_free(w);
    free(S.t);
    return total;
}

int synth_tensors(const synth_params *p, synth_tensor **out, int *n, rl_err *err) {
    synth S;
    gguf_writer *w = prepare(&S, p, err);
    if (!w) return -1;
    gguf_writer_free(w);
    *out = rl_calloc((size_t)S.n_t, sizeof **out, err);
    if (*out)
        for (int i = 0; i < S.n_t; i++) (*out)[i] = S.t[i].info;
    *n = *out ? S.n_t : 0;
    free(S.t);
    return *out ? 0 : -1;
}
