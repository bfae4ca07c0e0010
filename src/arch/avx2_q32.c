/*
 * avx2_q32.c — matrix products for the 32-element block formats (Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0) against KACT_Q8_0 / KACT_Q8_1 activations.
 *
 * Panels. The rows are processed 8 at a time. A panel is the 8 rows'
 * weights unpacked to one byte per weight and interleaved in groups of 4:
 * for block b and group g (weights 4g..4g+3 of the block), 32 bytes hold
 * those 4 weights of row 0, then of row 1, ... row 7. One vpmaddubsw of that
 * vector with the activation's 4 matching bytes repeated 8 times gives the
 * partial dot products of all 8 rows, each in its own pair of int16 lanes,
 * so a block of 8 groups ends as one vector whose 32-bit lanes are the
 * 8 rows' block dot products — no horizontal sums. The panel (10 bytes per
 * weight row element... about cols*10 bytes) stays in L1/L2 and is reused for every
 * activation row; the weights are read from memory once per product.
 *
 * Each block's integer dot is scaled in float per row (the per-row scales
 * are a vector, the activation's a broadcast):
 *   Q4_0/Q5_0: w = d (q - 8|16): sum = d*da * (sum(q*a) - 8|16 * sum(a))
 *   Q4_1/Q5_1: w = d q + m:      sum = d*da * sum(q*a) + m * s_a
 *   Q8_0:      signed weights, multiplied as |w| * (a with w's sign).
 * The int16 sums never saturate: a 4-bit weight times an activation of at
 * most 128 in magnitude is at most 1920, so a pair is at most 3840 and 8
 * pairs 30720; 5-bit: 7936 a pair, summed 4 at a time; Q8_0: 128*127*2 =
 * 32512 a pair, widened at once (activations from kact are in [-127,127]).
 */
#include "avx2.h"

enum { BLK = 32, GROUPS = 8 };

typedef enum q32_mode { Q4_OFF, Q4_AFF, Q5_OFF, Q5_AFF, Q8_SIGNED } q32_mode;

typedef struct q32_panel {
    uint8_t *v;  /* nb * 256 bytes */
    float *sc;   /* nb * 8 */
    float *mn;   /* nb * 8 (affine modes) */
} q32_panel;

static q32_panel panel_in(uint8_t *scratch, int64_t nb) {
    q32_panel p = {scratch, (float *)(scratch + nb * 256), (float *)(scratch + nb * 256 + nb * 32)};
    return p;
}

/* 32 bytes with 0x10 where bit j of qh (32 bits, little-endian) is set. */
static inline __m256i fifth_bits(const uint8_t *qh) {
    uint32_t bits;
    memcpy(&bits, qh, 4);
    __m256i v = _mm256_set1_epi32((int)bits);
    /* byte j takes qh's byte j/8, then tests bit j%8 */
    v = _mm256_shuffle_epi8(v, _mm256_setr_epi64x(0, 0x0101010101010101LL, 0x0202020202020202LL,
                                                   0x0303030303030303LL));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

/* One block of one row as 32 bytes in element order. */
static inline __m256i unpack(q32_mode mode, const uint8_t *blk) {
    switch (mode) {
    case Q4_OFF: return avx2_nibbles(blk + 2);
    case Q4_AFF: return avx2_nibbles(blk + 4);
    case Q5_OFF: return _mm256_or_si256(avx2_nibbles(blk + 6), fifth_bits(blk + 2));
    case Q5_AFF: return _mm256_or_si256(avx2_nibbles(blk + 8), fifth_bits(blk + 4));
    default: return _mm256_loadu_si256((const __m256i *)(blk + 2));
    }
}

static size_t block_bytes(q32_mode mode) {
    switch (mode) {
    case Q4_OFF: return sizeof(block_q4_0);
    case Q4_AFF: return sizeof(block_q4_1);
    case Q5_OFF: return sizeof(block_q5_0);
    case Q5_AFF: return sizeof(block_q5_1);
    default: return sizeof(block_q8_0);
    }
}

static bool affine(q32_mode mode) { return mode == Q4_AFF || mode == Q5_AFF; }

/* Packs `rows` (<= 8) weight rows into the panel; missing rows are zero. */
static inline __attribute__((always_inline)) void pack(q32_mode mode, const uint8_t *w, size_t stride, int rows, int64_t nb, q32_panel p) {
    const size_t bb = block_bytes(mode);
    for (int64_t b = 0; b < nb; b++) {
        __m256i r[8];
        #pragma GCC unroll 8
        for (int i = 0; i < 8; i++) {
            const uint8_t *blk = w + (size_t)i * stride + (size_t)b * bb;
            if (i < rows) {
                r[i] = unpack(mode, blk);
                p.sc[8 * b + i] = avx2_f16(blk);
                if (affine(mode)) p.mn[8 * b + i] = avx2_f16(blk + 2);
            } else {
                r[i] = _mm256_setzero_si256();
                p.sc[8 * b + i] = 0;
                if (affine(mode)) p.mn[8 * b + i] = 0;
            }
        }
        avx2_transpose8x32(r);
        #pragma GCC unroll 8
        for (int g = 0; g < GROUPS; g++) _mm256_store_si256((__m256i *)(p.v + 256 * b + 32 * g), r[g]);
    }
}

/* 8 rows x T activation rows: acc[t] lane i = dot(row i, activation t). */
static inline __attribute__((always_inline)) void tile(q32_mode mode, int T, q32_panel p, int64_t nb,
                                                       const kact_q8 *A, float *y, int64_t ldy, int rows) {
    __m256 acc[4];
    const __m256i ones = _mm256_set1_epi16(1);
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *vb = p.v + 256 * b;
        __m256i s32[4];
        if (mode == Q8_SIGNED) {
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) s32[t] = _mm256_setzero_si256();
            #pragma GCC unroll 8
            for (int g = 0; g < GROUPS; g++) {
                __m256i w = _mm256_load_si256((const __m256i *)(vb + 32 * g));
                __m256i aw = _mm256_abs_epi8(w);
                #pragma GCC unroll 8
                for (int t = 0; t < T; t++) {
                    __m256i a = _mm256_sign_epi8(avx2_bcast4(A[t].q + BLK * b + 4 * g), w);
                    s32[t] = avx2_add32(s32[t], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, a), ones));
                }
            }
        } else {
            const int run = mode == Q5_OFF || mode == Q5_AFF ? 4 : 8; /* groups per int16 sum */
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) s32[t] = _mm256_setzero_si256();
            #pragma GCC unroll 8
            for (int g0 = 0; g0 < GROUPS; g0 += run) {
                __m256i s16[4];
                #pragma GCC unroll 8
                for (int t = 0; t < T; t++) s16[t] = _mm256_setzero_si256();
                #pragma GCC unroll 8
                for (int g = g0; g < g0 + run; g++) {
                    __m256i w = _mm256_load_si256((const __m256i *)(vb + 32 * g));
                    #pragma GCC unroll 8
                    for (int t = 0; t < T; t++)
                        s16[t] = avx2_add16(s16[t],
                                                  _mm256_maddubs_epi16(w, avx2_bcast4(A[t].q + BLK * b + 4 * g)));
                }
                #pragma GCC unroll 8
                for (int t = 0; t < T; t++) s32[t] = avx2_add32(s32[t], _mm256_madd_epi16(s16[t], ones));
            }
        }
        __m256 sc = _mm256_load_ps(p.sc + 8 * b);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            if (mode == Q4_OFF || mode == Q5_OFF) {
                __m256i off = _mm256_set1_epi32(A[t].sum[b]);
                s32[t] = _mm256_sub_epi32(s32[t], _mm256_slli_epi32(off, mode == Q4_OFF ? 3 : 4));
            }
            __m256 scale = _mm256_mul_ps(sc, _mm256_set1_ps(A[t].d[b]));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32[t]), scale, acc[t]);
            if (affine(mode)) acc[t] = _mm256_fmadd_ps(_mm256_load_ps(p.mn + 8 * b), _mm256_set1_ps(A[t].s[b]), acc[t]);
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) store8(y + (size_t)t * ldy, acc[t], rows);
}

static inline __attribute__((always_inline)) void gemm_mode(q32_mode mode, const kern_gemm_args *g) {
    const int64_t nb = g->cols / BLK;
    q32_panel p = panel_in(g->scratch, nb);
    for (int64_t r = g->r0; r < g->r1; r += 8) {
        int rows = (int)RL_MIN(8, g->r1 - r);
        pack(mode, g->w + (size_t)r * g->w_stride, g->w_stride, rows, nb, p);
        for (int t0 = 0; t0 < g->n; t0 += 4) {
            int T = RL_MIN(4, g->n - t0);
            kact_q8 A[4];
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) A[t] = kact_q8_view(g->a + (size_t)(t0 + t) * g->a_stride, g->cols);
            float *y = g->y + (size_t)t0 * g->ldy + r;
            switch (T) {
            case 4: tile(mode, 4, p, nb, A, y, g->ldy, rows); break;
            case 3: tile(mode, 3, p, nb, A, y, g->ldy, rows); break;
            case 2: tile(mode, 2, p, nb, A, y, g->ldy, rows); break;
            default: tile(mode, 1, p, nb, A, y, g->ldy, rows); break;
            }
        }
    }
}

void avx2_gemm_q4_0(const kern_gemm_args *g) { gemm_mode(Q4_OFF, g); }
void avx2_gemm_q4_1(const kern_gemm_args *g) { gemm_mode(Q4_AFF, g); }
void avx2_gemm_q5_0(const kern_gemm_args *g) { gemm_mode(Q5_OFF, g); }
void avx2_gemm_q5_1(const kern_gemm_args *g) { gemm_mode(Q5_AFF, g); }
void avx2_gemm_q8_0(const kern_gemm_args *g) { gemm_mode(Q8_SIGNED, g); }
