/*
 * test_kernels.c — every kernel level this machine supports (forced one by
 * one, as RACKLLM_KERNELS would) against the plain-C oracle of quant.c and
 * kernels.c:
 *  - activation converters: the SIMD conversion of a row into each kact
 *    format is byte for byte the portable one, and the portable one holds
 *    exactly the values quant_quantize_row produces (rows with rounding
 *    ties, zeros, a single spike, huge and tiny values);
 *  - matrix products for every weight type: weights quantized from floats
 *    and weights of random bytes (every bit pattern of the packed fields),
 *    row counts that are not multiples of the 8-row panels or 16-row tasks,
 *    1 to 17 activation rows, rows of one block and of many (with tails),
 *    one and two threads; each result within float rounding of
 *    quant_dot_ref, and a row computed alone bit-identical to the same row
 *    in a batch (what makes batched decoding equal single-sequence decoding);
 *  - several matrices sharing inputs (kern_matmul_multi), including three
 *    activation formats at once;
 *  - vector operations (RMS norm, SwiGLU, add, fp16 conversion) and
 *    attention over F16 and F32 KV caches for various group sizes, head
 *    sizes and lengths, against the reference versions.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/machine.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"
#include "kernels/quant.h"
#include "test.h"

/* ---- random numbers (xorshift; deterministic) ---- */

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static double urand(void) { return (double)(rnd() >> 11) * (1.0 / 9007199254740992.0); }
static float gauss(void) {
    double u = urand() + 1e-12, v = urand();
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

static size_t row_bytes(uint32_t type, int64_t n) {
    uint64_t b = 0;
    return rl_type_row_bytes(type, (uint64_t)n, &b) ? (size_t)b : 0;
}

/* ------------------------------------------------------------------ */
/* levels                                                              */
/* ------------------------------------------------------------------ */

static kernels *open_level(kern_level l, int threads, int max_rows, int64_t max_cols) {
    rl_err err = {0};
    kern_params p = {.n_threads = threads, .max_rows = max_rows, .max_cols = max_cols, .level = (int)l};
    kernels *k = kern_new(&p, &err);
    CHECKF(k != NULL, "level %s: %s", kern_level_name(l), err.msg);
    if (k) CHECK_EQ_INT(kern_get_level(k), l);
    return k;
}

/* ------------------------------------------------------------------ */
/* activation converters                                               */
/* ------------------------------------------------------------------ */

/* Rows that probe the rounding rules: random, exact halves of the quantum,
 * zeros, one spike, first-maximum sign ties, huge and tiny magnitudes. */
static void act_row(int kind, float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        switch (kind) {
        case 0: x[i] = gauss(); break;
        case 1: x[i] = (float)((int)(rnd() % 255) - 127) + (rnd() % 2 ? 0.5f : 0.0f); break; /* ties */
        case 2: x[i] = 0; break;
        case 3: x[i] = i % 97 == 5 ? 1000.0f : 0.001f * gauss(); break;
        case 4: x[i] = i % 2 ? -3.0f : 3.0f; break; /* |max| reached by both signs */
        case 5: x[i] = gauss() * 1e30f; break;
        default: x[i] = gauss() * 1e-30f; break;
        }
    }
    if (kind == 1 && n >= 32) { /* amax 127 so the quantum is exactly 1 */
        for (int64_t b = 0; b < n / 32; b++) x[32 * b + 7] = 127.0f;
    }
}

static bool same_bytes(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }

/* The meaningful fields of two KACT_Q8 rows are identical. */
static bool same_q8(const uint8_t *a, const uint8_t *b, int64_t cols) {
    kact_q8 u = kact_q8_view(a, cols), v = kact_q8_view(b, cols);
    size_t nb = (size_t)cols / 32;
    return same_bytes(u.q, v.q, (size_t)cols) && same_bytes(u.d, v.d, nb * 4) && same_bytes(u.s, v.s, nb * 4) &&
           same_bytes(u.sum, v.sum, nb * 4) && same_bytes(u.sum16, v.sum16, nb * 4) &&
           same_bytes(u.qb, v.qb, (size_t)cols);
}

/* The portable kact conversion holds quant.c's values. */
static void check_kact_ref(kern_act act, const float *x, int64_t cols) {
    uint8_t *out = calloc(1, kact_row_bytes(act, RL_TYPE_Q4_0, cols));
    uint32_t qt = act == KACT_Q8_0 ? RL_TYPE_Q8_0 : act == KACT_Q8_1 ? RL_TYPE_Q8_1 : RL_TYPE_Q8_K;
    uint8_t *blocks = malloc(row_bytes(qt, cols));
    kact_convert_ref(act, RL_TYPE_Q4_0, x, out, cols);
    quant_quantize_row(qt, x, blocks, cols);
    kact_q8 v = kact_q8_view(out, cols);
    bool ok = true;
    for (int64_t b = 0; b < cols / 32; b++) {
        int sum = 0, s16[2] = {0, 0};
        for (int j = 0; j < 32; j++) {
            sum += v.q[32 * b + j];
            s16[j / 16] += v.q[32 * b + j];
        }
        ok &= v.sum[b] == sum && v.sum16[2 * b] == s16[0] && v.sum16[2 * b + 1] == s16[1];
        for (int j = 0; j < 32; j++) ok &= v.qb[32 * b + j] == (uint8_t)(v.q[32 * b + j] + 128);
        if (qt == RL_TYPE_Q8_K) {
            block_q8_K k;
            memcpy(&k, blocks + (size_t)(b / 8) * sizeof k, sizeof k);
            ok &= memcmp(v.q + 32 * b, k.qs + 32 * (b % 8), 32) == 0 && v.d[b] == k.d;
            ok &= v.sum16[2 * b] == k.bsums[2 * (b % 8)] && v.sum16[2 * b + 1] == k.bsums[2 * (b % 8) + 1];
        } else if (qt == RL_TYPE_Q8_1) {
            block_q8_1 k;
            memcpy(&k, blocks + (size_t)b * sizeof k, sizeof k);
            ok &= memcmp(v.q + 32 * b, k.qs, 32) == 0 && v.d[b] == rl_f16_to_f32(k.d) && v.s[b] == rl_f16_to_f32(k.s);
        } else {
            block_q8_0 k;
            memcpy(&k, blocks + (size_t)b * sizeof k, sizeof k);
            ok &= memcmp(v.q + 32 * b, k.qs, 32) == 0 && v.d[b] == rl_f16_to_f32(k.d);
        }
    }
    CHECKF(ok, "kact_convert_ref(%d) differs from quant_quantize_row", (int)act);
    free(out);
    free(blocks);
}

static void test_converters(kern_level l) {
    const kern_impl *impl = kern_impl_for(l);
    static const kern_act ACTS[] = {KACT_Q8_0, KACT_Q8_1, KACT_Q8_K, KACT_F16R, KACT_BF16R};
    const int64_t COLS[] = {256, 512, 1024};
    for (size_t c = 0; c < RL_ARRAY_LEN(COLS); c++) {
        int64_t cols = COLS[c];
        float *x = malloc((size_t)cols * sizeof *x);
        for (int kind = 0; kind < 7; kind++) {
            act_row(kind, x, cols);
            for (size_t a = 0; a < RL_ARRAY_LEN(ACTS); a++) {
                kern_act act = ACTS[a];
                size_t nb = kact_row_bytes(act, RL_TYPE_Q4_0, cols);
                uint8_t *want = calloc(1, nb), *got = calloc(1, nb);
                kact_convert_ref(act, RL_TYPE_Q4_0, x, want, cols);
                if (l == KERN_REF && act != KACT_F16R && act != KACT_BF16R && kind < 5) check_kact_ref(act, x, cols);
                if (impl && impl->convert_act && impl->convert_act(act, x, got, cols) == 0) {
                    bool same = act == KACT_F16R || act == KACT_BF16R ? same_bytes(want, got, (size_t)cols * 4)
                                                                      : same_q8(want, got, cols);
                    CHECKF(same, "%s: converter %d, row kind %d, %lld cols differs from the reference",
                           kern_level_name(l), (int)act, kind, (long long)cols);
                }
                free(want);
                free(got);
            }
        }
        free(x);
    }
    /* the reference for F16R/BF16R is rounding through the half types */
    if (l == KERN_REF) {
        float x[3] = {1.0f + 1.0f / 4096, 3.14159265f, -1e-7f}, y[3];
        kact_convert_ref(KACT_F16R, RL_TYPE_F16, x, (uint8_t *)y, 3);
        for (int i = 0; i < 3; i++) CHECK(y[i] == rl_f16_to_f32(rl_f32_to_f16(x[i])));
        kact_convert_ref(KACT_BF16R, RL_TYPE_BF16, x, (uint8_t *)y, 3);
        for (int i = 0; i < 3; i++) CHECK(y[i] == rl_bf16_to_f32(rl_f32_to_bf16(x[i])));
    }
}

/* ------------------------------------------------------------------ */
/* matrix products                                                     */
/* ------------------------------------------------------------------ */

static const uint32_t TYPES[] = {RL_TYPE_Q4_0, RL_TYPE_Q4_1, RL_TYPE_Q5_0, RL_TYPE_Q5_1, RL_TYPE_Q8_0, RL_TYPE_Q4_K,
                                 RL_TYPE_Q5_K, RL_TYPE_Q6_K, RL_TYPE_F16,  RL_TYPE_BF16, RL_TYPE_F32};

static bool is_float_type(uint32_t t) { return t == RL_TYPE_F32 || t == RL_TYPE_F16 || t == RL_TYPE_BF16; }

/* Puts a sane fp16 scale (and min) into a block of random bytes, so that
 * every other bit stays random but the row's values stay finite. */
static void sane_scales(uint32_t type, uint8_t *blk) {
    rl_f16 d = rl_f32_to_f16((float)(urand() * 0.02 - 0.01)), m = rl_f32_to_f16((float)(urand() * 0.02 - 0.01));
    switch (type) {
    case RL_TYPE_Q4_0: case RL_TYPE_Q5_0: case RL_TYPE_Q8_0: memcpy(blk, &d, 2); break;
    case RL_TYPE_Q4_1: case RL_TYPE_Q5_1: case RL_TYPE_Q4_K: case RL_TYPE_Q5_K:
        memcpy(blk, &d, 2);
        memcpy(blk + 2, &m, 2);
        break;
    case RL_TYPE_Q6_K: memcpy(blk + offsetof(block_q6_K, d), &d, 2); break;
    default: break;
    }
}

/* rows x cols weights: even rows quantized from floats, odd rows random
 * bytes (quantized types) with sane scales. */
static uint8_t *make_weights(uint32_t type, int64_t rows, int64_t cols, size_t *rb_out) {
    size_t rb = row_bytes(type, cols);
    uint8_t *w = malloc(rb * (size_t)rows);
    float *f = malloc((size_t)cols * sizeof *f);
    const rl_type_info *ti = rl_type_get(type);
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *row = w + rb * (size_t)r;
        if (r % 2 == 0 || is_float_type(type)) {
            float scale = r % 3 == 0 ? 0.05f : 1.0f;
            for (int64_t c = 0; c < cols; c++) f[c] = gauss() * scale;
            quant_quantize_row(type, f, row, cols);
        } else {
            for (size_t i = 0; i < rb; i++) row[i] = (uint8_t)rnd();
            for (size_t b = 0; b < rb / ti->bytes; b++) sane_scales(type, row + b * ti->bytes);
        }
    }
    free(f);
    *rb_out = rb;
    return w;
}

/* Sum over the row of |w_i * x_i| with dequantized values: the scale of
 * the float rounding a dot product may carry. */
static double magnitude(uint32_t type, const uint8_t *row, const float *x, int64_t cols, float *tmp) {
    quant_dequantize_row(type, row, tmp, cols);
    double m = 0;
    for (int64_t c = 0; c < cols; c++) m += fabs((double)tmp[c] * x[c]);
    return m;
}

static int packed_tested; /* products also run from packed weights */

typedef struct mm_case {
    uint32_t type;
    int64_t rows, cols;
    int n;
} mm_case;

/* Runs one product on one level; compares with quant_dot_ref and with the
 * same rows computed one activation at a time. */
static void check_product(kern_level l, int threads, const mm_case *mc) {
    size_t rb;
    uint8_t *w = make_weights(mc->type, mc->rows, mc->cols, &rb);
    kern_matrix W = {.data = w, .type = mc->type, .rows = mc->rows, .cols = mc->cols, .row_bytes = rb};
    float *X = malloc((size_t)mc->n * (size_t)mc->cols * sizeof *X);
    for (int64_t i = 0; i < mc->n * mc->cols; i++) X[i] = gauss() * (i % 7 == 0 ? 3.0f : 1.0f);
    float *Y = malloc((size_t)mc->n * (size_t)mc->rows * sizeof *Y), *Y1 = malloc((size_t)mc->rows * sizeof *Y1);
    kernels *k = open_level(l, threads, mc->n, mc->cols);
    if (!k) return;
    kern_matmul(k, &W, X, mc->n, Y, mc->rows);

    uint32_t dt = quant_dot_type(mc->type);
    size_t ab = row_bytes(dt, mc->cols);
    uint8_t *act = malloc(ab);
    float *tmp = malloc((size_t)mc->cols * sizeof *tmp);
    int bad = 0, not_alone = 0;
    double worst = 0;
    double rel = is_float_type(mc->type) ? 2e-6 * sqrt((double)mc->cols) + 1e-6 : 1e-5;
    for (int t = 0; t < mc->n; t++) {
        const float *x = X + (size_t)t * mc->cols;
        quant_quantize_row(dt, x, act, mc->cols);
        for (int64_t r = 0; r < mc->rows; r++) {
            const uint8_t *row = w + rb * (size_t)r;
            float want = quant_dot_ref(mc->type, mc->cols, row, act);
            float got = Y[(size_t)t * mc->rows + r];
            /* float rounding only: relative to the sum of |terms| */
            double tol = rel * magnitude(mc->type, row, x, mc->cols, tmp) + 1e-6;
            double err = fabs((double)got - want);
            if (!(err <= tol)) bad++;
            if (err / tol > worst) worst = err / tol;
        }
        /* the same activation alone: bit for bit the batch's row */
        kern_matmul(k, &W, x, 1, Y1, mc->rows);
        if (memcmp(Y1, Y + (size_t)t * mc->rows, (size_t)mc->rows * sizeof *Y1) != 0) not_alone++;
    }
    /* the packed layout (when the level has one) gives the same bits */
    rl_err perr = {0};
    CHECK(kern_matrix_pack_level(&W, l, &perr) == 0);
    if (W.packed) {
        float *Yp = malloc((size_t)mc->n * (size_t)mc->rows * sizeof *Yp);
        kern_matmul(k, &W, X, mc->n, Yp, mc->rows);
        CHECKF(memcmp(Yp, Y, (size_t)mc->n * (size_t)mc->rows * sizeof *Yp) == 0,
               "%s x%d: %s %lldx%lld n=%d: packed weights give different results", kern_level_name(l), threads,
               rl_type_name(mc->type), (long long)mc->rows, (long long)mc->cols, mc->n);
        packed_tested++;
        free(Yp);
        kern_matrix_unpack(&W);
    }
    /* the VNNI levels compute avx2's integers and its float operations:
     * the same bits (a wrong integer would show here before the
     * tolerance above notices it) */
    if ((l == KERN_AVXVNNI || l == KERN_AVX512) && kern_level_supported(KERN_AVX2)) {
        kernels *k2 = open_level(KERN_AVX2, threads, mc->n, mc->cols);
        float *Y2 = malloc((size_t)mc->n * (size_t)mc->rows * sizeof *Y2);
        if (k2) kern_matmul(k2, &W, X, mc->n, Y2, mc->rows);
        CHECKF(k2 && memcmp(Y2, Y, (size_t)mc->n * (size_t)mc->rows * sizeof *Y2) == 0,
               "%s x%d: %s %lldx%lld n=%d: not avx2's bits", kern_level_name(l), threads, rl_type_name(mc->type),
               (long long)mc->rows, (long long)mc->cols, mc->n);
        kern_free(k2);
        free(Y2);
    }
    CHECKF(bad == 0, "%s x%d: %s %lldx%lld n=%d: %d outputs off the reference (worst %.2f x tolerance)",
           kern_level_name(l), threads, rl_type_name(mc->type), (long long)mc->rows, (long long)mc->cols, mc->n, bad,
           worst);
    CHECKF(not_alone == 0, "%s x%d: %s %lldx%lld n=%d: %d activation rows differ when computed alone",
           kern_level_name(l), threads, rl_type_name(mc->type), (long long)mc->rows, (long long)mc->cols, mc->n,
           not_alone);
    kern_free(k);
    free(w);
    free(X);
    free(Y);
    free(Y1);
    free(act);
    free(tmp);
}

static void test_products(kern_level l) {
    static const int64_t ROWS[] = {1, 7, 13, 37};
    packed_tested = 0;
    for (size_t ti = 0; ti < RL_ARRAY_LEN(TYPES); ti++) {
        uint32_t type = TYPES[ti];
        int64_t bs = quant_block_size(type);
        /* one block, a few, and more than 8 with a tail (floats: odd sizes) */
        int64_t cols_k[3] = {1, 3, 9};
        if (bs == QK_K) cols_k[2] = 3, cols_k[1] = 2;
        for (int c = 0; c < 3; c++) {
            int64_t cols = is_float_type(type) ? (int64_t[]){8, 77, 300}[c] : bs * cols_k[c];
            for (size_t ri = 0; ri < RL_ARRAY_LEN(ROWS); ri++) {
                /* every n from 1 to 17 on one shape, a spread on the others */
                static const int NS[] = {1, 2, 3, 4, 5, 8, 17};
                bool all_n = ri == 2 && c == 1;
                int count = all_n ? 17 : (int)RL_ARRAY_LEN(NS);
                for (int i = 0; i < count; i++) {
                    mm_case mc = {type, ROWS[ri], cols, all_n ? i + 1 : NS[i]};
                    check_product(l, ri % 2 ? 2 : 1, &mc);
                }
            }
        }
    }
    /* a level with a packed layout must have used it for every quantized type */
    const kern_impl *impl = kern_impl_for(l);
    if (impl && impl->panel_bytes) CHECKF(packed_tested > 0, "%s: no packed products tested", kern_level_name(l));
    printf("  %s: %d products also from packed weights\n", kern_level_name(l), packed_tested);
}

/* Matrices of different types sharing one input: up to three activation
 * formats in one call (more than the converted-activation buffer holds). */
static void test_multi(kern_level l) {
    static const uint32_t MIX[][3] = {{RL_TYPE_Q4_K, RL_TYPE_Q6_K, RL_TYPE_Q4_K},
                                      {RL_TYPE_Q8_0, RL_TYPE_Q4_1, RL_TYPE_Q6_K},
                                      {RL_TYPE_F16, RL_TYPE_Q4_0, RL_TYPE_F32}};
    const int64_t cols = 512, rows[3] = {40, 24, 17};
    const int n = 5;
    for (size_t m = 0; m < RL_ARRAY_LEN(MIX); m++) {
        kernels *k = open_level(l, 2, n, cols);
        if (!k) return;
        float *X = malloc((size_t)n * cols * sizeof *X);
        for (int64_t i = 0; i < n * cols; i++) X[i] = gauss();
        uint8_t *w[3];
        kern_matrix W[3];
        const kern_matrix *Wp[3];
        float *Y[3], *Yone = malloc((size_t)n * 40 * sizeof *Yone);
        int64_t ldy[3];
        for (int i = 0; i < 3; i++) {
            size_t rb;
            w[i] = make_weights(MIX[m][i], rows[i], cols, &rb);
            W[i] = (kern_matrix){.data = w[i], .type = MIX[m][i], .rows = rows[i], .cols = cols, .row_bytes = rb};
            if (i == 1) { /* one of them packed */
                rl_err err = {0};
                CHECK(kern_matrix_pack_level(&W[i], l, &err) == 0);
            }
            Wp[i] = &W[i];
            Y[i] = malloc((size_t)n * rows[i] * sizeof *Y[i]);
            ldy[i] = rows[i];
        }
        kern_matmul_multi(k, Wp, 3, X, n, Y, ldy);
        for (int i = 0; i < 3; i++) {
            kern_matmul(k, &W[i], X, n, Yone, rows[i]);
            CHECKF(memcmp(Yone, Y[i], (size_t)n * rows[i] * sizeof *Yone) == 0,
                   "%s: kern_matmul_multi matrix %d (%s) differs from kern_matmul", kern_level_name(l), i,
                   rl_type_name(MIX[m][i]));
            kern_matrix_unpack(&W[i]);
            free(w[i]);
            free(Y[i]);
        }
        free(Yone);
        free(X);
        kern_free(k);
    }
}

/* ------------------------------------------------------------------ */
/* vector operations and attention                                     */
/* ------------------------------------------------------------------ */

static bool close_rel(float got, float want, double rel, double abs_tol) {
    return fabs((double)got - want) <= rel * fabs((double)want) + abs_tol;
}

static void test_vector_ops(kern_level l) {
    kernels *k = open_level(l, 1, 1, 64);
    if (!k) return;
    enum { N = 1003 };
    float x[N], w[N], y[N], ref[N], u[N];
    for (int i = 0; i < N; i++) {
        x[i] = gauss() * 2;
        w[i] = gauss();
        u[i] = gauss();
    }
    for (int n = 1; n <= N; n += n < 20 ? 1 : 97) {
        kern_rmsnorm(k, y, x, w, n, 1e-5f);
        kern_rmsnorm(NULL, ref, x, w, n, 1e-5f);
        int bad = 0;
        for (int i = 0; i < n; i++) bad += !close_rel(y[i], ref[i], 1e-6, 1e-30);
        CHECKF(bad == 0, "%s: rmsnorm n=%d: %d values off", kern_level_name(l), n, bad);
    }
    /* SwiGLU over a wide range of gate values, including where exp over- and
     * underflows */
    float g[N];
    for (int i = 0; i < N; i++) g[i] = (float)(i - N / 2) * 0.2f + gauss() * 0.01f;
    for (int n = 1; n <= N; n += n < 20 ? 1 : 101) {
        kern_swiglu(k, y, g, u, n);
        kern_swiglu(NULL, ref, g, u, n);
        int bad = 0;
        for (int i = 0; i < n; i++) bad += !close_rel(y[i], ref[i], 2e-6, 1e-37);
        CHECKF(bad == 0, "%s: swiglu n=%d: %d values off", kern_level_name(l), n, bad);
    }
    for (int n = 1; n <= 40; n++) {
        memcpy(y, x, sizeof y);
        memcpy(ref, x, sizeof ref);
        kern_add(k, y, u, n);
        kern_add(NULL, ref, u, n);
        CHECKF(memcmp(y, ref, (size_t)n * sizeof *y) == 0, "%s: add n=%d", kern_level_name(l), n);
    }
    /* fp16: normal, subnormal, overflowing and rounding-tie values */
    float h[64];
    for (int i = 0; i < 64; i++) {
        switch (i % 4) {
        case 0: h[i] = gauss(); break;
        case 1: h[i] = gauss() * 1e-6f; break;
        case 2: h[i] = gauss() * 1e5f; break;
        default: h[i] = 1.0f + (float)(2 * i + 1) / 2048.0f; break; /* halfway between fp16 steps */
        }
    }
    for (int n = 1; n <= 64; n += 7) {
        rl_f16 a[64], b[64];
        kern_to_f16(k, a, h, n);
        kern_to_f16(NULL, b, h, n);
        CHECKF(memcmp(a, b, (size_t)n * 2) == 0, "%s: to_f16 n=%d", kern_level_name(l), n);
    }
    kern_free(k);
}

/* n_tok tokens (the last at position n_pos - 1) of n_q heads against a
 * cache: kern_attention vs the reference, and each token's rows alone
 * (n_tok = 1 at its own position) bit-identical to the same rows in the run. */
static void check_attention(kernels *k, kern_level l, bool kv16, int n_tok, int nq, int hd, int np, int spread) {
    int64_t stride = (int64_t)hd * spread; /* 1: the engine's layout; more: other data in between */
    int64_t q_stride = (int64_t)nq * hd + 5;
    size_t kv_n = (size_t)np * (size_t)stride;
    void *K = malloc(kv_n * 4), *V = malloc(kv_n * 4);
    for (size_t i = 0; i < kv_n; i++) {
        float kf = gauss() * 2, vf = gauss();
        if (kv16) {
            ((rl_f16 *)K)[i] = rl_f32_to_f16(kf);
            ((rl_f16 *)V)[i] = rl_f32_to_f16(vf);
        } else {
            ((float *)K)[i] = kf;
            ((float *)V)[i] = vf;
        }
    }
    size_t qn = (size_t)n_tok * (size_t)q_stride;
    float *q = malloc(qn * 4), *o1 = calloc(qn, 4), *o2 = calloc(qn, 4), *o3 = calloc(qn, 4);
    float *sc = malloc(KERN_ATTN_SCRATCH(n_tok, nq, np, hd) * 4);
    for (size_t i = 0; i < qn; i++) q[i] = gauss();
    kern_attn at = {.out = o1, .q = q, .q_stride = q_stride, .n_tok = n_tok, .n_q = nq, .K = K, .V = V,
                    .kv_f16 = kv16, .head_dim = hd, .stride = stride, .n_pos = np,
                    .scale = 1.0f / sqrtf((float)hd), .scratch = sc};
    kern_attention(k, &at);
    at.out = o2;
    kern_attention_ref(&at);
    int bad = 0, alone = 0;
    for (int j = 0; j < n_tok; j++)
        for (int i = 0; i < nq * hd; i++) {
            size_t at_i = (size_t)j * q_stride + i;
            bad += !close_rel(o1[at_i], o2[at_i], 1e-5, 1e-5);
        }
    for (int j = 0; j < n_tok; j++) { /* token j alone */
        kern_attn one = at;
        one.out = o3 + (size_t)j * q_stride;
        one.q = q + (size_t)j * q_stride;
        one.n_tok = 1;
        one.n_pos = np - n_tok + 1 + j;
        kern_attention(k, &one);
        alone += memcmp(o3 + (size_t)j * q_stride, o1 + (size_t)j * q_stride, (size_t)nq * hd * 4) != 0;
    }
    CHECKF(bad == 0, "%s: attention kv_f16=%d n_tok=%d n_q=%d head_dim=%d n_pos=%d stride=%d heads: %d values off",
           kern_level_name(l), kv16, n_tok, nq, hd, np, spread, bad);
    CHECKF(alone == 0, "%s: attention kv_f16=%d n_tok=%d n_q=%d head_dim=%d n_pos=%d stride=%d heads: %d tokens differ alone",
           kern_level_name(l), kv16, n_tok, nq, hd, np, spread, alone);
    free(K);
    free(V);
    free(q);
    free(o1);
    free(o2);
    free(o3);
    free(sc);
}

static void test_attention(kern_level l) {
    kernels *k = open_level(l, 1, 1, 64);
    if (!k) return;
    static const int NQ[] = {1, 4, 5}, HD[] = {8, 12, 64, 72, 128}, NP[] = {1, 7, 33, 130}, NT[] = {1, 3, 16};
    for (int kv16 = 0; kv16 <= 1; kv16++)
        for (size_t a = 0; a < RL_ARRAY_LEN(NQ); a++)
            for (size_t b = 0; b < RL_ARRAY_LEN(HD); b++)
                for (size_t c = 0; c < RL_ARRAY_LEN(NP); c++)
                    for (size_t t = 0; t < RL_ARRAY_LEN(NT); t++)
                        for (int spread = 1; spread <= 3; spread += 2)
                            if (NT[t] <= NP[c]) check_attention(k, l, kv16 != 0, NT[t], NQ[a], HD[b], NP[c], spread);
    kern_free(k);
}

/* ------------------------------------------------------------------ */

static void test_level_choice(void) {
    kern_level best = kern_detect();
    CHECK(kern_level_supported(best));
    CHECK(kern_level_supported(KERN_REF));
    CHECK_EQ_INT(kern_level_from_name("ref"), KERN_REF);
    CHECK_EQ_INT(kern_level_from_name("AVX2"), KERN_AVX2);
    CHECK_EQ_INT(kern_level_from_name("nonsense"), -1);
    /* RACKLLM_KERNELS lowers the level, never raises it past the CPU's */
    setenv("RACKLLM_KERNELS", "ref", 1);
    CHECK_EQ_INT(kern_default_level(), KERN_REF);
    setenv("RACKLLM_KERNELS", "bogus", 1);
    CHECK_EQ_INT(kern_default_level(), best);
    unsetenv("RACKLLM_KERNELS");
    CHECK_EQ_INT(kern_default_level(), best);
#if defined(__x86_64__)
    /* the machine module's rule from /proc/cpuinfo flags (what the planner
     * and the bench's peak use) names the level cpuid gives (x86 only:
     * under qemu-user an Arm build reads the host's /proc/cpuinfo) */
    machine_cpu cpu;
    machine_cpu_describe(&cpu);
    CHECK_STR(machine_best_kernels(&cpu), kern_level_name(best));
#endif
    rl_err err = {0};
    for (int l = 0; l < KERN_LEVEL_COUNT; l++) {
        kern_params p = {.n_threads = 1, .max_rows = 1, .max_cols = 32, .level = l};
        kernels *k = kern_new(&p, &err);
        CHECKF((k != NULL) == kern_level_supported((kern_level)l), "kern_new at level %s",
               kern_level_name((kern_level)l));
        kern_free(k);
    }
}

/* Cases are named per level: `build/test_kernels products_avx512`,
 * `--list` for all of them. */
static void run_level_case(const char *name, void (*fn)(kern_level), kern_level level) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s_%s", name, kern_level_name(level));
    if (test_selected(buf)) fn(level);
}

/* RoPE in both pairings against the formula in double: pair i of a head
 * is (x[2i], x[2i+1]) normally, (x[i], x[i + d/2]) for NeoX (Qwen), turned
 * by pos * base^(-2i/d) / factor_i. */
static void test_rope(void) {
    enum { HEADS = 3, D = 16 };
    const float base = 1e6f, factors[D / 2] = {1, 1, 2, 4, 8, 1, 1, 3};
    for (int neox = 0; neox <= 1; neox++) {
        float x[HEADS * D], orig[HEADS * D];
        for (int i = 0; i < HEADS * D; i++) orig[i] = x[i] = sinf(0.7f * (float)i) + 0.1f * (float)(i % 5);
        const int32_t pos = 37;
        kern_rope(x, HEADS, D, pos, base, 0.5f, factors, neox);
        double worst = 0;
        for (int h = 0; h < HEADS; h++) {
            for (int i = 0; i < D / 2; i++) {
                int a = h * D + (neox ? i : 2 * i), b = a + (neox ? D / 2 : 1);
                double theta = 0.5 * pos * pow(base, -2.0 * i / D) / factors[i];
                double y0 = orig[a] * cos(theta) - orig[b] * sin(theta);
                double y1 = orig[a] * sin(theta) + orig[b] * cos(theta);
                worst = fmax(worst, fmax(fabs(x[a] - y0), fabs(x[b] - y1)));
            }
        }
        CHECKF(worst < 1e-5, "%s RoPE: max error %g", neox ? "NeoX" : "normal", worst);
    }
    /* the pairings differ: a unit x[0] turns into x[1] (normal) or x[D/2] (NeoX) */
    for (int neox = 0; neox <= 1; neox++) {
        float x[D] = {1};
        kern_rope(x, 1, D, 1, 10000.0f, 1.0f, NULL, neox);
        CHECK_NEAR(x[neox ? D / 2 : 1], sinf(1.0f), 1e-6);
        CHECK_NEAR(x[neox ? 1 : D / 2], 0.0f, 0);
    }
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(test_level_choice);
    RUN(test_rope);
    int tested = 0;
    for (int l = 0; l < KERN_LEVEL_COUNT; l++) {
        kern_level level = (kern_level)l;
        if (!kern_level_supported(level) || (level != KERN_REF && !kern_impl_for(level))) continue;
        tested++;
        if (!tcase_listing) printf("level %s\n", kern_level_name(level)); /* scripts/test-arm.sh reads these */
        run_level_case("converters", test_converters, level);
        run_level_case("products", test_products, level);
        run_level_case("multi", test_multi, level);
        run_level_case("vector_ops", test_vector_ops, level);
        run_level_case("attention", test_attention, level);
    }
    CHECK(tested >= 1);
    return test_report("test_kernels");
}
