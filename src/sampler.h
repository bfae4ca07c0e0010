/*
 * sampler.h — choosing the next token from logits, and knowing when to stop.
 *
 * The chain is llama.cpp's order: penalties (repetition, presence,
 * frequency, over the last N tokens) -> top-k -> top-p -> min-p ->
 * temperature -> a seeded draw. Temperature 0 is greedy (argmax of the raw
 * logits: ties go to the lowest id). Same seed and same logits give the same
 * tokens. A sampler owns its scratch space, sized once, so sampling never
 * allocates.
 *
 * The stop matcher watches generated text for stop strings, holding back a
 * tail that could still become one, so no part of a stop string is emitted.
 */
#ifndef RACKLLM_SAMPLER_H
#define RACKLLM_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

typedef struct sampler_params {
    float temperature;       /* 0: greedy */
    int32_t top_k;           /* 0: off */
    float top_p;             /* 1: off */
    float min_p;             /* 0: off */
    float repeat_penalty;    /* 1: off */
    float presence_penalty;  /* 0: off */
    float frequency_penalty; /* 0: off */
    int32_t penalty_last_n;  /* tokens of history the penalties look at */
    uint64_t seed;
} sampler_params;

/* llama.cpp's defaults: temp 0.8, top-k 40, top-p 0.95, min-p 0.05,
 * penalties off, last 64 tokens, seed 0xFFFFFFFF ("random" is the caller's
 * business: pass a seed). */
sampler_params sampler_default_params(void);

typedef struct sampler sampler;

sampler *sampler_new(const sampler_params *p, int32_t n_vocab, rl_err *err);
void sampler_free(sampler *s);
void sampler_reset(sampler *s); /* forget history, restart the random stream */

/* Picks a token from n_vocab logits (not modified). */
int32_t sampler_sample(sampler *s, const float *logits);

/* Records a token in the history the penalties see (prompt and output). */
void sampler_accept(sampler *s, int32_t token);

/* ---- stop strings ---- */
typedef struct stop_matcher stop_matcher;

stop_matcher *stop_new(const char *const *stops, int n_stops, rl_err *err);
void stop_free(stop_matcher *m);

/* Feeds newly generated text. Writes to `out` the part that is safe to
 * emit now (never any byte of a stop string) and returns its length; sets
 * *stopped when a stop string completed (text after it is dropped).
 * `out` must hold len + the longest stop string bytes. */
size_t stop_push(stop_matcher *m, const char *text, size_t len, char *out, bool *stopped);
/* At the end: the held-back tail that turned out not to be a stop string. */
size_t stop_flush(stop_matcher *m, char *out);

#endif
