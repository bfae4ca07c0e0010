/*
 * avx2_act.c — activation rows into the kact formats (kernels_impl.h) with
 * AVX2, bit-identical to kact_convert_ref: the same float operations in
 * the same order per element, only eight at a time.
 *
 * Rounding: Q8_0/Q8_1 round halves away from zero (ggml's reference
 * roundf), which AVX2 has no instruction for: truncate, then step away from
 * zero when the dropped fraction is at least one half. Q8_K rounds halves
 * to even (ggml's nearest_int), which is what vcvtps2dq does.
 */
#include "avx2.h"

/* roundf() for 8 floats: halves away from zero. */
static inline __m256 round_away(__m256 v) {
    __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 frac = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, t));
    __m256 step = _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), step));
}

/* 32 int32 (4 vectors, in order) -> 32 int8 with saturation (= clamping
 * to [-128, 127]). */
static inline __m256i pack32(__m256i i0, __m256i i1, __m256i i2, __m256i i3) {
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* Largest |x| of 8*nv floats; NaNs are skipped, as the reference's
 * `fabsf(x) > amax` test skips them. */
static inline float abs_max(const float *x, int nv) {
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < nv; i++)
        m = _mm256_max_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_loadu_ps(x + 8 * i)), m);
    return avx2_hmax_ps(m);
}

/* q + 128 for 32 values. */
static inline void store_biased(uint8_t *qb, __m256i q) {
    _mm256_storeu_si256((__m256i *)qb, _mm256_xor_si256(q, _mm256_set1_epi8((char)0x80)));
}

/* Sums of 16 of the block's values (two) from its four int32 vectors. */
static inline void block_sums(__m256i i0, __m256i i1, __m256i i2, __m256i i3, int16_t *sum16, int32_t *sum) {
    int32_t a = avx2_hsum_epi32(_mm256_add_epi32(i0, i1)), b = avx2_hsum_epi32(_mm256_add_epi32(i2, i3));
    sum16[0] = (int16_t)a;
    sum16[1] = (int16_t)b;
    *sum = a + b;
}

static void convert_q8_0(const float *x, uint8_t *out, int64_t cols, bool q8_1) {
    kact_q8 v = kact_q8_view(out, cols);
    int8_t *q = (int8_t *)v.q;
    float *dd = (float *)v.d, *ss = (float *)v.s;
    int32_t *sum = (int32_t *)v.sum;
    int16_t *sum16 = (int16_t *)v.sum16;
    for (int64_t b = 0; b < cols / 32; b++, x += 32) {
        const float d = abs_max(x, 4) / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        __m256 vid = _mm256_set1_ps(id);
        __m256i i[4];
        for (int k = 0; k < 4; k++)
            i[k] = _mm256_cvtps_epi32(round_away(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), vid)));
        __m256i packed = pack32(i[0], i[1], i[2], i[3]);
        _mm256_storeu_si256((__m256i *)(q + 32 * b), packed);
        store_biased((uint8_t *)v.qb + 32 * b, packed);
        /* sums of the clamped values (they only differ from i[] for
         * non-finite input, where the result is unspecified anyway) */
        block_sums(i[0], i[1], i[2], i[3], sum16 + 2 * b, sum + b);
        dd[b] = _cvtsh_ss(_cvtss_sh(d, 0));
        ss[b] = q8_1 ? _cvtsh_ss(_cvtss_sh((float)sum[b] * d, 0)) : dd[b] * (float)sum[b];
    }
}

static void convert_q8_K(const float *x, uint8_t *out, int64_t cols) {
    kact_q8 v = kact_q8_view(out, cols);
    int8_t *q = (int8_t *)v.q;
    float *dd = (float *)v.d, *ss = (float *)v.s;
    int32_t *sum = (int32_t *)v.sum;
    int16_t *sum16 = (int16_t *)v.sum16;
    for (int64_t blk = 0; blk < cols / QK_K; blk++, x += QK_K) {
        const float amax = abs_max(x, QK_K / 8);
        int64_t b0 = blk * 8;
        if (amax == 0) {
            memset(q + QK_K * blk, 0, QK_K);
            memset((uint8_t *)v.qb + QK_K * blk, 0x80, QK_K);
            for (int j = 0; j < 8; j++) {
                dd[b0 + j] = ss[b0 + j] = 0;
                sum[b0 + j] = 0;
                sum16[2 * (b0 + j)] = sum16[2 * (b0 + j) + 1] = 0;
            }
            continue;
        }
        /* the signed value of the first element with the largest |x| */
        float max = 0;
        __m256 va = _mm256_set1_ps(amax);
        for (int k = 0; k < QK_K / 8; k++) {
            __m256 xv = _mm256_loadu_ps(x + 8 * k);
            int m = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), xv), va, _CMP_EQ_OQ));
            if (m) {
                max = x[8 * k + __builtin_ctz((unsigned)m)];
                break;
            }
        }
        const float iscale = -127.f / max;
        const float d = 1 / iscale;
        __m256 vs = _mm256_set1_ps(iscale);
        for (int j = 0; j < 8; j++) {
            __m256i i[4];
            for (int k = 0; k < 4; k++) i[k] = _mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + 32 * j + 8 * k)));
            __m256i packed = pack32(i[0], i[1], i[2], i[3]);
            _mm256_storeu_si256((__m256i *)(q + QK_K * blk + 32 * j), packed);
            store_biased((uint8_t *)v.qb + QK_K * blk + 32 * j, packed);
            block_sums(i[0], i[1], i[2], i[3], sum16 + 2 * (b0 + j), sum + b0 + j);
            dd[b0 + j] = d;
            ss[b0 + j] = d * (float)sum[b0 + j];
        }
    }
}

static void convert_f16r(const float *x, float *y, int64_t cols) {
    int64_t i = 0;
    for (; i + 8 <= cols; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    for (; i < cols; i++) y[i] = rl_f16_to_f32(rl_f32_to_f16(x[i]));
}

/* rl_f32_to_bf16 then back, eight at a time: round to nearest even on the
 * top 16 bits; NaN stays a quiet NaN. */
static void convert_bf16r(const float *x, float *y, int64_t cols) {
    int64_t i = 0;
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff), top = _mm256_set1_epi32((int)0xffff0000);
    for (; i + 8 <= cols; i += 8) {
        __m256i u = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(u, 16), one)));
        __m256i nan = _mm256_or_si256(u, _mm256_set1_epi32(0x400000));
        __m256i is_nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
        r = _mm256_and_si256(_mm256_blendv_epi8(r, nan, is_nan), top);
        _mm256_storeu_si256((__m256i *)(y + i), r);
    }
    for (; i < cols; i++) y[i] = rl_bf16_to_f32(rl_f32_to_bf16(x[i]));
}

int avx2_convert_act(kern_act act, const float *x, uint8_t *out, int64_t cols) {
    switch (act) {
    case KACT_Q8_0: convert_q8_0(x, out, cols, false); return 0;
    case KACT_Q8_1: convert_q8_0(x, out, cols, true); return 0;
    case KACT_Q8_K: convert_q8_K(x, out, cols); return 0;
    case KACT_F16R: convert_f16r(x, (float *)out, cols); return 0;
    case KACT_BF16R: convert_bf16r(x, (float *)out, cols); return 0;
    default: return -1;
    }
}
