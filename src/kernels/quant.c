/*
 * quant.c — the reference ("oracle") code for ggml's block formats: how each
 * format lays out its bits, how llama.cpp turns floats into blocks and back,
 * and how it multiplies a weight row by an activation row. See quant.h.
 *
 * Bit-exactness with ggml matters here (the files llama-quantize writes must
 * come out byte for byte, and dequantized weights must be the same floats),
 * so every float expression keeps ggml's order of operations, and rounding
 * uses the same two idioms ggml uses: roundf (halves away from zero) in the
 * 32-element formats, and the "add 1.5*2^23" trick (halves to even) in the
 * K-quants. Float-to-integer conversions go through to_int_sat(), which is
 * the plain C cast for every value ggml produces from finite input and does
 * something harmless (instead of undefined) for NaN and infinities.
 *
 * Blocks are copied in and out with memcpy, so rows need no alignment.
 */
#include "quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0 layout");
_Static_assert(sizeof(block_q4_1) == 20, "block_q4_1 layout");
_Static_assert(sizeof(block_q5_0) == 22, "block_q5_0 layout");
_Static_assert(sizeof(block_q5_1) == 24, "block_q5_1 layout");
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 layout");
_Static_assert(sizeof(block_q8_1) == 36, "block_q8_1 layout");
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K layout");
_Static_assert(sizeof(block_q5_K) == 176, "block_q5_K layout");
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K layout");
_Static_assert(sizeof(block_q8_K) == 292, "block_q8_K layout");

/* Below this a group's largest magnitude counts as zero (ggml's value). */
#define GROUP_MAX_EPS 1e-15f

/* ------------------------------------------------------------------ */
/* Rounding helpers                                                    */
/* ------------------------------------------------------------------ */

/* C's float -> int cast (truncation) where it is defined; NaN gives 0 and
 * out-of-range values saturate, instead of undefined behaviour. */
static int to_int_sat(float v) {
    if (!(v == v)) return 0;
    if (v >= 2147483520.0f) return INT32_MAX; /* largest float below 2^31 */
    if (v <= -2147483648.0f) return INT32_MIN;
    return (int)v;
}

/* Round to nearest, halves to even, by adding 1.5 * 2^23 so the FPU does
 * the rounding; exact for |v| < 2^22 (ggml's nearest_int). For larger or
 * non-finite v the result is meaningless but defined, and callers clamp. */
static int nearest_int(float v) {
    float t = v + 12582912.f;
    int32_t i;
    memcpy(&i, &t, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static int clamp_int(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* roundf() into an int8 the way ggml's `int8_t q = roundf(x)` does for the
 * in-range values it produces. */
static int8_t round_i8(float v) { return (int8_t)clamp_int(to_int_sat(roundf(v)), -128, 127); }

static float f16(rl_f16 h) { return rl_f16_to_f32(h); }

/* ------------------------------------------------------------------ */
/* K-quant sub-block scales                                            */
/* ------------------------------------------------------------------ */

/* Q4_K and Q5_K keep 8 six-bit scales and 8 six-bit mins in 12 bytes:
 * bytes 0-3 hold scales 0-3, bytes 4-7 mins 0-3 (low 6 bits each); bytes
 * 8-11 hold the low 4 bits of scales 4-7 (low nibble) and mins 4-7 (high
 * nibble), whose top 2 bits sit in the top 2 bits of bytes 0-3 / 4-7. */
static void k4_get(const uint8_t q[K_SCALE_SIZE], int j, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

static void k4_put(uint8_t q[K_SCALE_SIZE], int j, uint8_t sc, uint8_t m) {
    if (j < 4) {
        q[j] = sc;
        q[j + 4] = m;
    } else {
        q[j + 4] = (uint8_t)((sc & 0xF) | ((m & 0xF) << 4));
        q[j - 4] |= (uint8_t)((sc >> 4) << 6);
        q[j] |= (uint8_t)((m >> 4) << 6);
    }
}

/* ------------------------------------------------------------------ */
/* Type facts                                                          */
/* ------------------------------------------------------------------ */

bool quant_supported(uint32_t type) {
    switch (type) {
    case RL_TYPE_F32: case RL_TYPE_F16: case RL_TYPE_BF16:
    case RL_TYPE_Q8_0: case RL_TYPE_Q4_0: case RL_TYPE_Q4_1:
    case RL_TYPE_Q5_0: case RL_TYPE_Q5_1:
    case RL_TYPE_Q4_K: case RL_TYPE_Q5_K: case RL_TYPE_Q6_K:
        return true;
    default:
        return false;
    }
}

uint32_t quant_dot_type(uint32_t type) {
    switch (type) {
    case RL_TYPE_Q8_0: case RL_TYPE_Q4_0: case RL_TYPE_Q5_0: return RL_TYPE_Q8_0;
    case RL_TYPE_Q4_1: case RL_TYPE_Q5_1: return RL_TYPE_Q8_1;
    case RL_TYPE_Q4_K: case RL_TYPE_Q5_K: case RL_TYPE_Q6_K: return RL_TYPE_Q8_K;
    default: return type;
    }
}

int64_t quant_block_size(uint32_t type) {
    const rl_type_info *t = rl_type_get(type);
    return t ? t->block : 0;
}

/* n is a positive-or-zero whole number of blocks of `type`. */
static bool whole_blocks(uint32_t type, int64_t n) {
    int64_t bs = quant_block_size(type);
    return bs > 0 && n >= 0 && n % bs == 0;
}

/* ------------------------------------------------------------------ */
/* Dequantization                                                      */
/* ------------------------------------------------------------------ */

static void dequant_q4_0(const uint8_t *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK4_0) {
        block_q4_0 b;
        memcpy(&b, src + i * sizeof b, sizeof b);
        const float d = f16(b.d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            y[j] = ((b.qs[j] & 0xF) - 8) * d;
            y[j + QK4_0 / 2] = ((b.qs[j] >> 4) - 8) * d;
        }
    }
}

static void dequant_q4_1(const uint8_t *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK4_1) {
        block_q4_1 b;
        memcpy(&b, src + i * sizeof b, sizeof b);
        const float d = f16(b.d), m = f16(b.m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            y[j] = (b.qs[j] & 0xF) * d + m;
            y[j + QK4_1 / 2] = (b.qs[j] >> 4) * d + m;
        }
    }
}

/* The fifth bit of weight j (0..31) of a Q5_0/Q5_1 block, as 0 or 16. */
static int q5_high(const uint8_t qh[4], int j) { return ((qh[j / 8] >> (j % 8)) & 1) << 4; }

static void dequant_q5_0(const uint8_t *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK5_0) {
        block_q5_0 b;
        memcpy(&b, src + i * sizeof b, sizeof b);
        const float d = f16(b.d);
        for (int j = 0; j < QK5_0 / 2; j++) {
            y[j] = (((b.qs[j] & 0xF) | q5_high(b.qh, j)) - 16) * d;
            y[j + QK5_0 / 2] = (((b.qs[j] >> 4) | q5_high(b.qh, j + 16)) - 16) * d;
        }
    }
}

static void dequant_q5_1(const uint8_t *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK5_1) {
        block_q5_1 b;
        memcpy(&b, src + i * sizeof b, sizeof b);
        const float d = f16(b.d), m = f16(b.m);
        for (int j = 0; j < QK5_1 / 2; j++) {
            y[j] = ((b.qs[j] & 0xF) | q5_high(b.qh, j)) * d + m;
            y[j + QK5_1 / 2] = ((b.qs[j] >> 4) | q5_high(b.qh, j + 16)) * d + m;
        }
    }
}

static void dequant_q8_0(const uint8_t *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK8_0) {
        block_q8_0 b;
        memcpy(&b, src + i * sizeof b, sizeof b);
        const float d = f16(b.d);
        for (int j = 0; j < QK8_0; j++) y[j] = b.qs[j] * d;
    }
}

static void dequant_q8_1(const uint8_t *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK8_1) {
        block_q8_1 b;
        memcpy(&b, src + i * sizeof b, sizeof b);
        const float d = f16(b.d);
        for (int j = 0; j < QK8_1; j++) y[j] = b.qs[j] * d;
    }
}

/* Q4_K: 4 chunks of 64 weights; chunk c is 32 bytes of qs whose low
 * nibbles are weights 64c..64c+31 (sub-block 2c) and high nibbles weights
 * 64c+32..64c+63 (sub-block 2c+1). weight = d*scale*q - dmin*min. */
static void dequant_q4_K(const uint8_t *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        block_q4_K b;
        memcpy(&b, src + i * sizeof b, sizeof b);
        const float d = f16(b.d), dmin = f16(b.dmin);
        const uint8_t *q = b.qs;
        for (int c = 0; c < QK_K / 64; c++, q += 32) {
            uint8_t sc, m;
            k4_get(b.scales, 2 * c, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            k4_get(b.scales, 2 * c + 1, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

/* Q5_K: Q4_K plus a fifth bit per weight: bit 2c of qh[l] is the high bit
 * of weight 64c+l, bit 2c+1 that of weight 64c+32+l. */
static void dequant_q5_K(const uint8_t *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++) {
        block_q5_K b;
        memcpy(&b, src + i * sizeof b, sizeof b);
        const float d = f16(b.d), dmin = f16(b.dmin);
        const uint8_t *q = b.qs;
        for (int c = 0; c < QK_K / 64; c++, q += 32) {
            uint8_t sc, m;
            k4_get(b.scales, 2 * c, &sc, &m);
            const float d1 = d * sc, m1 = dmin * m;
            k4_get(b.scales, 2 * c + 1, &sc, &m);
            const float d2 = d * sc, m2 = dmin * m;
            const uint8_t lo = (uint8_t)(1u << (2 * c)), hi = (uint8_t)(2u << (2 * c));
            for (int l = 0; l < 32; l++) *y++ = d1 * ((q[l] & 0xF) + (b.qh[l] & lo ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * ((q[l] >> 4) + (b.qh[l] & hi ? 16 : 0)) - m2;
        }
    }
}

/* The 6-bit value (0..63) of weight e (0..255) of a Q6_K block. Each half
 * of 128 weights has 64 bytes of ql and 32 of qh: weight 128h + 32k + l
 * (k = 0..3, l = 0..31) keeps its low 4 bits in ql[64h + 32(k&1) + l]
 * (low nibble for k < 2, high for k >= 2) and its top 2 bits in bits
 * 2k..2k+1 of qh[32h + l]. */
static int q6_value(const block_q6_K *b, int e) {
    const int h = e / 128, k = (e % 128) / 32, l = e % 32;
    const uint8_t ql = b->ql[64 * h + 32 * (k & 1) + l];
    const int lo = k < 2 ? (ql & 0xF) : (ql >> 4);
    const int top = (b->qh[32 * h + l] >> (2 * k)) & 3;
    return lo | (top << 4);
}

/* Q6_K: weight e = d * scales[e/16] * (q - 32). */
static void dequant_q6_K(const uint8_t *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK_K) {
        block_q6_K b;
        memcpy(&b, src + i * sizeof b, sizeof b);
        const float d = f16(b.d);
        for (int e = 0; e < QK_K; e++) y[e] = d * b.scales[e / 16] * (q6_value(&b, e) - 32);
    }
}

static void dequant_q8_K(const uint8_t *src, float *y, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, y += QK_K) {
        block_q8_K b;
        memcpy(&b, src + i * sizeof b, sizeof b);
        for (int j = 0; j < QK_K; j++) y[j] = b.d * b.qs[j];
    }
}

int quant_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n) {
    if (!whole_blocks(type, n)) return -1;
    const uint8_t *s = src;
    const int64_t nb = n / quant_block_size(type);
    switch (type) {
    case RL_TYPE_F32: memcpy(dst, s, (size_t)n * sizeof(float)); return 0;
    case RL_TYPE_F16:
        for (int64_t i = 0; i < n; i++) {
            rl_f16 h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = rl_f16_to_f32(h);
        }
        return 0;
    case RL_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            rl_bf16 h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = rl_bf16_to_f32(h);
        }
        return 0;
    case RL_TYPE_Q4_0: dequant_q4_0(s, dst, nb); return 0;
    case RL_TYPE_Q4_1: dequant_q4_1(s, dst, nb); return 0;
    case RL_TYPE_Q5_0: dequant_q5_0(s, dst, nb); return 0;
    case RL_TYPE_Q5_1: dequant_q5_1(s, dst, nb); return 0;
    case RL_TYPE_Q8_0: dequant_q8_0(s, dst, nb); return 0;
    case RL_TYPE_Q8_1: dequant_q8_1(s, dst, nb); return 0;
    case RL_TYPE_Q4_K: dequant_q4_K(s, dst, nb); return 0;
    case RL_TYPE_Q5_K: dequant_q5_K(s, dst, nb); return 0;
    case RL_TYPE_Q6_K: dequant_q6_K(s, dst, nb); return 0;
    case RL_TYPE_Q8_K: dequant_q8_K(s, dst, nb); return 0;
    default: return -1;
    }
}

/* ------------------------------------------------------------------ */
/* Quantization: the 32-element formats                                */
/* ------------------------------------------------------------------ */

/* Q4_0: the value of largest magnitude maps to -8 exactly; the rest round
 * to nearest (by adding 8.5 and truncating), capped at 15. */
static void quant_q4_0(const float *x, uint8_t *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK4_0) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK4_0; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        block_q4_0 b;
        b.d = rl_f32_to_f16(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            /* ggml truncates to int8 first: only 16 (never negative) gets capped */
            int q0 = RL_MIN(15, (int8_t)clamp_int(to_int_sat(x[j] * id + 8.5f), -128, 127));
            int q1 = RL_MIN(15, (int8_t)clamp_int(to_int_sat(x[j + QK4_0 / 2] * id + 8.5f), -128, 127));
            b.qs[j] = (uint8_t)((q0 & 0xF) | (q1 << 4));
        }
        memcpy(dst + i * sizeof b, &b, sizeof b);
    }
}

/* Q4_1: scale and offset from the block's min and max. */
static void quant_q4_1(const float *x, uint8_t *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK4_1) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK4_1; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / ((1 << 4) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        block_q4_1 b;
        b.d = rl_f32_to_f16(d);
        b.m = rl_f32_to_f16(min);
        for (int j = 0; j < QK4_1 / 2; j++) {
            int q0 = RL_MIN(15, (int8_t)clamp_int(to_int_sat((x[j] - min) * id + 0.5f), -128, 127));
            int q1 = RL_MIN(15, (int8_t)clamp_int(to_int_sat((x[j + QK4_1 / 2] - min) * id + 0.5f), -128, 127));
            b.qs[j] = (uint8_t)((q0 & 0xF) | (q1 << 4));
        }
        memcpy(dst + i * sizeof b, &b, sizeof b);
    }
}

/* Packs 32 five-bit values: low 4 bits as Q4_0 does, fifth bits into qh. */
static void q5_pack(const int q[32], uint8_t qh[4], uint8_t qs[16]) {
    memset(qh, 0, 4);
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
    for (int j = 0; j < 32; j++) qh[j / 8] |= (uint8_t)(((q[j] >> 4) & 1) << (j % 8));
}

/* Q5_0: Q4_0 with 32 levels: the largest magnitude maps to -16. */
static void quant_q5_0(const float *x, uint8_t *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK5_0) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK5_0; j++) {
            if (amax < fabsf(x[j])) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        const float d = max / -16;
        const float id = d ? 1.0f / d : 0.0f;
        block_q5_0 b;
        b.d = rl_f32_to_f16(d);
        int q[32];
        for (int j = 0; j < QK5_0; j++)
            q[j] = RL_MIN(31, (int8_t)clamp_int(to_int_sat(x[j] * id + 16.5f), -128, 127));
        q5_pack(q, b.qh, b.qs);
        memcpy(dst + i * sizeof b, &b, sizeof b);
    }
}

/* Q5_1: Q4_1 with 32 levels (ggml does not cap these at 31: they cannot
 * exceed it for finite input). */
static void quant_q5_1(const float *x, uint8_t *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK5_1) {
        float min = FLT_MAX, max = -FLT_MAX;
        for (int j = 0; j < QK5_1; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / ((1 << 5) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        block_q5_1 b;
        b.d = rl_f32_to_f16(d);
        b.m = rl_f32_to_f16(min);
        int q[32];
        for (int j = 0; j < QK5_1; j++) q[j] = (uint8_t)clamp_int(to_int_sat((x[j] - min) * id + 0.5f), 0, 255);
        q5_pack(q, b.qh, b.qs);
        memcpy(dst + i * sizeof b, &b, sizeof b);
    }
}

/* Largest magnitude of 32 floats (NaN elements are skipped). */
static float amax32(const float *x) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    return amax;
}

/* Q8_0: symmetric, 127 steps each way. */
static void quant_q8_0(const float *x, uint8_t *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK8_0) {
        const float d = amax32(x) / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        block_q8_0 b;
        b.d = rl_f32_to_f16(d);
        for (int j = 0; j < QK8_0; j++) b.qs[j] = round_i8(x[j] * id);
        memcpy(dst + i * sizeof b, &b, sizeof b);
    }
}

/* Q8_1: Q8_0 plus s = d * sum(q), which Q4_1's dot product needs for its
 * offset term. */
static void quant_q8_1(const float *x, uint8_t *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK8_1) {
        const float d = amax32(x) / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        block_q8_1 b;
        b.d = rl_f32_to_f16(d);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            b.qs[j] = round_i8(x[j] * id);
            sum += b.qs[j];
        }
        b.s = rl_f32_to_f16(sum * d);
        memcpy(dst + i * sizeof b, &b, sizeof b);
    }
}

/* ------------------------------------------------------------------ */
/* Quantization: the K-quants                                          */
/* ------------------------------------------------------------------ */

/* Q8_K (activations for K-quant dot products): the largest magnitude maps
 * to -127 exactly; d stays a float; bsums are the sums of 16 values. */
static void quant_q8_K(const float *x, uint8_t *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        block_q8_K b;
        memset(&b, 0, sizeof b);
        float max = 0, amax = 0;
        for (int j = 0; j < QK_K; j++) {
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        }
        if (amax != 0) {
            const float iscale = -127.f / max;
            for (int j = 0; j < QK_K; j++) b.qs[j] = (int8_t)clamp_int(nearest_int(iscale * x[j]), -128, 127);
            for (int j = 0; j < QK_K / 16; j++) {
                int sum = 0;
                for (int l = 0; l < 16; l++) sum += b.qs[16 * j + l];
                b.bsums[j] = (int16_t)sum;
            }
            b.d = 1 / iscale;
        }
        memcpy(dst + i * sizeof b, &b, sizeof b);
    }
}

/* Finds scale and min (x ~ scale*L + min, L in 0..nmax, min <= 0) for a
 * sub-block of n weights, minimising the weighted squared error: start from
 * the min/max grid, then try nstep+1 slightly different grids (inverse
 * scales (nmax + rmin + rdelta*is)/(max - min)) and solve the least-squares
 * scale and min for each rounding, keeping the best. Returns the scale and
 * stores -min (>= 0) in *neg_min. ggml's make_qkx2_quants. */
static float fit_scale_min(int n, int nmax, const float *x, const float *w, uint8_t *L,
                           float *neg_min, float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *neg_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * L[i] + min - x[i];
        best_error += w[i] * (diff * diff);
    }
    uint8_t Laux[32];
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = clamp_int(nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (!(D > 0)) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float cur_error = 0;
        for (int i = 0; i < n; i++) {
            float diff = this_scale * Laux[i] + this_min - x[i];
            cur_error += w[i] * (diff * diff);
        }
        if (cur_error < best_error) {
            memcpy(L, Laux, (size_t)n);
            best_error = cur_error;
            scale = this_scale;
            min = this_min;
        }
    }
    *neg_min = -min;
    return scale;
}

/* The shared first half of Q4_K and Q5_K: fit each 32-weight sub-block's
 * scale and min (weights av|x| + |x_i| favour large values), quantize the 8
 * scales and 8 mins to 6 bits against the super-block's d and dmin, then
 * re-round every weight against its quantized scale/min into L. */
static void quant_k_scales(const float *x, int nmax, float rmin, float rdelta, int nstep,
                           uint8_t L[QK_K], rl_f16 *d_out, rl_f16 *dmin_out,
                           uint8_t scales_out[K_SCALE_SIZE]) {
    float scales[QK_K / 32], mins[QK_K / 32], w[32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        const float *xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(xs[l]);
        scales[j] = fit_scale_min(32, nmax, xs, w, L + 32 * j, &mins[j], rmin, rdelta, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    memset(scales_out, 0, K_SCALE_SIZE);
    for (int j = 0; j < QK_K / 32; j++) {
        /* ggml stores nearest_int into a uint8_t (wrapping) before capping */
        uint8_t ls = (uint8_t)nearest_int(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)nearest_int(inv_min * mins[j]);
        k4_put(scales_out, j, RL_MIN(63, ls), RL_MIN(63, lm));
    }
    *d_out = rl_f32_to_f16(max_scale / 63.f);
    *dmin_out = rl_f32_to_f16(max_min / 63.f);
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        k4_get(scales_out, j, &sc, &m);
        const float d = f16(*d_out) * sc;
        if (!d) continue; /* keep the fit's L: every value decodes to -dm anyway */
        const float dm = f16(*dmin_out) * m;
        for (int l = 0; l < 32; l++)
            L[32 * j + l] = (uint8_t)clamp_int(nearest_int((x[32 * j + l] + dm) / d), 0, nmax);
    }
}

static void quant_q4_K(const float *x, uint8_t *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        block_q4_K b;
        uint8_t L[QK_K];
        quant_k_scales(x, 15, -1.f, 0.1f, 20, L, &b.d, &b.dmin, b.scales);
        for (int c = 0; c < QK_K / 64; c++)
            for (int l = 0; l < 32; l++)
                b.qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
        memcpy(dst + i * sizeof b, &b, sizeof b);
    }
}

static void quant_q5_K(const float *x, uint8_t *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        block_q5_K b;
        uint8_t L[QK_K];
        quant_k_scales(x, 31, -0.5f, 0.1f, 15, L, &b.d, &b.dmin, b.scales);
        memset(b.qh, 0, sizeof b.qh);
        for (int c = 0; c < QK_K / 64; c++) {
            for (int l = 0; l < 32; l++) {
                int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
                if (l1 > 15) b.qh[l] |= (uint8_t)(1u << (2 * c));
                if (l2 > 15) b.qh[l] |= (uint8_t)(2u << (2 * c));
                b.qs[32 * c + l] = (uint8_t)((l1 & 0xF) | ((l2 & 0xF) << 4));
            }
        }
        memcpy(dst + i * sizeof b, &b, sizeof b);
    }
}

/* Symmetric scale for a group of n weights (x ~ scale*L, L in
 * -nmax..nmax-1, stored as L + nmax), weighting each value's error by x^2:
 * start from the grid where the largest magnitude maps to -nmax, try 18
 * nearby grids and keep the one with the best least-squares fit. ggml's
 * make_qx_quants with rmse_type 1 and no importance weights. */
static float fit_scale_sym(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++)
                L[i] = (int8_t)(nmax + clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q6_K: 16 groups of 16 weights, each with a signed 8-bit scale relative
 * to the super-block's d; weights are 6-bit (stored + 32). */
static void quant_q6_K(const float *x, uint8_t *dst, int64_t nb) {
    for (int64_t i = 0; i < nb; i++, x += QK_K) {
        block_q6_K b;
        memset(&b, 0, sizeof b);
        int8_t L[QK_K];
        float scales[QK_K / 16];
        float max_scale = 0, max_abs_scale = 0;
        for (int g = 0; g < QK_K / 16; g++) {
            scales[g] = fit_scale_sym(16, 32, x + 16 * g, L + 16 * g);
            if (fabsf(scales[g]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[g]);
                max_scale = scales[g];
            }
        }
        if (max_abs_scale >= GROUP_MAX_EPS) {
            const float iscale = -128.f / max_scale;
            b.d = rl_f32_to_f16(1 / iscale);
            for (int g = 0; g < QK_K / 16; g++)
                b.scales[g] = (int8_t)clamp_int(nearest_int(iscale * scales[g]), -128, 127);
            for (int g = 0; g < QK_K / 16; g++) {
                const float d = f16(b.d) * b.scales[g];
                if (!d) continue;
                for (int l = 0; l < 16; l++)
                    L[16 * g + l] = (int8_t)(clamp_int(nearest_int(x[16 * g + l] / d), -32, 31) + 32);
            }
            for (int e = 0; e < QK_K; e++) {
                const int h = e / 128, k = (e % 128) / 32, l = e % 32;
                const int q = L[e];
                b.ql[64 * h + 32 * (k & 1) + l] |= (uint8_t)((q & 0xF) << (k < 2 ? 0 : 4));
                b.qh[32 * h + l] |= (uint8_t)((q >> 4) << (2 * k));
            }
        }
        memcpy(dst + i * sizeof b, &b, sizeof b);
    }
}

int quant_quantize_row(uint32_t type, const float *src, void *dst, int64_t n) {
    if (!whole_blocks(type, n)) return -1;
    uint8_t *d = dst;
    const int64_t nb = n / quant_block_size(type);
    switch (type) {
    case RL_TYPE_F32: memcpy(d, src, (size_t)n * sizeof(float)); return 0;
    case RL_TYPE_F16:
        for (int64_t i = 0; i < n; i++) {
            rl_f16 h = rl_f32_to_f16(src[i]);
            memcpy(d + 2 * i, &h, 2);
        }
        return 0;
    case RL_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            rl_bf16 h = rl_f32_to_bf16(src[i]);
            memcpy(d + 2 * i, &h, 2);
        }
        return 0;
    case RL_TYPE_Q4_0: quant_q4_0(src, d, nb); return 0;
    case RL_TYPE_Q4_1: quant_q4_1(src, d, nb); return 0;
    case RL_TYPE_Q5_0: quant_q5_0(src, d, nb); return 0;
    case RL_TYPE_Q5_1: quant_q5_1(src, d, nb); return 0;
    case RL_TYPE_Q8_0: quant_q8_0(src, d, nb); return 0;
    case RL_TYPE_Q8_1: quant_q8_1(src, d, nb); return 0;
    case RL_TYPE_Q4_K: quant_q4_K(src, d, nb); return 0;
    case RL_TYPE_Q5_K: quant_q5_K(src, d, nb); return 0;
    case RL_TYPE_Q6_K: quant_q6_K(src, d, nb); return 0;
    case RL_TYPE_Q8_K: quant_q8_K(src, d, nb); return 0;
    default: return -1;
    }
}

/* ------------------------------------------------------------------ */
/* Dot products                                                        */
/* ------------------------------------------------------------------ */

/* F32/F16/BF16: products in float, summed in double (ggml's scalar path). */
static float dot_float(uint32_t type, int64_t n, const uint8_t *w, const uint8_t *a) {
    double sum = 0;
    const size_t es = type == RL_TYPE_F32 ? 4 : 2;
    for (int64_t i = 0; i < n; i++) {
        float x, y;
        if (type == RL_TYPE_F32) {
            x = rl_load_f32(w + 4 * i);
            y = rl_load_f32(a + 4 * i);
        } else {
            uint16_t hx, hy;
            memcpy(&hx, w + es * i, 2);
            memcpy(&hy, a + es * i, 2);
            x = type == RL_TYPE_F16 ? rl_f16_to_f32(hx) : rl_bf16_to_f32(hx);
            y = type == RL_TYPE_F16 ? rl_f16_to_f32(hy) : rl_bf16_to_f32(hy);
        }
        sum += (double)(x * y);
    }
    return (float)sum;
}

static float dot_q4_0(int64_t nb, const uint8_t *w, const uint8_t *a) {
    float sum = 0;
    for (int64_t i = 0; i < nb; i++) {
        block_q4_0 x;
        block_q8_0 y;
        memcpy(&x, w + i * sizeof x, sizeof x);
        memcpy(&y, a + i * sizeof y, sizeof y);
        int isum = 0;
        for (int j = 0; j < 16; j++)
            isum += ((x.qs[j] & 0xF) - 8) * y.qs[j] + ((x.qs[j] >> 4) - 8) * y.qs[j + 16];
        sum += isum * f16(x.d) * f16(y.d);
    }
    return sum;
}

/* Q4_1: sum (d*q + m) * a = d*da*sum(q*qa) + m * (da*sum(qa)) = ... + m*s. */
static float dot_q4_1(int64_t nb, const uint8_t *w, const uint8_t *a) {
    float sum = 0;
    for (int64_t i = 0; i < nb; i++) {
        block_q4_1 x;
        block_q8_1 y;
        memcpy(&x, w + i * sizeof x, sizeof x);
        memcpy(&y, a + i * sizeof y, sizeof y);
        int isum = 0;
        for (int j = 0; j < 16; j++) isum += (x.qs[j] & 0xF) * y.qs[j] + (x.qs[j] >> 4) * y.qs[j + 16];
        sum += (f16(x.d) * f16(y.d)) * isum + f16(x.m) * f16(y.s);
    }
    return sum;
}

static float dot_q5_0(int64_t nb, const uint8_t *w, const uint8_t *a) {
    float sum = 0;
    for (int64_t i = 0; i < nb; i++) {
        block_q5_0 x;
        block_q8_0 y;
        memcpy(&x, w + i * sizeof x, sizeof x);
        memcpy(&y, a + i * sizeof y, sizeof y);
        int isum = 0;
        for (int j = 0; j < 16; j++)
            isum += (((x.qs[j] & 0xF) | q5_high(x.qh, j)) - 16) * y.qs[j] +
                    (((x.qs[j] >> 4) | q5_high(x.qh, j + 16)) - 16) * y.qs[j + 16];
        sum += (f16(x.d) * f16(y.d)) * isum;
    }
    return sum;
}

static float dot_q5_1(int64_t nb, const uint8_t *w, const uint8_t *a) {
    float sum = 0;
    for (int64_t i = 0; i < nb; i++) {
        block_q5_1 x;
        block_q8_1 y;
        memcpy(&x, w + i * sizeof x, sizeof x);
        memcpy(&y, a + i * sizeof y, sizeof y);
        int isum = 0;
        for (int j = 0; j < 16; j++)
            isum += ((x.qs[j] & 0xF) | q5_high(x.qh, j)) * y.qs[j] + ((x.qs[j] >> 4) | q5_high(x.qh, j + 16)) * y.qs[j + 16];
        sum += (f16(x.d) * f16(y.d)) * isum + f16(x.m) * f16(y.s);
    }
    return sum;
}

static float dot_q8_0(int64_t nb, const uint8_t *w, const uint8_t *a) {
    float sum = 0;
    for (int64_t i = 0; i < nb; i++) {
        block_q8_0 x, y;
        memcpy(&x, w + i * sizeof x, sizeof x);
        memcpy(&y, a + i * sizeof y, sizeof y);
        int isum = 0;
        for (int j = 0; j < QK8_0; j++) isum += x.qs[j] * y.qs[j];
        sum += isum * (f16(x.d) * f16(y.d));
    }
    return sum;
}

/* Q4_K/Q5_K: sum_j (d*sc_j*q - dmin*m_j) * da*qa
 *          = d*da * sum_j sc_j*sum(q*qa) - dmin*da * sum_j m_j*sum(qa),
 * where sum(qa) over a sub-block is two of Q8_K's bsums. `q` holds the
 * block's 256 unsigned quant values. */
static float dot_k4_block(const uint8_t scales[K_SCALE_SIZE], float d, float dmin, const int q[QK_K],
                          const block_q8_K *y) {
    int isum = 0, isum_min = 0;
    for (int j = 0; j < QK_K / 32; j++) {
        uint8_t sc, m;
        k4_get(scales, j, &sc, &m);
        int s = 0;
        for (int l = 0; l < 32; l++) s += q[32 * j + l] * y->qs[32 * j + l];
        isum += sc * s;
        isum_min += m * (y->bsums[2 * j] + y->bsums[2 * j + 1]);
    }
    return d * y->d * isum - dmin * y->d * isum_min;
}

static float dot_q4_K(int64_t nb, const uint8_t *w, const uint8_t *a) {
    float sum = 0;
    for (int64_t i = 0; i < nb; i++) {
        block_q4_K x;
        block_q8_K y;
        memcpy(&x, w + i * sizeof x, sizeof x);
        memcpy(&y, a + i * sizeof y, sizeof y);
        int q[QK_K];
        for (int c = 0; c < QK_K / 64; c++)
            for (int l = 0; l < 32; l++) {
                q[64 * c + l] = x.qs[32 * c + l] & 0xF;
                q[64 * c + 32 + l] = x.qs[32 * c + l] >> 4;
            }
        sum += dot_k4_block(x.scales, f16(x.d), f16(x.dmin), q, &y);
    }
    return sum;
}

static float dot_q5_K(int64_t nb, const uint8_t *w, const uint8_t *a) {
    float sum = 0;
    for (int64_t i = 0; i < nb; i++) {
        block_q5_K x;
        block_q8_K y;
        memcpy(&x, w + i * sizeof x, sizeof x);
        memcpy(&y, a + i * sizeof y, sizeof y);
        int q[QK_K];
        for (int c = 0; c < QK_K / 64; c++)
            for (int l = 0; l < 32; l++) {
                q[64 * c + l] = (x.qs[32 * c + l] & 0xF) | (((x.qh[l] >> (2 * c)) & 1) << 4);
                q[64 * c + 32 + l] = (x.qs[32 * c + l] >> 4) | (((x.qh[l] >> (2 * c + 1)) & 1) << 4);
            }
        sum += dot_k4_block(x.scales, f16(x.d), f16(x.dmin), q, &y);
    }
    return sum;
}

static float dot_q6_K(int64_t nb, const uint8_t *w, const uint8_t *a) {
    float sum = 0;
    for (int64_t i = 0; i < nb; i++) {
        block_q6_K x;
        block_q8_K y;
        memcpy(&x, w + i * sizeof x, sizeof x);
        memcpy(&y, a + i * sizeof y, sizeof y);
        int isum = 0;
        for (int g = 0; g < QK_K / 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += (q6_value(&x, 16 * g + l) - 32) * y.qs[16 * g + l];
            isum += x.scales[g] * s;
        }
        sum += f16(x.d) * y.d * isum;
    }
    return sum;
}

float quant_dot_ref(uint32_t type, int64_t n, const void *w, const void *act) {
    if (!quant_supported(type) || !whole_blocks(type, n)) return NAN;
    const int64_t nb = n / quant_block_size(type);
    switch (type) {
    case RL_TYPE_Q4_0: return dot_q4_0(nb, w, act);
    case RL_TYPE_Q4_1: return dot_q4_1(nb, w, act);
    case RL_TYPE_Q5_0: return dot_q5_0(nb, w, act);
    case RL_TYPE_Q5_1: return dot_q5_1(nb, w, act);
    case RL_TYPE_Q8_0: return dot_q8_0(nb, w, act);
    case RL_TYPE_Q4_K: return dot_q4_K(nb, w, act);
    case RL_TYPE_Q5_K: return dot_q5_K(nb, w, act);
    case RL_TYPE_Q6_K: return dot_q6_K(nb, w, act);
    default: return dot_float(type, n, w, act);
    }
}
