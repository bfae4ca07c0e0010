/*
 * server.h — the HTTP face of rackllm: an OpenAI-compatible API over the
 * scheduler, served by libmicrohttpd.
 *
 *   POST /v1/chat/completions, POST /v1/completions   (SSE or whole JSON)
 *   GET  /v1/models, /v1/models/ID, /health, /metrics, /v1/stats
 *   POST /v1/embeddings: 404, this server does not compute embeddings
 *   GET  /, /dashboard, /plan (web pages, pages.h; off with no_web)
 *
 * Threads. libmicrohttpd runs a small pool of threads (--http-threads),
 * each with its own epoll over its share of the connections; no connection
 * has a thread of its own, and no HTTP thread ever blocks. A request that
 * must wait — for its prep, for a session slot, for its next token — is
 * parked: its connection is suspended until the scheduler, the prep pool or
 * the watcher wakes it (http_internal.h, watch.c). So a slow or idle
 * client costs a socket and a little memory, never a thread.
 *
 * Who may talk to it (guard.h): with --api-key, whoever sends the key;
 * without one, only this machine — the server refuses to listen beyond
 * loopback unless told --insecure — and of this machine, not a web page:
 * a Host that does not name this machine (DNS rebinding), an Origin not on
 * --cors-origins (the allow-list also answers CORS preflights) and a POST
 * that is not application/json (a page's form or text/plain) are refused.
 *
 * What a client can take is bounded, the way nginx and HAProxy bound it:
 * connections in all and per client address (refused at accept beyond
 * them), absolute deadlines for a request's head and for its body
 * (however slowly the bytes trickle), an idle timeout while it is
 * answered, a body size (a chunked body past it closes the connection at
 * once), and the pre-admission work — parsing, the chat template,
 * tokenizing, which stops at the context — runs on --prep-threads threads
 * at the lowest CPU priority, never on the decoders' cores' time.
 *
 * A client that goes away is noticed at its stream's next write (a reset)
 * or by the watcher while its request waits (the socket reports the
 * hang-up); a client that only half-closes is served (--abort-on-close
 * makes a half-close count as gone, for deployments whose clients never
 * half-close). Its session leaves the engine before the following step.
 *
 * Shutdown (server_shutdown): the listening socket closes, new requests on
 * open connections get 503, queued ones 503, running sessions finish
 * (bounded by the drain time, then aborted with an error event), and the
 * call returns once every answer has been sent.
 *
 * A request refused before any token was generated (no room, or
 * draining) carries `X-Rackllm-Refused: full|draining`, so a load balancer
 * may safely try it on another server.
 */
#ifndef RACKLLM_SERVER_H
#define RACKLLM_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "base/common.h"
#include "model/model.h"
#include "serve/scheduler.h"
#include "text/chat.h"

typedef struct server_params {
    const char *host;          /* IPv4 or IPv6 address, or "localhost" (default 127.0.0.1) */
    int port;                  /* 0: any free port (see server_port) */
    const char *api_key;       /* NULL: no authentication */
    const char *model_id;      /* the name clients use in "model" */
    const char *served_names;  /* "a,b": the names clients may use instead, the first reported in
                                  answers, all listed by /v1/models (NULL: model_id alone) */
    int max_tokens_default;    /* max_tokens of a request that gives none (0: until the context is
                                  full; rackllm serve's default is 512) */
    int max_tokens_max;        /* more max_tokens is refused with 400 (0: no cap but the context) */
    const char *context_overflow; /* a chat longer than the context: "refuse" (NULL: the default,
                                  400 context_length_exceeded) or "drop-oldest" (its oldest turns
                                  go, its system messages and last user message stay) */
    chat_template tmpl;        /* how chat messages become a prompt (a built-in) */
    const chat_jinja *jinja;   /* the model's own template instead, when not NULL (its stop
                                  strings: tmpl's if the family is recognised, none otherwise) */
    size_t max_body;           /* request body limit in bytes (0: 1 MiB) */
    int timeout;               /* seconds a connection may be idle while answered (0: 30) */
    int max_connections;       /* in all (0: 512) */
    int max_per_ip;            /* from one client address (0: 64) */
    double header_timeout;     /* seconds for a request's head, from the connection's start
                                  or the end of the previous answer (0: 10) */
    double body_timeout;       /* seconds for its body, from the end of its head (0: 30) */
    int http_threads;          /* libmicrohttpd's pool (0: 2) */
    int prep_threads;          /* pre-admission work (0: 1) */
    bool abort_on_close;       /* a half-close counts as gone */
    bool insecure;             /* listen beyond loopback without a key */
    const char *allowed_hosts; /* "a,b": more Host names accepted without a key (NULL: none) */
    const char *cors_origins;  /* "https://a,https://b" or "*": origins that may use the API (NULL: none) */
    bool protect_metrics;      /* /metrics needs the API key too */
    int full_status;           /* the status of "no room" (0: 429; a rack behind HAProxy: 503,
                                  which it retries on another server; docs/rack.md) */
    bool content_special;      /* special tokens written in chat messages become tokens (llama-server's
                                  way; default: they stay text, so a user cannot forge a turn) */
    bool no_web;               /* no pages (/, /dashboard, /plan: pages.h) */
    const char *model_path;    /* the GGUF file (/plan draws its plan) */
    const char *plan_bench;    /* a bench JSON /plan's charts calibrate with (NULL: none) */
} server_params;

typedef struct server server;

server *server_start(const model *m, sched *s, const server_params *p, rl_err *err);
int server_port(const server *sv);
/* Graceful stop (see above); drain_seconds bounds the wait for running
 * sessions. */
void server_shutdown(server *sv, double drain_seconds);
/* Closes what is left and frees the server (not the scheduler). */
void server_free(server *sv);

#endif
