/*
 * forward.h — the Llama transformer's forward pass over a batch of tokens.
 *
 * A batch is any mix of tokens from any sequences: a decode token from each
 * running session and a chunk of a new prompt can share one pass. Every
 * weight matrix is read once per pass for all of them — that is what makes
 * many sessions cheap. Each token carries its position and its sequence's
 * KV cache; attention is causal within a sequence (a token sees its cache
 * up to and including its own position).
 *
 * The pass owns its scratch buffers, sized at creation for the largest batch
 * and context it will see, so running it never allocates.
 */
#ifndef RACKLLM_FORWARD_H
#define RACKLLM_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "base/common.h"
#include "kernels/kernels.h"
#include "model/model.h"

/* A sequence's KV cache: for each layer, K then V, each n_head_kv runs of
 * n_ctx positions of head_dim elements (F16 or F32). Head-major, so that
 * attention for one KV head reads one contiguous stream (position-major
 * rows made it read 128 bytes of every 1 KB row: half of a long-context
 * decode step went to stalls on that stride). */
typedef struct fw_kv {
    void *data;
    int n_ctx;
} fw_kv;

typedef struct fw_batch {
    int n;                   /* tokens in the batch */
    const int32_t *token;    /* n token ids */
    const int32_t *pos;      /* n positions */
    fw_kv *const *kv;        /* n caches (rows of one sequence share one) */
    int n_out;               /* rows whose logits are wanted */
    const int *out_rows;     /* their indices in the batch */
    float *const *out_logits;/* where each one's n_vocab logits go */
} fw_batch;

typedef struct forward forward;

forward *forward_new(const model *m, kernels *k, int max_tokens, int max_out, int max_ctx, bool kv_f16,
                     rl_err *err);
void forward_free(forward *f);

/* Runs the batch: fills each sequence's KV cache at the given positions and
 * writes the requested logits. Positions must be < the cache's n_ctx and
 * token ids < n_vocab (checked: -1 with err set). */
int forward_run(forward *f, const fw_batch *b, rl_err *err);

/* Seconds a pass spends in attention per token of one sequence's context,
 * all layers (its KV reads and arithmetic), measured here on a scratch
 * cache of up to max_ctx positions (about 64 MiB, so that it streams from
 * memory as a busy server's caches do). The scheduler admits long contexts
 * by it. */
int forward_attention_cost(forward *f, double *per_token, rl_err *err);

/* Bytes of one sequence's KV cache of n_ctx positions. */
uint64_t forward_kv_bytes(const model *m, int n_ctx, bool kv_f16);

/* The memory a cache with n_pos positions written occupies: the pages
 * touched, a part page at the end of each layer's and head's run included
 * (the untouched rest of its n_ctx positions costs nothing). */
uint64_t forward_kv_resident(const model *m, int n_pos, bool kv_f16);

/* Copies positions 0..n_pos-1 of every layer and head from one cache to
 * another (their n_ctx may differ; both at least n_pos): a sequence that
 * starts from a cached prefix (prefix_cache.h). */
void forward_kv_copy(const model *m, bool kv_f16, fw_kv *dst, const fw_kv *src, int n_pos);

#endif
