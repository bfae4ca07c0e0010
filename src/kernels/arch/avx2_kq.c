/*
 * avx2_kq.c — matrix products for the K-quants (Q4_K, Q5_K, Q6_K) against
 * KACT_Q8_K activations, with the panel scheme of avx2_q32.c: 8 weight rows
 * interleaved in groups of 4 weights, so one vpmaddubsw serves all 8 rows
 * and the sums end up one row per lane.
 *
 * The K-quants scale small groups by small integers, so the whole
 * 256-weight super-block is summed in int32 (exact, as the reference does)
 * and scaled in float once:
 *   Q4_K/Q5_K: sum = d*da * sum_j sc_j * dot_j - dmin*da * sum_j m_j * asum_j
 *              (j: the 8 units of 32; asum_j from the activation's sums of 16)
 *   Q6_K:      sum = d*da * sum_g sc_g * (dot_g - 32 * asum_g)
 *              (g: the 16 groups of 16; weights taken as q + 32, unsigned)
 *
 * Packed layout per super-block of a panel of 8 rows (kern_matrix_pack):
 *   Q4_K: d[8], dmin[8] fp16; sc[8 units][8 rows], m[8][8] bytes; then per
 *         unit 4 vectors of nibbles as in avx2_q32.c (group 2k low, 2k+1
 *         high)                                                 (1184 bytes)
 *   Q5_K: as Q4_K, then per unit 32 bytes of fifth bits (bit g of byte i:
 *         group g, position i)                                  (1440)
 *   Q6_K: d[8] fp16; sc[16 groups][8 rows] signed bytes; per unit 4 vectors
 *         of nibbles (the low 4 bits), then per unit 2 vectors of the top
 *         2 bits (bits 2k..2k+1 of byte i of vector h: group 4h+k)  (1680)
 *
 * Bounds (activations in [-127, 127]):
 *   4-bit: a pair of products <= 3810, 8 pairs 30480 in int16; times a
 *          6-bit scale, 2 lanes: 3.8e6 a unit, 3.1e7 a super-block.
 *   5-bit: 7874 a pair, 4 pairs in int16.
 *   6-bit: 16002 a pair, 2 pairs in int16; times |sc| <= 128 and 32 such
 *          per super-block: 2.7e8; the -32*asum term adds at most 1.4e8.
 */
#include "avx2.h"

enum { SB = 256, TMAX = 4 }; /* 6 spills (isum, msum, s16 and acc per row): slower */

typedef enum kq_mode { K4, K5, K6 } kq_mode;

static size_t src_block_bytes(kq_mode mode) {
    return mode == K4 ? sizeof(block_q4_K) : mode == K5 ? sizeof(block_q5_K) : sizeof(block_q6_K);
}

/* Where the parts of a packed super-block are. */
enum {
    K4_D = 0, K4_DMIN = 16, K4_SC = 32, K4_M = 96, K4_Q = 160, K4_H = 160 + 1024,
    K6_D = 0, K6_SC = 16, K6_Q = 144, K6_H = 144 + 1024,
};
static size_t panel_block_bytes(kq_mode mode) { return mode == K4 ? 1184 : mode == K5 ? 1440 : 1680; }

/* ------------------------------------------------------------------ */
/* packing                                                             */
/* ------------------------------------------------------------------ */

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

/* Unit j (weights 32j..32j+31) of one source row's super-block as 32
 * unsigned bytes (Q6_K: q + 32, i.e. the stored 6 bits). */
static inline __m256i unpack_src(kq_mode mode, const uint8_t *blk, int j) {
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
        v = _mm256_or_si256(v, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, bit), bit), _mm256_set1_epi8(0x10)));
    }
    return v;
}

static void pack_panel(kq_mode mode, const uint8_t *w, size_t stride, int rows, int64_t nsb, uint8_t *out) {
    const size_t sb = src_block_bytes(mode), pb = panel_block_bytes(mode);
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    for (int64_t s = 0; s < nsb; s++, out += pb) {
        memset(out, 0, mode == K6 ? K6_Q : K4_Q); /* scales of missing rows stay 0 */
        for (int i = 0; i < rows; i++) {
            const uint8_t *blk = w + (size_t)i * stride + (size_t)s * sb;
            if (mode == K6) {
                const block_q6_K *b = (const block_q6_K *)blk;
                memcpy(out + K6_D + 2 * i, &b->d, 2);
                for (int g = 0; g < 16; g++) out[K6_SC + 8 * g + i] = (uint8_t)b->scales[g];
            } else {
                memcpy(out + K4_D + 2 * i, blk, 2);
                memcpy(out + K4_DMIN + 2 * i, blk + 2, 2);
                for (int j = 0; j < 8; j++) {
                    int sc, m;
                    k4_scale_min(blk + offsetof(block_q4_K, scales), j, &sc, &m);
                    out[K4_SC + 8 * j + i] = (uint8_t)sc;
                    out[K4_M + 8 * j + i] = (uint8_t)m;
                }
            }
        }
        for (int j = 0; j < 8; j++) {
            __m256i r[8];
            for (int i = 0; i < 8; i++)
                r[i] = i < rows ? unpack_src(mode, w + (size_t)i * stride + (size_t)s * sb, j) : _mm256_setzero_si256();
            avx2_transpose8x32(r); /* r[g]: group g of the 8 rows */
            uint8_t *q = out + (mode == K6 ? K6_Q : K4_Q) + 128 * j;
            for (int k = 0; k < 4; k++) {
                __m256i lo = _mm256_and_si256(r[2 * k], low4), hi = _mm256_and_si256(r[2 * k + 1], low4);
                _mm256_storeu_si256((__m256i *)(q + 32 * k), _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)));
            }
            if (mode == K5) {
                __m256i h = _mm256_setzero_si256();
                for (int g = 0; g < 8; g++) {
                    __m256i top = _mm256_and_si256(_mm256_srli_epi16(r[g], 4), _mm256_set1_epi8(1));
                    h = _mm256_or_si256(h, _mm256_and_si256(_mm256_slli_epi16(top, g), _mm256_set1_epi8((char)(1 << g))));
                }
                _mm256_storeu_si256((__m256i *)(out + K4_H + 32 * j), h);
            } else if (mode == K6) {
                for (int hv = 0; hv < 2; hv++) {
                    __m256i h = _mm256_setzero_si256();
                    for (int k = 0; k < 4; k++) {
                        __m256i top = _mm256_and_si256(_mm256_srli_epi16(r[4 * hv + k], 4), _mm256_set1_epi8(3));
                        h = _mm256_or_si256(h, _mm256_and_si256(_mm256_slli_epi16(top, 2 * k),
                                                                _mm256_set1_epi8((char)(3 << (2 * k)))));
                    }
                    _mm256_storeu_si256((__m256i *)(out + K6_H + 64 * j + 32 * hv), h);
                }
            }
        }
    }
}

/* ------------------------------------------------------------------ */
/* the tile                                                            */
/* ------------------------------------------------------------------ */

/* Group g of unit j of a packed super-block, as unsigned bytes. */
static inline __m256i group(kq_mode mode, const uint8_t *blk, int j, int g) {
    const uint8_t *q = blk + (mode == K6 ? K6_Q : K4_Q) + 128 * j;
    __m256i x = _mm256_loadu_si256((const __m256i *)(q + 32 * (g / 2)));
    __m256i v = _mm256_and_si256(g % 2 ? _mm256_srli_epi16(x, 4) : x, _mm256_set1_epi8(0x0f));
    if (mode == K5) {
        /* bit g of each byte to bit 4 (see avx2_q32.c) */
        __m256i h = _mm256_loadu_si256((const __m256i *)(blk + K4_H + 32 * j));
        h = g <= 4 ? _mm256_slli_epi16(h, 4 - g) : _mm256_srli_epi16(h, g - 4);
        v = _mm256_or_si256(v, _mm256_and_si256(h, _mm256_set1_epi8(0x10)));
    } else if (mode == K6) {
        /* bits 2k..2k+1 of each byte to bits 4..5 */
        __m256i h = _mm256_loadu_si256((const __m256i *)(blk + K6_H + 64 * j + 32 * (g / 4)));
        int k = g % 4;
        h = 2 * k <= 4 ? _mm256_slli_epi16(h, 4 - 2 * k) : _mm256_srli_epi16(h, 2 * k - 4);
        v = _mm256_or_si256(v, _mm256_and_si256(h, _mm256_set1_epi8(0x30)));
    }
    return v;
}

/* 8 bytes (one per row) as int16 pairs (x_r, x_r) for rows 0..7. */
static inline __m256i pairs8(const uint8_t *p, bool is_signed) {
    __m128i x = _mm_loadl_epi64((const __m128i *)p);
    x = _mm_unpacklo_epi8(x, x);
    return is_signed ? _mm256_cvtepi8_epi16(x) : _mm256_cvtepu8_epi16(x);
}

/* Q6_K: (sc_2k, sc_2k+1) of each row as int16 pairs. */
static inline __m256i scale_pairs(const uint8_t *blk, int k) {
    __m128i a = _mm_loadl_epi64((const __m128i *)(blk + K6_SC + 8 * (2 * k)));
    __m128i b = _mm_loadl_epi64((const __m128i *)(blk + K6_SC + 8 * (2 * k + 1)));
    return _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(a, b));
}

/* 8 rows x T activation rows over all super-blocks of a packed panel. */
static inline __attribute__((always_inline)) void tile(kq_mode mode, int T, const uint8_t *panel, int64_t nsb,
                                                       const kact_q8 *A, float *y, int64_t ldy, int rows, size_t ahead) {
    const size_t pb = panel_block_bytes(mode);
    __m256 acc[TMAX];
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t s = 0; s < nsb; s++) {
        const uint8_t *blk = panel + (size_t)s * pb;
        /* the same super-block of the next panel (no-op past the end) */
        for (size_t o = 0; o < pb; o += 64) _mm_prefetch((const char *)blk + ahead + o, _MM_HINT_T0);
        __m256i isum[TMAX], msum[TMAX];
        #pragma GCC unroll 1 /* unrolled, its units interleave and spill */
        for (int j = 0; j < 8; j++) {
            const int8_t *aq[TMAX];
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) aq[t] = A[t].q + SB * s + 32 * j;
            const int run = mode == K4 ? 8 : mode == K5 ? 4 : 2; /* groups per int16 sum */
            #pragma GCC unroll 8
            for (int g0 = 0; g0 < 8; g0 += run) {
                __m256i s16[TMAX];
                #pragma GCC unroll 8
                for (int g = g0; g < g0 + run; g++) {
                    __m256i w = group(mode, blk, j, g);
                    #pragma GCC unroll 8
                    for (int t = 0; t < T; t++) {
                        __m256i m = _mm256_maddubs_epi16(w, avx2_bcast4(aq[t] + 4 * g));
                        s16[t] = g == g0 ? m : avx2_add16(s16[t], m);
                    }
                }
                __m256i sc = mode == K6 ? pairs8(blk + K6_SC + 8 * (2 * j + g0 / 4), true)
                                        : pairs8(blk + K4_SC + 8 * j, false);
                #pragma GCC unroll 8
                for (int t = 0; t < T; t++) {
                    __m256i m = _mm256_madd_epi16(s16[t], sc);
                    isum[t] = j == 0 && g0 == 0 ? m : avx2_add32(isum[t], m);
                }
            }
        }
        /* the offset terms, from the activation's sums of 16: Q4_K/Q5_K
         * m_j * (asum_2j + asum_2j+1), Q6_K sc_2k * asum_2k + sc_2k+1 * asum_2k+1 */
        #pragma GCC unroll 8
        for (int k = 0; k < 8; k++) {
            __m256i m = mode == K6 ? scale_pairs(blk, k) : pairs8(blk + K4_M + 8 * k, false);
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) {
                __m256i v = _mm256_madd_epi16(m, avx2_bcast4((const int8_t *)(A[t].sum16 + 16 * s + 2 * k)));
                msum[t] = k == 0 ? v : avx2_add32(msum[t], v);
            }
        }
        __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + K4_D)));
        __m256 dmin = mode == K6 ? d : _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + K4_DMIN)));
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

static inline __attribute__((always_inline)) void gemm_mode(kq_mode mode, const kern_gemm_args *g) {
    const int64_t nsb = g->cols / SB;
    const size_t panel_bytes = (size_t)nsb * panel_block_bytes(mode);
    for (int64_t r = g->r0; r < g->r1; r += 8) {
        int rows = (int)RL_MIN(8, g->r1 - r);
        const uint8_t *panel = g->packed ? g->packed + (size_t)(r / 8) * panel_bytes : g->scratch;
        if (!g->packed) pack_panel(mode, g->w + (size_t)r * g->w_stride, g->w_stride, rows, nsb, g->scratch);
        /* passes of at most TMAX activation rows, as even as they can be
         * (6 rows: 3 + 3, not 4 + 2) */
        const int passes = (g->n + TMAX - 1) / TMAX, per = (g->n + passes - 1) / passes;
        for (int t0 = 0; t0 < g->n; t0 += per) {
            int T = RL_MIN(per, g->n - t0);
            kact_q8 A[TMAX] = {0}; /* all set below; zeroed for the compiler */
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) A[t] = kact_q8_view(g->a + (size_t)(t0 + t) * g->a_stride, g->cols);
            float *y = g->y + (size_t)t0 * g->ldy + r;
            switch (T) {
            case 4: tile(mode, 4, panel, nsb, A, y, g->ldy, rows, panel_bytes); break;
            case 3: tile(mode, 3, panel, nsb, A, y, g->ldy, rows, panel_bytes); break;
            case 2: tile(mode, 2, panel, nsb, A, y, g->ldy, rows, panel_bytes); break;
            default: tile(mode, 1, panel, nsb, A, y, g->ldy, rows, panel_bytes); break;
            }
        }
    }
}

void avx2_gemm_q4_K(const kern_gemm_args *g) { gemm_mode(K4, g); }
void avx2_gemm_q5_K(const kern_gemm_args *g) { gemm_mode(K5, g); }
void avx2_gemm_q6_K(const kern_gemm_args *g) { gemm_mode(K6, g); }

static bool kq_mode_of(uint32_t type, kq_mode *mode) {
    switch (type) {
    case RL_TYPE_Q4_K: *mode = K4; return true;
    case RL_TYPE_Q5_K: *mode = K5; return true;
    case RL_TYPE_Q6_K: *mode = K6; return true;
    default: return false;
    }
}

size_t avx2_kq_panel_bytes(uint32_t type, int64_t cols) {
    kq_mode mode;
    return kq_mode_of(type, &mode) ? (size_t)(cols / SB) * panel_block_bytes(mode) : 0;
}

void avx2_kq_pack_panel(uint32_t type, const uint8_t *w, size_t stride, int rows, int64_t cols, uint8_t *out) {
    kq_mode mode;
    if (kq_mode_of(type, &mode)) pack_panel(mode, w, stride, rows, cols / SB, out);
}
