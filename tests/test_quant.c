/*
 * test_quant.c — the reference block formats (quant.c) against facts that
 * do not come from quant.c itself:
 *  - hand-made blocks whose values follow from the format's definition;
 *  - every quantized tensor of the shipped synth-s512 models decoded by an
 *    independent element-by-element decoder written here from the byte
 *    layout, and compared with the F16 original within the format's error;
 *  - the same tensors re-quantized from the F16 model: the bytes must be
 *    exactly those llama-quantize wrote;
 *  - round trips, dot products against dequantize-then-dot, rows of one and
 *    of several blocks, and rows of zeros, NaN and infinity.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "kernels/quant.h"
#include "test.h"

static const uint32_t WEIGHT_TYPES[] = {RL_TYPE_F32,  RL_TYPE_F16,  RL_TYPE_BF16, RL_TYPE_Q8_0,
                                        RL_TYPE_Q4_0, RL_TYPE_Q4_1, RL_TYPE_Q5_0, RL_TYPE_Q5_1,
                                        RL_TYPE_Q4_K, RL_TYPE_Q5_K, RL_TYPE_Q6_K};
static const uint32_t ALL_TYPES[] = {RL_TYPE_F32,  RL_TYPE_F16,  RL_TYPE_BF16, RL_TYPE_Q8_0, RL_TYPE_Q8_1,
                                     RL_TYPE_Q8_K, RL_TYPE_Q4_0, RL_TYPE_Q4_1, RL_TYPE_Q5_0, RL_TYPE_Q5_1,
                                     RL_TYPE_Q4_K, RL_TYPE_Q5_K, RL_TYPE_Q6_K};

/* ---- small utilities ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}
static float gauss(void) {
    double u = urand() + 1e-12, v = urand();
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

static size_t row_bytes(uint32_t type, int64_t n) {
    uint64_t b = 0;
    if (!rl_type_row_bytes(type, (uint64_t)n, &b)) return 0;
    return (size_t)b;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static float rdh(const uint8_t *p) { return rl_f16_to_f32(rd16(p)); }

/* ---- an independent decoder: element e of a row, from raw bytes ---- */

/* The 6-bit scale (which = 0) or min (which = 1) of sub-block j (0..7) of a
 * Q4_K/Q5_K block, from its 12 scale bytes: sub-blocks 0-3 keep theirs in
 * the low 6 bits of byte j (scale) / j+4 (min); sub-blocks 4-7 keep the low
 * 4 bits in the low (scale) / high (min) nibble of byte j+4 and the top 2
 * bits in the top 2 bits of byte j-4 (scale) / j (min). */
static int k4_field(const uint8_t *s, int j, int which) {
    if (j < 4) return s[j + 4 * which] & 63;
    int low = which ? s[j + 4] >> 4 : s[j + 4] & 15;
    int high = s[j - 4 + 4 * which] >> 6;
    return low + 16 * high;
}

static float decode_elem(uint32_t type, const uint8_t *row, int64_t e) {
    switch (type) {
    case RL_TYPE_Q4_0: {
        const uint8_t *b = row + (e / 32) * 18;
        int k = (int)(e % 32), q = k < 16 ? b[2 + k] & 15 : b[2 + k - 16] >> 4;
        return (q - 8) * rdh(b);
    }
    case RL_TYPE_Q4_1: {
        const uint8_t *b = row + (e / 32) * 20;
        int k = (int)(e % 32), q = k < 16 ? b[4 + k] & 15 : b[4 + k - 16] >> 4;
        return q * rdh(b) + rdh(b + 2);
    }
    case RL_TYPE_Q5_0:
    case RL_TYPE_Q5_1: {
        /* d, (m,) then 4 bytes of fifth bits (bit k of the LE word for
         * weight k), then 16 bytes of nibbles as in Q4_0/Q4_1 */
        const bool one = type == RL_TYPE_Q5_1;
        const uint8_t *b = row + (e / 32) * (one ? 24 : 22), *qh = b + (one ? 4 : 2);
        int k = (int)(e % 32), q = k < 16 ? qh[4 + k] & 15 : qh[4 + k - 16] >> 4;
        uint32_t bits = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
        q += (int)((bits >> k) & 1) * 16;
        return one ? q * rdh(b) + rdh(b + 2) : (q - 16) * rdh(b);
    }
    case RL_TYPE_Q8_0: {
        const uint8_t *b = row + (e / 32) * 34;
        return (int8_t)b[2 + e % 32] * rdh(b);
    }
    case RL_TYPE_Q4_K:
    case RL_TYPE_Q5_K: {
        const bool five = type == RL_TYPE_Q5_K;
        const uint8_t *b = row + (e / 256) * (five ? 176 : 144);
        int k = (int)(e % 256), sub = k / 32, chunk = k / 64, upper = (k % 64) >= 32;
        const uint8_t *qs = b + (five ? 48 : 16);
        int byte = qs[32 * chunk + k % 32];
        int q = upper ? byte >> 4 : byte & 15;
        if (five) q += ((b[16 + k % 32] >> sub) & 1) * 16; /* qh bit 2*chunk+upper == sub */
        float d1 = rdh(b) * k4_field(b + 4, sub, 0), m1 = rdh(b + 2) * k4_field(b + 4, sub, 1);
        return d1 * q - m1;
    }
    case RL_TYPE_Q6_K: {
        const uint8_t *b = row + (e / 256) * 210;
        int k = (int)(e % 256), half = k / 128, quarter = (k % 128) / 32, l = k % 32;
        int lowbyte = b[64 * half + 32 * (quarter % 2) + l];
        int low = quarter < 2 ? lowbyte & 15 : lowbyte >> 4;
        int high = (b[128 + 32 * half + l] >> (2 * quarter)) & 3;
        int8_t scale = (int8_t)b[192 + k / 16];
        return rdh(b + 208) * scale * ((low | high << 4) - 32);
    }
    default:
        return NAN;
    }
}

/* ---- known values: hand-built blocks ---- */

static void test_known_dequant(void) {
    float y[256];
    /* Q4_0: d = 1, qs[j] = j | (15-j) << 4: weights j-8, then 7-j. */
    uint8_t q40[18] = {0x00, 0x3c};
    for (int j = 0; j < 16; j++) q40[2 + j] = (uint8_t)(j | (15 - j) << 4);
    CHECK(quant_dequantize_row(RL_TYPE_Q4_0, q40, y, 32) == 0);
    for (int j = 0; j < 16; j++) {
        CHECK_EQ_INT(y[j], j - 8);
        CHECK_EQ_INT(y[16 + j], 7 - j);
    }
    /* Q4_1: d = 0.5 (0x3800), m = -1 (0xbc00): weight = q/2 - 1. */
    uint8_t q41[20] = {0x00, 0x38, 0x00, 0xbc};
    for (int j = 0; j < 16; j++) q41[4 + j] = (uint8_t)(j | (15 - j) << 4);
    CHECK(quant_dequantize_row(RL_TYPE_Q4_1, q41, y, 32) == 0);
    for (int j = 0; j < 16; j++) {
        CHECK_NEAR(y[j], j * 0.5 - 1, 0);
        CHECK_NEAR(y[16 + j], (15 - j) * 0.5 - 1, 0);
    }
    /* Q5_0: d = 1, weights j - 16 (fifth bit set for j >= 16). */
    uint8_t q50[22] = {0x00, 0x3c, 0x00, 0x00, 0xff, 0xff};
    for (int j = 0; j < 16; j++) q50[6 + j] = (uint8_t)(j | j << 4);
    CHECK(quant_dequantize_row(RL_TYPE_Q5_0, q50, y, 32) == 0);
    for (int j = 0; j < 32; j++) CHECK_EQ_INT(y[j], j - 16);
    /* Q5_1: d = 0.5, m = -1, fifth bit on odd weights: j%16 + 16*(j odd). */
    uint8_t q51[24] = {0x00, 0x38, 0x00, 0xbc, 0xaa, 0xaa, 0xaa, 0xaa};
    for (int j = 0; j < 16; j++) q51[8 + j] = (uint8_t)(j | j << 4);
    CHECK(quant_dequantize_row(RL_TYPE_Q5_1, q51, y, 32) == 0);
    for (int j = 0; j < 32; j++) CHECK_NEAR(y[j], (j % 16 + 16 * (j & 1)) * 0.5 - 1, 0);
    /* Q8_0: d = 0.25 (0x3400), qs = j - 16. */
    uint8_t q80[34] = {0x00, 0x34};
    for (int j = 0; j < 32; j++) q80[2 + j] = (uint8_t)(int8_t)(j - 16);
    CHECK(quant_dequantize_row(RL_TYPE_Q8_0, q80, y, 32) == 0);
    for (int j = 0; j < 32; j++) CHECK_NEAR(y[j], (j - 16) * 0.25, 0);

    /* Q4_K: d = 1, dmin = 0.5; sub-block j has scale j+1 and min 2j+40
     * (so mins 4-7 need their top bits); every quant of sub-block j is
     * (j*5) % 16. Weight = (j+1)*q - 0.5*(2j+40). */
    uint8_t q4k[144] = {0x00, 0x3c, 0x00, 0x38};
    for (int j = 0; j < 8; j++) {
        int sc = j + 1, m = 2 * j + 40;
        if (j < 4) {
            q4k[4 + j] |= (uint8_t)sc;
            q4k[8 + j] |= (uint8_t)m;
        } else {
            q4k[8 + j] = (uint8_t)((sc & 15) | (m & 15) << 4);
            q4k[4 + j - 4] |= (uint8_t)((sc >> 4) << 6);
            q4k[4 + j] |= (uint8_t)((m >> 4) << 6);
        }
    }
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            q4k[16 + 32 * c + l] = (uint8_t)(((2 * c) * 5 % 16) | (((2 * c + 1) * 5 % 16) << 4));
    CHECK(quant_dequantize_row(RL_TYPE_Q4_K, q4k, y, 256) == 0);
    for (int e = 0; e < 256; e++) {
        int j = e / 32;
        CHECK_NEAR(y[e], (j + 1) * ((j * 5) % 16) - 0.5 * (2 * j + 40), 0);
    }
    /* Q5_K: the same block plus the fifth bit set for odd elements. */
    uint8_t q5k[176] = {0};
    memcpy(q5k, q4k, 16);
    memcpy(q5k + 48, q4k + 16, 128);
    for (int l = 0; l < 32; l++) q5k[16 + l] = (l & 1) ? 0xff : 0;
    CHECK(quant_dequantize_row(RL_TYPE_Q5_K, q5k, y, 256) == 0);
    for (int e = 0; e < 256; e++) {
        int j = e / 32, q = (j * 5) % 16 + ((e & 1) ? 16 : 0);
        CHECK_NEAR(y[e], (j + 1) * q - 0.5 * (2 * j + 40), 0);
    }
    /* Q6_K: d = 0.5; scale of group g is g - 8; quant value of element e is
     * e % 64, so weight = 0.5 * (g-8) * (e%64 - 32). */
    uint8_t q6k[210] = {0};
    for (int e = 0; e < 256; e++) {
        int v = e % 64, h = e / 128, k = (e % 128) / 32, l = e % 32;
        q6k[64 * h + 32 * (k & 1) + l] |= (uint8_t)((v & 15) << (k < 2 ? 0 : 4));
        q6k[128 + 32 * h + l] |= (uint8_t)((v >> 4) << (2 * k));
    }
    for (int g = 0; g < 16; g++) q6k[192 + g] = (uint8_t)(int8_t)(g - 8);
    q6k[208] = 0x00, q6k[209] = 0x38;
    CHECK(quant_dequantize_row(RL_TYPE_Q6_K, q6k, y, 256) == 0);
    for (int e = 0; e < 256; e++) CHECK_NEAR(y[e], 0.5 * (e / 16 - 8) * (e % 64 - 32), 0);
}

static void test_known_quant(void) {
    float x[256];
    uint8_t b[300];
    /* Q8_0 of integers with amax 127: d = 1, qs = x. */
    for (int j = 0; j < 32; j++) x[j] = (float)(j * 7 - 100);
    x[5] = -127;
    CHECK(quant_quantize_row(RL_TYPE_Q8_0, x, b, 32) == 0);
    CHECK_EQ_INT(rd16(b), 0x3c00);
    for (int j = 0; j < 32; j++) CHECK_EQ_INT((int8_t)b[2 + j], x[j]);
    /* Q8_1 adds s = d * sum(q). */
    CHECK(quant_quantize_row(RL_TYPE_Q8_1, x, b, 32) == 0);
    int sum = 0;
    for (int j = 0; j < 32; j++) sum += (int)x[j];
    CHECK_EQ_INT(rd16(b), 0x3c00);
    CHECK_NEAR(rdh(b + 2), rl_f16_to_f32(rl_f32_to_f16((float)sum)), 0);
    for (int j = 0; j < 32; j++) CHECK_EQ_INT((int8_t)b[4 + j], x[j]);
    /* Q4_0: largest magnitude -8 gives d = 1 and q = x + 8. */
    for (int j = 0; j < 32; j++) x[j] = (float)(j % 16 - 8);
    CHECK(quant_quantize_row(RL_TYPE_Q4_0, x, b, 32) == 0);
    CHECK_EQ_INT(rd16(b), 0x3c00);
    for (int j = 0; j < 16; j++) CHECK_EQ_INT(b[2 + j], j | j << 4);
    /* Q5_0: -16..15, largest magnitude -16: d = 1, q = x + 16. */
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16);
    CHECK(quant_quantize_row(RL_TYPE_Q5_0, x, b, 32) == 0);
    CHECK_EQ_INT(rd16(b), 0x3c00);
    CHECK(b[2] == 0 && b[3] == 0 && b[4] == 0xff && b[5] == 0xff);
    for (int j = 0; j < 16; j++) CHECK_EQ_INT(b[6 + j], j | j << 4);
    /* Q5_1: values 1, 3, ..., 63: d = 2, m = 1, q = j. */
    for (int j = 0; j < 32; j++) x[j] = (float)(2 * j + 1);
    CHECK(quant_quantize_row(RL_TYPE_Q5_1, x, b, 32) == 0);
    CHECK_EQ_INT(rd16(b), 0x4000);
    CHECK_EQ_INT(rd16(b + 2), 0x3c00);
    CHECK(b[4] == 0 && b[5] == 0 && b[6] == 0xff && b[7] == 0xff);
    for (int j = 0; j < 16; j++) CHECK_EQ_INT(b[8 + j], j | j << 4);
    /* Q4_1: values 1, 3, ..., 31: d = 2, m = 1, q = (x-1)/2. */
    for (int j = 0; j < 32; j++) x[j] = (float)((j % 16) * 2 + 1);
    CHECK(quant_quantize_row(RL_TYPE_Q4_1, x, b, 32) == 0);
    CHECK_EQ_INT(rd16(b), 0x4000);
    CHECK_EQ_INT(rd16(b + 2), 0x3c00);
    for (int j = 0; j < 16; j++) CHECK_EQ_INT(b[4 + j], j | j << 4);
    /* Q8_K of j-128: scale 127/128, halves (at +-63.5) round to even. */
    for (int j = 0; j < 256; j++) x[j] = (float)(j - 128);
    CHECK(quant_quantize_row(RL_TYPE_Q8_K, x, b, 256) == 0);
    block_q8_K q8k;
    memcpy(&q8k, b, sizeof q8k);
    CHECK_NEAR(q8k.d, 128.0 / 127.0, 1e-7);
    for (int j = 0; j < 256; j++) CHECK_EQ_INT(q8k.qs[j], rint(127.0 * (j - 128) / 128.0));
    for (int g = 0; g < 16; g++) {
        int s = 0;
        for (int l = 0; l < 16; l++) s += (int)rint(127.0 * (16 * g + l - 128) / 128.0);
        CHECK_EQ_INT(q8k.bsums[g], s);
    }
    /* F16 and BF16 round to nearest even: 1 + 2^-11 is a tie in F16. */
    x[0] = 1.0f + 1.0f / 2048;
    x[1] = 1.0f + 3.0f / 2048;
    CHECK(quant_quantize_row(RL_TYPE_F16, x, b, 2) == 0);
    CHECK_EQ_INT(rd16(b), 0x3c00);
    CHECK_EQ_INT(rd16(b + 2), 0x3c02);
    x[0] = 1.0f + 1.0f / 256; /* a BF16 tie */
    CHECK(quant_quantize_row(RL_TYPE_BF16, x, b, 1) == 0);
    CHECK_EQ_INT(rd16(b), 0x3f80);
}

/* ---- the shipped models ---- */

typedef struct {
    const char *file;
    double nmse_max[RL_TYPE_COUNT]; /* error bound vs the F16 original, per type */
} shipped;

/* NMSE of a against reference r. */
static double nmse(const float *a, const float *r, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)a[i] - r[i]) * ((double)a[i] - r[i]);
        den += (double)r[i] * r[i];
    }
    return den > 0 ? num / den : num;
}

/* For every quantized tensor of `path`: decode it two ways (quant.c and the
 * decoder above) and compare, compare with the F16 original, and quantize
 * the original again: the bytes must be llama-quantize's. */
static void test_shipped_file(const gguf_file *orig, const char *rel) {
    rl_err err = {0};
    gguf_file *f = gguf_open(shared_path(rel), &err);
    CHECKF(f != NULL, "%s", err.msg);
    if (!f) return;
    int compared = 0;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        if (!quant_supported(t->type) || t->type == RL_TYPE_F32) continue;
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        const gguf_tensor *o = gguf_find_tensor(orig, name);
        CHECKF(o != NULL && o->type == RL_TYPE_F16, "%s: %s has no F16 original", rel, name);
        if (!o || o->type != RL_TYPE_F16) continue;
        const int64_t n = (int64_t)gguf_tensor_nelements(t), cols = (int64_t)t->ne[0];
        CHECK_EQ_INT(n, (int64_t)gguf_tensor_nelements(o));
        float *ref = malloc(sizeof(float) * n), *deq = malloc(sizeof(float) * n);
        uint8_t *requant = malloc(t->size);
        CHECK(quant_dequantize_row(RL_TYPE_F16, o->data, ref, n) == 0);
        CHECK(quant_dequantize_row(t->type, t->data, deq, n) == 0);
        /* row by row, as the engine and llama-quantize work */
        const size_t rb = row_bytes(t->type, cols);
        CHECK(rb * (size_t)(n / cols) == t->size);
        for (int64_t r = 0; r < n / cols; r++)
            CHECK(quant_quantize_row(t->type, ref + r * cols, requant + r * rb, cols) == 0);
        int64_t bad_dec = 0, first_diff = -1;
        for (int64_t e = 0; e < n; e++) {
            float v = decode_elem(t->type, t->data, e);
            if (memcmp(&v, &deq[e], sizeof v) != 0) bad_dec++;
        }
        for (uint64_t k = 0; k < t->size && first_diff < 0; k++)
            if (requant[k] != t->data[k]) first_diff = (int64_t)k;
        CHECKF(bad_dec == 0, "%s %s (%s): %lld elements decode differently", rel, name,
               rl_type_name(t->type), (long long)bad_dec);
        CHECKF(first_diff < 0, "%s %s (%s): re-quantized bytes differ from llama-quantize's at byte %lld",
               rel, name, rl_type_name(t->type), (long long)first_diff);
        double e = nmse(deq, ref, n);
        /* measured on these files: q8_0 2.9e-5, q6_K 3.2e-4, q5_K 1.3e-3,
         * q4_K 5.1e-3, q4_1 6.2e-3, q4_0 7.4e-3; a layout error gives ~1 */
        double bound = t->type == RL_TYPE_Q8_0 ? 5e-5 : t->type == RL_TYPE_Q6_K ? 5e-4
                     : t->type == RL_TYPE_Q5_K ? 2e-3 : t->type == RL_TYPE_Q4_K ? 8e-3 : 1e-2;
        CHECKF(e < bound, "%s %s (%s): NMSE vs F16 %g > %g", rel, name, rl_type_name(t->type), e, bound);
        compared++;
        free(ref);
        free(deq);
        free(requant);
    }
    CHECKF(compared >= 29, "%s: only %d quantized tensors compared", rel, compared);
    gguf_close(f);
}

static void test_shipped(void) {
    rl_err err = {0};
    gguf_file *orig = gguf_open(shared_path("models/synth-s512-f16.gguf"), &err);
    CHECKF(orig != NULL, "%s", err.msg);
    if (!orig) return;
    static const char *FILES[] = {"models/synth-s512-q8_0.gguf", "models/synth-s512-q4_0.gguf",
                                  "models/synth-s512-q4_1.gguf", "models/synth-s512-q4_k_m.gguf",
                                  "models/synth-s512-q5_k_m.gguf", "models/synth-s512-q6_k.gguf"};
    for (size_t i = 0; i < RL_ARRAY_LEN(FILES); i++) test_shipped_file(orig, FILES[i]);

    /* BF16: the shipped file is the F16 weights rounded to BF16. */
    gguf_file *bf = gguf_open(shared_path("models/synth-s512-bf16.gguf"), &err);
    CHECKF(bf != NULL, "%s", err.msg);
    if (bf) {
        const gguf_tensor *t = gguf_find_tensor(bf, "blk.0.ffn_up.weight");
        const gguf_tensor *o = gguf_find_tensor(orig, "blk.0.ffn_up.weight");
        CHECK(t && o && t->type == RL_TYPE_BF16);
        if (t && o && t->type == RL_TYPE_BF16) {
            int64_t n = (int64_t)gguf_tensor_nelements(t);
            float *a = malloc(sizeof(float) * n), *r = malloc(sizeof(float) * n);
            uint8_t *rq = malloc((size_t)n * 2);
            CHECK(quant_dequantize_row(RL_TYPE_BF16, t->data, a, n) == 0);
            CHECK(quant_dequantize_row(RL_TYPE_F16, o->data, r, n) == 0);
            CHECK(nmse(a, r, n) < 1e-4);
            CHECK(quant_quantize_row(RL_TYPE_BF16, r, rq, n) == 0);
            CHECK(memcmp(rq, t->data, (size_t)n * 2) == 0);
            free(a);
            free(r);
            free(rq);
        }
        gguf_close(bf);
    }
    gguf_close(orig);
}

/* ---- round trips ---- */

/* Round-trip NMSE each format stays under on Gaussian-like rows. */
static double nmse_bound(uint32_t t) {
    switch (t) {
    case RL_TYPE_F32: return 0;
    case RL_TYPE_F16: return 1e-6;
    case RL_TYPE_BF16: return 2e-5;
    case RL_TYPE_Q8_0: case RL_TYPE_Q8_1: return 1e-4;
    case RL_TYPE_Q8_K: return 5e-4; /* one scale per 256: outliers cost more */
    case RL_TYPE_Q6_K: return 1e-3;
    case RL_TYPE_Q5_K: case RL_TYPE_Q5_0: case RL_TYPE_Q5_1: return 5e-3;
    default: return 2e-2;
    }
}

/* Re-quantizing a dequantized Q8_0/Q4_0/F16/BF16 row reproduces it: the
 * largest magnitude comes back exactly, so does the scale. (Not Q8_1: its
 * s is computed from the scale before the scale is rounded to fp16.) */
static void test_idempotent(void) {
    const uint32_t types[] = {RL_TYPE_F16, RL_TYPE_BF16, RL_TYPE_Q8_0, RL_TYPE_Q4_0};
    const int64_t n = 32 * 7;
    float x[32 * 7], y[32 * 7];
    uint8_t a[32 * 7 * 4], b[32 * 7 * 4];
    for (size_t k = 0; k < RL_ARRAY_LEN(types); k++) {
        for (int64_t i = 0; i < n; i++) x[i] = gauss() * 3;
        size_t rb = row_bytes(types[k], n);
        CHECK(quant_quantize_row(types[k], x, a, n) == 0);
        CHECK(quant_dequantize_row(types[k], a, y, n) == 0);
        CHECK(quant_quantize_row(types[k], y, b, n) == 0);
        CHECKF(memcmp(a, b, rb) == 0, "%s: re-quantizing changed the row", rl_type_name(types[k]));
    }
}

/* Quantize -> dequantize error stays within what each format promises, for
 * rows of one block and of several. */
static void test_round_trip(void) {
    const int64_t lens[] = {256, 256 * 3, 32 * 8};
    for (size_t li = 0; li < RL_ARRAY_LEN(lens); li++) {
        const int64_t n = lens[li];
        float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
        uint8_t *q = malloc((size_t)n * 4 + 64);
        for (int64_t i = 0; i < n; i++) x[i] = gauss() * (i % 97 == 0 ? 4.0f : 0.5f);
        for (size_t k = 0; k < RL_ARRAY_LEN(ALL_TYPES); k++) {
            uint32_t t = ALL_TYPES[k];
            if (n % quant_block_size(t) != 0) continue;
            CHECK(quant_quantize_row(t, x, q, n) == 0);
            CHECK(quant_dequantize_row(t, q, y, n) == 0);
            /* the independent decoder agrees (quantized types) */
            if (!isnan(decode_elem(t, q, 0))) {
                int64_t bad = 0;
                for (int64_t i = 0; i < n; i++) bad += decode_elem(t, q, i) != y[i];
                CHECKF(bad == 0, "%s: %lld elements decode differently", rl_type_name(t), (long long)bad);
            }
            double e = nmse(y, x, n), bound = nmse_bound(t);
            CHECKF(e <= bound, "%s n=%lld: round-trip NMSE %g > %g", rl_type_name(t), (long long)n, e, bound);
            /* each Q8_0 element is within half a step of its block's scale
             * (plus the fp16 rounding of the scale, up to 2^-11 x 127 steps) */
            if (t == RL_TYPE_Q8_0) {
                for (int64_t bl = 0; bl < n / 32; bl++) {
                    float amax = 0;
                    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[bl * 32 + j]));
                    for (int j = 0; j < 32; j++)
                        CHECK(fabsf(y[bl * 32 + j] - x[bl * 32 + j]) <= amax / 127 * (0.5f + 127.f / 2048) + 1e-7f);
                }
            }
        }
        free(x);
        free(y);
        free(q);
    }
}

/* ---- dot products ---- */

/* quant_dot_ref equals the dot product of the dequantized rows (the
 * integer part is exact, only float rounding of the scales differs), and
 * approximates the float dot product of the unquantized rows. */
static void test_dot(void) {
    const int64_t lens[] = {256, 256 * 5};
    for (size_t li = 0; li < RL_ARRAY_LEN(lens); li++) {
        const int64_t n = lens[li];
        float *w = malloc(sizeof(float) * n), *a = malloc(sizeof(float) * n);
        float *wd = malloc(sizeof(float) * n), *ad = malloc(sizeof(float) * n);
        uint8_t *wq = malloc((size_t)n * 4 + 64), *aq = malloc((size_t)n * 4 + 64);
        for (int trial = 0; trial < 5; trial++) {
            for (int64_t i = 0; i < n; i++) {
                w[i] = gauss() * 0.05f;
                a[i] = gauss() * (trial == 3 ? 10.0f : 1.0f) + (trial == 2 ? 0.5f : 0.0f);
                if (trial == 4) a[i] = w[i] * 20; /* terms all >= 0: no cancellation */
            }
            for (size_t k = 0; k < RL_ARRAY_LEN(WEIGHT_TYPES); k++) {
                uint32_t t = WEIGHT_TYPES[k], dt = quant_dot_type(t);
                CHECK(quant_quantize_row(t, w, wq, n) == 0);
                CHECK(quant_quantize_row(dt, a, aq, n) == 0);
                CHECK(quant_dequantize_row(t, wq, wd, n) == 0);
                CHECK(quant_dequantize_row(dt, aq, ad, n) == 0);
                double exact = 0, mag = 0, orig = 0, norm2 = 0, omag = 0;
                for (int64_t i = 0; i < n; i++) {
                    exact += (double)wd[i] * ad[i];
                    mag += fabs((double)wd[i] * ad[i]);
                    orig += (double)w[i] * a[i];
                    norm2 += ((double)w[i] * a[i]) * ((double)w[i] * a[i]);
                    omag += fabs((double)w[i] * a[i]);
                }
                /* Q4_1's and Q5_1's offset term uses Q8_1's s = d*sum(q), itself
                 * rounded to fp16: allow that rounding on top */
                double slack = 0;
                if (t == RL_TYPE_Q4_1 || t == RL_TYPE_Q5_1)
                    for (int64_t bl = 0; bl < n / 32; bl++)
                        slack += fabs(rdh(wq + (t == RL_TYPE_Q4_1 ? 20 : 24) * bl + 2) * rdh(aq + 36 * bl + 2)) / 2048;
                float got = quant_dot_ref(t, n, wq, aq);
                CHECKF(fabs(got - exact) <= 2e-6 * mag + slack, "%s n=%lld: dot %.9g, dequantized dot %.9g",
                       rl_type_name(t), (long long)n, got, exact);
                /* vs the unquantized rows: within 6 sigma of the error the
                 * two roundings (weights and activations) bring */
                double sigma = sqrt(nmse_bound(t) + nmse_bound(dt)) * sqrt(norm2);
                CHECKF(fabs(got - orig) <= 6 * sigma + 1e-6 * omag, "%s: dot %.9g, float dot %.9g",
                       rl_type_name(t), got, orig);
            }
        }
        free(w);
        free(a);
        free(wd);
        free(ad);
        free(wq);
        free(aq);
    }
    /* dot types as llama.cpp pairs them */
    CHECK_EQ_INT(quant_dot_type(RL_TYPE_Q4_0), RL_TYPE_Q8_0);
    CHECK_EQ_INT(quant_dot_type(RL_TYPE_Q8_0), RL_TYPE_Q8_0);
    CHECK_EQ_INT(quant_dot_type(RL_TYPE_Q4_1), RL_TYPE_Q8_1);
    CHECK_EQ_INT(quant_dot_type(RL_TYPE_Q5_0), RL_TYPE_Q8_0);
    CHECK_EQ_INT(quant_dot_type(RL_TYPE_Q5_1), RL_TYPE_Q8_1);
    CHECK_EQ_INT(quant_dot_type(RL_TYPE_Q4_K), RL_TYPE_Q8_K);
    CHECK_EQ_INT(quant_dot_type(RL_TYPE_Q5_K), RL_TYPE_Q8_K);
    CHECK_EQ_INT(quant_dot_type(RL_TYPE_Q6_K), RL_TYPE_Q8_K);
    CHECK_EQ_INT(quant_dot_type(RL_TYPE_F16), RL_TYPE_F16);
    CHECK_EQ_INT(quant_dot_type(RL_TYPE_BF16), RL_TYPE_BF16);
    CHECK_EQ_INT(quant_dot_type(RL_TYPE_F32), RL_TYPE_F32);
}

/* ---- special rows and bad arguments ---- */

static bool all_finite(const float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(y[i])) return false;
    return true;
}

static void test_special(void) {
    const int64_t n = 512;
    float x[512], y[512];
    uint8_t q[512 * 4], q2[512 * 4], act[512 * 4];
    /* zeros: scale 0, zeros back, dot 0 */
    memset(x, 0, sizeof x);
    for (size_t k = 0; k < RL_ARRAY_LEN(ALL_TYPES); k++) {
        uint32_t t = ALL_TYPES[k];
        memset(q, 0xA5, sizeof q);
        CHECK(quant_quantize_row(t, x, q, n) == 0);
        CHECK(quant_dequantize_row(t, q, y, n) == 0);
        bool zeros = true;
        for (int64_t i = 0; i < n; i++) zeros = zeros && y[i] == 0;
        CHECKF(zeros, "%s: a zero row does not come back as zeros", rl_type_name(t));
        if (t == RL_TYPE_Q8_0 || t == RL_TYPE_Q4_0) CHECK(rdh(q) == 0); /* ggml stores -0 for Q4_0 */
        if (quant_supported(t)) {
            CHECK(quant_quantize_row(quant_dot_type(t), x, act, n) == 0);
            CHECK(quant_dot_ref(t, n, q, act) == 0);
        }
    }
    /* one zero block among normal ones, and tiny values: finite results */
    for (int64_t i = 0; i < n; i++) x[i] = i < 256 ? 0 : gauss() * 1e-30f;
    for (size_t k = 0; k < RL_ARRAY_LEN(ALL_TYPES); k++) {
        CHECK(quant_quantize_row(ALL_TYPES[k], x, q, n) == 0);
        CHECK(quant_dequantize_row(ALL_TYPES[k], q, y, n) == 0);
        CHECKF(all_finite(y, n), "%s: tiny values decode to non-finite", rl_type_name(ALL_TYPES[k]));
    }
    /* NaN and infinity: no crash, no undefined behaviour (the sanitizer
     * build checks), deterministic, and blocks without them unaffected */
    const float specials[] = {NAN, INFINITY, -INFINITY};
    for (size_t s = 0; s < RL_ARRAY_LEN(specials); s++) {
        for (int64_t i = 0; i < n; i++) x[i] = gauss();
        x[3] = specials[s];
        for (size_t k = 0; k < RL_ARRAY_LEN(ALL_TYPES); k++) {
            uint32_t t = ALL_TYPES[k];
            CHECK(quant_quantize_row(t, x, q, n) == 0);
            CHECK(quant_quantize_row(t, x, q2, n) == 0);
            CHECK(memcmp(q, q2, row_bytes(t, n)) == 0);
            CHECK(quant_dequantize_row(t, q, y, n) == 0);
            CHECKF(all_finite(y + 256, 256), "%s: a special value leaked into another block", rl_type_name(t));
            if (quant_supported(t)) {
                CHECK(quant_quantize_row(quant_dot_type(t), x, act, n) == 0);
                (void)quant_dot_ref(t, n, q, act);
            }
        }
    }
    /* bad arguments */
    CHECK(quant_quantize_row(RL_TYPE_Q8_0, x, q, 33) == -1);
    CHECK(quant_quantize_row(RL_TYPE_Q4_K, x, q, 128) == -1);
    CHECK(quant_quantize_row(RL_TYPE_Q2_K, x, q, 256) == -1);
    CHECK(quant_dequantize_row(RL_TYPE_Q6_K, q, y, 100) == -1);
    CHECK(quant_dequantize_row(RL_TYPE_Q2_K, q, y, 256) == -1);
    CHECK(quant_dequantize_row(999, q, y, 256) == -1);
    CHECK(isnan(quant_dot_ref(RL_TYPE_Q4_0, 31, q, act)));
    CHECK(isnan(quant_dot_ref(RL_TYPE_Q8_K, 256, q, act))); /* an activation type, not a weight type */
    CHECK(!quant_supported(RL_TYPE_Q3_K) && !quant_supported(RL_TYPE_Q8_K) && quant_supported(RL_TYPE_Q6_K));
    CHECK_EQ_INT(quant_block_size(RL_TYPE_Q4_K), 256);
    CHECK_EQ_INT(quant_block_size(RL_TYPE_BF16), 1);
    CHECK_EQ_INT(quant_block_size(999), 0);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(test_known_dequant);
    RUN(test_known_quant);
    RUN(test_idempotent);
    RUN(test_round_trip);
    RUN(test_dot);
    RUN(test_special);
    RUN(test_shipped);
    return test_report("test_quant");
}
