/*
 * loadgen.c — the load generator (see loadgen.h): session slots driven
 * through one libcurl multi handle, their Server-Sent Events read as they
 * arrive, each finished request counted into the result.
 */
#include "loadgen.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

loadgen_params loadgen_default_params(void) {
    loadgen_params p = {0};
    p.prompt_len = 64;
    p.max_tokens = 128;
    p.max_requests = 100000;
    return p;
}

/* ---- samples ---- */

void loadgen_sample_add(loadgen_samples *s, double x) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        double *v = realloc(s->v, cap * sizeof *v);
        if (!v) return;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
}

double loadgen_percentile(const loadgen_samples *s, double p) {
    if (!s->n) return 0;
    size_t k = (size_t)ceil(p / 100 * (double)s->n);
    return s->v[k ? k - 1 : 0];
}

double loadgen_mean(const loadgen_samples *s) {
    double t = 0;
    for (size_t i = 0; i < s->n; i++) t += s->v[i];
    return s->n ? t / (double)s->n : 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void sort_samples(loadgen_samples *s) {
    if (s->n) qsort(s->v, s->n, sizeof *s->v, cmp_double);
}

void loadgen_result_free(loadgen_result *r) {
    free(r->tps.v);
    free(r->ttft.v);
    free(r->itl.v);
    r->tps = r->ttft = r->itl = (loadgen_samples){0};
    for (int t = 0; t < LOADGEN_MAX_TURNS; t++) {
        free(r->ttft_turn[t].v);
        r->ttft_turn[t] = (loadgen_samples){0};
    }
}

/* ---- the URL ---- */

/* Whether host is localhost, [::1] or exactly 127.a.b.c. */
static bool loopback_host(const char *host) {
    if (strcmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0) return true;
    if (strncmp(host, "127.", 4) != 0) return false;
    int a, b, d, n = 0;
    return sscanf(host + 4, "%d.%d.%d%n", &a, &b, &d, &n) == 3 && host[4 + n] == 0 && a >= 0 && a < 256 && b >= 0 &&
           b < 256 && d >= 0 && d < 256;
}

int loadgen_base_url(const char *url, char *base, size_t cap) {
    CURLU *u = curl_url();
    char *host = NULL, *scheme = NULL;
    bool ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
              curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK;
    ok = ok && strcmp(scheme, "http") == 0 && loopback_host(host);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    if (!ok) return -1;
    snprintf(base, cap, "%s", url);
    size_t n = strlen(base);
    while (n && base[n - 1] == '/') base[--n] = 0;
    if (n >= 3 && strcmp(base + n - 3, "/v1") == 0) base[n - 3] = 0;
    return 0;
}

/* ---- requests ---- */

char *loadgen_prompt(int words, int salt) {
    static const char *const W[] = {"the", "cat", "sat", "on", "a", "warm", "mat", "and", "looked", "at",
                                    "small", "bird", "in", "tree", "near", "old", "house", "by", "river", "sun"};
    size_t cap = (size_t)words * 8 + 64, n = 0;
    char *p = malloc(cap);
    if (!p) return NULL;
    n += (size_t)snprintf(p, cap, "Tell a story (%d):", salt);
    uint32_t x = 2463534242u ^ (uint32_t)salt;
    for (int i = 0; i < words; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        n += (size_t)snprintf(p + n, cap - n, " %s", W[x % (sizeof W / sizeof W[0])]);
    }
    return p;
}

char *loadgen_request_body(const loadgen_params *o, const char *model, int serial) {
    char *prompt = loadgen_prompt(o->prompt_len, serial);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", model);
    if (o->completions) {
        cJSON_AddStringToObject(j, "prompt", prompt ? prompt : "hello");
    } else {
        cJSON *msgs = cJSON_AddArrayToObject(j, "messages");
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", "user");
        cJSON_AddStringToObject(m, "content", prompt ? prompt : "hello");
        cJSON_AddItemToArray(msgs, m);
    }
    cJSON_AddNumberToObject(j, "max_tokens", o->max_tokens);
    cJSON_AddBoolToObject(j, "stream", true);
    cJSON_AddItemToObject(cJSON_AddObjectToObject(j, "stream_options"), "include_usage", cJSON_CreateTrue());
    if (!o->allow_eos) cJSON_AddBoolToObject(j, "ignore_eos", true);
    cJSON_AddNumberToObject(j, "seed", serial);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    free(prompt);
    return s;
}

/* ---- conversations ---- */

struct loadgen_chat {
    const loadgen_params *p;
    cJSON *messages;
    int turn;      /* answers so far in this conversation */
    bool asked;    /* the last message waits for its answer */
};

static void add_message(cJSON *messages, const char *role, const char *content) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", role);
    cJSON_AddStringToObject(m, "content", content ? content : "hello");
    cJSON_AddItemToArray(messages, m);
}

/* A new conversation: the shared system prompt, if any. */
static void chat_restart(loadgen_chat *c) {
    cJSON_Delete(c->messages);
    c->messages = cJSON_CreateArray();
    c->turn = 0;
    c->asked = false;
    if (c->p->system_len > 0) {
        char *sys = loadgen_prompt(c->p->system_len, -1); /* one salt: the same for all */
        add_message(c->messages, "system", sys);
        free(sys);
    }
}

loadgen_chat *loadgen_chat_new(const loadgen_params *p) {
    loadgen_chat *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->p = p;
    chat_restart(c);
    return c;
}

void loadgen_chat_free(loadgen_chat *c) {
    if (!c) return;
    cJSON_Delete(c->messages);
    free(c);
}

int loadgen_chat_turn(const loadgen_chat *c) { return c->turn; }

char *loadgen_chat_request(loadgen_chat *c, const char *model, int serial) {
    if (!c->messages) return NULL;
    if (!c->asked) {
        char *prompt = loadgen_prompt(c->p->prompt_len, serial);
        add_message(c->messages, "user", prompt);
        free(prompt);
        c->asked = true;
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", model);
    cJSON_AddItemReferenceToObject(j, "messages", c->messages);
    cJSON_AddNumberToObject(j, "max_tokens", c->p->max_tokens);
    cJSON_AddBoolToObject(j, "stream", true);
    cJSON_AddItemToObject(cJSON_AddObjectToObject(j, "stream_options"), "include_usage", cJSON_CreateTrue());
    if (!c->p->allow_eos) cJSON_AddBoolToObject(j, "ignore_eos", true);
    cJSON_AddNumberToObject(j, "seed", serial);
    char *body = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return body;
}

int loadgen_chat_answer(loadgen_chat *c, const char *text, size_t len) {
    int turn = c->turn;
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, text, len);
        copy[len] = 0;
    }
    add_message(c->messages, "assistant", copy ? copy : "");
    free(copy);
    c->asked = false;
    int turns = c->p->turns > 0 ? c->p->turns : 1;
    if (++c->turn >= turns) chat_restart(c);
    return turn;
}

/* ---- the event stream ---- */

void loadgen_stream_reset(loadgen_stream *s) {
    s->t_first = s->t_last = 0;
    s->n_content = s->completion_tokens = 0;
    s->done_seen = s->error_seen = false;
    s->prompt_tokens = s->cached_tokens = 0;
    s->error[0] = 0;
    s->line_len = 0;
    s->content_len = 0;
}

void loadgen_stream_free(loadgen_stream *s) {
    free(s->content);
    s->content = NULL;
    s->content_len = s->content_cap = 0;
}

static void keep_text(loadgen_stream *s, const char *text) {
    size_t n = strlen(text);
    if (s->content_len + n + 1 > s->content_cap) {
        size_t cap = RL_MAX(2 * s->content_cap, s->content_len + n + 1024);
        char *grown = realloc(s->content, cap);
        if (!grown) return;
        s->content = grown;
        s->content_cap = cap;
    }
    memcpy(s->content + s->content_len, text, n + 1);
    s->content_len += n;
}

/* What usage says: completion and prompt tokens, and the cached ones. */
static void read_usage(loadgen_stream *s, const cJSON *usage) {
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens");
    const cJSON *pt = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens");
    const cJSON *details = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens_details");
    const cJSON *cached = cJSON_GetObjectItemCaseSensitive(details, "cached_tokens");
    if (cJSON_IsNumber(ct)) s->completion_tokens = (int)ct->valuedouble;
    if (cJSON_IsNumber(pt)) s->prompt_tokens = (int)pt->valuedouble;
    if (cJSON_IsNumber(cached)) s->cached_tokens = (int)cached->valuedouble;
}

static void on_event(loadgen_stream *s, const char *data, double now, loadgen_samples *itl) {
    if (s->done_seen) return; /* the stream is over at [DONE] (OpenAI's clients stop reading there) */
    if (strcmp(data, "[DONE]") == 0) {
        s->done_seen = true;
        return;
    }
    cJSON *j = cJSON_Parse(data);
    if (!j) return;
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (err) {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
        snprintf(s->error, sizeof s->error, "%s", cJSON_IsString(msg) ? msg->valuestring : "error event");
        s->error_seen = true;
    }
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0);
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(choice, "delta");
    const cJSON *content = delta ? cJSON_GetObjectItemCaseSensitive(delta, "content")
                                 : cJSON_GetObjectItemCaseSensitive(choice, "text"); /* a text completion */
    if (cJSON_IsString(content) && content->valuestring[0]) {
        if (s->n_content == 0) s->t_first = now;
        else if (itl) loadgen_sample_add(itl, now - s->t_last);
        s->t_last = now;
        s->n_content++;
        if (s->keep_content) keep_text(s, content->valuestring);
    }
    read_usage(s, cJSON_GetObjectItemCaseSensitive(j, "usage"));
    cJSON_Delete(j);
}

void loadgen_stream_feed(loadgen_stream *s, const char *data, size_t n, double now, loadgen_samples *itl) {
    for (size_t i = 0; i < n; i++) {
        char c = data[i];
        if (c == '\n') {
            s->line[s->line_len] = 0;
            if (s->line_len >= 6 && memcmp(s->line, "data: ", 6) == 0) on_event(s, s->line + 6, now, itl);
            else if (s->line_len > 0 && s->line[0] == '{') on_event(s, s->line, now, itl); /* a plain JSON error */
            s->line_len = 0;
        } else if (s->line_len + 1 < sizeof s->line) {
            s->line[s->line_len++] = c;
        }
    }
}

double loadgen_account(loadgen_result *r, const loadgen_stream *s, loadgen_transfer how, const char *why,
                       long status, double retry_after, double t_sent) {
    if (how == LOADGEN_TIMED_OUT) {
        r->cut++;
        return 0;
    }
    if (status == 429) {
        r->rejected++;
        return RL_MIN(LOADGEN_RETRY_CAP, retry_after > 0 ? retry_after : 1);
    }
    if (how != LOADGEN_OK || status != 200 || s->error_seen || !s->done_seen) {
        r->errors++;
        if (!r->first_error[0])
            snprintf(r->first_error, sizeof r->first_error, "%s",
                     how != LOADGEN_OK ? (why ? why : "transfer failed")
                     : s->error[0]     ? s->error
                                       : "HTTP error or no [DONE]");
        return 0.5;
    }
    r->completed++;
    r->tokens += s->completion_tokens;
    r->prompt_tokens += s->prompt_tokens;
    r->cached_tokens += s->cached_tokens;
    if (s->n_content > 0) loadgen_sample_add(&r->ttft, s->t_first - t_sent);
    if (s->completion_tokens >= 2 && s->t_last > s->t_first)
        loadgen_sample_add(&r->tps, (s->completion_tokens - 1) / (s->t_last - s->t_first));
    return 0;
}

/* ---- a run ---- */

/* One session slot and the request it has in flight. */
typedef struct slot {
    CURL *h;
    char *body;
    bool busy;
    double next_start, t_sent, retry_after;
    loadgen_stream stream;
    loadgen_chat *chat; /* chat requests: the conversation (NULL: completions) */
    loadgen_result *res;
} slot;

static size_t on_body(char *data, size_t size, size_t nmemb, void *user) {
    slot *s = user;
    loadgen_stream_feed(&s->stream, data, size * nmemb, rl_now(), &s->res->itl);
    return size * nmemb;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *user) {
    slot *s = user;
    size_t n = size * nmemb;
    if (n > 12 && strncasecmp(data, "Retry-After:", 12) == 0) s->retry_after = atof(data + 12);
    return n;
}

/* What the slots share. */
typedef struct run {
    const loadgen_params *p;
    loadgen_result *r;
    CURLM *multi;
    struct curl_slist *headers;
    slot *slots;
    double end, hard_end;
    int started;
} run;

static void start_request(run *g, slot *s) {
    free(s->body);
    s->body = s->chat ? loadgen_chat_request(s->chat, g->r->model, g->started)
                      : loadgen_request_body(g->p, g->r->model, g->started);
    g->started++;
    s->t_sent = rl_now();
    s->retry_after = 0;
    loadgen_stream_reset(&s->stream);
    char url[2100];
    snprintf(url, sizeof url, "%s/v1/%s", g->r->base, g->p->completions ? "completions" : "chat/completions");
    curl_easy_reset(s->h);
    curl_easy_setopt(s->h, CURLOPT_URL, url);
    curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, g->headers);
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, s->body ? s->body : "{}");
    curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(s->h, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->h, CURLOPT_PROTOCOLS_STR, "http");
    long ms = (long)((g->hard_end - s->t_sent) * 1000);
    curl_easy_setopt(s->h, CURLOPT_TIMEOUT_MS, ms > 1 ? ms : 1);
    curl_multi_add_handle(g->multi, s->h);
    s->busy = true;
}

static void finish_request(slot *s, CURLcode rc, double now) {
    long status = 0;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
    s->busy = false;
    loadgen_transfer how = rc == CURLE_OK ? LOADGEN_OK : rc == CURLE_OPERATION_TIMEDOUT ? LOADGEN_TIMED_OUT
                                                                                       : LOADGEN_FAILED;
    int completed = s->res->completed;
    s->next_start = now + loadgen_account(s->res, &s->stream, how, curl_easy_strerror(rc), status, s->retry_after,
                                          s->t_sent);
    if (s->res->completed > completed && s->chat) { /* answered: the conversation goes on */
        int turn = loadgen_chat_answer(s->chat, s->stream.content ? s->stream.content : "", s->stream.content_len);
        if (s->stream.n_content > 0) loadgen_sample_add(&s->res->ttft_turn[turn], s->stream.t_first - s->t_sent);
    }
}

/* Starts what may start, moves the transfers on, counts what ended.
 * False when everything is done. */
static bool pump(run *g) {
    double now = rl_now();
    int busy = 0;
    for (int i = 0; i < g->p->sessions; i++) {
        slot *s = &g->slots[i];
        if (!s->busy && s->h && now < g->end && now >= s->next_start && g->started < g->p->max_requests)
            start_request(g, s);
        busy += s->busy;
    }
    if (!busy && (now >= g->end || g->started >= g->p->max_requests)) return false;
    int running = 0, left;
    curl_multi_perform(g->multi, &running);
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(g->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) continue;
        for (int i = 0; i < g->p->sessions; i++)
            if (g->slots[i].h == msg->easy_handle) {
                CURLcode code = msg->data.result;
                curl_multi_remove_handle(g->multi, g->slots[i].h);
                finish_request(&g->slots[i], code, rl_now());
                break;
            }
    }
    curl_multi_poll(g->multi, NULL, 0, 20, NULL);
    return true;
}

/* ---- the model's name: GET /v1/models ---- */

static size_t to_buffer(char *data, size_t size, size_t nmemb, void *user) {
    char *buf = user;
    size_t n = size * nmemb, have = strlen(buf);
    if (have + n < 65536) {
        memcpy(buf + have, data, n);
        buf[have + n] = 0;
    }
    return n;
}

static int first_model(const char *base, struct curl_slist *headers, char *out, size_t cap) {
    char *buf = calloc(1, 65536);
    if (!buf) return -1;
    char url[2100];
    snprintf(url, sizeof url, "%s/v1/models", base);
    CURL *h = curl_easy_init();
    CURLcode rc = CURLE_FAILED_INIT;
    if (h) {
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_buffer);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, (void *)buf);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        rc = curl_easy_perform(h);
        curl_easy_cleanup(h);
    }
    cJSON *j = rc == CURLE_OK ? cJSON_Parse(buf) : NULL;
    free(buf);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "data"), 0), "id");
    int ok = cJSON_IsString(id);
    if (ok) snprintf(out, cap, "%s", id->valuestring);
    cJSON_Delete(j);
    return ok ? 0 : -1;
}

/* The headers, the model's name, the slots: what the run needs. */
static int prepare(run *g, rl_err *err) {
    const loadgen_params *p = g->p;
    g->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (p->api_key) {
        char auth[1200];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", p->api_key);
        g->headers = curl_slist_append(g->headers, auth);
    }
    if (p->model) snprintf(g->r->model, sizeof g->r->model, "%s", p->model);
    else if (first_model(g->r->base, g->headers, g->r->model, sizeof g->r->model))
        return rl_fail(err, RL_ERR_INTERNAL, "no model from %s/v1/models (is the server up?)", g->r->base);
    g->slots = calloc((size_t)p->sessions, sizeof *g->slots);
    g->multi = curl_multi_init();
    if (!g->slots || !g->multi) return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    curl_multi_setopt(g->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)p->sessions);
    return 0;
}

int loadgen_run(const loadgen_params *p, loadgen_result *r, rl_err *err) {
    memset(r, 0, sizeof *r);
    if (p->sessions < 1 || !(p->duration > 0)) return rl_fail(err, RL_ERR_INPUT, "loadgen needs sessions and a duration");
    if (p->turns < 0 || p->turns > LOADGEN_MAX_TURNS || (p->completions && p->turns > 1) || p->system_len < 0)
        return rl_fail(err, RL_ERR_INPUT, "turns must be 1..%d, and only for chat requests; system_len >= 0",
                       LOADGEN_MAX_TURNS);
    if (loadgen_base_url(p->url, r->base, sizeof r->base))
        return rl_fail(err, RL_ERR_INPUT,
                       "'%s' is not an http:// URL on this machine (127.0.0.0/8, [::1] or localhost); loadgen only "
                       "loads loopback servers", p->url);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return rl_fail(err, RL_ERR_INTERNAL, "cannot initialise libcurl");
    run g = {.p = p, .r = r};
    int rc = prepare(&g, err);
    if (rc == 0) {
        double t0 = rl_now();
        g.end = t0 + p->duration;
        g.hard_end = g.end + RL_MAX(30.0, p->duration);
        for (int i = 0; i < p->sessions; i++) {
            g.slots[i] = (slot){.h = curl_easy_init(), .res = r, .next_start = t0};
            if (!p->completions) g.slots[i].chat = loadgen_chat_new(p);
            g.slots[i].stream.keep_content = !p->completions;
        }
        while (pump(&g)) {
        }
        r->wall = rl_now() - t0;
        sort_samples(&r->tps);
        sort_samples(&r->ttft);
        sort_samples(&r->itl);
        for (int t = 0; t < LOADGEN_MAX_TURNS; t++) sort_samples(&r->ttft_turn[t]);
    }
    for (int i = 0; g.slots && i < p->sessions; i++) {
        curl_easy_cleanup(g.slots[i].h);
        free(g.slots[i].body);
        loadgen_chat_free(g.slots[i].chat);
        loadgen_stream_free(&g.slots[i].stream);
    }
    free(g.slots);
    curl_multi_cleanup(g.multi);
    curl_slist_free_all(g.headers);
    curl_global_cleanup();
    return rc;
}
