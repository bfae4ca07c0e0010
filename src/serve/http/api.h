/*
 * api.h — the OpenAI-compatible JSON of the server: requests in, responses
 * out, nothing about HTTP.
 *
 * Parsing takes a request body and either fills an api_request whose every
 * field is checked (type and range), or fills an api_error naming the field
 * (OpenAI's error object: message, type, param, code) with the HTTP status
 * to answer. Fields the OpenAI API defines and rackllm cannot honour (n > 1,
 * tools, logit_bias) are refused by name rather than ignored; fields it
 * does not know are ignored, as OpenAI's own clients send a few (the list
 * of every field and what happens to it: docs/server.md, "Request fields").
 *
 * Responses: whole objects (chat.completion, text_completion, the model
 * list, errors) are built with cJSON; the streaming chunks, written once per
 * token or so, are formatted by hand into the caller's buffer, so streaming
 * never allocates. Every string written is valid JSON whatever bytes it is
 * given (bad UTF-8 becomes U+FFFD).
 */
#ifndef RACKLLM_SERVER_API_H
#define RACKLLM_SERVER_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/sampler.h"
#include "text/tokenizer.h"

#define API_MAX_MESSAGES 4096
#define API_MAX_STOPS 16

typedef enum api_kind { API_CHAT = 0, API_COMPLETION } api_kind;

typedef struct api_message {
    const char *role;   /* "system", "user" or "assistant" ("developer" counts as system) */
    char *content;      /* the text parts joined */
} api_message;

typedef struct api_request {
    api_kind kind;
    char *model;
    api_message *messages; /* chat */
    int n_messages;
    char *prompt;          /* completion */
    int max_tokens;        /* 0: not given */
    const char *max_tokens_field; /* the field that gave it ("max_tokens" or "max_completion_tokens") */
    sampler_params sp;     /* llama.cpp's defaults for what is not given */
    bool has_seed;
    bool penalties;        /* a presence, frequency or repetition penalty given */
    int repeat_last_n;     /* the penalties' window in tokens; -1: the whole context */
    bool logprobs;         /* chat: logprobs true; completions: logprobs N given */
    int top_logprobs;      /* alternatives per token (chat 0..20, completions 0..5) */
    char *stops[API_MAX_STOPS];
    int n_stops;
    bool stream, include_usage, ignore_eos;
} api_request;

typedef struct api_error {
    int status;         /* HTTP status */
    const char *type;   /* "invalid_request_error", ... */
    char param[64];     /* the field ("" : none) */
    const char *code;   /* NULL or "context_length_exceeded", ... */
    char message[320];
} api_error;

/* Parses a request body. 0 and *out filled (free with api_request_free), or
 * -1 and *err filled (status 400). */
int api_parse_request(api_kind kind, const char *body, size_t len, api_request *out, api_error *err);
void api_request_free(api_request *r);

/* Fills an error (printf-style message; param may be NULL). Returns -1. */
int api_fail(api_error *err, int status, const char *type, const char *param, const char *code, const char *fmt,
             ...) __attribute__((format(printf, 6, 7)));

/* ---- whole responses (malloc'ed strings, NULL when out of memory) ---- */

/* What log-probabilities an answer carries (NULL or n == 0: none). The
 * token strings come from tok; text_offset (completions) is where the
 * first one's text begins, counted from the prompt's start as OpenAI does
 * (api_logprobs_bytes: how far they take it). */
typedef struct api_logprobs {
    const tokenizer *tok;
    const sampler_logprob *lp;
    int n;
    size_t text_offset;
} api_logprobs;

/* The bytes of text the records' tokens stand for, together. */
size_t api_logprobs_bytes(const api_logprobs *lp);

typedef struct api_usage {
    int prompt_tokens, completion_tokens;
    int cached_tokens; /* of prompt_tokens, from the prefix cache (prompt_tokens_details) */
} api_usage;

char *api_error_json(const api_error *err);
char *api_completion_json(api_kind kind, const char *id, long created, const char *model, const char *text,
                          size_t len, const char *finish_reason, api_usage usage, const api_logprobs *lp);
/* The model list: every name in `names` (n of them). */
char *api_models_json(const char *const *names, int n, long created);
char *api_model_json(const char *model, long created);

/* ---- streaming (Server-Sent Events), into the caller's buffer ---- */

/* Room a chunk of `text_len` bytes of text may need. */
size_t api_chunk_bound(size_t text_len);

typedef struct api_stream {
    api_kind kind;
    const char *id, *model;
    long created;
    bool include_usage;
} api_stream;

/* One "data: {...}\n\n" event carrying text, or (finish_reason not NULL)
 * the last one of the choice; `role` adds the assistant role to a chat
 * delta (the first chunk). Returns its length (0 if cap is short). */
size_t api_chunk(const api_stream *st, char *out, size_t cap, const char *text, size_t len, bool role,
                 const char *finish_reason);
/* The same with the log-probabilities of its tokens (lp may be NULL).
 * Returns the length it needs: the event is whole only if that is < cap. */
size_t api_chunk_lp(const api_stream *st, char *out, size_t cap, const char *text, size_t len, bool role,
                    const char *finish_reason, const api_logprobs *lp);
/* The usage chunk (stream_options.include_usage): no choices, usage. */
size_t api_usage_chunk(const api_stream *st, char *out, size_t cap, api_usage usage);
/* An error event ("data: {"error": ...}\n\n"). */
size_t api_error_chunk(char *out, size_t cap, const char *type, const char *message);

/* Writes `len` bytes as the inside of a JSON string (no quotes): escapes,
 * and U+FFFD for bytes that are not UTF-8. Returns the length it needs,
 * writing only what fits in cap. Never needs more than 6 * len. */
size_t api_json_escape(char *out, size_t cap, const char *s, size_t len);

#endif
