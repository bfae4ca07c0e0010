/*
 * loadgen.h — the load generator: N concurrent streaming chat sessions
 * against an OpenAI-compatible server on this machine, measured from the
 * client's side (`rackllm loadgen`, bench/serve-load.sh).
 *
 * Each of the N session slots sends a streaming chat request, reads its
 * Server-Sent Events as they arrive, and when it ends sends the next one,
 * until the duration has passed (a 429 waits its Retry-After, at most 2 s,
 * before the slot tries again). Requests still running then may finish for
 * a grace period (the duration again, at least 30 s); after that they are
 * cut. What a user would feel is counted:
 *   - per-session tok/s of each completed request: (completion_tokens - 1)
 *     over the time from its first to its last token;
 *   - time to first token (queueing included);
 *   - inter-token latency: the gaps between content events;
 *   - requests completed, rejected (429), failed, cut;
 *   - prompt tokens, and how many of them the server took from its prefix
 *     cache (usage.prompt_tokens_details.cached_tokens).
 * A slot may hold a conversation (turns > 1): each request sends the whole
 * history (a system prompt all conversations share, if system_len, then
 * every message and answer so far) and a new message, as a chat client
 * does; after `turns` answers it starts a new one. Time to first token is
 * also kept per turn: what a long chat costs its user.
 * Bounded in time (above) and in count (max_requests). Loopback only: a URL
 * whose host is not 127.0.0.0/8, ::1 or localhost is refused. One thread
 * drives every transfer through libcurl's multi interface.
 *
 * The pieces a run is made of (the URL check, the prompts and request
 * bodies, the SSE reader, the accounting of a finished request, the
 * percentiles) are public so that tests can check each without a server.
 */
#ifndef RACKLLM_LOADGEN_H
#define RACKLLM_LOADGEN_H

#include <stdbool.h>
#include <stddef.h>

#include "base/common.h"

#define LOADGEN_RETRY_CAP 2.0 /* seconds a rejected slot waits at most */
#define LOADGEN_MAX_TURNS 64  /* requests per conversation, at most */

typedef struct loadgen_params {
    const char *url;          /* the server, e.g. http://127.0.0.1:8080 */
    const char *model;        /* NULL: the first of GET /v1/models */
    const char *api_key;      /* NULL: none; else sent as a bearer token */
    int sessions;             /* concurrent session slots */
    int prompt_len;           /* prompt length in words (64) */
    int max_tokens;           /* per answer (128) */
    int max_requests;         /* in all (100000) */
    double duration;          /* seconds to keep starting requests */
    bool allow_eos;           /* false: ignore_eos, so every answer is max_tokens long */
    bool completions;         /* /v1/completions with plain text instead of chat */
    int turns;                /* requests per conversation (1..LOADGEN_MAX_TURNS; 0: 1) */
    int system_len;           /* words of a system prompt every conversation begins with */
} loadgen_params;

loadgen_params loadgen_default_params(void);

/* A growing array of samples. */
typedef struct loadgen_samples {
    double *v;
    size_t n, cap;
} loadgen_samples;

void loadgen_sample_add(loadgen_samples *s, double x);
/* Nearest-rank percentile p (0..100) of samples sorted ascending (0 if none). */
double loadgen_percentile(const loadgen_samples *s, double p);
double loadgen_mean(const loadgen_samples *s); /* 0 if none */

typedef struct loadgen_result {
    char base[2048];          /* the server's root, without "/" or "/v1" at the end */
    char model[512];          /* the model asked for */
    loadgen_samples tps, ttft, itl; /* sorted ascending once the run is over */
    loadgen_samples ttft_turn[LOADGEN_MAX_TURNS]; /* time to first token by turn */
    long prompt_tokens, cached_tokens; /* of the completed requests, as usage says */
    int completed, rejected, errors, cut;
    long tokens;              /* completion tokens of the completed requests */
    double wall;              /* seconds from the first request to the last end */
    char first_error[256];    /* "" if none */
} loadgen_result;

/* Runs the load. -1 with RL_ERR_INPUT for a URL that is not loopback http,
 * RL_ERR_INTERNAL if libcurl cannot start, no model name can be had, or
 * memory is short. Free r with loadgen_result_free, whatever the outcome. */
int loadgen_run(const loadgen_params *p, loadgen_result *r, rl_err *err);
void loadgen_result_free(loadgen_result *r);

/* ---- the pieces ---- */

/* The server's root URL (no trailing "/" or "/v1") into base, if url is
 * http:// on a loopback host (localhost, [::1], 127.a.b.c); -1 if not. */
int loadgen_base_url(const char *url, char *base, size_t cap);

/* A deterministic prompt of about `words` words (and as many tokens),
 * different for each salt (malloc'ed; NULL if memory is short). */
char *loadgen_prompt(int words, int salt);

/* The JSON body of request number `serial` (malloc'ed, or NULL). */
char *loadgen_request_body(const loadgen_params *p, const char *model, int serial);

/* A conversation: its messages so far, as the next request sends them. */
typedef struct loadgen_chat loadgen_chat;
loadgen_chat *loadgen_chat_new(const loadgen_params *p);
void loadgen_chat_free(loadgen_chat *c);
/* The body of the conversation's next request: the history and a new user
 * message (made by loadgen_prompt from serial) if the last one was
 * answered, else the same question again (after a 429 or an error).
 * malloc'ed, or NULL. */
char *loadgen_chat_request(loadgen_chat *c, const char *model, int serial);
/* The answer to the last message; the turn that ended. After p->turns
 * answers the conversation starts again (from the system prompt). */
int loadgen_chat_answer(loadgen_chat *c, const char *text, size_t len);
int loadgen_chat_turn(const loadgen_chat *c); /* 0-based turn of the next answer */

/* One response's event stream, as it arrives. */
typedef struct loadgen_stream {
    double t_first, t_last;   /* the first and latest content event */
    int n_content;            /* content events */
    int completion_tokens;    /* usage.completion_tokens, if sent */
    int prompt_tokens, cached_tokens; /* usage.prompt_tokens (and its cached part) */
    char *content;            /* the answer's text so far, if keep_content (malloc'ed) */
    size_t content_len, content_cap;
    bool keep_content;
    bool done_seen;           /* data: [DONE] */
    bool error_seen;          /* an error object */
    char error[200];
    char line[16384];         /* the line being read */
    size_t line_len;
} loadgen_stream;

void loadgen_stream_reset(loadgen_stream *s); /* keeps content's buffer, emptied */
void loadgen_stream_free(loadgen_stream *s);
/* Feeds n bytes of the body received at `now`; each gap between content
 * events goes to itl (may be NULL). */
void loadgen_stream_feed(loadgen_stream *s, const char *data, size_t n, double now, loadgen_samples *itl);

/* How a request ended, as the transfer saw it. */
typedef enum loadgen_transfer {
    LOADGEN_OK = 0,           /* the body was read to its end */
    LOADGEN_TIMED_OUT,        /* cut at the end of the grace period */
    LOADGEN_FAILED,           /* any other transport failure */
} loadgen_transfer;

/* Counts a finished request into r: cut, rejected (429: the slot waits
 * Retry-After, 1 s if none, at most LOADGEN_RETRY_CAP), failed (transport,
 * HTTP status, an error event, no [DONE]; the first reason kept; it waits
 * 0.5 s) or completed (its tokens, time to first token since t_sent and
 * speed). Returns the seconds until the slot may send again. */
double loadgen_account(loadgen_result *r, const loadgen_stream *s, loadgen_transfer how, const char *why,
                       long status, double retry_after, double t_sent);

#endif
