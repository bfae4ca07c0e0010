/*
 * gguf.h — reading and writing GGUF files (versions 2 and 3).
 *
 * A GGUF file is: magic "GGUF", version, tensor count, metadata count, the
 * metadata (typed key/value pairs, arrays may nest), the tensor infos (name,
 * shape, type, offset), padding to the alignment, then the tensor data.
 *
 * The reader maps the file read-only and never trusts it: every count,
 * length, offset and size is checked against the file's size with
 * overflow-safe arithmetic before it is used, and any violation is reported
 * as one line naming the file, the byte offset and what is wrong. Strings and
 * tensor data point into the mapping (nothing is copied); only the index of
 * metadata values and tensor infos is allocated, and it stays small beside
 * the file however the file is crafted: an array of strings costs 8 bytes
 * per string (where each string takes at least 8 bytes of the file), and the
 * entries that cost more than the file spends on them are capped in number
 * (GGUF_MAX_KV metadata pairs, GGUF_MAX_NESTED arrays inside arrays,
 * GGUF_MAX_TENSORS tensors).
 *
 * The writer is used by `synth`, `quantize` and the tests. It reproduces a
 * file it has read byte for byte when given the same metadata and tensors in
 * the same order.
 */
#ifndef RACKLLM_GGUF_H
#define RACKLLM_GGUF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/common.h"

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_KV (1u << 16)       /* metadata pairs: real files have ~50 */
#define GGUF_MAX_NESTED (1u << 16)   /* arrays inside arrays, in all: real files have none */
#define GGUF_MAX_TENSORS (1u << 20)  /* tensors: real files have up to a few thousand */

typedef enum gguf_vtype {
    GGUF_UINT8 = 0,
    GGUF_INT8 = 1,
    GGUF_UINT16 = 2,
    GGUF_INT16 = 3,
    GGUF_UINT32 = 4,
    GGUF_INT32 = 5,
    GGUF_FLOAT32 = 6,
    GGUF_BOOL = 7,
    GGUF_STRING = 8,
    GGUF_ARRAY = 9,
    GGUF_UINT64 = 10,
    GGUF_INT64 = 11,
    GGUF_FLOAT64 = 12,
    GGUF_VTYPE_COUNT
} gguf_vtype;

/* A string inside the mapping: not NUL-terminated. */
typedef struct gguf_str {
    const char *ptr;
    uint64_t len;
} gguf_str;

typedef struct gguf_value gguf_value;
struct gguf_value {
    uint32_t type; /* gguf_vtype */
    union {
        uint64_t u64;  /* UINT8..UINT64 (widened) */
        int64_t i64;   /* INT8..INT64 (widened, sign-extended) */
        double f64;    /* FLOAT32, FLOAT64 */
        bool b;        /* BOOL */
        gguf_str str;  /* STRING */
        struct {
            uint32_t type;      /* element type */
            uint64_t n;         /* element count */
            const uint8_t *data;/* the first element in the mapping (fixed-size elements:
                                   raw little-endian, maybe unaligned) */
            gguf_value *items;  /* ARRAY elements: parsed, n of them (else NULL; a value
                                   built by hand for the writer may hold STRING ones here) */
            uint64_t *str_at;   /* STRING elements read from a file: where each one's
                                   length field is, in bytes from data; read them with
                                   gguf_arr_str */
        } arr;
    };
};

typedef struct gguf_kv {
    gguf_str key;
    gguf_value val;
} gguf_kv;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS]; /* unused dims are 1 */
    uint32_t type;              /* rl_type */
    uint64_t offset;            /* from the start of the data section */
    uint64_t size;              /* bytes */
    const uint8_t *data;        /* into the mapping */
} gguf_tensor;

typedef struct gguf_file {
    char *path;            /* as given (or a name for in-memory files) */
    const uint8_t *map;
    uint64_t size;
    bool mapped;           /* we own an mmap of map/size */
    uint32_t version;
    uint64_t n_kv;
    gguf_kv *kv;
    uint64_t n_tensors;
    gguf_tensor *tensors;
    uint64_t alignment;
    uint64_t header_size;  /* end of the tensor infos */
    uint64_t data_offset;  /* start of the tensor data section */
} gguf_file;

/* Opens and validates a file. NULL on failure (err says why, code
 * RL_ERR_INPUT for a bad file). */
gguf_file *gguf_open(const char *path, rl_err *err);

/* Same for bytes in memory (the fuzzer, in-memory models). The bytes must
 * outlive the result; they are not copied. */
gguf_file *gguf_open_memory(const void *data, uint64_t size, const char *name, rl_err *err);

void gguf_close(gguf_file *f);

/* ---- lookup ---- */
const gguf_kv *gguf_find(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* Typed reads of a key. Each returns false if the key is absent or its type
 * does not fit (e.g. a negative integer asked for as unsigned). Integers of
 * any width are accepted; floats accept float32/float64. */
bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
bool gguf_get_f64(const gguf_file *f, const char *key, double *out);
bool gguf_get_bool(const gguf_file *f, const char *key, bool *out);
bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
/* Array of the given element type (GGUF_VTYPE_COUNT: any). */
const gguf_value *gguf_get_arr(const gguf_file *f, const char *key, uint32_t elem_type);

/* Value helpers. */
bool gguf_value_u64(const gguf_value *v, uint64_t *out);
bool gguf_value_f64(const gguf_value *v, double *out);
/* Element i of a numeric array as double / as int64 (false if not numeric). */
bool gguf_arr_f64(const gguf_value *arr, uint64_t i, double *out);
bool gguf_arr_i64(const gguf_value *arr, uint64_t i, int64_t *out);
/* Element i of an array of strings ({NULL, 0} if it is not one or i is out
 * of range). */
gguf_str gguf_arr_str(const gguf_value *arr, uint64_t i);
/* Element i of any array as a value (scalars widened as in gguf_value);
 * false if i is out of range. */
bool gguf_arr_get(const gguf_value *arr, uint64_t i, gguf_value *out);

bool gguf_str_eq(gguf_str s, const char *cstr);
const char *gguf_vtype_name(uint32_t t);
uint64_t gguf_tensor_nelements(const gguf_tensor *t);

/* Prints a value as JSON (strings escaped; long arrays cut to `max_items`
 * followed by "..." unless max_items is 0). */
void gguf_value_print_json(FILE *out, const gguf_value *v, uint64_t max_items);

/* ---- writer ---- */
typedef struct gguf_writer gguf_writer;

/* Called for a tensor added with data == NULL: fill buf (size bytes). */
typedef int (*gguf_fill_fn)(void *ctx, uint64_t tensor_index, void *buf, uint64_t size, rl_err *err);

gguf_writer *gguf_writer_new(uint32_t version);
void gguf_writer_free(gguf_writer *w);

/* Whether a file without tensors is still padded to the alignment after its
 * header: ggml does (the default), gguf-py does not. Files with tensors are
 * always padded. To reproduce a file f: pad = f->size > f->header_size. */
void gguf_writer_set_pad_empty(gguf_writer *w, bool pad);

/* Metadata, serialised at once (the arguments need not outlive the call).
 * "general.alignment" (u32) also sets the writer's alignment. */
void gguf_writer_add_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_writer_add_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_writer_add_u64(gguf_writer *w, const char *key, uint64_t v);
void gguf_writer_add_f32(gguf_writer *w, const char *key, float v);
void gguf_writer_add_bool(gguf_writer *w, const char *key, bool v);
void gguf_writer_add_str(gguf_writer *w, const char *key, const char *v);
void gguf_writer_add_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t n);
/* Fixed-size elements (UINT8..FLOAT64 except STRING/ARRAY), raw bytes. */
void gguf_writer_add_arr(gguf_writer *w, const char *key, uint32_t elem_type, const void *data, uint64_t n);
/* Any value, e.g. one read from another file (nested arrays included). */
void gguf_writer_add_value(gguf_writer *w, gguf_str key, const gguf_value *v);

/* A tensor; data (size bytes, owned by the caller, alive until write) or
 * NULL to have `fill` produce it while writing. */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const uint64_t *ne, const void *data, rl_err *err);

/* Writes the file (atomically: to PATH.tmp, then renamed). `progress`, if
 * not NULL, is called after each tensor. */
int gguf_writer_write(gguf_writer *w, const char *path, gguf_fill_fn fill, void *fill_ctx,
                      void (*progress)(void *ctx, uint64_t done, uint64_t total), rl_err *err);

/* Same, to a stream (no temp file). */
int gguf_writer_write_stream(gguf_writer *w, FILE *out, const char *name, gguf_fill_fn fill,
                             void *fill_ctx,
                             void (*progress)(void *ctx, uint64_t done, uint64_t total),
                             rl_err *err);

/* Copies every metadata pair of `f` except those whose key is in `skip`
 * (NULL-terminated list; may be NULL). */
void gguf_writer_copy_kv(gguf_writer *w, const gguf_file *f, const char *const *skip);

#endif
