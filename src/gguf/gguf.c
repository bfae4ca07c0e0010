/*
 * gguf.c — the GGUF reader (validating, zero-copy over an mmap) and writer.
 *
 * Reading walks the file once with a cursor that refuses to step past the
 * end. A count read from the file never sizes an allocation by itself: it is
 * first compared with the bytes that remain (a metadata pair needs at least
 * 13 bytes, a tensor info 32, a string element 8, an array element 12), and
 * the index arrays then grow with the entries actually parsed, so a corrupt
 * count in a large file fails at the first entry that is not there instead
 * of asking for gigabytes. What the index spends per entry is bounded too
 * (gguf.h): 8 bytes per string of an array, and caps on the entries that
 * cost more than their bytes in the file. Duplicate names are found by sorting (n log n, so no
 * adversarial file can make the check quadratic). After the walk, tensors are
 * checked against the data section and against each other (no overlaps).
 *
 * Every error is one line: "<file>: offset N: what is wrong", with names from
 * the file escaped and shortened so that they cannot break the line.
 */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/types.h"

#define MAX_NESTING 8    /* arrays inside arrays: deeper than any real file */
#define SHOWN_NAME_MAX 64 /* characters of a name from the file quoted in an error */

/* Bytes of one element of a fixed-size value type; 0 for STRING/ARRAY. */
static const uint8_t VTYPE_SIZE[GGUF_VTYPE_COUNT] = {
    [GGUF_UINT8] = 1, [GGUF_INT8] = 1, [GGUF_UINT16] = 2, [GGUF_INT16] = 2,
    [GGUF_UINT32] = 4, [GGUF_INT32] = 4, [GGUF_FLOAT32] = 4, [GGUF_BOOL] = 1,
    [GGUF_STRING] = 0, [GGUF_ARRAY] = 0, [GGUF_UINT64] = 8, [GGUF_INT64] = 8,
    [GGUF_FLOAT64] = 8,
};

static const char *const VTYPE_NAME[GGUF_VTYPE_COUNT] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
    "bool", "string", "array", "uint64", "int64", "float64",
};

const char *gguf_vtype_name(uint32_t t) { return t < GGUF_VTYPE_COUNT ? VTYPE_NAME[t] : "unknown"; }

/* ------------------------------------------------------------------ */
/* reading                                                            */
/* ------------------------------------------------------------------ */

typedef struct cursor {
    const uint8_t *base;
    uint64_t off, size;
    const char *path;
    const char *within; /* "metadata 'key'" while a value is read, else NULL */
    uint64_t n_nested;  /* arrays inside arrays so far (GGUF_MAX_NESTED) */
    rl_err *err;
} cursor;

/* A name from the file made safe to quote in a one-line message: control
 * and non-ASCII bytes escaped as \xNN, cut after SHOWN_NAME_MAX characters. */
typedef struct shown_name {
    char s[SHOWN_NAME_MAX * 4 + 4];
} shown_name;

static const char *show(gguf_str name, shown_name *out) {
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (uint64_t i = 0; i < name.len; i++) {
        unsigned char ch = (unsigned char)name.ptr[i];
        if (i == SHOWN_NAME_MAX) {
            memcpy(out->s + o, "...", 3);
            o += 3;
            break;
        }
        if (ch >= 0x20 && ch < 0x7f && ch != '\\') {
            out->s[o++] = (char)ch;
        } else {
            out->s[o++] = '\\';
            out->s[o++] = 'x';
            out->s[o++] = hex[ch >> 4];
            out->s[o++] = hex[ch & 15];
        }
    }
    out->s[o] = 0;
    return out->s;
}

/* Fails with "<path>: offset <off>: <message>[ (in <within>)]". */
static int bad(cursor *c, uint64_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(cursor *c, uint64_t off, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return rl_fail(c->err, RL_ERR_INPUT, "%s: offset %llu: %s%s%s%s", c->path, (unsigned long long)off, msg,
                   c->within ? " (in " : "", c->within ? c->within : "", c->within ? ")" : "");
}

static uint64_t remaining(const cursor *c) { return c->size - c->off; }

static int take(cursor *c, uint64_t n, const uint8_t **p, const char *what) {
    if (n > remaining(c)) {
        bad(c, c->off, "file ends inside %s (needs %llu bytes, %llu left)", what, (unsigned long long)n,
            (unsigned long long)remaining(c));
        return -1; /* literally, so the compiler sees that *p is set whenever 0 is returned */
    }
    *p = c->base + c->off;
    c->off += n;
    return 0;
}

static int read_u32(cursor *c, uint32_t *v, const char *what) {
    const uint8_t *p;
    if (take(c, 4, &p, what)) return -1;
    *v = rl_load_u32(p);
    return 0;
}

static int read_u64(cursor *c, uint64_t *v, const char *what) {
    const uint8_t *p;
    if (take(c, 8, &p, what)) return -1;
    *v = rl_load_u64(p);
    return 0;
}

static int read_str(cursor *c, gguf_str *s, const char *what) {
    uint64_t at = c->off, len;
    const uint8_t *p;
    if (read_u64(c, &len, what)) return -1;
    if (len > remaining(c))
        return bad(c, at, "%s length %llu exceeds the %llu bytes left in the file", what, (unsigned long long)len,
                   (unsigned long long)remaining(c));
    if (take(c, len, &p, what)) return -1;
    s->ptr = (const char *)p;
    s->len = len;
    return 0;
}

/* Makes room for `need` elements of `elem` bytes in an index array of
 * capacity *cap that will never hold more than `limit`; new elements are
 * zeroed (so a half-parsed array can still be freed). Returns the new array,
 * or NULL (the old one still valid) when memory runs out. */
static void *grow(cursor *c, void *p, uint64_t *cap, uint64_t need, size_t elem, uint64_t limit) {
    if (need <= *cap) return p;
    uint64_t n = *cap ? *cap * 2 : 16;
    n = RL_MAX(RL_MIN(n, limit), need);
    void *q = realloc(p, (size_t)n * elem); /* n <= file size / 8, elem < 100: no overflow */
    if (!q) {
        rl_fail(c->err, RL_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    memset((uint8_t *)q + *cap * elem, 0, (size_t)(n - *cap) * elem);
    *cap = n;
    return q;
}

/* Reads one scalar of fixed-size type t into v (widened). */
static void decode_scalar(uint32_t t, const uint8_t *p, gguf_value *v) {
    v->type = t;
    switch (t) {
    case GGUF_UINT8: v->u64 = p[0]; break;
    case GGUF_INT8: v->i64 = (int8_t)p[0]; break;
    case GGUF_UINT16: { uint16_t x; memcpy(&x, p, 2); v->u64 = x; break; }
    case GGUF_INT16: { int16_t x; memcpy(&x, p, 2); v->i64 = x; break; }
    case GGUF_UINT32: v->u64 = rl_load_u32(p); break;
    case GGUF_INT32: v->i64 = (int32_t)rl_load_u32(p); break;
    case GGUF_FLOAT32: v->f64 = rl_load_f32(p); break;
    case GGUF_BOOL: v->b = p[0] != 0; break;
    case GGUF_UINT64: v->u64 = rl_load_u64(p); break;
    case GGUF_INT64: v->i64 = (int64_t)rl_load_u64(p); break;
    case GGUF_FLOAT64: { double x; memcpy(&x, p, 8); v->f64 = x; break; }
    default: break;
    }
}

static int read_value(cursor *c, uint32_t type, gguf_value *v, int depth);

/* The strings of an array: each is checked as it is read, and where its
 * length field lies is kept (8 bytes, no more than the file spends on it). */
static int read_array_strings(cursor *c, gguf_value *v, uint64_t n) {
    uint64_t cap = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t *at = grow(c, v->arr.str_at, &cap, i + 1, sizeof *at, n);
        if (!at) return -1;
        v->arr.str_at = at;
        at[i] = c->off - (uint64_t)(v->arr.data - c->base);
        gguf_str s;
        if (read_str(c, &s, "string")) return -1;
    }
    return 0;
}

/* Arrays inside an array are parsed into v->arr.items. While they are,
 * arr.n counts the items that exist (zeroed or parsed), so that free_value
 * is safe at any point of failure. Each costs a gguf_value, more than its
 * 12 bytes in the file: GGUF_MAX_NESTED of them per file at most. */
static int read_array_items(cursor *c, gguf_value *v, uint64_t n, int depth) {
    uint64_t cap = 0, at = c->off;
    if (n > GGUF_MAX_NESTED - c->n_nested)
        return bad(c, at, "more than %u arrays inside arrays", GGUF_MAX_NESTED);
    c->n_nested += n;
    v->arr.n = 0;
    v->arr.items = grow(c, NULL, &cap, 1, sizeof *v->arr.items, RL_MAX(n, 1));
    if (!v->arr.items) return -1;
    for (uint64_t i = 0; i < n; i++) {
        gguf_value *items = grow(c, v->arr.items, &cap, i + 1, sizeof *items, n);
        if (!items) return -1;
        v->arr.items = items;
        v->arr.n = i + 1;
        if (read_value(c, v->arr.type, &items[i], depth + 1)) return -1;
    }
    return 0;
}

static int read_array(cursor *c, gguf_value *v, int depth) {
    uint64_t at = c->off;
    uint32_t et;
    uint64_t n;
    if (depth >= MAX_NESTING) return bad(c, at, "arrays nested more than %d deep", MAX_NESTING);
    if (read_u32(c, &et, "array element type")) return -1;
    if (et >= GGUF_VTYPE_COUNT) return bad(c, at, "unknown array element type %u", et);
    if (read_u64(c, &n, "array length")) return -1;
    v->type = GGUF_ARRAY;
    v->arr.type = et;
    v->arr.n = n;
    v->arr.data = c->base + c->off;
    v->arr.items = NULL;
    v->arr.str_at = NULL;
    if (VTYPE_SIZE[et]) {
        uint64_t bytes;
        const uint8_t *p;
        if (rl_mul_overflow(n, VTYPE_SIZE[et], &bytes) || bytes > remaining(c))
            return bad(c, at + 4, "array of %llu %s needs more bytes than the %llu left", (unsigned long long)n,
                       gguf_vtype_name(et), (unsigned long long)remaining(c));
        return take(c, bytes, &p, "array");
    }
    /* a string element takes at least 8 bytes (its length), an array 12 */
    uint64_t min_elem = et == GGUF_STRING ? 8 : 12;
    if (n > remaining(c) / min_elem)
        return bad(c, at + 4, "array of %llu %s cannot fit in the %llu bytes left", (unsigned long long)n,
                   gguf_vtype_name(et), (unsigned long long)remaining(c));
    return et == GGUF_STRING ? read_array_strings(c, v, n) : read_array_items(c, v, n, depth);
}

static int read_value(cursor *c, uint32_t type, gguf_value *v, int depth) {
    if (type == GGUF_STRING) {
        v->type = GGUF_STRING;
        return read_str(c, &v->str, "string");
    }
    if (type == GGUF_ARRAY) return read_array(c, v, depth);
    const uint8_t *p;
    if (take(c, VTYPE_SIZE[type], &p, gguf_vtype_name(type))) return -1;
    decode_scalar(type, p, v);
    return 0;
}

static void free_value(gguf_value *v) {
    if (v->type != GGUF_ARRAY) return;
    free(v->arr.str_at);
    v->arr.str_at = NULL;
    if (!v->arr.items) return;
    for (uint64_t i = 0; i < v->arr.n; i++) free_value(&v->arr.items[i]);
    free(v->arr.items);
    v->arr.items = NULL;
}

bool gguf_str_eq(gguf_str s, const char *cstr) {
    size_t n = strlen(cstr);
    return s.len == n && memcmp(s.ptr, cstr, n) == 0;
}

/* Orders names by content, then by position in the file. */
static int cmp_names(const void *a, const void *b) {
    const gguf_str *x = *(const gguf_str *const *)a, *y = *(const gguf_str *const *)b;
    int r = memcmp(x->ptr, y->ptr, (size_t)RL_MIN(x->len, y->len));
    if (r) return r;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->ptr < y->ptr ? -1 : x->ptr > y->ptr;
}

/* Of n names (the first field of structs `stride` bytes apart), the first in
 * file order that repeats an earlier one; NULL if all differ. *dup is set
 * to NULL too when memory runs out (then err is set and -1 returned). */
static int find_duplicate(cursor *c, const void *first, size_t stride, uint64_t n, const gguf_str **dup) {
    *dup = NULL;
    if (n < 2) return 0;
    const gguf_str **order = malloc((size_t)n * sizeof *order);
    if (!order) return rl_fail(c->err, RL_ERR_INTERNAL, "out of memory");
    for (uint64_t i = 0; i < n; i++) order[i] = (const gguf_str *)((const uint8_t *)first + i * stride);
    qsort(order, (size_t)n, sizeof *order, cmp_names);
    for (uint64_t i = 1; i < n; i++) {
        const gguf_str *a = order[i - 1], *b = order[i];
        if (a->len == b->len && memcmp(a->ptr, b->ptr, (size_t)a->len) == 0 && (!*dup || b->ptr < (*dup)->ptr))
            *dup = b;
    }
    free(order);
    return 0;
}

/* File offset of the length field in front of a string in the mapping. */
static uint64_t str_field_at(const cursor *c, gguf_str s) { return (uint64_t)((const uint8_t *)s.ptr - c->base) - 8; }

static int read_kvs(cursor *c, gguf_file *f, uint64_t n) {
    uint64_t cap = 0;
    shown_name sn;
    char within[sizeof sn.s + 16];
    for (uint64_t i = 0; i < n; i++) {
        gguf_kv *kvs = grow(c, f->kv, &cap, i + 1, sizeof *f->kv, n);
        if (!kvs) return -1;
        f->kv = kvs;
        f->n_kv = i + 1;
        gguf_kv *kv = &kvs[i];
        uint64_t at = c->off;
        uint32_t type;
        if (read_str(c, &kv->key, "metadata key")) return -1;
        if (kv->key.len == 0) return bad(c, at, "metadata key %llu of %llu is empty", (unsigned long long)i,
                                         (unsigned long long)n);
        uint64_t type_at = c->off;
        if (read_u32(c, &type, "metadata value type")) return -1;
        if (type >= GGUF_VTYPE_COUNT)
            return bad(c, type_at, "metadata key '%s' has unknown value type %u", show(kv->key, &sn), type);
        snprintf(within, sizeof within, "metadata '%s'", show(kv->key, &sn));
        c->within = within;
        int rc = read_value(c, type, &kv->val, 0);
        c->within = NULL;
        if (rc) return -1;
    }
    const gguf_str *dup;
    if (find_duplicate(c, f->kv, sizeof *f->kv, f->n_kv, &dup)) return -1;
    if (dup) return bad(c, str_field_at(c, *dup), "duplicate metadata key '%s'", show(*dup, &sn));
    return 0;
}

/* File offset of a tensor info's data-offset field (its last 8 bytes). */
static uint64_t offset_field_at(const cursor *c, const gguf_tensor *t) {
    return str_field_at(c, t->name) + 8 + t->name.len + 4 + 8ull * t->n_dims + 4;
}

static int read_tensor_info(cursor *c, gguf_tensor *t, uint64_t alignment) {
    shown_name sn;
    if (read_str(c, &t->name, "tensor name")) return -1;
    const char *name = show(t->name, &sn);
    uint64_t dims_at = c->off;
    if (read_u32(c, &t->n_dims, "tensor dimension count")) return -1;
    if (t->n_dims == 0 || t->n_dims > GGUF_MAX_DIMS)
        return bad(c, dims_at, "tensor '%s' has %u dimensions (1 to %d allowed)", name, t->n_dims, GGUF_MAX_DIMS);
    uint64_t n = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        uint64_t ne_at = c->off;
        if (read_u64(c, &t->ne[d], "tensor shape")) return -1;
        if (t->ne[d] == 0)
            return bad(c, ne_at, "tensor '%s' has an invalid shape (dimension %u is 0)", name, d);
        if (t->ne[d] > INT64_MAX)
            return bad(c, ne_at, "tensor '%s' has an invalid shape (dimension %u is %llu, negative as ggml's "
                       "int64)", name, d, (unsigned long long)t->ne[d]);
        if (rl_mul_overflow(n, t->ne[d], &n) || n > INT64_MAX)
            return bad(c, ne_at, "tensor '%s' has an invalid shape (dimension %u is %llu: the element count "
                       "overflows 64 bits)", name, d, (unsigned long long)t->ne[d]);
    }
    uint64_t type_at = c->off;
    if (read_u32(c, &t->type, "tensor type")) return -1;
    const rl_type_info *ti = rl_type_get(t->type);
    if (!ti) return bad(c, type_at, "tensor '%s' has unknown type %u", name, t->type);
    if (t->ne[0] % ti->block)
        return bad(c, dims_at + 4, "tensor '%s': row length %llu is not a multiple of %s's block size %u", name,
                   (unsigned long long)t->ne[0], ti->name, ti->block);
    uint64_t row_bytes;
    if (!rl_type_row_bytes(t->type, t->ne[0], &row_bytes) || rl_mul_overflow(row_bytes, n / t->ne[0], &t->size))
        return bad(c, dims_at, "tensor '%s' is too large", name);
    uint64_t offset_at = c->off;
    if (read_u64(c, &t->offset, "tensor offset")) return -1;
    if (t->offset % alignment)
        return bad(c, offset_at, "tensor '%s' data offset %llu is not a multiple of the alignment %llu", name,
                   (unsigned long long)t->offset, (unsigned long long)alignment);
    return 0;
}

static int read_tensor_infos(cursor *c, gguf_file *f, uint64_t n) {
    uint64_t cap = 0;
    for (uint64_t i = 0; i < n; i++) {
        gguf_tensor *ts = grow(c, f->tensors, &cap, i + 1, sizeof *f->tensors, n);
        if (!ts) return -1;
        f->tensors = ts;
        f->n_tensors = i + 1;
        if (read_tensor_info(c, &ts[i], f->alignment)) return -1;
    }
    const gguf_str *dup;
    shown_name sn;
    if (find_duplicate(c, f->tensors, sizeof *f->tensors, f->n_tensors, &dup)) return -1;
    if (dup) return bad(c, str_field_at(c, *dup), "duplicate tensor name '%s'", show(*dup, &sn));
    return 0;
}

/* By data offset, then by order of the infos (so the later one is blamed). */
static int cmp_by_offset(const void *a, const void *b) {
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Tensors must lie inside the data section and not overlap (alignment was
 * checked with each tensor info). */
static int check_tensor_data(cursor *c, gguf_file *f) {
    shown_name sa, sb;
    uint64_t data_size = f->size - f->data_offset;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        uint64_t end;
        if (rl_add_overflow(t->offset, t->size, &end) || end > data_size)
            return bad(c, offset_field_at(c, t),
                       "tensor '%s' (%llu bytes at data offset %llu) extends past the end of the file "
                       "(the data section at offset %llu holds %llu bytes)",
                       show(t->name, &sa), (unsigned long long)t->size, (unsigned long long)t->offset,
                       (unsigned long long)f->data_offset, (unsigned long long)data_size);
        t->data = f->map + f->data_offset + t->offset;
    }
    if (f->n_tensors < 2) return 0;
    gguf_tensor **order = malloc((size_t)f->n_tensors * sizeof *order);
    if (!order) return rl_fail(c->err, RL_ERR_INTERNAL, "out of memory");
    for (uint64_t i = 0; i < f->n_tensors; i++) order[i] = &f->tensors[i];
    qsort(order, (size_t)f->n_tensors, sizeof *order, cmp_by_offset);
    int rc = 0;
    for (uint64_t i = 1; i < f->n_tensors && rc == 0; i++) {
        const gguf_tensor *a = order[i - 1], *b = order[i];
        if (b->offset < a->offset + a->size) /* no overflow: both end inside the file */
            rc = bad(c, offset_field_at(c, b),
                     "tensors '%s' (data offset %llu, %llu bytes) and '%s' (data offset %llu, %llu bytes) overlap",
                     show(a->name, &sa), (unsigned long long)a->offset, (unsigned long long)a->size,
                     show(b->name, &sb), (unsigned long long)b->offset, (unsigned long long)b->size);
    }
    free(order);
    return rc;
}

/* general.alignment, if present, must be a uint32 power of two. */
static int read_alignment(cursor *c, gguf_file *f) {
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    const gguf_kv *al = gguf_find(f, "general.alignment");
    if (!al) return 0;
    uint64_t at = str_field_at(c, al->key);
    if (al->val.type != GGUF_UINT32)
        return bad(c, at, "general.alignment has type %s (must be uint32)", gguf_vtype_name(al->val.type));
    if (al->val.u64 == 0 || (al->val.u64 & (al->val.u64 - 1)))
        return bad(c, at, "general.alignment is %llu (must be a power of two)", (unsigned long long)al->val.u64);
    f->alignment = al->val.u64;
    return 0;
}

static int read_header(cursor *c, gguf_file *f, uint64_t *n_tensors, uint64_t *n_kv) {
    const uint8_t *magic;
    if (f->size == 0) return bad(c, 0, "file is empty, expected a GGUF header");
    if (take(c, 4, &magic, "the magic number")) return -1;
    if (memcmp(magic, "GGUF", 4) != 0) return bad(c, 0, "not a GGUF file (magic is not \"GGUF\")");
    if (read_u32(c, &f->version, "the version")) return -1;
    if (f->version != 2 && f->version != 3)
        return bad(c, 4, "unsupported GGUF version %u (2 and 3 are supported%s)", f->version,
                   f->version > 0xffff ? "; a big-endian file?" : "");
    if (read_u64(c, n_tensors, "the tensor count")) return -1;
    if (read_u64(c, n_kv, "the metadata count")) return -1;
    if (*n_kv > remaining(c) / 13)
        return bad(c, 16, "metadata count %llu cannot fit in the %llu bytes left", (unsigned long long)*n_kv,
                   (unsigned long long)remaining(c));
    if (*n_tensors > remaining(c) / 32)
        return bad(c, 8, "tensor count %llu cannot fit in the %llu bytes left", (unsigned long long)*n_tensors,
                   (unsigned long long)remaining(c));
    if (*n_kv > GGUF_MAX_KV)
        return bad(c, 16, "metadata count %llu is more than the %u rackllm reads", (unsigned long long)*n_kv,
                   GGUF_MAX_KV);
    if (*n_tensors > GGUF_MAX_TENSORS)
        return bad(c, 8, "tensor count %llu is more than the %u rackllm reads", (unsigned long long)*n_tensors,
                   GGUF_MAX_TENSORS);
    return 0;
}

static int parse(gguf_file *f, rl_err *err) {
    cursor c = {.base = f->map, .off = 0, .size = f->size, .path = f->path, .err = err};
    uint64_t n_tensors, n_kv;
    if (read_header(&c, f, &n_tensors, &n_kv)) return -1;
    if (read_kvs(&c, f, n_kv)) return -1;
    if (n_tensors > remaining(&c) / 32)
        return bad(&c, 8, "tensor count %llu cannot fit in the %llu bytes left after the metadata",
                   (unsigned long long)n_tensors, (unsigned long long)remaining(&c));
    if (read_alignment(&c, f)) return -1;
    if (read_tensor_infos(&c, f, n_tensors)) return -1;
    f->header_size = c.off;
    uint64_t pad = (f->alignment - c.off % f->alignment) % f->alignment;
    f->data_offset = c.off + pad;
    if (f->data_offset > f->size) {
        if (f->n_tensors > 0)
            return bad(&c, c.off, "file ends before the tensor data section (padding to offset %llu)",
                       (unsigned long long)f->data_offset);
        f->data_offset = f->size; /* vocabulary-only files may stop here */
    }
    return check_tensor_data(&c, f);
}

static gguf_file *new_file(const char *name, rl_err *err) {
    gguf_file *f = rl_calloc(1, sizeof *f, err);
    if (!f) return NULL;
    f->path = strdup(name ? name : "(memory)");
    if (!f->path) {
        free(f);
        rl_fail(err, RL_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    return f;
}

gguf_file *gguf_open_memory(const void *data, uint64_t size, const char *name, rl_err *err) {
    gguf_file *f = new_file(name, err);
    if (!f) return NULL;
    f->map = data;
    f->size = size;
    if (parse(f, err)) {
        gguf_close(f);
        return NULL;
    }
    return f;
}

gguf_file *gguf_open(const char *path, rl_err *err) {
    /* O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused
     * below as not a regular file); it changes nothing for regular files. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        bool ours = errno == ENOMEM || errno == EMFILE || errno == ENFILE || errno == EIO;
        rl_fail(err, ours ? RL_ERR_INTERNAL : RL_ERR_INPUT, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        rl_fail(err, RL_ERR_INPUT, "%s: not a regular file", path);
        return NULL;
    }
    gguf_file *f = new_file(path, err);
    if (!f) {
        close(fd);
        return NULL;
    }
    f->size = (uint64_t)st.st_size;
    if (f->size > 0) {
        void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            rl_fail(err, RL_ERR_INTERNAL, "%s: mmap: %s", path, strerror(errno));
            close(fd);
            gguf_close(f);
            return NULL;
        }
        f->map = m;
        f->mapped = true;
    }
    close(fd);
    if (parse(f, err)) {
        gguf_close(f);
        return NULL;
    }
    return f;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->kv) {
        for (uint64_t i = 0; i < f->n_kv; i++) free_value(&f->kv[i].val);
        free(f->kv);
    }
    free(f->tensors);
    if (f->mapped) munmap((void *)f->map, f->size);
    free(f->path);
    free(f);
}

/* ------------------------------------------------------------------ */
/* lookup                                                             */
/* ------------------------------------------------------------------ */

const gguf_kv *gguf_find(const gguf_file *f, const char *key) {
    if (!f->kv) return NULL;
    for (uint64_t i = 0; i < f->n_kv; i++)
        if (f->kv[i].key.ptr && gguf_str_eq(f->kv[i].key, key)) return &f->kv[i];
    return NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (gguf_str_eq(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

static bool is_unsigned(uint32_t t) {
    return t == GGUF_UINT8 || t == GGUF_UINT16 || t == GGUF_UINT32 || t == GGUF_UINT64;
}
static bool is_signed(uint32_t t) {
    return t == GGUF_INT8 || t == GGUF_INT16 || t == GGUF_INT32 || t == GGUF_INT64;
}

bool gguf_value_u64(const gguf_value *v, uint64_t *out) {
    if (is_unsigned(v->type)) { *out = v->u64; return true; }
    if (is_signed(v->type) && v->i64 >= 0) { *out = (uint64_t)v->i64; return true; }
    return false;
}

bool gguf_value_f64(const gguf_value *v, double *out) {
    if (v->type == GGUF_FLOAT32 || v->type == GGUF_FLOAT64) { *out = v->f64; return true; }
    if (is_unsigned(v->type)) { *out = (double)v->u64; return true; }
    if (is_signed(v->type)) { *out = (double)v->i64; return true; }
    return false;
}

bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out) {
    const gguf_kv *kv = gguf_find(f, key);
    return kv && gguf_value_u64(&kv->val, out);
}

bool gguf_get_f64(const gguf_file *f, const char *key, double *out) {
    const gguf_kv *kv = gguf_find(f, key);
    return kv && gguf_value_f64(&kv->val, out);
}

bool gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->val.type != GGUF_BOOL) return false;
    *out = kv->val.b;
    return true;
}

bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->val.type != GGUF_STRING) return false;
    *out = kv->val.str;
    return true;
}

const gguf_value *gguf_get_arr(const gguf_file *f, const char *key, uint32_t elem_type) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv || kv->val.type != GGUF_ARRAY) return NULL;
    if (elem_type != GGUF_VTYPE_COUNT && kv->val.arr.type != elem_type) return NULL;
    return &kv->val;
}

static bool arr_elem(const gguf_value *arr, uint64_t i, gguf_value *out) {
    if (arr->type != GGUF_ARRAY || i >= arr->arr.n || !VTYPE_SIZE[arr->arr.type]) return false;
    decode_scalar(arr->arr.type, arr->arr.data + i * VTYPE_SIZE[arr->arr.type], out);
    return true;
}

gguf_str gguf_arr_str(const gguf_value *arr, uint64_t i) {
    if (arr->type != GGUF_ARRAY || arr->arr.type != GGUF_STRING || i >= arr->arr.n) return (gguf_str){NULL, 0};
    if (arr->arr.items) return arr->arr.items[i].str; /* built by hand, for the writer */
    if (!arr->arr.str_at) return (gguf_str){NULL, 0};
    const uint8_t *p = arr->arr.data + arr->arr.str_at[i];
    return (gguf_str){(const char *)p + 8, rl_load_u64(p)}; /* checked when read */
}

bool gguf_arr_get(const gguf_value *arr, uint64_t i, gguf_value *out) {
    if (arr->type != GGUF_ARRAY || i >= arr->arr.n) return false;
    if (arr->arr.type == GGUF_STRING) {
        out->type = GGUF_STRING;
        out->str = gguf_arr_str(arr, i);
        return out->str.ptr != NULL;
    }
    if (arr->arr.type == GGUF_ARRAY) {
        if (!arr->arr.items) return false;
        *out = arr->arr.items[i];
        return true;
    }
    return arr_elem(arr, i, out);
}

bool gguf_arr_f64(const gguf_value *arr, uint64_t i, double *out) {
    gguf_value v;
    return arr_elem(arr, i, &v) && gguf_value_f64(&v, out);
}

bool gguf_arr_i64(const gguf_value *arr, uint64_t i, int64_t *out) {
    gguf_value v;
    if (!arr_elem(arr, i, &v)) return false;
    if (is_signed(v.type)) { *out = v.i64; return true; }
    if (is_unsigned(v.type) && v.u64 <= INT64_MAX) { *out = (int64_t)v.u64; return true; }
    if (v.type == GGUF_BOOL) { *out = v.b; return true; }
    return false;
}

uint64_t gguf_tensor_nelements(const gguf_tensor *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]; /* checked at load */
}

static void print_json_str(FILE *out, const char *s, uint64_t n) {
    fputc('"', out);
    for (uint64_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') fprintf(out, "\\%c", ch);
        else if (ch == '\n') fputs("\\n", out);
        else if (ch == '\t') fputs("\\t", out);
        else if (ch == '\r') fputs("\\r", out);
        else if (ch < 0x20 || ch == 0x7f) fprintf(out, "\\u%04x", ch);
        else fputc(ch, out);
    }
    fputc('"', out);
}

void gguf_value_print_json(FILE *out, const gguf_value *v, uint64_t max_items) {
    switch (v->type) {
    case GGUF_UINT8: case GGUF_UINT16: case GGUF_UINT32: case GGUF_UINT64:
        fprintf(out, "%llu", (unsigned long long)v->u64);
        break;
    case GGUF_INT8: case GGUF_INT16: case GGUF_INT32: case GGUF_INT64:
        fprintf(out, "%lld", (long long)v->i64);
        break;
    case GGUF_FLOAT32: case GGUF_FLOAT64:
        if (v->f64 != v->f64 || v->f64 > 1e308 || v->f64 < -1e308) fputs("null", out);
        else fprintf(out, "%.9g", v->f64);
        break;
    case GGUF_BOOL: fputs(v->b ? "true" : "false", out); break;
    case GGUF_STRING: print_json_str(out, v->str.ptr, v->str.len); break;
    case GGUF_ARRAY: {
        uint64_t n = v->arr.n, shown = max_items && n > max_items ? max_items : n;
        fputc('[', out);
        for (uint64_t i = 0; i < shown; i++) {
            if (i) fputs(", ", out);
            gguf_value e;
            if (gguf_arr_get(v, i, &e)) gguf_value_print_json(out, &e, max_items);
            else fputs("null", out);
        }
        if (shown < n) fprintf(out, "%s\"... %llu more\"", shown ? ", " : "", (unsigned long long)(n - shown));
        fputc(']', out);
        break;
    }
    default: fputs("null", out);
    }
}

/* ------------------------------------------------------------------ */
/* writing                                                            */
/* ------------------------------------------------------------------ */

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t size, offset;
    const void *data;
} wtensor;

typedef struct buf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} buf;

struct gguf_writer {
    uint32_t version;
    uint64_t alignment;
    uint64_t n_kv;
    buf kv; /* serialised metadata */
    wtensor *tensors;
    uint64_t n_tensors, cap_tensors;
    uint64_t data_size;
    bool pad_empty;
};

static void buf_put(buf *b, const void *p, size_t n) {
    if (b->oom || n == 0) return; /* n == 0: p may be NULL (an empty buffer) */
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) { b->oom = true; return; }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}
static void buf_u32(buf *b, uint32_t v) { buf_put(b, &v, 4); }
static void buf_u64(buf *b, uint64_t v) { buf_put(b, &v, 8); }
static void buf_str(buf *b, const char *s, uint64_t n) { buf_u64(b, n); buf_put(b, s, n); }

gguf_writer *gguf_writer_new(uint32_t version) {
    gguf_writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->version = version;
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    w->pad_empty = true;
    return w;
}

void gguf_writer_set_pad_empty(gguf_writer *w, bool pad) { w->pad_empty = pad; }

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (uint64_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    free(w->tensors);
    free(w->kv.p);
    free(w);
}

static void begin_kv(gguf_writer *w, const char *key, size_t key_len, uint32_t type) {
    buf_str(&w->kv, key, key_len);
    buf_u32(&w->kv, type);
    w->n_kv++;
}

void gguf_writer_add_u32(gguf_writer *w, const char *key, uint32_t v) {
    begin_kv(w, key, strlen(key), GGUF_UINT32);
    buf_u32(&w->kv, v);
    if (strcmp(key, "general.alignment") == 0 && v && !(v & (v - 1))) w->alignment = v;
}
void gguf_writer_add_i32(gguf_writer *w, const char *key, int32_t v) {
    begin_kv(w, key, strlen(key), GGUF_INT32);
    buf_put(&w->kv, &v, 4);
}
void gguf_writer_add_u64(gguf_writer *w, const char *key, uint64_t v) {
    begin_kv(w, key, strlen(key), GGUF_UINT64);
    buf_u64(&w->kv, v);
}
void gguf_writer_add_f32(gguf_writer *w, const char *key, float v) {
    begin_kv(w, key, strlen(key), GGUF_FLOAT32);
    buf_put(&w->kv, &v, 4);
}
void gguf_writer_add_bool(gguf_writer *w, const char *key, bool v) {
    uint8_t b = v;
    begin_kv(w, key, strlen(key), GGUF_BOOL);
    buf_put(&w->kv, &b, 1);
}
void gguf_writer_add_str(gguf_writer *w, const char *key, const char *v) {
    begin_kv(w, key, strlen(key), GGUF_STRING);
    buf_str(&w->kv, v, strlen(v));
}
void gguf_writer_add_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n) {
    begin_kv(w, key, strlen(key), GGUF_ARRAY);
    buf_u32(&w->kv, GGUF_STRING);
    buf_u64(&w->kv, n);
    for (uint64_t i = 0; i < n; i++) buf_str(&w->kv, v[i], strlen(v[i]));
}
void gguf_writer_add_arr(gguf_writer *w, const char *key, uint32_t elem_type, const void *data, uint64_t n) {
    begin_kv(w, key, strlen(key), GGUF_ARRAY);
    buf_u32(&w->kv, elem_type);
    buf_u64(&w->kv, n);
    buf_put(&w->kv, data, n * (elem_type < GGUF_VTYPE_COUNT ? VTYPE_SIZE[elem_type] : 0));
}

/* Serialises the payload of v (no key, no type tag for the top level). */
static void put_value(buf *b, const gguf_value *v) {
    switch (v->type) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: {
        uint8_t x = v->type == GGUF_BOOL ? (uint8_t)v->b : v->type == GGUF_UINT8 ? (uint8_t)v->u64 : (uint8_t)v->i64;
        buf_put(b, &x, 1);
        break;
    }
    case GGUF_UINT16: { uint16_t x = (uint16_t)v->u64; buf_put(b, &x, 2); break; }
    case GGUF_INT16: { int16_t x = (int16_t)v->i64; buf_put(b, &x, 2); break; }
    case GGUF_UINT32: buf_u32(b, (uint32_t)v->u64); break;
    case GGUF_INT32: { int32_t x = (int32_t)v->i64; buf_put(b, &x, 4); break; }
    case GGUF_FLOAT32: { float x = (float)v->f64; buf_put(b, &x, 4); break; }
    case GGUF_UINT64: buf_u64(b, v->u64); break;
    case GGUF_INT64: buf_put(b, &v->i64, 8); break;
    case GGUF_FLOAT64: buf_put(b, &v->f64, 8); break;
    case GGUF_STRING: buf_str(b, v->str.ptr, v->str.len); break;
    case GGUF_ARRAY:
        buf_u32(b, v->arr.type);
        buf_u64(b, v->arr.n);
        if (VTYPE_SIZE[v->arr.type]) {
            buf_put(b, v->arr.data, v->arr.n * VTYPE_SIZE[v->arr.type]);
        } else {
            gguf_value e;
            for (uint64_t i = 0; i < v->arr.n; i++)
                if (gguf_arr_get(v, i, &e)) put_value(b, &e);
        }
        break;
    default: break;
    }
}

void gguf_writer_add_value(gguf_writer *w, gguf_str key, const gguf_value *v) {
    begin_kv(w, key.ptr, key.len, v->type);
    put_value(&w->kv, v);
    if (gguf_str_eq(key, "general.alignment") && v->type == GGUF_UINT32 && v->u64 && !(v->u64 & (v->u64 - 1)))
        w->alignment = v->u64;
}

void gguf_writer_copy_kv(gguf_writer *w, const gguf_file *f, const char *const *skip) {
    for (uint64_t i = 0; i < f->n_kv; i++) {
        bool skipped = false;
        for (const char *const *s = skip; s && *s; s++)
            if (gguf_str_eq(f->kv[i].key, *s)) skipped = true;
        if (!skipped) gguf_writer_add_value(w, f->kv[i].key, &f->kv[i].val);
    }
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const uint64_t *ne, const void *data, rl_err *err) {
    uint64_t n = 1, row_bytes, size;
    if (n_dims == 0 || n_dims > GGUF_MAX_DIMS)
        return rl_fail(err, RL_ERR_INPUT, "tensor %s: %u dimensions", name, n_dims);
    for (uint32_t d = 0; d < n_dims; d++)
        if (ne[d] == 0 || rl_mul_overflow(n, ne[d], &n))
            return rl_fail(err, RL_ERR_INPUT, "tensor %s: invalid shape", name);
    if (!rl_type_row_bytes(type, ne[0], &row_bytes) || rl_mul_overflow(row_bytes, n / ne[0], &size))
        return rl_fail(err, RL_ERR_INPUT, "tensor %s: row of %llu is not whole blocks of %s", name,
                       (unsigned long long)ne[0], rl_type_name(type));
    if (w->n_tensors == w->cap_tensors) {
        uint64_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        wtensor *t = realloc(w->tensors, cap * sizeof *t);
        if (!t) return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
        w->tensors = t;
        w->cap_tensors = cap;
    }
    wtensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name) return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) t->ne[d] = d < (int)n_dims ? ne[d] : 1;
    t->size = size;
    t->data = data;
    w->n_tensors++;
    return 0;
}

static int write_all(FILE *out, const void *p, size_t n, const char *name, rl_err *err) {
    if (n && fwrite(p, 1, n, out) != n)
        return rl_fail(err, RL_ERR_INTERNAL, "%s: write failed: %s", name, strerror(errno));
    return 0;
}

static int write_zeros(FILE *out, uint64_t n, const char *name, rl_err *err) {
    static const uint8_t zeros[64];
    while (n) {
        size_t k = (size_t)RL_MIN(n, sizeof zeros);
        if (write_all(out, zeros, k, name, err)) return -1;
        n -= k;
    }
    return 0;
}

int gguf_writer_write_stream(gguf_writer *w, FILE *out, const char *name, gguf_fill_fn fill, void *fill_ctx,
                             void (*progress)(void *ctx, uint64_t done, uint64_t total), rl_err *err) {
    buf head = {0};
    buf_put(&head, "GGUF", 4);
    buf_u32(&head, w->version);
    buf_u64(&head, w->n_tensors);
    buf_u64(&head, w->n_kv);
    buf_put(&head, w->kv.p, w->kv.len);
    uint64_t off = 0;
    for (uint64_t i = 0; i < w->n_tensors; i++) {
        wtensor *t = &w->tensors[i];
        off = (off + w->alignment - 1) / w->alignment * w->alignment;
        t->offset = off;
        off += t->size;
        buf_str(&head, t->name, strlen(t->name));
        buf_u32(&head, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) buf_u64(&head, t->ne[d]);
        buf_u32(&head, t->type);
        buf_u64(&head, t->offset);
    }
    if (head.oom || w->kv.oom) {
        free(head.p);
        return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    }
    int rc = write_all(out, head.p, head.len, name, err);
    uint64_t pos = head.len;
    free(head.p);
    if (rc) return -1;
    uint64_t data_start = (pos + w->alignment - 1) / w->alignment * w->alignment;
    if ((w->n_tensors || w->pad_empty) && write_zeros(out, data_start - pos, name, err)) return -1;
    pos = 0;
    void *scratch = NULL;
    size_t scratch_size = 0;
    for (uint64_t i = 0; i < w->n_tensors && rc == 0; i++) {
        wtensor *t = &w->tensors[i];
        rc = write_zeros(out, t->offset - pos, name, err);
        if (rc) break;
        const void *data = t->data;
        if (!data) {
            if (!fill) { rc = rl_fail(err, RL_ERR_INTERNAL, "tensor %s has no data", t->name); break; }
            if (scratch_size < t->size) {
                free(scratch);
                scratch = malloc(t->size);
                scratch_size = scratch ? t->size : 0;
                if (!scratch) { rc = rl_fail(err, RL_ERR_INTERNAL, "out of memory (%llu bytes)", (unsigned long long)t->size); break; }
            }
            rc = fill(fill_ctx, i, scratch, t->size, err);
            if (rc) break;
            data = scratch;
        }
        rc = write_all(out, data, t->size, name, err);
        pos = t->offset + t->size;
        if (progress) progress(fill_ctx, i + 1, w->n_tensors);
    }
    free(scratch);
    /* like ggml and gguf-py: the last tensor is padded to the alignment too */
    if (rc == 0 && w->n_tensors) rc = write_zeros(out, (w->alignment - pos % w->alignment) % w->alignment, name, err);
    return rc;
}

int gguf_writer_write(gguf_writer *w, const char *path, gguf_fill_fn fill, void *fill_ctx,
                      void (*progress)(void *ctx, uint64_t done, uint64_t total), rl_err *err) {
    size_t n = strlen(path) + 5;
    char *tmp = malloc(n);
    if (!tmp) return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    snprintf(tmp, n, "%s.tmp", path);
    FILE *out = fopen(tmp, "wb");
    if (!out) {
        rl_fail(err, RL_ERR_INPUT, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    int rc = gguf_writer_write_stream(w, out, path, fill, fill_ctx, progress, err);
    if (fclose(out) != 0 && rc == 0) rc = rl_fail(err, RL_ERR_INTERNAL, "%s: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0) rc = rl_fail(err, RL_ERR_INTERNAL, "%s: %s", path, strerror(errno));
    if (rc) unlink(tmp);
    free(tmp);
    return rc;
}
