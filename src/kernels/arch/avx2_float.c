/*
 * avx2_float.c — matrix products for F32, F16 and BF16 weights against
 * float activation rows (KACT_F32, or rows already rounded through fp16 /
 * bf16 as the reference's F16/BF16 activations are: KACT_F16R, KACT_BF16R).
 *
 * Tiles of 4 weight rows x 2 activation rows: each weight vector is
 * converted to float once and used twice, each activation vector used four
 * times; eight independent accumulators hide the FMA latency. Sums are in
 * float (eight lanes, then added), where the reference sums in double.
 */
#include "avx2.h"

typedef enum wfmt { W_F32, W_F16, W_BF16 } wfmt;

static inline __m256 load_w(wfmt f, const uint8_t *row, int64_t i) {
    switch (f) {
    case W_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 2 * i)));
    case W_BF16: {
        __m256i u = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(row + 2 * i)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(u, 16));
    }
    default: return _mm256_loadu_ps((const float *)(row + 4 * i));
    }
}

static inline float load_w1(wfmt f, const uint8_t *row, int64_t i) {
    uint16_t h;
    switch (f) {
    case W_F16: memcpy(&h, row + 2 * i, 2); return rl_f16_to_f32(h);
    case W_BF16: memcpy(&h, row + 2 * i, 2); return rl_bf16_to_f32(h);
    default: return rl_load_f32(row + 4 * i);
    }
}

static inline __attribute__((always_inline)) void tile(wfmt f, int R, int T, const kern_gemm_args *g, int64_t r,
                                                       int t0) {
    const uint8_t *w[4];
    const float *a[2];
    #pragma GCC unroll 8
    for (int i = 0; i < R; i++) w[i] = g->w + (size_t)(r + i) * g->w_stride;
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) a[t] = (const float *)(g->a + (size_t)(t0 + t) * g->a_stride);
    __m256 acc[4][2];
    #pragma GCC unroll 8
    for (int i = 0; i < R; i++)
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) acc[i][t] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= g->cols; c += 8) {
        __m256 av[2];
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) av[t] = _mm256_loadu_ps(a[t] + c);
        #pragma GCC unroll 8
        for (int i = 0; i < R; i++) {
            __m256 wv = load_w(f, w[i], c);
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) acc[i][t] = _mm256_fmadd_ps(wv, av[t], acc[i][t]);
        }
    }
    #pragma GCC unroll 8
    for (int i = 0; i < R; i++)
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            float s = avx2_hsum_ps(acc[i][t]);
            for (int64_t k = c; k < g->cols; k++) s += load_w1(f, w[i], k) * a[t][k];
            g->y[(size_t)(t0 + t) * g->ldy + r + i] = s;
        }
}

static inline __attribute__((always_inline)) void gemm_fmt(wfmt f, const kern_gemm_args *g) {
    for (int64_t r = g->r0; r < g->r1; r += 4) {
        int R = (int)RL_MIN(4, g->r1 - r);
        for (int t0 = 0; t0 < g->n; t0 += 2) {
            int T = RL_MIN(2, g->n - t0);
            if (R == 4) {
                if (T == 2) tile(f, 4, 2, g, r, t0);
                else tile(f, 4, 1, g, r, t0);
            } else {
                #pragma GCC unroll 8
                for (int i = 0; i < R; i++) {
                    if (T == 2) tile(f, 1, 2, g, r + i, t0);
                    else tile(f, 1, 1, g, r + i, t0);
                }
            }
        }
    }
}

void avx2_gemm_f32(const kern_gemm_args *g) { gemm_fmt(W_F32, g); }
void avx2_gemm_f16(const kern_gemm_args *g) { gemm_fmt(W_F16, g); }
void avx2_gemm_bf16(const kern_gemm_args *g) { gemm_fmt(W_BF16, g); }
