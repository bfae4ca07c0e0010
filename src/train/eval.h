/*
 * eval.h — how well a model predicts a text: mean negative log-likelihood
 * per token and perplexity, scored the way llama.cpp's llama-perplexity
 * scores them, so the figures compare with its output on the same file.
 *
 * The convention (llama-perplexity's): the whole text is tokenized once,
 * with BOS in front when the vocabulary adds one; it is cut into
 * non-overlapping windows of n_ctx tokens (a partial last window is
 * dropped; at least two windows are needed); each window's first token is
 * replaced by BOS (when added); the model reads the window from position
 * 0, and only the second half is scored: the logits at positions n_ctx/2
 * .. n_ctx-2 against the tokens at n_ctx/2+1 .. n_ctx-1, so every scored
 * token has at least n_ctx/2 tokens of context. NLL = the mean of
 * -log softmax(logits)[next token] over those tokens; perplexity =
 * exp(NLL). The uncertainty is llama-perplexity's too: the standard error
 * of the mean NLL, carried to the perplexity.
 *
 * The model runs in rackllm's engine (F16 KV cache, like llama.cpp's
 * default), several windows at once.
 */
#ifndef RACKLLM_EVAL_H
#define RACKLLM_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "model/model.h"

typedef struct eval_params {
    int n_ctx;       /* window (llama-perplexity's default: 512) */
    int n_threads;   /* 0: all CPUs */
    int max_seqs;    /* windows in the engine at once (default 8) */
    int max_chunks;  /* 0: every window */
    bool progress;
    const volatile int *stop;
} eval_params;

eval_params eval_default_params(void);

typedef struct eval_result {
    int64_t n_tokens;   /* the text's */
    int n_chunks;       /* windows scored */
    int64_t n_scored;   /* tokens scored */
    double nll;         /* mean NLL per scored token (nats) */
    double nll_stderr;  /* its standard error */
    double ppl, ppl_stderr;
    double seconds;     /* running the model */
    bool stopped;
} eval_result;

/* Scores `len` bytes of UTF-8 text. */
int eval_text(const model *m, const char *text, size_t len, const eval_params *p, eval_result *r, rl_err *err);
/* Scores a file's text (checked to be UTF-8). */
int eval_file(const model *m, const char *path, const eval_params *p, eval_result *r, rl_err *err);

#endif
