/*
 * server.c — the HTTP server's life and libmicrohttpd's callbacks: the
 * daemon (its thread pool, limits and deadlines), a request from its first
 * byte to its body (size limits), routing, authentication and the small
 * answers (/health, /metrics, /v1/models, errors); a generation goes on in
 * generate.c (see server.h, and http_internal.h for the files).
 */
#include "server.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "http_internal.h"
#include "stats.h"
#include "text/tokenizer.h"

/* ---- answers ---- */

enum MHD_Result http_answer(request *r, int status, const char *type, char *body, const char *retry_after,
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
    if (r->refused) MHD_add_response_header(resp, "X-Rackllm-Refused", r->refused);
    if (status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    http_cors_headers(r, resp);
    enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    metrics_count(&r->sv->metrics, r->ep, status);
    r->answered = true;
    return rc;
}

static enum MHD_Result answer_json(request *r, int status, char *json) {
    if (!json) return MHD_NO;
    return http_answer(r, status, "application/json", json, NULL, NULL);
}

enum MHD_Result http_answer_error(request *r, const api_error *e, int retry_after) {
    char ra[16];
    snprintf(ra, sizeof ra, "%d", retry_after);
    char *json = api_error_json(e);
    if (!json) return MHD_NO;
    return http_answer(r, e->status, "application/json", json, retry_after > 0 ? ra : NULL,
                       e->status == 405 ? (r->ep == EP_CHAT || r->ep == EP_COMPLETIONS ? "POST" : "GET") : NULL);
}

enum MHD_Result http_fail(request *r, int status, const char *type, const char *param, const char *code,
                          const char *msg) {
    api_error e;
    api_fail(&e, status, type, param, code, "%s", msg);
    return http_answer_error(r, &e, 0);
}

void http_cors_headers(request *r, struct MHD_Response *resp) {
    if (!r->cors_origin) return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->cors_origin);
    MHD_add_response_header(resp, "Vary", "Origin");
}

/* ---- the connection ---- */

bool http_client_gone(request *r) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci) return false;
    short half = r->sv->p.abort_on_close ? POLLRDHUP : 0;
    struct pollfd pfd = {.fd = ci->connect_fd, .events = half};
    return poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLHUP | POLLERR | POLLNVAL | half));
}

static bool authorized(request *r) {
    const char *key = r->sv->p.api_key;
    return !key || guard_bearer_ok(MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Authorization"), key);
}

static const char *header(request *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* The server's own pages' origin: "http://" and the Host (the Host is
 * checked below like any other). */
static bool own_page(const server *sv, const char *origin, const char *host) {
    return sv->pages && host && !strncmp(origin, "http://", 7) && !strcasecmp(origin + 7, host);
}

/* Host and Origin (guard.h): the answer refusing the request, or MHD_YES
 * with *pass set. An allowed Origin is kept for the CORS headers; the
 * server's own pages (same origin) need none. */
static enum MHD_Result check_sender(request *r, bool *pass) {
    server *sv = r->sv;
    *pass = false;
    const char *origin = header(r, "Origin"), *host = header(r, "Host");
    if (origin && own_page(sv, origin, host)) origin = NULL;
    if (origin && !guard_origin_ok(origin, &sv->cors_origins))
        return http_fail(r, 403, "invalid_request_error", NULL, "origin_not_allowed",
                         "requests from this web origin are not allowed (--cors-origins lists those that are)");
    r->cors_origin = origin;
    if (!sv->p.api_key && host && !guard_host_ok(host, &sv->allowed_hosts))
        return http_fail(r, 403, "invalid_request_error", NULL, "host_not_allowed",
                         "this server has no API key and answers only requests addressed to this machine (an IP "
                         "address or localhost, or a name on --allowed-hosts)");
    *pass = true;
    return MHD_YES;
}

/* A CORS preflight from an allowed origin (check_sender let it through). */
static enum MHD_Result preflight(request *r) {
    if (!r->cors_origin) return http_fail(r, 405, "invalid_request_error", NULL, NULL, "use GET or POST");
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    http_cors_headers(r, resp);
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Authorization, Content-Type");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    enum MHD_Result rc = MHD_queue_response(r->conn, 204, resp);
    MHD_destroy_response(resp);
    metrics_count(&r->sv->metrics, r->ep, 204);
    r->answered = true;
    return rc;
}

/* ---- /health, /metrics ---- */

static enum MHD_Result health(request *r) {
    sched_stats st;
    sched_get_stats(r->sv->s, &st);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", st.draining ? "draining" : "ok");
    cJSON_AddStringToObject(o, "model", r->sv->p.model_id);
    cJSON_AddNumberToObject(o, "active_sessions", st.active);
    cJSON_AddNumberToObject(o, "capacity", st.capacity);
    cJSON_AddNumberToObject(o, "capacity_calibrated", st.capacity_base);
    if (st.capacity_memory >= 0) cJSON_AddNumberToObject(o, "capacity_memory", st.capacity_memory);
    else cJSON_AddNullToObject(o, "capacity_memory");
    cJSON_AddNumberToObject(o, "free_sessions", st.free_sessions);
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
    http_add_prefill(o, &st);
    cJSON_AddNumberToObject(o, "context", st.n_ctx);
    cJSON_AddNumberToObject(o, "context_reserved_tokens", st.ctx_reserved);
    cJSON_AddNumberToObject(o, "context_cost_seconds_per_token", st.ctx_cost);
    http_add_memory(o, &st);
    char *json = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return answer_json(r, st.draining ? 503 : 200, json);
}

/* ---- the web pages (pages.h) and their data ---- */

static enum MHD_Result page(request *r, const char *url) {
    int status = 404;
    struct MHD_Response *resp = pages_response(url, &status);
    if (!resp) return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(r->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    metrics_count(&r->sv->metrics, r->ep, status);
    r->answered = true;
    return rc;
}

/* /v1/stats, and /plan's charts (with the pages only; 503 while drawn). */
static enum MHD_Result page_data(request *r, const char *url) {
    server *sv = r->sv;
    if (!strcmp(url, "/v1/stats")) return answer_json(r, 200, stats_json(sv->s, sv->p.model_id));
    if (!sv->pages)
        return http_fail(r, 404, "invalid_request_error", NULL, "not_found", "the web pages are off (--no-web)");
    rl_err err = {0};
    bool ready = false;
    char *svg = pages_chart(sv->pages, url, &ready, &err);
    if (svg) return http_answer(r, 200, "image/svg+xml", svg, NULL, NULL);
    if (ready) return http_fail(r, 500, "server_error", NULL, NULL, err.msg);
    api_error e;
    api_fail(&e, 503, "server_error", NULL, "chart_not_ready", "the chart is being drawn; retry in a second");
    return http_answer_error(r, &e, 1);
}

static enum MHD_Result metrics_page(request *r) {
    server *sv = r->sv;
    sched_stats st;
    sched_get_stats(sv->s, &st);
    http_stats hs = {.prep = prep_get_stats(sv->prep)};
    pthread_mutex_lock(&sv->lock);
    hs.connections = sv->n_conns;
    hs.connections_peak = sv->n_conns_peak;
    hs.parked = sv->n_parked;
    pthread_mutex_unlock(&sv->lock);
    char *text = metrics_render(&sv->metrics, &st, &hs);
    if (!text) return MHD_NO;
    return http_answer(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, NULL, NULL);
}

/* ---- routing ---- */

static metrics_endpoint route(const char *url) {
    if (!strcmp(url, "/v1/chat/completions") || !strcmp(url, "/chat/completions")) return EP_CHAT;
    if (!strcmp(url, "/v1/completions") || !strcmp(url, "/completions")) return EP_COMPLETIONS;
    if (!strcmp(url, "/v1/models") || !strncmp(url, "/v1/models/", 11) || !strcmp(url, "/models")) return EP_MODELS;
    if (!strcmp(url, "/health")) return EP_HEALTH;
    if (!strcmp(url, "/metrics")) return EP_METRICS;
    if (!strcmp(url, "/v1/stats") || pages_is_chart(url)) return EP_STATS;
    if (pages_has(url)) return EP_PAGES;
    return EP_OTHER;
}

static enum MHD_Result models(request *r, const char *url, bool get) {
    server *sv = r->sv;
    if (!get) return http_fail(r, 405, "invalid_request_error", NULL, NULL, "use GET");
    if (!strncmp(url, "/v1/models/", 11)) {
        if (!guard_list_has(&sv->names, url + 11, false))
            return http_fail(r, 404, "invalid_request_error", "model", "model_not_found", "no such model here");
        return answer_json(r, 200, api_model_json(url + 11, sv->started));
    }
    return answer_json(r, 200, api_models_json((const char *const *)sv->names.items, (int)sv->names.n, sv->started));
}

static enum MHD_Result dispatch(request *r, const char *url, const char *method) {
    server *sv = r->sv;
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST"), pass;
    enum MHD_Result refused = check_sender(r, &pass);
    if (!pass) return refused;
    if (!strcmp(method, "OPTIONS") && r->ep != EP_OTHER) return preflight(r);
    switch (r->ep) {
    case EP_HEALTH: return get ? health(r) : http_fail(r, 405, "invalid_request_error", NULL, NULL, "use GET");
    case EP_METRICS:
        if (sv->p.protect_metrics && !authorized(r))
            return http_fail(r, 401, "invalid_request_error", NULL, "invalid_api_key",
                             "a valid API key is required on /metrics (--protect-metrics): send 'Authorization: "
                             "Bearer KEY'");
        return get ? metrics_page(r) : http_fail(r, 405, "invalid_request_error", NULL, NULL, "use GET");
    case EP_PAGES:
    case EP_OTHER:
        if (r->ep == EP_PAGES && sv->pages) /* not with --no-web */
            return get ? page(r, url) : http_fail(r, 405, "invalid_request_error", NULL, NULL, "use GET");
        if (!strcmp(url, "/v1/embeddings") || !strcmp(url, "/embeddings"))
            return http_fail(r, 404, "invalid_request_error", NULL, "not_found",
                             "this server does not serve embeddings: it generates text only (/v1/chat/completions, "
                             "/v1/completions)");
        return http_fail(r, 404, "invalid_request_error", NULL, "not_found",
                         "no such endpoint (try /v1/chat/completions, /v1/completions, /v1/models, /v1/stats, "
                         "/health, /metrics)");
    default: break;
    }
    if (!authorized(r))
        return http_fail(r, 401, "invalid_request_error", NULL, "invalid_api_key",
                         "a valid API key is required: send 'Authorization: Bearer KEY'");
    if (r->ep == EP_MODELS) return models(r, url, get);
    if (r->ep == EP_STATS)
        return get ? page_data(r, url) : http_fail(r, 405, "invalid_request_error", NULL, NULL, "use GET");
    if (!post) return http_fail(r, 405, "invalid_request_error", NULL, NULL, "use POST");
    if (!sv->p.api_key && !guard_json_type(header(r, "Content-Type")))
        return http_fail(r, 415, "invalid_request_error", NULL, "unsupported_media_type",
                         "send the body as Content-Type: application/json");
    if (r->too_big) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", sv->p.max_body);
        return http_fail(r, 413, "invalid_request_error", NULL, "request_too_large", msg);
    }
    if (atomic_load(&sv->draining)) {
        api_error e;
        api_fail(&e, 503, "server_error", NULL, "server_shutting_down", "the server is shutting down; retry elsewhere");
        return http_answer_error(r, &e, sched_retry_after(sv->s));
    }
    r->kind = r->ep == EP_CHAT ? API_CHAT : API_COMPLETION;
    return gen_continue(r);
}

/* ---- libmicrohttpd's callbacks ---- */

/* A request's first call: its head is in. */
static enum MHD_Result on_head(server *sv, struct MHD_Connection *c, const char *url, const char *method,
                               void **con_cls) {
    request *r = calloc(1, sizeof *r);
    if (!r) return MHD_NO;
    r->sv = sv;
    r->conn = c;
    r->t0 = rl_now();
    r->ep = route(url);
    r->fd = -1;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    r->cr = ci ? ci->socket_context : NULL;
    watch_stage(sv, r->cr, STAGE_BODY);
    *con_cls = r;
    pthread_mutex_lock(&sv->lock);
    sv->inflight++;
    pthread_mutex_unlock(&sv->lock);
    /* Too big by its Content-Length: answered before the body is read
     * (libmicrohttpd accepts an answer mid-upload only now, at the first
     * call). */
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > sv->p.max_body) {
        r->too_big = true;
        watch_stage(sv, r->cr, STAGE_ANSWER);
        return dispatch(r, url, method);
    }
    return MHD_YES;
}

/* Part of the body: kept, up to --max-body. A body past it (chunked: its
 * length was not announced) closes the connection at once — libmicrohttpd
 * cannot answer in the middle of an upload, and reading on would let a
 * client hold the connection as long as it likes. */
static enum MHD_Result on_body(request *r, const char *upload, size_t n) {
    server *sv = r->sv;
    if (r->len + n > sv->p.max_body) {
        metrics_close_count(&sv->metrics, CLOSE_BODY_TOO_LARGE);
        return MHD_NO;
    }
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    server *sv = cls;
    request *r = *con_cls;
    if (!r) return on_head(sv, c, url, method, con_cls);
    if (r->answered) { /* an early answer was queued: drop the rest */
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->state != RQ_BODY) return gen_continue(r); /* woken */
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        return on_body(r, upload, n);
    }
    watch_stage(sv, r->cr, STAGE_ANSWER);
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
    watch_stage(sv, r->cr, STAGE_HEADERS);  /* a kept-alive connection's next request */
    free(r->body);
    free(r->ev);
    free(r->text);
    free(r->lp);
    free(r);
    pthread_mutex_lock(&sv->lock);
    if (--sv->inflight == 0) pthread_cond_broadcast(&sv->cond);
    pthread_mutex_unlock(&sv->lock);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    watch_connection(cls, c, socket_context, code == MHD_CONNECTION_NOTIFY_STARTED);
}

/* libmicrohttpd's messages, on stderr; a refused connection is counted,
 * not printed (a flood of them would flood the log), and other messages
 * are printed at most a few a second. */
static void mhd_log(void *cls, const char *fmt, va_list ap) {
    server *sv = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    if (strstr(line, "connection limit")) {
        metrics_close_count(&sv->metrics, CLOSE_LIMIT);
        return;
    }
    static atomic_llong window;
    static atomic_int in_window;
    long long now = (long long)rl_now();
    if (atomic_exchange(&window, now) != now) atomic_store(&in_window, 0);
    if (atomic_fetch_add(&in_window, 1) >= 5) return;
    fprintf(stderr, "rackllm serve: http: %s%s", line, line[0] && line[strlen(line) - 1] == '\n' ? "" : "\n");
}

/* ---- life cycle ---- */

static void token_text(const tokenizer *t, int32_t id, char *out, size_t cap) {
    size_t n = 0;
    const char *p = id >= 0 ? tok_piece(t, id, &n) : NULL;
    snprintf(out, cap, "%.*s", p ? (int)n : 0, p ? p : "");
}

static void defaults(server_params *p) {
    if (!p->host) p->host = "127.0.0.1";
    if (!p->max_body) p->max_body = 1 << 20;
    if (p->timeout <= 0) p->timeout = 30;
    if (p->max_connections <= 0) p->max_connections = 512;
    if (p->full_status <= 0) p->full_status = 429;
    if (p->max_per_ip <= 0) p->max_per_ip = 64;
    if (p->header_timeout <= 0) p->header_timeout = 10;
    if (p->body_timeout <= 0) p->body_timeout = 30;
    if (p->http_threads <= 0) p->http_threads = 2;
    if (p->prep_threads <= 0) p->prep_threads = 1;
}

/* The listening address: *a4 or *a6 filled, *v6 said; -1 if not an address. */
static int listen_address(const char *host, int port, struct sockaddr_in *a4, struct sockaddr_in6 *a6, bool *v6) {
    if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
    *v6 = false;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *v6 = true;
        return 0;
    }
    return -1;
}

static int start_daemon(server *sv, rl_err *err) {
    struct sockaddr_in a4 = {0};
    struct sockaddr_in6 a6 = {0};
    bool v6;
    if (listen_address(sv->p.host, sv->p.port, &a4, &a6, &v6))
        return rl_fail(err, RL_ERR_INPUT, "--host '%s' is not an IP address (or localhost)", sv->p.host);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                     (v6 ? MHD_USE_IPv6 : 0);
    const struct sockaddr *addr = v6 ? (const struct sockaddr *)&a6 : (const struct sockaddr *)&a4;
    sv->d = MHD_start_daemon(flags, (uint16_t)sv->p.port, NULL, NULL, on_request, sv,
                             MHD_OPTION_EXTERNAL_LOGGER, mhd_log, sv,
                             MHD_OPTION_SOCK_ADDR, addr,
                             MHD_OPTION_THREAD_POOL_SIZE, (unsigned)sv->p.http_threads,
                             MHD_OPTION_NOTIFY_COMPLETED, on_completed, sv,
                             MHD_OPTION_NOTIFY_CONNECTION, on_connection, sv,
                             MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)sv->p.timeout,
                             MHD_OPTION_CONNECTION_LIMIT, (unsigned)sv->p.max_connections,
                             MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)sv->p.max_per_ip,
                             MHD_OPTION_END);
    if (!sv->d)
        return rl_fail(err, RL_ERR_INPUT, "cannot listen on %s port %d (in use, or not an address of this machine?)",
                       sv->p.host, sv->p.port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(sv->d, MHD_DAEMON_INFO_BIND_PORT);
    sv->port = di ? di->port : sv->p.port;
    return 0;
}

/* Who may talk to the server: the lists parsed, and no server open to the
 * network without a key unless that is asked for. */
static int check_policy(server *sv, rl_err *err) {
    const server_params *p = &sv->p;
    if (guard_list_parse(p->allowed_hosts, "allowed-hosts", &sv->allowed_hosts, err) ||
        guard_list_parse(p->cors_origins, "cors-origins", &sv->cors_origins, err) ||
        guard_origins_check(&sv->cors_origins, err))
        return -1;
    if (p->protect_metrics && !p->api_key)
        return rl_fail(err, RL_ERR_INPUT, "--protect-metrics needs an API key (--api-key-file or --api-key)");
    if (p->api_key && guard_key_check(p->api_key, "the API key", err)) return -1;
    if (!p->api_key && guard_list_has(&sv->cors_origins, "*", false))
        return rl_fail(err, RL_ERR_INPUT, "--cors-origins '*' lets every web page use a server without an API key: "
                                          "give --api-key, or list the origins");
    if (!p->api_key && !p->insecure && !guard_is_loopback(p->host))
        return rl_fail(err, RL_ERR_INPUT,
                       "--host %s listens beyond this machine, and without --api-key anyone who reaches it may use "
                       "it: give --api-key-file (or --api-key), or --insecure if that is what you want",
                       p->host);
    return 0;
}

/* The model's names, the generation limits and the overflow policy,
 * checked. */
static int model_names(server *sv, rl_err *err) {
    server_params *p = &sv->p;
    if (guard_list_parse(p->served_names ? p->served_names : p->model_id, "--served-model-name", &sv->names, err))
        return -1;
    p->model_id = sv->names.items[0];
    if (p->max_tokens_default < 0 || p->max_tokens_max < 0)
        return rl_fail(err, RL_ERR_INPUT, "--max-tokens-default and --max-tokens-max must be 0 or more");
    if (p->max_tokens_max > 0 && p->max_tokens_default > p->max_tokens_max)
        return rl_fail(err, RL_ERR_INPUT, "--max-tokens-default %d is above --max-tokens-max %d",
                       p->max_tokens_default, p->max_tokens_max);
    if (p->max_tokens_max > 0 && p->max_tokens_default == 0) p->max_tokens_default = p->max_tokens_max;
    const char *o = p->context_overflow;
    if (o && strcmp(o, "refuse") != 0 && strcmp(o, "drop-oldest") != 0)
        return rl_fail(err, RL_ERR_INPUT, "--context-overflow must be refuse or drop-oldest, not '%s'", o);
    sv->drop_oldest = o && !strcmp(o, "drop-oldest");
    return 0;
}

server *server_start(const model *m, sched *s, const server_params *p, rl_err *err) {
    server *sv = rl_calloc(1, sizeof *sv, err);
    if (!sv) return NULL;
    sv->m = m;
    sv->s = s;
    sv->p = *p;
    defaults(&sv->p);
    sv->watch_fd = -1;
    sv->started = (long)time(NULL);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sv->nonce = http_mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)getpid());
    token_text(m->tok, tok_bos(m->tok), sv->bos, sizeof sv->bos);
    token_text(m->tok, tok_eos(m->tok), sv->eos, sizeof sv->eos);
    pthread_mutex_init(&sv->lock, NULL);
    pthread_cond_init(&sv->cond, NULL);
    /* request bodies and what parsing them holds: kept out of the sessions' memory */
    sched_reserve_memory(s, ((uint64_t)sv->p.max_connections + 4ull * (uint64_t)sv->p.prep_threads) * sv->p.max_body);
    sched_stats st;
    sched_get_stats(s, &st);
    if (!sv->p.no_web && !(sv->pages = pages_new(sv->p.model_path, sv->p.plan_bench, st.floor_tps, st.n_ctx, err))) {
        server_free(sv);
        return NULL;
    }
    if (model_names(sv, err) || check_policy(sv, err) || !(sv->prep = prep_start(sv->p.prep_threads, gen_prep, err)) || watch_start(sv, err) ||
        start_daemon(sv, err)) {
        server_free(sv);
        return NULL;
    }
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
    prep_stop(sv->prep, NULL); /* queued jobs' requests stay parked: woken below */
    watch_stop(sv);
    watch_wake_all(sv);        /* libmicrohttpd must have no suspended connection when it stops */
    if (sv->d) MHD_stop_daemon(sv->d);
    pages_free(sv->pages);
    guard_list_free(&sv->allowed_hosts);
    guard_list_free(&sv->cors_origins);
    guard_list_free(&sv->names);
    pthread_mutex_destroy(&sv->lock);
    pthread_cond_destroy(&sv->cond);
    free(sv);
}
