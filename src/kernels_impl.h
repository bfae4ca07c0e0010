/*
 * kernels_impl.h — how SIMD code plugs into kernels.c (private to the
 * kernels module and src/arch/).
 *
 * Each instruction-set level provides a kern_impl table; a NULL entry means
 * "use the reference code". Files in src/arch/ are compiled with their
 * instruction set enabled (see CMakeLists.txt) and only ever called after
 * kern_level_supported() said the CPU has it.
 */
#ifndef RACKLLM_KERNELS_IMPL_H
#define RACKLLM_KERNELS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"
#include "types.h"

/* Rows [r0, r1) of a weight matrix (w, w_stride bytes per row, cols
 * elements) against n activation rows (a, a_stride bytes apart, already in
 * the dot type): y[t*ldy + r]. */
typedef void (*kern_gemm_fn)(int64_t cols, const uint8_t *w, size_t w_stride, const uint8_t *a, size_t a_stride,
                             int n, float *y, int64_t ldy, int64_t r0, int64_t r1);

typedef struct kern_impl {
    kern_gemm_fn gemm[RL_TYPE_COUNT];
    /* Converts an activation row to a dot type; returns -1 to fall back. */
    int (*quantize_act)(uint32_t type, const float *x, void *out, int64_t n);
} kern_impl;

/* The table for a level, NULL if this build has none (then ref is used). */
const kern_impl *kern_impl_for(kern_level level);

#endif
