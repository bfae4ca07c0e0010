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
#ifndef PREFETCH
#define PREFETCH 2048 /* bytes ahead in the weight stream */
#endif

typedef enum q32_mode { Q4_OFF, Q4_AFF, Q5_OFF, Q5_AFF, Q8_SIGNED } q32_mode;

typedef struct q32_panel {
    uint8_t *v;     /* nb * 256 bytes */
    float *sc;      /* nb * 8 */
    float *mn;      /* nb * 8 (affine modes) */
    int32_t *corr;  /* nb * 8 (offset modes): 128 * the sum of the block's weights */
    uint8_t *tmp;   /* 8 rows of nb * 32 unpacked bytes, before interleaving */
} q32_panel;

static q32_panel panel_in(uint8_t *scratch, int64_t nb) {
    q32_panel p = {scratch, (float *)(scratch + nb * 256), (float *)(scratch + nb * 288),
                   (int32_t *)(scratch + nb * 320), scratch + nb * 352};
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
static bool offset(q32_mode mode) { return mode == Q4_OFF || mode == Q5_OFF; }

/* Packs `rows` (<= 8) weight rows into the panel; missing rows are zero.
 * Each row is read start to end (the 8 rows are one contiguous stretch of
 * memory, so this is a single sequential stream, which the hardware
 * prefetcher follows; reading the 8 rows side by side is much slower from
 * DRAM), unpacked into tmp, then interleaved from there (L1/L2). */
static inline __attribute__((always_inline)) void pack(q32_mode mode, const uint8_t *w, size_t stride, int rows,
                                                       int64_t nb, q32_panel p) {
    const size_t bb = block_bytes(mode), cols = (size_t)nb * BLK;
    for (int i = 0; i < 8; i++) {
        uint8_t *dst = p.tmp + (size_t)i * cols;
        if (i >= rows) {
            memset(dst, 0, cols);
            for (int64_t b = 0; b < nb; b++) p.sc[8 * b + i] = p.mn[8 * b + i] = 0, p.corr[8 * b + i] = 0;
            continue;
        }
        const uint8_t *row = w + (size_t)i * stride;
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = row + (size_t)b * bb;
            __m256i v = unpack(mode, blk);
            if (offset(mode)) { /* signed weights q - 8|16, and 128 * their sum */
                const int off = mode == Q4_OFF ? 8 : 16;
                __m256i sad = _mm256_sad_epu8(v, _mm256_setzero_si256());
                __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
                int sum = (int)(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1));
                p.corr[8 * b + i] = 128 * (sum - 32 * off);
                v = _mm256_sub_epi8(v, _mm256_set1_epi8((char)off));
            }
            _mm256_store_si256((__m256i *)(dst + BLK * b), v);
            p.sc[8 * b + i] = avx2_f16(blk);
            if (affine(mode)) p.mn[8 * b + i] = avx2_f16(blk + 2);
        }
    }
    for (int64_t b = 0; b < nb; b++) {
        __m256i r[8];
        #pragma GCC unroll 8
        for (int i = 0; i < 8; i++) r[i] = _mm256_load_si256((const __m256i *)(p.tmp + (size_t)i * cols + BLK * b));
        avx2_transpose8x32(r);
        #pragma GCC unroll 8
        for (int g = 0; g < GROUPS; g++) _mm256_store_si256((__m256i *)(p.v + 256 * b + 32 * g), r[g]);
    }
}

/* 8 rows x T activation rows: acc[t] lane i = dot(row i, activation t).
 * Offset modes: the panel holds the signed weights q - 8|16 and the
 * activation comes as unsigned bytes a + 128, so the int16 sums never
 * saturate (a pair is at most 255 * 8 * 2 = 4080, 8 of them 32640; 5-bit:
 * 255 * 16 * 2 * 4 = 32640); 128 * sum(w), the panel's corr, is subtracted
 * in int32. The integers are exactly those of the reference. */
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
            for (int g = 0; g < GROUPS; g++) {
                __m256i w = _mm256_load_si256((const __m256i *)(vb + 32 * g));
                __m256i aw = _mm256_abs_epi8(w);
                #pragma GCC unroll 8
                for (int t = 0; t < T; t++) {
                    __m256i a = _mm256_sign_epi8(avx2_bcast4(A[t].q + BLK * b + 4 * g), w);
                    __m256i m = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, a), ones);
                    s32[t] = g == 0 ? m : avx2_add32(s32[t], m);
                }
            }
        } else {
            const int run = mode == Q5_OFF || mode == Q5_AFF ? 4 : 8; /* groups per int16 sum */
            #pragma GCC unroll 8
            for (int g0 = 0; g0 < GROUPS; g0 += run) {
                __m256i s16[4];
                #pragma GCC unroll 8
                for (int g = g0; g < g0 + run; g++) {
                    __m256i w = _mm256_load_si256((const __m256i *)(vb + 32 * g));
                    #pragma GCC unroll 8
                    for (int t = 0; t < T; t++) {
                        __m256i m = offset(mode)
                                        ? _mm256_maddubs_epi16(avx2_bcast4((const int8_t *)A[t].qb + BLK * b + 4 * g), w)
                                        : _mm256_maddubs_epi16(w, avx2_bcast4(A[t].q + BLK * b + 4 * g));
                        s16[t] = g == g0 ? m : avx2_add16(s16[t], m);
                    }
                }
                #pragma GCC unroll 8
                for (int t = 0; t < T; t++) {
                    __m256i m = _mm256_madd_epi16(s16[t], ones);
                    s32[t] = g0 == 0 ? m : avx2_add32(s32[t], m);
                }
            }
        }
        __m256 sc = _mm256_load_ps(p.sc + 8 * b);
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            if (offset(mode)) s32[t] = _mm256_sub_epi32(s32[t], _mm256_load_si256((const __m256i *)(p.corr + 8 * b)));
            __m256 scale = _mm256_mul_ps(sc, _mm256_set1_ps(A[t].d[b]));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32[t]), scale, acc[t]);
            if (affine(mode)) acc[t] = _mm256_fmadd_ps(_mm256_load_ps(p.mn + 8 * b), _mm256_set1_ps(A[t].s[b]), acc[t]);
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) store8(y + (size_t)t * ldy, acc[t], rows);
}

/* The exact integer dot products of one weight row's blocks with the
 * activation, 8 blocks to a vector (lane j = block b0+j), into out[0..nb8).
 * Generic form: one block per vector, reduced 8 to 1 with vphaddd. */
static inline __attribute__((always_inline)) void row_sums(q32_mode mode, const uint8_t *row, int64_t nb,
                                                           const int8_t *aq, const __m256i *corr, int32_t *out) {
    const size_t bb = block_bytes(mode);
    const __m256i ones = _mm256_set1_epi16(1);
    for (int64_t b0 = 0; b0 < nb; b0 += 8) {
        __m256i v[8];
        #pragma GCC unroll 8
        for (int j = 0; j < 8; j++) {
            int64_t b = b0 + j;
            if (b >= nb) {
                v[j] = _mm256_setzero_si256();
                continue;
            }
            const uint8_t *blk = row + (size_t)b * bb;
            _mm_prefetch((const char *)blk + PREFETCH, _MM_HINT_T0);
            __m256i x = unpack(mode, blk), a = _mm256_loadu_si256((const __m256i *)(aq + BLK * b)), p;
            if (mode == Q8_SIGNED)
                p = _mm256_maddubs_epi16(_mm256_abs_epi8(x), _mm256_sign_epi8(a, x));
            else
                p = _mm256_maddubs_epi16(x, a);
            if (mode == Q4_OFF || mode == Q5_OFF) p = _mm256_sub_epi16(p, corr[b]);
            v[j] = _mm256_madd_epi16(p, ones);
        }
        _mm256_store_si256((__m256i *)(out + b0), avx2_reduce8_epi32(v));
    }
}

/* Q4_0/Q4_1: two blocks per vector. The 16 bytes of packed nibbles of
 * blocks b and b+1 fill one register; their low nibbles (weights 0-15 of
 * each block) and high nibbles (16-31) are two vectors, multiplied by the
 * activation rearranged the same way once per product (pairs: lo, hi, and
 * for Q4_0 the correction 8*(a0+a1) of both). Half the unpacking work and
 * half the reduction of the generic form. */
typedef struct q4_pair { __m256i lo, hi, corr; } q4_pair;

static void q4_pairs(const int8_t *aq, int64_t nb, q4_pair *pr) {
    const __m256i eight = _mm256_set1_epi8(8);
    for (int64_t b = 0; b < nb; b += 2) {
        __m128i a0l = _mm_loadu_si128((const __m128i *)(aq + BLK * b)), a0h = _mm_loadu_si128((const __m128i *)(aq + BLK * b + 16));
        __m128i a1l = _mm_setzero_si128(), a1h = _mm_setzero_si128();
        if (b + 1 < nb) {
            a1l = _mm_loadu_si128((const __m128i *)(aq + BLK * b + 32));
            a1h = _mm_loadu_si128((const __m128i *)(aq + BLK * b + 48));
        }
        q4_pair *p = &pr[b / 2];
        p->lo = _mm256_set_m128i(a1l, a0l);
        p->hi = _mm256_set_m128i(a1h, a0h);
        p->corr = _mm256_add_epi16(_mm256_maddubs_epi16(eight, p->lo), _mm256_maddubs_epi16(eight, p->hi));
    }
}

static inline __attribute__((always_inline)) void row_sums_q4(q32_mode mode, const uint8_t *row, int64_t nb,
                                                              const q4_pair *pr, int32_t *out) {
    const size_t bb = block_bytes(mode), qs = mode == Q4_OFF ? 2 : 4;
    const __m256i ones = _mm256_set1_epi16(1), low4 = _mm256_set1_epi8(0x0f);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (int64_t b0 = 0; b0 < nb; b0 += 8) {
        __m256i v[4];
        #pragma GCC unroll 4
        for (int j = 0; j < 4; j++) {
            int64_t b = b0 + 2 * j;
            if (b >= nb) {
                v[j] = _mm256_setzero_si256();
                continue;
            }
            const uint8_t *blk = row + (size_t)b * bb;
            _mm_prefetch((const char *)blk + PREFETCH, _MM_HINT_T0);
            __m128i q0 = _mm_loadu_si128((const __m128i *)(blk + qs));
            __m128i q1 = b + 1 < nb ? _mm_loadu_si128((const __m128i *)(blk + bb + qs)) : _mm_setzero_si128();
            __m256i q = _mm256_set_m128i(q1, q0);
            const q4_pair *a = &pr[b / 2];
            __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(q, low4), a->lo),
                                         _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), low4), a->hi));
            if (mode == Q4_OFF) p = _mm256_sub_epi16(p, a->corr);
            v[j] = _mm256_madd_epi16(p, ones);
        }
        __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(v[0], v[1]), _mm256_hadd_epi32(v[2], v[3]));
        _mm256_store_si256((__m256i *)(out + b0), _mm256_permutevar8x32_epi32(h, order));
    }
}

/* One activation row (decode). The tile's arithmetic, reorganised for
 * memory: each weight row is read start to end (rows follow each other in
 * memory, so this is one sequential stream that the prefetch runs ahead
 * of; reading 8 rows side by side streams much worse from DRAM), its exact
 * integer block sums kept in scratch; then every 8 rows the sums are
 * transposed to lanes = rows and scaled exactly as the tile scales them. So
 * a row's result is bit for bit the same whether its activation came alone
 * or in a batch. */
static inline __attribute__((always_inline)) void gemv(q32_mode mode, const kern_gemm_args *g) {
    const int64_t nb = g->cols / BLK, nb8 = (nb + 7) / 8 * 8;
    const size_t bb = block_bytes(mode);
    const kact_q8 A = kact_q8_view(g->a, g->cols);
    const bool pairs = mode == Q4_OFF || mode == Q4_AFF;
    __m256i *corr = (__m256i *)g->scratch;   /* generic form: nb of them */
    q4_pair *pr = (q4_pair *)g->scratch;     /* pair form: (nb + 1) / 2 */
    int32_t *isum = (int32_t *)(g->scratch + (size_t)nb8 * 64); /* 8 rows x nb8 */
    if (pairs) {
        q4_pairs(A.q, nb, pr);
    } else if (mode == Q5_OFF) {
        const __m256i k = _mm256_set1_epi8(16);
        for (int64_t b = 0; b < nb; b++)
            corr[b] = _mm256_maddubs_epi16(k, _mm256_loadu_si256((const __m256i *)(A.q + BLK * b)));
    }
    for (int64_t r = g->r0; r < g->r1; r += 8) {
        int rows = (int)RL_MIN(8, g->r1 - r);
        for (int i = 0; i < 8; i++) {
            int32_t *out = isum + (size_t)i * nb8;
            const uint8_t *row = g->w + (size_t)(r + i) * g->w_stride;
            if (i >= rows)
                memset(out, 0, (size_t)nb8 * sizeof *out);
            else if (pairs)
                row_sums_q4(mode, row, nb, pr, out);
            else
                row_sums(mode, row, nb, A.q, corr, out);
        }
        /* the epilogue: lanes = rows, blocks in order */
        const uint8_t *blk[8]; /* block b of each row; missing rows repeat row 0 (lanes unused) */
        for (int i = 0; i < 8; i++) blk[i] = g->w + (size_t)(r + (i < rows ? i : 0)) * g->w_stride;
        __m256 acc = _mm256_setzero_ps();
        for (int64_t b0 = 0; b0 < nb; b0 += 8) {
            __m256i u[8];
            #pragma GCC unroll 8
            for (int i = 0; i < 8; i++) u[i] = _mm256_load_si256((const __m256i *)(isum + (size_t)i * nb8 + b0));
            avx2_transpose8x32(u);
            #pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                int64_t b = b0 + j;
                if (b >= nb) break;
                __m256 sc = avx2_f16_gather(blk);
                acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(u[j]), _mm256_mul_ps(sc, _mm256_set1_ps(A.d[b])), acc);
                if (affine(mode)) {
                    const uint8_t *m[8];
                    #pragma GCC unroll 8
                    for (int i = 0; i < 8; i++) m[i] = blk[i] + 2;
                    acc = _mm256_fmadd_ps(avx2_f16_gather(m), _mm256_set1_ps(A.s[b]), acc);
                }
                #pragma GCC unroll 8
                for (int i = 0; i < 8; i++) blk[i] += bb;
            }
        }
        store8(g->y + r, acc, rows);
    }
}

static inline __attribute__((always_inline)) void gemm_mode(q32_mode mode, const kern_gemm_args *g) {
    if (g->n == 1) {
        gemv(mode, g);
        return;
    }
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
