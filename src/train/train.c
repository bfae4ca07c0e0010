/*
 * train.c — one training step of a Llama-family model, top to bottom (see
 * train.h), in the spirit of llm.c's train_gpt2.c:
 *
 *   the layout      every weight's place in one flat F32 buffer
 *   the ops         forward and backward of RMSNorm, RoPE, attention,
 *                   SwiGLU, the matrix product, the loss (train_ops.h)
 *   the trainer     buffers sized once: weights, gradients, AdamW moments,
 *                   every activation the backward pass reads
 *   tr_forward      embedding -> layers -> norm -> logits -> loss
 *   tr_backward     the same in reverse, every weight's gradient
 *   tr_update       global-norm clipping, AdamW, warm-up + cosine schedule
 *
 * Per layer the forward pass keeps: x (the residual stream coming in), the
 * normed rows and their 1/rms, q and k after RoPE, v, the attention
 * probabilities, the attention output, x after attention, the second normed
 * rows, gate, up and silu(gate) * up. The backward pass runs one gradient
 * buffer `dx` down the residual stream: each residual add passes it
 * through, each branch adds its share.
 */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/threadpool.h"
#include "base/types.h"
#include "kernels/kernels.h"
#include "train_ops.h"

/* ================================================================== */
/* the layout                                                         */
/* ================================================================== */

static void add_tensor(tr_layout *L, const char *name, int64_t rows, int64_t cols) {
    tr_tensor *t = &L->t[L->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows;
    t->cols = cols;
    t->offset = L->n_floats;
    t->decay = rows > 1;
    L->n_floats += (size_t)rows * (size_t)cols;
}

static int check_shape(const rl_shape *s, rl_err *err) {
    if (!s->n_vocab || !s->n_embd || !s->n_layer || !s->n_head || !s->n_head_kv || !s->n_ff || !s->head_dim)
        return rl_fail(err, RL_ERR_INPUT, "the shape has a zero size (vocabulary %u, embedding %u, layers %u, "
                       "heads %u, KV heads %u, feed-forward %u, head size %u)", s->n_vocab, s->n_embd, s->n_layer,
                       s->n_head, s->n_head_kv, s->n_ff, s->head_dim);
    if (s->n_head % s->n_head_kv)
        return rl_fail(err, RL_ERR_INPUT, "%u KV heads do not divide %u attention heads", s->n_head_kv, s->n_head);
    if (s->head_dim % 2 || s->head_dim > 1024)
        return rl_fail(err, RL_ERR_INPUT, "head size %u must be even and at most 1024 (RoPE turns pairs)", s->head_dim);
    if (s->n_embd > (1u << 16) || s->n_ff > (1u << 20) || s->n_layer > 1024 || s->n_vocab > (1u << 24))
        return rl_fail(err, RL_ERR_INPUT, "the shape is too large to train here");
    if (!(s->rms_eps > 0) || !(s->rope_base > 0))
        return rl_fail(err, RL_ERR_INPUT, "rms epsilon and rope base must be positive");
    return 0;
}

int tr_layout_init(tr_layout *L, const rl_shape *s, rl_err *err) {
    memset(L, 0, sizeof *L);
    if (check_shape(s, err)) return -1;
    L->s = *s;
    L->t = rl_calloc((size_t)s->n_layer * TR_PER_LAYER + 3, sizeof *L->t, err);
    if (!L->t) return -1;
    int64_t d = s->n_embd, q = (int64_t)s->n_head * s->head_dim, kv = (int64_t)s->n_head_kv * s->head_dim;
    add_tensor(L, "token_embd.weight", s->n_vocab, d);
    add_tensor(L, "output_norm.weight", 1, d);
    if (!s->tied_embeddings) add_tensor(L, "output.weight", s->n_vocab, d);
    L->first_layer_tensor = L->n_tensors;
    char name[48];
    for (uint32_t l = 0; l < s->n_layer; l++) {
#define N(x) (snprintf(name, sizeof name, "blk.%u." x ".weight", l), name)
        add_tensor(L, N("attn_norm"), 1, d);
        add_tensor(L, N("attn_q"), q, d);
        add_tensor(L, N("attn_k"), kv, d);
        add_tensor(L, N("attn_v"), kv, d);
        add_tensor(L, N("attn_output"), d, q);
        add_tensor(L, N("ffn_norm"), 1, d);
        add_tensor(L, N("ffn_gate"), s->n_ff, d);
        add_tensor(L, N("ffn_up"), s->n_ff, d);
        add_tensor(L, N("ffn_down"), d, s->n_ff);
#undef N
    }
    L->rope_freq_scale = s->rope_scaling == RL_ROPE_SCALING_LINEAR && s->rope_factor > 0 ? 1.0f / s->rope_factor : 1.0f;
    if (s->rope_scaling == RL_ROPE_SCALING_LLAMA3) {
        L->rope_freqs = rl_calloc(s->head_dim / 2, sizeof(float), err);
        if (!L->rope_freqs) {
            tr_layout_free(L);
            return -1;
        }
        shape_llama3_rope_freqs(s, L->rope_freqs);
    }
    return 0;
}

void tr_layout_free(tr_layout *L) {
    free(L->t);
    free(L->rope_freqs);
    memset(L, 0, sizeof *L);
}

int tr_layout_find(const tr_layout *L, const char *name) {
    for (int i = 0; i < L->n_tensors; i++)
        if (strcmp(L->t[i].name, name) == 0) return i;
    return -1;
}

int tr_layer_tensor(const tr_layout *L, int layer, int kind) {
    return L->first_layer_tensor + layer * TR_PER_LAYER + kind;
}

/* One layer's tensors inside a buffer laid out by L (weights, gradients). */
typedef struct layer_w {
    float *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *gate, *up, *down;
} layer_w;

static layer_w layer_view(const tr_layout *L, float *base, int l) {
    float *p[TR_PER_LAYER];
    for (int k = 0; k < TR_PER_LAYER; k++) p[k] = base + L->t[tr_layer_tensor(L, l, k)].offset;
    return (layer_w){p[TR_ATTN_NORM], p[TR_WQ], p[TR_WK], p[TR_WV], p[TR_WO], p[TR_FFN_NORM], p[TR_GATE], p[TR_UP],
                     p[TR_DOWN]};
}

static float *output_matrix(const tr_layout *L, float *base) {
    return base + L->t[L->s.tied_embeddings ? 0 : 2].offset;
}

/* ================================================================== */
/* the ops                                                            */
/* ================================================================== */

/* ---- RMSNorm ---- */

typedef struct norm_job {
    float *y, *rstd, *dx;
    const float *x, *w, *dy, *rstd_in;
    int64_t d;
    float eps;
} norm_job;

static void norm_fwd_task(void *ctx, int r, int thread) {
    (void)thread;
    const norm_job *j = ctx;
    const int64_t d = j->d;
    const float *x = j->x + (size_t)r * d, *w = j->w;
    float *restrict y = j->y + (size_t)r * d;
    double ss = 0; /* in double, as kern_rmsnorm */
    for (int64_t i = 0; i < d; i++) ss += (double)(x[i] * x[i]);
    float rs = 1.0f / sqrtf((float)(ss / (double)d) + j->eps);
    j->rstd[r] = rs;
    for (int64_t i = 0; i < d; i++) y[i] = x[i] * rs * w[i];
}

void tro_rmsnorm_fwd(threadpool *tp, float *y, float *rstd, const float *x, const float *w, int n, int64_t d,
                     float eps) {
    norm_job j = {.y = y, .rstd = rstd, .x = x, .w = w, .d = d, .eps = eps};
    tp_run_sized(tp, norm_fwd_task, &j, n, (uint64_t)n * (uint64_t)d * 4);
}

/* y = x * r * w with r = 1/rms(x): dx = r * (dy*w - x * r * mean(dy*w*x*r)). */
static void norm_bwd_task(void *ctx, int r, int thread) {
    (void)thread;
    const norm_job *j = ctx;
    const int64_t d = j->d;
    const float *x = j->x + (size_t)r * d, *dy = j->dy + (size_t)r * d, *w = j->w;
    float *restrict dx = j->dx + (size_t)r * d;
    const float rs = j->rstd_in[r];
    double dot = 0;
    for (int64_t i = 0; i < d; i++) dot += (double)(dy[i] * w[i] * x[i] * rs);
    const float m = (float)(dot / (double)d);
    for (int64_t i = 0; i < d; i++) dx[i] += rs * (dy[i] * w[i] - x[i] * rs * m);
}

void tro_rmsnorm_bwd(threadpool *tp, float *dx, float *dw, const float *dy, const float *x, const float *w,
                     const float *rstd, int n, int64_t d) {
    norm_job j = {.dx = dx, .x = x, .w = w, .dy = dy, .rstd_in = rstd, .d = d};
    tp_run_sized(tp, norm_bwd_task, &j, n, (uint64_t)n * (uint64_t)d * 6);
    /* dw: one pass over the rows in order (cheap next to the products) */
    memset(dw, 0, (size_t)d * sizeof *dw);
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * d, *dyr = dy + (size_t)r * d;
        for (int64_t i = 0; i < d; i++) dw[i] += dyr[i] * xr[i] * rstd[r];
    }
}

/* ---- RoPE ---- */

typedef struct rope_job {
    float *x;
    const tro_rope *r;
    bool inverse;
} rope_job;

static void rope_task(void *ctx, int row, int thread) {
    (void)thread;
    const rope_job *j = ctx;
    const tro_rope *r = j->r;
    int32_t pos = row % r->seq_len;
    float *x = j->x + (size_t)row * r->n_head * r->head_dim;
    /* The inverse turns by -theta: kern_rope's angles for -pos are exactly
     * the negated ones (cos even, sin odd), so this is the transpose. */
    kern_rope(x, r->n_head, r->head_dim, j->inverse ? -pos : pos, r->base, r->freq_scale, r->freqs, false);
}

void tro_rope_rows(threadpool *tp, float *x, int n, const tro_rope *r, bool inverse) {
    rope_job j = {x, r, inverse};
    tp_run_sized(tp, rope_task, &j, n, (uint64_t)n * (uint64_t)r->n_head * (uint64_t)r->head_dim * 8);
}

/* ---- causal grouped-query attention ---- */

/* Floats of a thread's attention scratch: a transposed K or V head, and
 * one row of scores. */
#define ATTN_SCRATCH(T, hd) (((size_t)(hd) + 1) * (size_t)(T))

typedef struct attn_job {
    float *out, *probs, *dq, *dk, *dv, *scratch;
    const float *q, *k, *v, *dout, *probs_in;
    const tro_attn *a;
} attn_job;

/* Task = (sequence, KV head): the query heads that share that KV head.
 * The KV head's keys are first copied transposed (head_dim rows of T), so
 * the scores of a query accumulate along positions: long loops the
 * compiler vectorizes, where a head_dim of 8 would make short ones. (The
 * fields of the job are read into locals: with -fno-strict-aliasing a
 * store through a float pointer would make the compiler read them again.) */
static void attn_fwd_task(void *ctx, int task, int thread) {
    const attn_job *j = ctx;
    const tro_attn *a = j->a;
    const int b = task / a->n_head_kv, kvh = task % a->n_head_kv, group = a->n_head / a->n_head_kv;
    const int T = a->seq_len, hd = a->head_dim;
    const size_t qs = (size_t)a->n_head * hd, ks = (size_t)a->n_head_kv * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *Q = j->q, *K = j->k, *V = j->v;
    float *P = j->probs, *O = j->out, *restrict kt = j->scratch + (size_t)thread * ATTN_SCRATCH(T, hd);
    for (int s = 0; s < T; s++)
        for (int i = 0; i < hd; i++) kt[(size_t)i * T + s] = K[(size_t)(b * T + s) * ks + (size_t)kvh * hd + i];
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        for (int t = 0; t < T; t++) {
            const float *q = Q + (size_t)(b * T + t) * qs + (size_t)h * hd;
            float *restrict p = P + (((size_t)b * a->n_head + h) * T + t) * T;
            float *restrict o = O + (size_t)(b * T + t) * qs + (size_t)h * hd;
            for (int s = 0; s < T; s++) p[s] = 0;
            for (int i = 0; i < hd; i++) {
                const float qi = q[i] * scale, *kr = kt + (size_t)i * T;
                for (int s = 0; s <= t; s++) p[s] += qi * kr[s];
            }
            float mx = -INFINITY, sum = 0;
            for (int s = 0; s <= t; s++) mx = fmaxf(mx, p[s]);
            for (int s = 0; s <= t; s++) sum += p[s] = expf(p[s] - mx);
            const float inv = 1.0f / sum;
            for (int s = 0; s <= t; s++) p[s] *= inv;
            for (int i = 0; i < hd; i++) o[i] = 0;
            for (int s = 0; s <= t; s++) {
                const float ps = p[s], *vr = V + (size_t)(b * T + s) * ks + (size_t)kvh * hd;
                for (int i = 0; i < hd; i++) o[i] += ps * vr[i];
            }
        }
    }
}

void tro_attn_fwd(threadpool *tp, float *out, float *probs, const float *q, const float *k, const float *v,
                  const tro_attn *a) {
    attn_job j = {.out = out, .probs = probs, .scratch = a->scratch, .q = q, .k = k, .v = v, .a = a};
    uint64_t work = (uint64_t)a->n_seq * a->n_head * a->seq_len * a->seq_len * a->head_dim;
    tp_run_sized(tp, attn_fwd_task, &j, a->n_seq * a->n_head_kv, work);
}

/* With P = softmax(S), S = scale * q.k: dP = dout.v, dS = P * (dP - sum(P * dP)),
 * dq = scale * dS.k, dk = scale * dS^T.q, dv = P^T.dout. The task owns its
 * KV head's rows of dk and dv, so no two tasks write the same floats. */
static void attn_bwd_task(void *ctx, int task, int thread) {
    const attn_job *j = ctx;
    const tro_attn *a = j->a;
    const int b = task / a->n_head_kv, kvh = task % a->n_head_kv, group = a->n_head / a->n_head_kv;
    const int T = a->seq_len, hd = a->head_dim;
    const size_t qs = (size_t)a->n_head * hd, ks = (size_t)a->n_head_kv * hd, ko = (size_t)kvh * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *Q = j->q, *K = j->k, *V = j->v, *DO = j->dout, *PR = j->probs_in;
    float *DQ = j->dq, *DK = j->dk, *DV = j->dv;
    float *restrict vt = j->scratch + (size_t)thread * ATTN_SCRATCH(T, hd), *restrict ds = vt + (size_t)hd * T;
    for (int s = 0; s < T; s++) {
        for (int i = 0; i < hd; i++) vt[(size_t)i * T + s] = V[(size_t)(b * T + s) * ks + ko + i];
        memset(DK + (size_t)(b * T + s) * ks + ko, 0, (size_t)hd * sizeof(float));
        memset(DV + (size_t)(b * T + s) * ks + ko, 0, (size_t)hd * sizeof(float));
    }
    for (int h = kvh * group; h < (kvh + 1) * group; h++) {
        for (int t = 0; t < T; t++) {
            const size_t qo = (size_t)(b * T + t) * qs + (size_t)h * hd;
            const float *q = Q + qo, *dout = DO + qo, *p = PR + (((size_t)b * a->n_head + h) * T + t) * T;
            float *restrict dq = DQ + qo, sum = 0;
            for (int s = 0; s <= t; s++) ds[s] = 0;
            for (int i = 0; i < hd; i++) {
                const float di = dout[i], *vr = vt + (size_t)i * T;
                for (int s = 0; s <= t; s++) ds[s] += di * vr[s]; /* dP */
            }
            for (int s = 0; s <= t; s++) sum += p[s] * ds[s];
            for (int s = 0; s <= t; s++) ds[s] = p[s] * (ds[s] - sum) * scale;
            for (int i = 0; i < hd; i++) dq[i] = 0;
            for (int s = 0; s <= t; s++) {
                const size_t at = (size_t)(b * T + s) * ks + ko;
                const float *kr = K + at, d = ds[s], ps = p[s];
                float *restrict dk = DK + at, *restrict dv = DV + at;
                for (int i = 0; i < hd; i++) {
                    dq[i] += d * kr[i];
                    dk[i] += d * q[i];
                    dv[i] += ps * dout[i];
                }
            }
        }
    }
}

void tro_attn_bwd(threadpool *tp, float *dq, float *dk, float *dv, const float *dout, const float *probs,
                  const float *q, const float *k, const float *v, const tro_attn *a) {
    attn_job j = {.dq = dq, .dk = dk, .dv = dv, .scratch = a->scratch, .q = q, .k = k, .v = v, .dout = dout,
                  .probs_in = probs, .a = a};
    uint64_t work = (uint64_t)a->n_seq * a->n_head * a->seq_len * a->seq_len * a->head_dim * 2;
    tp_run_sized(tp, attn_bwd_task, &j, a->n_seq * a->n_head_kv, work);
}

/* ---- SwiGLU ---- */

#define ELEM_BLOCK 4096

typedef struct glu_job {
    float *a, *dg, *du;
    const float *g, *u, *da;
    int64_t n;
} glu_job;

static void glu_fwd_task(void *ctx, int task, int thread) {
    (void)thread;
    const glu_job *j = ctx;
    int64_t i0 = (int64_t)task * ELEM_BLOCK, i1 = RL_MIN(i0 + ELEM_BLOCK, j->n);
    float *restrict a = j->a;
    const float *g = j->g, *u = j->u;
    for (int64_t i = i0; i < i1; i++) a[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void glu_bwd_task(void *ctx, int task, int thread) {
    (void)thread;
    const glu_job *j = ctx;
    int64_t i0 = (int64_t)task * ELEM_BLOCK, i1 = RL_MIN(i0 + ELEM_BLOCK, j->n);
    float *restrict dg = j->dg, *restrict du = j->du;
    const float *gs = j->g, *us = j->u, *da = j->da;
    for (int64_t i = i0; i < i1; i++) {
        float g = gs[i], sig = 1.0f / (1.0f + expf(-g));
        du[i] = da[i] * g * sig;
        dg[i] = da[i] * us[i] * sig * (1.0f + g * (1.0f - sig));
    }
}

static int blocks(int64_t n) { return (int)((n + ELEM_BLOCK - 1) / ELEM_BLOCK); }

void tro_swiglu_fwd(threadpool *tp, float *a, const float *g, const float *u, int64_t n) {
    glu_job j = {.a = a, .g = g, .u = u, .n = n};
    tp_run_sized(tp, glu_fwd_task, &j, blocks(n), (uint64_t)n * 16);
}

void tro_swiglu_bwd(threadpool *tp, float *dg, float *du, const float *da, const float *g, const float *u, int64_t n) {
    glu_job j = {.dg = dg, .du = du, .g = g, .u = u, .da = da, .n = n};
    tp_run_sized(tp, glu_bwd_task, &j, blocks(n), (uint64_t)n * 24);
}

/* ---- the matrix product ---- */

typedef struct tr_job {
    float *dst;
    const float *src;
    int64_t rows, cols;
} tr_job;

#define TILE 32

/* dst (cols x rows) = src (rows x cols) transposed, one band of TILE rows. */
static void transpose_task(void *ctx, int band, int thread) {
    (void)thread;
    const tr_job *j = ctx;
    const int64_t rows = j->rows, cols = j->cols, r0 = (int64_t)band * TILE, r1 = RL_MIN(r0 + TILE, rows);
    float *restrict dst = j->dst;
    const float *restrict src = j->src;
    for (int64_t c0 = 0; c0 < cols; c0 += TILE) {
        int64_t c1 = RL_MIN(c0 + TILE, cols);
        for (int64_t r = r0; r < r1; r++)
            for (int64_t c = c0; c < c1; c++) dst[c * rows + r] = src[r * cols + c];
    }
}

static void transpose(threadpool *tp, float *dst, const float *src, int64_t rows, int64_t cols) {
    tr_job j = {dst, src, rows, cols};
    tp_run_sized(tp, transpose_task, &j, (int)((rows + TILE - 1) / TILE), (uint64_t)rows * (uint64_t)cols);
}

static void add_task(void *ctx, int task, int thread) {
    (void)thread;
    const tr_job *j = ctx;
    int64_t i0 = (int64_t)task * ELEM_BLOCK, i1 = RL_MIN(i0 + ELEM_BLOCK, j->rows);
    float *restrict dst = j->dst;
    const float *restrict src = j->src;
    for (int64_t i = i0; i < i1; i++) dst[i] += src[i];
}

/* dst[i] += src[i] for n floats. */
static void add_into(threadpool *tp, float *dst, const float *src, int64_t n) {
    tr_job j = {dst, src, n, 1};
    tp_run_sized(tp, add_task, &j, blocks(n), (uint64_t)n);
}

static kern_matrix f32_matrix(const float *w, int64_t rows, int64_t cols) {
    return (kern_matrix){.data = w, .type = RL_TYPE_F32, .rows = rows, .cols = cols,
                         .row_bytes = (size_t)cols * sizeof(float)};
}

void tro_matmul_fwd(kernels *k, float *y, const float *x, const float *w, int n, int64_t rows, int64_t cols) {
    kern_matrix m = f32_matrix(w, rows, cols);
    kern_matmul(k, &m, x, n, y, rows);
}

/* kern_matmul multiplies along rows of both operands, so the backward
 * products take transposed copies: dx = dy . W is dy times (W^T)^T, and
 * dw = dy^T . x is (dy^T) times (x^T)^T. */
void tro_matmul_bwd(kernels *k, const tro_mm_scratch *s, float *dx, bool dx_add, float *dw, const float *dy,
                    const float *x, const float *w, int n, int64_t rows, int64_t cols) {
    threadpool *tp = kern_pool(k);
    if (dx) {
        transpose(tp, s->wt, w, rows, cols);
        kern_matrix wt = f32_matrix(s->wt, cols, rows);
        kern_matmul(k, &wt, dy, n, dx_add ? s->tmp : dx, cols);
        if (dx_add) add_into(tp, dx, s->tmp, (int64_t)n * cols);
    }
    transpose(tp, s->xt, x, n, cols);
    transpose(tp, s->dyt, dy, n, rows);
    kern_matrix xt = f32_matrix(s->xt, cols, n);
    kern_matmul(k, &xt, s->dyt, (int)rows, dw, cols);
}

/* ---- the loss ---- */

/* One row: cross-entropy at temperature 1 and, with a teacher, the KL term
 * at tau over the teacher's top-k tokens plus a rest bucket. Its gradient
 * with respect to the logits, times tau^2 (Hinton's scaling), is
 * tau * (q - target), where target is the teacher's probability on its
 * top-k and, outside them, the teacher's rest spread in proportion to q. */
static void loss_task(void *ctx, int r, int thread) {
    const tro_loss *l = ctx;
    const size_t V = (size_t)l->vocab;
    const float *s = l->logits + (size_t)r * V;
    float *d = l->dlogits ? l->dlogits + (size_t)r * V : NULL, inv_n = 1.0f / (float)l->n;
    float mx = -INFINITY;
    for (size_t j = 0; j < V; j++) mx = fmaxf(mx, s[j]);
    double sum = 0;
    for (size_t j = 0; j < V; j++) sum += expf(s[j] - mx);
    float lse = mx + (float)log(sum);
    int32_t y = l->target[r];
    bool kd = l->soft && l->alpha > 0;
    float w_ce = kd ? 1.0f - l->alpha : 1.0f;
    l->row_ce[r] = lse - s[y];
    l->row_kl[r] = 0;
    if (d) {
        for (size_t j = 0; j < V; j++) d[j] = w_ce * inv_n * expf(s[j] - lse);
        d[y] -= w_ce * inv_n;
    }
    if (kd) {
        const uint32_t *w = l->soft[r];
        float lse_t, tau = l->tau, *q = l->scratch + (size_t)thread * V;
        memcpy(&lse_t, w, sizeof lse_t);
        const uint32_t *ids = w + 1;
        const float *z = (const float *)(const void *)(w + 1 + l->k);
        uint8_t *mark = l->mark + (size_t)thread * V;
        double qs = 0;
        for (size_t j = 0; j < V; j++) qs += q[j] = expf((s[j] - mx) / tau);
        float log_qs = (float)log(qs), inv_qs = (float)(1.0 / qs);
        memset(mark, 0, (size_t)V);
        double p_top = 0, kl = 0, q_rest = 0;
        for (int i = 0; i < l->k; i++) {
            float p = expf(z[i] / tau - lse_t), log_q = (s[ids[i]] - mx) / tau - log_qs;
            mark[ids[i]] = 1;
            p_top += p;
            if (p > 0) kl += p * (logf(p) - log_q);
        }
        for (size_t j = 0; j < V; j++)
            if (!mark[j]) q_rest += q[j] * inv_qs;
        double p_rest = fmax(0.0, 1.0 - p_top);
        if (p_rest > 0) kl += p_rest * (log(p_rest) - log(fmax(q_rest, 1e-30)));
        l->row_kl[r] = (float)kl;
        if (d) {
            float c = l->alpha * tau * inv_n, keep = q_rest > 0 ? (float)(1.0 - p_rest / q_rest) : 1.0f;
            for (size_t j = 0; j < V; j++)
                if (!mark[j]) d[j] += c * q[j] * inv_qs * keep;
            for (int i = 0; i < l->k; i++) d[ids[i]] += c * (q[ids[i]] * inv_qs - expf(z[i] / tau - lse_t));
        }
    }
    l->row_loss[r] = w_ce * l->row_ce[r] + (kd ? l->alpha * l->tau * l->tau * l->row_kl[r] : 0.0f);
}

void tro_loss_rows(threadpool *tp, const tro_loss *l) {
    tp_run_sized(tp, loss_task, (void *)l, l->n, (uint64_t)l->n * (uint64_t)l->vocab * 20);
}

/* ================================================================== */
/* the trainer                                                        */
/* ================================================================== */

/* What the forward pass keeps of one layer for the backward pass. */
typedef struct layer_acts {
    float *x;            /* the residual stream coming in */
    float *hn1, *rstd1;  /* attention's normed rows, 1/rms */
    float *q, *k, *v;    /* after RoPE (q, k) */
    float *probs;        /* n_seq x n_head x T x T */
    float *ao;           /* attention output, before attn_output */
    float *xm;           /* the residual stream after attention */
    float *hn2, *rstd2;  /* the feed-forward's normed rows */
    float *gate, *up, *act;
} layer_acts;

/* A piece of the weights handed to one task of the update. */
typedef struct upd_chunk {
    int tensor;
    size_t start, len;
} upd_chunk;

#define UPD_CHUNK 16384

struct trainer {
    const tr_layout *L;
    tr_config c;
    kernels *k;
    threadpool *tp;
    int max_rows, n_rows; /* n_seq * seq_len; this batch's */
    float *arena;         /* every buffer below, carved from one allocation */
    size_t arena_floats;
    float *w, *g, *m, *v;
    layer_acts *la;
    float *xf, *hf, *rstdf, *logits, *dlogits;
    float *row_loss, *row_ce, *row_kl, *loss_scratch, *attn_scratch;
    float *dx, *dh, *dq, *dk, *dv, *dao, *da, *dg, *du;
    tro_mm_scratch mm;
    uint8_t *mark;
    int32_t *inp, *tgt;
    const uint32_t **soft_rows;
    bool has_grad;        /* the last forward pass kept the loss's gradient */
    upd_chunk *chunks;
    int n_chunks;
    double *chunk_sq;     /* per chunk: sum of squared gradients */
};

tr_config tr_default_config(void) {
    return (tr_config){.n_seq = 16, .seq_len = 128, .kern_level = -1, .lr = 1e-3f, .min_lr_frac = 0.1f,
                       .warmup = 20, .total_steps = 1000, .weight_decay = 0.1f, .beta1 = 0.9f, .beta2 = 0.95f,
                       .adam_eps = 1e-8f, .clip = 1.0f, .alpha = 0.0f, .temperature = 1.0f, .top_k = 0};
}

/* The next n floats of the arena (64-byte aligned), or a count of them
 * while the arena is not allocated yet. */
static float *carve(trainer *t, size_t n, size_t *used) {
    float *p = t->arena ? t->arena + *used : NULL;
    *used += (n + 15) / 16 * 16;
    return p;
}

/* Places every buffer; with no arena, only adds up their sizes. */
static size_t place_buffers(trainer *t) {
    const rl_shape *s = &t->L->s;
    size_t N = (size_t)t->max_rows, D = s->n_embd, F = s->n_ff, V = s->n_vocab, T = (size_t)t->c.seq_len;
    size_t Q = (size_t)s->n_head * s->head_dim, KV = (size_t)s->n_head_kv * s->head_dim, P = t->L->n_floats;
    size_t threads = (size_t)tp_threads(t->tp), used = 0, wide = RL_MAX(RL_MAX(D, F), Q);
    t->w = carve(t, P, &used);
    t->g = carve(t, P, &used);
    t->m = carve(t, P, &used);
    t->v = carve(t, P, &used);
    for (uint32_t l = 0; l < s->n_layer; l++) {
        layer_acts *a = &t->la[l];
        float **big[] = {&a->x, &a->hn1, &a->xm, &a->hn2}, **ff[] = {&a->gate, &a->up, &a->act};
        for (size_t i = 0; i < RL_ARRAY_LEN(big); i++) *big[i] = carve(t, N * D, &used);
        for (size_t i = 0; i < RL_ARRAY_LEN(ff); i++) *ff[i] = carve(t, N * F, &used);
        a->rstd1 = carve(t, N, &used);
        a->rstd2 = carve(t, N, &used);
        a->q = carve(t, N * Q, &used);
        a->ao = carve(t, N * Q, &used);
        a->k = carve(t, N * KV, &used);
        a->v = carve(t, N * KV, &used);
        a->probs = carve(t, N * s->n_head * T, &used);
    }
    t->xf = carve(t, N * D, &used);
    t->hf = carve(t, N * D, &used);
    t->rstdf = carve(t, N, &used);
    t->logits = carve(t, N * V, &used);
    t->dlogits = carve(t, N * V, &used);
    t->row_loss = carve(t, N, &used);
    t->row_ce = carve(t, N, &used);
    t->row_kl = carve(t, N, &used);
    t->loss_scratch = carve(t, threads * V, &used);
    t->attn_scratch = carve(t, threads * ATTN_SCRATCH(T, s->head_dim), &used);
    t->dx = carve(t, N * D, &used);
    t->dh = carve(t, N * wide, &used);
    t->dq = carve(t, N * Q, &used);
    t->dao = carve(t, N * Q, &used);
    t->dk = carve(t, N * KV, &used);
    t->dv = carve(t, N * KV, &used);
    t->da = carve(t, N * F, &used);
    t->dg = carve(t, N * F, &used);
    t->du = carve(t, N * F, &used);
    t->mm.wt = carve(t, RL_MAX(V * D, RL_MAX(F * D, Q * D)), &used);
    t->mm.xt = carve(t, N * wide, &used);
    t->mm.dyt = carve(t, N * RL_MAX(V, wide), &used);
    t->mm.tmp = carve(t, N * wide, &used);
    return used;
}

static int plan_chunks(trainer *t, rl_err *err) {
    const tr_layout *L = t->L;
    for (int pass = 0; pass < 2; pass++) {
        t->n_chunks = 0;
        for (int i = 0; i < L->n_tensors; i++) {
            size_t n = (size_t)L->t[i].rows * (size_t)L->t[i].cols;
            for (size_t s = 0; s < n; s += UPD_CHUNK, t->n_chunks++)
                if (pass) t->chunks[t->n_chunks] = (upd_chunk){i, L->t[i].offset + s, RL_MIN(UPD_CHUNK, n - s)};
        }
        if (!pass) {
            t->chunks = rl_calloc((size_t)t->n_chunks, sizeof *t->chunks, err);
            t->chunk_sq = t->chunks ? rl_calloc((size_t)t->n_chunks, sizeof *t->chunk_sq, err) : NULL;
            if (!t->chunk_sq) return -1;
        }
    }
    return 0;
}

trainer *tr_new(const tr_layout *L, const tr_config *c, rl_err *err) {
    if (c->n_seq < 1 || c->seq_len < 2 || (int64_t)c->n_seq * c->seq_len > (1 << 24))
        return rl_fail(err, RL_ERR_INPUT, "batch of %d sequences of %d tokens: need at least 1 and 2", c->n_seq,
                       c->seq_len), NULL;
    if (c->alpha < 0 || c->alpha > 1 || !(c->temperature > 0) || (c->alpha > 0 && c->top_k < 1))
        return rl_fail(err, RL_ERR_INPUT, "alpha must be in [0, 1], the temperature positive, and top-k >= 1 "
                       "when alpha > 0"), NULL;
    trainer *t = rl_calloc(1, sizeof *t, err);
    if (!t) return NULL;
    t->L = L;
    t->c = *c;
    t->max_rows = c->n_seq * c->seq_len;
    /* F32 products read their rows in place: the kernels need no room for
     * converted activations (max_rows / max_cols stay small). */
    kern_params kp = {.n_threads = c->n_threads, .max_rows = 1, .max_cols = 1, .level = c->kern_level};
    t->k = kern_new(&kp, err);
    t->la = t->k ? rl_calloc(L->s.n_layer, sizeof *t->la, err) : NULL;
    size_t N = (size_t)t->max_rows;
    t->inp = t->la ? rl_calloc(N, sizeof *t->inp, err) : NULL;
    t->tgt = t->inp ? rl_calloc(N, sizeof *t->tgt, err) : NULL;
    t->soft_rows = t->tgt ? rl_calloc(N, sizeof *t->soft_rows, err) : NULL;
    if (!t->soft_rows || plan_chunks(t, err)) goto fail;
    t->tp = kern_pool(t->k);
    t->mark = rl_calloc((size_t)tp_threads(t->tp) * L->s.n_vocab, 1, err);
    t->arena_floats = place_buffers(t);
    t->arena = t->mark ? rl_aligned_alloc(t->arena_floats * sizeof(float), err) : NULL;
    if (!t->arena) {
        rl_fail_prefix(err, "the trainer's %.1f MiB of buffers: ", (double)t->arena_floats * 4 / 1048576.0);
        goto fail;
    }
    place_buffers(t);
    memset(t->arena, 0, t->arena_floats * sizeof(float));
    return t;
fail:
    tr_free(t);
    return NULL;
}

void tr_free(trainer *t) {
    if (!t) return;
    kern_free(t->k);
    free(t->la);
    free(t->inp);
    free(t->tgt);
    free(t->soft_rows);
    free(t->chunks);
    free(t->chunk_sq);
    free(t->mark);
    free(t->arena);
    free(t);
}

const tr_layout *tr_get_layout(const trainer *t) { return t->L; }
const tr_config *tr_get_config(const trainer *t) { return &t->c; }
float *tr_weights(trainer *t) { return t->w; }
float *tr_grads(trainer *t) { return t->g; }
float *tr_adam_m(trainer *t) { return t->m; }
float *tr_adam_v(trainer *t) { return t->v; }
const float *tr_logits(const trainer *t) { return t->logits; }

/* Approximately N(0, 1) by Box-Muller from 53-bit uniforms. */
static float normal(rl_rng *r) {
    double u1 = rl_rng_uniform(r), u2 = rl_rng_uniform(r);
    return (float)(sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2));
}

void tr_init_weights(trainer *t, uint64_t seed) {
    const tr_layout *L = t->L;
    float resid = 1.0f / sqrtf(2.0f * (float)L->s.n_layer);
    for (int i = 0; i < L->n_tensors; i++) {
        const tr_tensor *tt = &L->t[i];
        float *w = t->w + tt->offset;
        size_t n = (size_t)tt->rows * (size_t)tt->cols;
        if (tt->rows == 1) {
            for (size_t j = 0; j < n; j++) w[j] = 1.0f;
            continue;
        }
        rl_rng r;
        rl_rng_seed(&r, seed ^ ((uint64_t)(i + 1) * 0x9e3779b97f4a7c15ull));
        bool residual = strstr(tt->name, "attn_output") || strstr(tt->name, "ffn_down");
        float std = 0.02f * (residual ? resid : 1.0f);
        for (size_t j = 0; j < n; j++) w[j] = std * normal(&r);
    }
}

/* ================================================================== */
/* forward                                                            */
/* ================================================================== */

static tro_attn attn_dims(const trainer *t, int n_seq) {
    const rl_shape *s = &t->L->s;
    return (tro_attn){n_seq, t->c.seq_len, (int)s->n_head, (int)s->n_head_kv, (int)s->head_dim, t->attn_scratch};
}

static tro_rope rope_of(const trainer *t, int n_head) {
    const rl_shape *s = &t->L->s;
    return (tro_rope){t->c.seq_len, n_head, (int)s->head_dim, s->rope_base, t->L->rope_freq_scale,
                      t->L->rope_freqs};
}

/* x[l+1] = xm + ffn(norm(xm)), xm = x[l] + attention(norm(x[l])) */
static void layer_forward(trainer *t, int l, float *x_out) {
    const rl_shape *s = &t->L->s;
    layer_w W = layer_view(t->L, t->w, l);
    layer_acts *A = &t->la[l];
    int n = t->n_rows;
    int64_t D = s->n_embd, F = s->n_ff, Q = (int64_t)s->n_head * s->head_dim, KV = (int64_t)s->n_head_kv * s->head_dim;
    tro_rmsnorm_fwd(t->tp, A->hn1, A->rstd1, A->x, W.attn_norm, n, D, s->rms_eps);
    tro_matmul_fwd(t->k, A->q, A->hn1, W.wq, n, Q, D);
    tro_matmul_fwd(t->k, A->k, A->hn1, W.wk, n, KV, D);
    tro_matmul_fwd(t->k, A->v, A->hn1, W.wv, n, KV, D);
    tro_rope rq = rope_of(t, (int)s->n_head), rk = rope_of(t, (int)s->n_head_kv);
    tro_rope_rows(t->tp, A->q, n, &rq, false);
    tro_rope_rows(t->tp, A->k, n, &rk, false);
    tro_attn ad = attn_dims(t, n / t->c.seq_len);
    tro_attn_fwd(t->tp, A->ao, A->probs, A->q, A->k, A->v, &ad);
    tro_matmul_fwd(t->k, A->xm, A->ao, W.wo, n, D, Q);
    add_into(t->tp, A->xm, A->x, n * D);
    tro_rmsnorm_fwd(t->tp, A->hn2, A->rstd2, A->xm, W.ffn_norm, n, D, s->rms_eps);
    tro_matmul_fwd(t->k, A->gate, A->hn2, W.gate, n, F, D);
    tro_matmul_fwd(t->k, A->up, A->hn2, W.up, n, F, D);
    tro_swiglu_fwd(t->tp, A->act, A->gate, A->up, n * F);
    tro_matmul_fwd(t->k, x_out, A->act, W.down, n, D, F);
    add_into(t->tp, x_out, A->xm, n * D);
}

/* Inputs and targets of the batch, checked. */
static int take_batch(trainer *t, const tr_batch *b, rl_err *err) {
    int T = t->c.seq_len;
    uint32_t V = t->L->s.n_vocab;
    if (b->n_seq < 1 || b->n_seq > t->c.n_seq)
        return rl_fail(err, RL_ERR_INTERNAL, "batch of %d sequences, the trainer holds 1 to %d", b->n_seq, t->c.n_seq);
    for (int q = 0; q < b->n_seq; q++)
        for (int i = 0; i < T; i++) {
            int32_t in = b->tokens[(size_t)q * (T + 1) + i], tg = b->tokens[(size_t)q * (T + 1) + i + 1];
            if (in < 0 || (uint32_t)in >= V || tg < 0 || (uint32_t)tg >= V)
                return rl_fail(err, RL_ERR_INPUT, "token id %d is outside the vocabulary of %u",
                               in < 0 || (uint32_t)in >= V ? in : tg, V);
            t->inp[q * T + i] = in;
            t->tgt[q * T + i] = tg;
            t->soft_rows[q * T + i] = b->soft ? b->soft[q] + (size_t)i * TR_SOFT_WORDS(t->c.top_k) : NULL;
        }
    for (int r = 0; b->soft && r < b->n_seq * T; r++)
        for (int i = 0; i < t->c.top_k; i++)
            if (t->soft_rows[r][1 + i] >= V)
                return rl_fail(err, RL_ERR_INPUT, "teacher token id %u is outside the vocabulary of %u",
                               t->soft_rows[r][1 + i], V);
    return 0;
}

int tr_forward(trainer *t, const tr_batch *b, bool grad, tr_loss *out, rl_err *err) {
    t->has_grad = false;
    if (take_batch(t, b, err)) return -1;
    const rl_shape *s = &t->L->s;
    int n = t->n_rows = b->n_seq * t->c.seq_len;
    int64_t D = s->n_embd, V = s->n_vocab;
    for (int r = 0; r < n; r++) memcpy(t->la[0].x + r * D, t->w + (size_t)t->inp[r] * D, (size_t)D * sizeof(float));
    for (uint32_t l = 0; l < s->n_layer; l++)
        layer_forward(t, (int)l, l + 1 < s->n_layer ? t->la[l + 1].x : t->xf);
    float *out_norm = t->w + t->L->t[1].offset;
    tro_rmsnorm_fwd(t->tp, t->hf, t->rstdf, t->xf, out_norm, n, D, s->rms_eps);
    tro_matmul_fwd(t->k, t->logits, t->hf, output_matrix(t->L, t->w), n, V, D);
    tro_loss l = {.logits = t->logits, .dlogits = grad ? t->dlogits : NULL, .n = n, .vocab = V, .target = t->tgt,
                  .soft = b->soft ? t->soft_rows : NULL, .k = t->c.top_k, .alpha = t->c.alpha,
                  .tau = t->c.temperature, .row_loss = t->row_loss, .row_ce = t->row_ce, .row_kl = t->row_kl,
                  .scratch = t->loss_scratch, .mark = t->mark};
    tro_loss_rows(t->tp, &l);
    double sum = 0, ce = 0, kl = 0;
    for (int r = 0; r < n; r++) {
        sum += t->row_loss[r];
        ce += t->row_ce[r];
        kl += t->row_kl[r];
    }
    *out = (tr_loss){sum / n, ce / n, kl / n, n};
    t->has_grad = grad;
    return 0;
}

/* ================================================================== */
/* backward                                                           */
/* ================================================================== */

/* In: dx = d(loss)/d(x[l+1]). Out: dx = d(loss)/d(x[l]); the layer's
 * weight gradients written. The residual adds pass dx through unchanged,
 * so one buffer carries it: each branch adds its part. */
static void layer_backward(trainer *t, int l) {
    const rl_shape *s = &t->L->s;
    layer_w W = layer_view(t->L, t->w, l), G = layer_view(t->L, t->g, l);
    layer_acts *A = &t->la[l];
    int n = t->n_rows;
    int64_t D = s->n_embd, F = s->n_ff, Q = (int64_t)s->n_head * s->head_dim, KV = (int64_t)s->n_head_kv * s->head_dim;
    /* feed-forward: x_out = xm + (silu(gate) * up) W_down^T */
    tro_matmul_bwd(t->k, &t->mm, t->da, false, G.down, t->dx, A->act, W.down, n, D, F);
    tro_swiglu_bwd(t->tp, t->dg, t->du, t->da, A->gate, A->up, n * F);
    tro_matmul_bwd(t->k, &t->mm, t->dh, false, G.gate, t->dg, A->hn2, W.gate, n, F, D);
    tro_matmul_bwd(t->k, &t->mm, t->dh, true, G.up, t->du, A->hn2, W.up, n, F, D);
    tro_rmsnorm_bwd(t->tp, t->dx, G.ffn_norm, t->dh, A->xm, W.ffn_norm, A->rstd2, n, D);
    /* attention: xm = x + attention(q, k, v) W_o^T */
    tro_matmul_bwd(t->k, &t->mm, t->dao, false, G.wo, t->dx, A->ao, W.wo, n, D, Q);
    tro_attn ad = attn_dims(t, n / t->c.seq_len);
    tro_attn_bwd(t->tp, t->dq, t->dk, t->dv, t->dao, A->probs, A->q, A->k, A->v, &ad);
    tro_rope rq = rope_of(t, (int)s->n_head), rk = rope_of(t, (int)s->n_head_kv);
    tro_rope_rows(t->tp, t->dq, n, &rq, true);
    tro_rope_rows(t->tp, t->dk, n, &rk, true);
    tro_matmul_bwd(t->k, &t->mm, t->dh, false, G.wq, t->dq, A->hn1, W.wq, n, Q, D);
    tro_matmul_bwd(t->k, &t->mm, t->dh, true, G.wk, t->dk, A->hn1, W.wk, n, KV, D);
    tro_matmul_bwd(t->k, &t->mm, t->dh, true, G.wv, t->dv, A->hn1, W.wv, n, KV, D);
    tro_rmsnorm_bwd(t->tp, t->dx, G.attn_norm, t->dh, A->x, W.attn_norm, A->rstd1, n, D);
}

void tr_backward(trainer *t) {
    if (!t->has_grad) return;
    const tr_layout *L = t->L;
    const rl_shape *s = &L->s;
    int n = t->n_rows;
    int64_t D = s->n_embd, V = s->n_vocab;
    float *g_embd = t->g + L->t[0].offset, *g_out = output_matrix(L, t->g);
    /* logits = norm(xf) W_out^T; with tied embeddings g_out is g_embd,
     * written here and added to by the lookup below */
    tro_matmul_bwd(t->k, &t->mm, t->dh, false, g_out, t->dlogits, t->hf, output_matrix(L, t->w), n, V, D);
    memset(t->dx, 0, (size_t)n * D * sizeof(float));
    tro_rmsnorm_bwd(t->tp, t->dx, t->g + L->t[1].offset, t->dh, t->xf, t->w + L->t[1].offset, t->rstdf, n, D);
    for (int l = (int)s->n_layer - 1; l >= 0; l--) layer_backward(t, l);
    if (!s->tied_embeddings) memset(g_embd, 0, (size_t)V * D * sizeof(float));
    for (int r = 0; r < n; r++) { /* the lookup: rows in order */
        float *row = g_embd + (size_t)t->inp[r] * D;
        const float *d = t->dx + (size_t)r * D;
        for (int64_t i = 0; i < D; i++) row[i] += d[i];
    }
}

/* ================================================================== */
/* the update                                                         */
/* ================================================================== */

float tr_lr(const tr_config *c, int step) {
    if (c->warmup > 0 && step < c->warmup) return c->lr * (float)(step + 1) / (float)c->warmup;
    int span = c->total_steps - c->warmup;
    double frac = span > 0 ? (double)(step - c->warmup) / span : 1.0;
    frac = frac < 0 ? 0 : frac > 1 ? 1 : frac;
    double min = c->lr * c->min_lr_frac;
    return (float)(min + 0.5 * (c->lr - min) * (1.0 + cos(M_PI * frac)));
}

typedef struct upd_job {
    trainer *t;
    float lr, scale, bc1, bc2;
} upd_job;

static void sq_task(void *ctx, int c, int thread) {
    (void)thread;
    trainer *t = ((upd_job *)ctx)->t;
    const float *g = t->g + t->chunks[c].start;
    const size_t n = t->chunks[c].len;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += (double)g[i] * g[i];
    t->chunk_sq[c] = sum;
}

static void adamw_task(void *ctx, int c, int thread) {
    (void)thread;
    const upd_job *j = ctx;
    trainer *t = j->t;
    const tr_config *cf = &t->c;
    size_t o = t->chunks[c].start;
    float *restrict w = t->w + o, *restrict m = t->m + o, *restrict v = t->v + o;
    const float *restrict g = t->g + o;
    const float decay = t->L->t[t->chunks[c].tensor].decay ? cf->weight_decay : 0.0f, scale = j->scale, lr = j->lr;
    const float b1 = cf->beta1, b2 = cf->beta2, bc1 = j->bc1, bc2 = j->bc2, eps = cf->adam_eps;
    const size_t n = t->chunks[c].len;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * scale;
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        w[i] -= lr * (m[i] / bc1 / (sqrtf(v[i] / bc2) + eps) + decay * w[i]);
    }
}

double tr_update(trainer *t, int step) {
    upd_job j = {.t = t};
    size_t P = t->L->n_floats;
    tp_run_sized(t->tp, sq_task, &j, t->n_chunks, P);
    double sq = 0;
    for (int c = 0; c < t->n_chunks; c++) sq += t->chunk_sq[c];
    double norm = sqrt(sq);
    j.scale = t->c.clip > 0 && norm > t->c.clip ? (float)(t->c.clip / norm) : 1.0f;
    j.lr = tr_lr(&t->c, step);
    j.bc1 = 1.0f - powf(t->c.beta1, (float)(step + 1));
    j.bc2 = 1.0f - powf(t->c.beta2, (float)(step + 1));
    tp_run_sized(t->tp, adamw_task, &j, t->n_chunks, P * 8);
    return norm;
}

double tr_flops_per_token(const tr_layout *L, int seq_len) {
    const rl_shape *s = &L->s;
    double d = s->n_embd, q = (double)s->n_head * s->head_dim, kv = (double)s->n_head_kv * s->head_dim;
    double products = s->n_layer * (d * q + 2 * d * kv + q * d + 3 * d * s->n_ff) + (double)s->n_vocab * d;
    double attention = s->n_layer * 2.0 * q * (seq_len + 1) / 2.0; /* q.k and p.v, mean context */
    return 3.0 * 2.0 * (products + attention);
}
