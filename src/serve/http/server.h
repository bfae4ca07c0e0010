/*
 * server.h — the HTTP face of rackllm: an OpenAI-compatible API over the
 * scheduler, served by libmicrohttpd.
 *
 *   POST /v1/chat/completions, POST /v1/completions   (SSE or whole JSON)
 *   GET  /v1/models, /v1/models/ID, /health, /metrics
 *
 * Each connection has its own thread (libmicrohttpd's thread-per-connection
 * mode): a request parses and validates its body, renders the chat
 * template, tokenizes, and asks the scheduler for a slot — waiting in its
 * thread while queued — then streams the session's text as it comes. A
 * client that goes away is noticed at the latest at its session's next
 * token (the socket is polled for hang-up before every write, and every
 * quarter second while waiting), and its session leaves the engine before
 * the following step.
 *
 * Shutdown (server_shutdown): the listening socket closes, new requests on
 * open connections get 503, queued ones 503, running sessions finish
 * (bounded by the drain time, then aborted with an error event), and the
 * call returns once every answer has been sent.
 */
#ifndef RACKLLM_SERVER_H
#define RACKLLM_SERVER_H

#include <stddef.h>

#include "base/common.h"
#include "model/model.h"
#include "serve/scheduler.h"
#include "text/chat.h"

typedef struct server_params {
    const char *host;      /* IPv4 or IPv6 address, or "localhost" (default 127.0.0.1) */
    int port;              /* 0: any free port (see server_port) */
    const char *api_key;   /* NULL: no authentication */
    const char *model_id;  /* the name clients use in "model" */
    chat_template tmpl;    /* how chat messages become a prompt */
    size_t max_body;       /* request body limit in bytes (0: 1 MiB) */
    int timeout;           /* seconds a connection may stall (0: 30) */
    int max_connections;   /* (0: 512) */
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
