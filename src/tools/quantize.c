/*
 * quantize.c — model files from F32/F16/BF16 to quantized types, as
 * llama-quantize makes them (see quantize.h). The per-tensor rules follow
 * llama.cpp's src/llama-quant.cpp (llama_tensor_get_type and friends) for
 * the mixes listed below; the block formats are quant.c's.
 */
#include "quantize.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/progress.h"
#include "base/threadpool.h"
#include "base/types.h"
#include "kernels/quant.h"

/* llama.cpp's file types (enum llama_ftype), for general.file_type. */
enum {
    FTYPE_ALL_F32 = 0, FTYPE_F16 = 1, FTYPE_Q4_0 = 2, FTYPE_Q4_1 = 3, FTYPE_Q8_0 = 7,
    FTYPE_Q5_0 = 8, FTYPE_Q5_1 = 9, FTYPE_Q4_K_S = 14, FTYPE_Q4_K_M = 15, FTYPE_Q5_K_S = 16,
    FTYPE_Q5_K_M = 17, FTYPE_Q6_K = 18, FTYPE_BF16 = 32,
};

/* GGML_QNT_VERSION: the version of the quantized formats written. */
#define QUANTIZATION_VERSION 2

static const quantize_mix MIXES[] = {
    {"Q4_0", RL_TYPE_Q4_0, FTYPE_Q4_0, false, "4.5 bits/weight, one scale per 32"},
    {"Q4_1", RL_TYPE_Q4_1, FTYPE_Q4_1, false, "5 bits/weight, scale and offset per 32"},
    {"Q5_0", RL_TYPE_Q5_0, FTYPE_Q5_0, false, "5.5 bits/weight, one scale per 32"},
    {"Q5_1", RL_TYPE_Q5_1, FTYPE_Q5_1, false, "6 bits/weight, scale and offset per 32"},
    {"Q8_0", RL_TYPE_Q8_0, FTYPE_Q8_0, false, "8.5 bits/weight, one scale per 32"},
    {"Q4_K", RL_TYPE_Q4_K, FTYPE_Q4_K_S, true, "4.5 bits/weight K-quant for every matrix (output: Q6_K)"},
    {"Q4_K_S", RL_TYPE_Q4_K, FTYPE_Q4_K_S, false, "Q4_K, first attn_v/ffn_down layers Q5_K (llama.cpp's mix)"},
    {"Q4_K_M", RL_TYPE_Q4_K, FTYPE_Q4_K_M, false, "Q4_K, half the attn_v/ffn_down layers Q6_K (llama.cpp's mix)"},
    {"Q5_K", RL_TYPE_Q5_K, FTYPE_Q5_K_S, true, "5.5 bits/weight K-quant for every matrix (output: Q6_K)"},
    {"Q5_K_S", RL_TYPE_Q5_K, FTYPE_Q5_K_S, false, "Q5_K (llama.cpp's mix: the same as Q5_K)"},
    {"Q5_K_M", RL_TYPE_Q5_K, FTYPE_Q5_K_M, false, "Q5_K, half the attn_v/ffn_down layers Q6_K (llama.cpp's mix)"},
    {"Q6_K", RL_TYPE_Q6_K, FTYPE_Q6_K, false, "6.6 bits/weight K-quant"},
    {"F16", RL_TYPE_F16, FTYPE_F16, false, "16-bit floats"},
    {"BF16", RL_TYPE_BF16, FTYPE_BF16, false, "bfloat16"},
    {"F32", RL_TYPE_F32, FTYPE_ALL_F32, false, "32-bit floats"},
};

const quantize_mix *quantize_mix_find(const char *name) {
    for (size_t i = 0; i < RL_ARRAY_LEN(MIXES); i++)
        if (strcasecmp(MIXES[i].name, name) == 0) return &MIXES[i];
    return NULL;
}

const quantize_mix *quantize_mix_at(size_t i) { return i < RL_ARRAY_LEN(MIXES) ? &MIXES[i] : NULL; }

/* The mix general.file_type names (llama.cpp's mix over a plain type of
 * the same number), or NULL. */
static const quantize_mix *file_mix(const gguf_file *f) {
    uint64_t ft;
    const quantize_mix *found = NULL;
    if (!gguf_get_u64(f, "general.file_type", &ft)) return NULL;
    for (size_t i = 0; i < RL_ARRAY_LEN(MIXES); i++) {
        const quantize_mix *q = &MIXES[i];
        if (q->file_type == ft && (!found || (found->plain && !q->plain))) found = q;
    }
    return found;
}

uint32_t quantize_file_type(const gguf_file *f, char *label, size_t size) {
    uint64_t bytes[RL_TYPE_COUNT] = {0};
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].type < RL_TYPE_COUNT) bytes[f->tensors[i].type] += f->tensors[i].size;
    uint32_t main = 0;
    for (uint32_t t = 1; t < RL_TYPE_COUNT; t++)
        if (bytes[t] > bytes[main]) main = t;
    if (label && size > 0) {
        const quantize_mix *mix = file_mix(f);
        const char *name = mix ? mix->name : rl_type_name(main);
        size_t i = 0;
        for (; name[i] && i + 1 < size; i++) label[i] = (char)tolower((unsigned char)name[i]);
        label[i] = 0;
    }
    return main;
}

/* ------------------------------------------------------------------ */
/* Which tensors, and which type                                       */
/* ------------------------------------------------------------------ */

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* Dimensions without the trailing ones (ggml_n_dims): a [256, 1] norm is
 * one-dimensional. */
static uint32_t real_dims(uint32_t n_dims, const uint64_t *ne) {
    uint32_t d = n_dims;
    while (d > 1 && ne[d - 1] == 1) d--;
    return d;
}

/* Layer of "blk.N.something", -1 for tensors outside the blocks (what
 * llama.cpp's sscanf("blk.%d.") gives, without its overflow). */
static int tensor_layer(const char *name) {
    if (strncmp(name, "blk.", 4) != 0 || name[4] < '0' || name[4] > '9') return -1;
    long layer = 0;
    for (const char *p = name + 4; *p >= '0' && *p <= '9'; p++) layer = RL_MIN(layer * 10 + (*p - '0'), 1L << 30);
    return (int)layer;
}

bool quantize_tensor_allowed(const char *name, uint32_t n_dims, const uint64_t *ne) {
    /* Small or special tensors llama-quantize leaves in their type. Most
     * belong to other architectures; they are here so that a file of any
     * architecture is treated as llama.cpp treats it. */
    static const char *const KEEP[] = {
        "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
        "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight",
        "indexer.q_proj.weight", "time_mix_first.weight", "time_mix_w0.weight", "time_mix_w1.weight",
        "time_mix_w2.weight", "time_mix_v0.weight", "time_mix_v1.weight", "time_mix_v2.weight",
        "time_mix_a0.weight", "time_mix_a1.weight", "time_mix_a2.weight", "time_mix_g1.weight",
        "time_mix_g2.weight", "time_mix_decay_w1.weight", "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight", "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.",
        "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd",
    };
    if (real_dims(n_dims, ne) < 2 || !ends_with(name, "weight")) return false;
    if (strcmp(name, "position_embd.weight") == 0 || strcmp(name, "token_types.weight") == 0) return false;
    for (size_t i = 0; i < RL_ARRAY_LEN(KEEP); i++)
        if (strstr(name, KEEP[i])) return false;
    return true;
}

typedef enum category {
    CAT_OTHER, CAT_OUTPUT, CAT_TOKEN_EMBD, CAT_ATTN_V, CAT_ATTN_K, CAT_ATTN_Q, CAT_ATTN_OUTPUT,
    CAT_FFN_UP, CAT_FFN_GATE, CAT_FFN_DOWN,
} category;

/* llama.cpp's tensor_get_category, in its order of tests. The fused
 * attn_qkv and attn_kv_b count as attn_v (its "attn_v-like"). */
static category tensor_category(const char *name) {
    if (strcmp(name, "output.weight") == 0) return CAT_OUTPUT;
    if (strcmp(name, "token_embd.weight") == 0 || strcmp(name, "per_layer_token_embd.weight") == 0)
        return CAT_TOKEN_EMBD;
    if (strstr(name, "attn_qkv.weight") || strstr(name, "attn_kv_b.weight") || strstr(name, "attn_v.weight"))
        return CAT_ATTN_V;
    if (strstr(name, "attn_k.weight")) return CAT_ATTN_K;
    if (strstr(name, "attn_q.weight")) return CAT_ATTN_Q;
    if (strstr(name, "attn_output.weight")) return CAT_ATTN_OUTPUT;
    if (strstr(name, "ffn_up")) return CAT_FFN_UP;
    if (strstr(name, "ffn_gate")) return CAT_FFN_GATE;
    if (strstr(name, "ffn_down")) return CAT_FFN_DOWN;
    return CAT_OTHER;
}

void quantize_model_from_file(const gguf_file *f, quantize_model *m) {
    memset(m, 0, sizeof *m);
    gguf_str arch;
    if (gguf_get_str(f, "general.architecture", &arch) && arch.len < sizeof m->arch) {
        memcpy(m->arch, arch.ptr, arch.len);
        m->arch[arch.len] = 0;
    }
    char key[96];
    uint64_t v;
    snprintf(key, sizeof key, "%s.block_count", m->arch);
    bool have_layers = gguf_get_u64(f, key, &v) && v <= UINT32_MAX;
    if (have_layers) m->n_layer = (uint32_t)v;
    snprintf(key, sizeof key, "%s.attention.head_count", m->arch);
    if (gguf_get_u64(f, key, &v) && v <= UINT32_MAX) m->n_head = (uint32_t)v;
    snprintf(key, sizeof key, "%s.attention.head_count_kv", m->arch);
    m->n_head_kv = gguf_get_u64(f, key, &v) && v <= UINT32_MAX ? (uint32_t)v : m->n_head;
    m->tied_output = true;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        char name[256];
        const gguf_tensor *t = &f->tensors[i];
        snprintf(name, sizeof name, "%.*s", (int)RL_MIN(t->name.len, 255), t->name.ptr);
        if (strcmp(name, "output.weight") == 0) m->tied_output = false;
        if (tensor_category(name) == CAT_ATTN_V) m->n_attn_v++;
        int layer = tensor_layer(name);
        if (!have_layers && layer >= 0 && (uint32_t)layer >= m->n_layer) m->n_layer = (uint32_t)layer + 1;
    }
}

/* llama.cpp's choice of layers that get more bits in the _M mixes: the
 * first and last eighth, and every third one in between. */
static bool use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static bool is_quantized(uint32_t t) { return t != RL_TYPE_F32 && t != RL_TYPE_F16 && t != RL_TYPE_BF16; }

/* The rules proper (llama_tensor_get_type_impl) for a quantized mix. */
static uint32_t mix_rules(const quantize_mix *mix, const quantize_model *m, const char *name, uint64_t ncols) {
    const uint32_t base = mix->base_type, ft = mix->file_type;
    const category cat = tensor_category(name);
    if (cat == CAT_OUTPUT || (m->tied_output && cat == CAT_TOKEN_EMBD)) {
        /* the output matrix matters most: Q6_K (or Q8_0) */
        if (ncols % (uint64_t)quant_block_size(base) != 0) return RL_TYPE_Q8_0;
        return base == RL_TYPE_Q8_0 ? RL_TYPE_Q8_0 : RL_TYPE_Q6_K;
    }
    if (mix->plain) return base;
    int layer = RL_MAX(tensor_layer(name), 0);
    uint32_t t = base;
    if (cat == CAT_ATTN_V) {
        if ((ft == FTYPE_Q4_K_M || ft == FTYPE_Q5_K_M) && use_more_bits(layer, (int)m->n_attn_v))
            t = RL_TYPE_Q6_K;
        else if (ft == FTYPE_Q4_K_S && layer < 4)
            t = RL_TYPE_Q5_K;
        /* 70B: 8 heads share each attn_v, so it is small; give it more bits */
        bool is_70b = strcmp(m->arch, "llama") == 0 && m->n_layer == 80 && m->n_head != m->n_head_kv;
        if (is_70b && (t == RL_TYPE_Q3_K || t == RL_TYPE_Q4_K)) t = RL_TYPE_Q5_K;
    } else if (cat == CAT_FFN_DOWN) {
        if ((ft == FTYPE_Q4_K_M || ft == FTYPE_Q5_K_M) && use_more_bits(layer, (int)m->n_layer))
            t = RL_TYPE_Q6_K;
        else if (ft == FTYPE_Q4_K_S && layer < (int)m->n_layer / 8)
            t = RL_TYPE_Q5_K;
    }
    return t;
}

/* A type whose blocks fit rows of ncols (llama.cpp's tensor_type_fallback;
 * where it has none and gives up, F16). */
static uint32_t shape_fallback(uint32_t t, uint64_t ncols, bool *fell_back) {
    if (ncols % (uint64_t)quant_block_size(t) == 0) return t;
    *fell_back = true;
    uint32_t f = t == RL_TYPE_Q4_K ? RL_TYPE_Q5_0 : t == RL_TYPE_Q5_K ? RL_TYPE_Q5_1
               : t == RL_TYPE_Q6_K ? RL_TYPE_Q8_0 : RL_TYPE_F16;
    return ncols % (uint64_t)quant_block_size(f) == 0 ? f : RL_TYPE_F16;
}

uint32_t quantize_tensor_type(const quantize_mix *mix, const quantize_model *m, bool pure, const char *name,
                              uint32_t n_dims, const uint64_t *ne, uint32_t cur_type, bool *fell_back) {
    bool dummy;
    if (!fell_back) fell_back = &dummy;
    *fell_back = false;
    if (!quantize_tensor_allowed(name, n_dims, ne)) return cur_type;
    if (!is_quantized(mix->base_type)) return mix->base_type;
    uint32_t t = pure ? mix->base_type : mix_rules(mix, m, name, ne[0]);
    return shape_fallback(t, ne[0], fell_back);
}

/* ------------------------------------------------------------------ */
/* Rows on threads                                                     */
/* ------------------------------------------------------------------ */

typedef struct rows_job {
    uint32_t dst_type, src_type;
    uint8_t *dst;
    const uint8_t *src;
    size_t dst_rb, src_rb;
    int64_t nrows, ncols, chunk;
    atomic_llong next;     /* next chunk to take */
    atomic_llong done;     /* rows finished */
    atomic_llong bad_row;  /* first row found with NaN/Inf, or -1 */
    atomic_int failed;     /* out of memory in a worker */
    void (*report)(void *, int64_t); /* progress, on the calling thread only */
    void *report_ctx;
} rows_job;

static bool all_finite(const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return false;
    return true;
}

/* Takes chunks of rows until none are left. `report` (given on the main
 * thread only) sees the rows finished so far between chunks. */
static void rows_work(rows_job *j, void (*report)(void *, int64_t), void *report_ctx) {
    float *row = malloc(sizeof(float) * (size_t)j->ncols);
    if (!row) {
        atomic_store(&j->failed, 1);
        return;
    }
    for (;;) {
        int64_t c = atomic_fetch_add(&j->next, 1);
        int64_t r0 = c * j->chunk, r1 = RL_MIN(r0 + j->chunk, j->nrows);
        if (r0 >= j->nrows) break;
        for (int64_t r = r0; r < r1; r++) {
            quant_dequantize_row(j->src_type, j->src + (size_t)r * j->src_rb, row, j->ncols);
            if (!all_finite(row, j->ncols)) {
                long long none = -1;
                atomic_compare_exchange_strong(&j->bad_row, &none, (long long)r);
                continue;
            }
            quant_quantize_row(j->dst_type, row, j->dst + (size_t)r * j->dst_rb, j->ncols);
        }
        int64_t done = atomic_fetch_add(&j->done, r1 - r0) + (r1 - r0);
        if (report) report(report_ctx, done);
    }
    free(row);
}

/* A pool task: one worker's share of the chunks (thread 0 is the caller). */
static void rows_task(void *ctx, int task, int thread) {
    rows_job *j = ctx;
    rows_work(j, thread == 0 ? j->report : NULL, j->report_ctx);
}

int quantize_rows(uint32_t dst_type, void *dst, uint32_t src_type, const void *src, int64_t nrows, int64_t ncols,
                  int threads, void (*done)(void *ctx, int64_t rows), void *done_ctx, rl_err *err) {
    uint64_t dst_rb, src_rb;
    if (src_type != RL_TYPE_F32 && src_type != RL_TYPE_F16 && src_type != RL_TYPE_BF16)
        return rl_fail(err, RL_ERR_INPUT, "cannot convert from %s (only from f32, f16, bf16)", rl_type_name(src_type));
    if (ncols <= 0 || nrows < 0 || !rl_type_row_bytes(dst_type, (uint64_t)ncols, &dst_rb) ||
        !rl_type_row_bytes(src_type, (uint64_t)ncols, &src_rb))
        return rl_fail(err, RL_ERR_INPUT, "rows of %lld do not fit %s blocks", (long long)ncols, rl_type_name(dst_type));
    if (!quant_supported(dst_type)) return rl_fail(err, RL_ERR_INPUT, "cannot quantize to %s", rl_type_name(dst_type));
    rows_job j = {.dst_type = dst_type, .src_type = src_type, .dst = dst, .src = src,
                  .dst_rb = (size_t)dst_rb, .src_rb = (size_t)src_rb, .nrows = nrows, .ncols = ncols,
                  .report = done, .report_ctx = done_ctx};
    /* chunks of about 64K weights: small enough to balance, big enough to
     * keep the shared counter cold */
    j.chunk = RL_MAX(1, 65536 / ncols);
    atomic_init(&j.next, 0);
    atomic_init(&j.done, 0);
    atomic_init(&j.bad_row, -1);
    atomic_init(&j.failed, 0);
    int n = threads > 1 ? threads : 1;
    int64_t chunks = (nrows + j.chunk - 1) / j.chunk;
    if (n > chunks) n = (int)RL_MAX(chunks, 1);
    threadpool *tp = n > 1 ? tp_new(n, NULL, NULL) : NULL; /* no threads to be had: the caller alone */
    if (tp) tp_run(tp, rows_task, &j, n);
    else rows_work(&j, done, done_ctx);
    tp_free(tp);
    if (atomic_load(&j.failed) && atomic_load(&j.done) < nrows)
        return rl_fail(err, RL_ERR_INTERNAL, "out of memory for a row of %lld", (long long)ncols);
    long long bad = atomic_load(&j.bad_row);
    if (bad >= 0) return rl_fail(err, RL_ERR_INPUT, "row %lld holds NaN or infinity", bad);
    return 0;
}

/* ------------------------------------------------------------------ */
/* A whole file                                                        */
/* ------------------------------------------------------------------ */

typedef struct qentry {
    char *name;
    int layer;
    const gguf_tensor *src;
    uint64_t src_row_bytes;
    uint32_t type, n_dims;
    bool fell_back;
} qentry;

/* llama.cpp's order (its weights map): by layer, tensors outside the
 * blocks first, then by name. */
static int entry_cmp(const void *a, const void *b) {
    const qentry *x = a, *y = b;
    if (x->layer != y->layer) return x->layer < y->layer ? -1 : 1;
    return strcmp(x->name, y->name);
}

typedef struct qfile {
    qentry *e;
    uint64_t n;
    uint64_t *bytes_before; /* input bytes of the tensors before entry i */
    int threads;
    progress prog;
    bool show;
    uint64_t cur;           /* entry being filled */
} qfile;

/* Progress is counted in input bytes. */
static void report_rows(void *ctx, int64_t rows) {
    qfile *q = ctx;
    if (q->show) progress_update(&q->prog, q->bytes_before[q->cur] + (uint64_t)rows * q->e[q->cur].src_row_bytes);
}

static void report_tensor(void *ctx, uint64_t done, uint64_t total) {
    qfile *q = ctx;
    (void)total;
    if (q->show) progress_update(&q->prog, q->bytes_before[done]);
}

static int fill_tensor(void *ctx, uint64_t index, void *buf, uint64_t size, rl_err *err) {
    qfile *q = ctx;
    const qentry *e = &q->e[index];
    const int64_t ncols = (int64_t)e->src->ne[0];
    const int64_t nrows = (int64_t)(gguf_tensor_nelements(e->src) / e->src->ne[0]);
    (void)size;
    q->cur = index;
    if (quantize_rows(e->type, buf, e->src->type, e->src->data, nrows, ncols, q->threads, report_rows, q, err))
        return rl_fail_prefix(err, "tensor %s: ", e->name);
    return 0;
}

static bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Decides every tensor's type and the output order. */
static int plan_file(const gguf_file *f, const quantize_mix *mix, const quantize_opts *o, qfile *q, rl_err *err) {
    quantize_model m;
    quantize_model_from_file(f, &m);
    q->n = f->n_tensors;
    q->e = calloc(f->n_tensors ? f->n_tensors : 1, sizeof *q->e);
    q->bytes_before = calloc(f->n_tensors + 1, sizeof *q->bytes_before);
    if (!q->e || !q->bytes_before) return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        qentry *e = &q->e[i];
        const gguf_tensor *t = &f->tensors[i];
        e->src = t;
        e->name = malloc(t->name.len + 1);
        if (!e->name) return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
        memcpy(e->name, t->name.ptr, t->name.len);
        e->name[t->name.len] = 0;
        if (strlen(e->name) != t->name.len)
            return rl_fail(err, RL_ERR_INPUT, "%s: tensor %llu: name contains a NUL byte", f->path, (unsigned long long)i);
        e->layer = tensor_layer(e->name);
        e->src_row_bytes = t->size / (gguf_tensor_nelements(t) / t->ne[0]);
        e->n_dims = real_dims(t->n_dims, t->ne);
        e->type = quantize_tensor_type(mix, &m, o->pure, e->name, t->n_dims, t->ne, t->type, &e->fell_back);
        if (e->type != t->type && t->type != RL_TYPE_F32 && t->type != RL_TYPE_F16 && t->type != RL_TYPE_BF16)
            return rl_fail(err, RL_ERR_INPUT,
                           "%s: tensor %s is %s: rackllm quantize converts F32, F16 or BF16 weights, "
                           "not already quantized ones",
                           f->path, e->name, rl_type_name(t->type));
        if (e->fell_back && o->log)
            fprintf(o->log, "rackllm: warning: %s: rows of %llu are not whole blocks of the chosen type: using %s\n",
                    e->name, (unsigned long long)t->ne[0], rl_type_name(e->type));
    }
    qsort(q->e, q->n, sizeof *q->e, entry_cmp);
    for (uint64_t i = 0; i < q->n; i++) q->bytes_before[i + 1] = q->bytes_before[i] + q->e[i].src->size;
    return 0;
}

int quantize_file(const char *in_path, const char *out_path, const quantize_mix *mix, const quantize_opts *opts,
                  quantize_stats *stats, rl_err *err) {
    quantize_opts none = {0};
    const quantize_opts *o = opts ? opts : &none;
    if (same_file(in_path, out_path))
        return rl_fail(err, RL_ERR_INPUT, "%s: the output would overwrite the input", out_path);
    gguf_file *f = gguf_open(in_path, err);
    if (!f) return -1;
    qfile q = {.threads = o->threads};
    gguf_writer *w = NULL;
    int rc = plan_file(f, mix, o, &q, err);
    if (rc == 0) {
        w = gguf_writer_new(3);
        if (!w) rc = rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    }
    if (rc == 0) {
        /* metadata: the input's, then the two keys llama.cpp sets (which
         * it moves to the end), without the split keys it removes */
        static const char *const SKIP[] = {"general.quantization_version", "general.file_type", "split.no",
                                           "split.count", "split.tensors.count", NULL};
        gguf_writer_copy_kv(w, f, SKIP);
        gguf_writer_add_u32(w, "general.quantization_version", QUANTIZATION_VERSION);
        gguf_writer_add_u32(w, "general.file_type", mix->file_type);
        for (uint64_t i = 0; i < q.n && rc == 0; i++) {
            const qentry *e = &q.e[i];
            const void *data = e->type == e->src->type ? e->src->data : NULL;
            rc = gguf_writer_add_tensor(w, e->name, e->type, e->n_dims, e->src->ne, data, err);
        }
    }
    if (rc == 0) {
        q.show = o->progress;
        if (q.show) progress_start(&q.prog, "quantizing", q.bytes_before[q.n]);
        rc = gguf_writer_write(w, out_path, fill_tensor, &q, report_tensor, err);
        if (q.show) progress_done(&q.prog);
    }
    if (rc == 0 && stats) {
        memset(stats, 0, sizeof *stats);
        stats->n_tensors = q.n;
        for (uint64_t i = 0; i < q.n; i++) {
            const qentry *e = &q.e[i];
            uint64_t rb = 0, n = gguf_tensor_nelements(e->src);
            rl_type_row_bytes(e->type, e->src->ne[0], &rb);
            stats->n_converted += e->type != e->src->type;
            stats->n_fallback += e->fell_back;
            stats->bytes_in += e->src->size;
            stats->bytes_out += rb * (n / e->src->ne[0]);
            stats->n_weights += n;
        }
    }
    gguf_writer_free(w);
    for (uint64_t i = 0; i < q.n && q.e; i++) free(q.e[i].name);
    free(q.e);
    free(q.bytes_before);
    gguf_close(f);
    return rc;
}
