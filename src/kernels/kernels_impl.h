/*
 * kernels_impl.h — how SIMD code plugs into kernels.c (private to the
 * kernels module, src/kernels/arch/ and the kernel tests).
 *
 * Each instruction-set level provides a kern_impl table; a NULL entry means
 * "use the reference code". Files in src/kernels/arch/ are compiled with their
 * instruction set enabled (see CMakeLists.txt) and only ever called after
 * kern_level_supported() said the CPU has it.
 *
 * Activations. Before a matrix product the activation rows are converted
 * once into the format the weight type's kernel reads (kern_act). The
 * reference kernels read quant.h's dot types (Q8_0, Q8_1, Q8_K blocks ...).
 * The SIMD kernels read "kact" rows instead: the same integer values and
 * scales, laid out so vector code finds them without unpacking:
 *
 *   KACT_Q8_0, KACT_Q8_1, KACT_Q8_K (cols a multiple of 32; 256 for Q8_K):
 *     int8_t  q[cols]          the quantized values, as quant.c computes them
 *     float   d[cols/32]       scale of each 32-block (Q8_0/Q8_1: the fp16
 *                              value as stored; Q8_K: its 256-block's d)
 *     float   s[cols/32]       Q8_1: fp16(d * sum) exactly as block_q8_1.s;
 *                              otherwise d * sum
 *     int32_t sum[cols/32]     sum of the block's q
 *     int16_t sum16[cols/16]   sums of 16 q (Q8_K's bsums)
 *     uint8_t qb[cols]         q + 128: the values as unsigned bytes, for
 *                              kernels that make the weights the signed side
 *   each array starting on a 32-byte boundary of the row;
 *   KACT_F32: the floats themselves; KACT_F16R / KACT_BF16R: floats rounded
 *   through fp16 / bf16 (the values the reference's F16/BF16 activation rows
 *   hold, but ready to multiply).
 *
 * So a SIMD kernel and the oracle see exactly the same numbers; only the
 * order of float additions differs.
 */
#ifndef RACKLLM_KERNELS_IMPL_H
#define RACKLLM_KERNELS_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "base/types.h"

typedef enum kern_act {
    KACT_REF = 0, /* quant_dot_type(weight type), written by quant_quantize_row */
    KACT_F32,
    KACT_F16R,
    KACT_BF16R,
    KACT_Q8_0,
    KACT_Q8_1,
    KACT_Q8_K,
    KACT_COUNT
} kern_act;

/* Bytes of one activation row of `cols` elements in format `act` (a
 * multiple of 64, so rows stay aligned); 0 if cols does not fit the format. */
size_t kact_row_bytes(kern_act act, uint32_t weight_type, int64_t cols);

/* Pointers into one KACT_Q8_* row. */
typedef struct kact_q8 {
    const int8_t *q;
    const float *d, *s;
    const int32_t *sum;
    const int16_t *sum16;
    const uint8_t *qb;
} kact_q8;

static inline kact_q8 kact_q8_view(const uint8_t *row, int64_t cols) {
    size_t nb = (size_t)cols / 32, o = (size_t)cols;
    kact_q8 v;
    v.q = (const int8_t *)row;
    o = (o + 31) & ~(size_t)31;
    v.d = (const float *)(row + o);
    o = (o + nb * 4 + 31) & ~(size_t)31;
    v.s = (const float *)(row + o);
    o = (o + nb * 4 + 31) & ~(size_t)31;
    v.sum = (const int32_t *)(row + o);
    o = (o + nb * 4 + 31) & ~(size_t)31;
    v.sum16 = (const int16_t *)(row + o);
    o = (o + nb * 4 + 31) & ~(size_t)31;
    v.qb = row + o;
    return v;
}

/* The portable conversion of one row into `act` (the oracle for the SIMD
 * converters); KACT_REF converts to quant_dot_type(weight_type). */
void kact_convert_ref(kern_act act, uint32_t weight_type, const float *x, uint8_t *out, int64_t cols);

/* One matrix-product job: rows [r0, r1) of a weight matrix (w, w_stride
 * bytes per row, cols elements) against n activation rows (a, a_stride
 * bytes apart, in the kernel's format): y[t*ldy + r] for t < n. `scratch`
 * is this thread's private space of KERN_SCRATCH_BYTES(cols) bytes. */
typedef struct kern_gemm_args {
    int64_t cols;
    const uint8_t *w;
    size_t w_stride;
    const uint8_t *packed; /* the matrix's packed panels for this level, or NULL */
    const uint8_t *a;
    size_t a_stride;
    int n;
    float *y;
    int64_t ldy;
    int64_t r0, r1;
    uint8_t *scratch;
} kern_gemm_args;

/* room for one panel packed on the fly: at most 17 bytes per column (16
 * rows of Q8_0) */
#define KERN_SCRATCH_BYTES(cols) ((size_t)(cols) * 18 + 4096)

typedef void (*kern_gemm_fn)(const kern_gemm_args *g);

typedef struct kern_impl {
    const char *name;
    /* weight rows per packed panel (the rows one tile computes at once) */
    int panel_rows;
    /* per weight type: the kernel (NULL: reference) and the format of the
     * activations it reads */
    kern_gemm_fn gemm[RL_TYPE_COUNT];
    uint8_t act[RL_TYPE_COUNT];
    /* packed layout: bytes of one panel of panel_rows rows of `cols`
     * elements of a type (0: none for this type), and the packer (rows <=
     * panel_rows; missing rows are zeros) */
    size_t (*panel_bytes)(uint32_t type, int64_t cols);
    void (*pack_panel)(uint32_t type, const uint8_t *w, size_t stride, int rows, int64_t cols, uint8_t *out);
    /* converts one activation row; NULL or a format it does not handle:
     * kact_convert_ref (returns -1 to fall back) */
    int (*convert_act)(kern_act act, const float *x, uint8_t *out, int64_t cols);
    /* vector operations; NULL: reference (see kernels.h for meanings) */
    void (*rmsnorm)(float *y, const float *x, const float *w, int64_t n, float eps);
    void (*swiglu)(float *y, const float *g, const float *u, int64_t n);
    void (*add)(float *x, const float *y, int64_t n);
    void (*to_f16)(rl_f16 *dst, const float *src, int64_t n);
    void (*attention)(const kern_attn *a);
} kern_impl;

/* The activation format each weight type's kernel reads, the same at every
 * SIMD level: quant_dot_type's values in the kact layout. */
#define KACT_FORMATS                                                                         \
    {                                                                                        \
        [RL_TYPE_Q4_0] = KACT_Q8_0, [RL_TYPE_Q5_0] = KACT_Q8_0, [RL_TYPE_Q8_0] = KACT_Q8_0,   \
        [RL_TYPE_Q4_1] = KACT_Q8_1, [RL_TYPE_Q5_1] = KACT_Q8_1, [RL_TYPE_Q4_K] = KACT_Q8_K,   \
        [RL_TYPE_Q5_K] = KACT_Q8_K, [RL_TYPE_Q6_K] = KACT_Q8_K, [RL_TYPE_F32] = KACT_F32,     \
        [RL_TYPE_F16] = KACT_F16R, [RL_TYPE_BF16] = KACT_BF16R,                              \
    }

/* kern_matrix_pack for a given level (the tests pack for each level). */
int kern_matrix_pack_level(kern_matrix *W, kern_level level, rl_err *err);

/* The table for a level, NULL if this build has none (then ref is used). */
const kern_impl *kern_impl_for(kern_level level);

/* Reference versions of the vector operations (kernels.c). */
void kern_attention_ref(const kern_attn *a);

#endif
