/*
 * cmd_loadgen.c — `rackllm loadgen`: N concurrent streaming chat sessions
 * against an OpenAI-compatible server on this machine, measured from the
 * client's side.
 *
 * Each of the N session slots sends a streaming chat request, reads its
 * Server-Sent Events as they arrive, and when it ends sends the next one,
 * until --duration has passed (a 429 waits its Retry-After, at most 2 s,
 * before the slot tries again). Requests still running then may finish for
 * a grace period (the duration again, at least 30 s); after that they are
 * cut. It reports what a user would feel:
 *   - per-session tok/s of each completed request: (completion_tokens - 1)
 *     over the time from its first to its last token (min, p50, mean);
 *   - time to first token (queueing included), p50 / p99;
 *   - inter-token latency: the gaps between content events, p50 / p99;
 *   - requests completed, rejected (429), failed, cut.
 * Bounded in time (above) and in count (--max-requests). Loopback only: a
 * URL whose host is not 127.0.0.0/8, ::1 or localhost is refused.
 *
 * One thread drives every transfer through libcurl's multi interface.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "commands.h"

#define RETRY_CAP 2.0 /* seconds a rejected slot waits at most */

typedef struct lg_opts {
    const char *url, *model, *api_key;
    int sessions, prompt_len, max_tokens, max_requests;
    double duration;
    bool json, allow_eos, completions;
} lg_opts;

/* A growing array of doubles (samples). */
typedef struct samples {
    double *v;
    size_t n, cap;
} samples;

static void sample_add(samples *s, double x) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        double *v = realloc(s->v, cap * sizeof *v);
        if (!v) return;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples (0 if none). */
static double pct(const samples *s, double p) {
    if (!s->n) return 0;
    size_t k = (size_t)ceil(p / 100 * (double)s->n);
    return s->v[k ? k - 1 : 0];
}

static double mean(const samples *s) {
    double t = 0;
    for (size_t i = 0; i < s->n; i++) t += s->v[i];
    return s->n ? t / (double)s->n : 0;
}

typedef struct results {
    samples tps, ttft, itl;
    int completed, rejected, errors, cut;
    long tokens;
    char first_error[256];
} results;

/* One session slot and the request it has in flight. */
typedef struct slot {
    int index;
    CURL *h;
    struct curl_slist *headers;
    char *body;
    bool busy;
    double next_start, t_sent, t_first, t_last;
    int n_content, completion_tokens;
    bool done_seen, error_seen;
    double retry_after;
    char line[16384];
    size_t line_len;
    char error[200];
    results *res;
} slot;

static void usage(FILE *out) {
    fprintf(out,
            "usage: rackllm loadgen --url URL --sessions N --duration S [options]\n"
            "\n"
            "Opens N concurrent streaming chat sessions against an OpenAI-compatible server on\n"
            "this machine (loopback addresses only) and reports, from the client's side,\n"
            "per-session tok/s, time to first token, inter-token latency, 429s and errors.\n"
            "\n"
            "  --url URL           the server, e.g. http://127.0.0.1:8080\n"
            "  --sessions N        concurrent sessions (1..4096)\n"
            "  --duration S        seconds to keep starting requests (then a grace period)\n"
            "  --prompt-len L      prompt length in words, about as many tokens (default 64)\n"
            "  --max-tokens M      tokens per answer (default 128)\n"
            "  --max-requests R    stop after R requests in all (default 100000)\n"
            "  --model NAME        model to ask for (default: the first of GET /v1/models)\n"
            "  --api-key KEY       sent as 'Authorization: Bearer KEY'\n"
            "  --allow-eos         let answers end early at end-of-text (default: ignore_eos, so\n"
            "                      every answer is M tokens long)\n"
            "  --completions       use /v1/completions with the prompt as plain text instead of\n"
            "                      chat (for servers whose chat parsing fails on a synthetic\n"
            "                      model's random text, as llama-server's does)\n"
            "  --json              one JSON object instead of the table\n"
            "  -h, --help          this help\n");
}

static int parse(int argc, char **argv, lg_opts *o) {
    enum { O_URL = 256, O_SESS, O_DUR, O_PLEN, O_MAXT, O_MAXR, O_MODEL, O_KEY, O_EOS, O_JSON, O_COMPL };
    static const struct option longs[] = {
        {"url", required_argument, 0, O_URL},         {"sessions", required_argument, 0, O_SESS},
        {"duration", required_argument, 0, O_DUR},    {"prompt-len", required_argument, 0, O_PLEN},
        {"max-tokens", required_argument, 0, O_MAXT}, {"max-requests", required_argument, 0, O_MAXR},
        {"model", required_argument, 0, O_MODEL},     {"api-key", required_argument, 0, O_KEY},
        {"allow-eos", no_argument, 0, O_EOS},         {"json", no_argument, 0, O_JSON},
        {"completions", no_argument, 0, O_COMPL},
        {"help", no_argument, 0, 'h'},                {0, 0, 0, 0},
    };
    memset(o, 0, sizeof *o);
    o->prompt_len = 64;
    o->max_tokens = 128;
    o->max_requests = 100000;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        char *end = NULL;
        double v = 0;
        switch (c) {
        case O_URL: o->url = optarg; continue;
        case O_MODEL: o->model = optarg; continue;
        case O_KEY: o->api_key = optarg; continue;
        case O_EOS: o->allow_eos = true; continue;
        case O_JSON: o->json = true; continue;
        case O_COMPL: o->completions = true; continue;
        case 'h': usage(stdout); return -1;
        case O_SESS: case O_DUR: case O_PLEN: case O_MAXT: case O_MAXR: v = strtod(optarg, &end); break;
        default: usage(stderr); return 2;
        }
        bool integer = c != O_DUR;
        double lo = c == O_PLEN ? 1 : c == O_DUR ? 0.1 : 1;
        double hi = c == O_SESS ? 4096 : c == O_DUR ? 86400 : c == O_PLEN ? 100000 : 1e7;
        if (!*optarg || *end || !(v >= lo && v <= hi) || (integer && v != floor(v))) {
            fprintf(stderr, "rackllm loadgen: invalid value '%s'\n", optarg);
            return 2;
        }
        if (c == O_SESS) o->sessions = (int)v;
        else if (c == O_DUR) o->duration = v;
        else if (c == O_PLEN) o->prompt_len = (int)v;
        else if (c == O_MAXT) o->max_tokens = (int)v;
        else o->max_requests = (int)v;
    }
    if (optind < argc) {
        fprintf(stderr, "rackllm loadgen: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o->url || !o->sessions || !o->duration) {
        fprintf(stderr, "rackllm loadgen: --url, --sessions and --duration are required\n");
        return 2;
    }
    return 0;
}

/* The server's root (no trailing "/" or "/v1"), if its host is loopback. */
static int loopback_base(const char *url, char *base, size_t cap) {
    CURLU *u = curl_url();
    char *host = NULL, *scheme = NULL;
    int ok = u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
             curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK;
    if (ok) {
        ok = strcmp(scheme, "http") == 0 &&
             (strcmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 || strncmp(host, "127.", 4) == 0);
        if (ok && strncmp(host, "127.", 4) == 0) { /* 127.a.b.c exactly */
            int a, b, d, n = 0;
            ok = sscanf(host + 4, "%d.%d.%d%n", &a, &b, &d, &n) == 3 && host[4 + n] == 0 && a >= 0 && a < 256 &&
                 b >= 0 && b < 256 && d >= 0 && d < 256;
        }
    }
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

/* ---- SSE parsing ---- */

static void on_event(slot *s, const char *data, double now) {
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
        else sample_add(&s->res->itl, now - s->t_last);
        s->t_last = now;
        s->n_content++;
    }
    const cJSON *ct = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "usage"), "completion_tokens");
    if (cJSON_IsNumber(ct)) s->completion_tokens = (int)ct->valuedouble;
    cJSON_Delete(j);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *user) {
    slot *s = user;
    size_t n = size * nmemb;
    double now = rl_now();
    for (size_t i = 0; i < n; i++) {
        char c = data[i];
        if (c == '\n') {
            s->line[s->line_len] = 0;
            if (s->line_len >= 6 && memcmp(s->line, "data: ", 6) == 0) on_event(s, s->line + 6, now);
            else if (s->line_len > 0 && s->line[0] == '{') on_event(s, s->line, now); /* a plain JSON error */
            s->line_len = 0;
        } else if (s->line_len + 1 < sizeof s->line) {
            s->line[s->line_len++] = c;
        }
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *user) {
    slot *s = user;
    size_t n = size * nmemb;
    if (n > 12 && strncasecmp(data, "Retry-After:", 12) == 0) s->retry_after = atof(data + 12);
    return n;
}

/* ---- requests ---- */

/* A deterministic prompt of about `words` words (and as many tokens). */
static char *make_prompt(int words, int salt) {
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

static char *request_body(const lg_opts *o, const char *model, int serial) {
    char *prompt = make_prompt(o->prompt_len, serial);
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

static void start_request(CURLM *multi, slot *s, const lg_opts *o, const char *base, const char *model, int serial,
                          double hard_end) {
    free(s->body);
    s->body = request_body(o, model, serial);
    s->t_sent = rl_now();
    s->t_first = s->t_last = 0;
    s->n_content = s->completion_tokens = 0;
    s->done_seen = s->error_seen = false;
    s->retry_after = 0;
    s->line_len = 0;
    s->error[0] = 0;
    char url[2100];
    snprintf(url, sizeof url, "%s/v1/%s", base, o->completions ? "completions" : "chat/completions");
    curl_easy_reset(s->h);
    curl_easy_setopt(s->h, CURLOPT_URL, url);
    curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->headers);
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, s->body ? s->body : "{}");
    curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(s->h, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->h, CURLOPT_PROTOCOLS_STR, "http");
    long ms = (long)((hard_end - s->t_sent) * 1000);
    curl_easy_setopt(s->h, CURLOPT_TIMEOUT_MS, ms > 1 ? ms : 1);
    curl_multi_add_handle(multi, s->h);
    s->busy = true;
}

static void finish_request(slot *s, CURLcode rc, double now) {
    results *r = s->res;
    long status = 0;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
    s->busy = false;
    s->next_start = now;
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        r->cut++;
        return;
    }
    if (status == 429) {
        r->rejected++;
        s->next_start = now + RL_MIN(RETRY_CAP, s->retry_after > 0 ? s->retry_after : 1);
        return;
    }
    if (rc != CURLE_OK || status != 200 || s->error_seen || !s->done_seen) {
        r->errors++;
        if (!r->first_error[0])
            snprintf(r->first_error, sizeof r->first_error, "%s",
                     rc != CURLE_OK ? curl_easy_strerror(rc) : s->error[0] ? s->error : "HTTP error or no [DONE]");
        if (status >= 400 && !r->first_error[0]) snprintf(r->first_error, sizeof r->first_error, "HTTP %ld", status);
        s->next_start = now + 0.5;
        return;
    }
    r->completed++;
    r->tokens += s->completion_tokens;
    if (s->n_content > 0) sample_add(&r->ttft, s->t_first - s->t_sent);
    if (s->completion_tokens >= 2 && s->t_last > s->t_first)
        sample_add(&r->tps, (s->completion_tokens - 1) / (s->t_last - s->t_first));
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
    static char buf[65536];
    buf[0] = 0;
    char url[2100];
    snprintf(url, sizeof url, "%s/v1/models", base);
    CURL *h = curl_easy_init();
    if (!h) return -1;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, to_buffer);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, (void *)buf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_cleanup(h);
    cJSON *j = rc == CURLE_OK ? cJSON_Parse(buf) : NULL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "data"), 0), "id");
    int ok = cJSON_IsString(id);
    if (ok) snprintf(out, cap, "%s", id->valuestring);
    cJSON_Delete(j);
    return ok ? 0 : -1;
}

/* ---- report ---- */

static void report(const lg_opts *o, const char *base, const char *model, results *r, double wall) {
    qsort(r->tps.v, r->tps.n, sizeof(double), cmp_double);
    qsort(r->ttft.v, r->ttft.n, sizeof(double), cmp_double);
    qsort(r->itl.v, r->itl.n, sizeof(double), cmp_double);
    double tps_min = r->tps.n ? r->tps.v[0] : 0;
    if (o->json) {
        printf("{\"url\":\"%s\",\"model\":\"%s\",\"sessions\":%d,\"duration_s\":%g,\"prompt_words\":%d,\"max_tokens\":%d,"
               "\"wall_s\":%.3f,\"requests\":{\"completed\":%d,\"rejected_429\":%d,\"errors\":%d,\"cut\":%d},"
               "\"tokens\":%ld,\"session_tps\":{\"min\":%.3f,\"p50\":%.3f,\"mean\":%.3f,\"max\":%.3f},"
               "\"ttft_s\":{\"p50\":%.4f,\"p99\":%.4f},\"itl_s\":{\"p50\":%.4f,\"p99\":%.4f},\"first_error\":",
               base, model, o->sessions, o->duration, o->prompt_len, o->max_tokens, wall, r->completed, r->rejected,
               r->errors, r->cut, r->tokens, tps_min, pct(&r->tps, 50), mean(&r->tps),
               r->tps.n ? r->tps.v[r->tps.n - 1] : 0, pct(&r->ttft, 50), pct(&r->ttft, 99), pct(&r->itl, 50),
               pct(&r->itl, 99));
        cJSON *e = r->first_error[0] ? cJSON_CreateString(r->first_error) : cJSON_CreateNull();
        char *es = cJSON_PrintUnformatted(e);
        printf("%s}\n", es ? es : "null");
        free(es);
        cJSON_Delete(e);
        return;
    }
    printf("loadgen: %d %s session%s for %g s against %s (model %s, ~%d-word prompts, %d tokens max)\n",
           o->sessions, o->completions ? "completion" : "chat", o->sessions == 1 ? "" : "s", o->duration, base, model,
           o->prompt_len, o->max_tokens);
    printf("requests:             %d completed, %d rejected (429), %d failed, %d cut at the end (%.1f s)\n",
           r->completed, r->rejected, r->errors, r->cut, wall);
    printf("per-session tok/s:    min %.2f  p50 %.2f  mean %.2f\n", tps_min, pct(&r->tps, 50), mean(&r->tps));
    printf("time to first token:  p50 %.3f s  p99 %.3f s\n", pct(&r->ttft, 50), pct(&r->ttft, 99));
    printf("inter-token latency:  p50 %.4f s  p99 %.4f s\n", pct(&r->itl, 50), pct(&r->itl, 99));
    printf("tokens received:      %ld (%.1f tok/s in all)\n", r->tokens, wall > 0 ? r->tokens / wall : 0);
    if (r->first_error[0]) printf("first error:          %s\n", r->first_error);
}

int cmd_loadgen(int argc, char **argv) {
    lg_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    char base[2048];
    if (loopback_base(o.url, base, sizeof base)) {
        fprintf(stderr, "rackllm loadgen: '%s' is not an http:// URL on this machine (127.0.0.0/8, [::1] or "
                        "localhost); loadgen only loads loopback servers\n", o.url);
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "rackllm loadgen: cannot initialise libcurl\n");
        return 1;
    }
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (o.api_key) {
        char auth[1200];
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", o.api_key);
        headers = curl_slist_append(headers, auth);
    }
    char model[512];
    if (o.model) snprintf(model, sizeof model, "%s", o.model);
    else if (first_model(base, headers, model, sizeof model)) {
        fprintf(stderr, "rackllm loadgen: no model from %s/v1/models (is the server up?)\n", base);
        curl_slist_free_all(headers);
        curl_global_cleanup();
        return 1;
    }

    results res = {0};
    slot *slots = calloc((size_t)o.sessions, sizeof *slots);
    CURLM *multi = curl_multi_init();
    if (!slots || !multi) {
        fprintf(stderr, "rackllm loadgen: out of memory\n");
        return 1;
    }
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)o.sessions);
    double t0 = rl_now(), end = t0 + o.duration, hard_end = end + RL_MAX(30.0, o.duration);
    for (int i = 0; i < o.sessions; i++) {
        slots[i].index = i;
        slots[i].h = curl_easy_init();
        slots[i].headers = headers;
        slots[i].res = &res;
        slots[i].next_start = t0;
    }
    int started = 0, running = 0;
    for (;;) {
        double now = rl_now();
        int busy = 0;
        for (int i = 0; i < o.sessions; i++) {
            slot *s = &slots[i];
            if (!s->busy && s->h && now < end && now >= s->next_start && started < o.max_requests)
                start_request(multi, s, &o, base, model, started++, hard_end);
            busy += s->busy;
        }
        if (!busy && (now >= end || started >= o.max_requests)) break;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            if (msg->msg != CURLMSG_DONE) continue;
            for (int i = 0; i < o.sessions; i++)
                if (slots[i].h == msg->easy_handle) {
                    CURLcode code = msg->data.result;
                    curl_multi_remove_handle(multi, slots[i].h);
                    finish_request(&slots[i], code, rl_now());
                    break;
                }
        }
        curl_multi_poll(multi, NULL, 0, 20, NULL);
    }
    double wall = rl_now() - t0;
    report(&o, base, model, &res, wall);
    for (int i = 0; i < o.sessions; i++) {
        curl_easy_cleanup(slots[i].h);
        free(slots[i].body);
    }
    free(slots);
    curl_multi_cleanup(multi);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    free(res.tps.v);
    free(res.ttft.v);
    free(res.itl.v);
    return res.completed > 0 || res.rejected > 0 ? 0 : 1;
}
