/*
 * train_ops.h — the operations of a training step, forward and backward,
 * one pair per op of the Llama layer (all in train.c, next to the step that
 * uses them). They are public for the tests, which check every backward
 * against central finite differences of its forward.
 *
 * Rows are tokens: row r of a batch is position r % seq_len of sequence
 * r / seq_len. Backward functions that produce the gradient of an input
 * which also flows elsewhere (the residual stream) add to it; gradients of
 * weights are written, not added (one batch, one backward).
 */
#ifndef RACKLLM_TRAIN_OPS_H
#define RACKLLM_TRAIN_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/threadpool.h"
#include "kernels/kernels.h"

/* y = x / sqrt(mean(x^2) + eps) * w per row; rstd[r] keeps 1/sqrt(...). */
void tro_rmsnorm_fwd(threadpool *tp, float *y, float *rstd, const float *x, const float *w, int n, int64_t d,
                     float eps);
/* dx += d(loss)/dx; dw = d(loss)/dw (summed over the rows). */
void tro_rmsnorm_bwd(threadpool *tp, float *dx, float *dw, const float *dy, const float *x, const float *w,
                     const float *rstd, int n, int64_t d);

typedef struct tro_rope {
    int seq_len, n_head, head_dim;
    float base, freq_scale;
    const float *freqs; /* head_dim / 2 factors or NULL */
} tro_rope;

/* Rotates every head of every row by its position (kern_rope); inverse
 * rotates back, which is also the backward (a rotation's transpose). */
void tro_rope_rows(threadpool *tp, float *x, int n, const tro_rope *r, bool inverse);

typedef struct tro_attn {
    int n_seq, seq_len, n_head, n_head_kv, head_dim;
    float *scratch; /* threads x (head_dim + 1) x seq_len floats */
} tro_attn;

/* Causal grouped-query attention: out (rows of n_head * head_dim) from q,
 * k and v (rows of n_head_kv * head_dim); probs keeps the softmax, n_seq x
 * n_head x seq_len x seq_len. */
void tro_attn_fwd(threadpool *tp, float *out, float *probs, const float *q, const float *k, const float *v,
                  const tro_attn *a);
/* dq, dk, dv written (not added). */
void tro_attn_bwd(threadpool *tp, float *dq, float *dk, float *dv, const float *dout, const float *probs,
                  const float *q, const float *k, const float *v, const tro_attn *a);

/* a = silu(g) * u over n values, and its backward (dg, du written). */
void tro_swiglu_fwd(threadpool *tp, float *a, const float *g, const float *u, int64_t n);
void tro_swiglu_bwd(threadpool *tp, float *dg, float *du, const float *da, const float *g, const float *u, int64_t n);

/* Scratch for the backward of a product: transposed copies and a
 * temporary result, each at least the floats tro_mm_scratch_floats says. */
typedef struct tro_mm_scratch {
    float *wt, *xt, *dyt, *tmp;
} tro_mm_scratch;

/* y (n rows of `rows`) = x (n rows of `cols`) times W^T, W rows x cols. */
void tro_matmul_fwd(kernels *k, float *y, const float *x, const float *w, int n, int64_t rows, int64_t cols);
/* dw = dy^T x; dx = dy W (added to dx when dx_add, else written; dx NULL:
 * not wanted). */
void tro_matmul_bwd(kernels *k, const tro_mm_scratch *s, float *dx, bool dx_add, float *dw, const float *dy,
                    const float *x, const float *w, int n, int64_t rows, int64_t cols);

typedef struct tro_loss {
    const float *logits;   /* n rows of vocab */
    float *dlogits;        /* NULL: no gradient; else d(mean loss)/d(logits) */
    int n;
    int64_t vocab;
    const int32_t *target; /* n next-token ids */
    const uint32_t *const *soft; /* NULL, or n pointers to TR_SOFT_WORDS(k) teacher words */
    int k;
    float alpha, tau;
    float *row_loss, *row_ce, *row_kl; /* n each: per-row values */
    float *scratch;        /* threads x vocab floats */
    uint8_t *mark;         /* threads x vocab bytes */
} tro_loss;

/* Per-row loss (see train.h) and, if wanted, its gradient divided by n. */
void tro_loss_rows(threadpool *tp, const tro_loss *l);

#endif
