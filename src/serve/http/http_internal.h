/*
 * http_internal.h — what the HTTP server's files share and nobody else
 * sees: the server and request structs, a connection's record, and the
 * functions one file calls in another. Not a public header: include it
 * only from src/serve/http/.
 *
 * The files: server.c (the daemon's life, its callbacks, routing and the
 * small answers), generate.c (a generation: the prep job that parses and
 * tokenizes, then the stream or the whole answer), watch.c (parking a
 * request without a thread, and the watcher thread that wakes it, cuts
 * connections past their deadlines and notices clients that hung up),
 * prep.c (the low-priority pool that runs prep jobs).
 *
 * Threads. libmicrohttpd's pool threads (--http-threads) run every
 * callback; they never block: a request that must wait (for its prep, in
 * the queue, for its next token) is parked (its connection suspended) and
 * woken by whoever has news for it: a prep thread, the scheduler (through
 * sched_request.notify), or the watcher. Locks: sv->lock guards the
 * parked list, each request's parking flags, the connection records and
 * inflight; it is taken after the scheduler's locks, never before them
 * (a notify arrives holding those), and libmicrohttpd's own lock is taken
 * under it (suspend, resume), never the other way round.
 */
#ifndef RACKLLM_HTTP_INTERNAL_H
#define RACKLLM_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "api.h"
#include "guard.h"
#include "metrics.h"
#include "pages.h"
#include "prep.h"
#include "server.h"

#define WATCH_SLICE 0.25     /* seconds between the watcher's rounds */
#define KEEPALIVE_SECONDS 10 /* an SSE comment after this much silence */
#define TEXT_MAX 1024        /* bytes of text per streamed chunk at most */

/* Where a connection is in its current request (for the deadlines). */
typedef enum conn_stage {
    STAGE_HEADERS, /* waiting for a whole request head: --header-timeout */
    STAGE_BODY,    /* the head is in, the body arrives: --body-timeout */
    STAGE_ANSWER,  /* being answered: no deadline of ours */
} conn_stage;

/* One per connection, from libmicrohttpd's connection notifications. */
typedef struct conn_rec {
    int fd;
    conn_stage stage;
    double since; /* when the stage began */
    bool cut;     /* shut down by the watcher */
    struct conn_rec *prev, *next;
} conn_rec;

/* What a request is doing (its handler looks at this when it is called). */
typedef enum req_state {
    RQ_BODY,   /* its body is arriving */
    RQ_PREP,   /* with the prep pool */
    RQ_QUEUED, /* waiting for a session slot */
    RQ_STREAM, /* streaming (the content reader runs it) */
    RQ_WHOLE,  /* waiting for the whole text */
} req_state;

struct server {
    const model *m;
    sched *s;
    server_params p;
    struct MHD_Daemon *d;
    int port;
    metrics metrics;
    atomic_bool draining, stopping;
    atomic_ullong next_id;
    uint64_t nonce;
    long started;
    char bos[64], eos[64];
    prep *prep;
    pages *pages; /* NULL: no web pages (--no-web) */
    guard_list allowed_hosts, cors_origins;
    guard_list names; /* the model's names (server_params.served_names, or model_id alone) */
    bool drop_oldest; /* context_overflow "drop-oldest" */

    pthread_mutex_t lock; /* see above */
    pthread_cond_t cond;  /* inflight reached zero */
    int inflight;         /* requests being answered */
    struct request *parked;
    conn_rec *conns;
    int n_parked, n_conns, n_conns_peak;
    pthread_t watcher;
    bool watching, watch_stop;
    int watch_fd;         /* an eventfd: wakes the watcher at once */
};

typedef struct request {
    server *sv;
    struct MHD_Connection *conn;
    conn_rec *cr;
    metrics_endpoint ep;
    double t0;
    char *body;
    size_t len, cap;
    bool too_big, answered;
    const char *refused; /* X-Rackllm-Refused: "full" or "draining" (no token generated) */
    req_state state;
    const char *cors_origin; /* an allowed Origin: the answers say it may read them */

    /* sv->lock */
    bool parked, wake_pending, gone;
    int fd;
    struct request *park_prev, *park_next;
    int wants;      /* the scheduler's news that wake it (sched_news bits) */
    bool prep_done; /* the prep job has finished with it */

    /* the prep job's result (read once prep_done) */
    api_error err;
    int retry_after; /* with err: Retry-After, or 0 */
    int how;         /* sched_admit, or -1: refused (err), or nobody to answer */
    sched_session *ss;
    bool stream, include_usage;
    api_kind kind;
    int n_prompt, max_tokens; /* what it asked for, for a 429's reason */
    double ttft_expected;     /* a --ttft-limit refusal's reason (sched_request.expected_ttft) */
    bool logprobs;            /* the answer carries log-probabilities (read into lp) */
    size_t text_offset;       /* completions: where the next token's text begins (from the prompt's start) */

    /* a generation */
    api_stream st;
    char id[64];
    int phase;
    char *ev; /* the event being sent ... */
    size_t ev_len, ev_pos, ev_cap;
    char *text; /* text read from the session for one chunk, or the whole answer */
    size_t text_len, text_cap;
    sampler_logprob *lp; /* the log-probabilities read and not yet written */
    int n_lp, lp_cap;
    double last_write;
} request;

/* SplitMix64's finaliser: ids and seeds from a counter and a nonce. */
static inline uint64_t http_mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* ---- server.c ---- */
enum MHD_Result http_answer(request *r, int status, const char *type, char *body, const char *retry_after,
                            const char *allow);
enum MHD_Result http_answer_error(request *r, const api_error *e, int retry_after);
enum MHD_Result http_fail(request *r, int status, const char *type, const char *param, const char *code,
                          const char *msg);
/* The CORS headers of an answer to an allowed Origin. */
void http_cors_headers(request *r, struct MHD_Response *resp);
/* The client hung up (or, with --abort-on-close, half-closed). */
bool http_client_gone(request *r);

/* ---- generate.c ---- */
/* The prep job (a prep thread): parse, render, tokenize, submit. */
void gen_prep(void *job);
/* The handler's step for a request past its body (an MHD thread). */
enum MHD_Result gen_continue(request *r);

/* ---- watch.c ---- */
int watch_start(server *sv, rl_err *err);
void watch_stop(server *sv);
/* Suspends r's connection until it is woken (an MHD thread, inside its
 * handler or content reader). False if it must look again instead: news
 * came since it last looked, or the server is stopping. */
bool watch_park(request *r);
/* Wakes r (any thread): resumes its connection, or, if it is not parked,
 * makes its next watch_park look again. */
void watch_wake(request *r);
/* Stopping: wakes every parked request (they must not park again). */
void watch_wake_all(server *sv);
/* The scheduler's news for a request (sched_request.notify). */
void watch_news(void *ctx, sched_news what);
/* libmicrohttpd's connection notifications, and the stage of a request. */
void watch_connection(server *sv, struct MHD_Connection *c, void **socket_context, bool started);
void watch_stage(server *sv, conn_rec *cr, conn_stage stage);

#endif
