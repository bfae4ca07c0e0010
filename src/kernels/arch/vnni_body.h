/*
 * vnni_body.h — the quantized matrix kernels of the two x86 levels that
 * have VNNI (vpdpbusd: unsigned x signed bytes, four products summed
 * straight into an int32 lane), written once and compiled twice:
 *   avx512_kernels.c   VNNI_BITS 512: zmm vectors, panels of 16 weight rows
 *                      (AVX-512 F/BW/VL/DQ + VNNI)
 *   avxvnni_kernels.c  VNNI_BITS 256: ymm vectors, panels of 8 weight rows
 *                      (AVX2 + AVX-VNNI, the VEX form; CPUs without AVX-512)
 * Each defines VNNI_BITS, IMPL_NAME and IMPL_LABEL before including this.
 * Everything except the matrix products (activation conversion, vector
 * operations, attention, float weights) is the AVX2 level's code.
 *
 * The scheme is the AVX2 one (docs/kernels.md): weights interleaved in
 * groups of 4, so one vector holds 4 weights of each of the panel's R rows
 * (R = 16 or 8, lane i = row i), and one instruction with the activation's 4
 * matching bytes broadcast adds 4 products into every row's int32 lane.
 * No horizontal sums, and no int16 stage: vpdpbusd widens as it adds, so
 * there are no saturation bounds to respect and one instruction does what
 * vpmaddubsw + vpaddw + vpmaddwd did.
 *
 * Weights are always the unsigned side, activations (kact rows, values in
 * [-127, 127]) the signed side:
 *   Q4_0 q in [0,15], w = q - 8     Q5_0 q in [0,31], w = q - 16
 *   Q8_0 q = w + 128 in [0,255]     Q4_1/Q5_1/Q4_K/Q5_K: q as stored
 *   Q6_K q in [0,63], w = q - 32
 * and the offset comes back through the activation's sums: a block's
 * integer sum starts at -offset x sum(a) instead of zero. Every (weight
 * row, activation row) pair gets the reference's exact integers per block
 * (per super-block for the K-quants, sub-scales applied in int32), scaled
 * in float with the same operations whatever else is in the product — so a
 * row's result does not depend on batching, and the float operations are
 * those of the AVX2 kernels (results agree with that level bit for bit).
 *
 * Packed panels (kern_matrix_pack, once at load): all blocks' weight
 * vectors first, then all blocks' scales, so the vectors stay aligned to
 * their size (the scales are 2R bytes a block and would misalign them).
 * Per 32-block, vectors of 4R bytes:
 *   Q4_0/Q4_1  4 vectors: vector k = group 2k in the low nibbles, group
 *              2k+1 in the high ones
 *   Q5_0/Q5_1  the same, then 1 vector of fifth bits (bit g of byte p:
 *              group g)
 *   Q8_0       8 vectors, one per group, bytes q = w + 128
 * and per block in the scales part: d[R] fp16 (Q4_1/Q5_1: then m[R]).
 * Per 256-super-block (unit j = weights 32j..32j+31, group g of a unit =
 * its weights 4g..4g+3):
 *   Q4_K       per unit 4 nibble vectors as above               (128R)
 *              scales: d[R], dmin[R] fp16, sc[8][R], m[8][R] bytes
 *   Q5_K       per unit 4 nibble vectors and a fifth-bit vector (160R)
 *   Q6_K       per unit 4 nibble vectors (the low 4 bits) and 2 vectors
 *              of top bits: bits 2k..2k+1 of byte p of top vector h
 *              are group 4h+k's                                 (192R)
 *              scales: d[R] fp16, then for each pair of 16-sub-blocks
 *              (2j, 2j+1) and row i the bytes sc_2j, sc_2j+1    (18R)
 * Byte p of a group vector is row p/4, weight p%4. Missing rows (a last
 * panel of fewer than R rows) are zeros. The packed bytes per weight are
 * the file's (Q6_K: exactly; Q4_K/Q5_K: their 6-bit scales take a byte).
 *
 * Bounds, all in int32 (activations in [-127, 127]): Q8_0 a block at most
 * 32 x 255 x 127 = 1.04e6; Q6_K a 16-sub-block 1.3e5, times |sc| <= 128,
 * 16 of them: 2.7e8; Q4_K/Q5_K a unit 1.3e5 x 63, 8 of them: 6.5e7.
 */
#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../kernels_impl.h"
#include "../quant.h"
#include "avx2.h"

#define UNROLL _Pragma("GCC unroll 16")

/* ------------------------------------------------------------------ */
/* the vector width                                                    */
/* ------------------------------------------------------------------ */

#if VNNI_BITS == 512
#ifndef TQ_MAX
#define TQ_MAX 8
#endif
#ifndef TK_MAX
#define TK_MAX 8
#endif
enum { R = 16, TQ = TQ_MAX, TK = TK_MAX }; /* rows per panel; activation rows per pass (32-blocks, K-quants) */
typedef __m512i vi;
typedef __m512 vf;
static inline vi vi_load(const void *p) { return _mm512_loadu_si512(p); }
static inline vi vi_zero(void) { return _mm512_setzero_si512(); }
static inline vi vi_set8(int x) { return _mm512_set1_epi8((char)x); }
static inline vi vi_set32(int32_t x) { return _mm512_set1_epi32(x); }
static inline vi vi_and(vi a, vi b) { return _mm512_and_si512(a, b); }
static inline vi vi_or(vi a, vi b) { return _mm512_or_si512(a, b); }
static inline vi vi_add32(vi a, vi b) { return _mm512_add_epi32(a, b); }
static inline vi vi_sub32(vi a, vi b) { return _mm512_sub_epi32(a, b); }
static inline vi vi_sub16(vi a, vi b) { return _mm512_sub_epi16(a, b); }
static inline vi vi_mul32(vi a, vi b) { return _mm512_mullo_epi32(a, b); }
#define vi_srl16(a, n) _mm512_srli_epi16((a), (n))
#define vi_sll16(a, n) _mm512_slli_epi16((a), (n))
#define vi_sll32(a, n) _mm512_slli_epi32((a), (n))
#define vi_sra32(a, n) _mm512_srai_epi32((a), (n))
static inline vi dpbusd(vi acc, vi u, vi s) { return _mm512_dpbusd_epi32(acc, u, s); }
static inline vi dpwssd(vi acc, vi a, vi b) { return _mm512_dpwssd_epi32(acc, a, b); }
static inline vf vf_zero(void) { return _mm512_setzero_ps(); }
static inline vf vf_set(float x) { return _mm512_set1_ps(x); }
static inline vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf vf_fmadd(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf vf_fnmadd(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }
static inline vf vf_cvt(vi a) { return _mm512_cvtepi32_ps(a); }
/* R fp16 at p as floats; R bytes as int32 (unsigned); 2R signed bytes as int16 */
static inline vf f16_rows(const uint8_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
static inline vi u8_rows(const uint8_t *p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)); }
static inline vi s8_pairs(const uint8_t *p) { return _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)p)); }
static inline void store_rows(float *y, vf v, int rows) {
    _mm512_mask_storeu_ps(y, (__mmask16)((1u << rows) - 1), v);
}
#else
enum { R = 8, TQ = 4, TK = 3 };
typedef __m256i vi;
typedef __m256 vf;
static inline vi vi_load(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline vi vi_zero(void) { return _mm256_setzero_si256(); }
static inline vi vi_set8(int x) { return _mm256_set1_epi8((char)x); }
static inline vi vi_set32(int32_t x) { return _mm256_set1_epi32(x); }
static inline vi vi_and(vi a, vi b) { return _mm256_and_si256(a, b); }
static inline vi vi_or(vi a, vi b) { return _mm256_or_si256(a, b); }
static inline vi vi_add32(vi a, vi b) { return _mm256_add_epi32(a, b); }
static inline vi vi_sub32(vi a, vi b) { return _mm256_sub_epi32(a, b); }
static inline vi vi_sub16(vi a, vi b) { return _mm256_sub_epi16(a, b); }
static inline vi vi_mul32(vi a, vi b) { return _mm256_mullo_epi32(a, b); }
#define vi_srl16(a, n) _mm256_srli_epi16((a), (n))
#define vi_sll16(a, n) _mm256_slli_epi16((a), (n))
#define vi_sll32(a, n) _mm256_slli_epi32((a), (n))
#define vi_sra32(a, n) _mm256_srai_epi32((a), (n))
static inline vi dpbusd(vi acc, vi u, vi s) { return _mm256_dpbusd_avx_epi32(acc, u, s); }
static inline vi dpwssd(vi acc, vi a, vi b) { return _mm256_dpwssd_avx_epi32(acc, a, b); }
static inline vf vf_zero(void) { return _mm256_setzero_ps(); }
static inline vf vf_set(float x) { return _mm256_set1_ps(x); }
static inline vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf vf_fmadd(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vf vf_fnmadd(vf a, vf b, vf c) { return _mm256_fnmadd_ps(a, b, c); }
static inline vf vf_cvt(vi a) { return _mm256_cvtepi32_ps(a); }
static inline vf f16_rows(const uint8_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline vi u8_rows(const uint8_t *p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)); }
static inline vi s8_pairs(const uint8_t *p) { return _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)p)); }
static inline void store_rows(float *y, vf v, int rows) { store8(y, v, rows); }
#endif

enum { VB = 4 * R }; /* bytes of a vector: 4 weights of each row */

/* 4 activation bytes at p, in every lane. */
static inline vi bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return vi_set32(v);
}

/* Nibble vector x as group 2k (hi = 0) or 2k+1 (hi = 1). */
static inline vi nibbles(vi x, int hi) { return vi_and(hi ? vi_srl16(x, 4) : x, vi_set8(0x0f)); }

/* Bit g of each byte of h, moved to bit 4 (16-bit shifts: what crosses
 * over from the neighbouring byte lands outside bit 4). */
static inline vi fifth_bit(vi h, int g) {
    h = g <= 4 ? vi_sll16(h, 4 - g) : vi_srl16(h, g - 4);
    return vi_and(h, vi_set8(0x10));
}

/* The lines of [p, p + bytes) into L1. In asm: GCC's dead-code elimination
 * drops _mm_prefetch from these tiles (whose loops it otherwise keeps). */
static inline void prefetch(const uint8_t *p, size_t bytes) {
    for (size_t o = 0; o < bytes; o += 64) __asm__ volatile("prefetcht0 %0" : : "m"(p[o]));
}

/* ------------------------------------------------------------------ */
/* packing (once per matrix at load; plain C)                          */
/* ------------------------------------------------------------------ */

/* Weights of R rows (v[i][e], e < n) into group vectors: out[g * VB + 4i + k]
 * = v[i][4g + k]. */
static void interleave(uint8_t v[R][QK_K], int n, uint8_t *out) {
    for (int g = 0; g < n / 4; g++)
        for (int i = 0; i < R; i++) memcpy(out + (size_t)g * VB + 4 * i, &v[i][4 * g], 4);
}

/* What a unit's vectors hold above the low 4 bits. */
typedef enum high_bits { HIGH_NONE, HIGH_BIT4, HIGH_2BITS } high_bits;

/* 8 groups of interleaved weights (in: group g at in + g * VB) as 4 nibble
 * vectors, then HIGH_BIT4 a vector of fifth bits (bit g of byte p: group
 * g), HIGH_2BITS two vectors of top bits (bits 2k..2k+1 of byte p of
 * vector h: group 4h + k). Returns the end of what it wrote. */
static uint8_t *store_groups(const uint8_t *in, high_bits high, uint8_t *out) {
    for (int k = 0; k < 4; k++)
        for (int p = 0; p < VB; p++)
            out[VB * k + p] = (uint8_t)((in[VB * 2 * k + p] & 15) | (in[VB * (2 * k + 1) + p] & 15) << 4);
    out += 4 * VB;
    for (int h = 0; h < (high == HIGH_2BITS ? 2 : high == HIGH_BIT4); h++, out += VB)
        for (int p = 0; p < VB; p++) {
            unsigned bits = 0;
            for (int g = 0; g < 8; g++) {
                unsigned top = in[VB * g + p] >> 4;
                if (high == HIGH_BIT4) bits |= (top & 1) << g;
                else if (g / 4 == h) bits |= (top & 3) << (2 * (g % 4));
            }
            out[p] = (uint8_t)bits;
        }
    return out;
}

typedef enum q32_mode { Q4_OFF, Q4_AFF, Q5_OFF, Q5_AFF, Q8_OFF } q32_mode;

static bool affine(q32_mode m) { return m == Q4_AFF || m == Q5_AFF; }
static bool five(q32_mode m) { return m == Q5_OFF || m == Q5_AFF; }
static int q32_offset(q32_mode m) { return m == Q4_OFF ? 8 : m == Q5_OFF ? 16 : m == Q8_OFF ? 128 : 0; }
static size_t q32_src_bytes(q32_mode m) {
    const size_t b[] = {sizeof(block_q4_0), sizeof(block_q4_1), sizeof(block_q5_0), sizeof(block_q5_1),
                        sizeof(block_q8_0)};
    return b[m];
}
/* bytes of a block's vectors, of its scales */
static size_t q32_vec_bytes(q32_mode m) { return m == Q8_OFF ? 8 * VB : (4 + five(m)) * VB; }
static size_t q32_scale_bytes(q32_mode m) { return (affine(m) ? 4 : 2) * R; }
/* Blocks go in pairs: the scales of both, then the vectors of both (the
 * scales of one block, 2R bytes, would misalign the vectors after them). */
static size_t q32_pair_bytes(q32_mode m) { return 2 * (q32_scale_bytes(m) + q32_vec_bytes(m)); }
static size_t q32_panel_bytes(q32_mode m, int64_t nb) { return (size_t)(nb + 1) / 2 * q32_pair_bytes(m); }
/* Where block b's scales and vectors are in a packed panel. */
static inline const uint8_t *q32_scales_at(q32_mode m, const uint8_t *panel, int64_t b) {
    return panel + (size_t)(b / 2) * q32_pair_bytes(m) + (size_t)(b % 2) * q32_scale_bytes(m);
}
static inline const uint8_t *q32_vectors_at(q32_mode m, const uint8_t *panel, int64_t b) {
    return panel + (size_t)(b / 2) * q32_pair_bytes(m) + 2 * q32_scale_bytes(m) + (size_t)(b % 2) * q32_vec_bytes(m);
}

/* One source block as 32 unsigned values (the modes' q above). */
static void q32_unpack(q32_mode m, const uint8_t *blk, uint8_t q[32]) {
    if (m == Q8_OFF) {
        for (int e = 0; e < 32; e++) q[e] = (uint8_t)(blk[2 + e] ^ 0x80);
        return;
    }
    const uint8_t *qs = blk + (m == Q4_OFF ? 2 : m == Q4_AFF ? 4 : m == Q5_OFF ? 6 : 8);
    uint32_t qh = 0;
    if (five(m)) memcpy(&qh, blk + (m == Q5_OFF ? 2 : 4), 4);
    for (int e = 0; e < 16; e++) {
        q[e] = (uint8_t)((qs[e] & 15) | ((qh >> e) & 1) << 4);
        q[e + 16] = (uint8_t)((qs[e] >> 4) | ((qh >> (e + 16)) & 1) << 4);
    }
}

static void q32_pack(q32_mode m, const uint8_t *w, size_t stride, int rows, int64_t nb, uint8_t *out) {
    uint8_t v[R][QK_K], grp[8 * VB];
    memset(out, 0, q32_panel_bytes(m, nb));
    memset(v, 0, sizeof v);
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *sc = (uint8_t *)q32_scales_at(m, out, b), *vec = (uint8_t *)q32_vectors_at(m, out, b);
        for (int i = 0; i < rows; i++) {
            const uint8_t *blk = w + (size_t)i * stride + (size_t)b * q32_src_bytes(m);
            q32_unpack(m, blk, v[i]);
            memcpy(sc + 2 * i, blk, 2);                           /* d */
            if (affine(m)) memcpy(sc + 2 * R + 2 * i, blk + 2, 2); /* m */
        }
        interleave(v, 32, grp);
        if (m == Q8_OFF)
            memcpy(vec, grp, 8 * VB);
        else
            store_groups(grp, five(m) ? HIGH_BIT4 : HIGH_NONE, vec);
    }
}

typedef enum kq_mode { K4, K5, K6 } kq_mode;

static size_t kq_src_bytes(kq_mode m) {
    return m == K4 ? sizeof(block_q4_K) : m == K5 ? sizeof(block_q5_K) : sizeof(block_q6_K);
}
static size_t kq_vec_bytes(kq_mode m) { return (m == K4 ? 32 : m == K5 ? 40 : 48) * VB; }
/* a super-block's scales, then its vectors (Q6_K's scales take 18R bytes,
 * padded to 20R so that its vectors stay aligned) */
static size_t kq_scale_bytes(kq_mode m) { (void)m; return 20 * R; }
static size_t kq_block_bytes(kq_mode m) { return kq_scale_bytes(m) + kq_vec_bytes(m); }
static size_t kq_panel_bytes(kq_mode m, int64_t nsb) { return (size_t)nsb * kq_block_bytes(m); }
/* where a super-block's scales are: K4/K5 d, dmin, sc, m; K6 d, pairs */
enum { KS_D = 0, KS_DMIN = 2 * R, KS_SC = 4 * R, KS_M = 12 * R, KS_PAIRS = 2 * R };

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

/* One source super-block as 256 unsigned values (Q6_K: q + 32 as stored). */
static void kq_unpack(kq_mode m, const uint8_t *blk, uint8_t q[QK_K]) {
    for (int j = 0; j < 8; j++)
        for (int l = 0; l < 32; l++) {
            int v;
            if (m == K6) {
                const block_q6_K *b = (const block_q6_K *)blk;
                int h = j / 4, k = j % 4, ql = b->ql[64 * h + 32 * (k & 1) + l];
                v = (k < 2 ? ql & 15 : ql >> 4) | ((b->qh[32 * h + l] >> (2 * k)) & 3) << 4;
            } else {
                const uint8_t *qs = blk + (m == K4 ? offsetof(block_q4_K, qs) : offsetof(block_q5_K, qs));
                v = (qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 15;
                if (m == K5) v |= ((((const block_q5_K *)blk)->qh[l] >> j) & 1) << 4;
            }
            q[32 * j + l] = (uint8_t)v;
        }
}

/* A super-block's scales of row i into the scales part s. */
static void kq_pack_scales(kq_mode m, const uint8_t *blk, int i, uint8_t *s) {
    if (m == K6) {
        const block_q6_K *b = (const block_q6_K *)blk;
        memcpy(s + KS_D + 2 * i, &b->d, 2);
        for (int j = 0; j < 8; j++) {
            s[KS_PAIRS + 2 * R * j + 2 * i] = (uint8_t)b->scales[2 * j];
            s[KS_PAIRS + 2 * R * j + 2 * i + 1] = (uint8_t)b->scales[2 * j + 1];
        }
        return;
    }
    memcpy(s + KS_D + 2 * i, blk, 2);
    memcpy(s + KS_DMIN + 2 * i, blk + 2, 2);
    for (int j = 0; j < 8; j++) {
        int sc, mn;
        k4_scale_min(blk + offsetof(block_q4_K, scales), j, &sc, &mn);
        s[KS_SC + R * j + i] = (uint8_t)sc;
        s[KS_M + R * j + i] = (uint8_t)mn;
    }
}

static void kq_pack(kq_mode m, const uint8_t *w, size_t stride, int rows, int64_t nsb, uint8_t *out) {
    uint8_t v[R][QK_K], grp[64 * VB];
    memset(out, 0, kq_panel_bytes(m, nsb));
    memset(v, 0, sizeof v);
    for (int64_t s = 0; s < nsb; s++) {
        uint8_t *sc = out + (size_t)s * kq_block_bytes(m), *vec = sc + kq_scale_bytes(m);
        for (int i = 0; i < rows; i++) {
            const uint8_t *blk = w + (size_t)i * stride + (size_t)s * kq_src_bytes(m);
            kq_unpack(m, blk, v[i]);
            kq_pack_scales(m, blk, i, sc);
        }
        interleave(v, QK_K, grp);
        high_bits high = m == K4 ? HIGH_NONE : m == K5 ? HIGH_BIT4 : HIGH_2BITS;
        for (int j = 0; j < 8; j++) vec = store_groups(grp + 8 * VB * j, high, vec);
    }
}

/* ------------------------------------------------------------------ */
/* the tiles: R weight rows x T activation rows over a whole panel     */
/* ------------------------------------------------------------------ */

/* Independent int32 sums per activation row for a tile of T rows: a
 * dpbusd takes several cycles and two can start each cycle, so one chain
 * per row leaves a 1-row tile (decode) waiting on each instruction. Integer
 * sums are exact in any order: results do not depend on it. */
static inline int chains(int T) { return T >= 8 ? 1 : T >= 4 ? 2 : T >= 2 ? 4 : 8; }
/* the K-quants' tiles hold more per row (the super-block's sum, the
 * sub-block's, the float sum): one chain per row from 4 rows on, or they
 * spill */
static inline int kq_chains(int T) { return VNNI_BITS == 512 ? (T >= 4 ? 1 : chains(T)) : (T >= 2 ? 1 : 2); }

static inline vi sum_chains(const vi *part, int C) {
    vi s = part[0];
    UNROLL for (int c = 1; c < C; c++) s = vi_add32(s, part[c]);
    return s;
}

/* Group g of a packed 32-block's vectors v. */
static inline vi q32_group(q32_mode m, const uint8_t *v, int g) {
    if (m == Q8_OFF) return vi_load(v + VB * g);
    vi x = nibbles(vi_load(v + VB * (g / 2)), g % 2);
    return five(m) ? vi_or(x, fifth_bit(vi_load(v + 4 * VB), g)) : x;
}

/* y[t*ldy + i] for the first `rows` rows of the panel (vectors vec, scales
 * sc) and T activation rows; pf: prefetch the next panel (`ahead` bytes on),
 * which the first pass over a panel streams in. */
static inline __attribute__((always_inline)) void q32_tile(q32_mode m, int T, const uint8_t *panel, int64_t nb,
                                                           const kact_q8 *A, float *y, int64_t ldy, int rows,
                                                           bool pf, size_t ahead) {
    const int off = q32_offset(m);
    vf acc[TQ];
    UNROLL for (int t = 0; t < T; t++) acc[t] = vf_zero();
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *v = q32_vectors_at(m, panel, b), *s = q32_scales_at(m, panel, b);
        if (pf && b % 2 == 0) prefetch(s + ahead, q32_pair_bytes(m));
        /* C independent sums per activation row (groups g, g + C, ...),
         * so that at least 8 dpbusd chains are in flight whatever T is */
        const int C = chains(T);
        vi part[TQ][8], isum[TQ];
        UNROLL for (int t = 0; t < T; t++)
            UNROLL for (int c = 0; c < C; c++) part[t][c] = c == 0 && off ? vi_set32(-off * A[t].sum[b]) : vi_zero();
        UNROLL for (int g = 0; g < 8; g++) {
            vi w = q32_group(m, v, g);
            UNROLL for (int t = 0; t < T; t++)
                part[t][g % C] = dpbusd(part[t][g % C], w, bcast4(A[t].q + 32 * b + 4 * g));
        }
        UNROLL for (int t = 0; t < T; t++) isum[t] = sum_chains(part[t], C);
        vf d = f16_rows(s);
        UNROLL for (int t = 0; t < T; t++) {
            acc[t] = vf_fmadd(vf_cvt(isum[t]), vf_mul(d, vf_set(A[t].d[b])), acc[t]);
            if (affine(m)) acc[t] = vf_fmadd(f16_rows(s + 2 * R), vf_set(A[t].s[b]), acc[t]);
        }
    }
    UNROLL for (int t = 0; t < T; t++) store_rows(y + (size_t)t * ldy, acc[t], rows);
}

/* Group g of unit u's vectors (Q6_K: bits 2k..2k+1 of a top vector go to
 * bits 4..5, as fifth_bit does for one bit). */
static inline vi kq_group(kq_mode m, const uint8_t *u, int g) {
    vi x = nibbles(vi_load(u + VB * (g / 2)), g % 2);
    if (m == K5) return vi_or(x, fifth_bit(vi_load(u + 4 * VB), g));
    if (m == K6) {
        vi h = vi_load(u + VB * (4 + g / 4));
        int k = g % 4;
        h = 2 * k <= 4 ? vi_sll16(h, 4 - 2 * k) : vi_srl16(h, 2 * k - 4);
        return vi_or(x, vi_and(h, vi_set8(0x30)));
    }
    return x;
}

/* dot[t] = the exact dot products of groups g0..g1-1 of unit u with
 * activation bytes aq[t] (the unit's first), in kq_chains(T) independent sums. */
static inline __attribute__((always_inline)) void kq_dots(kq_mode m, int T, const uint8_t *u, int g0, int g1,
                                                          const int8_t *const *aq, vi *dot) {
    const int C = kq_chains(T);
    vi part[TK][8];
    UNROLL for (int t = 0; t < T; t++)
        UNROLL for (int c = 0; c < C; c++) part[t][c] = vi_zero();
    UNROLL for (int g = g0; g < g1; g++) {
        vi w = kq_group(m, u, g);
        UNROLL for (int t = 0; t < T; t++) part[t][g % C] = dpbusd(part[t][g % C], w, bcast4(aq[t] + 4 * g));
    }
    UNROLL for (int t = 0; t < T; t++) dot[t] = sum_chains(part[t], C);
}

static inline __attribute__((always_inline)) void kq_tile(kq_mode m, int T, const uint8_t *panel, int64_t nsb,
                                                          const kact_q8 *A, float *y, int64_t ldy, int rows, bool pf,
                                                          size_t ahead) {
    const size_t ub = kq_vec_bytes(m) / 8;
    vf acc[TK];
    UNROLL for (int t = 0; t < T; t++) acc[t] = vf_zero();
    for (int64_t s = 0; s < nsb; s++) {
        const uint8_t *sp = panel + (size_t)s * kq_block_bytes(m), *v = sp + kq_scale_bytes(m);
        if (pf) prefetch(sp + ahead, kq_block_bytes(m));
        vi isum[TK], part[TK], msum[TK];
        UNROLL for (int t = 0; t < T; t++) isum[t] = vi_zero();
        _Pragma("GCC unroll 1") for (int j = 0; j < 8; j++) { /* unrolled, its units interleave and spill */
            const int8_t *aq[TK];
            UNROLL for (int t = 0; t < T; t++) aq[t] = A[t].q + QK_K * s + 32 * j;
            if (m == K6) { /* two 16-sub-blocks, each with its signed scale */
                vi pairs = s8_pairs(sp + KS_PAIRS + 2 * R * j);
                /* the offset, -32 x (sc_2j asum_2j + sc_2j+1 asum_2j+1), as
                 * one dpwssd of the scales times -32 (|.| <= 4096: int16)
                 * with the activation's two sums of 16 */
                vi off = vi_sub16(vi_zero(), vi_sll16(pairs, 5));
                UNROLL for (int t = 0; t < T; t++)
                    isum[t] = dpwssd(isum[t], off, bcast4((const int8_t *)(A[t].sum16 + 16 * s + 2 * j)));
                UNROLL for (int h = 0; h < 2; h++) {
                    vi scale = h ? vi_sra32(pairs, 16) : vi_sra32(vi_sll32(pairs, 16), 16);
                    kq_dots(m, T, v + ub * j, 4 * h, 4 * h + 4, aq, part);
                    UNROLL for (int t = 0; t < T; t++) isum[t] = vi_add32(isum[t], vi_mul32(part[t], scale));
                }
            } else {
                vi scale = u8_rows(sp + KS_SC + R * j);
                kq_dots(m, T, v + ub * j, 0, 8, aq, part);
                UNROLL for (int t = 0; t < T; t++) isum[t] = vi_add32(isum[t], vi_mul32(part[t], scale));
                /* the mins: m_j x asum_j (the 32-sum; m_j's lane is the
                 * int16 pair (m_j, 0)), scaled by dmin below */
                vi mj = u8_rows(sp + KS_M + R * j);
                UNROLL for (int t = 0; t < T; t++)
                    msum[t] = dpwssd(j == 0 ? vi_zero() : msum[t], mj, vi_set32(A[t].sum[8 * s + j]));
            }
        }
        vf d = f16_rows(sp + KS_D);
        UNROLL for (int t = 0; t < T; t++) {
            vf da = vf_set(A[t].d[8 * s]);
            acc[t] = vf_fmadd(vf_cvt(isum[t]), vf_mul(d, da), acc[t]);
            if (m != K6) acc[t] = vf_fnmadd(vf_cvt(msum[t]), vf_mul(f16_rows(sp + KS_DMIN), da), acc[t]);
        }
    }
    UNROLL for (int t = 0; t < T; t++) store_rows(y + (size_t)t * ldy, acc[t], rows);
}

/* ------------------------------------------------------------------ */
/* products: panels, passes of activation rows                         */
/* ------------------------------------------------------------------ */

/* Passes of at most tmax activation rows, as even as they can be (10 rows
 * with tmax 8: 5 + 5, not 8 + 2). */
static inline int pass_rows(int n, int tmax) {
    int passes = (n + tmax - 1) / tmax;
    return (n + passes - 1) / passes;
}

/* switch (T) cases calling tile(m, T, ...) with T a constant (cases above
 * tmax never run; they instantiate T = 1 again) */
#define TILE_CASE(tile, n, tmax, ...) \
    case n: tile(m, (n) <= (tmax) ? (n) : 1, __VA_ARGS__); break;
#define TILE_CASES(tile, tmax, ...)                                                            \
    TILE_CASE(tile, 12, tmax, __VA_ARGS__) TILE_CASE(tile, 11, tmax, __VA_ARGS__)               \
    TILE_CASE(tile, 10, tmax, __VA_ARGS__) TILE_CASE(tile, 9, tmax, __VA_ARGS__)                \
    TILE_CASE(tile, 8, tmax, __VA_ARGS__) TILE_CASE(tile, 7, tmax, __VA_ARGS__)                 \
    TILE_CASE(tile, 6, tmax, __VA_ARGS__) TILE_CASE(tile, 5, tmax, __VA_ARGS__)                 \
    TILE_CASE(tile, 4, tmax, __VA_ARGS__) TILE_CASE(tile, 3, tmax, __VA_ARGS__)                 \
    TILE_CASE(tile, 2, tmax, __VA_ARGS__) default: tile(m, 1, __VA_ARGS__); break;

static inline __attribute__((always_inline)) void q32_gemm(q32_mode m, const kern_gemm_args *g) {
    const int64_t nb = g->cols / 32;
    const size_t pb = q32_panel_bytes(m, nb);
    const int per = pass_rows(g->n, TQ);
    for (int64_t r = g->r0; r < g->r1; r += R) {
        int rows = (int)RL_MIN(R, g->r1 - r);
        const uint8_t *panel = g->packed ? g->packed + (size_t)(r / R) * pb : g->scratch;
        if (!g->packed) q32_pack(m, g->w + (size_t)r * g->w_stride, g->w_stride, rows, nb, g->scratch);
        for (int t0 = 0; t0 < g->n; t0 += per) {
            int T = RL_MIN(per, g->n - t0);
            kact_q8 A[TQ] = {0};
            UNROLL for (int t = 0; t < T; t++) A[t] = kact_q8_view(g->a + (size_t)(t0 + t) * g->a_stride, g->cols);
            float *y = g->y + (size_t)t0 * g->ldy + r;
            bool pf = t0 == 0 && g->packed;
            switch (T) {
                TILE_CASES(q32_tile, TQ, panel, nb, A, y, g->ldy, rows, pf, pb)
            }
        }
    }
}

static inline __attribute__((always_inline)) void kq_gemm(kq_mode m, const kern_gemm_args *g) {
    const int64_t nsb = g->cols / QK_K;
    const size_t pb = kq_panel_bytes(m, nsb);
    const int per = pass_rows(g->n, TK);
    for (int64_t r = g->r0; r < g->r1; r += R) {
        int rows = (int)RL_MIN(R, g->r1 - r);
        const uint8_t *panel = g->packed ? g->packed + (size_t)(r / R) * pb : g->scratch;
        if (!g->packed) kq_pack(m, g->w + (size_t)r * g->w_stride, g->w_stride, rows, nsb, g->scratch);
        for (int t0 = 0; t0 < g->n; t0 += per) {
            int T = RL_MIN(per, g->n - t0);
            kact_q8 A[TK] = {0};
            UNROLL for (int t = 0; t < T; t++) A[t] = kact_q8_view(g->a + (size_t)(t0 + t) * g->a_stride, g->cols);
            float *y = g->y + (size_t)t0 * g->ldy + r;
            bool pf = t0 == 0 && g->packed;
            switch (T) {
                TILE_CASES(kq_tile, TK, panel, nsb, A, y, g->ldy, rows, pf, pb)
            }
        }
    }
}

static void gemm_q4_0(const kern_gemm_args *g) { q32_gemm(Q4_OFF, g); }
static void gemm_q4_1(const kern_gemm_args *g) { q32_gemm(Q4_AFF, g); }
static void gemm_q5_0(const kern_gemm_args *g) { q32_gemm(Q5_OFF, g); }
static void gemm_q5_1(const kern_gemm_args *g) { q32_gemm(Q5_AFF, g); }
static void gemm_q8_0(const kern_gemm_args *g) { q32_gemm(Q8_OFF, g); }
static void gemm_q4_K(const kern_gemm_args *g) { kq_gemm(K4, g); }
static void gemm_q5_K(const kern_gemm_args *g) { kq_gemm(K5, g); }
static void gemm_q6_K(const kern_gemm_args *g) { kq_gemm(K6, g); }

/* The packed layout of a type: bytes of a panel of R rows of `cols`. */
static size_t panel_bytes(uint32_t type, int64_t cols) {
    switch (type) {
    case RL_TYPE_Q4_0: return q32_panel_bytes(Q4_OFF, cols / 32);
    case RL_TYPE_Q4_1: return q32_panel_bytes(Q4_AFF, cols / 32);
    case RL_TYPE_Q5_0: return q32_panel_bytes(Q5_OFF, cols / 32);
    case RL_TYPE_Q5_1: return q32_panel_bytes(Q5_AFF, cols / 32);
    case RL_TYPE_Q8_0: return q32_panel_bytes(Q8_OFF, cols / 32);
    case RL_TYPE_Q4_K: return kq_panel_bytes(K4, cols / QK_K);
    case RL_TYPE_Q5_K: return kq_panel_bytes(K5, cols / QK_K);
    case RL_TYPE_Q6_K: return kq_panel_bytes(K6, cols / QK_K);
    default: return 0;
    }
}

static void pack_panel(uint32_t type, const uint8_t *w, size_t stride, int rows, int64_t cols, uint8_t *out) {
    switch (type) {
    case RL_TYPE_Q4_0: q32_pack(Q4_OFF, w, stride, rows, cols / 32, out); break;
    case RL_TYPE_Q4_1: q32_pack(Q4_AFF, w, stride, rows, cols / 32, out); break;
    case RL_TYPE_Q5_0: q32_pack(Q5_OFF, w, stride, rows, cols / 32, out); break;
    case RL_TYPE_Q5_1: q32_pack(Q5_AFF, w, stride, rows, cols / 32, out); break;
    case RL_TYPE_Q8_0: q32_pack(Q8_OFF, w, stride, rows, cols / 32, out); break;
    case RL_TYPE_Q4_K: kq_pack(K4, w, stride, rows, cols / QK_K, out); break;
    case RL_TYPE_Q5_K: kq_pack(K5, w, stride, rows, cols / QK_K, out); break;
    case RL_TYPE_Q6_K: kq_pack(K6, w, stride, rows, cols / QK_K, out); break;
    default: break;
    }
}

const kern_impl IMPL_NAME = {
    .name = IMPL_LABEL,
    .panel_rows = R,
    .gemm = {
        [RL_TYPE_Q4_0] = gemm_q4_0, [RL_TYPE_Q4_1] = gemm_q4_1,
        [RL_TYPE_Q5_0] = gemm_q5_0, [RL_TYPE_Q5_1] = gemm_q5_1,
        [RL_TYPE_Q8_0] = gemm_q8_0,
        [RL_TYPE_Q4_K] = gemm_q4_K, [RL_TYPE_Q5_K] = gemm_q5_K, [RL_TYPE_Q6_K] = gemm_q6_K,
        [RL_TYPE_F32] = avx2_gemm_f32, [RL_TYPE_F16] = avx2_gemm_f16, [RL_TYPE_BF16] = avx2_gemm_bf16,
    },
    .act = KACT_FORMATS,
    .panel_bytes = panel_bytes,
    .pack_panel = pack_panel,
    AVX2_VECTOR_OPS,
};
