/*
 * chat_jinja.c — a model's own chat template (tokenizer.chat_template)
 * rendered by the Jinja interpreter (jinja.h): the conversation becomes
 * the JSON variables transformers passes to the template, the template is
 * checked once at load on a probe conversation, and a leading BOS text is
 * dropped when the tokenizer adds BOS itself (see chat.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "jinja.h"

struct chat_jinja {
    jinja_template *t;
};

/* A growing string for the JSON variables; a failed allocation sticks. */
typedef struct jsbuf {
    char *p;
    size_t n, cap;
    bool failed;
} jsbuf;

static void js_add(jsbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->failed = true; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void js_str(jsbuf *b, const char *s) {
    if (!s) { js_add(b, "null", 4); return; }
    js_add(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        char esc[8];
        if (c == '"' || c == '\\') { esc[0] = '\\'; esc[1] = (char)c; js_add(b, esc, 2); }
        else if (c < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", c); js_add(b, esc, 6); }
        else js_add(b, p, 1);
    }
    js_add(b, "\"", 1);
}

static char *variables(const chat_msg *msgs, size_t n, bool agp, const char *bos, const char *eos, size_t *len) {
    jsbuf b = {0};
    js_add(&b, "{\"messages\": [", 14);
    for (size_t i = 0; i < n; i++) {
        if (i) js_add(&b, ", ", 2);
        js_add(&b, "{\"role\": ", 9);
        js_str(&b, msgs[i].role ? msgs[i].role : "");
        js_add(&b, ", \"content\": ", 13);
        js_str(&b, msgs[i].content ? msgs[i].content : "");
        js_add(&b, "}", 1);
    }
    js_add(&b, "], \"add_generation_prompt\": ", 28);
    js_add(&b, agp ? "true" : "false", agp ? 4 : 5);
    js_add(&b, ", \"bos_token\": ", 15);
    js_str(&b, bos ? bos : "");
    js_add(&b, ", \"eos_token\": ", 15);
    js_str(&b, eos ? eos : "");
    js_add(&b, ", \"tools\": null, \"documents\": null}", 35);
    if (b.failed) { free(b.p); return NULL; }
    *len = b.n;
    return b.p;
}

static char *render(const chat_jinja *t, const chat_msg *msgs, size_t n, bool agp, const char *bos, const char *eos,
                    jinja_status *st, rl_err *err) {
    size_t len = 0;
    char *vars = variables(msgs, n, agp, bos, eos, &len);
    if (!vars) { *st = JINJA_LIMIT; rl_fail(err, RL_ERR_INTERNAL, "out of memory"); return NULL; }
    char *out = jinja_render(t->t, vars, len, NULL, NULL, st, err);
    free(vars);
    return out;
}

chat_jinja *chat_jinja_load(const char *source, rl_err *err) {
    if (!source || !*source) { rl_fail(err, RL_ERR_INPUT, "the chat template is empty"); return NULL; }
    chat_jinja *t = calloc(1, sizeof *t);
    if (!t) { rl_fail(err, RL_ERR_INTERNAL, "out of memory"); return NULL; }
    t->t = jinja_parse(source, strlen(source), NULL, err);
    if (!t->t) goto fail;
    static const chat_msg probe[] = {{"system", "You are a helpful assistant."}, {"user", "Hello"},
                                     {"assistant", "Hi there."}, {"user", "How are you?"}};
    jinja_status st = JINJA_OK;
    for (size_t skip = 0; skip < 4; skip += skip == 0 ? 1 : 2) { /* all, no system, the last user message */
        char *out = render(t, probe + skip, 4 - skip, true, "<s>", "</s>", &st, err);
        free(out);
        if (out) return t;
        if (st != JINJA_RAISED) break;
    }
fail:
    rl_fail_prefix(err, "the model's chat template cannot be used (--chat-template NAME picks a built-in): ");
    chat_jinja_free(t);
    return NULL;
}

void chat_jinja_free(chat_jinja *t) {
    if (!t) return;
    jinja_free(t->t);
    free(t);
}

char *chat_jinja_render(const chat_jinja *t, const chat_msg *msgs, size_t n, bool add_generation_prompt,
                        const char *bos, const char *eos, bool strip_bos, rl_err *err) {
    jinja_status st = JINJA_OK;
    char *out = render(t, msgs, n, add_generation_prompt, bos, eos, &st, err);
    if (!out) return NULL;
    size_t bl = bos ? strlen(bos) : 0;
    if (strip_bos && bl && strncmp(out, bos, bl) == 0) memmove(out, out + bl, strlen(out + bl) + 1);
    return out;
}
