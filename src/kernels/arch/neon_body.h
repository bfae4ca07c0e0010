/*
 * neon_body.h — the aarch64 kernels, written once and compiled three times:
 * neon_kernels.c (ARMv8.0 NEON), dotprod_kernels.c (+ SDOT) and
 * i8mm_kernels.c (+ SMMLA), each defining ARM_LEVEL (0, 1, 2) and
 * IMPL_NAME before including this file. The levels differ only in how an
 * int8 dot product is formed (dot16, dots2x2 below); everything else is
 * shared.
 *
 * Structure (the same arithmetic as the AVX2 kernels, laid out for NEON):
 *  - weights are unpacked per block to signed bytes, 4 rows at a time
 *    (Q4_0 q-8, Q5_0 q-16, Q6_K q-32, Q8_0 as stored; Q4_1/Q5_1/Q4_K/Q5_K
 *    keep their unsigned values, which fit a signed byte), and multiplied
 *    with the activation's signed bytes: signed x signed needs no offset
 *    tricks on Arm;
 *  - every (row, activation) pair gets the exact integer sum per block (per
 *    super-block for K-quants, scales applied in int32), the reference's
 *    integers; then the 4 rows' sums sit in one vector (lanes = rows) and
 *    are scaled in float per block, always with the same operations. So a
 *    row's result is the same whether its activation row came alone or in
 *    a batch, and whichever level computed the integers.
 */
#include <arm_neon.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../kernels_impl.h"
#include "../quant.h"

#if ARM_LEVEL >= 1
#define HAVE_SDOT 1
#endif
#if ARM_LEVEL >= 2
#define HAVE_SMMLA 1
#endif

#define UNROLL _Pragma("GCC unroll 8")

/* ------------------------------------------------------------------ */
/* integer dot products                                                */
/* ------------------------------------------------------------------ */

/* acc + products of 16 signed bytes, spread over 4 lanes (only the lanes'
 * total is used). Without SDOT: widening multiplies, pairwise widening
 * adds; a product of two bytes fits int16 (|x| <= 128 * 128). */
static inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
#ifdef HAVE_SDOT
    return vdotq_s32(acc, a, b);
#else
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
#endif
}

/* Lane i = sum of the lanes of v[i]. */
static inline int32x4_t sum4(int32x4_t v0, int32x4_t v1, int32x4_t v2, int32x4_t v3) {
    return vpaddq_s32(vpaddq_s32(v0, v1), vpaddq_s32(v2, v3));
}

static inline float f16(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return rl_f16_to_f32(h);
}

/* The fp16 at p[i] of 4 rows as 4 floats. */
static inline float32x4_t f16x4(const uint8_t *const p[4]) {
    uint16_t h[4];
    for (int i = 0; i < 4; i++) memcpy(&h[i], p[i], 2);
    return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(h)));
}

static inline void store4(float *y, float32x4_t v, int rows) {
    if (rows == 4) {
        vst1q_f32(y, v);
    } else {
        float tmp[4];
        vst1q_f32(tmp, v);
        memcpy(y, tmp, (size_t)rows * sizeof(float));
    }
}

/* ------------------------------------------------------------------ */
/* weights: one block of one row as signed bytes                       */
/* ------------------------------------------------------------------ */

typedef enum wkind { W_Q4_0, W_Q4_1, W_Q5_0, W_Q5_1, W_Q8_0, W_Q4_K, W_Q5_K, W_Q6_K } wkind;

static size_t kind_bytes(wkind k) {
    switch (k) {
    case W_Q4_0: return sizeof(block_q4_0);
    case W_Q4_1: return sizeof(block_q4_1);
    case W_Q5_0: return sizeof(block_q5_0);
    case W_Q5_1: return sizeof(block_q5_1);
    case W_Q8_0: return sizeof(block_q8_0);
    case W_Q4_K: return sizeof(block_q4_K);
    case W_Q5_K: return sizeof(block_q5_K);
    default: return sizeof(block_q6_K);
    }
}

/* 16 bytes: 0x10 where bit j (of the 16 bits at `bits`) is set. */
static inline uint8x16_t bit4_16(uint16_t bits) {
    static const uint8_t mask[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint8x16_t v = vcombine_u8(vdup_n_u8((uint8_t)bits), vdup_n_u8((uint8_t)(bits >> 8)));
    return vandq_u8(vtstq_u8(v, vld1q_u8(mask)), vdupq_n_u8(0x10));
}

/* 32 weights of a 32-block. */
static inline void unpack32(wkind k, const uint8_t *blk, int8_t *w) {
    const uint8x16_t low4 = vdupq_n_u8(0x0f);
    if (k == W_Q8_0) {
        memcpy(w, blk + 2, 32);
        return;
    }
    size_t qs = k == W_Q4_0 ? 2 : k == W_Q4_1 ? 4 : k == W_Q5_0 ? 6 : 8;
    uint8x16_t q = vld1q_u8(blk + qs);
    uint8x16_t lo = vandq_u8(q, low4), hi = vshrq_n_u8(q, 4);
    if (k == W_Q5_0 || k == W_Q5_1) {
        uint32_t qh;
        memcpy(&qh, blk + (k == W_Q5_0 ? 2 : 4), 4);
        lo = vorrq_u8(lo, bit4_16((uint16_t)qh));
        hi = vorrq_u8(hi, bit4_16((uint16_t)(qh >> 16)));
    }
    int8x16_t l = vreinterpretq_s8_u8(lo), h = vreinterpretq_s8_u8(hi);
    if (k == W_Q4_0 || k == W_Q5_0) {
        int8x16_t off = vdupq_n_s8(k == W_Q4_0 ? 8 : 16);
        l = vsubq_s8(l, off);
        h = vsubq_s8(h, off);
    }
    vst1q_s8(w, l);
    vst1q_s8(w + 16, h);
}

/* 256 weights of a K-quant super-block (Q6_K: q - 32). */
static inline void unpack256(wkind k, const uint8_t *blk, int8_t *w) {
    const uint8x16_t low4 = vdupq_n_u8(0x0f);
    if (k == W_Q6_K) {
        const block_q6_K *b = (const block_q6_K *)blk;
        for (int h = 0; h < 2; h++)
            for (int half = 0; half < 2; half++) { /* 16 of the 32 l's at a time */
                int l0 = 16 * half;
                uint8x16_t qh = vld1q_u8(b->qh + 32 * h + l0);
                uint8x16_t ql0 = vld1q_u8(b->ql + 64 * h + l0), ql1 = vld1q_u8(b->ql + 64 * h + 32 + l0);
                uint8x16_t lo[4] = {vandq_u8(ql0, low4), vandq_u8(ql1, low4), vshrq_n_u8(ql0, 4), vshrq_n_u8(ql1, 4)};
                for (int kk = 0; kk < 4; kk++) {
                    uint8x16_t top = vandq_u8(vshlq_u8(qh, vdupq_n_s8((int8_t)(-2 * kk))), vdupq_n_u8(3));
                    uint8x16_t u = vorrq_u8(lo[kk], vshlq_n_u8(top, 4));
                    vst1q_s8(w + 128 * h + 32 * kk + l0, vsubq_s8(vreinterpretq_s8_u8(u), vdupq_n_s8(32)));
                }
            }
        return;
    }
    const uint8_t *qs = blk + (k == W_Q4_K ? offsetof(block_q4_K, qs) : offsetof(block_q5_K, qs));
    for (int c = 0; c < 4; c++)
        for (int half = 0; half < 2; half++) {
            uint8x16_t q = vld1q_u8(qs + 32 * c + 16 * half);
            uint8x16_t lo = vandq_u8(q, low4), hi = vshrq_n_u8(q, 4);
            if (k == W_Q5_K) {
                const block_q5_K *b = (const block_q5_K *)blk;
                uint8x16_t qh = vld1q_u8(b->qh + 16 * half);
                uint8x16_t blo = vdupq_n_u8((uint8_t)(1u << (2 * c))), bhi = vdupq_n_u8((uint8_t)(2u << (2 * c)));
                lo = vorrq_u8(lo, vandq_u8(vtstq_u8(qh, blo), vdupq_n_u8(0x10)));
                hi = vorrq_u8(hi, vandq_u8(vtstq_u8(qh, bhi), vdupq_n_u8(0x10)));
            }
            vst1q_u8((uint8_t *)w + 64 * c + 16 * half, lo);
            vst1q_u8((uint8_t *)w + 64 * c + 32 + 16 * half, hi);
        }
}

/* Q4_K/Q5_K: the 6-bit scale and min of sub-block j. */
static inline void k4_scale_min(const uint8_t *q, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* ------------------------------------------------------------------ */
/* exact block sums for 4 rows x up to 4 activation rows               */
/* ------------------------------------------------------------------ */

enum { TT = 4 };

/* Integer dot products of 4 unpacked weight rows (w + i*ld) with T
 * activation rows (a[t]) over n elements (a multiple of 16), each as the
 * lanes of acc[t][i] (summed later). */
static inline void dots(const int8_t *w, size_t ld, const int8_t *const *a, int T, int n,
                        int32x4_t acc[TT][4]) {
    for (int t = 0; t < T; t++)
        for (int i = 0; i < 4; i++) acc[t][i] = vdupq_n_s32(0);
#ifdef HAVE_SMMLA
    /* pairs of activation rows with SMMLA: 2 weight rows x 2 activations
     * x 8 elements per instruction, [r t, r t+1, r+1 t, r+1 t+1] */
    int t = 0;
    for (; t + 2 <= T; t += 2) {
        int32x4_t p01 = vdupq_n_s32(0), p23 = vdupq_n_s32(0);
        for (int e = 0; e < n; e += 16) {
            int64x2_t a0 = vreinterpretq_s64_s8(vld1q_s8(a[t] + e)), a1 = vreinterpretq_s64_s8(vld1q_s8(a[t + 1] + e));
            int8x16_t b0 = vreinterpretq_s8_s64(vzip1q_s64(a0, a1)), b1 = vreinterpretq_s8_s64(vzip2q_s64(a0, a1));
            int64x2_t w0 = vreinterpretq_s64_s8(vld1q_s8(w + e)), w1 = vreinterpretq_s64_s8(vld1q_s8(w + ld + e));
            int64x2_t w2 = vreinterpretq_s64_s8(vld1q_s8(w + 2 * ld + e)), w3 = vreinterpretq_s64_s8(vld1q_s8(w + 3 * ld + e));
            p01 = vmmlaq_s32(p01, vreinterpretq_s8_s64(vzip1q_s64(w0, w1)), b0);
            p01 = vmmlaq_s32(p01, vreinterpretq_s8_s64(vzip2q_s64(w0, w1)), b1);
            p23 = vmmlaq_s32(p23, vreinterpretq_s8_s64(vzip1q_s64(w2, w3)), b0);
            p23 = vmmlaq_s32(p23, vreinterpretq_s8_s64(vzip2q_s64(w2, w3)), b1);
        }
        /* one lane each: the sum is the exact dot product */
        int32x4_t z = vdupq_n_s32(0);
        int32x4_t t0 = vuzp1q_s32(p01, p23), t1 = vuzp2q_s32(p01, p23); /* lanes = rows 0..3 */
        for (int i = 0; i < 4; i++) {
            acc[t][i] = vsetq_lane_s32(vgetq_lane_s32(t0, 0), z, 0);
            acc[t + 1][i] = vsetq_lane_s32(vgetq_lane_s32(t1, 0), z, 0);
            t0 = vextq_s32(t0, t0, 1);
            t1 = vextq_s32(t1, t1, 1);
        }
    }
    for (; t < T; t++)
#else
    for (int t = 0; t < T; t++)
#endif
        for (int e = 0; e < n; e += 16) {
            int8x16_t av = vld1q_s8(a[t] + e);
            for (int i = 0; i < 4; i++) acc[t][i] = dot16(acc[t][i], vld1q_s8(w + i * ld + e), av);
        }
}

/* ------------------------------------------------------------------ */
/* 32-element block formats                                            */
/* ------------------------------------------------------------------ */

static inline __attribute__((always_inline)) void gemm32(wkind k, const kern_gemm_args *g) {
    const int64_t nb = g->cols / 32;
    const size_t bb = kind_bytes(k);
    const bool aff = k == W_Q4_1 || k == W_Q5_1;
    int8_t w[4][32];
    for (int64_t r = g->r0; r < g->r1; r += 4) {
        int rows = (int)RL_MIN(4, g->r1 - r);
        const uint8_t *row[4];
        for (int i = 0; i < 4; i++) row[i] = g->w + (size_t)(r + (i < rows ? i : 0)) * g->w_stride;
        for (int t0 = 0; t0 < g->n; t0 += TT) {
            int T = RL_MIN(TT, g->n - t0);
            kact_q8 A[TT];
            for (int t = 0; t < T; t++) A[t] = kact_q8_view(g->a + (size_t)(t0 + t) * g->a_stride, g->cols);
            float32x4_t acc[TT];
            for (int t = 0; t < T; t++) acc[t] = vdupq_n_f32(0);
            for (int64_t b = 0; b < nb; b++) {
                const uint8_t *blk[4], *mblk[4];
                for (int i = 0; i < 4; i++) {
                    blk[i] = row[i] + (size_t)b * bb;
                    mblk[i] = blk[i] + 2;
                    unpack32(k, blk[i], w[i]);
                }
                const int8_t *a[TT];
                for (int t = 0; t < T; t++) a[t] = A[t].q + 32 * b;
                int32x4_t d[TT][4];
                dots(&w[0][0], 32, a, T, 32, d);
                float32x4_t sc = f16x4(blk), mn = aff ? f16x4(mblk) : vdupq_n_f32(0);
                for (int t = 0; t < T; t++) {
                    int32x4_t s = sum4(d[t][0], d[t][1], d[t][2], d[t][3]);
                    acc[t] = vfmaq_f32(acc[t], vcvtq_f32_s32(s), vmulq_n_f32(sc, A[t].d[b]));
                    if (aff) acc[t] = vfmaq_n_f32(acc[t], mn, A[t].s[b]);
                }
            }
            for (int t = 0; t < T; t++) store4(g->y + (size_t)(t0 + t) * g->ldy + r, acc[t], rows);
        }
    }
}

/* ------------------------------------------------------------------ */
/* K-quants                                                            */
/* ------------------------------------------------------------------ */

static inline __attribute__((always_inline)) void gemmk(wkind k, const kern_gemm_args *g) {
    const int64_t nsb = g->cols / QK_K;
    const size_t bb = kind_bytes(k);
    int8_t w[4][QK_K];
    for (int64_t r = g->r0; r < g->r1; r += 4) {
        int rows = (int)RL_MIN(4, g->r1 - r);
        const uint8_t *row[4];
        for (int i = 0; i < 4; i++) row[i] = g->w + (size_t)(r + (i < rows ? i : 0)) * g->w_stride;
        for (int t0 = 0; t0 < g->n; t0 += TT) {
            int T = RL_MIN(TT, g->n - t0);
            kact_q8 A[TT];
            for (int t = 0; t < T; t++) A[t] = kact_q8_view(g->a + (size_t)(t0 + t) * g->a_stride, g->cols);
            float32x4_t acc[TT];
            for (int t = 0; t < T; t++) acc[t] = vdupq_n_f32(0);
            for (int64_t s = 0; s < nsb; s++) {
                const uint8_t *blk[4], *dmin_at[4], *d_at[4];
                int sc[4][16], mn[4][8];
                for (int i = 0; i < 4; i++) {
                    blk[i] = row[i] + (size_t)s * bb;
                    unpack256(k, blk[i], w[i]);
                    if (k == W_Q6_K) {
                        const block_q6_K *q6 = (const block_q6_K *)blk[i];
                        for (int gi = 0; gi < 16; gi++) sc[i][gi] = q6->scales[gi];
                        d_at[i] = blk[i] + offsetof(block_q6_K, d);
                    } else {
                        for (int j = 0; j < 8; j++)
                            k4_scale_min(blk[i] + offsetof(block_q4_K, scales), j, &sc[i][j], &mn[i][j]);
                        d_at[i] = blk[i];
                        dmin_at[i] = blk[i] + 2;
                    }
                }
                /* isum[t][i] = sum over groups of scale * dot (lanes summed
                 * later); groups of 16 (Q6_K) or 32 */
                const int gsize = k == W_Q6_K ? 16 : 32, ng = QK_K / gsize;
                int32x4_t isum[TT][4];
                for (int t = 0; t < T; t++)
                    for (int i = 0; i < 4; i++) isum[t][i] = vdupq_n_s32(0);
                for (int gi = 0; gi < ng; gi++) {
                    const int8_t *a[TT];
                    for (int t = 0; t < T; t++) a[t] = A[t].q + QK_K * s + gsize * gi;
                    int32x4_t d[TT][4];
                    dots(&w[0][gsize * gi], QK_K, a, T, gsize, d);
                    for (int t = 0; t < T; t++)
                        for (int i = 0; i < 4; i++) isum[t][i] = vmlaq_n_s32(isum[t][i], d[t][i], sc[i][gi]);
                }
                float32x4_t dv = f16x4(d_at), dminv = k == W_Q6_K ? vdupq_n_f32(0) : f16x4(dmin_at);
                for (int t = 0; t < T; t++) {
                    const float da = A[t].d[8 * s];
                    int32x4_t is = sum4(isum[t][0], isum[t][1], isum[t][2], isum[t][3]);
                    acc[t] = vfmaq_f32(acc[t], vcvtq_f32_s32(is), vmulq_n_f32(dv, da));
                    if (k != W_Q6_K) {
                        /* mins times the activation's sums of 32 */
                        const int16_t *bs = A[t].sum16 + 16 * s;
                        int32_t ms[4];
                        for (int i = 0; i < 4; i++) {
                            int32_t m = 0;
                            for (int j = 0; j < 8; j++) m += mn[i][j] * (bs[2 * j] + bs[2 * j + 1]);
                            ms[i] = m;
                        }
                        acc[t] = vfmsq_f32(acc[t], vcvtq_f32_s32(vld1q_s32(ms)), vmulq_n_f32(dminv, da));
                    }
                }
            }
            for (int t = 0; t < T; t++) store4(g->y + (size_t)(t0 + t) * g->ldy + r, acc[t], rows);
        }
    }
}

static void gemm_q4_0(const kern_gemm_args *g) { gemm32(W_Q4_0, g); }
static void gemm_q4_1(const kern_gemm_args *g) { gemm32(W_Q4_1, g); }
static void gemm_q5_0(const kern_gemm_args *g) { gemm32(W_Q5_0, g); }
static void gemm_q5_1(const kern_gemm_args *g) { gemm32(W_Q5_1, g); }
static void gemm_q8_0(const kern_gemm_args *g) { gemm32(W_Q8_0, g); }
static void gemm_q4_K(const kern_gemm_args *g) { gemmk(W_Q4_K, g); }
static void gemm_q5_K(const kern_gemm_args *g) { gemmk(W_Q5_K, g); }
static void gemm_q6_K(const kern_gemm_args *g) { gemmk(W_Q6_K, g); }

/* ------------------------------------------------------------------ */
/* float weights                                                       */
/* ------------------------------------------------------------------ */

typedef enum ffmt { F_F32, F_F16, F_BF16 } ffmt;

static inline float32x4_t load_w4(ffmt f, const uint8_t *row, int64_t i) {
    switch (f) {
    case F_F16: return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)(row + 2 * i))));
    case F_BF16: return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)(row + 2 * i)), 16));
    default: return vld1q_f32((const float *)(row + 4 * i));
    }
}

static inline float load_w1(ffmt f, const uint8_t *row, int64_t i) {
    uint16_t h;
    switch (f) {
    case F_F16: memcpy(&h, row + 2 * i, 2); return rl_f16_to_f32(h);
    case F_BF16: memcpy(&h, row + 2 * i, 2); return rl_bf16_to_f32(h);
    default: return rl_load_f32(row + 4 * i);
    }
}

/* Each (row, activation) pair: one accumulator over chunks of 4, its lanes
 * added, then the tail: the same operations whatever the tile. */
static inline __attribute__((always_inline)) void gemmf(ffmt f, const kern_gemm_args *g) {
    for (int64_t r = g->r0; r < g->r1; r += 4) {
        int R = (int)RL_MIN(4, g->r1 - r);
        for (int t0 = 0; t0 < g->n; t0 += 2) {
            int T = RL_MIN(2, g->n - t0);
            const float *a[2];
            for (int t = 0; t < T; t++) a[t] = (const float *)(g->a + (size_t)(t0 + t) * g->a_stride);
            float32x4_t acc[4][2];
            for (int i = 0; i < R; i++)
                for (int t = 0; t < T; t++) acc[i][t] = vdupq_n_f32(0);
            int64_t c = 0;
            for (; c + 4 <= g->cols; c += 4) {
                float32x4_t av[2];
                for (int t = 0; t < T; t++) av[t] = vld1q_f32(a[t] + c);
                for (int i = 0; i < R; i++) {
                    float32x4_t wv = load_w4(f, g->w + (size_t)(r + i) * g->w_stride, c);
                    for (int t = 0; t < T; t++) acc[i][t] = vfmaq_f32(acc[i][t], wv, av[t]);
                }
            }
            for (int i = 0; i < R; i++)
                for (int t = 0; t < T; t++) {
                    float s = vaddvq_f32(acc[i][t]);
                    for (int64_t k = c; k < g->cols; k++) s += load_w1(f, g->w + (size_t)(r + i) * g->w_stride, k) * a[t][k];
                    g->y[(size_t)(t0 + t) * g->ldy + r + i] = s;
                }
        }
    }
}

static void gemm_f32(const kern_gemm_args *g) { gemmf(F_F32, g); }
static void gemm_f16(const kern_gemm_args *g) { gemmf(F_F16, g); }
static void gemm_bf16(const kern_gemm_args *g) { gemmf(F_BF16, g); }

/* ------------------------------------------------------------------ */
/* activation converters (bit-identical to kact_convert_ref)           */
/* ------------------------------------------------------------------ */

/* Largest |x| of n (a multiple of 4) floats, NaNs skipped (FMAXNM). */
static inline float abs_max(const float *x, int n) {
    float32x4_t m = vdupq_n_f32(0);
    for (int i = 0; i < n; i += 4) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + i)));
    return vmaxnmvq_f32(m);
}

/* 32 int32 (8 vectors) -> 32 int8, saturating (= clamping). */
static inline void narrow32(const int32x4_t v[8], int8_t *q) {
    for (int h = 0; h < 2; h++) {
        int16x8_t a = vcombine_s16(vqmovn_s32(v[4 * h]), vqmovn_s32(v[4 * h + 1]));
        int16x8_t b = vcombine_s16(vqmovn_s32(v[4 * h + 2]), vqmovn_s32(v[4 * h + 3]));
        vst1q_s8(q + 16 * h, vcombine_s8(vqmovn_s16(a), vqmovn_s16(b)));
    }
}

/* The sums, s and biased copy of a row's blocks, from its q and d. */
static void q8_fields(kact_q8 v, int64_t cols, bool s_is_set) {
    for (int64_t b = 0; b < cols / 32; b++) {
        int8x16_t q0 = vld1q_s8(v.q + 32 * b), q1 = vld1q_s8(v.q + 32 * b + 16);
        int s0 = vaddlvq_s8(q0), s1 = vaddlvq_s8(q1);
        ((int16_t *)v.sum16)[2 * b] = (int16_t)s0;
        ((int16_t *)v.sum16)[2 * b + 1] = (int16_t)s1;
        ((int32_t *)v.sum)[b] = s0 + s1;
        if (!s_is_set) ((float *)v.s)[b] = v.d[b] * (float)(s0 + s1);
        const uint8x16_t bias = vdupq_n_u8(0x80);
        vst1q_u8((uint8_t *)v.qb + 32 * b, veorq_u8(vreinterpretq_u8_s8(q0), bias));
        vst1q_u8((uint8_t *)v.qb + 32 * b + 16, veorq_u8(vreinterpretq_u8_s8(q1), bias));
    }
}

static void convert_q8_0(const float *x, uint8_t *out, int64_t cols, bool q8_1) {
    kact_q8 v = kact_q8_view(out, cols);
    for (int64_t b = 0; b < cols / 32; b++, x += 32) {
        const float d = abs_max(x, 32) / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        int32x4_t i[8];
        int sum = 0;
        for (int k = 0; k < 8; k++) {
            i[k] = vcvtaq_s32_f32(vmulq_n_f32(vld1q_f32(x + 4 * k), id)); /* roundf: halves away from zero */
            sum += vaddvq_s32(i[k]);
        }
        narrow32(i, (int8_t *)v.q + 32 * b);
        ((float *)v.d)[b] = rl_f16_to_f32(rl_f32_to_f16(d));
        if (q8_1) ((float *)v.s)[b] = rl_f16_to_f32(rl_f32_to_f16((float)sum * d));
    }
    q8_fields(v, cols, q8_1);
}

static void convert_q8_K(const float *x, uint8_t *out, int64_t cols) {
    kact_q8 v = kact_q8_view(out, cols);
    for (int64_t blk = 0; blk < cols / QK_K; blk++, x += QK_K) {
        const float amax = abs_max(x, QK_K);
        int8_t *q = (int8_t *)v.q + QK_K * blk;
        if (amax == 0) {
            memset(q, 0, QK_K);
            for (int j = 0; j < 8; j++) ((float *)v.d)[8 * blk + j] = 0;
            continue;
        }
        float max = 0;
        for (int j = 0; j < QK_K; j++)
            if (fabsf(x[j]) == amax) {
                max = x[j];
                break;
            }
        const float iscale = -127.f / max;
        for (int j = 0; j < QK_K; j += 32) {
            int32x4_t i[8];
            for (int k = 0; k < 8; k++) i[k] = vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + j + 4 * k), iscale));
            narrow32(i, q + j);
        }
        for (int j = 0; j < 8; j++) ((float *)v.d)[8 * blk + j] = 1 / iscale;
    }
    q8_fields(v, cols, false);
}

static void convert_f16r(const float *x, float *y, int64_t cols) {
    int64_t i = 0;
    for (; i + 4 <= cols; i += 4) vst1q_f32(y + i, vcvt_f32_f16(vcvt_f16_f32(vld1q_f32(x + i))));
    for (; i < cols; i++) y[i] = rl_f16_to_f32(rl_f32_to_f16(x[i]));
}

static void convert_bf16r(const float *x, float *y, int64_t cols) {
    for (int64_t i = 0; i < cols; i++) y[i] = rl_bf16_to_f32(rl_f32_to_bf16(x[i]));
}

static int convert_act(kern_act act, const float *x, uint8_t *out, int64_t cols) {
    switch (act) {
    case KACT_Q8_0: convert_q8_0(x, out, cols, false); return 0;
    case KACT_Q8_1: convert_q8_0(x, out, cols, true); return 0;
    case KACT_Q8_K: convert_q8_K(x, out, cols); return 0;
    case KACT_F16R: convert_f16r(x, (float *)out, cols); return 0;
    case KACT_BF16R: convert_bf16r(x, (float *)out, cols); return 0;
    default: return -1;
    }
}

/* ------------------------------------------------------------------ */
/* vector operations                                                   */
/* ------------------------------------------------------------------ */

/* exp(x), 4 at a time: the AVX2 version's reduction and polynomial. */
static inline float32x4_t exp4(float32x4_t x) {
    const float32x4_t hi = vdupq_n_f32(88.7228391f), lo = vdupq_n_f32(-87.3365478f);
    uint32x4_t under = vcltq_f32(x, lo), over = vcgtq_f32(x, hi);
    float32x4_t xc = vmaxq_f32(vminq_f32(x, hi), lo);
    float32x4_t n = vrndnq_f32(vmulq_n_f32(xc, 1.44269504f));
    float32x4_t r = vfmsq_f32(xc, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    int32x4_t ni = vcvtq_s32_f32(n);
    int32x4_t n1 = vshrq_n_s32(ni, 1), n2 = vsubq_s32(ni, n1);
    float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, vdupq_n_s32(127)), 23));
    float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, vdupq_n_s32(127)), 23));
    float32x4_t y = vmulq_f32(vmulq_f32(p, s1), s2);
    y = vbslq_f32(under, vdupq_n_f32(0), y);
    return vbslq_f32(over, vdupq_n_f32(__builtin_inff()), y);
}

static void rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps) {
    float64x2_t s0 = vdupq_n_f64(0), s1 = vdupq_n_f64(0);
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        float32x4_t sq = vmulq_f32(v, v);
        s0 = vaddq_f64(s0, vcvt_f64_f32(vget_low_f32(sq)));
        s1 = vaddq_f64(s1, vcvt_high_f64_f32(sq));
    }
    double sum = vaddvq_f64(vaddq_f64(s0, s1));
    for (; i < n; i++) sum += (double)(x[i] * x[i]);
    const float scale = 1.0f / sqrtf((float)(sum / (double)n) + eps);
    for (i = 0; i + 4 <= n; i += 4) vst1q_f32(y + i, vmulq_f32(vmulq_n_f32(vld1q_f32(x + i), scale), vld1q_f32(w + i)));
    for (; i < n; i++) y[i] = x[i] * scale * w[i];
}

static void swiglu(float *y, const float *g, const float *u, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t gv = vld1q_f32(g + i);
        float32x4_t silu = vdivq_f32(gv, vaddq_f32(vdupq_n_f32(1.0f), exp4(vnegq_f32(gv))));
        vst1q_f32(y + i, vmulq_f32(silu, vld1q_f32(u + i)));
    }
    for (; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void add(float *x, const float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vaddq_f32(vld1q_f32(x + i), vld1q_f32(y + i)));
    for (; i < n; i++) x[i] += y[i];
}

static void to_f16(rl_f16 *dst, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(dst + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src + i))));
    for (; i < n; i++) dst[i] = rl_f32_to_f16(src[i]);
}

/* Attention: blocks of 8 positions converted once for all query rows; a
 * row's scores are per-position dot products (4 lanes, then added), its
 * output accumulates position by position: nothing depends on the other
 * rows. */
static void kv_block(const kern_attn *a, const void *base, int p0, float *dst) {
    const int hd = a->head_dim;
    for (int k = 0; k < 8; k++) {
        int p = p0 + k;
        float *row = dst + (size_t)k * hd;
        if (p >= a->n_pos) {
            memset(row, 0, (size_t)hd * sizeof *row);
            continue;
        }
        size_t at = (size_t)p * (size_t)a->stride;
        if (a->kv_f16) {
            const rl_f16 *src = (const rl_f16 *)base + at;
            for (int d = 0; d < hd; d += 4) vst1q_f32(row + d, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(src + d))));
        } else {
            memcpy(row, (const float *)base + at, (size_t)hd * sizeof *row);
        }
    }
}

static void softmax(float *x, int n) {
    float max = -__builtin_inff();
    for (int i = 0; i < n; i++) max = x[i] > max ? x[i] : max;
    float32x4_t s4 = vdupq_n_f32(0);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t e = exp4(vsubq_f32(vld1q_f32(x + i), vdupq_n_f32(max)));
        vst1q_f32(x + i, e);
        s4 = vaddq_f32(s4, e);
    }
    float sum = vaddvq_f32(s4);
    for (; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    const float inv = 1.0f / sum;
    for (i = 0; i < n; i++) x[i] *= inv;
}

/* out[0 .. 4v) += sum over k < n of w[k] * vals[k * hd + ...]: v vectors of
 * one output row as independent chains, each adding its positions in order
 * (a vector at a time left every FMA waiting on the previous one). */
static inline __attribute__((always_inline)) void accumulate_pv(float *out, const float *w, const float *vals, int n,
                                                                int hd, int v) {
    float32x4_t acc[8];
    for (int i = 0; i < 8; i++) acc[i] = i < v ? vld1q_f32(out + 4 * i) : vdupq_n_f32(0);
    for (int k = 0; k < n; k++) {
        const float *row = vals + (size_t)k * hd;
        for (int i = 0; i < 8; i++)
            if (i < v) acc[i] = vfmaq_n_f32(acc[i], vld1q_f32(row + 4 * i), w[k]);
    }
    for (int i = 0; i < 8; i++)
        if (i < v) vst1q_f32(out + 4 * i, acc[i]);
}

static void attention(const kern_attn *a) {
    const int hd = a->head_dim, rows = a->n_tok * a->n_q;
    if (hd % 4 || hd > 256) {
        kern_attention_ref(a);
        return;
    }
    const size_t lds = ((size_t)a->n_pos + 7) / 8 * 8;
    float *S = a->scratch, *blk = S + (size_t)rows * lds;
    const int first = a->n_pos - a->n_tok;
    for (int p0 = 0; p0 < a->n_pos; p0 += 8) {
        kv_block(a, a->K, p0, blk);
        for (int i = 0; i < rows; i++) {
            int j = i / a->n_q, h = i % a->n_q, n = first + j + 1 - p0;
            if (n <= 0) continue;
            if (n > 8) n = 8;
            const float *q = a->q + (size_t)j * a->q_stride + (size_t)h * hd;
            /* the 8 positions' sums as independent chains, interleaved
             * (each still adds its d in order: the same result) */
            float32x4_t acc[8];
            for (int k = 0; k < 8; k++) acc[k] = vdupq_n_f32(0);
            for (int d = 0; d < hd; d += 4) {
                float32x4_t qv = vld1q_f32(q + d);
                for (int k = 0; k < 8; k++) acc[k] = vfmaq_f32(acc[k], qv, vld1q_f32(blk + (size_t)k * hd + d));
            }
            for (int k = 0; k < n; k++) S[(size_t)i * lds + p0 + k] = vaddvq_f32(acc[k]) * a->scale;
        }
    }
    for (int i = 0; i < rows; i++) {
        int j = i / a->n_q, h = i % a->n_q;
        softmax(S + (size_t)i * lds, first + j + 1);
        memset(a->out + (size_t)j * a->q_stride + (size_t)h * hd, 0, (size_t)hd * sizeof(float));
    }
    for (int p0 = 0; p0 < a->n_pos; p0 += 8) {
        kv_block(a, a->V, p0, blk);
        for (int i = 0; i < rows; i++) {
            int j = i / a->n_q, h = i % a->n_q, n = first + j + 1 - p0;
            if (n <= 0) continue;
            if (n > 8) n = 8;
            const float *w = S + (size_t)i * lds + p0;
            float *out = a->out + (size_t)j * a->q_stride + (size_t)h * hd;
            for (int d = 0; d < hd; d += 32) {
                if (hd - d >= 32) accumulate_pv(out + d, w, blk + d, n, hd, 8); /* constant: no lane tests */
                else accumulate_pv(out + d, w, blk + d, n, hd, (hd - d) / 4);
            }
        }
    }
}

const kern_impl IMPL_NAME = {
    .name = IMPL_LABEL,
    .gemm = {
        [RL_TYPE_Q4_0] = gemm_q4_0, [RL_TYPE_Q4_1] = gemm_q4_1, [RL_TYPE_Q5_0] = gemm_q5_0,
        [RL_TYPE_Q5_1] = gemm_q5_1, [RL_TYPE_Q8_0] = gemm_q8_0, [RL_TYPE_Q4_K] = gemm_q4_K,
        [RL_TYPE_Q5_K] = gemm_q5_K, [RL_TYPE_Q6_K] = gemm_q6_K,
        [RL_TYPE_F32] = gemm_f32, [RL_TYPE_F16] = gemm_f16, [RL_TYPE_BF16] = gemm_bf16,
    },
    .act = KACT_FORMATS,
    .convert_act = convert_act,
    .rmsnorm = rmsnorm,
    .swiglu = swiglu,
    .add = add,
    .to_f16 = to_f16,
    .attention = attention,
};
