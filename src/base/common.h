/*
 * common.h — the few things every rackllm module shares.
 *
 * Errors: a function that can fail returns 0 on success and -1 on failure,
 * and writes a human sentence into the caller's rl_err (what was wrong,
 * where: file, byte offset, field). The code says whose fault it was, so the
 * command line can exit 2 for bad input and 1 for an internal failure.
 *
 * Also here: half-precision conversions (F16, BF16) exactly as IEEE and
 * llama.cpp define them, overflow-checked size arithmetic, unaligned
 * little-endian loads, a monotonic clock, allocation that reports failure
 * through rl_err, and a few small helpers (a small system file read whole,
 * XML escaping, the median). Nothing here holds state.
 */
#ifndef RACKLLM_COMMON_H
#define RACKLLM_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum {
    RL_ERR_NONE = 0,
    RL_ERR_INTERNAL = 1, /* our fault or the system's: out of memory, I/O */
    RL_ERR_INPUT = 2,    /* the caller's input is wrong: file, flag, request */
};

typedef struct rl_err {
    int code;       /* RL_ERR_* */
    char msg[512];  /* one line, no trailing newline */
} rl_err;

/* Sets the error (if err is not NULL) and returns -1, so callers can write
 * `return rl_fail(err, RL_ERR_INPUT, "...", ...);`. */
int rl_fail(rl_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message with more context ("loading X: " + msg). */
int rl_fail_prefix(rl_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- overflow-checked arithmetic on sizes (true = overflow) ---- */
static inline bool rl_add_overflow(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_add_overflow(a, b, out);
}
static inline bool rl_mul_overflow(uint64_t a, uint64_t b, uint64_t *out) {
    return __builtin_mul_overflow(a, b, out);
}

/* ---- half precision ---- */
typedef uint16_t rl_f16;
typedef uint16_t rl_bf16;

float rl_f16_to_f32(rl_f16 h);
rl_f16 rl_f32_to_f16(float f); /* round to nearest even, like F16C */

static inline float rl_bf16_to_f32(rl_bf16 h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
/* Round to nearest even; NaN stays NaN (quiet), as ggml does. */
static inline rl_bf16 rl_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffff) > 0x7f800000) return (rl_bf16)((u >> 16) | 64);
    return (rl_bf16)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

/* ---- unaligned little-endian loads (GGUF is little-endian; so are we) ---- */
static inline uint16_t rl_load_u16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t rl_load_u32(const void *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline uint64_t rl_load_u64(const void *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static inline float rl_load_f32(const void *p) { float v; memcpy(&v, p, 4); return v; }

/* ---- time ---- */
double rl_now(void); /* seconds, monotonic */

/* At most `max` bytes of a small system file (/proc, /sys), NUL-terminated;
 * NULL if it cannot be opened or memory is short. The caller frees. */
char *rl_read_small_file(const char *path, size_t max);

/* Writes s to out with &, <, > and " escaped (SVG/XML text and attributes). */
void rl_fputs_xml(FILE *out, const char *s);

/* ---- small helpers ---- */
/* The median of v[0..n) (v is left as it is; 0 if n < 1). */
double rl_median(const double *v, int n);

#define RL_MIN(a, b) ((a) < (b) ? (a) : (b))
#define RL_MAX(a, b) ((a) > (b) ? (a) : (b))
#define RL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Allocation that reports failure through rl_err (NULL on failure). */
void *rl_calloc(size_t n, size_t size, rl_err *err);

/* 64-byte aligned allocation for SIMD buffers; free with free(). */
void *rl_aligned_alloc(size_t size, rl_err *err);

#endif
