/*
 * kernels.c — CPU feature detection, the matmul driver (activation
 * conversion, work split over the thread pool) and the reference vector
 * operations. SIMD inner loops live in src/arch/ and are plugged in through
 * kern_impl tables (kernels_impl.h).
 */
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if defined(__aarch64__)
#include <sys/auxv.h>
#elif defined(__x86_64__)
#include <cpuid.h>
#endif

#include "kernels_impl.h"
#include "quant.h"
#include "types.h"

static const char *const LEVEL_NAMES[KERN_LEVEL_COUNT] = {"ref", "avx2", "avx512", "neon", "dotprod", "i8mm"};

const char *kern_level_name(kern_level l) { return l < KERN_LEVEL_COUNT ? LEVEL_NAMES[l] : "?"; }

int kern_level_from_name(const char *name) {
    for (int i = 0; i < KERN_LEVEL_COUNT; i++)
        if (strcasecmp(name, LEVEL_NAMES[i]) == 0) return i;
    return -1;
}

bool kern_level_supported(kern_level l) {
    if (l == KERN_REF) return true;
#if defined(__x86_64__)
    __builtin_cpu_init();
    /* F16C by cpuid: clang's __builtin_cpu_supports does not know "f16c" */
    unsigned a, b, c, d;
    bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    if (l == KERN_AVX2) return avx2;
    if (l == KERN_AVX512)
        return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#elif defined(__aarch64__)
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    if (l == KERN_NEON) return true;
#ifdef HWCAP_ASIMDDP
    if (l == KERN_DOTPROD) return (hw & HWCAP_ASIMDDP) != 0;
#endif
#ifdef HWCAP2_I8MM
    if (l == KERN_I8MM) return (hw & HWCAP_ASIMDDP) && (hw2 & HWCAP2_I8MM);
#endif
    (void)hw2;
#endif
    return false;
}

kern_level kern_detect(void) {
    kern_level best = KERN_REF;
    for (int l = 1; l < KERN_LEVEL_COUNT; l++)
        if (kern_level_supported((kern_level)l) && kern_impl_for((kern_level)l)) best = (kern_level)l;
    return best;
}

kern_level kern_default_level(void) {
    kern_level best = kern_detect();
    const char *want = getenv("RACKLLM_KERNELS");
    if (want && *want) {
        int l = kern_level_from_name(want);
        if (l >= 0 && kern_level_supported((kern_level)l) && (l == KERN_REF || kern_impl_for((kern_level)l)))
            return (kern_level)l;
    }
    return best;
}

/* ------------------------------------------------------------------ */
/* the context                                                        */
/* ------------------------------------------------------------------ */

struct kernels {
    kern_level level;
    const kern_impl *impl; /* NULL for ref */
    threadpool *pool;
    uint8_t *act;          /* quantized activations: max_rows x max act row bytes */
    size_t act_size;
    int max_rows;
    int64_t max_cols;
};

/* Largest bytes per element of any dot type (F32: 4). */
static size_t act_bytes_for(int64_t cols) { return (size_t)cols * 4 + 1024; }

kernels *kern_new(const kern_params *p, rl_err *err) {
    kernels *k = rl_calloc(1, sizeof *k, err);
    if (!k) return NULL;
    k->level = p->level >= 0 && p->level < KERN_LEVEL_COUNT ? (kern_level)p->level : kern_default_level();
    if (!kern_level_supported(k->level)) {
        rl_fail(err, RL_ERR_INPUT, "kernel level %s is not supported by this CPU", kern_level_name(k->level));
        free(k);
        return NULL;
    }
    k->impl = kern_impl_for(k->level);
    k->max_rows = p->max_rows > 0 ? p->max_rows : 1;
    k->max_cols = p->max_cols > 0 ? p->max_cols : 1;
    /* room for several matrices' inputs at once (kern_matmul_multi) */
    k->act_size = act_bytes_for(k->max_cols) * (size_t)k->max_rows * 2;
    k->act = rl_aligned_alloc(k->act_size, err);
    int n = p->n_threads > 0 ? p->n_threads : tp_available_cpus();
    k->pool = k->act ? tp_new(n, p->cpus, err) : NULL;
    if (!k->pool) {
        kern_free(k);
        return NULL;
    }
    return k;
}

void kern_free(kernels *k) {
    if (!k) return;
    tp_free(k->pool);
    free(k->act);
    free(k);
}

kern_level kern_get_level(const kernels *k) { return k->level; }
int kern_threads(const kernels *k) { return tp_threads(k->pool); }
threadpool *kern_pool(kernels *k) { return k->pool; }

/* ------------------------------------------------------------------ */
/* matmul                                                             */
/* ------------------------------------------------------------------ */

/* One output tile: rows [r0, r1) of W against all n activation rows. */
static void gemm_ref(uint32_t type, int64_t cols, const uint8_t *w, size_t w_stride, const uint8_t *a,
                     size_t a_stride, int n, float *y, int64_t ldy, int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wr = w + (size_t)r * w_stride;
        for (int t = 0; t < n; t++) y[t * ldy + r] = quant_dot_ref(type, cols, wr, a + (size_t)t * a_stride);
    }
}

typedef struct mm_job {
    const kern_impl *impl;
    const kern_matrix *const *W;
    const uint8_t *const *act; /* per matrix */
    size_t *act_stride;
    float *const *Y;
    const int64_t *ldy;
    int n;
    int64_t rows_per_task;
    int *task_start; /* first task of each matrix, n_w + 1 entries */
    int n_w;
} mm_job;

static void mm_task(void *ctx, int task, int thread) {
    (void)thread;
    mm_job *j = ctx;
    int m = 0;
    while (task >= j->task_start[m + 1]) m++;
    const kern_matrix *W = j->W[m];
    int64_t r0 = (int64_t)(task - j->task_start[m]) * j->rows_per_task;
    int64_t r1 = RL_MIN(r0 + j->rows_per_task, W->rows);
    kern_gemm_fn fn = j->impl ? j->impl->gemm[W->type] : NULL;
    if (fn)
        fn(W->cols, (const uint8_t *)W->data, W->row_bytes, j->act[m], j->act_stride[m], j->n, j->Y[m], j->ldy[m],
           r0, r1);
    else
        gemm_ref(W->type, W->cols, W->data, W->row_bytes, j->act[m], j->act_stride[m], j->n, j->Y[m], j->ldy[m],
                 r0, r1);
}

typedef struct conv_job {
    const kernels *k;
    uint32_t type;
    const float *X;
    int64_t cols;
    uint8_t *out;
    size_t stride;
} conv_job;

static void convert_row(const kernels *k, uint32_t type, const float *x, void *out, int64_t n) {
    if (k->impl && k->impl->quantize_act && k->impl->quantize_act(type, x, out, n) == 0) return;
    quant_quantize_row(type, x, out, n);
}

static void conv_task(void *ctx, int t, int thread) {
    (void)thread;
    conv_job *j = ctx;
    convert_row(j->k, j->type, j->X + (size_t)t * j->cols, j->out + (size_t)t * j->stride, j->cols);
}

void kern_matmul_multi(kernels *k, const kern_matrix *const *W, int n_w, const float *X, int n, float *const *Y,
                       const int64_t *ldy) {
    enum { MAX_W = 4 };
    const uint8_t *act[MAX_W];
    size_t act_stride[MAX_W];
    int task_start[MAX_W + 1];
    uint32_t done_types[MAX_W];
    int n_done = 0;
    size_t used = 0;

    /* Convert the activations once per distinct dot type. */
    for (int m = 0; m < n_w; m++) {
        uint32_t dt = quant_dot_type(W[m]->type);
        if (dt == RL_TYPE_F32) {
            act[m] = (const uint8_t *)X;
            act_stride[m] = (size_t)W[m]->cols * sizeof(float);
            continue;
        }
        int found = -1;
        for (int d = 0; d < n_done; d++)
            if (done_types[d] == dt) found = d;
        uint64_t stride;
        rl_type_row_bytes(dt, (uint64_t)W[m]->cols, &stride);
        act_stride[m] = (size_t)stride;
        if (found >= 0) {
            for (int p = 0; p < m; p++)
                if (quant_dot_type(W[p]->type) == dt) act[m] = act[p];
            continue;
        }
        uint8_t *out = k->act + used;
        used += (size_t)stride * (size_t)n;
        conv_job cj = {k, dt, X, W[m]->cols, out, (size_t)stride};
        tp_run_sized(k->pool, conv_task, &cj, n, (uint64_t)n * (uint64_t)W[m]->cols * 4);
        act[m] = out;
        done_types[n_done++] = dt;
    }

    /* Split the rows of all matrices into tasks of equal size. */
    int64_t total_rows = 0;
    for (int m = 0; m < n_w; m++) total_rows += W[m]->rows;
    int threads = tp_threads(k->pool);
    int64_t per = total_rows / ((int64_t)threads * 8);
    if (per < 16) per = 16;
    per = (per + 15) / 16 * 16; /* whole SIMD tiles */
    task_start[0] = 0;
    for (int m = 0; m < n_w; m++) task_start[m + 1] = task_start[m] + (int)((W[m]->rows + per - 1) / per);

    mm_job j = {k->impl, W, act, act_stride, Y, ldy, n, per, task_start, n_w};
    uint64_t work = 0;
    for (int m = 0; m < n_w; m++) work += (uint64_t)W[m]->rows * (uint64_t)W[m]->cols * (uint64_t)n;
    tp_run_sized(k->pool, mm_task, &j, task_start[n_w], work);
}

void kern_matmul(kernels *k, const kern_matrix *W, const float *X, int n, float *Y, int64_t ldy) {
    const kern_matrix *ws[1] = {W};
    float *ys[1] = {Y};
    kern_matmul_multi(k, ws, 1, X, n, ys, &ldy);
}

/* ------------------------------------------------------------------ */
/* vector operations (reference; fast enough: the matmuls dominate)    */
/* ------------------------------------------------------------------ */

void kern_rmsnorm(float *y, const float *x, const float *w, int64_t n, float eps) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    float scale = 1.0f / sqrtf((float)(sum / (double)n) + eps);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
}

void kern_rope(float *x, int n_heads, int head_dim, int32_t pos, float base, float freq_scale,
               const float *freq_factors) {
    /* theta for pair i is pos * base^(-2i/d), computed like ggml: a running
     * product of theta_scale, in float, so we round the way it does. */
    float theta_scale = powf(base, -2.0f / (float)head_dim);
    float cos_sin[2 * 512];
    float theta = (float)pos;
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        float ff = freq_factors ? freq_factors[i] : 1.0f;
        float t = freq_scale * (theta / ff);
        cos_sin[2 * i] = cosf(t);
        cos_sin[2 * i + 1] = sinf(t);
        theta *= theta_scale;
    }
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
            float x0 = v[2 * i], x1 = v[2 * i + 1];
            v[2 * i] = x0 * c - x1 * s;
            v[2 * i + 1] = x0 * s + x1 * c;
        }
    }
}

void kern_swiglu(float *y, const float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void kern_softmax(float *x, int64_t n) {
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++) max = x[i] > max ? x[i] : max;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

void kern_attention_head(float *out, const float *q, const void *K, const void *V, bool kv_f16, int head_dim,
                         int64_t stride, int n_pos, float scale, float *scores) {
    for (int p = 0; p < n_pos; p++) {
        float s = 0;
        if (kv_f16) {
            const rl_f16 *k = (const rl_f16 *)K + (size_t)p * stride;
            for (int i = 0; i < head_dim; i++) s += q[i] * rl_f16_to_f32(k[i]);
        } else {
            const float *k = (const float *)K + (size_t)p * stride;
            for (int i = 0; i < head_dim; i++) s += q[i] * k[i];
        }
        scores[p] = s * scale;
    }
    kern_softmax(scores, n_pos);
    for (int i = 0; i < head_dim; i++) out[i] = 0;
    for (int p = 0; p < n_pos; p++) {
        float w = scores[p];
        if (kv_f16) {
            const rl_f16 *v = (const rl_f16 *)V + (size_t)p * stride;
            for (int i = 0; i < head_dim; i++) out[i] += w * rl_f16_to_f32(v[i]);
        } else {
            const float *v = (const float *)V + (size_t)p * stride;
            for (int i = 0; i < head_dim; i++) out[i] += w * v[i];
        }
    }
}

void kern_add(float *x, const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}
