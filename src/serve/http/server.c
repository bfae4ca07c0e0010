/*
 * server.c — routes, authentication, body limits, and the way a request
 * waits for and streams its session (see server.h).
 */
#include "server.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "metrics.h"
#include "text/tokenizer.h"

#define WAIT_SLICE 0.25      /* seconds between checks for a gone client */
#define KEEPALIVE_SECONDS 10 /* an SSE comment after this much silence */
#define TEXT_MAX 1024        /* bytes of text per streamed chunk at most */

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

    pthread_mutex_t lock; /* guards inflight; cond: it reached zero */
    pthread_cond_t cond;
    int inflight;         /* requests being answered */
};

enum { SSE_ROLE, SSE_TEXT, SSE_END };

/* One request, from its first byte to its last answer byte. */
typedef struct request {
    server *sv;
    struct MHD_Connection *conn;
    metrics_endpoint ep;
    double t0;
    char *body;
    size_t len, cap;
    bool too_big, answered;

    /* a generation */
    sched_session *ss;
    api_stream st;
    char id[64];
    int phase;
    char *ev;     /* the event being sent ... */
    size_t ev_len, ev_pos, ev_cap;
    char *text;   /* text read from the session for one chunk */
    double last_write;
} request;

/* ---- answers ---- */

static enum MHD_Result answer(request *r, int status, const char *type, char *body, const char *retry_after,
                              const char *allow) {
    size_t len = body ? strlen(body) : 0;
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body ? body : "",
                                                                body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    if (retry_after) MHD_add_response_header(resp, "Retry-After", retry_after);
    if (allow) MHD_add_response_header(resp, "Allow", allow);
    if (status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    metrics_count(&r->sv->metrics, r->ep, status);
    r->answered = true;
    return rc;
}

static enum MHD_Result answer_json(request *r, int status, char *json) {
    if (!json) return MHD_NO;
    return answer(r, status, "application/json", json, NULL, NULL);
}

static enum MHD_Result answer_error(request *r, const api_error *e, int retry_after) {
    char ra[16];
    snprintf(ra, sizeof ra, "%d", retry_after);
    char *json = api_error_json(e);
    if (!json) return MHD_NO;
    return answer(r, e->status, "application/json", json, retry_after > 0 ? ra : NULL,
                  e->status == 405 ? (r->ep == EP_CHAT || r->ep == EP_COMPLETIONS ? "POST" : "GET") : NULL);
}

static enum MHD_Result fail(request *r, int status, const char *type, const char *param, const char *code,
                            const char *msg) {
    api_error e;
    api_fail(&e, status, type, param, code, "%s", msg);
    return answer_error(r, &e, 0);
}

/* ---- the connection ---- */

/* The client hung up (or the socket broke): poll without waiting. */
static bool client_gone(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    struct pollfd pfd = {.fd = ci->connect_fd, .events = POLLRDHUP};
    return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

static bool authorized(request *r) {
    const char *key = r->sv->p.api_key;
    if (!key) return true;
    const char *h = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return false;
    h += 7;
    while (*h == ' ') h++;
    size_t a = strlen(h), b = strlen(key);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < a; i++) diff |= (unsigned)(h[i] ^ key[i % (b ? b : 1)]); /* constant time */
    return diff == 0;
}

/* ---- /health and /v1/models ---- */

static enum MHD_Result health(request *r) {
    sched_stats st;
    sched_get_stats(r->sv->s, &st);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", st.draining ? "draining" : "ok");
    cJSON_AddStringToObject(o, "model", r->sv->p.model_id);
    cJSON_AddNumberToObject(o, "active_sessions", st.active);
    cJSON_AddNumberToObject(o, "capacity", st.capacity);
    cJSON_AddNumberToObject(o, "capacity_calibrated", st.capacity_base);
    cJSON_AddNumberToObject(o, "free_sessions", RL_MAX(0, st.capacity - st.active));
    cJSON_AddNumberToObject(o, "queue_length", st.queued);
    cJSON_AddNumberToObject(o, "queue_limit", st.queue_max);
    cJSON_AddNumberToObject(o, "floor_tokens_per_second", st.floor_tps);
    cJSON *tps = cJSON_AddObjectToObject(o, "tokens_per_second");
    cJSON_AddNumberToObject(tps, "min", st.tps_min);
    cJSON_AddNumberToObject(tps, "mean", st.tps_mean);
    cJSON_AddNumberToObject(tps, "sessions", st.tps_sessions);
    cJSON_AddNumberToObject(o, "active_sessions_peak", st.active_peak);
    cJSON_AddNumberToObject(o, "partitions", st.partitions);
    cJSON_AddNumberToObject(o, "prefill_chunk", st.prefill_chunk);
    cJSON_AddNumberToObject(o, "context", st.n_ctx);
    cJSON_AddNumberToObject(o, "context_reserved_tokens", st.ctx_reserved);
    cJSON_AddNumberToObject(o, "context_cost_seconds_per_token", st.ctx_cost);
    cJSON *mem = cJSON_AddObjectToObject(o, "memory");
    cJSON_AddNumberToObject(mem, "available_bytes", (double)st.mem_available);
    cJSON_AddNumberToObject(mem, "budget_bytes", (double)st.mem_budget);
    cJSON_AddNumberToObject(mem, "reserved_bytes", (double)st.mem_reserved);
    cJSON_AddNumberToObject(mem, "session_bytes", (double)st.mem_session);
    cJSON_AddNumberToObject(mem, "weights_bytes", (double)st.weights_bytes);
    if (st.capacity_memory >= 0) cJSON_AddNumberToObject(o, "capacity_memory", st.capacity_memory);
    else cJSON_AddNullToObject(o, "capacity_memory");
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return answer_json(r, st.draining ? 503 : 200, json);
}

static enum MHD_Result metrics_page(request *r) {
    sched_stats st;
    sched_get_stats(r->sv->s, &st);
    char *text = metrics_render(&r->sv->metrics, &st);
    if (!text) return MHD_NO;
    enum MHD_Result rc = answer(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, NULL, NULL);
    return rc;
}

/* ---- generation ---- */

static uint64_t mix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* The prompt's tokens: the chat template rendered (special tokens parsed),
 * or the completion prompt as plain text. */
static int prompt_tokens(request *r, const api_request *q, int32_t *ids, int cap, int *n, api_error *e) {
    server *sv = r->sv;
    char *text = NULL;
    const char *src = q->prompt;
    const char *param = q->kind == API_CHAT ? "messages" : "prompt";
    rl_err err = {0};
    if (q->kind == API_CHAT) {
        chat_msg *msgs = calloc((size_t)q->n_messages, sizeof *msgs);
        if (!msgs) return api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
        for (int i = 0; i < q->n_messages; i++) msgs[i] = (chat_msg){q->messages[i].role, q->messages[i].content};
        text = chat_render(sv->p.tmpl, msgs, (size_t)q->n_messages, true, sv->bos, sv->eos, &err);
        free(msgs);
        if (!text) return api_fail(e, 400, "invalid_request_error", param, NULL, "%s", err.msg);
        src = text;
    }
    *n = tok_encode(sv->m->tok, src, strlen(src), tok_add_bos(sv->m->tok), q->kind == API_CHAT, ids, cap, &err);
    free(text);
    if (*n < 0) return api_fail(e, 400, "invalid_request_error", param, NULL, "%s", err.msg);
    if (*n == 0) return api_fail(e, 400, "invalid_request_error", param, NULL, "the prompt is empty");
    if (*n >= cap)
        return api_fail(e, 400, "invalid_request_error", param, "context_length_exceeded",
                        "the prompt has %d tokens; this server's context holds %d, with room for at least one more",
                        *n, cap);
    return 0;
}

static const char *finish_name(sched_finish f) { return f == SCHED_FINISH_STOP ? "stop" : "length"; }

/* The last events of a stream: the finish (and usage) and [DONE], or an
 * error event if the session did not end normally. */
static void final_events(request *r, const sched_progress *pr) {
    size_t n = 0;
    if (pr->finish == SCHED_FINISH_STOP || pr->finish == SCHED_FINISH_LENGTH) {
        n += api_chunk(&r->st, r->ev, r->ev_cap, "", 0, false, finish_name(pr->finish));
        if (r->st.include_usage)
            n += api_usage_chunk(&r->st, r->ev + n, r->ev_cap - n, (api_usage){pr->n_prompt, pr->n_generated});
        n += (size_t)snprintf(r->ev + n, r->ev_cap - n, "data: [DONE]\n\n");
    } else {
        const char *msg = pr->finish == SCHED_FINISH_ABORTED ? "the server is shutting down: generation stopped"
                          : pr->error && *pr->error          ? pr->error
                                                              : "generation failed";
        n = api_error_chunk(r->ev, r->ev_cap, "server_error", msg);
    }
    r->ev_len = n;
    r->ev_pos = 0;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    request *r = cls;
    server *sv = r->sv;
    for (;;) {
        if (r->ev_pos < r->ev_len) {
            size_t n = RL_MIN(max, r->ev_len - r->ev_pos);
            memcpy(buf, r->ev + r->ev_pos, n);
            r->ev_pos += n;
            r->last_write = rl_now();
            return (ssize_t)n;
        }
        if (r->phase == SSE_END) return MHD_CONTENT_READER_END_OF_STREAM;
        if (atomic_load(&sv->stopping) || client_gone(r->conn)) {
            sched_cancel(sv->s, r->ss);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        r->ev_len = r->ev_pos = 0;
        if (r->phase == SSE_ROLE) {
            r->ev_len = api_chunk(&r->st, r->ev, r->ev_cap, "", 0, true, NULL);
            r->phase = SSE_TEXT;
            continue;
        }
        sched_progress pr;
        size_t n = sched_read(r->ss, r->text, TEXT_MAX, WAIT_SLICE, &pr);
        if (n > 0) {
            r->ev_len = api_chunk(&r->st, r->ev, r->ev_cap, r->text, n, false, NULL);
        } else if (pr.done) {
            final_events(r, &pr);
            r->phase = SSE_END;
        } else if (rl_now() - r->last_write > KEEPALIVE_SECONDS) {
            r->ev_len = (size_t)snprintf(r->ev, r->ev_cap, ": keep-alive\n\n");
        }
    }
}

static enum MHD_Result start_stream(request *r) {
    r->ev_cap = api_chunk_bound(TEXT_MAX) + 4096;
    r->ev = malloc(r->ev_cap);
    r->text = malloc(TEXT_MAX);
    if (!r->ev || !r->text) return MHD_NO;
    r->phase = r->st.kind == API_CHAT ? SSE_ROLE : SSE_TEXT;
    r->last_write = rl_now();
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, r, NULL);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    enum MHD_Result rc = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    metrics_count(&r->sv->metrics, r->ep, 200);
    r->answered = true;
    return rc;
}

/* Waits for the whole text, then answers it as one JSON object. */
static enum MHD_Result whole_answer(request *r) {
    server *sv = r->sv;
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    sched_progress pr = {0};
    while (text && !pr.done) {
        if (atomic_load(&sv->stopping) || client_gone(r->conn)) {
            free(text);
            sched_cancel(sv->s, r->ss);
            return MHD_NO;
        }
        if (cap - len < TEXT_MAX) {
            char *t = realloc(text, cap * 2);
            if (!t) break;
            text = t;
            cap *= 2;
        }
        len += sched_read(r->ss, text + len, cap - len, WAIT_SLICE, &pr);
    }
    if (!text || !pr.done) {
        free(text);
        return fail(r, 500, "server_error", NULL, NULL, "out of memory");
    }
    enum MHD_Result rc;
    if (pr.finish == SCHED_FINISH_STOP || pr.finish == SCHED_FINISH_LENGTH) {
        char *json = api_completion_json(r->st.kind, r->id, r->st.created, sv->p.model_id, text, len,
                                         finish_name(pr.finish), (api_usage){pr.n_prompt, pr.n_generated});
        rc = answer_json(r, 200, json);
    } else if (pr.finish == SCHED_FINISH_ABORTED) {
        rc = fail(r, 503, "server_error", NULL, NULL, "the server is shutting down: generation stopped");
    } else {
        rc = fail(r, 500, "server_error", NULL, NULL, pr.error && *pr.error ? pr.error : "generation failed");
    }
    free(text);
    return rc;
}

static enum MHD_Result overloaded(request *r, sched_admit how) {
    sched_stats st;
    sched_get_stats(r->sv->s, &st);
    api_error e;
    if (how == SCHED_REJECT_DRAINING) {
        api_fail(&e, 503, "server_error", NULL, "server_shutting_down", "the server is shutting down; retry elsewhere");
    } else {
        const char *code = how == SCHED_REJECT_TIMEOUT ? "queue_timeout" : "rate_limit_exceeded";
        const char *why = how == SCHED_REJECT_TIMEOUT ? "the wait in the queue ran out" : "the queue is full";
        if (st.active < st.capacity) /* full by context, not by count */
            api_fail(&e, 429, "rate_limit_error", NULL, code,
                     "the %d running sessions reserve all the context this server serves at %.0f tokens/s (%.0f "
                     "tokens) and %s; retry later, or ask for fewer max_tokens",
                     st.active, st.floor_tps, st.ctx_reserved, why);
        else
            api_fail(&e, 429, "rate_limit_error", NULL, code,
                     "all %d sessions this server holds at %.0f tokens/s are taken and %s; retry later", st.capacity,
                     st.floor_tps, why);
    }
    return answer_error(r, &e, sched_retry_after(r->sv->s));
}

static enum MHD_Result generate(request *r, api_kind kind) {
    server *sv = r->sv;
    api_error e;
    api_request q;
    if (api_parse_request(kind, r->body ? r->body : "", r->len, &q, &e)) return answer_error(r, &e, 0);
    enum MHD_Result rc;
    int n_ctx = 0;
    int32_t *ids = NULL;
    {
        sched_stats st;
        sched_get_stats(sv->s, &st);
        n_ctx = st.n_ctx;
    }
    if (strcmp(q.model, sv->p.model_id) != 0) {
        char shown[80];
        size_t k = 0;
        for (const char *c = q.model; *c && k < 64; c++) shown[k++] = (*c >= 32 && *c < 127) ? *c : '?';
        shown[k] = 0;
        api_fail(&e, 400, "invalid_request_error", "model", "model_not_found",
                 "the model '%s' is not served here; this server serves '%s'", shown, sv->p.model_id);
        rc = answer_error(r, &e, 0);
        goto done;
    }
    ids = malloc((size_t)n_ctx * sizeof *ids);
    int n = 0;
    if (!ids) {
        rc = fail(r, 500, "server_error", NULL, NULL, "out of memory");
        goto done;
    }
    if (prompt_tokens(r, &q, ids, n_ctx, &n, &e)) {
        rc = answer_error(r, &e, 0);
        goto done;
    }
    const char *stops[API_MAX_STOPS + 8];
    int n_stops = 0;
    for (int i = 0; i < q.n_stops; i++) stops[n_stops++] = q.stops[i];
    if (kind == API_CHAT)
        for (const char *const *s = chat_stop_strings(sv->p.tmpl); s && *s && n_stops < (int)RL_ARRAY_LEN(stops); s++)
            stops[n_stops++] = *s;
    sched_request sr = {.prompt = ids, .n_prompt = n, .sp = q.sp, .max_tokens = q.max_tokens, .stops = stops,
                        .n_stops = n_stops, .ignore_eos = q.ignore_eos};
    uint64_t serial = atomic_fetch_add(&sv->next_id, 1);
    if (!q.has_seed) sr.sp.seed = mix64(sv->nonce ^ serial);
    if (q.penalties) sr.sp.penalty_last_n = n_ctx;
    rl_err err = {0};
    sched_admit how = (sched_admit)sched_submit(sv->s, &sr, &r->ss, &err);
    if ((int)how < 0) {
        rc = fail(r, err.code == RL_ERR_INPUT ? 400 : 500, err.code == RL_ERR_INPUT ? "invalid_request_error" : "server_error",
                  NULL, NULL, err.msg);
        goto done;
    }
    while (how == SCHED_QUEUED) {
        if (atomic_load(&sv->stopping) || client_gone(r->conn)) {
            rc = MHD_NO; /* nobody to answer */
            goto done;
        }
        how = sched_wait_admission(sv->s, r->ss, WAIT_SLICE);
    }
    if (how != SCHED_RUN) {
        rc = overloaded(r, how);
        goto done;
    }
    snprintf(r->id, sizeof r->id, "%s-%llx%04llx", kind == API_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)serial, (unsigned long long)(sv->nonce & 0xffff));
    r->st = (api_stream){.kind = kind, .id = r->id, .model = sv->p.model_id, .created = (long)time(NULL),
                         .include_usage = q.stream && q.include_usage};
    rc = q.stream ? start_stream(r) : whole_answer(r);
done:
    free(ids);
    api_request_free(&q);
    return rc;
}

/* ---- routing ---- */

static metrics_endpoint route(const char *url) {
    if (!strcmp(url, "/v1/chat/completions") || !strcmp(url, "/chat/completions")) return EP_CHAT;
    if (!strcmp(url, "/v1/completions") || !strcmp(url, "/completions")) return EP_COMPLETIONS;
    if (!strcmp(url, "/v1/models") || !strncmp(url, "/v1/models/", 11) || !strcmp(url, "/models")) return EP_MODELS;
    if (!strcmp(url, "/health")) return EP_HEALTH;
    if (!strcmp(url, "/metrics")) return EP_METRICS;
    return EP_OTHER;
}

static enum MHD_Result dispatch(request *r, const char *url, const char *method) {
    server *sv = r->sv;
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    switch (r->ep) {
    case EP_HEALTH: return get ? health(r) : fail(r, 405, "invalid_request_error", NULL, NULL, "use GET");
    case EP_METRICS: return get ? metrics_page(r) : fail(r, 405, "invalid_request_error", NULL, NULL, "use GET");
    case EP_OTHER:
        return fail(r, 404, "invalid_request_error", NULL, "not_found",
                    "no such endpoint (try /v1/chat/completions, /v1/completions, /v1/models, /health, /metrics)");
    default: break;
    }
    if (!authorized(r))
        return fail(r, 401, "invalid_request_error", NULL, "invalid_api_key",
                    "a valid API key is required: send 'Authorization: Bearer KEY'");
    if (r->ep == EP_MODELS) {
        if (!get) return fail(r, 405, "invalid_request_error", NULL, NULL, "use GET");
        if (!strncmp(url, "/v1/models/", 11)) {
            if (strcmp(url + 11, sv->p.model_id) != 0)
                return fail(r, 404, "invalid_request_error", "model", "model_not_found", "no such model here");
            return answer_json(r, 200, api_model_json(sv->p.model_id, sv->started));
        }
        return answer_json(r, 200, api_models_json(sv->p.model_id, sv->started));
    }
    if (!post) return fail(r, 405, "invalid_request_error", NULL, NULL, "use POST");
    if (r->too_big) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", sv->p.max_body);
        return fail(r, 413, "invalid_request_error", NULL, "request_too_large", msg);
    }
    if (atomic_load(&sv->draining)) return overloaded(r, SCHED_REJECT_DRAINING);
    return generate(r, r->ep == EP_CHAT ? API_CHAT : API_COMPLETION);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    server *sv = cls;
    request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->sv = sv;
        r->conn = c;
        r->t0 = rl_now();
        r->ep = route(url);
        *con_cls = r;
        pthread_mutex_lock(&sv->lock);
        sv->inflight++;
        pthread_mutex_unlock(&sv->lock);
        /* Too big by its Content-Length: answered before the body is read
         * (libmicrohttpd accepts an answer mid-upload only now, at the
         * first call). */
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > sv->p.max_body) {
            r->too_big = true;
            return dispatch(r, url, method);
        }
        return MHD_YES;
    }
    if (r->answered) { /* an early answer was queued: drop the rest */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (!r->too_big && r->len + n > sv->p.max_body) {
            r->too_big = true;
            free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
        }
        if (r->too_big) return MHD_YES; /* read and dropped; 413 at the end */
        if (rl_now() - r->t0 > sv->p.timeout) return MHD_NO; /* a body that trickles in: cut */
        if (r->len + n + 1 > r->cap) {
            size_t cap = RL_MAX(r->cap * 2, r->len + n + 1);
            char *b = realloc(r->body, cap);
            if (!b) return MHD_NO;
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        r->body[r->len] = 0;
        return MHD_YES;
    }
    return dispatch(r, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)c;
    (void)toe;
    server *sv = cls;
    request *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    if (r->ss) sched_release(sv->s, r->ss); /* cancels it if the client left early */
    free(r->body);
    free(r->ev);
    free(r->text);
    free(r);
    pthread_mutex_lock(&sv->lock);
    if (--sv->inflight == 0) pthread_cond_broadcast(&sv->cond);
    pthread_mutex_unlock(&sv->lock);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    fprintf(stderr, "rackllm serve: http: %s%s", line, line[0] && line[strlen(line) - 1] == '\n' ? "" : "\n");
}

/* ---- life cycle ---- */

static void token_text(const tokenizer *t, int32_t id, char *out, size_t cap) {
    size_t n = 0;
    const char *p = id >= 0 ? tok_piece(t, id, &n) : NULL;
    snprintf(out, cap, "%.*s", p ? (int)n : 0, p ? p : "");
}

server *server_start(const model *m, sched *s, const server_params *p, rl_err *err) {
    server *sv = rl_calloc(1, sizeof *sv, err);
    if (!sv) return NULL;
    sv->m = m;
    sv->s = s;
    sv->p = *p;
    if (!sv->p.host) sv->p.host = "127.0.0.1";
    if (!sv->p.max_body) sv->p.max_body = 1 << 20;
    if (sv->p.timeout <= 0) sv->p.timeout = 30;
    if (sv->p.max_connections <= 0) sv->p.max_connections = 512;
    sv->started = (long)time(NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sv->nonce = mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid());
    token_text(m->tok, tok_bos(m->tok), sv->bos, sizeof sv->bos);
    token_text(m->tok, tok_eos(m->tok), sv->eos, sizeof sv->eos);
    pthread_mutex_init(&sv->lock, NULL);
    pthread_cond_init(&sv->cond, NULL);

    struct sockaddr_in a4 = {0};
    struct sockaddr_in6 a6 = {0};
    const char *host = strcmp(sv->p.host, "localhost") == 0 ? "127.0.0.1" : sv->p.host;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    const struct sockaddr *addr;
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)sv->p.port);
        addr = (const struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)sv->p.port);
        addr = (const struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        rl_fail(err, RL_ERR_INPUT, "--host '%s' is not an IP address (or localhost)", sv->p.host);
        server_free(sv);
        return NULL;
    }
    sv->d = MHD_start_daemon(flags, (uint16_t)sv->p.port, NULL, NULL, on_request, sv,
                             MHD_OPTION_EXTERNAL_LOGGER, mhd_log, sv,
                             MHD_OPTION_SOCK_ADDR, addr,
                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, sv,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)sv->p.timeout,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned)sv->p.max_connections,
                             MHD_OPTION_END);
    if (!sv->d) {
        rl_fail(err, RL_ERR_INPUT, "cannot listen on %s port %d (in use, or not an address of this machine?)",
                sv->p.host, sv->p.port);
        server_free(sv);
        return NULL;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(sv->d, MHD_DAEMON_INFO_BIND_PORT);
    sv->port = di ? di->port : sv->p.port;
    return sv;
}

int server_port(const server *sv) { return sv->port; }

void server_shutdown(server *sv, double drain_seconds) {
    atomic_store(&sv->draining, true);
    int fd = MHD_quiesce_daemon(sv->d); /* no new connections */
    if (fd >= 0) close(fd);
    sched_drain(sv->s);
    if (!sched_wait_idle(sv->s, drain_seconds)) {
        sched_abort_all(sv->s);
        sched_wait_idle(sv->s, 5);
    }
    /* the last events reach their clients (bounded: a stalled client is cut
     * by the connection timeout, or here) */
    double end = rl_now() + RL_MIN(10.0, sv->p.timeout);
    pthread_mutex_lock(&sv->lock);
    while (sv->inflight > 0 && rl_now() < end) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&sv->cond, &sv->lock, &ts);
    }
    pthread_mutex_unlock(&sv->lock);
    atomic_store(&sv->stopping, true);
}

void server_free(server *sv) {
    if (!sv) return;
    atomic_store(&sv->stopping, true);
    if (sv->d) MHD_stop_daemon(sv->d);
    pthread_mutex_destroy(&sv->lock);
    pthread_cond_destroy(&sv->cond);
    free(sv);
}
