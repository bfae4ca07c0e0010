/*
 * tiny_shape.h — the small Llama-3-like shape the C tests synthesize
 * models of: Llama 3.2 1B's catalog entry shrunk so that every matrix row
 * is a whole number of K-quant blocks (256) and the vocabulary is just big
 * enough for the synthetic tokenizer. One definition, so that the tests
 * measure the same model; tiny_model builds one in memory (synth.h), for
 * the tests whose model's content does not matter.
 */
#ifndef RACKLLM_TINY_SHAPE_H
#define RACKLLM_TINY_SHAPE_H

#include <stdio.h>
#include <stdlib.h>

#include "gguf/gguf.h"
#include "model/model.h"
#include "model/shape.h"
#include "tools/synth.h"

static rl_shape tiny_shape(void) {
    rl_shape s;
    rl_err err = {0};
    if (shape_catalog_find("llama3.2-1b", &s, &err)) {
        fprintf(stderr, "catalog: %s\n", err.msg);
        exit(1);
    }
    snprintf(s.id, sizeof s.id, "llama3-tiny-test");
    snprintf(s.name, sizeof s.name, "tiny test shape");
    s.n_vocab = 1024;
    s.n_embd = 256;
    s.n_layer = 2;
    s.n_head = 8;
    s.n_head_kv = 2;
    s.head_dim = 32;
    s.n_ff = 512;
    return s;
}

/* A model of the tiny shape with `type` weights (a quantize mix: "q8_0")
 * from `seed`, built in memory. *data holds the GGUF bytes the model points
 * into: free it after model_free. NULL, with the reason on stderr, if it
 * cannot be built. */
static inline model *tiny_model(const char *type, uint64_t seed, void **data) {
    synth_params sp = {.shape = tiny_shape(), .type = type, .seed = seed, .n_threads = 2};
    uint64_t size = 0;
    rl_err err = {0};
    model *m = NULL;
    *data = NULL;
    if (synth_build(&sp, data, &size, &err) == 0) {
        gguf_file *f = gguf_open_memory(*data, size, "tiny", &err);
        m = f ? model_from_gguf(f, NULL, &err) : NULL;
        if (!m) gguf_close(f);
    }
    if (!m) {
        fprintf(stderr, "tiny model (%s): %s\n", type, err.msg);
        free(*data);
        *data = NULL;
    }
    return m;
}

#endif
