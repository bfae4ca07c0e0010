/*
 * quant.h — the quantized block formats, and plain-C reference code for them.
 *
 * The layouts are ggml's, bit for bit, because GGUF files store them: e.g.
 * Q4_0 is 32 weights as an fp16 scale and 16 bytes of 4-bit values
 * (low nibbles: weights 0-15, high nibbles: 16-31), weight = (q - 8) * d.
 * The K-quants group 256 weights into a "super-block" with one fp16 scale
 * (and min) and small per-sub-block scales; the comments in quant.c say
 * where each bit of each format goes.
 *
 * Everything here is the oracle: simple, scalar, obviously right. The SIMD
 * kernels (kernels.h) must agree with it. It covers:
 *  - dequantizing a row of any supported type to float, with the same float
 *    operations as ggml's dequantize_row_* (so the results are bit-identical);
 *  - quantizing a float row:
 *      weights, for `rackllm quantize`: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K,
 *      Q5_K and Q6_K with ggml's reference algorithms (quantize_row_*_ref, which is
 *      what llama-quantize runs without an importance matrix), so the bytes
 *      are the ones llama-quantize writes;
 *      activations, the way ggml's reference code quantizes them before a
 *      dot product: Q8_0, Q8_1, Q8_K (and F16, BF16 by rounding to nearest
 *      even). Note: llama.cpp's own SIMD quantizers for Q8_0/Q8_1 round
 *      halves to even where the reference rounds them away from zero, and
 *      x86 computes the inverse scale as 127/amax instead of 1/(amax/127);
 *      both differences move a value by one quantum in rare ties only;
 *  - the dot product of a weight row with an activation row already in the
 *    weight type's "dot type" (quant_dot_type): an exact integer dot per
 *    block, then scaled in float, as ggml's scalar vec_dot_*_q8_* do.
 *
 * All functions are total: rows of NaN, Inf or zeros never cause undefined
 * behaviour (an all-zero block gets scale 0 and dequantizes to zeros, not
 * NaN). Rows are read and written through memcpy, so they need no alignment.
 */
#ifndef RACKLLM_QUANT_H
#define RACKLLM_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/common.h"
#include "base/types.h"

#define QK4_0 32
#define QK4_1 32
#define QK5_0 32
#define QK5_1 32
#define QK8_0 32
#define QK8_1 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct { rl_f16 d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
typedef struct { rl_f16 d, m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
/* Q5_0/Q5_1: Q4_0/Q4_1 plus a fifth bit per weight, bit j of qh (LE). */
typedef struct { rl_f16 d; uint8_t qh[4]; uint8_t qs[QK5_0 / 2]; } block_q5_0;
typedef struct { rl_f16 d, m; uint8_t qh[4]; uint8_t qs[QK5_1 / 2]; } block_q5_1;
typedef struct { rl_f16 d; int8_t qs[QK8_0]; } block_q8_0;
typedef struct { rl_f16 d, s; int8_t qs[QK8_1]; } block_q8_1; /* s = d * sum(qs) */
typedef struct { rl_f16 d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K;
typedef struct { rl_f16 d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; rl_f16 d; } block_q6_K;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K; /* bsums: sums of 16 qs */

/* True for the types rackllm computes with: F32, F16, BF16, Q8_0, Q4_0,
 * Q4_1, Q4_K, Q5_K, Q6_K, and Q5_0, Q5_1 (which llama.cpp's quantizer
 * falls back to for K-quant targets whose rows are not whole 256-blocks;
 * they may have no fast kernel and run on this reference code). */
bool quant_supported(uint32_t type);

/* The type activations are converted to before a dot product with a weight
 * row of `type` (as in llama.cpp): F32->F32, F16->F16, BF16->BF16,
 * Q8_0/Q4_0/Q5_0->Q8_0, Q4_1/Q5_1->Q8_1, Q4_K/Q5_K/Q6_K->Q8_K. Returns
 * `type` itself for a type that is not supported. */
uint32_t quant_dot_type(uint32_t type);

/* Block size of `type` (elements per block; 1 for float types), 0 if the
 * type is unknown. */
int64_t quant_block_size(uint32_t type);

/* n floats from a row of `type`: the supported types plus Q8_1 and Q8_K.
 * n must be a multiple of the type's block size. Returns 0, or -1 (dst
 * untouched) for another type or a bad n. */
int quant_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* n floats into a row of `type` (weights or activation types: F32, F16,
 * BF16, Q8_0, Q8_1, Q8_K, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K). n must be a
 * multiple of the block size. Returns 0, or -1 (dst untouched) for a type
 * it cannot produce or a bad n. Deterministic. */
int quant_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/* Dot product of n elements: a weight row of `type` with an activation row
 * of quant_dot_type(type). F32, F16 and BF16 rows multiply in float and sum
 * in double (ggml's scalar path); quantized rows sum exact integer products
 * per block and scale them in float. NaN for an unsupported type or an n
 * that is not a multiple of the block size. */
float quant_dot_ref(uint32_t type, int64_t n, const void *w, const void *act);

#endif
