/*
 * avx2_q32.c — matrix products for the 32-element block formats (Q4_0,
 * Q4_1, Q5_0, Q5_1, Q8_0) against KACT_Q8_0 / KACT_Q8_1 activations.
 *
 * Panels. Rows are processed 8 at a time, in a layout where the 8 rows'
 * weights are interleaved in groups of 4: for block b and group g (weights
 * 4g..4g+3 of the block), one 32-byte vector holds those 4 weights of row
 * 0, then of row 1, ... row 7. A vpmaddubsw of that vector with the
 * activation's 4 matching bytes repeated 8 times gives the partial dot
 * products of all 8 rows, each in its own pair of int16 lanes; a block of 8
 * groups ends as one vector whose 32-bit lanes are the 8 rows' exact block
 * dot products — no horizontal sums — scaled in float per block.
 *
 * Packed layout (kern_matrix_pack does this once at load; a matrix that is
 * not packed gets each panel packed into scratch as it is used). Per block
 * of a panel, compactly (the same bytes per weight as the file):
 *   Q4_0: d[8] fp16, then 4 vectors of 32 bytes: vector k holds group 2k in
 *         its low nibbles and group 2k+1 in its high nibbles   (144 bytes)
 *   Q4_1: d[8], m[8], nibbles as Q4_0                            (160)
 *   Q5_0: d[8], nibbles, then 32 bytes of fifth bits: bit g of byte i is
 *         the fifth bit of group g at position i                 (176)
 *   Q5_1: d[8], m[8], nibbles, fifth bits                         (192)
 *   Q8_0: d[8], then 8 vectors of 32 signed bytes, one per group  (272)
 * Position i of a group vector is row i/4, weight i%4.
 *
 * Arithmetic, with the reference's exact integers:
 *   Q4_0/Q5_0: w = d (q - 8|16):  d*da * (sum(q*a) - 8|16 * sum(a))
 *   Q4_1/Q5_1: w = d q + m:       d*da * sum(q*a) + m * s_a
 *   Q8_0: signed weights, multiplied as |w| * (a with w's sign).
 * The int16 sums never saturate: an unsigned 4-bit weight times an
 * activation byte of at most 127 in magnitude (kact's range) is at most
 * 1905, a pair 3810, 8 pairs 30480; 5-bit: 7874 a pair, summed 4 at a
 * time; Q8_0: 128*127*2 = 32512 a pair, widened at once.
 *
 * The same tile serves one activation row (decode: the panel streams in
 * once, prefetched ahead) and many (prefill, batched decode: the panel is
 * read from cache for each pass of up to 6 activation rows), so a row's result
 * does not depend on how many rows came with it.
 */
#include "avx2.h"

enum { BLK = 32, GROUPS = 8, TMAX = 6 };

typedef enum q32_mode { Q4_OFF, Q4_AFF, Q5_OFF, Q5_AFF, Q8_SIGNED } q32_mode;

static size_t src_block_bytes(q32_mode mode) {
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
static bool five(q32_mode mode) { return mode == Q5_OFF || mode == Q5_AFF; }

/* Where the parts of a packed block are. */
static size_t off_m(q32_mode mode) { (void)mode; return 16; }
static size_t off_q(q32_mode mode) { return affine(mode) ? 32 : 16; }
static size_t off_h(q32_mode mode) { return off_q(mode) + 128; }
static size_t panel_block_bytes(q32_mode mode) {
    return mode == Q8_SIGNED ? 16 + 256 : off_q(mode) + 128 + (five(mode) ? 32 : 0);
}

/* ------------------------------------------------------------------ */
/* packing                                                             */
/* ------------------------------------------------------------------ */

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

/* One block of one source row as 32 unsigned (Q8_0: signed) bytes in
 * element order. */
static inline __m256i unpack_src(q32_mode mode, const uint8_t *blk) {
    switch (mode) {
    case Q4_OFF: return avx2_nibbles(blk + 2);
    case Q4_AFF: return avx2_nibbles(blk + 4);
    case Q5_OFF: return _mm256_or_si256(avx2_nibbles(blk + 6), fifth_bits(blk + 2));
    case Q5_AFF: return _mm256_or_si256(avx2_nibbles(blk + 8), fifth_bits(blk + 4));
    default: return _mm256_loadu_si256((const __m256i *)(blk + 2));
    }
}

static void pack_panel(q32_mode mode, const uint8_t *w, size_t stride, int rows, int64_t nb, uint8_t *out) {
    const size_t sb = src_block_bytes(mode), pb = panel_block_bytes(mode);
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    for (int64_t b = 0; b < nb; b++, out += pb) {
        __m256i r[8];
        uint16_t d[8] = {0}, m[8] = {0};
        for (int i = 0; i < 8; i++) {
            const uint8_t *blk = w + (size_t)i * stride + (size_t)b * sb;
            if (i < rows) {
                r[i] = unpack_src(mode, blk);
                memcpy(&d[i], blk, 2);
                if (affine(mode)) memcpy(&m[i], blk + 2, 2);
            } else {
                r[i] = _mm256_setzero_si256();
            }
        }
        avx2_transpose8x32(r); /* r[g]: group g of the 8 rows */
        memcpy(out, d, 16);
        if (affine(mode)) memcpy(out + off_m(mode), m, 16);
        if (mode == Q8_SIGNED) {
            for (int g = 0; g < GROUPS; g++) _mm256_storeu_si256((__m256i *)(out + 16 + 32 * g), r[g]);
            continue;
        }
        __m256i h = _mm256_setzero_si256();
        for (int g = 0; g < GROUPS; g++) { /* the fifth bits, bit g of each byte */
            __m256i top = _mm256_and_si256(_mm256_srli_epi16(r[g], 4), _mm256_set1_epi8(1));
            h = _mm256_or_si256(h, _mm256_and_si256(_mm256_slli_epi16(top, g), _mm256_set1_epi8((char)(1 << g))));
        }
        for (int k = 0; k < 4; k++) {
            __m256i lo = _mm256_and_si256(r[2 * k], low4), hi = _mm256_and_si256(r[2 * k + 1], low4);
            _mm256_storeu_si256((__m256i *)(out + off_q(mode) + 32 * k), _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)));
        }
        if (five(mode)) _mm256_storeu_si256((__m256i *)(out + off_h(mode)), h);
    }
}

/* ------------------------------------------------------------------ */
/* the tile                                                            */
/* ------------------------------------------------------------------ */

/* Group g of a packed block, as bytes. */
static inline __m256i group(q32_mode mode, const uint8_t *blk, int g) {
    if (mode == Q8_SIGNED) return _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * g));
    __m256i x = _mm256_loadu_si256((const __m256i *)(blk + off_q(mode) + 32 * (g / 2)));
    __m256i v = _mm256_and_si256(g % 2 ? _mm256_srli_epi16(x, 4) : x, _mm256_set1_epi8(0x0f));
    if (five(mode)) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(blk + off_h(mode)));
        /* bit g of each byte to bit 4 (shifts of 16-bit lanes: the bits
         * crossing from the neighbour byte land outside bit 4) */
        h = g <= 4 ? _mm256_slli_epi16(h, 4 - g) : _mm256_srli_epi16(h, g - 4);
        v = _mm256_or_si256(v, _mm256_and_si256(h, _mm256_set1_epi8(0x10)));
    }
    return v;
}

/* 8 rows x T activation rows over all blocks of a packed panel: y[t*ldy + i]
 * for the first `rows` rows. */
static inline __attribute__((always_inline)) void tile(q32_mode mode, int T, const uint8_t *panel, int64_t nb,
                                                       const kact_q8 *A, float *y, int64_t ldy, int rows, size_t ahead) {
    const size_t pb = panel_block_bytes(mode);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[TMAX];
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *blk = panel + (size_t)b * pb;
        for (size_t o = 0; o < pb; o += 64) _mm_prefetch((const char *)blk + ahead + o, _MM_HINT_T0);
        __m256i s32[TMAX];
        if (mode == Q8_SIGNED) {
            #pragma GCC unroll 8
            for (int g = 0; g < GROUPS; g++) {
                __m256i w = group(mode, blk, g);
                __m256i aw = _mm256_abs_epi8(w);
                #pragma GCC unroll 8
                for (int t = 0; t < T; t++) {
                    __m256i a = _mm256_sign_epi8(avx2_bcast4(A[t].q + BLK * b + 4 * g), w);
                    __m256i m = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, a), ones);
                    s32[t] = g == 0 ? m : avx2_add32(s32[t], m);
                }
            }
        } else {
            const int run = five(mode) ? 4 : 8; /* groups per int16 sum */
            #pragma GCC unroll 8
            for (int g0 = 0; g0 < GROUPS; g0 += run) {
                __m256i s16[TMAX];
                #pragma GCC unroll 8
                for (int g = g0; g < g0 + run; g++) {
                    __m256i w = group(mode, blk, g);
                    #pragma GCC unroll 8
                    for (int t = 0; t < T; t++) {
                        __m256i m = _mm256_maddubs_epi16(w, avx2_bcast4(A[t].q + BLK * b + 4 * g));
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
        __m256 sc = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
        #pragma GCC unroll 8
        for (int t = 0; t < T; t++) {
            if (offset(mode)) {
                __m256i off = _mm256_set1_epi32(A[t].sum[b]);
                s32[t] = _mm256_sub_epi32(s32[t], _mm256_slli_epi32(off, mode == Q4_OFF ? 3 : 4));
            }
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32[t]), _mm256_mul_ps(sc, _mm256_set1_ps(A[t].d[b])), acc[t]);
            if (affine(mode)) {
                __m256 mn = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + off_m(mode))));
                acc[t] = _mm256_fmadd_ps(mn, _mm256_set1_ps(A[t].s[b]), acc[t]);
            }
        }
    }
    #pragma GCC unroll 8
    for (int t = 0; t < T; t++) store8(y + (size_t)t * ldy, acc[t], rows);
}

static inline __attribute__((always_inline)) void gemm_mode(q32_mode mode, const kern_gemm_args *g) {
    const int64_t nb = g->cols / BLK;
    const size_t panel_bytes = (size_t)nb * panel_block_bytes(mode);
    for (int64_t r = g->r0; r < g->r1; r += 8) {
        int rows = (int)RL_MIN(8, g->r1 - r);
        const uint8_t *panel = g->packed ? g->packed + (size_t)(r / 8) * panel_bytes : g->scratch;
        if (!g->packed) pack_panel(mode, g->w + (size_t)r * g->w_stride, g->w_stride, rows, nb, g->scratch);
        /* passes of at most TMAX activation rows, as even as they can be
         * (8 rows: 4 + 4, not 6 + 2) */
        const int passes = (g->n + TMAX - 1) / TMAX, per = (g->n + passes - 1) / passes;
        for (int t0 = 0; t0 < g->n; t0 += per) {
            int T = RL_MIN(per, g->n - t0);
            kact_q8 A[TMAX] = {0}; /* all set below; zeroed for the compiler */
            #pragma GCC unroll 8
            for (int t = 0; t < T; t++) A[t] = kact_q8_view(g->a + (size_t)(t0 + t) * g->a_stride, g->cols);
            float *y = g->y + (size_t)t0 * g->ldy + r;
            switch (T) {
            case 6: tile(mode, 6, panel, nb, A, y, g->ldy, rows, panel_bytes); break;
            case 5: tile(mode, 5, panel, nb, A, y, g->ldy, rows, panel_bytes); break;
            case 4: tile(mode, 4, panel, nb, A, y, g->ldy, rows, panel_bytes); break;
            case 3: tile(mode, 3, panel, nb, A, y, g->ldy, rows, panel_bytes); break;
            case 2: tile(mode, 2, panel, nb, A, y, g->ldy, rows, panel_bytes); break;
            default: tile(mode, 1, panel, nb, A, y, g->ldy, rows, panel_bytes); break;
            }
        }
    }
}

void avx2_gemm_q4_0(const kern_gemm_args *g) { gemm_mode(Q4_OFF, g); }
void avx2_gemm_q4_1(const kern_gemm_args *g) { gemm_mode(Q4_AFF, g); }
void avx2_gemm_q5_0(const kern_gemm_args *g) { gemm_mode(Q5_OFF, g); }
void avx2_gemm_q5_1(const kern_gemm_args *g) { gemm_mode(Q5_AFF, g); }
void avx2_gemm_q8_0(const kern_gemm_args *g) { gemm_mode(Q8_SIGNED, g); }

static bool q32_mode_of(uint32_t type, q32_mode *mode) {
    switch (type) {
    case RL_TYPE_Q4_0: *mode = Q4_OFF; return true;
    case RL_TYPE_Q4_1: *mode = Q4_AFF; return true;
    case RL_TYPE_Q5_0: *mode = Q5_OFF; return true;
    case RL_TYPE_Q5_1: *mode = Q5_AFF; return true;
    case RL_TYPE_Q8_0: *mode = Q8_SIGNED; return true;
    default: return false;
    }
}

size_t avx2_q32_panel_bytes(uint32_t type, int64_t cols) {
    q32_mode mode;
    return q32_mode_of(type, &mode) ? (size_t)(cols / BLK) * panel_block_bytes(mode) : 0;
}

void avx2_q32_pack_panel(uint32_t type, const uint8_t *w, size_t stride, int rows, int64_t cols, uint8_t *out) {
    q32_mode mode;
    if (q32_mode_of(type, &mode)) pack_panel(mode, w, stride, rows, cols / BLK, out);
}
