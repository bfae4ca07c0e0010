/*
 * avx2.h — small helpers shared by the AVX2 kernels (src/kernels/arch/avx2_*.c,
 * compiled with -mavx2 -mfma -mf16c). Not a public header: include it only
 * from files built for AVX2.
 *
 * The int8 dot products all rest on one instruction: vpmaddubsw multiplies
 * 32 unsigned bytes by 32 signed bytes and adds neighbouring products into
 * 16 int16 lanes (saturating). The kernels keep one side unsigned and small
 * (4 to 6 bit weight values) so that the int16 sums provably never
 * saturate, and sum several of them before widening (vpmaddwd by 1) to
 * int32; the comments at each use give the bound.
 */
#ifndef RACKLLM_ARCH_AVX2_H
#define RACKLLM_ARCH_AVX2_H

#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../kernels_impl.h"
#include "../quant.h"

/* The AVX2 level's entry points that the VNNI levels (vnni_body.h) reuse
 * as they are: float weights, activation conversion, vector operations. */
void avx2_gemm_f32(const kern_gemm_args *g);
void avx2_gemm_f16(const kern_gemm_args *g);
void avx2_gemm_bf16(const kern_gemm_args *g);
int avx2_convert_act(kern_act act, const float *x, uint8_t *out, int64_t cols);
void avx2_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps);
void avx2_swiglu(float *y, const float *g, const float *u, int64_t n);
void avx2_add(float *x, const float *y, int64_t n);
void avx2_to_f16(rl_f16 *dst, const float *src, int64_t n);
void avx2_attention(const kern_attn *a);

/* Those entries of a kern_impl table. */
#define AVX2_VECTOR_OPS                                                                      \
    .convert_act = avx2_convert_act, .rmsnorm = avx2_rmsnorm, .swiglu = avx2_swiglu,           \
    .add = avx2_add, .to_f16 = avx2_to_f16, .attention = avx2_attention

/* a + b in int16 lanes, opaque to the compiler: GCC otherwise reassociates
 * a chain of such additions into a tree, which needs a register per
 * product and spills the accumulators of a tile to the stack. */
static inline __m256i avx2_add16(__m256i a, __m256i b) {
    __m256i r;
    __asm__("vpaddw %2, %1, %0" : "=x"(r) : "x"(a), "x"(b));
    return r;
}

static inline __m256i avx2_add32(__m256i a, __m256i b) {
    __m256i r;
    __asm__("vpaddd %2, %1, %0" : "=x"(r) : "x"(a), "x"(b));
    return r;
}

/* Sum of the 8 floats of v. */
static inline float avx2_hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Sum of the 8 int32 of v. */
static inline int32_t avx2_hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* Largest of the 8 floats of v. */
static inline float avx2_hmax_ps(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* 4 bytes at p, repeated 8 times. */
static inline __m256i avx2_bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Transposes 8 rows of 8 int32 (r[i] = row i) so that r[g] holds element g
 * of every row: the interleave that puts 4 bytes of each of 8 weight rows
 * side by side. */
static inline void avx2_transpose8x32(__m256i r[8]) {
    __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
    __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
    __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
    __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
    r[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
    r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
    r[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
    r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
    r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
    r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
    r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
    r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

/* 16 packed nibbles -> 32 bytes: low nibbles first, then high ones (the
 * element order of Q4_0/Q4_1 blocks). */
static inline __m256i avx2_nibbles(const uint8_t *qs) {
    __m128i x = _mm_loadu_si128((const __m128i *)qs);
    __m256i v = _mm256_set_m128i(_mm_srli_epi16(x, 4), x);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
}

/* Stores the first `rows` (<= 8) lanes of v at y. */
static inline void store8(float *y, __m256 v, int rows) {
    if (rows == 8) {
        _mm256_storeu_ps(y, v);
    } else {
        float tmp[8];
        _mm256_storeu_ps(tmp, v);
        memcpy(y, tmp, (size_t)rows * sizeof(float));
    }
}

/* exp(x) for 8 floats: range reduction to r in [-ln2/2, ln2/2] and a degree
 * 6 polynomial; relative error below 2 ulp over the normal range; 0 below
 * -87.3, +inf above 88.7 (like expf). */
static inline __m256 avx2_exp_ps(__m256 x) {
    const __m256 hi = _mm256_set1_ps(88.7228391f), lo = _mm256_set1_ps(-87.3365478f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ), over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    __m256 xc = _mm256_max_ps(_mm256_min_ps(x, hi), lo);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* 2^n by building the exponent; n in [-126, 128]: split so each factor
     * is a normal float */
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    y = _mm256_andnot_ps(under, y);
    return _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), over);
}

#endif
