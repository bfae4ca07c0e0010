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
size_t avx2_q32_panel_bytes(uint32_t type, int64_t cols);
void avx2_q32_pack_panel(uint32_t type, const uint8_t *w, size_t stride, int rows, int64_t cols, uint8_t *out);
size_t avx2_kq_panel_bytes(uint32_t type, int64_t cols);
void avx2_kq_pack_panel(uint32_t type, const uint8_t *w, size_t stride, int rows, int64_t cols, uint8_t *out);

static size_t panel_bytes(uint32_t type, int64_t cols) {
    size_t b = avx2_q32_panel_bytes(type, cols);
    return b ? b : avx2_kq_panel_bytes(type, cols);
}

static void pack_panel(uint32_t type, const uint8_t *w, size_t stride, int rows, int64_t cols, uint8_t *out) {
    if (avx2_q32_panel_bytes(type, cols))
        avx2_q32_pack_panel(type, w, stride, rows, cols, out);
    else
        avx2_kq_pack_panel(type, w, stride, rows, cols, out);
}

/* Sum of squares in double like the reference (each square rounded to
 * float first, as there), four doubles at a time. */
void avx2_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps) {
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

void avx2_swiglu(float *y, const float *g, const float *u, int64_t n) {
    int64_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f), neg = _mm256_set1_ps(-0.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 gv = _mm256_loadu_ps(g + i);
        __m256 silu = _mm256_div_ps(gv, _mm256_add_ps(one, avx2_exp_ps(_mm256_xor_ps(gv, neg))));
        _mm256_storeu_ps(y + i, _mm256_mul_ps(silu, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void avx2_add(float *x, const float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) x[i] += y[i];
}

void avx2_to_f16(rl_f16 *dst, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = rl_f32_to_f16(src[i]);
}

/* Positions p0..p0+7 of K or V as floats, dst[k * head_dim + d]; positions
 * at or past n_pos are zeros (never read from the cache). */
static void kv_block(const kern_attn *a, const void *base, int p0, float *dst) {
    const int hd = a->head_dim;
    /* the block after next into L1: a task reads one KV head's positions
     * as one short stream (a few KB per session and layer), too short for
     * the hardware prefetcher to get ahead of (asm: GCC may drop
     * _mm_prefetch) */
    const size_t elem = a->kv_f16 ? 2 : 4, row_bytes = (size_t)hd * elem;
    for (int k = 16; k < 24 && p0 + k < a->n_pos; k++) {
        const char *p = (const char *)base + (size_t)(p0 + k) * (size_t)a->stride * elem;
        for (size_t o = 0; o < row_bytes; o += 64) __asm__ volatile("prefetcht0 %0" : : "m"(p[o]));
    }
    for (int k = 0; k < 8; k++) {
        int p = p0 + k;
        float *row = dst + (size_t)k * hd;
        if (p >= a->n_pos) {
            memset(row, 0, (size_t)hd * sizeof *row);
            continue;
        }
        size_t at = (size_t)p * (size_t)a->stride;
        if (a->kv_f16) {
            const rl_f16 *src = (const rl_f16 *)base + at;
            for (int d = 0; d < hd; d += 8)
                _mm256_storeu_ps(row + d, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + d))));
        } else {
            memcpy(row, (const float *)base + at, (size_t)hd * sizeof *row);
        }
    }
}

/* Lane k = sum of the 8 lanes of v[k]. */
static inline __m256 reduce8_ps(const __m256 v[8]) {
    __m256 a0 = _mm256_hadd_ps(v[0], v[1]), a1 = _mm256_hadd_ps(v[2], v[3]);
    __m256 a2 = _mm256_hadd_ps(v[4], v[5]), a3 = _mm256_hadd_ps(v[6], v[7]);
    __m256 b0 = _mm256_hadd_ps(a0, a1), b1 = _mm256_hadd_ps(a2, a3);
    return _mm256_add_ps(_mm256_permute2f128_ps(b0, b1, 0x20), _mm256_permute2f128_ps(b0, b1, 0x31));
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
    const float inv = 1.0f / sum;
    const __m256 vinv = _mm256_set1_ps(inv);
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vinv));
    for (; i < n; i++) x[i] *= inv;
}

/* out[0 .. 8v) += sum over k < n of w[k] * vals[k * hd + ...]: v vectors
 * of one output row, added in position order. The v accumulators are
 * independent chains (one chain per vector, a vector at a time, left every
 * FMA waiting on the previous one: a long-context decode step was bound by
 * that latency). Each element's additions are in the same order either way. */
static inline __attribute__((always_inline)) void accumulate_pv(float *out, const float *w, const float *vals, int n,
                                                                int hd, int v) {
    __m256 acc[8];
    #pragma GCC unroll 8
    for (int i = 0; i < 8; i++) acc[i] = i < v ? _mm256_loadu_ps(out + 8 * i) : _mm256_setzero_ps();
    for (int k = 0; k < n; k++) {
        __m256 wk = _mm256_broadcast_ss(w + k);
        const float *row = vals + (size_t)k * hd;
        #pragma GCC unroll 8
        for (int i = 0; i < 8; i++)
            if (i < v) acc[i] = _mm256_fmadd_ps(wk, _mm256_loadu_ps(row + 8 * i), acc[i]);
    }
    #pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        if (i < v) _mm256_storeu_ps(out + 8 * i, acc[i]);
}

/* Blocks of 8 positions: each block of K (then V) is converted once and
 * used by every query row that sees it. A row's scores for a block are 8
 * dot products reduced together (no horizontal sum per score); its output
 * accumulates position by position in order. Nothing a row computes
 * depends on the other rows, so batching leaves results unchanged. */
void avx2_attention(const kern_attn *a) {
    const int hd = a->head_dim, rows = a->n_tok * a->n_q;
    if (hd % 8 || hd > 256) {
        kern_attention_ref(a);
        return;
    }
    const size_t lds = ((size_t)a->n_pos + 7) / 8 * 8;
    float *S = a->scratch, *blk = S + (size_t)rows * lds;
    const int first = a->n_pos - a->n_tok; /* token j sees first + j + 1 positions */
    const __m256 scale = _mm256_set1_ps(a->scale);
    for (int p0 = 0; p0 < a->n_pos; p0 += 8) {
        kv_block(a, a->K, p0, blk);
        for (int i = 0; i < rows; i++) {
            int j = i / a->n_q, h = i % a->n_q;
            if (first + j + 1 <= p0) continue;
            const float *q = a->q + (size_t)j * a->q_stride + (size_t)h * hd;
            __m256 acc[8];
            for (int k = 0; k < 8; k++) acc[k] = _mm256_setzero_ps();
            for (int d = 0; d < hd; d += 8) {
                __m256 qv = _mm256_loadu_ps(q + d);
                #pragma GCC unroll 8
                for (int k = 0; k < 8; k++) acc[k] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(blk + (size_t)k * hd + d), acc[k]);
            }
            _mm256_storeu_ps(S + (size_t)i * lds + p0, _mm256_mul_ps(reduce8_ps(acc), scale));
        }
    }
    for (int i = 0; i < rows; i++) {
        int j = i / a->n_q, h = i % a->n_q;
        softmax(S + (size_t)i * lds, first + j + 1);
        memset(a->out + (size_t)j * a->q_stride + (size_t)h * hd, 0, (size_t)hd * sizeof(float));
    }
    for (int p0 = 0; p0 < a->n_pos; p0 += 8) {
        kv_block(a, a->V, p0, blk);
        for (int i = 0; i < rows; i++) {
            int j = i / a->n_q, h = i % a->n_q, n = first + j + 1 - p0;
            if (n <= 0) continue;
            if (n > 8) n = 8;
            const float *w = S + (size_t)i * lds + p0;
            float *out = a->out + (size_t)j * a->q_stride + (size_t)h * hd;
            for (int d = 0; d < hd; d += 64) {
                if (hd - d >= 64) accumulate_pv(out + d, w, blk + d, n, hd, 8); /* constant: no lane tests */
                else accumulate_pv(out + d, w, blk + d, n, hd, (hd - d) / 8);
            }
        }
    }
}

const kern_impl kern_impl_avx2 = {
    .name = "avx2",
    .panel_rows = 8,
    .gemm = {
        [RL_TYPE_Q4_0] = avx2_gemm_q4_0, [RL_TYPE_Q4_1] = avx2_gemm_q4_1,
        [RL_TYPE_Q5_0] = avx2_gemm_q5_0, [RL_TYPE_Q5_1] = avx2_gemm_q5_1,
        [RL_TYPE_Q8_0] = avx2_gemm_q8_0,
        [RL_TYPE_Q4_K] = avx2_gemm_q4_K, [RL_TYPE_Q5_K] = avx2_gemm_q5_K, [RL_TYPE_Q6_K] = avx2_gemm_q6_K,
        [RL_TYPE_F32] = avx2_gemm_f32, [RL_TYPE_F16] = avx2_gemm_f16, [RL_TYPE_BF16] = avx2_gemm_bf16,
    },
    .act = KACT_FORMATS,
    .panel_bytes = panel_bytes,
    .pack_panel = pack_panel,
    AVX2_VECTOR_OPS,
};
