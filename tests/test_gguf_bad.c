/*
 * test_gguf_bad.c — the GGUF reader against broken files, and against valid
 * files that use every corner of the format.
 *
 * Files are built byte by byte here (a tiny builder independent of the
 * library's writer), so a test can place any corruption exactly and knows the
 * offset the error must name. Each broken file must be refused with one line
 * "bad.gguf: offset N: <cause>" (N and the cause are checked), code
 * RL_ERR_INPUT, and no crash or leak (this test also runs under ASan/UBSan).
 * Truncating a valid file at every offset, and overwriting every header byte
 * of a real model, must never crash either.
 *
 * The valid files hold every scalar type, arrays of every element type and
 * nested arrays; they must read back value for value, and the library's
 * writer must reproduce them byte for byte.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "test.h"
#include "base/types.h"

/* ---- a byte builder ---- */

typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
} bytes;

static void put(bytes *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
}
static void put_u8(bytes *b, uint8_t v) { put(b, &v, 1); }
static void put_u16(bytes *b, uint16_t v) { put(b, &v, 2); }
static void put_u32(bytes *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(bytes *b, uint64_t v) { put(b, &v, 8); }
static void put_str(bytes *b, const char *s) { put_u64(b, strlen(s)); put(b, s, strlen(s)); }

/* A GGUF file in parts: the counts are set by hand so they can lie. */
typedef struct gg {
    uint32_t version;
    uint64_t n_tensors, n_kv;
    bytes kv, ti, data;
    uint64_t alignment;
} gg;

static gg gg_new(void) { return (gg){.version = 3, .alignment = 32}; }

static void gg_free(gg *g) {
    free(g->kv.p);
    free(g->ti.p);
    free(g->data.p);
}

/* File offset where the next metadata byte / tensor info byte will go. */
static uint64_t kv_at(const gg *g) { return 24 + g->kv.len; }
static uint64_t ti_at(const gg *g) { return 24 + g->kv.len + g->ti.len; }

static void kv_key(gg *g, const char *key, uint32_t type) {
    put_str(&g->kv, key);
    put_u32(&g->kv, type);
    g->n_kv++;
}
static void kv_u32(gg *g, const char *key, uint32_t v) { kv_key(g, key, GGUF_UINT32); put_u32(&g->kv, v); }
static void kv_str(gg *g, const char *key, const char *v) { kv_key(g, key, GGUF_STRING); put_str(&g->kv, v); }

static void tensor_info(gg *g, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t offset) {
    put_str(&g->ti, name);
    put_u32(&g->ti, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) put_u64(&g->ti, ne[d]);
    put_u32(&g->ti, type);
    put_u64(&g->ti, offset);
    g->n_tensors++;
}

/* Header, metadata, tensor infos, padding to the alignment, data, and the
 * data padded to the alignment too (as ggml and our writer do). */
static bytes gg_bytes(const gg *g) {
    bytes b = {0};
    put(&b, "GGUF", 4);
    put_u32(&b, g->version);
    put_u64(&b, g->n_tensors);
    put_u64(&b, g->n_kv);
    put(&b, g->kv.p, g->kv.len);
    put(&b, g->ti.p, g->ti.len);
    while (b.len % g->alignment) put_u8(&b, 0);
    put(&b, g->data.p, g->data.len);
    while (b.len % g->alignment) put_u8(&b, 0);
    return b;
}

/* A small valid model-like file: a few keys and two F32 tensors. */
static gg small_file(void) {
    gg g = gg_new();
    kv_str(&g, "general.architecture", "llama");
    kv_u32(&g, "llama.context_length", 128);
    const char *toks[] = {"<unk>", "<s>", "</s>"};
    kv_key(&g, "tokenizer.ggml.tokens", GGUF_ARRAY);
    put_u32(&g.kv, GGUF_STRING);
    put_u64(&g.kv, 3);
    for (int i = 0; i < 3; i++) put_str(&g.kv, toks[i]);
    uint64_t ne_a[2] = {8, 2}, ne_b[1] = {8};
    tensor_info(&g, "a.weight", 2, ne_a, RL_TYPE_F32, 0);
    tensor_info(&g, "b.weight", 1, ne_b, RL_TYPE_F32, 64);
    for (int i = 0; i < 24; i++) {
        float x = (float)i;
        put(&g.data, &x, 4);
        if (i == 15) while (g.data.len < 64) put_u8(&g.data, 0);
    }
    return g;
}

/* ---- expectations ---- */

static int n_cases;

/* The file must be refused, naming "bad.gguf", `offset` and `cause`. */
static void expect_bad(const char *what, const bytes *b, uint64_t offset, const char *cause) {
    rl_err err = {0};
    char prefix[64];
    n_cases++;
    snprintf(prefix, sizeof prefix, "bad.gguf: offset %llu: ", (unsigned long long)offset);
    gguf_file *f = gguf_open_memory(b->p, b->len, "bad.gguf", &err);
    CHECKF(f == NULL, "%s: accepted", what);
    gguf_close(f);
    if (f) return;
    CHECKF(err.code == RL_ERR_INPUT, "%s: error code %d (%s)", what, err.code, err.msg);
    CHECKF(strncmp(err.msg, prefix, strlen(prefix)) == 0, "%s: message \"%s\" does not start with \"%s\"", what,
           err.msg, prefix);
    CHECKF(strstr(err.msg, cause) != NULL, "%s: message \"%s\" does not mention \"%s\"", what, err.msg, cause);
    CHECKF(strchr(err.msg, '\n') == NULL, "%s: message has a newline: \"%s\"", what, err.msg);
}

static void expect_bad_gg(const char *what, const gg *g, uint64_t offset, const char *cause) {
    bytes b = gg_bytes(g);
    expect_bad(what, &b, offset, cause);
    free(b.p);
}

/* Any outcome but a crash is fine; a refusal must still be a proper one. */
static void expect_no_crash(const char *what, const uint8_t *p, size_t len, bool must_fail) {
    rl_err err = {0};
    gguf_file *f = gguf_open_memory(p, len, "bad.gguf", &err);
    if (must_fail) CHECKF(f == NULL, "%s (%zu bytes): accepted", what, len);
    if (!f) {
        CHECKF(err.code == RL_ERR_INPUT && strncmp(err.msg, "bad.gguf: offset ", 17) == 0 &&
                   !strchr(err.msg, '\n'),
               "%s (%zu bytes): code %d, message \"%s\"", what, len, err.code, err.msg);
        unsigned long long off = strtoull(err.msg + 17, NULL, 10);
        CHECKF(off <= len, "%s: error offset %llu beyond the %zu bytes", what, off, len);
    }
    gguf_close(f);
}

/* ---- the corruptions ---- */

static void header_cases(void) {
    gg g = small_file();
    bytes b = gg_bytes(&g);

    bytes m = {0};
    put(&m, b.p, b.len);
    memcpy(m.p, "GGUX", 4);
    expect_bad("wrong magic", &m, 0, "not a GGUF file");
    uint32_t versions[] = {1, 4, 0, 0x03000000};
    const char *causes[] = {"unsupported GGUF version 1", "unsupported GGUF version 4",
                            "unsupported GGUF version 0", "big-endian"};
    for (int i = 0; i < 4; i++) {
        memcpy(m.p, b.p, b.len);
        memcpy(m.p + 4, &versions[i], 4);
        expect_bad("wrong version", &m, 4, causes[i]);
    }
    bytes empty = {0};
    expect_bad("empty file", &empty, 0, "file is empty");
    bytes short_magic = {.p = b.p, .len = 3};
    expect_bad("truncated magic", &short_magic, 0, "file ends inside the magic number");
    bytes short_count = {.p = b.p, .len = 12};
    expect_bad("truncated tensor count", &short_count, 8, "file ends inside the tensor count");

    memcpy(m.p, b.p, b.len);
    uint64_t absurd = 1ull << 60;
    memcpy(m.p + 8, &absurd, 8);
    expect_bad("absurd tensor count", &m, 8, "tensor count 1152921504606846976 cannot fit");
    memcpy(m.p, b.p, b.len);
    memcpy(m.p + 16, &absurd, 8);
    expect_bad("absurd metadata count", &m, 16, "metadata count 1152921504606846976 cannot fit");
    memcpy(m.p, b.p, b.len);
    uint64_t all = UINT64_MAX;
    memcpy(m.p + 16, &all, 8);
    expect_bad("metadata count 2^64-1", &m, 16, "metadata count");

    /* a tensor count that fits the whole file but not what the metadata leaves */
    memcpy(m.p, b.p, b.len);
    uint64_t n_t = (b.len - 24) / 32;
    memcpy(m.p + 8, &n_t, 8);
    expect_bad("tensor count vs metadata", &m, 8, "left after the metadata");

    free(m.p);
    free(b.p);
    gg_free(&g);

    /* one metadata pair more than present: the next bytes are the padding
     * (an empty key) or, without it, the end of the file */
    g = gg_new();
    kv_str(&g, "general.architecture", "llama");
    kv_u32(&g, "llama.context_length", 128);
    g.n_kv = 3;
    b = gg_bytes(&g);
    expect_bad("one metadata pair too many", &b, kv_at(&g), "metadata key 2 of 3 is empty");
    b.len = kv_at(&g);
    expect_bad("one metadata pair too many, unpadded", &b, kv_at(&g), "file ends inside metadata key");
    free(b.p);
    gg_free(&g);
}

static void metadata_cases(void) {
    gg g = gg_new();
    uint64_t at = kv_at(&g);
    put_u64(&g.kv, 1ull << 62);
    put(&g.kv, "0123456789abcdef", 16); /* enough bytes for one pair */
    g.n_kv = 1;
    expect_bad_gg("huge key length", &g, at, "metadata key length 4611686018427387904 exceeds");
    gg_free(&g);

    g = gg_new();
    kv_key(&g, "s", GGUF_STRING);
    at = kv_at(&g);
    put_u64(&g.kv, UINT64_MAX);
    expect_bad_gg("huge string length", &g, at, "string length 18446744073709551615 exceeds");
    gg_free(&g);

    g = gg_new();
    kv_key(&g, "t", 13);
    expect_bad_gg("unknown value type", &g, kv_at(&g) - 4, "metadata key 't' has unknown value type 13");
    gg_free(&g);

    g = gg_new();
    kv_key(&g, "a", GGUF_ARRAY);
    at = kv_at(&g);
    put_u32(&g.kv, 99);
    put_u64(&g.kv, 1);
    expect_bad_gg("unknown array element type", &g, at, "unknown array element type 99");
    gg_free(&g);

    g = gg_new();
    kv_key(&g, "a", GGUF_ARRAY);
    at = kv_at(&g);
    put_u32(&g.kv, GGUF_UINT32);
    put_u64(&g.kv, 1ull << 62);
    expect_bad_gg("huge array length", &g, at + 4, "array of 4611686018427387904 uint32 needs more bytes");
    gg_free(&g);

    g = gg_new();
    kv_key(&g, "a", GGUF_ARRAY);
    at = kv_at(&g);
    put_u32(&g.kv, GGUF_UINT64);
    put_u64(&g.kv, 1ull << 61); /* 2^61 x 8 bytes overflows 64 bits */
    expect_bad_gg("array byte count overflow", &g, at + 4, "needs more bytes");
    gg_free(&g);

    g = gg_new();
    kv_key(&g, "a", GGUF_ARRAY);
    at = kv_at(&g);
    put_u32(&g.kv, GGUF_STRING);
    put_u64(&g.kv, 1000000);
    put_str(&g.kv, "x");
    expect_bad_gg("huge string array length", &g, at + 4, "array of 1000000 string cannot fit");
    gg_free(&g);

    g = gg_new();
    kv_key(&g, "a", GGUF_ARRAY);
    put_u32(&g.kv, GGUF_STRING);
    put_u64(&g.kv, 3);
    put_str(&g.kv, "x");
    at = kv_at(&g);
    put_u64(&g.kv, 100); /* second string claims more than is left */
    put_str(&g.kv, "yy");
    expect_bad_gg("string inside an array too long", &g, at, "string length 100 exceeds");
    gg_free(&g);
}

/* Metadata whose structure is wrong: nesting, duplicate or empty keys,
 * a value cut short, the alignment key. */
static void metadata_structure_cases(void) {
    gg g;
    uint64_t at;

    /* arrays nested one deeper than allowed: 9 array headers */
    g = gg_new();
    kv_key(&g, "deep", GGUF_ARRAY);
    uint64_t deepest = 0;
    for (int d = 0; d < 9; d++) {
        deepest = kv_at(&g);
        put_u32(&g.kv, GGUF_ARRAY);
        put_u64(&g.kv, 1);
    }
    expect_bad_gg("nested too deep", &g, deepest, "nested more than 8 deep");
    gg_free(&g);

    g = gg_new();
    kv_u32(&g, "x", 1);
    kv_u32(&g, "y", 2);
    at = kv_at(&g);
    kv_u32(&g, "x", 3);
    expect_bad_gg("duplicate key", &g, at, "duplicate metadata key 'x'");
    gg_free(&g);

    g = gg_new();
    at = kv_at(&g);
    kv_u32(&g, "", 1);
    expect_bad_gg("empty key", &g, at, "is empty");
    gg_free(&g);

    /* a name with a newline and control bytes is escaped, never printed raw */
    g = gg_new();
    kv_u32(&g, "a\nb\x01", 1);
    at = kv_at(&g);
    kv_u32(&g, "a\nb\x01", 2);
    expect_bad_gg("duplicate key with a newline", &g, at, "duplicate metadata key 'a\\x0ab\\x01'");
    gg_free(&g);

    g = gg_new();
    kv_u32(&g, "ok", 1);
    kv_key(&g, "tokenizer.ggml.model", GGUF_STRING);
    put_u64(&g.kv, 5);
    put(&g.kv, "ab", 2);
    {
        bytes b = gg_bytes(&g);
        b.len = kv_at(&g); /* cut right after "ab": the string wants 5 */
        expect_bad("truncated string value", &b, kv_at(&g) - 10, "(in metadata 'tokenizer.ggml.model')");
        free(b.p);
    }
    gg_free(&g);

    const struct { uint32_t type; uint64_t value; const char *cause; } aligns[] = {
        {GGUF_UINT32, 0, "general.alignment is 0 (must be a power of two)"},
        {GGUF_UINT32, 3, "general.alignment is 3 (must be a power of two)"},
        {GGUF_UINT32, 48, "general.alignment is 48"},
        {GGUF_UINT64, 32, "general.alignment has type uint64 (must be uint32)"},
        {GGUF_INT32, 32, "general.alignment has type int32"},
    };
    for (size_t i = 0; i < sizeof aligns / sizeof *aligns; i++) {
        g = gg_new();
        kv_u32(&g, "x", 1);
        at = kv_at(&g);
        kv_key(&g, "general.alignment", aligns[i].type);
        if (aligns[i].type == GGUF_UINT64) put_u64(&g.kv, aligns[i].value);
        else put_u32(&g.kv, (uint32_t)aligns[i].value);
        expect_bad_gg("bad alignment", &g, at, aligns[i].cause);
        gg_free(&g);
    }
}

/* The entries that cost the reader more memory than their bytes in the
 * file are capped in number (gguf.h); an array of strings costs 8 bytes per
 * string, and a big one reads back string for string. */
static void cost_caps(void) {
    gg g = gg_new();
    for (uint32_t i = 0; i <= GGUF_MAX_KV; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%u", i);
        kv_key(&g, key, GGUF_UINT8);
        put_u8(&g.kv, 1);
    }
    expect_bad_gg("too many keys", &g, 16, "metadata count 65537 is more than the 65536 rackllm reads");
    gg_free(&g);

    g = gg_new();
    kv_key(&g, "arrays", GGUF_ARRAY);
    put_u32(&g.kv, GGUF_ARRAY);
    put_u64(&g.kv, GGUF_MAX_NESTED + 1ull);
    uint64_t at = kv_at(&g);
    for (uint32_t i = 0; i <= GGUF_MAX_NESTED; i++) {
        put_u32(&g.kv, GGUF_UINT8);
        put_u64(&g.kv, 0);
    }
    expect_bad_gg("too many nested arrays", &g, at, "more than 65536 arrays inside arrays");
    gg_free(&g);

    g = gg_new();
    kv_key(&g, "strings", GGUF_ARRAY);
    put_u32(&g.kv, GGUF_STRING);
    put_u64(&g.kv, 300000);
    for (uint32_t i = 0; i < 300000; i++) put_str(&g.kv, i % 7 ? "" : "seven");
    bytes b = gg_bytes(&g);
    rl_err err = {0};
    gguf_file *f = gguf_open_memory(b.p, b.len, "many.gguf", &err);
    const gguf_value *a = f ? gguf_get_arr(f, "strings", GGUF_STRING) : NULL;
    CHECKF(a != NULL, "%s", err.msg);
    bool same = a && a->arr.n == 300000 && !a->arr.items;
    for (uint32_t i = 0; same && i < 300000; i++) same = gguf_str_eq(gguf_arr_str(a, i), i % 7 ? "" : "seven");
    CHECK(same);
    CHECK(a && gguf_arr_str(a, 300000).ptr == NULL);
    gguf_close(f);
    free(b.p);
    gg_free(&g);
}

/* One tensor info after a valid header; the case says what is wrong. */
static void tensor_cases(void) {
    gg g = gg_new();
    uint64_t ne[5] = {32, 2, 1, 1, 1};
    tensor_info(&g, "t0", 0, ne, RL_TYPE_F32, 0);
    expect_bad_gg("n_dims 0", &g, 24 + 8 + 2, "tensor 't0' has 0 dimensions (1 to 4 allowed)");
    gg_free(&g);

    g = gg_new();
    tensor_info(&g, "t5", 5, ne, RL_TYPE_F32, 0);
    expect_bad_gg("n_dims 5", &g, 24 + 8 + 2, "tensor 't5' has 5 dimensions");
    gg_free(&g);

    g = gg_new();
    uint64_t zero[2] = {32, 0};
    tensor_info(&g, "z", 2, zero, RL_TYPE_F32, 0);
    expect_bad_gg("zero dimension", &g, 24 + 8 + 1 + 4 + 8, "tensor 'z' has an invalid shape (dimension 1 is 0)");
    gg_free(&g);

    g = gg_new();
    uint64_t big[3] = {1ull << 32, 1ull << 20, 1ull << 12};
    tensor_info(&g, "big", 3, big, RL_TYPE_F32, 0);
    expect_bad_gg("element count overflow", &g, 24 + 8 + 3 + 4 + 16, "overflows 64 bits");
    gg_free(&g);

    g = gg_new();
    uint64_t neg[1] = {UINT64_MAX}; /* -1 as ggml's int64 */
    tensor_info(&g, "neg", 1, neg, RL_TYPE_F32, 0);
    expect_bad_gg("negative dimension", &g, 24 + 8 + 3 + 4, "invalid shape");
    gg_free(&g);

    g = gg_new();
    uint64_t f16_huge[2] = {1ull << 62, 1}; /* elements fit, 2 bytes each do not */
    tensor_info(&g, "huge", 2, f16_huge, RL_TYPE_F32, 0);
    expect_bad_gg("byte size overflow", &g, 24 + 8 + 4, "tensor 'huge' is too large");
    gg_free(&g);

    uint32_t unknown_types[] = {4, 5, 31, 43, 1000, UINT32_MAX};
    for (size_t i = 0; i < sizeof unknown_types / sizeof *unknown_types; i++) {
        g = gg_new();
        tensor_info(&g, "u", 1, ne, unknown_types[i], 0);
        char cause[64];
        snprintf(cause, sizeof cause, "tensor 'u' has unknown type %u", unknown_types[i]);
        expect_bad_gg("unknown tensor type", &g, 24 + 8 + 1 + 4 + 8, cause);
        gg_free(&g);
    }

    g = gg_new();
    uint64_t odd[2] = {33, 4};
    tensor_info(&g, "q", 2, odd, RL_TYPE_Q4_0, 0);
    expect_bad_gg("row not whole blocks", &g, 24 + 8 + 1 + 4,
                  "row length 33 is not a multiple of q4_0's block size 32");
    gg_free(&g);

    g = gg_new();
    uint64_t k[1] = {128};
    tensor_info(&g, "k", 1, k, RL_TYPE_Q4_K, 0);
    expect_bad_gg("row shorter than a K block", &g, 24 + 8 + 1 + 4, "q4_K's block size 256");
    gg_free(&g);

    g = gg_new();
    uint64_t one[1] = {8};
    tensor_info(&g, "m", 1, one, RL_TYPE_F32, 4);
    put(&g.data, "0123456789abcdef0123456789abcdef", 32);
    expect_bad_gg("misaligned offset", &g, 24 + 8 + 1 + 4 + 8 + 4,
                  "tensor 'm' data offset 4 is not a multiple of the alignment 32");
    gg_free(&g);
}

/* Where the tensors' data lies: alignment, the end of the file, overlaps,
 * names. */
static void tensor_layout_cases(void) {
    gg g;
    uint64_t one[1] = {8}; /* 32 bytes of F32 */

    /* a custom alignment applies to the offsets */
    g = gg_new();
    kv_u32(&g, "general.alignment", 64);
    g.alignment = 64;
    uint64_t off_at = ti_at(&g) + 8 + 1 + 4 + 8 + 4;
    tensor_info(&g, "m", 1, one, RL_TYPE_F32, 32);
    put(&g.data, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", 64);
    expect_bad_gg("offset aligned to 32, not 64", &g, off_at, "not a multiple of the alignment 64");
    gg_free(&g);

    g = gg_new();
    tensor_info(&g, "far", 1, one, RL_TYPE_F32, 1ull << 40);
    put(&g.data, "0123456789abcdef0123456789abcdef", 32);
    expect_bad_gg("tensor past end", &g, 24 + 8 + 3 + 4 + 8 + 4, "tensor 'far' (32 bytes at data offset 1099511627776) "
                                                                 "extends past the end of the file");
    gg_free(&g);

    g = gg_new();
    tensor_info(&g, "wrap", 1, one, RL_TYPE_F32, UINT64_MAX - 31); /* offset + size wraps around */
    put(&g.data, "0123456789abcdef0123456789abcdef", 32);
    expect_bad_gg("offset + size wraps", &g, 24 + 8 + 4 + 4 + 8 + 4, "extends past the end");
    gg_free(&g);

    g = gg_new();
    uint64_t n64[1] = {64}; /* 256 bytes, only 32 present */
    tensor_info(&g, "long", 1, n64, RL_TYPE_F32, 0);
    put(&g.data, "0123456789abcdef0123456789abcdef", 32);
    expect_bad_gg("tensor longer than the data", &g, 24 + 8 + 4 + 4 + 8 + 4, "extends past the end");
    gg_free(&g);

    g = gg_new();
    tensor_info(&g, "only", 1, one, RL_TYPE_F32, 0);
    {
        bytes b = gg_bytes(&g); /* no data section at all, and short of the padding */
        b.len = ti_at(&g) + 3;
        expect_bad("no data section", &b, ti_at(&g), "file ends before the tensor data section");
        free(b.p);
    }
    gg_free(&g);

    g = gg_new();
    uint64_t n16[1] = {16}; /* 64 bytes */
    tensor_info(&g, "first", 1, n16, RL_TYPE_F32, 0);
    uint64_t second_at = ti_at(&g) + 8 + 6 + 4 + 8 + 4;
    tensor_info(&g, "second", 1, n16, RL_TYPE_F32, 32);
    for (int i = 0; i < 96; i++) put_u8(&g.data, (uint8_t)i);
    expect_bad_gg("overlapping tensors", &g, second_at, "tensors 'first' (data offset 0, 64 bytes) and 'second' "
                                                        "(data offset 32, 64 bytes) overlap");
    gg_free(&g);

    g = gg_new();
    uint64_t third_at;
    tensor_info(&g, "c", 1, one, RL_TYPE_F32, 64); /* same offset, listed first */
    tensor_info(&g, "a", 1, one, RL_TYPE_F32, 0);
    third_at = ti_at(&g) + 8 + 1 + 4 + 8 + 4;
    tensor_info(&g, "b", 1, one, RL_TYPE_F32, 64);
    for (int i = 0; i < 96; i++) put_u8(&g.data, (uint8_t)i);
    expect_bad_gg("two tensors at one offset", &g, third_at, "overlap");
    gg_free(&g);

    g = gg_new();
    tensor_info(&g, "same", 1, one, RL_TYPE_F32, 0);
    tensor_info(&g, "other", 1, one, RL_TYPE_F32, 32);
    uint64_t dup_at = ti_at(&g);
    tensor_info(&g, "same", 1, one, RL_TYPE_F32, 64);
    for (int i = 0; i < 96; i++) put_u8(&g.data, (uint8_t)i);
    expect_bad_gg("duplicate tensor name", &g, dup_at, "duplicate tensor name 'same'");
    gg_free(&g);

    g = gg_new();
    tensor_info(&g, "", 1, one, RL_TYPE_F32, 0);
    put_u64(&g.ti, 1ull << 50); /* a second tensor whose name claims 2^50 bytes */
    g.n_tensors = 2;
    put(&g.data, "0123456789abcdef0123456789abcdef", 32);
    expect_bad_gg("huge tensor name length", &g, 24 + 8 + 4 + 8 + 4 + 8, "tensor name length 1125899906842624");
    gg_free(&g);
}

/* ---- no crash, whatever the damage ---- */

static void truncations(void) {
    gg g = small_file();
    bytes b = gg_bytes(&g);
    uint64_t data_start = b.len - 96; /* two tensors: 64 + 32 bytes (32 of them padding after b) */
    /* every shorter prefix up to the last tensor's end is refused */
    for (size_t len = 0; len < data_start + 64 + 32; len++) {
        uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees any read past it */
        memcpy(copy, b.p, len);
        expect_no_crash("truncated small file", copy, len, true);
        free(copy);
    }
    expect_no_crash("whole small file", b.p, b.len, false);
    rl_err err = {0};
    gguf_file *f = gguf_open_memory(b.p, b.len, "small.gguf", &err);
    CHECKF(f != NULL, "small file: %s", err.msg);
    if (f) CHECK_EQ_INT(f->data_offset, data_start);
    gguf_close(f);

    /* every single byte of the file overwritten with a few values */
    const uint8_t values[] = {0x00, 0xff, 0x7f, 0x80, 0x01, 0x20};
    uint8_t *copy = malloc(b.len);
    for (size_t i = 0; i < b.len; i++) {
        for (size_t v = 0; v < sizeof values; v++) {
            memcpy(copy, b.p, b.len);
            copy[i] = values[v];
            expect_no_crash("small file, one byte changed", copy, b.len, false);
        }
    }
    free(copy);
    free(b.p);
    gg_free(&g);
}

/* A real model: every prefix of its header region, and every header byte
 * replaced, must be handled. */
static void real_file(void) {
    const char *path = shared_path("models/stories260K.gguf");
    FILE *in = fopen(path, "rb");
    CHECKF(in != NULL, "cannot open %s", path);
    if (!in) return;
    fseek(in, 0, SEEK_END);
    long size = ftell(in);
    fseek(in, 0, SEEK_SET);
    uint8_t *all = malloc((size_t)size);
    CHECK(fread(all, 1, (size_t)size, in) == (size_t)size);
    fclose(in);
    rl_err err = {0};
    gguf_file *f = gguf_open_memory(all, (uint64_t)size, "stories260K.gguf", &err);
    CHECKF(f != NULL, "%s", err.msg);
    uint64_t header = f ? f->data_offset : 0;
    gguf_close(f);
    for (uint64_t len = 0; len < header; len++) expect_no_crash("stories260K prefix", all, len, true);
    uint8_t *copy = malloc((size_t)size);
    memcpy(copy, all, (size_t)size);
    for (uint64_t i = 0; i < header; i++) {
        uint8_t keep = copy[i];
        copy[i] = keep ^ 0xff;
        expect_no_crash("stories260K header byte flipped", copy, (size_t)size, false);
        copy[i] = keep;
    }
    free(copy);
    free(all);
}

/* ---- valid files with every kind of value ---- */

/* Nested array [["a","bc"],[],["d"]] and [[1,2],[3]] and a depth-8 chain. */
static void put_nested(gg *g) {
    kv_key(g, "nest.strings", GGUF_ARRAY);
    put_u32(&g->kv, GGUF_ARRAY);
    put_u64(&g->kv, 3);
    put_u32(&g->kv, GGUF_STRING); put_u64(&g->kv, 2); put_str(&g->kv, "a"); put_str(&g->kv, "bc");
    put_u32(&g->kv, GGUF_STRING); put_u64(&g->kv, 0);
    put_u32(&g->kv, GGUF_STRING); put_u64(&g->kv, 1); put_str(&g->kv, "d");

    kv_key(g, "nest.ints", GGUF_ARRAY);
    put_u32(&g->kv, GGUF_ARRAY);
    put_u64(&g->kv, 2);
    put_u32(&g->kv, GGUF_INT32); put_u64(&g->kv, 2); put_u32(&g->kv, 1); put_u32(&g->kv, (uint32_t)-2);
    put_u32(&g->kv, GGUF_INT32); put_u64(&g->kv, 1); put_u32(&g->kv, 3);

    kv_key(g, "nest.deep", GGUF_ARRAY); /* 8 array levels, the innermost holds one uint8 */
    for (int d = 0; d < 7; d++) {
        put_u32(&g->kv, GGUF_ARRAY);
        put_u64(&g->kv, 1);
    }
    put_u32(&g->kv, GGUF_UINT8);
    put_u64(&g->kv, 1);
    put_u8(&g->kv, 42);
}

static gg every_type_file(void) {
    gg g = gg_new();
    kv_key(&g, "v.u8", GGUF_UINT8); put_u8(&g.kv, 200);
    kv_key(&g, "v.i8", GGUF_INT8); put_u8(&g.kv, (uint8_t)-100);
    kv_key(&g, "v.u16", GGUF_UINT16); put_u16(&g.kv, 60000);
    kv_key(&g, "v.i16", GGUF_INT16); put_u16(&g.kv, (uint16_t)-30000);
    kv_key(&g, "v.u32", GGUF_UINT32); put_u32(&g.kv, 4000000000u);
    kv_key(&g, "v.i32", GGUF_INT32); put_u32(&g.kv, (uint32_t)-2000000000);
    float f32 = 1.5f;
    kv_key(&g, "v.f32", GGUF_FLOAT32); put(&g.kv, &f32, 4);
    kv_key(&g, "v.bool", GGUF_BOOL); put_u8(&g.kv, 1);
    kv_key(&g, "v.str", GGUF_STRING); put_str(&g.kv, "h\xc3\xa9llo\n\"q\"");
    kv_key(&g, "v.u64", GGUF_UINT64); put_u64(&g.kv, (1ull << 63) + 5);
    kv_key(&g, "v.i64", GGUF_INT64); put_u64(&g.kv, (uint64_t)-(1ll << 62));
    double f64 = 0.1;
    kv_key(&g, "v.f64", GGUF_FLOAT64); put(&g.kv, &f64, 8);
    kv_key(&g, "v.empty", GGUF_STRING); put_str(&g.kv, "");

    /* arrays of every fixed-size type: elements 1, 2, 3 (bool: 1, 0, 1) */
    for (uint32_t t = 0; t < GGUF_VTYPE_COUNT; t++) {
        if (t == GGUF_STRING || t == GGUF_ARRAY) continue;
        char key[32];
        snprintf(key, sizeof key, "arr.%s", gguf_vtype_name(t));
        kv_key(&g, key, GGUF_ARRAY);
        put_u32(&g.kv, t);
        put_u64(&g.kv, 3);
        for (int i = 1; i <= 3; i++) {
            int v = t == GGUF_BOOL ? i % 2 : i;
            if (t == GGUF_FLOAT32) { float x = (float)v; put(&g.kv, &x, 4); }
            else if (t == GGUF_FLOAT64) { double x = v; put(&g.kv, &x, 8); }
            else if (t == GGUF_UINT8 || t == GGUF_INT8 || t == GGUF_BOOL) put_u8(&g.kv, (uint8_t)v);
            else if (t == GGUF_UINT16 || t == GGUF_INT16) put_u16(&g.kv, (uint16_t)v);
            else if (t == GGUF_UINT32 || t == GGUF_INT32) put_u32(&g.kv, (uint32_t)v);
            else put_u64(&g.kv, (uint64_t)v);
        }
    }
    kv_key(&g, "arr.empty", GGUF_ARRAY);
    put_u32(&g.kv, GGUF_FLOAT32);
    put_u64(&g.kv, 0);
    put_nested(&g);

    /* tensors: F32 [8, 2], Q8_0 [32, 1], F16 [4] */
    uint64_t ne_a[2] = {8, 2}, ne_b[2] = {32, 1}, ne_c[1] = {4};
    tensor_info(&g, "a", 2, ne_a, RL_TYPE_F32, 0);
    tensor_info(&g, "b", 2, ne_b, RL_TYPE_Q8_0, 64);
    tensor_info(&g, "c", 1, ne_c, RL_TYPE_F16, 128);
    for (int i = 0; i < 136; i++) put_u8(&g.data, i < 98 || i >= 128 ? (uint8_t)(i * 7) : 0); /* gaps are zero */
    return g;
}

static void check_metadata(const gguf_file *f) {
    uint64_t u;
    double d;
    bool b;
    gguf_str s;
    const gguf_kv *kv;
    CHECK(gguf_get_u64(f, "v.u8", &u) && u == 200);
    CHECK((kv = gguf_find(f, "v.i8")) && kv->val.type == GGUF_INT8 && kv->val.i64 == -100);
    CHECK(gguf_get_u64(f, "v.u16", &u) && u == 60000);
    CHECK((kv = gguf_find(f, "v.i16")) && kv->val.type == GGUF_INT16 && kv->val.i64 == -30000);
    CHECK(gguf_get_u64(f, "v.u32", &u) && u == 4000000000u);
    CHECK((kv = gguf_find(f, "v.i32")) && kv->val.type == GGUF_INT32 && kv->val.i64 == -2000000000);
    CHECK(!gguf_get_u64(f, "v.i32", &u)); /* negative is not unsigned */
    CHECK(gguf_get_f64(f, "v.f32", &d) && d == 1.5);
    CHECK(gguf_get_bool(f, "v.bool", &b) && b);
    CHECK(gguf_get_str(f, "v.str", &s) && gguf_str_eq(s, "h\xc3\xa9llo\n\"q\""));
    CHECK(gguf_get_u64(f, "v.u64", &u) && u == (1ull << 63) + 5);
    CHECK((kv = gguf_find(f, "v.i64")) && kv->val.type == GGUF_INT64 && kv->val.i64 == -(1ll << 62));
    CHECK(gguf_get_f64(f, "v.f64", &d) && d == 0.1);
    CHECK(gguf_get_str(f, "v.empty", &s) && s.len == 0);
    CHECK(!gguf_get_str(f, "v.u8", &s) && !gguf_get_bool(f, "v.u8", &b) && !gguf_get_u64(f, "v.none", &u));

    for (uint32_t t = 0; t < GGUF_VTYPE_COUNT; t++) {
        if (t == GGUF_STRING || t == GGUF_ARRAY) continue;
        char key[32];
        snprintf(key, sizeof key, "arr.%s", gguf_vtype_name(t));
        const gguf_value *a = gguf_get_arr(f, key, t);
        CHECKF(a && a->arr.n == 3, "%s", key);
        if (!a) continue;
        for (uint64_t i = 0; i < 3; i++) {
            int64_t iv;
            double want = t == GGUF_BOOL ? (double)((i + 1) % 2) : (double)(i + 1);
            if (t == GGUF_BOOL) CHECKF(gguf_arr_i64(a, i, &iv) && iv == (int64_t)want, "%s[%llu]", key, (unsigned long long)i);
            else CHECKF(gguf_arr_f64(a, i, &d) && d == want, "%s[%llu]", key, (unsigned long long)i);
        }
        CHECK(!gguf_arr_f64(a, 3, &d)); /* past the end */
    }
    const gguf_value *e = gguf_get_arr(f, "arr.empty", GGUF_FLOAT32);
    CHECK(e && e->arr.n == 0);

    const gguf_value *ns = gguf_get_arr(f, "nest.strings", GGUF_ARRAY);
    CHECK(ns && ns->arr.n == 3 && ns->arr.items);
    if (ns && ns->arr.items) {
        const gguf_value *x = ns->arr.items;
        CHECK(x[0].type == GGUF_ARRAY && x[0].arr.type == GGUF_STRING && x[0].arr.n == 2);
        CHECK(x[0].arr.str_at && gguf_str_eq(gguf_arr_str(&x[0], 0), "a") && gguf_str_eq(gguf_arr_str(&x[0], 1), "bc"));
        CHECK(x[1].type == GGUF_ARRAY && x[1].arr.n == 0);
        CHECK(x[2].arr.n == 1 && x[2].arr.str_at && gguf_str_eq(gguf_arr_str(&x[2], 0), "d"));
    }
    const gguf_value *ni = gguf_get_arr(f, "nest.ints", GGUF_ARRAY);
    CHECK(ni && ni->arr.n == 2 && ni->arr.items);
    if (ni && ni->arr.items) {
        int64_t v0, v1, v2;
        CHECK(gguf_arr_i64(&ni->arr.items[0], 0, &v0) && v0 == 1);
        CHECK(gguf_arr_i64(&ni->arr.items[0], 1, &v1) && v1 == -2);
        CHECK(gguf_arr_i64(&ni->arr.items[1], 0, &v2) && v2 == 3);
    }
    const gguf_value *deep = gguf_get_arr(f, "nest.deep", GGUF_ARRAY);
    int levels = 0;
    while (deep && deep->type == GGUF_ARRAY && deep->arr.type == GGUF_ARRAY && deep->arr.n == 1 && deep->arr.items) {
        deep = &deep->arr.items[0];
        levels++;
    }
    int64_t leaf;
    CHECK_EQ_INT(levels, 7);
    CHECK(deep && deep->arr.type == GGUF_UINT8 && gguf_arr_i64(deep, 0, &leaf) && leaf == 42);

    /* every value prints as JSON without trouble */
    FILE *null = fopen("/dev/null", "w");
    for (uint64_t i = 0; i < f->n_kv && null; i++) gguf_value_print_json(null, &f->kv[i].val, 2);
    if (null) fclose(null);
}

static void check_tensors(const gguf_file *f) {
    CHECK_EQ_INT(f->n_tensors, 3);
    const gguf_tensor *a = gguf_find_tensor(f, "a"), *bq = gguf_find_tensor(f, "b"), *c = gguf_find_tensor(f, "c");
    CHECK(a && a->type == RL_TYPE_F32 && a->n_dims == 2 && a->ne[0] == 8 && a->ne[1] == 2 && a->ne[2] == 1 &&
          a->size == 64 && gguf_tensor_nelements(a) == 16);
    CHECK(bq && bq->type == RL_TYPE_Q8_0 && bq->size == 34 && bq->data == a->data + 64);
    CHECK(c && c->type == RL_TYPE_F16 && c->size == 8 && c->data[0] == (uint8_t)(128 * 7));
    CHECK(a && a->data == f->map + f->data_offset && a->data[1] == 7);
    CHECK(gguf_find_tensor(f, "d") == NULL);
}

/* The library's writer must reproduce a file byte for byte from what the
 * reader found in it. */
static void check_rewrite(const gguf_file *f, const bytes *orig) {
    rl_err err = {0};
    gguf_writer *w = gguf_writer_new(f->version);
    gguf_writer_copy_kv(w, f, NULL);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        CHECK(gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, &err) == 0);
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    CHECK(gguf_writer_write_stream(w, mem, "memory", NULL, NULL, NULL, &err) == 0);
    fclose(mem);
    size_t first_diff = 0;
    while (first_diff < len && first_diff < orig->len && buf[first_diff] == (char)orig->p[first_diff]) first_diff++;
    CHECKF(len == orig->len && first_diff == len, "rewritten file differs (%zu vs %zu bytes, first at %zu)", len,
           orig->len, first_diff);
    gguf_file *g = gguf_open_memory(buf, len, "rewritten", &err);
    CHECKF(g != NULL, "%s", err.msg);
    if (g) {
        check_metadata(g);
        check_tensors(g);
    }
    gguf_close(g);
    free(buf);
    gguf_writer_free(w);
}

/* The writer's typed helpers produce what the reader reads back. */
static void writer_helpers(void) {
    rl_err err = {0};
    gguf_writer *w = gguf_writer_new(2);
    const char *strs[] = {"x", "", "yz"};
    int32_t ints[] = {5, -6};
    gguf_writer_add_u32(w, "u32", 7);
    gguf_writer_add_i32(w, "i32", -7);
    gguf_writer_add_u64(w, "u64", 1ull << 40);
    gguf_writer_add_f32(w, "f32", -0.25f);
    gguf_writer_add_bool(w, "bool", false);
    gguf_writer_add_str(w, "str", "text");
    gguf_writer_add_arr_str(w, "strs", strs, 3);
    gguf_writer_add_arr(w, "ints", GGUF_INT32, ints, 2);
    gguf_writer_add_u32(w, "general.alignment", 64);
    uint64_t ne[1] = {32};
    CHECK(gguf_writer_add_tensor(w, "t", RL_TYPE_Q8_0, 1, ne, NULL, &err) == 0);
    uint64_t bad_ne[1] = {31};
    CHECK(gguf_writer_add_tensor(w, "bad", RL_TYPE_Q8_0, 1, bad_ne, NULL, &err) == -1);
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    CHECK(gguf_writer_write_stream(w, mem, "memory", NULL, NULL, NULL, &err) == -1); /* no data, no fill */
    fclose(mem);
    free(buf);
    gguf_writer_free(w);

    w = gguf_writer_new(2);
    gguf_writer_add_u32(w, "u32", 7);
    gguf_writer_add_i32(w, "i32", -7);
    gguf_writer_add_u64(w, "u64", 1ull << 40);
    gguf_writer_add_f32(w, "f32", -0.25f);
    gguf_writer_add_bool(w, "bool", false);
    gguf_writer_add_str(w, "str", "text");
    gguf_writer_add_arr_str(w, "strs", strs, 3);
    gguf_writer_add_arr(w, "ints", GGUF_INT32, ints, 2);
    gguf_writer_add_u32(w, "general.alignment", 64);
    uint8_t block[34];
    for (int i = 0; i < 34; i++) block[i] = (uint8_t)i;
    CHECK(gguf_writer_add_tensor(w, "t", RL_TYPE_Q8_0, 1, ne, block, &err) == 0);
    buf = NULL;
    mem = open_memstream(&buf, &len);
    CHECK(gguf_writer_write_stream(w, mem, "memory", NULL, NULL, NULL, &err) == 0);
    fclose(mem);
    gguf_file *f = gguf_open_memory(buf, len, "helpers", &err);
    CHECKF(f != NULL, "%s", err.msg);
    if (f) {
        uint64_t u;
        double d;
        bool b = true;
        gguf_str s;
        const gguf_kv *kv;
        CHECK(f->version == 2 && f->alignment == 64 && f->data_offset % 64 == 0 && len % 64 == 0);
        CHECK(gguf_get_u64(f, "u32", &u) && u == 7);
        CHECK((kv = gguf_find(f, "i32")) && kv->val.type == GGUF_INT32 && kv->val.i64 == -7);
        CHECK(gguf_get_u64(f, "u64", &u) && u == 1ull << 40);
        CHECK(gguf_get_f64(f, "f32", &d) && d == -0.25);
        CHECK(gguf_get_bool(f, "bool", &b) && !b);
        CHECK(gguf_get_str(f, "str", &s) && gguf_str_eq(s, "text"));
        const gguf_value *a = gguf_get_arr(f, "strs", GGUF_STRING);
        CHECK(a && a->arr.n == 3 && gguf_str_eq(gguf_arr_str(a, 0), "x") && gguf_arr_str(a, 1).len == 0 &&
              gguf_str_eq(gguf_arr_str(a, 2), "yz"));
        int64_t iv;
        a = gguf_get_arr(f, "ints", GGUF_INT32);
        CHECK(a && gguf_arr_i64(a, 1, &iv) && iv == -6);
        const gguf_tensor *t = gguf_find_tensor(f, "t");
        CHECK(t && t->size == 34 && memcmp(t->data, block, 34) == 0);
    }
    gguf_close(f);
    free(buf);
    gguf_writer_free(w);
}

static void valid_files(void) {
    gg g = every_type_file();
    bytes b = gg_bytes(&g);
    rl_err err = {0};
    gguf_file *f = gguf_open_memory(b.p, b.len, "every-type.gguf", &err);
    CHECKF(f != NULL, "%s", err.msg);
    if (f) {
        check_metadata(f);
        check_tensors(f);
        check_rewrite(f, &b);
    }
    gguf_close(f);

    /* version 2, metadata only, no padding after the header (gguf-py style) */
    bytes v2 = {0};
    put(&v2, b.p, b.len);
    uint32_t two = 2;
    uint64_t zero = 0;
    memcpy(v2.p + 4, &two, 4);
    memcpy(v2.p + 8, &zero, 8);
    v2.len = 24 + g.kv.len;
    f = gguf_open_memory(v2.p, v2.len, "v2.gguf", &err);
    CHECKF(f != NULL, "%s", err.msg);
    if (f) {
        CHECK(f->version == 2 && f->n_tensors == 0 && f->data_offset == v2.len);
        check_metadata(f);
    }
    gguf_close(f);
    free(v2.p);
    free(b.p);
    gg_free(&g);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(header_cases);
    RUN(metadata_cases);
    RUN(metadata_structure_cases);
    RUN(cost_caps);
    RUN(tensor_cases);
    RUN(tensor_layout_cases);
    if (test_selected("corruption_count")) {
        printf("test_gguf_bad: %d distinct corruptions refused\n", n_cases);
        CHECKF(n_cases >= 40, "only %d corruption cases", n_cases);
    }
    RUN(truncations);
    RUN(real_file);
    RUN(valid_files);
    RUN(writer_helpers);
    return test_report("test_gguf_bad");
}
