/*
 * quant.h — the quantized block formats, and plain-C reference code for them.
 *
 * The layouts are ggml's, bit for bit, because GGUF files store them: e.g.
 * Q4_0 is 32 weights as an fp16 scale and 16 bytes of 4-bit values
 * (low nibbles: weights 0-15, high nibbles: 16-31), weight = (q - 8) * d.
 *
 * Everything here is the oracle: simple, scalar, obviously right. The SIMD
 * kernels (kernels.h) must agree with it. It covers:
 *  - dequantizing a row of any supported type to float;
 *  - quantizing a float row (weights, for `rackllm quantize`: Q8_0 and Q4_0
 *    identical to llama-quantize; K-quants at least as accurate; and
 *    activations, the way llama.cpp quantizes them before a dot product:
 *    Q8_0, Q8_1, Q8_K, F16, BF16);
 *  - the dot product of a weight row with an activation row already in the
 *    weight type's "dot type" (quant_dot_type).
 */
#ifndef RACKLLM_QUANT_H
#define RACKLLM_QUANT_H

#include <stdbool.h>
#include <stdint.h>

#include "common.h"
#include "types.h"

#define QK4_0 32
#define QK4_1 32
#define QK8_0 32
#define QK8_1 32
#define QK_K 256
#define K_SCALE_SIZE 12

typedef struct { rl_f16 d; uint8_t qs[QK4_0 / 2]; } block_q4_0;
typedef struct { rl_f16 d, m; uint8_t qs[QK4_1 / 2]; } block_q4_1;
typedef struct { rl_f16 d; int8_t qs[QK8_0]; } block_q8_0;
typedef struct { rl_f16 d, s; int8_t qs[QK8_1]; } block_q8_1; /* s = d * sum(qs) */
typedef struct { rl_f16 d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K;
typedef struct { rl_f16 d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qh[QK_K / 8]; uint8_t qs[QK_K / 2]; } block_q5_K;
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; rl_f16 d; } block_q6_K;
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;

/* True for the types rackllm computes with: F32, F16, BF16, Q8_0, Q4_0,
 * Q4_1, Q4_K, Q5_K, Q6_K. */
bool quant_supported(uint32_t type);

/* The type activations are converted to before a dot product with a weight
 * row of `type` (as in llama.cpp): F32->F32, F16->F16, BF16->BF16,
 * Q8_0/Q4_0->Q8_0, Q4_1->Q8_1, Q4_K/Q5_K/Q6_K->Q8_K. */
uint32_t quant_dot_type(uint32_t type);

/* n floats (a multiple of the type's block size) from a row of `type`. */
void quant_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* n floats into a row of `type` (weights or activation types: F32, F16,
 * BF16, Q8_0, Q8_1, Q8_K, Q4_0, Q4_1, Q4_K, Q5_K, Q6_K). Returns 0, or -1
 * for a type it cannot produce. Deterministic. */
int quant_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/* Dot product of n elements: a weight row of `type` with an activation row
 * of quant_dot_type(type). */
float quant_dot_ref(uint32_t type, int64_t n, const void *w, const void *act);

#endif
