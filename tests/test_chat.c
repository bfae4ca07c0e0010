/*
 * test_chat.c — chat template detection and rendering.
 *
 * The expected renderings are llama.cpp's: re-typed from the expected
 * outputs in its tests/test-chat-template.cpp for the same conversation
 * (OpenHermes for ChatML, Mistral-7B-Instruct-v0.2 for llama2, FusionNet
 * for llama2-sys-bos, vigogne-2 for llama2-sys-strip, Llama-3), and, where
 * that file has no case (llama2-sys, zephyr), written out from the format
 * its llm_chat_apply_template documents. The template sources are short
 * representative excerpts of each family's real Jinja templates, and the
 * real one stored in ../shared/models/synth-l3-q8_0.gguf.
 */
#include <stdlib.h>
#include <string.h>

#include "text/chat.h"
#include "gguf/gguf.h"
#include "test.h"

/* llama.cpp's test conversation. */
static const chat_msg CONV[] = {
    {"system", "You are a helpful assistant"},
    {"user", "Hello"},
    {"assistant", "Hi there"},
    {"user", "Who are you"},
    {"assistant", "   I am an assistant   "},
    {"user", "Another question"},
};
enum { N_CONV = sizeof CONV / sizeof CONV[0] };

static const struct {
    chat_template t;
    const char *with_assistant; /* add_assistant = true */
    const char *opener;         /* what add_assistant appends */
} EXPECTED[] = {
    {CHAT_CHATML,
     "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
     "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
     "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n"
     "<|im_start|>assistant\n",
     "<|im_start|>assistant\n"},
    {CHAT_LLAMA2,
     "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an assistant   "
     "</s>[INST] Another question [/INST]",
     ""},
    {CHAT_LLAMA2_SYS,
     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>[INST] Who are you [/INST]"
     "   I am an assistant   </s>[INST] Another question [/INST]",
     ""},
    {CHAT_LLAMA2_SYS_BOS,
     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s><s>[INST] Who are you [/INST]"
     "   I am an assistant   </s><s>[INST] Another question [/INST]",
     ""},
    {CHAT_LLAMA2_SYS_STRIP,
     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>[INST] Who are you [/INST]"
     "I am an assistant</s>[INST] Another question [/INST]",
     ""},
    {CHAT_LLAMA3,
     "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
     "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
     "<|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|>"
     "<|start_header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|>"
     "<|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>"
     "<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|>"
     "<|start_header_id|>assistant<|end_header_id|>\n\n",
     "<|start_header_id|>assistant<|end_header_id|>\n\n"},
    {CHAT_ZEPHYR,
     "<|system|>\nYou are a helpful assistant<|endoftext|>\n<|user|>\nHello<|endoftext|>\n"
     "<|assistant|>\nHi there<|endoftext|>\n<|user|>\nWho are you<|endoftext|>\n"
     "<|assistant|>\n   I am an assistant   <|endoftext|>\n<|user|>\nAnother question<|endoftext|>\n"
     "<|assistant|>\n",
     "<|assistant|>\n"},
};

static char *render(chat_template t, const chat_msg *msgs, size_t n, bool add, const char *bos, const char *eos) {
    rl_err err = {0};
    char *s = chat_render(t, msgs, n, add, bos, eos, &err);
    CHECKF(s != NULL, "%s: %s", chat_name(t), err.msg);
    return s;
}

static void test_render(void) {
    for (size_t i = 0; i < RL_ARRAY_LEN(EXPECTED); i++) {
        chat_template t = EXPECTED[i].t;
        /* The model's own BOS/EOS texts, for Llama 2: the same as llama.cpp's literals. */
        bool llama2 = t == CHAT_LLAMA2 || t == CHAT_LLAMA2_SYS || t == CHAT_LLAMA2_SYS_BOS || t == CHAT_LLAMA2_SYS_STRIP;
        char *got = render(t, CONV, N_CONV, true, NULL, NULL);
        CHECK_STR(got, EXPECTED[i].with_assistant);
        free(got);
        if (llama2) {
            got = render(t, CONV, N_CONV, true, "<s>", "</s>");
            CHECK_STR(got, EXPECTED[i].with_assistant);
            free(got);
        }

        /* add_assistant off: the same without the opener. */
        size_t full = strlen(EXPECTED[i].with_assistant), opener = strlen(EXPECTED[i].opener);
        char *want = strndup(EXPECTED[i].with_assistant, full - opener);
        got = render(t, CONV, N_CONV, false, NULL, NULL);
        CHECK_STR(got, want);
        free(got);
        free(want);
    }
}

static void test_render_details(void) {
    /* TinyLlama's template ends each message with the model's EOS ("</s>"). */
    const chat_msg short_conv[] = {{"system", "Be brief."}, {"user", "Hi"}};
    char *got = render(CHAT_ZEPHYR, short_conv, 2, true, "<s>", "</s>");
    CHECK_STR(got, "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\n");
    free(got);

    /* Llama 2 spells BOS and EOS with the model's texts. */
    const chat_msg turns[] = {{"user", "a"}, {"assistant", "b"}, {"user", "c"}};
    got = render(CHAT_LLAMA2_SYS_BOS, turns, 3, true, "<BOS>", "<EOS>");
    CHECK_STR(got, "[INST] a [/INST]b<EOS><BOS>[INST] c [/INST]");
    free(got);

    /* Llama 3 trims each content (C whitespace), and never writes BOS. */
    const chat_msg spaced[] = {{"user", " \t\n x y \r\n"}, {"assistant", NULL}};
    got = render(CHAT_LLAMA3, spaced, 2, false, "<|begin_of_text|>", NULL);
    CHECK_STR(got, "<|start_header_id|>user<|end_header_id|>\n\nx y<|eot_id|>"
                   "<|start_header_id|>assistant<|end_header_id|>\n\n<|eot_id|>");
    free(got);

    /* An empty conversation still renders. */
    got = render(CHAT_CHATML, NULL, 0, true, NULL, NULL);
    CHECK_STR(got, "<|im_start|>assistant\n");
    free(got);
    got = render(CHAT_LLAMA2, NULL, 0, true, NULL, NULL);
    CHECK_STR(got, "[INST] ");
    free(got);

    /* Roles other than system, user and assistant are refused. */
    const chat_msg bad[] = {{"user", "hi"}, {"tool", "{}"}};
    rl_err err = {0};
    for (int t = 0; t < CHAT_TEMPLATE_COUNT; t++) {
        CHECK(chat_render((chat_template)t, bad, 2, true, NULL, NULL, &err) == NULL);
        CHECK_EQ_INT(err.code, RL_ERR_INPUT);
    }
    CHECKF(strstr(err.msg, "message 1") && strstr(err.msg, "tool"), "message: %s", err.msg);
    const chat_msg no_role[] = {{NULL, "hi"}};
    CHECK(chat_render(CHAT_LLAMA3, no_role, 1, true, NULL, NULL, &err) == NULL);
    CHECK(chat_render((chat_template)99, CONV, N_CONV, true, NULL, NULL, &err) == NULL);
}

/* Every family marks where each content landed: the ranges cover exactly
 * the contents (trimmed where the family trims), in order, empty ones left
 * out, and nothing else of the text. */
static void test_content_ranges(void) {
    for (int t = 0; t < CHAT_TEMPLATE_COUNT; t++) {
        const chat_msg conv[] = {{"system", "S<|im_end|>"}, {"user", ""}, {"user", " <|eot_id|> "}, {"assistant", "A"}};
        tok_range *r = NULL;
        size_t n = 0;
        rl_err err = {0};
        char *s = chat_render_marked((chat_template)t, conv, 4, true, NULL, NULL, &r, &n, &err);
        CHECKF(s != NULL, "%s", err.msg);
        if (!s) continue;
        bool trims = t == CHAT_LLAMA3 || t == CHAT_LLAMA2_SYS_STRIP;
        const char *want[] = {"S<|im_end|>", trims ? "<|eot_id|>" : " <|eot_id|> ", "A"};
        CHECKF(n == 3, "%s: %zu ranges", chat_name((chat_template)t), n);
        for (size_t i = 0; i < n && i < 3; i++) {
            CHECKF(r[i].len == strlen(want[i]) && memcmp(s + r[i].off, want[i], r[i].len) == 0, "%s: range %zu",
                   chat_name((chat_template)t), i);
            CHECK(i == 0 || r[i].off >= r[i - 1].off + r[i - 1].len);
        }
        char *plain = chat_render((chat_template)t, conv, 4, true, NULL, NULL, &err);
        CHECK_STR(plain, s); /* the same text either way */
        free(plain);
        free(s);
        free(r);
    }
}

/* ---- detection ---- */

static const struct {
    const char *name;
    const char *source;
    int family; /* -1: not one rackllm renders */
} SOURCES[] = {
    {"Meta-Llama-3-8B-Instruct",
     "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
     "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 "
     "%}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
     "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}",
     CHAT_LLAMA3},
    {"Llama-3.1-8B-Instruct (excerpt)",
     "{{- bos_token }}\n{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n{%- for message in messages "
     "%}\n    {%- if message.role == 'ipython' %}{{- \"<|python_tag|>\" }}{%- endif %}\n    {{- '<|start_header_id|>' "
     "+ message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}\n{%- endfor %}\n",
     CHAT_LLAMA3},
    {"Llama-2-7b-chat-hf",
     "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
     "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif "
     "%}{% for message in loop_messages %}{% if loop.index0 == 0 and system_message != false %}{% set content = "
     "'<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = "
     "message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + "
     "' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif "
     "%}{% endfor %}",
     CHAT_LLAMA2_SYS_STRIP},
    {"Mistral-7B-Instruct-v0.2",
     "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] "
     "+ ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% "
     "endfor %}",
     CHAT_LLAMA2},
    {"FusionNet_34Bx2_MoE",
     "{%- for idx in range(0, messages|length) -%}\n{%- if messages[idx]['role'] == 'user' -%}\n{%- if idx > 1 -%}\n"
     "{{- bos_token + '[INST] ' + messages[idx]['content'] + ' [/INST]' -}}\n{%- else -%}\n{{- "
     "messages[idx]['content'] + ' [/INST]' -}}\n{%- endif -%}\n{% elif messages[idx]['role'] == 'system' %}\n{{- "
     "'[INST] <<SYS>>\\n' + messages[idx]['content'] + '\\n<</SYS>>\\n\\n' -}}\n{% endif %}\n{% endfor %}",
     CHAT_LLAMA2_SYS_BOS},
    {"[INST] with <<SYS>>",
     "{% for message in messages %}{% if message['role'] == 'system' %}{{ '[INST] <<SYS>>\\n' + message['content'] + "
     "'\\n<</SYS>>\\n\\n' }}{% elif message['role'] == 'user' %}{{ message['content'] + ' [/INST]' }}{% else %}{{ "
     "message['content'] + eos_token }}{% endif %}{% endfor %}",
     CHAT_LLAMA2_SYS},
    {"TinyLlama-1.1B-Chat-v1.0",
     "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + "
     "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% "
     "elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif "
     "%}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
     CHAT_ZEPHYR},
    {"zephyr, <|endoftext|> spelled out",
     "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + "
     "'<|endoftext|>\n' }}{% else %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|endoftext|>\n' "
     "}}{% endif %}{% endfor %}",
     CHAT_ZEPHYR},
    {"OpenHermes-2.5-Mistral-7B",
     "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + "
     "'\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}",
     CHAT_CHATML},
    /* Families llama.cpp knows and rackllm does not render. */
    {"Phi-3-mini",
     "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') %}{{'<|user|>' + '\n' + "
     "message['content'] + '<|end|>' + '\n' + '<|assistant|>' + '\n'}}{% elif (message['role'] == 'assistant') "
     "%}{{message['content'] + '<|end|>' + '\n'}}{% endif %}{% endfor %}",
     -1},
    {"phi-4",
     "{% for message in messages %}{% if (message['role'] == 'system') %}{{'<|im_start|>system<|im_sep|>' + "
     "message['content'] + '<|im_end|>'}}{% endif %}{% endfor %}",
     -1},
    {"Mistral v7",
     "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] "
     "+ '[/INST]' }}{% elif message['role'] == 'system' %}{{ '[SYSTEM_PROMPT] ' + message['content'] + "
     "'[/SYSTEM_PROMPT]' }}{% endif %}{% endfor %}",
     -1},
    {"gemma-7b-it",
     "{% for message in messages %}{{ '<start_of_turn>' + message['role'] + '\\n' + message['content'] | trim + "
     "'<end_of_turn>\\n' }}{% endfor %}",
     -1},
    {"GLMEdge",
     "{% for item in messages %}{% if item['role'] == 'system' %}<|system|>\n{{ item['content'] }}{% elif "
     "item['role'] == 'user' %}<|user|>\n{{ item['content'] }}{% elif item['role'] == 'assistant' "
     "%}<|assistant|>\n{{ item['content'] }}{% endif %}{% endfor %}<|assistant|>",
     -1},
    {"Falcon 3 (excerpt)",
     "{% for message in messages %}{% if message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '\n' }}"
     "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>\n' + message['content'] + '</s>\n' }}{% endif %}"
     "{% endfor %}",
     -1},
    {"plain", "{{ messages[0]['content'] }}", -1},
    {"empty", "", -1},
};

static void test_detect(void) {
    for (size_t i = 0; i < RL_ARRAY_LEN(SOURCES); i++) {
        int got = chat_recognise(SOURCES[i].source);
        CHECKF(got == SOURCES[i].family, "%s: recognised as %d, expected %d", SOURCES[i].name, got,
               SOURCES[i].family);
        chat_template want = SOURCES[i].family >= 0 ? (chat_template)SOURCES[i].family : CHAT_DEFAULT;
        CHECKF(chat_detect(SOURCES[i].source) == want, "%s: detect gave %s", SOURCES[i].name,
               chat_name(chat_detect(SOURCES[i].source)));
    }
    /* No template at all: the default, which is ChatML. */
    CHECK_EQ_INT(chat_recognise(NULL), -1);
    CHECK(chat_detect(NULL) == CHAT_DEFAULT);
    CHECK(CHAT_DEFAULT == CHAT_CHATML);
    /* A template name works as a source too, as in llama.cpp. */
    CHECK(chat_detect("llama2-sys") == CHAT_LLAMA2_SYS);
}

static void test_names(void) {
    const char *names[] = {"llama3", "llama2", "llama2-sys", "llama2-sys-bos", "llama2-sys-strip", "zephyr", "chatml"};
    CHECK_EQ_INT(RL_ARRAY_LEN(names), CHAT_TEMPLATE_COUNT);
    for (size_t i = 0; i < RL_ARRAY_LEN(names); i++) {
        int t = chat_from_name(names[i]);
        CHECKF(t >= 0, "name %s unknown", names[i]);
        if (t >= 0) CHECK_STR(chat_name((chat_template)t), names[i]);
    }
    CHECK_EQ_INT(chat_from_name("vicuna"), -1);
    CHECK_EQ_INT(chat_from_name(""), -1);
    CHECK_EQ_INT(chat_from_name(NULL), -1);
}

/* The real template stored in the synthetic Llama-3 model. */
static void test_detect_from_gguf(void) {
    const char *path = shared_path("models/synth-l3-q8_0.gguf");
    rl_err err = {0};
    gguf_file *f = gguf_open(path, &err);
    CHECKF(f != NULL, "%s: %s", path, err.msg);
    if (!f) return;
    gguf_str s;
    CHECK(gguf_get_str(f, "tokenizer.chat_template", &s));
    char *src = strndup(s.ptr, (size_t)s.len);
    CHECK(src != NULL);
    CHECK_EQ_INT(chat_recognise(src), CHAT_LLAMA3);
    free(src);
    gguf_close(f);
}

/* Each template's stop strings include its own end-of-turn marker as it
 * appears in a rendering, and the start of the next turn. */
static void test_stop_strings(void) {
    static const struct {
        chat_template t;
        const char *end, *next;
    } want[] = {
        {CHAT_CHATML, "<|im_end|>", "<|im_start|>"},
        {CHAT_LLAMA3, "<|eot_id|>", "<|start_header_id|>"},
        {CHAT_LLAMA2, "</s>", "[INST]"},
        {CHAT_LLAMA2_SYS_STRIP, "</s>", "[INST]"},
        {CHAT_ZEPHYR, "</s>", "<|user|>"},
    };
    for (size_t i = 0; i < RL_ARRAY_LEN(want); i++) {
        const char *const *stops = chat_stop_strings(want[i].t);
        bool end = false, next = false;
        for (; stops && *stops; stops++) {
            end = end || strcmp(*stops, want[i].end) == 0;
            next = next || strcmp(*stops, want[i].next) == 0;
        }
        CHECKF(end && next, "%s: stop strings lack %s or %s", chat_name(want[i].t), want[i].end, want[i].next);
        char *r = render(want[i].t, CONV, N_CONV, true, "<s>", "</s>");
        CHECK(r && strstr(r, want[i].end) && strstr(r, want[i].next));
        free(r);
    }
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(test_render);
    RUN(test_render_details);
    RUN(test_content_ranges);
    RUN(test_detect);
    RUN(test_names);
    RUN(test_detect_from_gguf);
    RUN(test_stop_strings);
    return test_report("test_chat");
}
