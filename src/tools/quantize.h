/*
 * quantize.h — turning a model's F32/F16/BF16 weights into a quantized GGUF
 * file, the way llama.cpp's llama-quantize does (without an importance
 * matrix).
 *
 * Two layers:
 *  - the choice of a type for each tensor, given a target "mix" (Q4_0, Q6_K,
 *    Q4_K_M, ...): llama.cpp's rules for the Llama family, mirrored. Norms
 *    and other 1-D tensors stay as they are; output.weight (or the token
 *    embeddings, when the output reuses them) gets Q6_K; the _M mixes give
 *    attn_v and ffn_down Q6_K in the layers llama.cpp picks; a row length
 *    that is not a whole number of blocks falls back to a type that fits.
 *    `synth` uses this to lay out a model exactly as llama-quantize would.
 *  - a whole file: metadata copied (general.quantization_version and
 *    general.file_type set as llama.cpp sets them), tensors in llama.cpp's
 *    order, rows quantized with the reference quantizers (quant.h) on the
 *    thread pool, one tensor in memory at a time. On the same input the
 *    output is byte for byte the file llama-quantize writes.
 *
 * Also here, next to the mix table it reads: the one rule for what a file
 * is quantized as (quantize_file_type), which the bench and the planner
 * use.
 *
 * Deliberate differences from llama-quantize: the plain targets Q4_K and
 * Q5_K mean "that type for every weight matrix" (llama-quantize treats them
 * as aliases of Q4_K_M and Q5_K_M); a tensor whose rows fit no block at
 * all (not a multiple of 32) is kept in F16 where llama-quantize refuses;
 * mixture-of-experts and Falcon-specific rules are not mirrored.
 */
#ifndef RACKLLM_QUANTIZE_H
#define RACKLLM_QUANTIZE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/common.h"
#include "gguf/gguf.h"

/* A target, as named on the command line. */
typedef struct quantize_mix {
    const char *name;    /* "Q4_K_M" */
    uint32_t base_type;  /* rl_type most weight matrices get */
    uint32_t file_type;  /* llama.cpp's LLAMA_FTYPE_* number, for general.file_type */
    bool plain;          /* no per-layer rules (only output and fallbacks) */
    const char *about;   /* one line for --help */
} quantize_mix;

/* The mix called `name` (case-insensitive), or NULL. */
const quantize_mix *quantize_mix_find(const char *name);

/* The i-th known mix (for listing), NULL past the end. */
const quantize_mix *quantize_mix_at(size_t i);

/* What a file is quantized as, by the one rule every command uses: the
 * mix its general.file_type names ("q4_k_m"; where a plain type and a
 * llama.cpp mix share the number, as Q4_K and Q4_K_S do, the mix), else the type that holds most of its
 * tensor bytes ("q8_0"); lower case, into label (may be NULL). Returns the
 * type that holds most of the bytes. */
uint32_t quantize_file_type(const gguf_file *f, char *label, size_t size);

/* What the per-tensor rules need to know about the whole model. */
typedef struct quantize_model {
    char arch[32];       /* general.architecture ("llama"), "" if absent */
    uint32_t n_layer;    /* transformer blocks */
    uint32_t n_attn_v;   /* attn_v-like tensors (llama: one per block) */
    uint32_t n_head, n_head_kv;
    bool tied_output;    /* no output.weight: token_embd is also the output matrix */
} quantize_model;

/* Fills m from a file's metadata and tensor names. */
void quantize_model_from_file(const gguf_file *f, quantize_model *m);

/* Whether llama-quantize converts this tensor at all: weight matrices
 * (2 or more dimensions, name ending in "weight"), not norms, not the
 * small special tensors it leaves alone. */
bool quantize_tensor_allowed(const char *name, uint32_t n_dims, const uint64_t *ne);

/* The type tensor `name` (n_dims, ne, now of type cur_type) gets in mix
 * `mix`. pure: every allowed tensor gets the base type (llama-quantize
 * --pure), only shape fallbacks apply. *fell_back (may be NULL) is set when
 * the row length forced a different type than the rules chose. The layer
 * comes from the name ("blk.N."): llama.cpp counts attn_v and ffn_down
 * tensors in file order, which is the layer index for one of each per
 * block. */
uint32_t quantize_tensor_type(const quantize_mix *mix, const quantize_model *m, bool pure, const char *name,
                              uint32_t n_dims, const uint64_t *ne, uint32_t cur_type, bool *fell_back);

/* Converts nrows rows of ncols values from src_type (F32, F16, BF16) into
 * dst_type with the reference quantizers, on a pool of `threads` threads
 * (<= 1: the caller alone). Rows with NaN or infinity are an error (llama-quantize
 * rejects them too). `done`, if not NULL, is called now and then from the
 * calling thread with the number of rows finished. */
int quantize_rows(uint32_t dst_type, void *dst, uint32_t src_type, const void *src, int64_t nrows, int64_t ncols,
                  int threads, void (*done)(void *ctx, int64_t rows), void *done_ctx, rl_err *err);

typedef struct quantize_opts {
    int threads;        /* <= 1: single-threaded */
    bool pure;          /* see quantize_tensor_type */
    bool progress;      /* a progress bar on stderr (when it is a terminal) */
    FILE *log;          /* warnings (fallbacks), or NULL for none */
} quantize_opts;

typedef struct quantize_stats {
    uint64_t n_tensors, n_converted, n_fallback;
    uint64_t bytes_in, bytes_out; /* tensor data */
    uint64_t n_weights;           /* elements of all tensors */
} quantize_stats;

/* Reads in_path, writes out_path (atomically, via a temporary file). The
 * input's tensors to convert must be F32, F16 or BF16. stats may be NULL. */
int quantize_file(const char *in_path, const char *out_path, const quantize_mix *mix, const quantize_opts *opts,
                  quantize_stats *stats, rl_err *err);

#endif
