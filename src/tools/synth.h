/*
 * synth.h — synthetic models: the exact tensors and metadata of a real
 * model's shape, filled with seeded random weights.
 *
 * A synthetic Llama-3.2-1B runs at the real model's speed (the same bytes
 * are read and the same arithmetic is done), so the bench and the server
 * can be measured on any machine without downloading anything. The same
 * seed always gives the same bytes. The tokenizer is a synthetic byte-level
 * BPE of the real vocabulary size: every byte, a few hundred letter-pair
 * merges, filler tokens, and the family's special tokens, pre-tokenizer
 * and chat template (Llama 3's; ChatML and "qwen2" / "smollm" for Qwen and
 * SmolLM2), so chat templates work. The architecture (llama, qwen2, qwen3)
 * is the shape's: Qwen2's Q/K/V biases are random like the weights, Qwen3's
 * per-head norms are 1. Each tensor's type follows llama-quantize's rules for
 * the target (quantize.h): the output matrix in Q6_K, the _M mixes' Q6_K
 * layers, norms in F32. The files load in llama.cpp too.
 */
#ifndef RACKLLM_SYNTH_H
#define RACKLLM_SYNTH_H

#include <stdint.h>
#include <stdio.h>

#include "base/common.h"
#include "model/shape.h"

typedef struct synth_params {
    rl_shape shape;     /* e.g. from shape_catalog_find */
    const char *type;   /* a quantize mix (quantize.h), any case: "f16", "q8_0",
                           "q4_0", "q4_k", "q6_k", "q4_k_m", "q5_k_m", ...; each
                           tensor gets the type llama-quantize would give it */
    uint64_t seed;
    uint32_t layers;    /* 0: the shape's; otherwise fewer (tests) */
    int n_threads;      /* 0: all CPUs */
    bool progress;      /* progress bar on a TTY */
} synth_params;

/* Writes the model to `path`. */
int synth_write(const synth_params *p, const char *path, rl_err *err);

/* Builds the model in memory: *data (malloc'ed) holds the GGUF bytes. */
int synth_build(const synth_params *p, void **data, uint64_t *size, rl_err *err);

/* Bytes of tensor data the file will have (for messages and planning);
 * 0 on error. */
uint64_t synth_file_size(const synth_params *p, rl_err *err);

/* One tensor of the model, as it will be written. */
typedef struct synth_tensor {
    char name[64];
    uint32_t type, n_dims;
    uint64_t ne[2]; /* ne[0]: row length; ne[1]: rows (1 for vectors) */
} synth_tensor;

/* The tensors in file order, without making any data: *out (malloc'ed)
 * holds *n of them. */
int synth_tensors(const synth_params *p, synth_tensor **out, int *n, rl_err *err);

#endif
