/*
 * avx2_kq.c — matrix products for the K-quants (Q4_K, Q5_K, Q6_K) against
 * KACT_Q8_K activations, with the panel scheme of avx2_q32.c: 8 weight rows
 * unpacked to bytes and interleaved in groups of 4 weights, so one
 * vpmaddubsw serves all 8 rows and the sums end up one row per lane.
 *
 * The K-quants scale small groups by small integers, so unlike the 32-blocks
 * the whole 256-weight super-block is summed in int32 (exact, as the
 * reference does) and scaled in float once:
 *   Q4_K/Q5_K: sum = d*da * sum_j sc_j * dot_j - dmin*da * sum_j m_j * asum_j
 *              (j: the 8 sub-blocks of 32; asum_j from the activation's
 *              sums of 16)
 *   Q6_K:      sum = d*da * sum_g sc_g * (dot_g - 32 * asum_g)
 *              (g: the 16 groups of 16; the weights are stored as q + 32)
 * Bounds (activations in [-127, 127], so |a| <= 128 below):
 *   4-bit: a pair of products <= 3840, 8 pairs 30720 in int16; times a
 *          6-bit scale, 2 lanes: 3.9e6 a sub-block, 3.1e7 a super-block.
 *   5-bit: 7936 a pair, 4 pairs in int16.
 *   6-bit: 16128 a pair, 2 pairs in int16; times |sc| <= 128 and 32 such
 *          per super-block: 2.7e8; the -32*asum term adds at most 1.4e8.
 */
#include "avx2.h"

enum { SB = 256 };
#ifndef PREFETCH
#define PREFETCH 2048
#endif

typedef enum kq_mode { K4, K5, K6 } kq_mode;

/* Per super-block of the panel. */
typedef struct kq_block {
    uint8_t v[8][8][32];   /* [unit of 32][group of 4][row*4 + k] */
    int16_t sc[16][16];    /* K4/K5: [j] (sc, sc) per row; K6: [g] (sc, sc) per row */
    int16_t mn[8][16];     /* K4/K5: [j] (m, m) per row; K6: [i] (sc_2i, sc_2i+1) per row */
    float d[8], dmin[8];
} kq_block;

/* The 6-bit scale and min of sub-block j (ggml's get_scale_min_k4). */
static void k4_scale_min(const uint8_t *q, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* Unit j (weights 32j..32j+31) of one row's super-block as 32 bytes. */
static inline __m256i unpack(kq_mode mode, const uint8_t *blk, int j) {
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    if (mode == K6) {
        const block_q6_K *b = (const block_q6_K *)blk;
        int h = j / 4, k = j % 4;
        __m256i ql = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32 * (k & 1)));
        __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
        __m256i lo = k < 2 ? _mm256_and_si256(ql, low4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), low4);
        __m256i top = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), _mm256_set1_epi8(3));
        return _mm256_or_si256(lo, _mm256_slli_epi16(top, 4));
    }
    const uint8_t *qs = blk + (mode == K4 ? offsetof(block_q4_K, qs) : offsetof(block_q5_K, qs));
    __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * (j / 2)));
    __m256i v = j % 2 ? _mm256_and_si256(_mm256_srli_epi16(q, 4), low4) : _mm256_and_si256(q, low4);
    if (mode == K5) {
        const block_q5_K *b = (const block_q5_K *)blk;
        __m256i qh = _mm256_loadu_si256((const __m256i *)b->qh);
        __m256i bit = _mm256_set1_epi8((char)(1 << j));
        __m256i hi = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit), _mm256_set1_epi8(0x10));
        v = _mm256_or_si256(v, hi);
    }
    return v;
}

static size_t block_bytes(kq_mode mode) {
    return mode == K4 ? sizeof(block_q4_K) : mode == K5 ? sizeof(block_q5_K) : sizeof(block_q6_K);
}

/* Row i's scales (and mins, d, dmin) of one super-block into the panel;
 * blk NULL: a missing row, all zero. */
static inline void scales(kq_mode mode, const uint8_t *blk, kq_block *P, int i) {
    if (mode == K6) {
        const block_q6_K *b = (const block_q6_K *)blk;
        for (int g = 0; g < 16; g++) P->sc[g][2 * i] = P->sc[g][2 * i + 1] = b ? b->scales[g] : 0;
        for (int k = 0; k < 8; k++) {
            P->mn[k][2 * i] = b ? b->scales[2 * k] : 0;
            P->mn[k][2 * i + 1] = b ? b->scales[2 * k + 1] : 0;
        }
        P->d[i] = b ? avx2_f16((const uint8_t *)&b->d) : 0;
        P->dmin[i] = 0;
        return;
    }
    for (int j = 0; j < 8; j++) {
        int sc = 0, m = 0;
        if (blk) k4_scale_min(blk + offsetof(block_q4_K, scales), j, &sc, &m); /* same place in Q5_K */
        P->sc[j][2 * i] = P->sc[j][2 * i + 1] = (int16_t)sc;
        P->mn[j][2 * i] = P->mn[j][2 * i + 1] = (int16_t)m;
    }
    P->d[i] = blk ? avx2_f16(blk) : 0;
    P->dmin[i] = blk ? avx2_f16(blk + 2) : 0;
}

/* Packs `rows` (<= 8) rows; missing rows are zero (and scaled by 0). As in
 * avx2_q32.c, each row is read start to end and unpacked into tmp (8 rows
 * of cols bytes), then interleaved from there. */
static inline __attribute__((always_inline)) void pack(kq_mode mode, const uint8_t *w, size_t stride, int rows,
                                                       int64_t nsb, kq_block *p, uint8_t *tmp) {
    const size_t bb = block_bytes(mode), cols = (size_t)nsb * SB;
    for (int i = 0; i < 8; i++) {
        uint8_t *dst = tmp + (size_t)i * cols;
        if (i >= rows) {
            memset(dst, 0, cols);
            for (int64_t s = 0; s < nsb; s++) scales(mode, NULL, &p[s], i);
            continue;
        }
        const uint8_t *row = w + (size_t)i * stride;
        for (int64_t s = 0; s < nsb; s++) {
            const uint8_t *blk = row + (size_t)s * bb;
            #pragma GCC unroll 8
            for (int j = 0; j < 8; j++) _mm256_store_si256((__m256i *)(dst + SB * s + 32 * j), unpack(mode, blk, j));
            scales(mode, blk, &p[s], i);
        }
    }
    for (int64_t s = 0; s < nsb; s++) {
        #pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            __m256i r[8];
            #pragma GCC unroll 8
            for (int i = 0; i < 8; i++)
                r[i] = _mm256_load_si256((const __m256i *)(tmp + (size_t)i * cols + SB * s + 32 * j));
            avx2_transpose8x32(r);
            #pragma GCC unroll 8
            for (int g = 0; g < 8; g++) _mm256_store_si256((__m256i *)p[s].v[j][g], r[g]);
        }
    }
}

static inline __m256i ld(const void *p) { return _mm256_load_si256((const __m256i *)p); }

/* 8 rows x T activation rows over all super-blocks. */
static inline __attribute__((always_inline)) void tile(kq_mode mode, int T, const kq_block *p, int64_t nsb,
                                                       const kact_q8 *A, float *y, int64_t ldy, int rows) {
    __m256 acc[4];
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t s = 0; s < nsb; s++) {
        const kq_block *P = &p[s];
        __m256i isum[4], msum[4];
        #pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            const int8_t *aq[4];
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) aq[t] = A[t].q + SB * s + 32 * j;
            const int run = mode == K4 ? 8 : mode == K5 ? 4 : 2; /* groups per int16 sum */
            #pragma GCC unroll 8
            for (int g0 = 0; g0 < 8; g0 += run) {
                __m256i s16[4];
                #pragma GCC unroll 8
                for (int g = g0; g < g0 + run; g++) {
                    __m256i w = ld(P->v[j][g]);
                    #pragma GCC unroll 8
                    for (int t = 0; t < T; t++) {
                        __m256i m = _mm256_maddubs_epi16(w, avx2_bcast4(aq[t] + 4 * g));
                        s16[t] = g == g0 ? m : avx2_add16(s16[t], m);
                    }
                }
                __m256i sc = ld(mode == K6 ? P->sc[2 * j + g0 / 4] : P->sc[j]);
                #pragma GCC unroll 8
                for (int t = 0; t < T; t++) {
                    __m256i m = _mm256_madd_epi16(s16[t], sc);
                    isum[t] = j == 0 && g0 == 0 ? m : avx2_add32(isum[t], m);
                }
            }
        }
        /* the offset terms, from the activation's sums of 16 */
        #pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            __m256i m = ld(P->mn[k]);
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                const int16_t *bs = A[t].sum16 + 16 * s + 2 * k;
                __m256i v = _mm256_madd_epi16(m, avx2_bcast4((const int8_t *)bs));
                msum[t] = k == 0 ? v : avx2_add32(msum[t], v);
            }
        }
        __m256 d = _mm256_load_ps(P->d), dmin = _mm256_load_ps(P->dmin);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            __m256 da = _mm256_set1_ps(A[t].d[8 * s]);
            if (mode == K6) {
                isum[t] = _mm256_sub_epi32(isum[t], _mm256_slli_epi32(msum[t], 5));
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(d, da), acc[t]);
            } else {
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(d, da), acc[t]);
                acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(msum[t]), _mm256_mul_ps(dmin, da), acc[t]);
            }
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) store8(y + (size_t)t * ldy, acc[t], rows);
}

/* Q4_K/Q5_K's 8 scales and 8 mins, each as 8 bytes (ggml's 6-bit packing
 * undone with 32-bit operations). */
static inline void k4_unpack_scales(const uint8_t *q, uint64_t *sc, uint64_t *mn) {
    uint32_t u0 = rl_load_u32(q), u1 = rl_load_u32(q + 4), u2 = rl_load_u32(q + 8);
    uint32_t sc_lo = u0 & 0x3f3f3f3f, m_lo = u1 & 0x3f3f3f3f;
    uint32_t sc_hi = (u2 & 0x0f0f0f0f) | (((u0 >> 6) & 0x03030303) << 4);
    uint32_t m_hi = ((u2 >> 4) & 0x0f0f0f0f) | (((u1 >> 6) & 0x03030303) << 4);
    *sc = (uint64_t)sc_lo | (uint64_t)sc_hi << 32;
    *mn = (uint64_t)m_lo | (uint64_t)m_hi << 32;
}

/* vpshufb masks: every int16 lane takes int16 lane j (of its 128-bit half) */
static inline __m256i lane16(int j) { return _mm256_set1_epi16((short)(0x0100 * (2 * j + 1) + 2 * j)); }
/* ... low half takes lane j, high half lane j + 1 (Q6_K's two groups of 16) */
static inline __m256i lane16_pair(int j) {
    return _mm256_set_m128i(_mm_set1_epi16((short)(0x0100 * (2 * j + 3) + 2 * j + 2)),
                            _mm_set1_epi16((short)(0x0100 * (2 * j + 1) + 2 * j)));
}

/* The exact integer sums of one row's super-block s with the activation:
 * *is = sum_j sc_j * dot_j (Q6_K: minus 32 * sum_g sc_g * asum_g), *ms =
 * sum_j m_j * asum_j (Q4_K/Q5_K) — the same integers the tile computes. */
static inline __attribute__((always_inline)) void super_sums(kq_mode mode, const uint8_t *blk, const int8_t *aq,
                                                             const int16_t *asum16, int32_t *is, int32_t *ms) {
    const __m256i bsums = _mm256_loadu_si256((const __m256i *)asum16);
    __m256i isum = _mm256_setzero_si256();
    if (mode == K6) {
        const block_q6_K *b = (const block_q6_K *)blk;
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales));
        __m256i sc_a = _mm256_permute2x128_si256(sc16, sc16, 0x00); /* scales 0-7 in both halves */
        __m256i sc_b = _mm256_permute2x128_si256(sc16, sc16, 0x11); /* scales 8-15 */
        #pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            __m256i p = _mm256_maddubs_epi16(unpack(K6, blk, j), _mm256_loadu_si256((const __m256i *)(aq + 32 * j)));
            __m256i sc = _mm256_shuffle_epi8(j < 4 ? sc_a : sc_b, lane16_pair(2 * (j % 4)));
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, sc));
        }
        /* the -32 offset: 32 * sum_g sc_g * asum_g */
        isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(_mm256_madd_epi16(sc16, bsums), 5));
        *is = avx2_hsum_epi32(isum);
        *ms = 0;
        return;
    }
    uint64_t sc8, mn8;
    k4_unpack_scales(blk + offsetof(block_q4_K, scales), &sc8, &mn8);
    __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc8)));
    __m128i m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)mn8));
    __m256i mdup = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
    #pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
        __m256i p = _mm256_maddubs_epi16(unpack(mode, blk, j), _mm256_loadu_si256((const __m256i *)(aq + 32 * j)));
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, _mm256_shuffle_epi8(sc16, lane16(j))));
    }
    *is = avx2_hsum_epi32(isum);
    *ms = avx2_hsum_epi32(_mm256_madd_epi16(mdup, bsums));
}

/* One activation row (decode): as in avx2_q32.c, each weight row is read
 * start to end (one sequential stream), its exact integer super-block sums
 * kept in scratch (stored lanes = rows), then every 8 rows scaled exactly as
 * the tile scales them, so results are bitwise those of a batch. */
static inline __attribute__((always_inline)) void gemv(kq_mode mode, const kern_gemm_args *g) {
    const int64_t nsb = g->cols / SB;
    const size_t bb = block_bytes(mode);
    const kact_q8 A = kact_q8_view(g->a, g->cols);
    int32_t *is = (int32_t *)g->scratch, *ms = is + 8 * nsb; /* [s][row] */
    for (int64_t r = g->r0; r < g->r1; r += 8) {
        int rows = (int)RL_MIN(8, g->r1 - r);
        for (int i = 0; i < 8; i++) {
            const uint8_t *row = g->w + (size_t)(r + i) * g->w_stride;
            for (int64_t s = 0; s < nsb; s++) {
                if (i >= rows) {
                    is[8 * s + i] = ms[8 * s + i] = 0;
                    continue;
                }
                const uint8_t *blk = row + (size_t)s * bb;
                for (size_t o = 0; o < bb; o += 64) _mm_prefetch((const char *)blk + PREFETCH + o, _MM_HINT_T0);
                super_sums(mode, blk, A.q + SB * s, A.sum16 + 16 * s, &is[8 * s + i], &ms[8 * s + i]);
            }
        }
        const uint8_t *blk[8], *dmin_at[8]; /* super-block s of each row; missing rows repeat row 0 */
        for (int i = 0; i < 8; i++) blk[i] = g->w + (size_t)(r + (i < rows ? i : 0)) * g->w_stride;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t s = 0; s < nsb; s++) {
            __m256 da = _mm256_set1_ps(A.d[8 * s]);
            __m256i I = _mm256_loadu_si256((const __m256i *)(is + 8 * s));
            if (mode == K6) {
                const uint8_t *d_at[8];
                for (int i = 0; i < 8; i++) d_at[i] = blk[i] + offsetof(block_q6_K, d);
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(I), _mm256_mul_ps(avx2_f16_gather(d_at), da), acc);
            } else {
                __m256i M = _mm256_loadu_si256((const __m256i *)(ms + 8 * s));
                for (int i = 0; i < 8; i++) dmin_at[i] = blk[i] + 2;
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(I), _mm256_mul_ps(avx2_f16_gather(blk), da), acc);
                acc = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(M), _mm256_mul_ps(avx2_f16_gather(dmin_at), da), acc);
            }
            for (int i = 0; i < 8; i++) blk[i] += bb;
        }
        store8(g->y + r, acc, rows);
    }
}

static inline __attribute__((always_inline)) void gemm_mode(kq_mode mode, const kern_gemm_args *g) {
    if (g->n == 1) {
        gemv(mode, g);
        return;
    }
    const int64_t nsb = g->cols / SB;
    kq_block *p = (kq_block *)g->scratch;
    uint8_t *tmp = g->scratch + (size_t)nsb * sizeof(kq_block);
    for (int64_t r = g->r0; r < g->r1; r += 8) {
        int rows = (int)RL_MIN(8, g->r1 - r);
        pack(mode, g->w + (size_t)r * g->w_stride, g->w_stride, rows, nsb, p, tmp);
        for (int t0 = 0; t0 < g->n; t0 += 4) {
            int T = RL_MIN(4, g->n - t0);
            kact_q8 A[4];
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) A[t] = kact_q8_view(g->a + (size_t)(t0 + t) * g->a_stride, g->cols);
            float *y = g->y + (size_t)t0 * g->ldy + r;
            switch (T) {
            case 4: tile(mode, 4, p, nsb, A, y, g->ldy, rows); break;
            case 3: tile(mode, 3, p, nsb, A, y, g->ldy, rows); break;
            case 2: tile(mode, 2, p, nsb, A, y, g->ldy, rows); break;
            default: tile(mode, 1, p, nsb, A, y, g->ldy, rows); break;
            }
        }
    }
}

void avx2_gemm_q4_K(const kern_gemm_args *g) { gemm_mode(K4, g); }
void avx2_gemm_q5_K(const kern_gemm_args *g) { gemm_mode(K5, g); }
void avx2_gemm_q6_K(const kern_gemm_args *g) { gemm_mode(K6, g); }
