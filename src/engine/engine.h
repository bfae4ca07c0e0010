/*
 * engine.h — the one batched-step API that `run`, `bench` and the server
 * share.
 *
 *   e   = engine_open(model, params)         threads, sequences, context
 *   seq = engine_seq_add(e, prompt, sampler)  own KV cache, position, sampler
 *   engine_step(e)                            prefill chunks + one decode token
 *                                             for every active sequence
 *   engine_seq_take(seq, &token)              what this step produced
 *   engine_seq_remove(e, seq)                 frees its KV cache at once
 *
 * A step gathers, for every sequence with input, some of that input into one
 * batch: first one token from each sequence that is decoding (so running
 * streams never wait), then chunks of pending prompts up to the step's token
 * budget. When a sequence's input runs out in a step, its logits are ready:
 * with a sampler it draws the next token (which becomes its next input);
 * without one ("manual" sequences, for tests and scoring) the caller reads
 * the logits and feeds the next tokens itself.
 *
 * Sequences never see each other: outputs are identical whether a sequence
 * runs alone or in a batch. Partitions are simply several engines over one
 * model, each with its own threads (pinned to its own cores).
 *
 * Not thread-safe: one thread drives an engine (the server's scheduler).
 */
#ifndef RACKLLM_ENGINE_H
#define RACKLLM_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/common.h"
#include "model/model.h"
#include "prefix_cache.h"
#include "sampler.h"

typedef struct engine_params {
    int n_threads;       /* 0: all available CPUs */
    const int *cpus;     /* optional: pin thread i to cpus[i] */
    int max_seqs;        /* sequences at once (default 1) */
    int n_ctx;           /* context per sequence (default: min(model's, 4096)) */
    int max_batch;       /* tokens per step (default 512): the prefill chunk budget */
    bool kv_f32;         /* F32 KV cache (default F16, as llama.cpp) */
    int kern_level;      /* -1: best for this CPU (see kernels.h) */
} engine_params;

engine_params engine_default_params(void);

typedef struct engine engine;
typedef struct engine_seq engine_seq;

typedef enum engine_seq_state {
    SEQ_PREFILL = 0, /* prompt tokens pending */
    SEQ_DECODE,      /* one token pending per step */
    SEQ_IDLE,        /* manual sequence: logits ready, waiting for input */
    SEQ_FULL,        /* context exhausted: no more input fits */
} engine_seq_state;

engine *engine_open(const model *m, const engine_params *p, rl_err *err);
void engine_close(engine *e);

const model *engine_model(const engine *e);
int engine_n_ctx(const engine *e);
int engine_active(const engine *e);   /* sequences added and not removed */
int engine_capacity(const engine *e); /* max_seqs */
kernels *engine_kernels(engine *e);

/* From now on, removed sequences' KV caches go to `pc` and new sequences
 * start from the longest cached prefix of their prompt (NULL: no cache,
 * the default). One cache may serve several engines over the same model
 * with the same KV type. */
void engine_set_prefix_cache(engine *e, prefix_cache *pc);

/* Adds a sequence. `sp` NULL makes a manual sequence. Fails (RL_ERR_INPUT)
 * if the prompt is empty or does not fit the context, or (RL_ERR_INTERNAL)
 * if max_seqs are active or memory is short. With a prefix cache, the
 * sequence starts, when its prompt's turn comes in a step, from the cached
 * state that shares the most leading tokens with the prompt (all but its
 * last token at most): those tokens are not computed again
 * (engine_seq_cached, known from that step on). */
engine_seq *engine_seq_add(engine *e, const int32_t *prompt, int n, const sampler_params *sp, rl_err *err);
/* The same with a context of its own, n_ctx <= the engine's (0: the
 * engine's): its KV cache holds that many positions, and it is full (SEQ_FULL)
 * there. A server that knows how far a session may go allocates no more. */
engine_seq *engine_seq_add_ctx(engine *e, const int32_t *prompt, int n, const sampler_params *sp, int n_ctx,
                               rl_err *err);
/* The most memory a sequence of n_ctx positions (0: the engine's context)
 * allocates: KV cache, input, logits, sampler. */
uint64_t engine_seq_bytes(const engine *e, int n_ctx);

/* More input for a sequence (manual sequences; or a chat's next turn). */
int engine_seq_feed(engine_seq *s, const int32_t *tokens, int n, rl_err *err);

/* Runs one step. Returns the number of tokens processed (0: nothing to do),
 * -1 on error. */
int engine_step(engine *e, rl_err *err);

/* Caps the prompt tokens a step may take (after the decoders' one token
 * each): 0 lets only decoders run, a negative value restores the default
 * (max_batch). A scheduler uses it to spend only the time its running
 * sessions can spare on new prompts. */
void engine_set_prefill_budget(engine *e, int tokens);

/* The token sampled in the last step, if any (true once per token). */
bool engine_seq_take(engine_seq *s, int32_t *token);
/* Logits (n_vocab) of the last token processed, valid after the step in
 * which the sequence's input ran out; NULL before. */
const float *engine_seq_logits(const engine_seq *s);
engine_seq_state engine_seq_get_state(const engine_seq *s);
int engine_seq_pos(const engine_seq *s);      /* tokens in its cache */
int engine_seq_cached(const engine_seq *s);   /* of its prompt, taken from the prefix cache (so far) */
void engine_seq_set_user(engine_seq *s, void *user);
void *engine_seq_user(const engine_seq *s);

/* Ends a sequence and frees its memory; with a prefix cache, its KV cache
 * (the tokens it has processed) goes there instead. */
void engine_seq_remove(engine *e, engine_seq *s);

/* Seconds a step spends per token of one sequence's context in attention
 * (forward_attention_cost: measured on a scratch cache, a few ms). */
int engine_attention_cost(engine *e, double *seconds_per_token, rl_err *err);

/* Counters since open (for bench and metrics). */
typedef struct engine_stats {
    uint64_t steps, prompt_tokens, decode_tokens;
    double prompt_seconds, decode_seconds; /* time in steps, split by token share */
} engine_stats;
engine_stats engine_get_stats(const engine *e);

#endif
