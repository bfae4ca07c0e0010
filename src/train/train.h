/*
 * train.h — training a Llama-family model in C, the way llm.c trains GPT-2:
 * every weight in one flat F32 buffer, every activation the backward pass
 * needs kept from the forward pass, and one step that reads top to bottom
 * (train.c): forward, loss, backward, gradient clipping, AdamW.
 *
 * The model is the one the engine runs (src/engine/forward.c): token
 * embedding, then per layer RMSNorm, Q/K/V projections, RoPE (ggml's
 * "normal" RoPE on adjacent pairs, as kern_rope does it), grouped-query
 * causal attention, the output projection and a residual add, RMSNorm and a
 * SwiGLU feed-forward with its residual add; a final RMSNorm and the output
 * matrix (its own, or the embeddings when tied). A trained model written
 * as GGUF therefore runs in the engine and in llama.cpp unchanged.
 *
 * A batch is n_seq sequences of seq_len + 1 tokens: inputs and next-token
 * targets. The loss mixes next-token cross-entropy with a teacher's
 * distribution (knowledge distillation):
 *
 *   loss = (1 - alpha) * CE + alpha * tau^2 * KL(teacher_tau || student_tau)
 *
 * where both distributions are softmaxes at temperature tau and the
 * teacher is known only on its top-k tokens plus one "rest" bucket holding
 * the rest of its probability (the student's rest bucket is the sum of its
 * probabilities outside the teacher's top-k). alpha 0 is plain training.
 *
 * Matrix products run on the kernels' F32 product (kern_matmul) and so on
 * the kernels' thread pool; every other loop is spread over the same pool.
 * Results do not depend on the thread count: every output element and every
 * reduction is computed by one task in a fixed order.
 */
#ifndef RACKLLM_TRAIN_H
#define RACKLLM_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "model/shape.h"

/* ---- where each weight lives in a flat buffer ---- */

typedef struct tr_tensor {
    char name[48];   /* llama.cpp's name: "blk.0.attn_q.weight" */
    int64_t rows;    /* 1 for a vector */
    int64_t cols;
    size_t offset;   /* floats from the start of the buffer */
    bool decay;      /* weight decay applies (matrices, not norm vectors) */
} tr_tensor;

/* Per layer, in this order (the order of the tensor table). */
enum { TR_ATTN_NORM, TR_WQ, TR_WK, TR_WV, TR_WO, TR_FFN_NORM, TR_GATE, TR_UP, TR_DOWN, TR_PER_LAYER };

typedef struct tr_layout {
    rl_shape s;
    float rope_freq_scale;   /* 1 / linear scaling factor */
    float *rope_freqs;       /* head_dim / 2 Llama 3.1 factors, or NULL */
    int n_tensors;
    tr_tensor *t;            /* token_embd, output_norm, [output], then each layer's */
    int first_layer_tensor;  /* index of blk.0.attn_norm */
    size_t n_floats;         /* the whole buffer */
} tr_layout;

/* Lays out the weights of shape s. Fails (RL_ERR_INPUT) on a shape the
 * trainer cannot run, naming the reason: heads that do not divide, an odd
 * head size, zero sizes. */
int tr_layout_init(tr_layout *L, const rl_shape *s, rl_err *err);
void tr_layout_free(tr_layout *L);
/* Index of the tensor called `name`, -1 if none. */
int tr_layout_find(const tr_layout *L, const char *name);
/* Index of a layer's tensor (TR_WQ, ...). */
int tr_layer_tensor(const tr_layout *L, int layer, int kind);

/* ---- the trainer ---- */

typedef struct tr_config {
    int n_seq;          /* sequences per batch */
    int seq_len;        /* tokens per sequence (the context trained) */
    int n_threads;      /* 0: all CPUs */
    int kern_level;     /* -1: the best for this CPU */
    float lr;           /* peak learning rate */
    float min_lr_frac;  /* the cosine ends at lr * min_lr_frac */
    int warmup;         /* steps of linear warm-up */
    int total_steps;    /* the schedule's length */
    float weight_decay, beta1, beta2, adam_eps;
    float clip;         /* global gradient-norm clip; 0: none */
    float alpha;        /* weight of the distillation term (0: plain training) */
    float temperature;  /* tau */
    int top_k;          /* teacher positions carry top_k (id, logit) pairs */
} tr_config;

tr_config tr_default_config(void);

/* The teacher at one position: TR_SOFT_WORDS(k) 32-bit words, namely the
 * log-sum-exp of all its logits divided by tau (a float), then k token ids
 * (uint32), then those k logits (floats, not divided by tau). */
#define TR_SOFT_WORDS(k) (1 + 2 * (size_t)(k))

typedef struct tr_batch {
    int n_seq;                 /* <= config n_seq */
    const int32_t *tokens;     /* n_seq rows of seq_len + 1 ids */
    const uint32_t *const *soft; /* NULL, or per sequence seq_len teacher positions */
} tr_batch;

typedef struct tr_loss {
    double loss;    /* the objective, mean over positions */
    double ce;      /* mean next-token cross-entropy (nats) */
    double kl;      /* mean KL to the teacher at tau (0 without one) */
    int64_t n_tok;  /* positions scored */
} tr_loss;

typedef struct trainer trainer;

/* A trainer for the layout (which must outlive it). Weights start at zero:
 * tr_init_weights or a copy into tr_weights. */
trainer *tr_new(const tr_layout *L, const tr_config *c, rl_err *err);
void tr_free(trainer *t);

const tr_layout *tr_get_layout(const trainer *t);
const tr_config *tr_get_config(const trainer *t);
float *tr_weights(trainer *t); /* n_floats */
float *tr_grads(trainer *t);
float *tr_adam_m(trainer *t);
float *tr_adam_v(trainer *t);

/* Seeded initialisation: matrices and embeddings N(0, 0.02), the residual
 * projections (attn_output, ffn_down) scaled by 1/sqrt(2 n_layer), norms 1.
 * Each tensor draws from its own stream (seed, tensor index). */
void tr_init_weights(trainer *t, uint64_t seed);

/* The forward pass and the loss. With `grad`, also the gradient of the loss
 * with respect to the logits, for tr_backward. Token ids are checked
 * (RL_ERR_INPUT naming the first bad one), and so is every teacher id. */
int tr_forward(trainer *t, const tr_batch *b, bool grad, tr_loss *out, rl_err *err);

/* The logits of the last forward pass: n_seq * seq_len rows of n_vocab. */
const float *tr_logits(const trainer *t);

/* Gradients of every weight (into tr_grads, overwritten) from the last
 * forward pass made with grad. */
void tr_backward(trainer *t);

/* The learning rate of step `step` (0-based): linear warm-up, then cosine. */
float tr_lr(const tr_config *c, int step);

/* Clips the gradients to the global norm and applies one AdamW update as
 * step `step` (0-based: bias correction uses step + 1). Returns the
 * gradient norm before clipping. */
double tr_update(trainer *t, int step);

/* Multiply-adds x2 of one training step per token (forward + backward:
 * three times the forward's products, plus attention). */
double tr_flops_per_token(const tr_layout *L, int seq_len);

#endif
