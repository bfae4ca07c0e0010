/*
 * api.c — OpenAI request parsing and response JSON (see api.h).
 */
#include "api.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int api_fail(api_error *err, int status, const char *type, const char *param, const char *code, const char *fmt,
             ...) {
    err->status = status;
    err->type = type;
    err->code = code;
    snprintf(err->param, sizeof err->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

static int bad(api_error *err, const char *param, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(api_error *err, const char *param, const char *fmt, ...) {
    char msg[sizeof err->message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return api_fail(err, 400, "invalid_request_error", param, NULL, "%s", msg);
}

/* ---- field readers: absent or null leaves *out alone ---- */

static const cJSON *field(const cJSON *obj, const char *name) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
    return f && !cJSON_IsNull(f) ? f : NULL;
}

static int get_number(const cJSON *obj, const char *name, double lo, double hi, float *out, api_error *err) {
    const cJSON *f = field(obj, name);
    if (!f) return 0;
    double v = cJSON_GetNumberValue(f);
    if (!cJSON_IsNumber(f) || !isfinite(v) || v < lo || v > hi)
        return bad(err, name, "'%s' must be a number from %g to %g", name, lo, hi);
    *out = (float)v;
    return 0;
}

static int get_int(const cJSON *obj, const char *name, double lo, double hi, double *out, api_error *err) {
    const cJSON *f = field(obj, name);
    if (!f) return 0;
    double v = cJSON_GetNumberValue(f);
    if (!cJSON_IsNumber(f) || !isfinite(v) || v != floor(v) || v < lo || v > hi)
        return bad(err, name, "'%s' must be an integer from %.0f to %.0f", name, lo, hi);
    *out = v;
    return 0;
}

static int get_bool(const cJSON *obj, const char *name, bool *out, api_error *err) {
    const cJSON *f = field(obj, name);
    if (!f) return 0;
    if (!cJSON_IsBool(f)) return bad(err, name, "'%s' must be true or false", name);
    *out = cJSON_IsTrue(f);
    return 0;
}

static char *dup_str(const char *s, api_error *err) {
    char *d = strdup(s);
    if (!d) api_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    return d;
}

/* ---- messages ---- */

/* A message's content: a string, or an array of {"type":"text","text":...}
 * parts (joined), or null (an assistant message with nothing said). */
static int message_content(const cJSON *c, int i, char **out, api_error *err) {
    char param[64];
    snprintf(param, sizeof param, "messages[%d].content", i);
    if (!c || cJSON_IsNull(c)) return (*out = dup_str("", err)) ? 0 : -1;
    if (cJSON_IsString(c)) return (*out = dup_str(c->valuestring, err)) ? 0 : -1;
    if (!cJSON_IsArray(c)) return bad(err, param, "'%s' must be a string or an array of text parts", param);
    size_t total = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, c) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsObject(part) || !cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0)
            return bad(err, param, "'%s': only parts of type \"text\" are supported", param);
        if (!cJSON_IsString(text)) return bad(err, param, "'%s': a text part needs a string 'text'", param);
        total += strlen(text->valuestring);
    }
    char *s = malloc(total + 1);
    if (!s) return api_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    size_t n = 0;
    cJSON_ArrayForEach(part, c) {
        const char *t = cJSON_GetObjectItemCaseSensitive(part, "text")->valuestring;
        size_t k = strlen(t);
        memcpy(s + n, t, k);
        n += k;
    }
    s[n] = 0;
    *out = s;
    return 0;
}

static int parse_messages(const cJSON *root, api_request *r, api_error *err) {
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!msgs) return bad(err, "messages", "'messages' is required");
    if (!cJSON_IsArray(msgs)) return bad(err, "messages", "'messages' must be an array");
    int n = cJSON_GetArraySize(msgs);
    if (n < 1) return bad(err, "messages", "'messages' must hold at least one message");
    if (n > API_MAX_MESSAGES) return bad(err, "messages", "'messages' holds %d messages, at most %d", n, API_MAX_MESSAGES);
    r->messages = calloc((size_t)n, sizeof *r->messages);
    if (!r->messages) return api_fail(err, 500, "server_error", NULL, NULL, "out of memory");
    static const char *const ROLES[][2] = {
        {"system", "system"}, {"developer", "system"}, {"user", "user"}, {"assistant", "assistant"}};
    const cJSON *m;
    int i = 0;
    cJSON_ArrayForEach(m, msgs) {
        char param[64];
        snprintf(param, sizeof param, "messages[%d].role", i);
        if (!cJSON_IsObject(m)) return bad(err, param, "'messages[%d]' must be an object", i);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role)) return bad(err, param, "'%s' must be a string", param);
        const char *mapped = NULL;
        for (size_t k = 0; k < sizeof ROLES / sizeof ROLES[0]; k++)
            if (strcmp(role->valuestring, ROLES[k][0]) == 0) mapped = ROLES[k][1];
        if (!mapped) return bad(err, param, "'%s' must be system, developer, user or assistant", param);
        r->messages[i].role = mapped;
        if (message_content(cJSON_GetObjectItemCaseSensitive(m, "content"), i, &r->messages[i].content, err))
            return -1;
        r->n_messages = ++i;
    }
    return 0;
}

static int parse_prompt(const cJSON *root, api_request *r, api_error *err) {
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
    if (!p) return bad(err, "prompt", "'prompt' is required");
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && cJSON_IsString(cJSON_GetArrayItem(p, 0)))
        p = cJSON_GetArrayItem(p, 0);
    if (!cJSON_IsString(p)) return bad(err, "prompt", "'prompt' must be a string (or an array of one string)");
    if (!*p->valuestring) return bad(err, "prompt", "'prompt' is empty: there is nothing to continue");
    return (r->prompt = dup_str(p->valuestring, err)) ? 0 : -1;
}

static int parse_stop(const cJSON *root, api_request *r, api_error *err) {
    const cJSON *s = field(root, "stop");
    if (!s) return 0;
    if (cJSON_IsString(s)) {
        if (strlen(s->valuestring) > STOP_MAX_LEN) return bad(err, "stop", "a stop string is at most %d bytes", STOP_MAX_LEN);
        return (r->stops[r->n_stops++] = dup_str(s->valuestring, err)) ? 0 : -1;
    }
    if (!cJSON_IsArray(s)) return bad(err, "stop", "'stop' must be a string or an array of strings");
    if (cJSON_GetArraySize(s) > API_MAX_STOPS) return bad(err, "stop", "'stop' holds at most %d strings", API_MAX_STOPS);
    const cJSON *e;
    cJSON_ArrayForEach(e, s) {
        if (!cJSON_IsString(e)) return bad(err, "stop", "'stop' must be a string or an array of strings");
        if (strlen(e->valuestring) > STOP_MAX_LEN) return bad(err, "stop", "a stop string is at most %d bytes", STOP_MAX_LEN);
        if (!(r->stops[r->n_stops++] = dup_str(e->valuestring, err))) return -1;
    }
    return 0;
}

/* Fields of the API that rackllm does not implement: refused by name. */
static int refuse_unsupported(const cJSON *root, api_error *err) {
    double n = 1;
    if (get_int(root, "n", 1, 1, &n, err)) return bad(err, "n", "'n' must be 1 (one choice per request)");
    static const char *const NAMES[] = {"tools", "functions", "tool_choice", "function_call"};
    for (size_t i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++) {
        const cJSON *f = field(root, NAMES[i]);
        if (f && !(cJSON_IsArray(f) && cJSON_GetArraySize(f) == 0) && !(cJSON_IsString(f) && !strcmp(f->valuestring, "none")))
            return bad(err, NAMES[i], "'%s' is not supported", NAMES[i]);
    }
    const cJSON *echo = field(root, "echo");
    if (echo && !cJSON_IsFalse(echo)) return bad(err, "echo", "'echo' is not supported");
    const cJSON *suffix = field(root, "suffix");
    if (suffix && !(cJSON_IsString(suffix) && !*suffix->valuestring)) return bad(err, "suffix", "'suffix' is not supported");
    const cJSON *bias = field(root, "logit_bias");
    if (bias && !(cJSON_IsObject(bias) && !bias->child)) return bad(err, "logit_bias", "'logit_bias' is not supported");
    const cJSON *best = field(root, "best_of");
    if (best && !(cJSON_IsNumber(best) && best->valuedouble == 1))
        return bad(err, "best_of", "'best_of' must be 1 (one choice per request)");
    static const char *const OTHER[] = {"audio", "prediction", "web_search_options"};
    for (size_t i = 0; i < sizeof OTHER / sizeof OTHER[0]; i++)
        if (field(root, OTHER[i])) return bad(err, OTHER[i], "'%s' is not supported", OTHER[i]);
    const cJSON *mod = field(root, "modalities");
    if (mod && !(cJSON_IsArray(mod) && cJSON_GetArraySize(mod) == 1 && cJSON_IsString(mod->child) &&
                 !strcmp(mod->child->valuestring, "text")))
        return bad(err, "modalities", "only the \"text\" modality is supported");
    const cJSON *fmt = field(root, "response_format");
    if (fmt) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(fmt, "type");
        if (!cJSON_IsObject(fmt) || !cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0)
            return bad(err, "response_format", "only the \"text\" response format is supported");
    }
    return 0;
}

/* Chat: logprobs true/false and top_logprobs 0..20 (which needs logprobs);
 * completions: logprobs N, 0..5 (N alternatives per token). */
static int parse_logprobs(const cJSON *root, api_request *r, api_error *err) {
    double top = 0;
    if (r->kind == API_CHAT) {
        if (get_bool(root, "logprobs", &r->logprobs, err) ||
            get_int(root, "top_logprobs", 0, SAMPLER_MAX_TOP_LOGPROBS, &top, err))
            return -1;
        if (top > 0 && !r->logprobs) return bad(err, "top_logprobs", "'top_logprobs' needs 'logprobs': true");
    } else {
        const cJSON *t = field(root, "top_logprobs");
        if (t && !(cJSON_IsNumber(t) && t->valuedouble == 0))
            return bad(err, "top_logprobs", "'top_logprobs' is a chat field; completions take 'logprobs': N (0 to 5)");
        if (get_int(root, "logprobs", 0, 5, &top, err)) return -1;
        r->logprobs = field(root, "logprobs") != NULL;
    }
    r->top_logprobs = (int)top;
    return 0;
}

static int parse_sampling(const cJSON *root, api_request *r, api_error *err) {
    sampler_params *sp = &r->sp;
    double v;
    if (get_number(root, "temperature", 0, 2, &sp->temperature, err) || get_number(root, "top_p", 0, 1, &sp->top_p, err) ||
        get_number(root, "min_p", 0, 1, &sp->min_p, err) ||
        get_number(root, "presence_penalty", -2, 2, &sp->presence_penalty, err) ||
        get_number(root, "frequency_penalty", -2, 2, &sp->frequency_penalty, err) ||
        get_number(root, "repetition_penalty", 0, 2, &sp->repeat_penalty, err))
        return -1;
    if (!(sp->repeat_penalty > 0))
        return bad(err, "repetition_penalty", "'repetition_penalty' must be above 0 (1: off) and at most 2");
    r->penalties = sp->presence_penalty != 0 || sp->frequency_penalty != 0 || sp->repeat_penalty != 1;
    v = -1;
    if (get_int(root, "repeat_last_n", -1, SAMPLER_MAX_LAST_N, &v, err)) return -1;
    r->repeat_last_n = (int)v;
    v = sp->top_k;
    if (get_int(root, "top_k", 0, 1e9, &v, err)) return -1;
    sp->top_k = (int32_t)v;
    v = 0;
    if (get_int(root, "seed", -9.2e18, 9.2e18, &v, err)) return -1;
    if (field(root, "seed")) {
        r->has_seed = true;
        sp->seed = (uint64_t)(int64_t)v;
    }
    /* max_completion_tokens is the newer name of max_tokens: it wins */
    v = 0;
    if (get_int(root, "max_tokens", 1, 1e9, &v, err)) return -1;
    if (v > 0) r->max_tokens_field = "max_tokens";
    if (get_int(root, "max_completion_tokens", 1, 1e9, &v, err)) return -1;
    if (field(root, "max_completion_tokens")) r->max_tokens_field = "max_completion_tokens";
    r->max_tokens = (int)v;
    return 0;
}

static int parse_stream(const cJSON *root, api_request *r, api_error *err) {
    if (get_bool(root, "stream", &r->stream, err) || get_bool(root, "ignore_eos", &r->ignore_eos, err)) return -1;
    const cJSON *so = field(root, "stream_options");
    if (!so) return 0;
    if (!cJSON_IsObject(so)) return bad(err, "stream_options", "'stream_options' must be an object");
    const cJSON *iu = field(so, "include_usage");
    if (iu && !cJSON_IsBool(iu))
        return bad(err, "stream_options.include_usage", "'stream_options.include_usage' must be true or false");
    r->include_usage = iu && cJSON_IsTrue(iu);
    return 0;
}

/* Whether a JSON text holds U+0000: a NUL byte, or the escape \u0000
 * (a string would end there, silently, once parsed). Backslashes occur
 * only in strings, so pairs are read as escapes wherever they are. */
static bool holds_nul(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (s[i] == 0) return true;
        if (s[i] != '\\' || i + 1 >= len) continue;
        if (s[i + 1] == 'u' && i + 5 < len && !memcmp(s + i + 2, "0000", 4)) return true;
        i++;
    }
    return false;
}

int api_parse_request(api_kind kind, const char *body, size_t len, api_request *out, api_error *err) {
    memset(out, 0, sizeof *out);
    out->kind = kind;
    out->sp = sampler_default_params();
    if (holds_nul(body, len))
        return bad(err, NULL, "the body holds the character U+0000 (\\u0000), which no prompt, message or stop "
                              "string may contain");
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, NULL, false);
    if (!root) return bad(err, NULL, "the body is not valid JSON");
    int rc = -1;
    if (!cJSON_IsObject(root)) {
        bad(err, NULL, "the body must be a JSON object");
        goto done;
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!model) {
        bad(err, "model", "'model' is required");
        goto done;
    }
    if (!cJSON_IsString(model)) {
        bad(err, "model", "'model' must be a string");
        goto done;
    }
    if (!(out->model = dup_str(model->valuestring, err))) goto done;
    if (kind == API_CHAT ? parse_messages(root, out, err) : parse_prompt(root, out, err)) goto done;
    if (refuse_unsupported(root, err) || parse_sampling(root, out, err) || parse_logprobs(root, out, err) ||
        parse_stop(root, out, err) || parse_stream(root, out, err))
        goto done;
    rc = 0;
done:
    cJSON_Delete(root);
    if (rc) api_request_free(out);
    return rc;
}

void api_request_free(api_request *r) {
    free(r->model);
    for (int i = 0; i < r->n_messages; i++) free(r->messages[i].content);
    free(r->messages);
    free(r->prompt);
    for (int i = 0; i < r->n_stops; i++) free(r->stops[i]);
    memset(r, 0, sizeof *r);
}

/* ---- whole responses ---- */

/* cJSON passes bytes through: make strings valid UTF-8 first. */
static cJSON *json_string(const char *s, size_t len) {
    size_t need = api_json_escape(NULL, 0, s, len);
    char *esc = malloc(need + 3);
    if (!esc) return NULL;
    esc[0] = '"';
    api_json_escape(esc + 1, need, s, len);
    esc[need + 1] = '"';
    esc[need + 2] = 0;
    cJSON *item = cJSON_CreateRaw(esc);
    free(esc);
    return item;
}

static char *print(cJSON *root) {
    char *s = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return s;
}

char *api_error_json(const api_error *err) {
    cJSON *root = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(root, "error");
    cJSON_AddItemToObject(e, "message", json_string(err->message, strlen(err->message)));
    cJSON_AddStringToObject(e, "type", err->type ? err->type : "invalid_request_error");
    if (err->param[0]) cJSON_AddItemToObject(e, "param", json_string(err->param, strlen(err->param)));
    else cJSON_AddNullToObject(e, "param");
    if (err->code) cJSON_AddStringToObject(e, "code", err->code);
    else cJSON_AddNullToObject(e, "code");
    return print(root);
}

static void add_usage(cJSON *root, api_usage u) {
    cJSON *usage = cJSON_AddObjectToObject(root, "usage");
    cJSON_AddNumberToObject(usage, "prompt_tokens", u.prompt_tokens);
    cJSON_AddNumberToObject(usage, "completion_tokens", u.completion_tokens);
    cJSON_AddNumberToObject(usage, "total_tokens", u.prompt_tokens + u.completion_tokens);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(usage, "prompt_tokens_details"), "cached_tokens",
                            u.cached_tokens);
}

static void put_logprobs(char *out, size_t cap, size_t *n, api_kind kind, const api_logprobs *lp);

/* The choice's "logprobs" (null without records), as the chunks write it. */
static cJSON *logprobs_item(api_kind kind, const api_logprobs *lp) {
    if (!lp || !lp->n) return cJSON_CreateNull();
    size_t need = 0;
    put_logprobs(NULL, 0, &need, kind, lp);
    char *s = malloc(need + 1);
    if (!s) return NULL;
    size_t n = 0;
    put_logprobs(s, need + 1, &n, kind, lp);
    cJSON *item = cJSON_CreateRaw(s);
    free(s);
    return item;
}

char *api_completion_json(api_kind kind, const char *id, long created, const char *model, const char *text,
                          size_t len, const char *finish_reason, api_usage usage, const api_logprobs *lp) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", id);
    cJSON_AddStringToObject(root, "object", kind == API_CHAT ? "chat.completion" : "text_completion");
    cJSON_AddNumberToObject(root, "created", (double)created);
    cJSON_AddItemToObject(root, "model", json_string(model, strlen(model)));
    cJSON_AddStringToObject(root, "system_fingerprint", "rackllm");
    cJSON *choices = cJSON_AddArrayToObject(root, "choices");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (kind == API_CHAT) {
        cJSON *msg = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");
        cJSON_AddItemToObject(msg, "content", json_string(text, len));
        cJSON_AddNullToObject(msg, "refusal");
    } else {
        cJSON_AddItemToObject(c, "text", json_string(text, len));
    }
    cJSON_AddItemToObject(c, "logprobs", logprobs_item(kind, lp));
    cJSON_AddStringToObject(c, "finish_reason", finish_reason);
    add_usage(root, usage);
    return print(root);
}

static cJSON *model_object(const char *model, long created) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddItemToObject(m, "id", json_string(model, strlen(model)));
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", (double)created);
    cJSON_AddStringToObject(m, "owned_by", "rackllm");
    return m;
}

char *api_models_json(const char *const *names, int n, long created) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(data, model_object(names[i], created));
    return print(root);
}

char *api_model_json(const char *model, long created) { return print(model_object(model, created)); }

/* ---- streaming ---- */

/* Length of the valid UTF-8 character at s (1..4), 0 if it is not one. */
static int utf8_char(const unsigned char *s, size_t len) {
    unsigned c = s[0];
    int n;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) n = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, min = 0x10000;
    else return 0;
    if ((size_t)n > len) return 0;
    unsigned cp = c & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static void put_bytes(char *out, size_t cap, size_t *n, const char *s, size_t k) {
    if (*n + k <= cap) memcpy(out + *n, s, k);
    *n += k;
}

size_t api_json_escape(char *out, size_t cap, const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        unsigned c = u[i];
        const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
        if (esc) {
            put_bytes(out, cap, &n, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            char hex[8];
            snprintf(hex, sizeof hex, "\\u%04x", c);
            put_bytes(out, cap, &n, hex, 6);
            i++;
        } else {
            int k = utf8_char(u + i, len - i);
            if (k == 0) put_bytes(out, cap, &n, "\\ufffd", 6), i++;
            else put_bytes(out, cap, &n, s + i, (size_t)k), i += (size_t)k;
        }
    }
    return n;
}

size_t api_chunk_bound(size_t text_len) { return 6 * text_len + 640; }

/* Appends printf output; on overflow marks *n past cap. */
static void put(char *out, size_t cap, size_t *n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void put(char *out, size_t cap, size_t *n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(*n < cap ? out + *n : NULL, *n < cap ? cap - *n : 0, fmt, ap);
    va_end(ap);
    *n += k > 0 ? (size_t)k : 0;
}

static void put_escaped(char *out, size_t cap, size_t *n, const char *s, size_t len) {
    *n += api_json_escape(*n < cap ? out + *n : NULL, *n < cap ? cap - *n : 0, s, len);
}

/* ---- log-probabilities, written by hand (whole answers and chunks) ---- */

/* JSON has no -infinity: a token the model rules out gets -9999, as
 * OpenAI reports it. */
static void put_logprob(char *out, size_t cap, size_t *n, float v) {
    put(out, cap, n, "%.7g", isfinite(v) ? (double)v : -9999.0);
}

/* A token's text: "token" (a JSON string; bad UTF-8 as U+FFFD) and, for
 * chat, "bytes" (the raw bytes, OpenAI's way to rebuild split characters). */
static void put_token(char *out, size_t cap, size_t *n, const tokenizer *tok, int32_t id, bool bytes) {
    char buf[TOK_MAX_TOKEN_LEN];
    int k = tok_token_bytes(tok, id, false, buf, (int)sizeof buf);
    k = RL_MIN(k, (int)sizeof buf);
    put(out, cap, n, "\"");
    put_escaped(out, cap, n, buf, (size_t)k);
    put(out, cap, n, "\"");
    if (!bytes) return;
    put(out, cap, n, ",\"bytes\":[");
    for (int i = 0; i < k; i++) put(out, cap, n, "%s%u", i ? "," : "", (unsigned)(unsigned char)buf[i]);
    put(out, cap, n, "]");
}

/* Chat: {"content":[{token, logprob, bytes, top_logprobs:[...]}], "refusal":null}. */
static void put_chat_logprobs(char *out, size_t cap, size_t *n, const api_logprobs *lp) {
    put(out, cap, n, "{\"content\":[");
    for (int i = 0; i < lp->n; i++) {
        const sampler_logprob *e = &lp->lp[i];
        put(out, cap, n, "%s{\"token\":", i ? "," : "");
        put_token(out, cap, n, lp->tok, e->token, true);
        put(out, cap, n, ",\"logprob\":");
        put_logprob(out, cap, n, e->logprob);
        put(out, cap, n, ",\"top_logprobs\":[");
        for (int j = 0; j < e->n_top; j++) {
            put(out, cap, n, "%s{\"token\":", j ? "," : "");
            put_token(out, cap, n, lp->tok, e->top_ids[j], true);
            put(out, cap, n, ",\"logprob\":");
            put_logprob(out, cap, n, e->top_logprobs[j]);
            put(out, cap, n, "}");
        }
        put(out, cap, n, "]}");
    }
    put(out, cap, n, "],\"refusal\":null}");
}

/* Completions: {tokens, token_logprobs, top_logprobs: [{token: logprob}],
 * text_offset}; two alternatives that read the same keep the likelier. */
static void put_text_logprobs(char *out, size_t cap, size_t *n, const api_logprobs *lp) {
    put(out, cap, n, "{\"tokens\":[");
    for (int i = 0; i < lp->n; i++) {
        put(out, cap, n, "%s", i ? "," : "");
        put_token(out, cap, n, lp->tok, lp->lp[i].token, false);
    }
    put(out, cap, n, "],\"token_logprobs\":[");
    for (int i = 0; i < lp->n; i++) {
        put(out, cap, n, "%s", i ? "," : "");
        put_logprob(out, cap, n, lp->lp[i].logprob);
    }
    put(out, cap, n, "],\"top_logprobs\":[");
    char a[TOK_MAX_TOKEN_LEN], b[TOK_MAX_TOKEN_LEN];
    for (int i = 0; i < lp->n; i++) {
        const sampler_logprob *e = &lp->lp[i];
        put(out, cap, n, "%s{", i ? "," : "");
        for (int j = 0, w = 0; j < e->n_top; j++) {
            int ka = tok_token_bytes(lp->tok, e->top_ids[j], false, a, (int)sizeof a);
            bool seen = false;
            for (int q = 0; q < j && !seen; q++)
                seen = tok_token_bytes(lp->tok, e->top_ids[q], false, b, (int)sizeof b) == ka &&
                       !memcmp(a, b, (size_t)RL_MIN(ka, (int)sizeof a));
            if (seen) continue;
            put(out, cap, n, "%s", w++ ? "," : "");
            put_token(out, cap, n, lp->tok, e->top_ids[j], false);
            put(out, cap, n, ":");
            put_logprob(out, cap, n, e->top_logprobs[j]);
        }
        put(out, cap, n, "}");
    }
    put(out, cap, n, "],\"text_offset\":[");
    size_t off = lp->text_offset;
    for (int i = 0; i < lp->n; i++) {
        put(out, cap, n, "%s%zu", i ? "," : "", off);
        off += (size_t)RL_MIN(tok_token_bytes(lp->tok, lp->lp[i].token, false, a, 0), TOK_MAX_TOKEN_LEN);
    }
    put(out, cap, n, "]}");
}

static void put_logprobs(char *out, size_t cap, size_t *n, api_kind kind, const api_logprobs *lp) {
    if (!lp || !lp->n) put(out, cap, n, "null");
    else if (kind == API_CHAT) put_chat_logprobs(out, cap, n, lp);
    else put_text_logprobs(out, cap, n, lp);
}

size_t api_logprobs_bytes(const api_logprobs *lp) {
    size_t total = 0;
    for (int i = 0; lp && i < lp->n; i++)
        total += (size_t)RL_MIN(tok_token_bytes(lp->tok, lp->lp[i].token, false, NULL, 0), TOK_MAX_TOKEN_LEN);
    return total;
}

static void chunk_head(const api_stream *st, char *out, size_t cap, size_t *n) {
    put(out, cap, n, "data: {\"id\":\"%s\",\"object\":\"%s\",\"created\":%ld,\"model\":\"", st->id,
        st->kind == API_CHAT ? "chat.completion.chunk" : "text_completion", st->created);
    put_escaped(out, cap, n, st->model, strlen(st->model));
    put(out, cap, n, "\",\"system_fingerprint\":\"rackllm\",\"choices\":[");
}

size_t api_chunk(const api_stream *st, char *out, size_t cap, const char *text, size_t len, bool role,
                 const char *finish_reason) {
    size_t n = api_chunk_lp(st, out, cap, text, len, role, finish_reason, NULL);
    return n < cap ? n : 0;
}

size_t api_chunk_lp(const api_stream *st, char *out, size_t cap, const char *text, size_t len, bool role,
                    const char *finish_reason, const api_logprobs *lp) {
    size_t n = 0;
    chunk_head(st, out, cap, &n);
    if (st->kind == API_CHAT) {
        put(out, cap, &n, "{\"index\":0,\"delta\":{");
        if (role) put(out, cap, &n, "\"role\":\"assistant\"%s", len || !finish_reason ? "," : "");
        if (len || !finish_reason) {
            put(out, cap, &n, "\"content\":\"");
            put_escaped(out, cap, &n, text, len);
            put(out, cap, &n, "\"");
        }
        put(out, cap, &n, "},");
    } else {
        put(out, cap, &n, "{\"text\":\"");
        put_escaped(out, cap, &n, text, len);
        put(out, cap, &n, "\",\"index\":0,");
    }
    put(out, cap, &n, "\"logprobs\":");
    put_logprobs(out, cap, &n, st->kind, lp);
    put(out, cap, &n, ",\"finish_reason\":");
    if (finish_reason) put(out, cap, &n, "\"%s\"}]", finish_reason);
    else put(out, cap, &n, "null}]");
    put(out, cap, &n, "%s}\n\n", st->include_usage ? ",\"usage\":null" : "");
    return n;
}

size_t api_usage_chunk(const api_stream *st, char *out, size_t cap, api_usage u) {
    size_t n = 0;
    chunk_head(st, out, cap, &n);
    put(out, cap, &n,
        "],\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,\"total_tokens\":%d,"
        "\"prompt_tokens_details\":{\"cached_tokens\":%d}}}\n\n",
        u.prompt_tokens, u.completion_tokens, u.prompt_tokens + u.completion_tokens, u.cached_tokens);
    return n < cap ? n : 0;
}

size_t api_error_chunk(char *out, size_t cap, const char *type, const char *message) {
    size_t n = 0;
    put(out, cap, &n, "data: {\"error\":{\"message\":\"");
    put_escaped(out, cap, &n, message, strlen(message));
    put(out, cap, &n, "\",\"type\":\"%s\",\"param\":null,\"code\":null}}\n\n", type);
    return n < cap ? n : 0;
}
