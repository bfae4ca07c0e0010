/*
 * tiny_shape.h — the small Llama-3-like shape the C tests synthesize
 * models of: Llama 3.2 1B's catalog entry shrunk so that every matrix row
 * is a whole number of K-quant blocks (256) and the vocabulary is just big
 * enough for the synthetic tokenizer. One definition, so that the bench and
 * synth tests measure the same model.
 */
#ifndef RACKLLM_TINY_SHAPE_H
#define RACKLLM_TINY_SHAPE_H

#include <stdio.h>
#include <stdlib.h>

#include "model/shape.h"

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

#endif
