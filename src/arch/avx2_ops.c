/*
 * avx2_ops.c — the AVX2 level: its vector operations (RMS norm, SwiGLU,
 * residual add, fp16 conversion, attention over an F16 or F32 KV cache)
 * and the kern_impl table that ties in the matrix kernels of the other
 * avx2_*.c files.
 */
#include "avx2.h"

void avx2_gemm_q4_0(const kern_gemm_args *g);
void avx2_gemm_q4_1(const kern_gemm_args *g);
void avx2_gemm_q5_0(const kern_gemm_args *g);
void avx2_gemm_q5_1(const kern_gemm_args *g);
void avx2_gemm_q8_0(const kern_gemm_args *g);
void avx2_gemm_q4_K(const kern_gemm_args *g);
void avx2_gemm_q5_K(const kern_gemm_args *g);
void avx2_gemm_q6_K(const kern_gemm_args *g);
void avx2_gemm_f32(const kern_gemm_args *g);
void avx2_gemm_f16(const kern_gemm_args *g);
void avx2_gemm_bf16(const kern_gemm_args *g);
int avx2_convert_act(kern_act act, const float *x, uint8_t *out, int64_t cols);

/* Sum of squares in double like the reference (each square rounded to
 * float first, as there), four doubles at a time. */
static void rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        __m256 sq = _mm256_mul_ps(v, v);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
    }
    double part[4];
    _mm256_storeu_pd(part, _mm256_add_pd(s0, s1));
    double sum = part[0] + part[1] + part[2] + part[3];
    for (; i < n; i++) sum += (double)(x[i] * x[i]);
    const float scale = 1.0f / sqrtf((float)(sum / (double)n) + eps);
    __m256 vs = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), _mm256_loadu_ps(w + i)));
    for (; i < n; i++) y[i] = x[i] * scale * w[i];
}

static void swiglu(float *y, const float *g, const float *u, int64_t n) {
    int64_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i);
        __m256 silu = _mm256_div_ps(gv, _mm256_add_ps(one, avx2_exp_ps(_mm256_xor_ps(gv, neg))));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(silu, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void add(float *x, const float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) x[i] += y[i];
}

static void to_f16(rl_f16 *dst, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = rl_f32_to_f16(src[i]);
}

/* 8 elements of a KV row as floats. */
static inline __m256 kv8(const void *base, bool f16, size_t i) {
    if (f16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const rl_f16 *)base + i)));
    return _mm256_loadu_ps((const float *)base + i);
}

enum { MAX_Q = 8 }; /* query heads handled together */

/* Scores of up to MAX_Q heads against every position: each K row is read
 * (and converted) once for all the heads. */
static void attn_scores(const kern_attn *a, int h0, int nq) {
    const int nc = a->head_dim / 8;
    for (int p = 0; p < a->n_pos; p++) {
        size_t row = (size_t)p * (size_t)a->stride;
        __m256 acc[MAX_Q];
        for (int h = 0; h < nq; h++) acc[h] = _mm256_setzero_ps();
        for (int c = 0; c < nc; c++) {
            __m256 k = kv8(a->K, a->kv_f16, row + 8 * (size_t)c);
            for (int h = 0; h < nq; h++)
                acc[h] = _mm256_fmadd_ps(_mm256_loadu_ps(a->q + (size_t)(h0 + h) * a->head_dim + 8 * c), k, acc[h]);
        }
        for (int h = 0; h < nq; h++) a->scores[(size_t)(h0 + h) * a->n_pos + p] = avx2_hsum_ps(acc[h]) * a->scale;
    }
}

static void softmax(float *x, int n) {
    __m256 m8 = _mm256_set1_ps(-__builtin_inff());
    int i = 0;
    for (; i + 8 <= n; i += 8) m8 = _mm256_max_ps(_mm256_loadu_ps(x + i), m8);
    float max = avx2_hmax_ps(m8);
    for (; i < n; i++) max = x[i] > max ? x[i] : max;
    __m256 vmax = _mm256_set1_ps(max), s8 = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 e = avx2_exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
        _mm256_storeu_ps(x + i, e);
        s8 = _mm256_add_ps(s8, e);
    }
    float sum = avx2_hsum_ps(s8);
    for (; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    const __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; i++) x[i] *= 1.0f / sum;
}

/* out_h = sum_p w_h[p] V[p], 8 dimensions at a time so the accumulators of
 * all heads stay in registers while each V chunk is read once. */
static void attn_values(const kern_attn *a, int h0, int nq) {
    const int nc = a->head_dim / 8;
    for (int c = 0; c < nc; c++) {
        __m256 acc[MAX_Q];
        for (int h = 0; h < nq; h++) acc[h] = _mm256_setzero_ps();
        for (int p = 0; p < a->n_pos; p++) {
            __m256 v = kv8(a->V, a->kv_f16, (size_t)p * (size_t)a->stride + 8 * (size_t)c);
            for (int h = 0; h < nq; h++)
                acc[h] = _mm256_fmadd_ps(_mm256_broadcast_ss(a->scores + (size_t)(h0 + h) * a->n_pos + p), v, acc[h]);
        }
        for (int h = 0; h < nq; h++) _mm256_storeu_ps(a->out + (size_t)(h0 + h) * a->head_dim + 8 * c, acc[h]);
    }
}

static void attention(const kern_attn *a) {
    if (a->head_dim % 8) {
        kern_attention_ref(a);
        return;
    }
    for (int h0 = 0; h0 < a->n_q; h0 += MAX_Q) {
        int nq = RL_MIN(MAX_Q, a->n_q - h0);
        attn_scores(a, h0, nq);
        for (int h = 0; h < nq; h++) softmax(a->scores + (size_t)(h0 + h) * a->n_pos, a->n_pos);
        attn_values(a, h0, nq);
    }
}

const kern_impl kern_impl_avx2 = {
    .name = "avx2",
    .gemm = {
        [RL_TYPE_Q4_0] = avx2_gemm_q4_0, [RL_TYPE_Q4_1] = avx2_gemm_q4_1,
        [RL_TYPE_Q5_0] = avx2_gemm_q5_0, [RL_TYPE_Q5_1] = avx2_gemm_q5_1,
        [RL_TYPE_Q8_0] = avx2_gemm_q8_0,
        [RL_TYPE_Q4_K] = avx2_gemm_q4_K, [RL_TYPE_Q5_K] = avx2_gemm_q5_K, [RL_TYPE_Q6_K] = avx2_gemm_q6_K,
        [RL_TYPE_F32] = avx2_gemm_f32, [RL_TYPE_F16] = avx2_gemm_f16, [RL_TYPE_BF16] = avx2_gemm_bf16,
    },
    .act = {
        [RL_TYPE_Q4_0] = KACT_Q8_0, [RL_TYPE_Q5_0] = KACT_Q8_0, [RL_TYPE_Q8_0] = KACT_Q8_0,
        [RL_TYPE_Q4_1] = KACT_Q8_1, [RL_TYPE_Q5_1] = KACT_Q8_1,
        [RL_TYPE_Q4_K] = KACT_Q8_K, [RL_TYPE_Q5_K] = KACT_Q8_K, [RL_TYPE_Q6_K] = KACT_Q8_K,
        [RL_TYPE_F32] = KACT_F32, [RL_TYPE_F16] = KACT_F16R, [RL_TYPE_BF16] = KACT_BF16R,
    },
    .convert_act = avx2_convert_act,
    .rmsnorm = rmsnorm,
    .swiglu = swiglu,
    .add = add,
    .to_f16 = to_f16,
    .attention = attention,
};
