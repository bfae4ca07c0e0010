/*
 * chat.c — recognising a chat template family and rendering a conversation
 * in it (see chat.h). The formats follow llama.cpp's llm_chat_apply_template
 * byte for byte; the comments say where a family's quirks come from.
 */
#include "chat.h"

#include <stdlib.h>
#include <string.h>

static const char *const NAMES[CHAT_TEMPLATE_COUNT] = {
    [CHAT_LLAMA3] = "llama3",
    [CHAT_LLAMA2] = "llama2",
    [CHAT_LLAMA2_SYS] = "llama2-sys",
    [CHAT_LLAMA2_SYS_BOS] = "llama2-sys-bos",
    [CHAT_LLAMA2_SYS_STRIP] = "llama2-sys-strip",
    [CHAT_ZEPHYR] = "zephyr",
    [CHAT_CHATML] = "chatml",
};

const char *chat_name(chat_template t) {
    return (unsigned)t < CHAT_TEMPLATE_COUNT ? NAMES[t] : "unknown";
}

int chat_from_name(const char *name) {
    if (!name) return -1;
    for (int t = 0; t < CHAT_TEMPLATE_COUNT; t++)
        if (strcmp(name, NAMES[t]) == 0) return t;
    return -1;
}

/* ---- detection ---- */

static bool has(const char *src, const char *marker) { return strstr(src, marker) != NULL; }

/* The [INST] family: Mistral's official templates are told apart by
 * llama.cpp first (they render differently and are not ours); the rest
 * are Llama 2 variants, by what the template does with the system message,
 * BOS and whitespace. */
static int recognise_inst(const char *src) {
    if (has(src, "[SYSTEM_PROMPT]") || has(src, "' [INST] ' + system_message") || has(src, "[AVAILABLE_TOOLS]"))
        return -1; /* Mistral v7, v1, v3 */
    if (has(src, "content.strip()")) return CHAT_LLAMA2_SYS_STRIP;
    if (has(src, "bos_token + '[INST]")) return CHAT_LLAMA2_SYS_BOS;
    if (has(src, "<<SYS>>")) return CHAT_LLAMA2_SYS;
    return CHAT_LLAMA2;
}

/* Checks run in llama.cpp's order, so a template carrying markers of two
 * families lands where llama.cpp puts it; families that are not ours give
 * -1. Only the foreign families whose markers overlap ours are spelled
 * out: the others cannot reach a later rule of ours. */
int chat_recognise(const char *src) {
    if (!src || !*src) return -1;
    int by_name = chat_from_name(src);
    if (by_name >= 0) return by_name;

    if (has(src, "<|im_start|>")) {
        if (has(src, "<|im_sep|>") || has(src, "<end_of_utterance>")) return -1; /* Phi-4, SmolVLM */
        return CHAT_CHATML;
    }
    if (strncmp(src, "mistral", 7) == 0 || has(src, "[INST]")) return recognise_inst(src);
    if (has(src, "<|assistant|>") && has(src, "<|end|>")) return -1; /* Phi-3 */
    if (has(src, "[gMASK]<sop>")) return -1;                          /* ChatGLM 4 */
    if (has(src, "<|assistant|>") && has(src, "<|user|>")) {
        if (has(src, "<|tool_declare|>")) return -1; /* EXAONE MoE */
        if (has(src, "</s>")) return -1;             /* Falcon 3 */
        /* llama.cpp: GLMEdge. A template that ends each message with
         * eos_token is TinyLlama's / zephyr-7b-beta's: Zephyr (chat.h). */
        return has(src, "eos_token") ? CHAT_ZEPHYR : -1;
    }
    if (has(src, "<|user|>") && has(src, "<|endoftext|>")) return CHAT_ZEPHYR;
    if (has(src, "<|start_header_id|>") && has(src, "<|end_header_id|>")) return CHAT_LLAMA3;
    return -1;
}

chat_template chat_detect(const char *src) {
    int t = chat_recognise(src);
    return t >= 0 ? (chat_template)t : CHAT_DEFAULT;
}

/* ---- rendering ---- */

/* A growing string; a failed allocation sticks, so callers check once. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool failed;
    tok_range *content; /* where each message's content landed (NULL: not kept) */
    size_t n_content, cap_content;
    bool keep_content;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) {
            if (cap > SIZE_MAX / 2) {
                b->failed = true;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* A message's content, its range kept when asked (empty ones are not). */
static void sb_content_n(sbuf *b, const char *s, size_t n) {
    size_t at = b->len;
    sb_add(b, s, n);
    if (!b->keep_content || b->failed || n == 0) return;
    if (b->n_content == b->cap_content) {
        size_t cap = b->cap_content ? 2 * b->cap_content : 16;
        tok_range *r = realloc(b->content, cap * sizeof *r);
        if (!r) {
            b->failed = true;
            return;
        }
        b->content = r;
        b->cap_content = cap;
    }
    b->content[b->n_content++] = (tok_range){at, n};
}

static void sb_content(sbuf *b, const char *s) { sb_content_n(b, s, strlen(s)); }

/* Content with leading and trailing whitespace (C isspace) left out, as
 * llama.cpp's trim() does. */
static void sb_trimmed(sbuf *b, const char *s) {
    const char *end = s + strlen(s);
    while (s < end && (*s == ' ' || (*s >= '\t' && *s <= '\r'))) s++;
    while (end > s && (end[-1] == ' ' || (end[-1] >= '\t' && end[-1] <= '\r'))) end--;
    sb_content_n(b, s, (size_t)(end - s));
}

enum role { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT };

static int role_of(const char *role) {
    if (!role) return -1;
    if (strcmp(role, "system") == 0) return ROLE_SYSTEM;
    if (strcmp(role, "user") == 0) return ROLE_USER;
    if (strcmp(role, "assistant") == 0) return ROLE_ASSISTANT;
    return -1;
}

static const char *content_of(const chat_msg *m) { return m->content ? m->content : ""; }

static void render_chatml(sbuf *b, const chat_msg *msgs, size_t n, bool add_assistant) {
    for (size_t i = 0; i < n; i++) {
        sb_str(b, "<|im_start|>");
        sb_str(b, msgs[i].role);
        sb_str(b, "\n");
        sb_content(b, content_of(&msgs[i]));
        sb_str(b, "<|im_end|>\n");
    }
    if (add_assistant) sb_str(b, "<|im_start|>assistant\n");
}

static void render_llama3(sbuf *b, const chat_msg *msgs, size_t n, bool add_assistant) {
    for (size_t i = 0; i < n; i++) {
        sb_str(b, "<|start_header_id|>");
        sb_str(b, msgs[i].role);
        sb_str(b, "<|end_header_id|>\n\n");
        sb_trimmed(b, content_of(&msgs[i]));
        sb_str(b, "<|eot_id|>");
    }
    if (add_assistant) sb_str(b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void render_zephyr(sbuf *b, const chat_msg *msgs, size_t n, bool add_assistant, const char *eos) {
    for (size_t i = 0; i < n; i++) {
        sb_str(b, "<|");
        sb_str(b, msgs[i].role);
        sb_str(b, "|>\n");
        sb_content(b, content_of(&msgs[i]));
        sb_str(b, eos ? eos : "<|endoftext|>");
        sb_str(b, "\n");
    }
    if (add_assistant) sb_str(b, "<|assistant|>\n");
}

/* Llama 2: the conversation opens inside a user turn ("[INST] "; the BOS
 * before it is the tokenizer's). A system message goes into that turn, in
 * <<SYS>> tags where the variant has them; an answer closes the turn with
 * EOS, and the next message opens a new one. */
static void render_llama2(sbuf *b, chat_template t, const chat_msg *msgs, size_t n, const char *bos,
                          const char *eos) {
    bool sys_tags = t != CHAT_LLAMA2;
    bool bos_inside = t == CHAT_LLAMA2_SYS_BOS;
    bool strip = t == CHAT_LLAMA2_SYS_STRIP;
    bool in_turn = true;
    sb_str(b, "[INST] ");
    for (size_t i = 0; i < n; i++) {
        if (!in_turn) {
            in_turn = true;
            if (bos_inside) sb_str(b, bos ? bos : "<s>");
            sb_str(b, "[INST] ");
        }
        const char *content = content_of(&msgs[i]);
        int role = role_of(msgs[i].role);
        if (role == ROLE_SYSTEM && sys_tags) sb_str(b, "<<SYS>>\n");
        if (strip)
            sb_trimmed(b, content);
        else
            sb_content(b, content);
        if (role == ROLE_SYSTEM) {
            sb_str(b, sys_tags ? "\n<</SYS>>\n\n" : "\n");
        } else if (role == ROLE_USER) {
            sb_str(b, " [/INST]");
        } else {
            sb_str(b, eos ? eos : "</s>");
            in_turn = false;
        }
    }
}

char *chat_render(chat_template t, const chat_msg *msgs, size_t n, bool add_assistant, const char *bos,
                  const char *eos, rl_err *err) {
    return chat_render_marked(t, msgs, n, add_assistant, bos, eos, NULL, NULL, err);
}

char *chat_render_marked(chat_template t, const chat_msg *msgs, size_t n, bool add_assistant, const char *bos,
                         const char *eos, tok_range **content, size_t *n_content, rl_err *err) {
    if ((unsigned)t >= CHAT_TEMPLATE_COUNT) {
        rl_fail(err, RL_ERR_INPUT, "chat template %d does not exist", (int)t);
        return NULL;
    }
    if (n > 0 && !msgs) {
        rl_fail(err, RL_ERR_INPUT, "chat: %zu messages but no array", n);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (role_of(msgs[i].role) < 0) {
            rl_fail(err, RL_ERR_INPUT, "chat message %zu: unknown role \"%.40s\" (expected system, user or assistant)",
                    i, msgs[i].role ? msgs[i].role : "(none)");
            return NULL;
        }
    }

    sbuf b = {.keep_content = content != NULL};
    sb_add(&b, "", 0); /* an empty conversation still gives a string */
    switch (t) {
    case CHAT_LLAMA3: render_llama3(&b, msgs, n, add_assistant); break;
    case CHAT_LLAMA2:
    case CHAT_LLAMA2_SYS:
    case CHAT_LLAMA2_SYS_BOS:
    case CHAT_LLAMA2_SYS_STRIP: render_llama2(&b, t, msgs, n, bos, eos); break;
    case CHAT_ZEPHYR: render_zephyr(&b, msgs, n, add_assistant, eos); break;
    case CHAT_CHATML:
    default: render_chatml(&b, msgs, n, add_assistant); break;
    }
    if (b.failed) {
        free(b.p);
        free(b.content);
        rl_fail(err, RL_ERR_INTERNAL, "chat: out of memory rendering %zu messages", n);
        return NULL;
    }
    if (content) {
        *content = b.content;
        *n_content = b.n_content;
    }
    return b.p;
}

const char *const *chat_stop_strings(chat_template t) {
    static const char *const llama3[] = {"<|eot_id|>", "<|start_header_id|>", NULL};
    static const char *const llama2[] = {"</s>", "[INST]", NULL};
    static const char *const zephyr[] = {"</s>", "<|endoftext|>", "<|user|>", NULL};
    static const char *const chatml[] = {"<|im_end|>", "<|im_start|>", NULL};
    static const char *const none[] = {NULL};
    switch (t) {
    case CHAT_LLAMA3: return llama3;
    case CHAT_LLAMA2:
    case CHAT_LLAMA2_SYS:
    case CHAT_LLAMA2_SYS_BOS:
    case CHAT_LLAMA2_SYS_STRIP: return llama2;
    case CHAT_ZEPHYR: return zephyr;
    case CHAT_CHATML: return chatml;
    default: return none;
    }
}
