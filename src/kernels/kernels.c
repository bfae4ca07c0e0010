/*
 * kernels.c — CPU feature detection, the matmul driver (activation
 * conversion, work split over the thread pool), the portable activation
 * converters and the reference vector operations. SIMD inner loops live in
 * src/kernels/arch/ and are plugged in through kern_impl tables (kernels_impl.h).
 */
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>
#include <strings.h>

#if defined(__aarch64__)
#include <sys/auxv.h>
/* Linux's bits, for C libraries whose headers predate them */
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1UL << 13)
#endif
#elif defined(__x86_64__)
#include <cpuid.h>
#endif

#include "kernels_impl.h"
#include "quant.h"
#include "base/types.h"

static const char *const LEVEL_NAMES[KERN_LEVEL_COUNT] = {"ref", "avx2", "avxvnni", "avx512", "neon", "dotprod", "i8mm"};

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
    /* AVX-VNNI by cpuid (leaf 7, sub-leaf 1, EAX bit 4): not every compiler's
     * __builtin_cpu_supports knows it; the AVX state it needs is AVX2's */
    if (l == KERN_AVXVNNI) return avx2 && __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 4));
    if (l == KERN_AVX512)
        return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vnni");
#elif defined(__aarch64__)
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    if (l == KERN_NEON) return true;
    if (l == KERN_DOTPROD) return (hw & HWCAP_ASIMDDP) != 0;
    if (l == KERN_I8MM) return (hw & HWCAP_ASIMDDP) && (hw2 & HWCAP2_I8MM);
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
    uint8_t *act;          /* converted activations: max_rows x 2 rows of the largest format */
    size_t act_size;
    uint8_t *scratch;      /* per thread: KERN_SCRATCH_BYTES(max_cols) */
    size_t scratch_per_thread;
    int max_rows;
    int64_t max_cols;
};

/* Bytes of the largest activation row any format needs (F32/F16R: 4 per
 * element; the Q8 layouts about 1.4). */
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
    int n = p->n_threads > 0 ? p->n_threads : tp_available_cpus();
    /* room for two activation formats at once (kern_matmul_multi) */
    k->act_size = act_bytes_for(k->max_cols) * (size_t)k->max_rows * 2;
    k->act = rl_aligned_alloc(k->act_size, err);
    k->scratch_per_thread = (KERN_SCRATCH_BYTES(k->max_cols) + 63) & ~(size_t)63;
    k->scratch = k->act ? rl_aligned_alloc(k->scratch_per_thread * (size_t)n, err) : NULL;
    k->pool = k->scratch ? tp_new(n, p->cpus, err) : NULL;
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
    free(k->scratch);
    free(k);
}

kern_level kern_get_level(const kernels *k) { return k->level; }
int kern_threads(const kernels *k) { return tp_threads(k->pool); }
threadpool *kern_pool(kernels *k) { return k->pool; }

/* ------------------------------------------------------------------ */
/* activation formats                                                  */
/* ------------------------------------------------------------------ */

static size_t round_up(size_t v, size_t to) { return (v + to - 1) / to * to; }

size_t kact_row_bytes(kern_act act, uint32_t weight_type, int64_t cols) {
    if (cols <= 0) return 0;
    switch (act) {
    case KACT_REF: {
        uint64_t b;
        return rl_type_row_bytes(quant_dot_type(weight_type), (uint64_t)cols, &b) ? round_up((size_t)b, 64) : 0;
    }
    case KACT_F32: case KACT_F16R: case KACT_BF16R: return round_up((size_t)cols * 4, 64);
    case KACT_Q8_0: case KACT_Q8_1: case KACT_Q8_K: {
        if (cols % (act == KACT_Q8_K ? QK_K : 32)) return 0;
        size_t nb = (size_t)cols / 32;
        size_t o = round_up((size_t)cols, 32);
        o = round_up(o + nb * 4, 32); /* d */
        o = round_up(o + nb * 4, 32); /* s */
        o = round_up(o + nb * 4, 32); /* sum */
        o = round_up(o + nb * 2 * 2, 32); /* sum16 */
        return round_up(o + (size_t)cols, 64); /* qb */
    }
    default: return 0;
    }
}

/* Fills the sums (and s, and qb) of a KACT_Q8_* row from its q and d. */
static void q8_sums(uint8_t *row, int64_t cols, bool s_is_set) {
    kact_q8 v = kact_q8_view(row, cols);
    int32_t *sum = (int32_t *)v.sum;
    int16_t *sum16 = (int16_t *)v.sum16;
    float *s = (float *)v.s;
    uint8_t *qb = (uint8_t *)v.qb;
    for (int64_t i = 0; i < cols; i++) qb[i] = (uint8_t)(v.q[i] + 128);
    for (int64_t b = 0; b < cols / 32; b++) {
        int s16[2] = {0, 0};
        for (int j = 0; j < 32; j++) s16[j / 16] += v.q[32 * b + j];
        sum16[2 * b] = (int16_t)s16[0];
        sum16[2 * b + 1] = (int16_t)s16[1];
        sum[b] = s16[0] + s16[1];
        if (!s_is_set) s[b] = v.d[b] * (float)sum[b];
    }
}

/* The values come from quant.c itself (block by block, then re-laid out),
 * so they are the oracle's by construction. */
void kact_convert_ref(kern_act act, uint32_t weight_type, const float *x, uint8_t *out, int64_t cols) {
    switch (act) {
    case KACT_REF: quant_quantize_row(quant_dot_type(weight_type), x, out, cols); return;
    case KACT_F32: memcpy(out, x, (size_t)cols * 4); return;
    case KACT_F16R: case KACT_BF16R: {
        float *y = (float *)out;
        for (int64_t i = 0; i < cols; i++)
            y[i] = act == KACT_F16R ? rl_f16_to_f32(rl_f32_to_f16(x[i])) : rl_bf16_to_f32(rl_f32_to_bf16(x[i]));
        return;
    }
    case KACT_Q8_0: case KACT_Q8_1: {
        kact_q8 v = kact_q8_view(out, cols);
        for (int64_t b = 0; b < cols / 32; b++) {
            if (act == KACT_Q8_0) {
                block_q8_0 blk;
                quant_quantize_row(RL_TYPE_Q8_0, x + 32 * b, &blk, 32);
                memcpy((int8_t *)v.q + 32 * b, blk.qs, 32);
                ((float *)v.d)[b] = rl_f16_to_f32(blk.d);
            } else {
                block_q8_1 blk;
                quant_quantize_row(RL_TYPE_Q8_1, x + 32 * b, &blk, 32);
                memcpy((int8_t *)v.q + 32 * b, blk.qs, 32);
                ((float *)v.d)[b] = rl_f16_to_f32(blk.d);
                ((float *)v.s)[b] = rl_f16_to_f32(blk.s);
            }
        }
        q8_sums(out, cols, act == KACT_Q8_1);
        return;
    }
    case KACT_Q8_K: {
        kact_q8 v = kact_q8_view(out, cols);
        for (int64_t b = 0; b < cols / QK_K; b++) {
            block_q8_K blk;
            quant_quantize_row(RL_TYPE_Q8_K, x + QK_K * b, &blk, QK_K);
            memcpy((int8_t *)v.q + QK_K * b, blk.qs, QK_K);
            for (int j = 0; j < QK_K / 32; j++) ((float *)v.d)[8 * b + j] = blk.d;
        }
        q8_sums(out, cols, false);
        return;
    }
    default: return;
    }
}

/* ------------------------------------------------------------------ */
/* matmul                                                             */
/* ------------------------------------------------------------------ */

/* The reference kernel: quant_dot_ref per output. */
static void gemm_ref(uint32_t type, const kern_gemm_args *g) {
    for (int64_t r = g->r0; r < g->r1; r++) {
        const uint8_t *wr = g->w + (size_t)r * g->w_stride;
        for (int t = 0; t < g->n; t++) g->y[t * g->ldy + r] = quant_dot_ref(type, g->cols, wr, g->a + (size_t)t * g->a_stride);
    }
}

int kern_matrix_pack(kern_matrix *W, rl_err *err) { return kern_matrix_pack_level(W, kern_default_level(), err); }

/* Memory for packed weights: on 2 MB boundaries and (where the kernel
 * allows, Linux's transparent huge pages in "madvise" mode) in huge pages.
 * Decode streams every weight once per token; with 4 KB pages that is a
 * TLB miss every 4 KB, and in a virtual machine each miss walks two sets
 * of page tables. */
static void *weights_alloc(size_t size, rl_err *err) {
    const size_t huge = 2u << 20;
    if (size < huge) return rl_aligned_alloc(size, err);
    void *p = NULL;
    if (posix_memalign(&p, huge, size) != 0) {
        rl_fail(err, RL_ERR_INTERNAL, "out of memory allocating %zu bytes", size);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    madvise(p, size / huge * huge, MADV_HUGEPAGE); /* whole huge pages only; a hint */
#endif
    return p;
}

int kern_matrix_pack_level(kern_matrix *W, kern_level level, rl_err *err) {
    const kern_impl *impl = kern_impl_for(level);
    if (W->packed || !impl || !impl->panel_bytes || !impl->pack_panel) return 0;
    size_t pb = impl->panel_bytes(W->type, W->cols);
    if (pb == 0) return 0;
    const int pr = impl->panel_rows;
    int64_t panels = (W->rows + pr - 1) / pr;
    uint8_t *out = weights_alloc(pb * (size_t)panels, err);
    if (!out) return rl_fail_prefix(err, "packing a %lldx%lld matrix: ", (long long)W->rows, (long long)W->cols);
    for (int64_t p = 0; p < panels; p++) {
        int rows = (int)RL_MIN(pr, W->rows - pr * p);
        impl->pack_panel(W->type, (const uint8_t *)W->data + (size_t)(pr * p) * W->row_bytes, W->row_bytes, rows,
                         W->cols, out + (size_t)p * pb);
    }
    W->packed = out;
    W->packed_level = (int)level;
    return 0;
}

void kern_matrix_unpack(kern_matrix *W) {
    free((void *)W->packed);
    W->packed = NULL;
}

/* How matrix m of a product is computed. */
typedef struct mm_plan {
    kern_gemm_fn fn; /* NULL: gemm_ref */
    kern_act act;
    const uint8_t *a;
    size_t a_stride;
} mm_plan;

typedef struct mm_job {
    const kernels *k;
    const kern_matrix *const *W;
    const mm_plan *plan;
    float *const *Y;
    const int64_t *ldy;
    int n;
    int64_t rows_per_task;
    const int *task_start; /* first task of each matrix, n_w + 1 entries */
} mm_job;

static void mm_task(void *ctx, int task, int thread) {
    const mm_job *j = ctx;
    int m = 0;
    while (task >= j->task_start[m + 1]) m++;
    const kern_matrix *W = j->W[m];
    const mm_plan *p = &j->plan[m];
    const uint8_t *packed = W->packed && W->packed_level == (int)j->k->level ? W->packed : NULL;
    kern_gemm_args g = {.cols = W->cols, .w = W->data, .w_stride = W->row_bytes, .packed = packed, .a = p->a,
                        .a_stride = p->a_stride, .n = j->n, .y = j->Y[m], .ldy = j->ldy[m],
                        .scratch = j->k->scratch + (size_t)thread * j->k->scratch_per_thread};
    g.r0 = (int64_t)(task - j->task_start[m]) * j->rows_per_task;
    g.r1 = RL_MIN(g.r0 + j->rows_per_task, W->rows);
    if (p->fn)
        p->fn(&g);
    else
        gemm_ref(W->type, &g);
}

typedef struct conv_job {
    const kernels *k;
    kern_act act;
    uint32_t type;
    const float *X;
    int64_t cols;
    uint8_t *out;
    size_t stride;
} conv_job;

static void conv_task(void *ctx, int t, int thread) {
    (void)thread;
    const conv_job *j = ctx;
    const float *x = j->X + (size_t)t * j->cols;
    uint8_t *out = j->out + (size_t)t * j->stride;
    if (j->act != KACT_REF && j->k->impl && j->k->impl->convert_act &&
        j->k->impl->convert_act(j->act, x, out, j->cols) == 0)
        return;
    kact_convert_ref(j->act, j->type, x, out, j->cols);
}

/* Formats are the same when the bytes would be: KACT_REF depends on the
 * weight type's dot type. */
static bool same_act(kern_act a, uint32_t ta, kern_act b, uint32_t tb) {
    return a == b && (a != KACT_REF || quant_dot_type(ta) == quant_dot_type(tb));
}

void kern_matmul_multi(kernels *k, const kern_matrix *const *W, int n_w, const float *X, int n, float *const *Y,
                       const int64_t *ldy) {
    enum { MAX_W = 4, MAX_FORMATS = 2 };
    if (n_w > MAX_W) { /* never in a Llama layer; stay correct anyway */
        for (int m = 0; m < n_w; m++) kern_matmul(k, W[m], X, n, Y[m], ldy[m]);
        return;
    }
    mm_plan plan[MAX_W];
    int n_formats = 0, n_all = n_w;
    size_t used = 0;

    /* Convert the activations once per distinct format. */
    for (int m = 0; m < n_w; m++) {
        kern_gemm_fn fn = k->impl ? k->impl->gemm[W[m]->type] : NULL;
        plan[m].fn = fn;
        plan[m].act = fn ? (kern_act)k->impl->act[W[m]->type] : KACT_REF;
        if (plan[m].act == KACT_REF && quant_dot_type(W[m]->type) == RL_TYPE_F32) plan[m].act = KACT_F32;
        if (plan[m].act == KACT_F32) { /* read X as it is */
            plan[m].a = (const uint8_t *)X;
            plan[m].a_stride = (size_t)W[m]->cols * sizeof(float);
            continue;
        }
        int found = -1;
        for (int p = 0; p < m; p++)
            if (plan[p].act != KACT_F32 && same_act(plan[p].act, W[p]->type, plan[m].act, W[m]->type)) found = p;
        if (found >= 0) {
            plan[m].a = plan[found].a;
            plan[m].a_stride = plan[found].a_stride;
            continue;
        }
        if (n_formats == MAX_FORMATS) { /* no room for a third: those run after the others */
            n_w = m;
            break;
        }
        n_formats++;
        plan[m].a_stride = kact_row_bytes(plan[m].act, W[m]->type, W[m]->cols);
        plan[m].a = k->act + used;
        used += plan[m].a_stride * (size_t)n;
        conv_job cj = {k, plan[m].act, W[m]->type, X, W[m]->cols, (uint8_t *)plan[m].a, plan[m].a_stride};
        tp_run_sized(k->pool, conv_task, &cj, n, (uint64_t)n * (uint64_t)W[m]->cols * 4);
    }

    /* Split the rows of all matrices into tasks of equal size: about 8 per
     * thread so threads that finish early take more, in whole panels of 16
     * rows (the SIMD kernels' tile). */
    int64_t total_rows = 0;
    for (int m = 0; m < n_w; m++) total_rows += W[m]->rows;
    int threads = tp_threads(k->pool);
    int64_t per = total_rows / ((int64_t)threads * 8);
    if (per < 16) per = 16;
    per = (per + 15) / 16 * 16;
    int task_start[MAX_W + 1];
    task_start[0] = 0;
    for (int m = 0; m < n_w; m++) task_start[m + 1] = task_start[m] + (int)((W[m]->rows + per - 1) / per);

    mm_job j = {k, W, plan, Y, ldy, n, per, task_start};
    uint64_t work = 0;
    for (int m = 0; m < n_w; m++) work += (uint64_t)W[m]->rows * (uint64_t)W[m]->cols * (uint64_t)n;
    tp_run_sized(k->pool, mm_task, &j, task_start[n_w], work);
    if (n_w < n_all) kern_matmul_multi(k, W + n_w, n_all - n_w, X, n, Y + n_w, ldy + n_w);
}

void kern_matmul(kernels *k, const kern_matrix *W, const float *X, int n, float *Y, int64_t ldy) {
    const kern_matrix *ws[1] = {W};
    float *ys[1] = {Y};
    kern_matmul_multi(k, ws, 1, X, n, ys, &ldy);
}

/* ------------------------------------------------------------------ */
/* vector operations: reference versions and dispatch                  */
/* ------------------------------------------------------------------ */

static void rmsnorm_ref(float *y, const float *x, const float *w, int64_t n, float eps) {
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    float scale = 1.0f / sqrtf((float)(sum / (double)n) + eps);
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * scale * w[i];
}

void kern_rmsnorm(const kernels *k, float *y, const float *x, const float *w, int64_t n, float eps) {
    if (k && k->impl && k->impl->rmsnorm)
        k->impl->rmsnorm(y, x, w, n, eps);
    else
        rmsnorm_ref(y, x, w, n, eps);
}

void kern_rope(float *x, int n_heads, int head_dim, int32_t pos, float base, float freq_scale,
               const float *freq_factors, bool neox) {
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
    /* pair i is (v[a * i], v[a * i + b]) */
    const int a = neox ? 1 : 2, b = neox ? half : 1;
    for (int h = 0; h < n_heads; h++) {
        float *v = x + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
            float x0 = v[a * i], x1 = v[a * i + b];
            v[a * i] = x0 * c - x1 * s;
            v[a * i + b] = x0 * s + x1 * c;
        }
    }
}

static void swiglu_ref(float *y, const float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

void kern_swiglu(const kernels *k, float *y, const float *g, const float *u, int64_t n) {
    if (k && k->impl && k->impl->swiglu)
        k->impl->swiglu(y, g, u, n);
    else
        swiglu_ref(y, g, u, n);
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

static float kv_at(const void *base, bool f16, size_t i) {
    return f16 ? rl_f16_to_f32(((const rl_f16 *)base)[i]) : ((const float *)base)[i];
}

void kern_attention_ref(const kern_attn *a) {
    float *scores = a->scratch;
    for (int j = 0; j < a->n_tok; j++) {
        int n_pos = a->n_pos - a->n_tok + 1 + j;
        for (int h = 0; h < a->n_q; h++) {
            const float *q = a->q + (size_t)j * a->q_stride + (size_t)h * a->head_dim;
            float *out = a->out + (size_t)j * a->q_stride + (size_t)h * a->head_dim;
            for (int p = 0; p < n_pos; p++) {
                float s = 0;
                for (int i = 0; i < a->head_dim; i++) s += q[i] * kv_at(a->K, a->kv_f16, (size_t)p * a->stride + i);
                scores[p] = s * a->scale;
            }
            kern_softmax(scores, n_pos);
            for (int i = 0; i < a->head_dim; i++) out[i] = 0;
            for (int p = 0; p < n_pos; p++)
                for (int i = 0; i < a->head_dim; i++)
                    out[i] += scores[p] * kv_at(a->V, a->kv_f16, (size_t)p * a->stride + i);
        }
    }
}

void kern_attention(const kernels *k, const kern_attn *a) {
    if (k && k->impl && k->impl->attention)
        k->impl->attention(a);
    else
        kern_attention_ref(a);
}

void kern_add(const kernels *k, float *x, const float *y, int64_t n) {
    if (k && k->impl && k->impl->add) {
        k->impl->add(x, y, n);
        return;
    }
    for (int64_t i = 0; i < n; i++) x[i] += y[i];
}

void kern_to_f16(const kernels *k, rl_f16 *dst, const float *src, int64_t n) {
    if (k && k->impl && k->impl->to_f16) {
        k->impl->to_f16(dst, src, n);
        return;
    }
    for (int64_t i = 0; i < n; i++) dst[i] = rl_f32_to_f16(src[i]);
}
