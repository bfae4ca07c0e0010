/*
 * shape.h — a model's shape: the hyper-parameters that fix its tensors.
 *
 * One struct serves every layer that reasons about a model without running
 * it: `info` (parameters, RAM), `synth` (which tensors to write), `plan`
 * (bytes per token, FLOPs) and the model loader (what to expect in a file).
 * Shapes come from a GGUF file's metadata or from the catalog of real models
 * in data/models.json. The size classes of the seed's taxonomy are defined
 * here, once.
 */
#ifndef RACKLLM_SHAPE_H
#define RACKLLM_SHAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

struct gguf_file;
struct gguf_writer;

typedef enum {
    RL_ROPE_SCALING_NONE = 0,
    RL_ROPE_SCALING_LINEAR = 1, /* positions divided by factor */
    RL_ROPE_SCALING_LLAMA3 = 2, /* Llama 3.1 per-frequency factors (rope_freqs) */
} rl_rope_scaling;

typedef enum {
    RL_ROPE_NORM = 0, /* pairs (x[2i], x[2i+1]): Llama */
    RL_ROPE_NEOX = 1, /* pairs (x[i], x[i + head_dim/2]): Qwen */
} rl_rope_type;

/* What an architecture changes in the Llama block, as data: the model
 * loader asks for the tensors these imply and the forward pass applies
 * them. One row per `general.architecture` rackllm runs (shape.c); its name
 * is also the prefix of the file's hyper-parameter keys. */
typedef struct rl_arch {
    const char *name;  /* "llama", "qwen2", "qwen3" */
    int rope_type;     /* rl_rope_type */
    bool qkv_bias;     /* blk.N.attn_q/k/v.bias added after the products */
    bool qk_norm;      /* blk.N.attn_q_norm/attn_k_norm: RMS norm per head before RoPE */
} rl_arch;

/* The architecture named `name`, or NULL when rackllm does not run it. */
const rl_arch *shape_arch_find(const char *name, size_t len);
/* The names rackllm runs, ", "-separated (for error messages). */
const char *shape_arch_names(void);

typedef struct rl_shape {
    char id[48];     /* catalog id ("llama3.2-1b") or "" for a file */
    char name[64];   /* human name, or general.name of a file */
    char arch[16];   /* general.architecture: an rl_arch name */
    int rope_type;   /* rl_rope_type: from the architecture */
    bool qkv_bias, qk_norm; /* from the architecture (rl_arch) */
    uint32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, head_dim;
    uint32_t n_ctx_train;
    float rope_base, rms_eps;
    bool tied_embeddings; /* no separate output.weight */
    int rope_scaling;     /* rl_rope_scaling */
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    uint32_t rope_orig_ctx;
} rl_shape;

/* Reads the hyper-parameters of a file of an architecture rackllm runs
 * (llama, qwen2, qwen3: the keys under that prefix; vocabulary size from
 * the token list or token_embd). Fails on other architectures, naming
 * them, and on inconsistent numbers, naming the key. */
int shape_from_gguf(const struct gguf_file *f, rl_shape *s, rl_err *err);

/* Writes the shape as a `llama` file's hyper-parameters (llama.vocab_size
 * ... <arch>.attention.layer_norm_rms_epsilon, and linear rope scaling),
 * the keys shape_from_gguf reads back and llama.cpp loads. */
void shape_write_gguf(struct gguf_writer *w, const rl_shape *s);

/* The catalog (data/models.json). `shape_catalog_count` entries, by index or id. */
int shape_catalog_count(void);
int shape_catalog_get(int i, rl_shape *s, rl_err *err);
int shape_catalog_find(const char *id, rl_shape *s, rl_err *err);

/* Sets the architecture's fields of s (arch, rope_type, qkv_bias,
 * qk_norm); -1 if rackllm does not run it. */
int shape_set_arch(rl_shape *s, const char *arch, rl_err *err);

/* Parameters of the tensors this shape implies (embeddings, per-layer
 * weights, biases and norms, output, rope_freqs for Llama 3.1 scaling). */
uint64_t shape_param_count(const rl_shape *s);

/* Bytes of K and V for one token over all layers, elements of `elem_bytes`. */
uint64_t shape_kv_bytes_per_token(const rl_shape *s, double elem_bytes);

/* Multiply-adds x2 per token for a decode step at context position `pos`
 * (weights plus attention over pos previous tokens). */
double shape_flops_per_token(const rl_shape *s, uint32_t pos);
/* ... the part of it that is attention (q.k and p.v over pos positions):
 * floating-point arithmetic, where the weights' is int8 when quantized. */
double shape_attention_flops(const rl_shape *s, uint32_t pos);

/* The seed's size classes: 0 (< 4B parameters), 1 (4B-20B), 2 (20B-200B),
 * 3 (> 200B). */
int shape_size_class(uint64_t n_params);
const char *shape_size_class_label(int size_class);

/* The Llama 3.1 frequency factors (head_dim/2 of them) that the converter
 * stores as rope_freqs.weight; false if the shape has no llama3 scaling. */
bool shape_llama3_rope_freqs(const rl_shape *s, float *factors);

#endif
