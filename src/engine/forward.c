/*
 * forward.c — the Llama-family forward pass (see forward.h), top to bottom:
 *
 *   x = embedding(token)
 *   for each layer:
 *       h = rmsnorm(x) * attn_norm
 *       q, k, v = h Wq, h Wk, h Wv
 *       (qwen2: q, k, v += bq, bk, bv;  qwen3: q, k = rmsnorm per head * q_norm, k_norm)
 *       rope(q, k) at each token's position (pairs as the architecture says)
 *       store k, v in the sequence's cache
 *       x += attention(q, cache) Wo           (causal, grouped-query)
 *       h = rmsnorm(x) * ffn_norm
 *       x += (silu(h Wgate) * (h Wup)) Wdown
 *   logits = (rmsnorm(x) * output_norm) Wout  (only for the rows asked for)
 *
 * Rows are tokens; matrices are multiplied for all rows at once
 * (kern_matmul), the per-row vector work is spread over the thread pool.
 * Attention runs per (run of consecutive tokens of one sequence, KV head),
 * so a prompt chunk's tokens share every K and V row they read.
 */
#include "forward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/quant.h"

struct forward {
    const model *m;
    kernels *k;
    int max_tokens, max_out, max_ctx;
    bool kv_f16;
    int64_t q_dim, kv_dim;
    /* scratch, max_tokens rows each */
    float *x, *h, *q, *kk, *vv, *att, *gate, *up;
    float *out_rows;  /* max_out rows of n_embd: normed rows for logits */
    float *logits;    /* max_out rows of n_vocab */
    float *att_scratch; /* per thread: att_scratch_floats */
    size_t att_scratch_floats;
    int group;        /* query heads per KV head */
    /* the batch's runs of consecutive tokens of one sequence, cut into
     * chunks of at most ATT_CHUNK: attention handles a chunk at once */
    int *run_start, *run_len, n_runs;
};

/* Query tokens of one sequence whose attention is computed together (they
 * share every K and V row they read). */
#define ATT_CHUNK 16

uint64_t forward_kv_bytes(const model *m, int n_ctx, bool kv_f16) {
    const rl_shape *s = &m->shape;
    return (uint64_t)s->n_layer * 2 * (uint64_t)n_ctx * s->n_head_kv * s->head_dim * (kv_f16 ? 2 : 4);
}

uint64_t forward_kv_resident(const model *m, int n_pos, bool kv_f16) {
    const rl_shape *s = &m->shape;
    uint64_t runs = (uint64_t)s->n_layer * 2 * s->n_head_kv, page = 4096;
    return forward_kv_bytes(m, n_pos, kv_f16) + runs * page;
}

void forward_kv_copy(const model *m, bool kv_f16, fw_kv *dst, const fw_kv *src, int n_pos) {
    const rl_shape *s = &m->shape;
    size_t elt = kv_f16 ? 2 : 4, runs = (size_t)s->n_layer * 2 * s->n_head_kv; /* see fw_kv */
    size_t len = (size_t)n_pos * s->head_dim * elt;
    for (size_t r = 0; r < runs; r++)
        memcpy((uint8_t *)dst->data + r * (size_t)dst->n_ctx * s->head_dim * elt,
               (const uint8_t *)src->data + r * (size_t)src->n_ctx * s->head_dim * elt, len);
}

forward *forward_new(const model *m, kernels *k, int max_tokens, int max_out, int max_ctx, bool kv_f16,
                     rl_err *err) {
    forward *f = rl_calloc(1, sizeof *f, err);
    if (!f) return NULL;
    const rl_shape *s = &m->shape;
    f->m = m;
    f->k = k;
    f->max_tokens = max_tokens;
    f->max_out = max_out;
    f->max_ctx = max_ctx;
    f->kv_f16 = kv_f16;
    f->q_dim = (int64_t)s->n_head * s->head_dim;
    f->kv_dim = (int64_t)s->n_head_kv * s->head_dim;
    f->group = (int)(s->n_head / s->n_head_kv);
    size_t T = (size_t)max_tokens;
    f->att_scratch_floats = (KERN_ATTN_SCRATCH(ATT_CHUNK, f->group, max_ctx, s->head_dim) + 15) / 16 * 16;
    float **bufs[] = {&f->x, &f->h, &f->q, &f->kk, &f->vv, &f->att, &f->gate, &f->up, &f->out_rows, &f->logits,
                      &f->att_scratch};
    size_t sizes[] = {T * s->n_embd, T * s->n_embd, T * f->q_dim, T * f->kv_dim, T * f->kv_dim, T * f->q_dim,
                      T * s->n_ff, T * s->n_ff, (size_t)max_out * s->n_embd, (size_t)max_out * s->n_vocab,
                      (size_t)kern_threads(k) * f->att_scratch_floats};
    for (size_t i = 0; i < RL_ARRAY_LEN(bufs); i++) {
        *bufs[i] = rl_aligned_alloc(sizes[i] * sizeof(float), err);
        if (!*bufs[i]) {
            forward_free(f);
            return NULL;
        }
    }
    f->run_start = rl_calloc(T, sizeof *f->run_start, err);
    f->run_len = f->run_start ? rl_calloc(T, sizeof *f->run_len, err) : NULL;
    if (!f->run_len) {
        forward_free(f);
        return NULL;
    }
    return f;
}

void forward_free(forward *f) {
    if (!f) return;
    float *bufs[] = {f->x, f->h, f->q, f->kk, f->vv, f->att, f->gate, f->up, f->out_rows, f->logits, f->att_scratch};
    for (size_t i = 0; i < RL_ARRAY_LEN(bufs); i++) free(bufs[i]);
    free(f->run_start);
    free(f->run_len);
    free(f);
}

/* ---- per-row work, spread over the pool ---- */

typedef struct row_job {
    forward *f;
    const fw_batch *b;
    int layer;
    const float *norm; /* rmsnorm weights for norm_rows */
} row_job;

static void norm_rows(void *ctx, int t, int thread) {
    (void)thread;
    row_job *j = ctx;
    int64_t d = j->f->m->shape.n_embd;
    kern_rmsnorm(j->f->k, j->f->h + t * d, j->f->x + t * d, j->norm, d, j->f->m->shape.rms_eps);
}

/* Where position pos of KV head h of layer l starts in a cache: K (which 0)
 * or V (1), see fw_kv. */
static uint8_t *kv_at(const forward *f, const fw_kv *kv, int l, int which, int h, int pos) {
    const rl_shape *s = &f->m->shape;
    size_t run = (size_t)kv->n_ctx * s->head_dim; /* one head's positions */
    size_t at = (((size_t)l * 2 + (size_t)which) * s->n_head_kv + (size_t)h) * run + (size_t)pos * s->head_dim;
    return (uint8_t *)kv->data + at * (f->kv_f16 ? 2 : 4);
}

/* Each head of x (n_heads of head_dim) RMS-normed in place, times w. */
static void norm_heads(const forward *f, float *x, int n_heads, const float *w) {
    const rl_shape *s = &f->m->shape;
    for (int h = 0; h < n_heads; h++)
        kern_rmsnorm(f->k, x + (size_t)h * s->head_dim, x + (size_t)h * s->head_dim, w, s->head_dim, s->rms_eps);
}

/* What the architecture does to q, k, v of row t before RoPE (biases, per
 * head norms), RoPE on q and k, then k and v into the cache at pos[t]. */
static void rope_store_rows(void *ctx, int t, int thread) {
    (void)thread;
    row_job *j = ctx;
    forward *f = j->f;
    const rl_shape *s = &f->m->shape;
    const model_layer *L = &f->m->layers[j->layer];
    float *q = f->q + t * f->q_dim, *k = f->kk + t * f->kv_dim, *v = f->vv + t * f->kv_dim;
    if (L->bq) {
        kern_add(f->k, q, L->bq, f->q_dim);
        kern_add(f->k, k, L->bk, f->kv_dim);
        kern_add(f->k, v, L->bv, f->kv_dim);
    }
    if (L->q_norm) {
        norm_heads(f, q, (int)s->n_head, L->q_norm);
        norm_heads(f, k, (int)s->n_head_kv, L->k_norm);
    }
    int32_t pos = j->b->pos[t];
    bool neox = s->rope_type == RL_ROPE_NEOX;
    const float *ff = f->m->rope_freqs;
    kern_rope(q, (int)s->n_head, (int)s->head_dim, pos, s->rope_base, f->m->rope_freq_scale, ff, neox);
    kern_rope(k, (int)s->n_head_kv, (int)s->head_dim, pos, s->rope_base, f->m->rope_freq_scale, ff, neox);
    const fw_kv *kv = j->b->kv[t];
    for (int h = 0; h < (int)s->n_head_kv; h++) {
        const float *kh = k + (size_t)h * s->head_dim, *vh = v + (size_t)h * s->head_dim;
        uint8_t *kdst = kv_at(f, kv, j->layer, 0, h, pos), *vdst = kv_at(f, kv, j->layer, 1, h, pos);
        if (f->kv_f16) {
            kern_to_f16(f->k, (rl_f16 *)kdst, kh, s->head_dim);
            kern_to_f16(f->k, (rl_f16 *)vdst, vh, s->head_dim);
        } else {
            memcpy(kdst, kh, (size_t)s->head_dim * 4);
            memcpy(vdst, vh, (size_t)s->head_dim * 4);
        }
    }
}

/* Task = (chunk of a run, kv head): the chunk's tokens times the query
 * heads that share that kv head. */
static void attention_task(void *ctx, int task, int thread) {
    row_job *j = ctx;
    forward *f = j->f;
    const rl_shape *s = &f->m->shape;
    int c = task / (int)s->n_head_kv, kvh = task % (int)s->n_head_kv;
    int t0 = f->run_start[c], n = f->run_len[c];
    const fw_kv *kv = j->b->kv[t0];
    const uint8_t *K = kv_at(f, kv, j->layer, 0, kvh, 0), *V = kv_at(f, kv, j->layer, 1, kvh, 0);
    int64_t first = t0 * f->q_dim + (int64_t)kvh * f->group * s->head_dim;
    kern_attn a = {.out = f->att + first, .q = f->q + first, .q_stride = f->q_dim, .n_tok = n, .n_q = f->group,
                   .K = K, .V = V, .kv_f16 = f->kv_f16, .head_dim = (int)s->head_dim, .stride = s->head_dim,
                   .n_pos = j->b->pos[t0 + n - 1] + 1, .scale = 1.0f / sqrtf((float)s->head_dim),
                   .scratch = f->att_scratch + (size_t)thread * f->att_scratch_floats};
    kern_attention(f->k, &a);
}

/* Cuts the batch into runs of consecutive positions of one sequence, at
 * most ATT_CHUNK tokens each. */
static void find_runs(forward *f, const fw_batch *b) {
    f->n_runs = 0;
    for (int t = 0; t < b->n; t++) {
        int r = f->n_runs - 1;
        bool extends = r >= 0 && b->kv[t] == b->kv[t - 1] && b->pos[t] == b->pos[t - 1] + 1 &&
                       f->run_len[r] < ATT_CHUNK;
        if (extends) {
            f->run_len[r]++;
        } else {
            f->run_start[f->n_runs] = t;
            f->run_len[f->n_runs++] = 1;
        }
    }
}

static void swiglu_rows(void *ctx, int t, int thread) {
    (void)thread;
    row_job *j = ctx;
    int64_t n = j->f->m->shape.n_ff;
    kern_swiglu(j->f->k, j->f->gate + t * n, j->f->gate + t * n, j->f->up + t * n, n);
}

static void residual_rows(void *ctx, int t, int thread) {
    (void)thread;
    row_job *j = ctx;
    int64_t d = j->f->m->shape.n_embd;
    kern_add(j->f->k, j->f->x + t * d, j->f->h + t * d, d);
}

static void layer(forward *f, const fw_batch *b, int l) {
    const rl_shape *s = &f->m->shape;
    const model_layer *L = &f->m->layers[l];
    threadpool *tp = kern_pool(f->k);
    int n = b->n;
    row_job j = {f, b, l, L->attn_norm};

    uint64_t row_work = (uint64_t)n * s->n_embd * 4;
    tp_run_sized(tp, norm_rows, &j, n, row_work);
    const kern_matrix *qkv[3] = {&L->wq, &L->wk, &L->wv};
    float *qkv_out[3] = {f->q, f->kk, f->vv};
    int64_t qkv_ld[3] = {f->q_dim, f->kv_dim, f->kv_dim};
    kern_matmul_multi(f->k, qkv, 3, f->h, n, qkv_out, qkv_ld);
    tp_run_sized(tp, rope_store_rows, &j, n, (uint64_t)n * (f->q_dim + 2 * f->kv_dim) * 8);
    uint64_t att_work = 0;
    for (int t = 0; t < n; t++) att_work += (uint64_t)(b->pos[t] + 1) * (uint64_t)f->q_dim * 2;
    tp_run_sized(tp, attention_task, &j, f->n_runs * (int)s->n_head_kv, att_work);
    kern_matmul(f->k, &L->wo, f->att, n, f->h, s->n_embd);
    tp_run_sized(tp, residual_rows, &j, n, row_work);

    j.norm = L->ffn_norm;
    tp_run_sized(tp, norm_rows, &j, n, row_work);
    const kern_matrix *gu[2] = {&L->w_gate, &L->w_up};
    float *gu_out[2] = {f->gate, f->up};
    int64_t gu_ld[2] = {s->n_ff, s->n_ff};
    kern_matmul_multi(f->k, gu, 2, f->h, n, gu_out, gu_ld);
    tp_run_sized(tp, swiglu_rows, &j, n, (uint64_t)n * s->n_ff * 16);
    kern_matmul(f->k, &L->w_down, f->gate, n, f->h, s->n_embd);
    tp_run_sized(tp, residual_rows, &j, n, row_work);
}

static int check_batch(const forward *f, const fw_batch *b, rl_err *err) {
    if (b->n < 1 || b->n > f->max_tokens || b->n_out > f->max_out)
        return rl_fail(err, RL_ERR_INTERNAL, "batch of %d tokens / %d outputs exceeds %d / %d", b->n, b->n_out,
                       f->max_tokens, f->max_out);
    for (int t = 0; t < b->n; t++) {
        if (b->token[t] < 0 || (uint32_t)b->token[t] >= f->m->shape.n_vocab)
            return rl_fail(err, RL_ERR_INPUT, "token id %d is outside the vocabulary (0..%u)", b->token[t],
                           f->m->shape.n_vocab - 1);
        if (b->pos[t] < 0 || b->pos[t] >= b->kv[t]->n_ctx || b->pos[t] >= f->max_ctx)
            return rl_fail(err, RL_ERR_INPUT, "position %d is outside the context of %d tokens", b->pos[t],
                           b->kv[t]->n_ctx);
    }
    for (int i = 0; i < b->n_out; i++)
        if (b->out_rows[i] < 0 || b->out_rows[i] >= b->n)
            return rl_fail(err, RL_ERR_INTERNAL, "output row %d is not in the batch", b->out_rows[i]);
    return 0;
}

int forward_run(forward *f, const fw_batch *b, rl_err *err) {
    if (check_batch(f, b, err)) return -1;
    const model *m = f->m;
    int64_t d = m->shape.n_embd;
    for (int t = 0; t < b->n; t++) {
        const uint8_t *row = (const uint8_t *)m->tok_embd.data + (size_t)b->token[t] * m->tok_embd.row_bytes;
        quant_dequantize_row(m->tok_embd.type, row, f->x + t * d, d);
    }
    find_runs(f, b);
    for (uint32_t l = 0; l < m->shape.n_layer; l++) layer(f, b, (int)l);
    if (b->n_out == 0) return 0;
    for (int i = 0; i < b->n_out; i++)
        kern_rmsnorm(f->k, f->out_rows + i * d, f->x + (int64_t)b->out_rows[i] * d, m->output_norm, d, m->shape.rms_eps);
    kern_matmul(f->k, &m->output, f->out_rows, b->n_out, f->logits, m->shape.n_vocab);
    for (int i = 0; i < b->n_out; i++)
        memcpy(b->out_logits[i], f->logits + (size_t)i * m->shape.n_vocab, (size_t)m->shape.n_vocab * sizeof(float));
    return 0;
}

/* ---- what attention costs per token of context ---- */

/* Attention alone, every layer, for one token at position n_pos - 1 of
 * cache kv (the q rows as they happen to be: only the time matters). */
static void attention_only(forward *f, fw_kv *kv, int n_pos) {
    const rl_shape *s = &f->m->shape;
    int32_t pos = n_pos - 1, tok = 0;
    fw_kv *kvs[1] = {kv};
    fw_batch b = {.n = 1, .token = &tok, .pos = &pos, .kv = kvs};
    f->run_start[0] = 0;
    f->run_len[0] = 1;
    f->n_runs = 1;
    uint64_t work = (uint64_t)n_pos * (uint64_t)f->q_dim * 2;
    for (uint32_t l = 0; l < s->n_layer; l++) {
        row_job j = {f, &b, (int)l, NULL};
        tp_run_sized(kern_pool(f->k), attention_task, &j, (int)s->n_head_kv, work);
    }
}

int forward_attention_cost(forward *f, double *per_token, rl_err *err) {
    /* Enough positions that their cache (about 64 MiB) does not sit in a
     * last-level cache: a server's many sessions stream theirs from
     * memory. */
    uint64_t per_pos = forward_kv_bytes(f->m, 1, f->kv_f16);
    int n_pos = (int)RL_MAX(16, RL_MIN((uint64_t)f->max_ctx, (64u << 20) / RL_MAX(per_pos, 1)));
    n_pos = RL_MIN(n_pos, f->max_ctx);
    fw_kv kv = {.n_ctx = n_pos, .data = malloc(forward_kv_bytes(f->m, n_pos, f->kv_f16))};
    if (!kv.data) return rl_fail(err, RL_ERR_INTERNAL, "out of memory for the attention probe");
    /* small normal numbers in F16 and F32 alike (and pages really mapped) */
    memset(kv.data, 0x10, forward_kv_bytes(f->m, n_pos, f->kv_f16));
    memset(f->q, 0, (size_t)f->q_dim * sizeof *f->q);
    double best = INFINITY;
    for (int r = 0; r < 5; r++) { /* the fastest of five: noise only adds */
        double t0 = rl_now();
        attention_only(f, &kv, n_pos);
        best = fmin(best, rl_now() - t0);
    }
    free(kv.data);
    /* The whole time over the positions: the few dispatches per layer
     * count as context too, a little on the safe side. */
    *per_token = best / n_pos;
    return 0;
}
