/*
 * sampler.h — choosing the next token from logits, and knowing when to stop.
 *
 * The chain is llama.cpp's (common_sampler's default order):
 *
 *   penalties -> top-k -> top-p -> min-p -> temperature -> seeded draw
 *
 * - Penalties look at the tokens of the last `penalty_last_n` accepted
 *   tokens. For each distinct token seen there, `count` times:
 *   repetition divides a positive logit by repeat_penalty and multiplies a
 *   negative one (so a penalty always makes the token less likely); then
 *   frequency and presence subtract `count * frequency_penalty +
 *   presence_penalty` (OpenAI's definition).
 * - top-k keeps the k highest logits (ties: the lower id wins).
 * - top-p keeps the smallest set of most likely tokens whose probability
 *   (softmax at temperature 1 over what top-k left) reaches top_p; at least
 *   one token survives.
 * - min-p keeps the tokens whose probability is at least min_p times the
 *   most likely token's (a threshold on logits: max + log(min_p)).
 * - temperature divides the surviving logits; the draw picks one in
 *   proportion to softmax of the result. Note that top-p and min-p, coming
 *   first, see temperature-1 probabilities, exactly as in llama.cpp.
 * - temperature <= 0 is greedy: the argmax of the logits after penalties
 *   (with no penalties, the argmax of the raw logits); ties go to the
 *   lowest id. It does not use the random stream.
 *
 * Determinism: each sampler has its own random stream (xoshiro256**,
 * seeded from params.seed), so the same seed and the same logits give the
 * same tokens, whatever other sessions do.
 *
 * Cost: a sampler owns scratch space sized once at sampler_new, so sampling
 * never allocates. On a 128k vocabulary the common paths are one pass over
 * the logits: greedy is an argmax; top-k is a bounded heap (O(n log k) worst
 * case, O(n) typically); min-p is a threshold. top-p without top-k needs
 * the softmax normaliser over the whole vocabulary (one exp per logit, like
 * llama.cpp), and never sorts it: a histogram of probability mass by
 * distance from the max logit finds the band of logits that holds top_p of
 * the mass; only tokens in that band are copied, and a quickselect that
 * sums mass instead of counting (expected linear time) finds the exact cut
 * among them, so a flat distribution with a huge nucleus costs O(n) too.
 *
 * NaN logits count as -infinity; any logits give a token id in range.
 *
 * The stop matcher watches generated text for stop strings, holding back a
 * tail that could still become one, so no byte of a stop string is emitted.
 */
#ifndef RACKLLM_SAMPLER_H
#define RACKLLM_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

typedef struct sampler_params {
    float temperature;       /* <= 0: greedy */
    int32_t top_k;           /* <= 0 or >= n_vocab: off */
    float top_p;             /* >= 1: off */
    float min_p;             /* <= 0: off */
    float repeat_penalty;    /* 1: off; must be > 0 */
    float presence_penalty;  /* 0: off */
    float frequency_penalty; /* 0: off */
    int32_t penalty_last_n;  /* tokens of history the penalties look at; 0: no penalties.
                                (llama.cpp's -1 "whole context" is the caller's to translate:
                                pass the context size.) */
    uint64_t seed;
} sampler_params;

/* Most that penalty_last_n may be (the history ring is allocated up front). */
#define SAMPLER_MAX_LAST_N (1 << 20)

/* llama.cpp's defaults: temp 0.8, top-k 40, top-p 0.95, min-p 0.05,
 * penalties off, last 64 tokens, seed 0xFFFFFFFF ("random" is the caller's
 * business: pass a seed). */
sampler_params sampler_default_params(void);

typedef struct sampler sampler;

/* Checks the parameters (RL_ERR_INPUT naming the bad one) and allocates all
 * scratch space for an n_vocab-token vocabulary. */
sampler *sampler_new(const sampler_params *p, int32_t n_vocab, rl_err *err);
void sampler_free(sampler *s);
void sampler_reset(sampler *s); /* forget history, restart the random stream */
const sampler_params *sampler_get_params(const sampler *s);

/* Picks a token from n_vocab logits (not modified). Does not record it:
 * call sampler_accept with the token actually used. */
int32_t sampler_sample(sampler *s, const float *logits);

/* The distribution the next sampler_sample would draw from: writes the
 * surviving tokens and their probabilities (after temperature, summing to
 * 1) to ids[] and probs[] (room for n_vocab each), in no promised order,
 * and returns how many. Greedy gives one token with probability 1. Uses
 * no randomness; for tests and for reporting log-probabilities. */
int32_t sampler_distribution(sampler *s, const float *logits, int32_t *ids, float *probs);

/* ---- log-probabilities (OpenAI's logprobs / top_logprobs) ----
 * Of the model's own distribution: log-softmax of the raw logits, before
 * penalties, top-k/p, min-p and temperature (as OpenAI and llama-server
 * report them), so they do not depend on the sampling settings. */
#define SAMPLER_MAX_TOP_LOGPROBS 20

typedef struct sampler_logprob {
    int32_t token;   /* the token chosen */
    float logprob;   /* its log-probability (<= 0; -inf for a NaN/-inf logit) */
    int n_top;       /* the most likely tokens, best first (ties: lower id) */
    int32_t top_ids[SAMPLER_MAX_TOP_LOGPROBS];
    float top_logprobs[SAMPLER_MAX_TOP_LOGPROBS];
} sampler_logprob;

/* Fills *out for `token` (an id out of range counts as 0) and the n_top
 * (clamped to 0..SAMPLER_MAX_TOP_LOGPROBS) most likely tokens, from
 * n_vocab logits (not modified). One pass: one exp per logit. */
void sampler_logprobs(const float *logits, int32_t n_vocab, int32_t token, int n_top, sampler_logprob *out);

/* Records a token in the history the penalties see (prompt and output).
 * Ids outside [0, n_vocab) are ignored. */
void sampler_accept(sampler *s, int32_t token);

/* ---- stop strings ---- */
typedef struct stop_matcher stop_matcher;

/* Limits that keep the byte-by-byte scan cheap; beyond them: RL_ERR_INPUT. */
#define STOP_MAX_STRINGS 64
#define STOP_MAX_LEN 1024

/* Copies the stop strings (empty ones are ignored; n_stops may be 0). */
stop_matcher *stop_new(const char *const *stops, int n_stops, rl_err *err);
void stop_free(stop_matcher *m);
void stop_reset(stop_matcher *m); /* for the next generation */
/* Length of the longest stop string (0 if none). */
size_t stop_max_len(const stop_matcher *m);

/* Feeds newly generated text (bytes: a UTF-8 character split across pushes
 * is fine). Writes to `out` the part that is safe to emit now (never any
 * byte of a stop string) and returns its length; sets *stopped when a stop
 * string completed: the text before it is emitted, the rest dropped, and
 * later pushes emit nothing. The first stop string to complete wins (if two
 * end at the same byte, the longer one), so the result does not depend on
 * how the text was split into pushes. `out` must not overlap `text` and
 * must hold len + stop_max_len(m) bytes. */
size_t stop_push(stop_matcher *m, const char *text, size_t len, char *out, bool *stopped);
/* At the end: the held-back tail that turned out not to be a stop string
 * (at most stop_max_len(m) bytes). */
size_t stop_flush(stop_matcher *m, char *out);

/* The best logit's id: ties go to the lowest, all-NaN gives 0 (greedy
 * decoding; the bench's too). */
int32_t sampler_argmax(const float *l, int32_t n);

#endif
