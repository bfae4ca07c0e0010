/*
 * model.h — a Llama-family model (llama, qwen2, qwen3) loaded from GGUF: its shape, its weights,
 * its tokenizer and chat template. The weights are the file's read-only
 * mapping plus two kinds of copies made at load: the small norm vectors,
 * as floats, and each weight matrix whose type has a tiled layout at this
 * CPU's kernel level, packed once into those tiles (kern_matrix_pack). The
 * products read the packed copy; the original pages of a mapped file then
 * leave the resident set.
 *
 * Loading checks every tensor the architecture needs: present, the right
 * shape for the hyper-parameters, a type rackllm computes with. A missing or
 * misshapen tensor is an error naming it; so is an unsupported type.
 *
 * A model is immutable after loading and shared by every engine (partition)
 * and every sequence.
 */
#ifndef RACKLLM_MODEL_H
#define RACKLLM_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/common.h"
#include "gguf/gguf.h"
#include "kernels/kernels.h"
#include "shape.h"
#include "text/tokenizer.h"

typedef struct model_layer {
    const float *attn_norm, *ffn_norm; /* n_embd floats */
    kern_matrix wq, wk, wv, wo;        /* attention */
    const float *bq, *bk, *bv;         /* Q/K/V biases (shape.qkv_bias) or NULL */
    const float *q_norm, *k_norm;      /* per-head RMS norm, head_dim floats (shape.qk_norm) or NULL */
    kern_matrix w_gate, w_up, w_down;  /* SwiGLU feed-forward */
} model_layer;

typedef struct model {
    gguf_file *file;
    rl_shape shape;
    tokenizer *tok;
    char *chat_template;        /* tokenizer.chat_template, NULL if none */
    kern_matrix tok_embd;       /* n_vocab rows of n_embd */
    kern_matrix output;         /* == tok_embd when tied */
    const float *output_norm;
    const float *rope_freqs;    /* head_dim/2 factors or NULL */
    float rope_freq_scale;      /* 1 / linear scaling factor */
    model_layer *layers;
    float *floats;              /* storage for the norm vectors */
    uint64_t n_params;
    uint64_t weight_bytes;      /* bytes of all tensors */
} model;

typedef struct model_load_params {
    bool progress; /* show a progress bar (on a TTY) while touching the weights */
    bool prefault; /* read every page now rather than on first use */
} model_load_params;

/* Opens FILE and loads it. */
model *model_load(const char *path, const model_load_params *p, rl_err *err);
/* Loads from an open file; the model takes ownership of `f` on success. */
model *model_from_gguf(gguf_file *f, const model_load_params *p, rl_err *err);
void model_free(model *m);

/* Bytes read from the weights for one decode token (every matrix once, the
 * output matrix, one embedding row). */
uint64_t model_bytes_per_token(const model *m);

#endif
