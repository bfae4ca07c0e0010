/*
 * kernels.h — the compute primitives of the forward pass, dispatched at run
 * time to the best code this CPU has.
 *
 * The forward pass (forward.c) is written in terms of these few operations:
 * a matrix product of quantized weights with a batch of activation rows, and
 * the small vector operations around it (RMS norm, RoPE, softmax, SwiGLU,
 * attention over a KV cache). Each has a plain-C reference version — the
 * oracle, built on quant.h — and, where it pays, SIMD versions for x86
 * (AVX2, AVX-VNNI, AVX-512 VNNI) and Arm (NEON, dotprod, i8mm), chosen once
 * per process from the CPU's features (docs/kernels.md).
 * RACKLLM_KERNELS=ref|avx2|avxvnni|avx512|neon|dotprod|i8mm forces a level (never
 * above what the CPU supports), which is how the tests cover every path the
 * machine has.
 *
 * Results never depend on batching: a (weight row, activation row) result
 * is computed by the same operations whatever else is in the product, so a
 * sequence decodes to the same bits alone or with others.
 *
 * A `kernels` context owns the thread pool that runs them and the scratch
 * space for converted activations, both sized once at creation: nothing
 * here allocates while computing.
 */
#ifndef RACKLLM_KERNELS_H
#define RACKLLM_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "base/threadpool.h"

typedef enum kern_level {
    KERN_REF = 0,
    KERN_AVX2,
    KERN_AVXVNNI,
    KERN_AVX512,
    KERN_NEON,
    KERN_DOTPROD,
    KERN_I8MM,
    KERN_LEVEL_COUNT
} kern_level;

/* The best level this CPU supports (x86: avxvnni needs AVX2 + AVX-VNNI,
 * avx512 F/BW/VL/DQ + VNNI). */
kern_level kern_detect(void);
/* kern_detect(), lowered to $RACKLLM_KERNELS if that is set and valid. */
kern_level kern_default_level(void);
const char *kern_level_name(kern_level l);
int kern_level_from_name(const char *name); /* -1 if unknown */
bool kern_level_supported(kern_level l);

/* A weight matrix as stored: `rows` rows of `cols` elements of `type`;
 * optionally also repacked by kern_matrix_pack. */
typedef struct kern_matrix {
    const void *data;
    uint32_t type;
    int64_t rows, cols;
    size_t row_bytes;
    const void *packed; /* NULL, or the same weights in the layout of level packed_level */
    int packed_level;
} kern_matrix;

/* Repacks W's weights once into the layout the kernels of this CPU's
 * default level read fastest (panels of 8 rows interleaved block by block
 * for AVX2 and AVX-VNNI, 16 for AVX-512, as their tiles consume them),
 * beside the original, which stays as it is. Each product then reads the
 * packed copy: no per-call rearranging, and a single sequential stream per
 * panel. Does nothing (0) for a level or type with
 * no packed layout; -1 with err when memory is short. Results are the same
 * with or without it (bit for bit). */
int kern_matrix_pack(kern_matrix *W, rl_err *err);

/* Frees W's packed copy (if any). */
void kern_matrix_unpack(kern_matrix *W);

typedef struct kernels kernels;

typedef struct kern_params {
    int n_threads;      /* 0: all available CPUs */
    const int *cpus;    /* optional pinning, n_threads entries */
    int max_rows;       /* most activation rows per matmul (batch tokens) */
    int64_t max_cols;   /* longest activation row (max of n_embd, n_ff, ...) */
    int level;          /* -1: kern_default_level() */
} kern_params;

kernels *kern_new(const kern_params *p, rl_err *err);
void kern_free(kernels *k);
kern_level kern_get_level(const kernels *k);
int kern_threads(const kernels *k);
threadpool *kern_pool(kernels *k);

/* Y[t*ldy + r] = sum_c W[r][c] * X[t*cols + c], for t < n, r < W->rows.
 * X holds n rows of W->cols floats. The activations are first converted to
 * the weight type's dot type (quant_dot_type), as llama.cpp does. */
void kern_matmul(kernels *k, const kern_matrix *W, const float *X, int n, float *Y, int64_t ldy);

/* Several matrices sharing the same input rows (Q/K/V, gate/up): the
 * activations are converted once per dot type. Y[i] as in kern_matmul. */
void kern_matmul_multi(kernels *k, const kern_matrix *const *W, int n_w, const float *X, int n, float *const *Y,
                       const int64_t *ldy);

/* ---- vector operations (one row, on the calling thread; the forward
 * pass spreads rows over the pool itself). Each dispatches to the level's
 * SIMD version when it has one; k NULL runs the reference version. ---- */

/* y = x / sqrt(mean(x^2) + eps) * w   (sum of squares in double, as ggml) */
void kern_rmsnorm(const kernels *k, float *y, const float *x, const float *w, int64_t n, float eps);

/* Rotates pairs of each of n_heads heads of head_dim at position pos by
 * theta_i = pos * base^(-2i/d) / freq_factors[i] (factors may be NULL) *
 * freq_scale. The pairs: (x[2i], x[2i+1]), ggml's "normal" RoPE (Llama), or
 * with neox (x[i], x[i + d/2]), ggml's NeoX RoPE (Qwen). */
void kern_rope(float *x, int n_heads, int head_dim, int32_t pos, float base, float freq_scale,
               const float *freq_factors, bool neox);

/* y = silu(g) * u  (y may be g) */
void kern_swiglu(const kernels *k, float *y, const float *g, const float *u, int64_t n);

/* In place softmax of n scores (reference; attention has its own). */
void kern_softmax(float *x, int64_t n);

/* Attention of a run of consecutive tokens of one sequence, for the group
 * of query heads that share one KV head. Token j (0..n_tok-1) is at
 * position n_pos - n_tok + j and sees positions 0 .. its own (causal). Each
 * query row's result depends on that row alone (never on which other rows
 * came along), so batching does not change results. */
typedef struct kern_attn {
    float *out;         /* like q */
    const float *q;     /* token j's n_q heads at q + j * q_stride, head_dim apart */
    int64_t q_stride;
    int n_tok;          /* tokens */
    int n_q;            /* query heads sharing this KV head */
    const void *K, *V;  /* position 0 of this KV head; F16 if kv_f16, else F32 */
    bool kv_f16;
    int head_dim;
    int64_t stride;     /* elements from one position's row to the next */
    int n_pos;          /* positions 0..n_pos-1 exist; the last token is at n_pos-1 */
    float scale;        /* usually 1/sqrt(head_dim) */
    float *scratch;     /* KERN_ATTN_SCRATCH(n_tok, n_q, n_pos, head_dim) floats */
} kern_attn;

#define KERN_ATTN_SCRATCH(n_tok, n_q, n_pos, head_dim) \
    ((size_t)(n_tok) * (size_t)(n_q) * ((size_t)(n_pos) + 8) + 16 * (size_t)(head_dim) + 64)

/* out = softmax(q K^T * scale) V for every query row (k NULL: reference). */
void kern_attention(const kernels *k, const kern_attn *a);

/* x[i] += y[i] */
void kern_add(const kernels *k, float *x, const float *y, int64_t n);

/* n floats to fp16, rounding to nearest even (the F16 KV cache). */
void kern_to_f16(const kernels *k, rl_f16 *dst, const float *src, int64_t n);

#endif
