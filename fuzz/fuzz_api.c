/*
 * fuzz_api.c — libFuzzer target for the server's request JSON (see
 * src/serve/http/api.h): any bytes, as a chat or a completion body, must give
 * either a request whose fields are all in range or a 400 naming a field,
 * never a crash, a hang or a leak. Whatever parses is then written back
 * through every response builder with the request's own strings (model
 * name, message text, stop strings), and each result must be valid JSON
 * (cJSON parses it back), since clients parse what the server writes.
 *
 * The first byte picks the kind (chat or completion); the rest is the body.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/http/api.h"

static void must_be_json(const char *s, size_t len) {
    if (!s) return; /* out of memory is not a finding */
    cJSON *j = cJSON_ParseWithLength(s, len);
    if (!j) abort();
    cJSON_Delete(j);
}

/* An SSE event "data: {...}\n\n": its JSON must parse. */
static void must_be_event(const char *ev, size_t n) {
    if (n == 0) return;
    if (n < 8 || memcmp(ev, "data: ", 6) != 0 || ev[n - 1] != '\n' || ev[n - 2] != '\n') abort();
    must_be_json(ev + 6, n - 8);
}

static void write_back(const api_request *r) {
    const char *text = r->kind == API_CHAT ? (r->n_messages ? r->messages[r->n_messages - 1].content : "") : r->prompt;
    size_t len = strlen(text);
    api_usage u = {r->max_tokens, (int)len};
    char *s = api_completion_json(r->kind, "id-1", 1, r->model, text, len, "stop", u, NULL);
    must_be_json(s, s ? strlen(s) : 0);
    free(s);
    s = api_models_json((const char *const *)&r->model, 1, 1);
    must_be_json(s, s ? strlen(s) : 0);
    free(s);

    api_stream st = {.kind = r->kind, .id = "id-1", .model = r->model, .created = 1, .include_usage = r->include_usage};
    size_t take = len < 2048 ? len : 2048;
    size_t cap = api_chunk_bound(take) + strlen(r->model) * 6;
    char *ev = malloc(cap);
    if (!ev) return;
    must_be_event(ev, api_chunk(&st, ev, cap, text, take, true, NULL));
    must_be_event(ev, api_chunk(&st, ev, cap, text, take, false, "length"));
    must_be_event(ev, api_usage_chunk(&st, ev, cap, u));
    for (int i = 0; i < r->n_stops; i++)
        must_be_event(ev, api_error_chunk(ev, cap, "server_error", r->stops[i]));
    free(ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > (1 << 16)) return 0;
    api_kind kind = data[0] & 1 ? API_COMPLETION : API_CHAT;
    api_request r;
    api_error e;
    if (api_parse_request(kind, (const char *)data + 1, size - 1, &r, &e) == 0) {
        if (!r.model || (kind == API_CHAT ? r.n_messages < 1 : !r.prompt)) abort();
        if (r.max_tokens < 0 || r.sp.temperature < 0 || r.sp.temperature > 2 || r.sp.top_p < 0 || r.sp.top_p > 1 ||
            r.n_stops > API_MAX_STOPS)
            abort();
        write_back(&r);
        api_request_free(&r);
    } else {
        if (e.status != 400 && e.status != 500) abort();
        char *s = api_error_json(&e);
        must_be_json(s, s ? strlen(s) : 0);
        free(s);
    }
    return 0;
}
