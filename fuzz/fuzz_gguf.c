/*
 * fuzz_gguf.c — libFuzzer target for the GGUF reader (and, through it, the
 * writer and the shape reader).
 *
 * Each input is opened as an in-memory GGUF file. A refused input must have
 * been refused properly: code RL_ERR_INPUT and one line "fuzz.gguf: offset N:
 * ..." with N inside the input. An accepted input is walked completely —
 * every metadata value printed as JSON, every lookup by name, the model
 * shape, every byte of every tensor — and then written back with the writer:
 * the copy must open again with the same content, and writing the copy must
 * reproduce it byte for byte. Any violation aborts, which libFuzzer reports
 * as a crash; ASan and UBSan catch the rest.
 *
 * Build and run: `make fuzz` (see docs/fuzzing.md).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "model/shape.h"

#define NAME "fuzz.gguf"

static void require(bool ok, const char *what, const rl_err *err) {
    if (ok) return;
    fprintf(stderr, "fuzz_gguf: %s%s%s\n", what, err ? ": " : "", err ? err->msg : "");
    abort();
}

static void check_refusal(const rl_err *err, size_t size) {
    if (err->code == RL_ERR_INTERNAL) return; /* out of memory under the fuzzer's malloc limit */
    require(err->code == RL_ERR_INPUT, "refusal without RL_ERR_INPUT", err);
    require(strncmp(err->msg, NAME ": offset ", strlen(NAME ": offset ")) == 0, "refusal without an offset", err);
    require(strchr(err->msg, '\n') == NULL, "refusal message spans lines", err);
    unsigned long long off = strtoull(err->msg + strlen(NAME ": offset "), NULL, 10);
    require(off <= size, "refusal names an offset past the input", err);
}

/* Touches everything the reader exposes. Returns a checksum so that the
 * reads cannot be optimised away. */
static uint64_t walk(const gguf_file *f) {
    uint64_t sum = 0;
    FILE *null = fopen("/dev/null", "w");
    require(null != NULL, "cannot open /dev/null", NULL);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        gguf_value_print_json(null, &kv->val, 0);
        gguf_value_print_json(null, &kv->val, 3);
        char key[256];
        if (kv->key.len < sizeof key && !memchr(kv->key.ptr, 0, kv->key.len)) {
            memcpy(key, kv->key.ptr, kv->key.len);
            key[kv->key.len] = 0;
            require(gguf_find(f, key) == kv, "gguf_find does not find a key", NULL);
            uint64_t u;
            double d;
            bool b;
            gguf_str s;
            sum += gguf_get_u64(f, key, &u) ? u : 0;
            sum += gguf_get_f64(f, key, &d) && d == d ? 1 : 0;
            sum += gguf_get_bool(f, key, &b) ? b : 0;
            sum += gguf_get_str(f, key, &s) ? s.len : 0;
        }
        if (kv->val.type == GGUF_ARRAY) {
            for (uint64_t j = 0; j < kv->val.arr.n && j < 64; j++) {
                double d;
                int64_t v;
                if (gguf_arr_f64(&kv->val, j, &d)) sum += d == d;
                if (gguf_arr_i64(&kv->val, j, &v)) sum += (uint64_t)v;
            }
        }
    }
    fclose(null);
    rl_shape s;
    rl_err err = {0};
    if (shape_from_gguf(f, &s, &err) == 0) {
        sum += shape_param_count(&s) + shape_kv_bytes_per_token(&s, 2.0);
        sum += (uint64_t)shape_size_class(shape_param_count(&s));
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        require(t->data >= f->map + f->data_offset && t->data + t->size <= f->map + f->size, "tensor outside the file",
                NULL);
        require(gguf_tensor_nelements(t) > 0, "empty tensor", NULL);
        for (uint64_t j = 0; j < t->size; j++) sum += t->data[j];
        char name[256];
        if (t->name.len < sizeof name && !memchr(t->name.ptr, 0, t->name.len)) {
            memcpy(name, t->name.ptr, t->name.len);
            name[t->name.len] = 0;
            require(gguf_find_tensor(f, name) == t, "gguf_find_tensor does not find a tensor", NULL);
        }
    }
    return sum;
}

/* Writes f with the writer into memory (*len bytes, caller frees). NULL if
 * the writer cannot express it (tensor names with NUL bytes or too long). */
static char *rewrite(const gguf_file *f, size_t *len) {
    rl_err err = {0};
    for (uint64_t i = 0; i < f->n_tensors; i++)
        if (f->tensors[i].name.len >= 256 || memchr(f->tensors[i].name.ptr, 0, f->tensors[i].name.len)) return NULL;
    gguf_writer *w = gguf_writer_new(f->version);
    require(w != NULL, "out of memory", NULL);
    /* A file without tensors is padded only if the input was: an accepted
     * file may declare general.alignment = 2^31 and stop after its metadata,
     * and padding its copy would write gigabytes. (With tensors the input
     * itself must hold that padding, so the copy stays about its size.) */
    gguf_writer_set_pad_empty(w, f->data_offset > f->header_size && f->data_offset % f->alignment == 0);
    gguf_writer_copy_kv(w, f, NULL);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        char name[256];
        memcpy(name, t->name.ptr, t->name.len);
        name[t->name.len] = 0;
        require(gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, &err) == 0,
                "the writer refuses a tensor the reader accepted", &err);
    }
    char *buf = NULL;
    FILE *mem = open_memstream(&buf, len);
    require(mem != NULL, "open_memstream", NULL);
    require(gguf_writer_write_stream(w, mem, "memory", NULL, NULL, NULL, &err) == 0, "the writer fails", &err);
    fclose(mem);
    gguf_writer_free(w);
    return buf;
}

static void check_round_trip(const gguf_file *f) {
    size_t len, len2;
    char *copy = rewrite(f, &len);
    if (!copy) return;
    rl_err err = {0};
    gguf_file *g = gguf_open_memory(copy, len, "copy", &err);
    require(g != NULL, "the written copy does not open", &err);
    require(g->n_kv == f->n_kv && g->n_tensors == f->n_tensors && g->alignment == f->alignment,
            "the copy has other counts", NULL);
    for (uint64_t i = 0; i < f->n_tensors; i++)
        require(g->tensors[i].size == f->tensors[i].size &&
                    memcmp(g->tensors[i].data, f->tensors[i].data, f->tensors[i].size) == 0,
                "a tensor changed in the copy", NULL);
    char *copy2 = rewrite(g, &len2);
    require(copy2 && len2 == len && memcmp(copy, copy2, len) == 0, "writing the copy again differs", NULL);
    free(copy2);
    gguf_close(g);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rl_err err = {0};
    gguf_file *f = gguf_open_memory(data, size, NAME, &err);
    if (!f) {
        check_refusal(&err, size);
        return 0;
    }
    volatile uint64_t sum = walk(f);
    (void)sum;
    check_round_trip(f);
    gguf_close(f);
    return 0;
}
