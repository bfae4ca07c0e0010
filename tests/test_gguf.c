/*
 * test_gguf.c — the GGUF reader and writer on real files: every model in
 * ../shared/models opens, its metadata reads back as expected, and
 * read -> write -> read reproduces the file byte for byte.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "gguf/gguf.h"
#include "model/shape.h"
#include "test.h"

static const char *MODELS[] = {
    "models/stories260K.gguf", "models/synth-s512-f16.gguf", "models/synth-s512-q4_k_m.gguf",
    "models/synth-l3-q8_0.gguf", "golden/tokenizer/ggml-vocab-llama-spm.gguf",
    "golden/tokenizer/ggml-vocab-llama-bpe.gguf",
};

/* Writes f back through the writer into memory and compares bytes. */
static void check_round_trip(const gguf_file *f) {
    gguf_writer *w = gguf_writer_new(f->version);
    rl_err err = {0};
    gguf_writer_set_pad_empty(w, f->size > f->header_size);
    gguf_writer_copy_kv(w, f, NULL);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        CHECK(gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data, &err) == 0);
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    CHECK(gguf_writer_write_stream(w, mem, "memory", NULL, NULL, NULL, &err) == 0);
    fclose(mem);
    CHECKF(len == f->size, "%s: rewritten size %zu, original %llu", f->path, len, (unsigned long long)f->size);
    CHECKF(len == f->size && memcmp(buf, f->map, len) == 0, "%s: rewritten bytes differ", f->path);
    gguf_file *g = gguf_open_memory(buf, len, "rewritten", &err);
    CHECKF(g != NULL, "%s", err.msg);
    if (g) CHECK_EQ_INT(g->n_tensors, f->n_tensors);
    gguf_close(g);
    free(buf);
    gguf_writer_free(w);
}

static void test_round_trips(void) {
    rl_err err = {0};
    for (size_t i = 0; i < sizeof MODELS / sizeof *MODELS; i++) {
        gguf_file *f = gguf_open(shared_path(MODELS[i]), &err);
        CHECKF(f != NULL, "%s", err.msg);
        if (!f) continue;
        CHECK(f->version == 2 || f->version == 3);
        check_round_trip(f);
        gguf_close(f);
    }
}

static void test_shapes(void) {
    rl_err err = {0};
    gguf_file *f = gguf_open(shared_path("models/stories260K.gguf"), &err);
    CHECKF(f != NULL, "%s", err.msg);
    if (f) {
        rl_shape s;
        CHECKF(shape_from_gguf(f, &s, &err) == 0, "%s", err.msg);
        CHECK_EQ_INT(s.n_embd, 64);
        CHECK_EQ_INT(s.n_layer, 5);
        CHECK_EQ_INT(s.n_head, 8);
        CHECK_EQ_INT(s.n_head_kv, 4);
        CHECK_EQ_INT(s.n_ff, 172);
        CHECK_EQ_INT(s.head_dim, 8);
        CHECK_EQ_INT(s.n_vocab, 512);
        CHECK(!s.tied_embeddings);
        const gguf_tensor *t = gguf_find_tensor(f, "token_embd.weight");
        CHECK(t && t->ne[0] == 64 && t->ne[1] == 512 && t->type == 0);
        uint64_t total = 0;
        for (uint64_t i = 0; i < f->n_tensors; i++) total += gguf_tensor_nelements(&f->tensors[i]);
        CHECK_EQ_INT(shape_param_count(&s), total);
        gguf_close(f);
    }
    f = gguf_open(shared_path("models/synth-l3-q8_0.gguf"), &err);
    if (f) {
        rl_shape s;
        CHECKF(shape_from_gguf(f, &s, &err) == 0, "%s", err.msg);
        CHECK(s.tied_embeddings);
        CHECK(s.rope_scaling == RL_ROPE_SCALING_LLAMA3);
        CHECK_NEAR(s.rope_base, 500000, 0);
        CHECK_EQ_INT(s.n_vocab, 128256);
        gguf_close(f);
    }
}

static void test_catalog_sizes(void) {
    rl_err err = {0};
    /* The catalog's Llama 3.2 1B is the shape of the reference synthetic file
     * (1,235,814,432 parameters, rope_freqs included). */
    rl_shape s;
    CHECKF(shape_catalog_find("llama3.2-1b", &s, &err) == 0, "%s", err.msg);
    CHECK_EQ_INT(shape_param_count(&s), 1235814432ull);
    CHECK_EQ_INT(shape_size_class(shape_param_count(&s)), 0);
    CHECK(shape_catalog_find("llama3.1-8b", &s, &err) == 0);
    CHECK_EQ_INT(shape_size_class(shape_param_count(&s)), 1);
    CHECK(shape_catalog_find("llama3.3-70b", &s, &err) == 0);
    CHECK_EQ_INT(shape_size_class(shape_param_count(&s)), 2);
    CHECK(shape_catalog_find("llama3.1-405b", &s, &err) == 0);
    CHECK_EQ_INT(shape_size_class(shape_param_count(&s)), 3);
    CHECK(shape_catalog_find("no-such-model", &s, &err) == -1 && err.code == RL_ERR_INPUT);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(test_round_trips);
    RUN(test_shapes);
    RUN(test_catalog_sizes);
    return test_report("test_gguf");
}
