/*
 * common.c — error messages, half-precision conversion, the clock,
 * allocation that reports through rl_err, and the small helpers of
 * common.h (a small system file read whole, XML escaping, the median).
 */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int rl_fail(rl_err *err, int code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return -1;
}

int rl_fail_prefix(rl_err *err, const char *fmt, ...) {
    if (!err) return -1;
    char prefix[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t n = strlen(prefix);
    if (n >= sizeof err->msg) n = sizeof err->msg - 1;
    memcpy(err->msg, prefix, n);
    size_t rest = sizeof err->msg - 1 - n;
    size_t m = strlen(old);
    if (m > rest) m = rest;
    memcpy(err->msg + n, old, m);
    err->msg[n + m] = 0;
    if (err->code == RL_ERR_NONE) err->code = RL_ERR_INTERNAL;
    return -1;
}

/* IEEE half -> single, handling subnormals, infinities and NaN. */
float rl_f16_to_f32(rl_f16 h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    uint32_t u;
    if (exp == 0) {
        if (mant == 0) {
            u = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do { e++; mant <<= 1; } while ((mant & 0x400) == 0);
            u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((mant & 0x3ff) << 13);
        }
    } else if (exp == 0x1f) {
        u = sign | 0x7f800000 | (mant << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Single -> half, round to nearest even (what F16C's vcvtps2ph does with
 * rounding mode 0, and what ggml's scalar fallback computes). */
rl_f16 rl_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffff;
    if (absx >= 0x7f800000) { /* inf or NaN */
        return (rl_f16)(sign | 0x7c00 | (absx > 0x7f800000 ? 0x200 | ((absx >> 13) & 0x3ff) : 0));
    }
    if (absx >= 0x477ff000) return (rl_f16)(sign | 0x7c00); /* rounds to >= 65520: inf */
    if (absx < 0x38800000) { /* result is subnormal or zero */
        if (absx < 0x33000000) return (rl_f16)sign; /* < 2^-25: rounds to 0 */
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e; /* 14 + (112 - e) + ... */
        uint32_t half = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return (rl_f16)(sign | half);
    }
    uint32_t h = ((absx >> 13) - (112u << 10));
    uint32_t rem = absx & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++;
    return (rl_f16)(sign | h);
}

double rl_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void *rl_calloc(size_t n, size_t size, rl_err *err) {
    void *p = (n == 0 || size == 0) ? calloc(1, 1) : calloc(n, size);
    if (!p) rl_fail(err, RL_ERR_INTERNAL, "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}

void *rl_aligned_alloc(size_t size, rl_err *err) {
    void *p = NULL;
    if (posix_memalign(&p, 64, size ? size : 64) != 0) {
        rl_fail(err, RL_ERR_INTERNAL, "out of memory allocating %zu bytes", size);
        return NULL;
    }
    return p;
}

char *rl_read_small_file(const char *path, size_t max) {
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    char *buf = malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max, f) : 0;
    fclose(f);
    if (buf) buf[n] = 0;
    return buf;
}

void rl_fputs_xml(FILE *out, const char *s) {
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        default: fputc(*s, out);
        }
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double rl_median(const double *v, int n) {
    if (n <= 0) return 0;
    double *s = malloc((size_t)n * sizeof *s);
    if (!s) return v[0];
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    free(s);
    return m;
}
