/*
 * chat.h — turning a conversation into the prompt text a model was tuned on.
 *
 * Templates are recognised from the model's tokenizer.chat_template (a Jinja
 * source we do not execute: we look for each family's markers, in the order
 * llama.cpp's llm_chat_detect_template checks them) or chosen by name
 * (llama.cpp's names, so `--chat-template llama2-sys` means the same in
 * both). The rendered text is what llama.cpp's llm_chat_apply_template
 * produces for the same family; it contains special tokens as text
 * ("<|eot_id|>", "</s>"), which the tokenizer turns into their ids with
 * parse_special. chat_render_marked also says where each message's content
 * lies, so that what a user wrote can be tokenized as plain text while the
 * template's markers become tokens (a user cannot forge a turn). It never
 * starts with BOS: the caller tokenizes with the model's add-BOS setting,
 * as llama.cpp does.
 *
 * The default (of `rackllm run`, and of `serve` for a model without a
 * template: `serve` interprets a model's own template, chat_jinja below).
 * A model without a template, or with one we do not
 * recognise (including families llama.cpp knows but rackllm does not
 * render: Mistral v1/v3/v7, Phi, Gemma, ...), gets ChatML. It is llama.cpp's
 * own fallback (llama_chat_apply_template with no template, llama-server
 * with an unsupported one), so the same model behaves the same in both; and
 * its turn markers are plain, unambiguous text, so even a model never tuned
 * on it sees clear turn boundaries, and the stop strings "<|im_end|>" and
 * "<|im_start|>" end its turn even where they are not tokens of its
 * vocabulary.
 *
 * One deliberate difference from llama.cpp's detector: the template of
 * TinyLlama-1.1B-Chat and zephyr-7b-beta ("<|user|>\n" + content +
 * eos_token) is Zephyr here. llama.cpp's legacy detector calls it GLMEdge,
 * which renders neither the newline nor the EOS that the template itself
 * produces.
 */
#ifndef RACKLLM_CHAT_H
#define RACKLLM_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/common.h"
#include "tokenizer.h"

typedef enum chat_template {
    /* <|start_header_id|>role<|end_header_id|>\n\n + trimmed content + <|eot_id|> */
    CHAT_LLAMA3 = 0,
    /* "[INST] " ... " [/INST]" answer "</s>"; the Llama 2 family comes in
     * llama.cpp's four variants: */
    CHAT_LLAMA2,           /* no system support: the system text + "\n" opens the turn */
    CHAT_LLAMA2_SYS,       /* system as "<<SYS>>\n...\n<</SYS>>\n\n" */
    CHAT_LLAMA2_SYS_BOS,   /* ... and BOS before each later "[INST] " */
    CHAT_LLAMA2_SYS_STRIP, /* ... and every content trimmed (Meta's Llama-2-chat template) */
    /* <|role|>\n + content + EOS + \n (TinyLlama chat, zephyr) */
    CHAT_ZEPHYR,
    /* <|im_start|>role\n + content + <|im_end|>\n */
    CHAT_CHATML,
    CHAT_TEMPLATE_COUNT,
    CHAT_DEFAULT = CHAT_CHATML,
} chat_template;

typedef struct chat_msg {
    const char *role;    /* "system", "user", "assistant" */
    const char *content; /* NULL counts as "" */
} chat_msg;

/* From a model's template source (or a template name): the family, or -1
 * when it is missing or not one rackllm renders. */
int chat_recognise(const char *template_source);
/* The same, with CHAT_DEFAULT for "not recognised". */
chat_template chat_detect(const char *template_source);
/* By name ("llama3", "llama2", "llama2-sys", "llama2-sys-bos",
 * "llama2-sys-strip", "zephyr", "chatml"); -1 if unknown. */
int chat_from_name(const char *name);
const char *chat_name(chat_template t);

/* Renders the messages. With add_assistant, ends with the opening of the
 * assistant's turn so generation continues there (the Llama 2 family has
 * none: its prompt already ends with " [/INST]").
 * `bos`/`eos` are the model's BOS/EOS token texts, used where the family's
 * template spells them out (Llama 2's "<s>"/"</s>", the end of a Zephyr
 * message); NULL gives llama.cpp's literals ("<s>", "</s>", and
 * "<|endoftext|>" for Zephyr).
 * Returns a malloc'ed string; NULL with RL_ERR_INPUT for a message whose
 * role is not system, user or assistant. */
char *chat_render(chat_template t, const chat_msg *msgs, size_t n, bool add_assistant, const char *bos,
                  const char *eos, rl_err *err);
/* The same, and where each message's content is in the text (*content,
 * malloc'ed, in order, the empty ones left out; NULL when there is none):
 * tokenizing with these as plain ranges (tok_encode_opts) keeps a user from
 * writing the template's special tokens into the conversation. */
char *chat_render_marked(chat_template t, const chat_msg *msgs, size_t n, bool add_assistant, const char *bos,
                         const char *eos, tok_range **content, size_t *n_content, rl_err *err);

/* Extra stop strings for a template, besides the model's end-of-generation
 * tokens: its end-of-turn and start-of-turn markers spelled as text, which
 * catch a model that writes them as ordinary text (a model running on the
 * default template, or one that starts the user's next turn itself).
 * NULL-terminated, static. */
const char *const *chat_stop_strings(chat_template t);

/* ---- the model's own template, interpreted (jinja.h) ----
 * What `serve` renders by default: the GGUF's tokenizer.chat_template run
 * by the Jinja interpreter, as llama.cpp, vLLM and Ollama do, with the
 * variables transformers' apply_chat_template passes (messages,
 * add_generation_prompt, bos_token, eos_token, tools=None,
 * documents=None). */
typedef struct chat_jinja chat_jinja;

/* Parses the template and renders a probe conversation (system, user,
 * assistant, user; fewer roles when the template refuses some with
 * raise_exception, as Gemma's refuses a system message): NULL with err
 * naming the construct it cannot render. */
chat_jinja *chat_jinja_load(const char *source, rl_err *err);
void chat_jinja_free(chat_jinja *t);

/* Renders the messages; with strip_bos a leading BOS text is left out (the
 * tokenizer adds BOS itself), as llama.cpp does. NULL with RL_ERR_INPUT
 * and the template's message when it refuses the conversation. */
char *chat_jinja_render(const chat_jinja *t, const chat_msg *msgs, size_t n, bool add_generation_prompt,
                        const char *bos, const char *eos, bool strip_bos, rl_err *err);

#endif
