/*
 * model.c — finding and checking a Llama-family model's tensors in a GGUF file
 * (see model.h). The tensor names and shapes are llama.cpp's:
 *
 *   token_embd.weight        [n_embd, n_vocab]
 *   blk.N.attn_norm.weight   [n_embd]
 *   blk.N.attn_q.weight      [n_embd, n_head * head_dim]
 *   blk.N.attn_k/v.weight    [n_embd, n_head_kv * head_dim]
 *   blk.N.attn_output.weight [n_head * head_dim, n_embd]
 *   blk.N.ffn_norm.weight    [n_embd]
 *   blk.N.ffn_gate/up.weight [n_embd, n_ff]
 *   blk.N.ffn_down.weight    [n_ff, n_embd]
 *   output_norm.weight       [n_embd]
 *   output.weight            [n_embd, n_vocab]   (absent: tied to token_embd)
 *   rope_freqs.weight        [head_dim / 2]      (Llama 3.1 scaling, optional)
 * and as the architecture asks (rl_arch in shape.h):
 *   blk.N.attn_q/k/v.bias    [n_head(_kv) * head_dim]  (qwen2)
 *   blk.N.attn_q_norm/attn_k_norm.weight [head_dim]    (qwen3)
 *
 * (GGUF lists the fastest-varying dimension first, so [cols, rows].)
 */
#include "model.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "base/progress.h"
#include "kernels/quant.h"

typedef struct loader {
    model *m;
    gguf_file *f;
    rl_err *err;
    float *floats; /* next free slot in m->floats */
} loader;

static int find(loader *L, const char *name, uint64_t cols, uint64_t rows, const gguf_tensor **out) {
    const gguf_tensor *t = gguf_find_tensor(L->f, name);
    if (!t) return rl_fail(L->err, RL_ERR_INPUT, "%s: missing tensor %s", L->f->path, name);
    if (t->n_dims > 2 || t->ne[0] != cols || t->ne[1] != rows)
        return rl_fail(L->err, RL_ERR_INPUT,
                       "%s: tensor %s has shape [%llu, %llu, %llu, %llu], expected [%llu, %llu] for these hyper-parameters",
                       L->f->path, name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                       (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], (unsigned long long)cols,
                       (unsigned long long)rows);
    if (!quant_supported(t->type))
        return rl_fail(L->err, RL_ERR_INPUT, "%s: tensor %s has type %s, which rackllm does not support", L->f->path,
                       name, rl_type_name(t->type));
    *out = t;
    return 0;
}

static int matrix(loader *L, const char *name, uint64_t cols, uint64_t rows, kern_matrix *mx) {
    const gguf_tensor *t;
    if (find(L, name, cols, rows, &t)) return -1;
    mx->data = t->data;
    mx->type = t->type;
    mx->cols = (int64_t)cols;
    mx->rows = (int64_t)rows;
    mx->row_bytes = (size_t)(t->size / rows);
    return 0;
}

/* A small vector (norm weights, biases, rope factors) converted to floats. */
static int vector(loader *L, const char *name, uint64_t n, const float **out) {
    const gguf_tensor *t;
    if (find(L, name, n, 1, &t)) return -1;
    quant_dequantize_row(t->type, t->data, L->floats, (int64_t)n);
    *out = L->floats;
    L->floats += n;
    return 0;
}

static int load_layer(loader *L, uint32_t i, model_layer *ly) {
    const rl_shape *s = &L->m->shape;
    uint64_t d = s->n_embd, q = (uint64_t)s->n_head * s->head_dim, kv = (uint64_t)s->n_head_kv * s->head_dim;
    char name[96];
#define NAME(x) (snprintf(name, sizeof name, "blk.%u." x ".weight", i), name)
#define BIAS(x) (snprintf(name, sizeof name, "blk.%u." x ".bias", i), name)
    if (vector(L, NAME("attn_norm"), d, &ly->attn_norm) || matrix(L, NAME("attn_q"), d, q, &ly->wq) ||
        matrix(L, NAME("attn_k"), d, kv, &ly->wk) || matrix(L, NAME("attn_v"), d, kv, &ly->wv) ||
        matrix(L, NAME("attn_output"), q, d, &ly->wo) || vector(L, NAME("ffn_norm"), d, &ly->ffn_norm) ||
        matrix(L, NAME("ffn_gate"), d, s->n_ff, &ly->w_gate) || matrix(L, NAME("ffn_up"), d, s->n_ff, &ly->w_up) ||
        matrix(L, NAME("ffn_down"), s->n_ff, d, &ly->w_down))
        return -1;
    if (s->qkv_bias && (vector(L, BIAS("attn_q"), q, &ly->bq) || vector(L, BIAS("attn_k"), kv, &ly->bk) ||
                        vector(L, BIAS("attn_v"), kv, &ly->bv)))
        return -1;
    if (s->qk_norm && (vector(L, NAME("attn_q_norm"), s->head_dim, &ly->q_norm) ||
                       vector(L, NAME("attn_k_norm"), s->head_dim, &ly->k_norm)))
        return -1;
#undef NAME
#undef BIAS
    return 0;
}

/* The matrices that are multiplied (every layer's and the output; the
 * embeddings are only looked up, unless tied to the output). */
static int for_each_product_matrix(model *m, int (*fn)(kern_matrix *, rl_err *), rl_err *err) {
    for (uint32_t i = 0; m->layers && i < m->shape.n_layer; i++) {
        model_layer *l = &m->layers[i];
        kern_matrix *ms[] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->w_gate, &l->w_up, &l->w_down};
        for (size_t j = 0; j < RL_ARRAY_LEN(ms); j++)
            if (ms[j]->data && fn(ms[j], err)) return -1;
    }
    return m->output.data ? fn(&m->output, err) : 0;
}

/* After packing: the original bytes of a packed matrix are no longer read
 * (only the reference kernels would, and they fault them back in from the
 * file), so its whole pages leave this process's resident set. Only for a
 * file mapping: there MADV_DONTNEED drops clean pages, it never loses data. */
static int release_original(kern_matrix *w, rl_err *err) {
    (void)err;
    if (!w->packed) return 0;
    uintptr_t start = ((uintptr_t)w->data + 4095) & ~(uintptr_t)4095;
    uintptr_t end = ((uintptr_t)w->data + w->row_bytes * (size_t)w->rows) & ~(uintptr_t)4095;
    if (end > start) madvise((void *)start, end - start, MADV_DONTNEED);
    return 0;
}

static int unpack_matrix(kern_matrix *w, rl_err *err) {
    (void)err;
    kern_matrix_unpack(w);
    return 0;
}

/* Reads every page of the weights so the first tokens do not pay for page
 * faults, with a progress bar. */
static void prefault(const gguf_file *f, bool show) {
    progress p;
    uint64_t total = f->size - f->data_offset, step = 64u << 20;
    progress_start(&p, "loading", total);
    if (!show) p.enabled = false;
    const volatile uint8_t *base = f->map + f->data_offset;
    madvise((void *)((uintptr_t)base & ~(uintptr_t)4095), total, MADV_WILLNEED);
    uint8_t sink = 0;
    for (uint64_t off = 0; off < total; off += step) {
        uint64_t end = RL_MIN(off + step, total);
        for (uint64_t o = off; o < end; o += 4096) sink ^= base[o];
        progress_update(&p, end);
    }
    (void)sink;
    progress_done(&p);
}

/* Floats of the vectors copied at load: norms, biases, rope factors. */
static size_t model_float_count(const rl_shape *s) {
    size_t per_layer = 2 * (size_t)s->n_embd;
    if (s->qkv_bias) per_layer += (size_t)(s->n_head + 2 * s->n_head_kv) * s->head_dim;
    if (s->qk_norm) per_layer += 2 * (size_t)s->head_dim;
    return per_layer * s->n_layer + s->n_embd + s->head_dim;
}

model *model_from_gguf(gguf_file *f, const model_load_params *p, rl_err *err) {
    model *m = rl_calloc(1, sizeof *m, err);
    if (!m) return NULL;
    m->file = f;
    loader L = {m, f, err, NULL};
    rl_shape *s = &m->shape;
    if (shape_from_gguf(f, s, err)) goto fail;
    m->layers = rl_calloc(s->n_layer, sizeof *m->layers, err);
    m->floats = rl_calloc(model_float_count(s), sizeof(float), err);
    if (!m->layers || !m->floats) goto fail;
    L.floats = m->floats;
    if (matrix(&L, "token_embd.weight", s->n_embd, s->n_vocab, &m->tok_embd) ||
        vector(&L, "output_norm.weight", s->n_embd, &m->output_norm))
        goto fail;
    if (s->tied_embeddings) m->output = m->tok_embd;
    else if (matrix(&L, "output.weight", s->n_embd, s->n_vocab, &m->output)) goto fail;
    if (s->rope_scaling == RL_ROPE_SCALING_LLAMA3 && vector(&L, "rope_freqs.weight", s->head_dim / 2, &m->rope_freqs))
        goto fail;
    m->rope_freq_scale = s->rope_scaling == RL_ROPE_SCALING_LINEAR ? 1.0f / s->rope_factor : 1.0f;
    for (uint32_t i = 0; i < s->n_layer; i++)
        if (load_layer(&L, i, &m->layers[i])) goto fail;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        m->n_params += gguf_tensor_nelements(&f->tensors[i]);
        m->weight_bytes += f->tensors[i].size;
    }
    /* the kernels' own layout of the weights, made once (kernels.h) */
    if (for_each_product_matrix(m, kern_matrix_pack, err)) goto fail;
    m->tok = tok_load(f, err);
    if (!m->tok) goto fail;
    if (tok_n_vocab(m->tok) > (int32_t)s->n_vocab) {
        rl_fail(err, RL_ERR_INPUT, "%s: the tokenizer has %d tokens but the embeddings only %u rows", f->path,
                tok_n_vocab(m->tok), s->n_vocab);
        goto fail;
    }
    gguf_str tmpl;
    if (gguf_get_str(f, "tokenizer.chat_template", &tmpl)) {
        m->chat_template = strndup(tmpl.ptr, tmpl.len);
        if (!m->chat_template) { rl_fail(err, RL_ERR_INTERNAL, "out of memory"); goto fail; }
    }
    if (p && p->prefault) prefault(f, p->progress);
    if (f->mapped) for_each_product_matrix(m, release_original, err);
    return m;
fail:
    m->file = NULL; /* the caller still owns f on failure */
    model_free(m);
    return NULL;
}

model *model_load(const char *path, const model_load_params *p, rl_err *err) {
    gguf_file *f = gguf_open(path, err);
    if (!f) return NULL;
    model *m = model_from_gguf(f, p, err);
    if (!m) gguf_close(f);
    return m;
}

void model_free(model *m) {
    if (!m) return;
    for_each_product_matrix(m, unpack_matrix, NULL);
    tok_free(m->tok);
    free(m->chat_template);
    free(m->layers);
    free(m->floats);
    gguf_close(m->file);
    free(m);
}

uint64_t model_bytes_per_token(const model *m) {
    uint64_t b = (uint64_t)m->output.row_bytes * (uint64_t)m->output.rows + m->tok_embd.row_bytes;
    for (uint32_t i = 0; i < m->shape.n_layer; i++) {
        const model_layer *l = &m->layers[i];
        const kern_matrix *ms[] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->w_gate, &l->w_up, &l->w_down};
        for (size_t j = 0; j < RL_ARRAY_LEN(ms); j++) b += ms[j]->row_bytes * (uint64_t)ms[j]->rows;
    }
    return b;
}
