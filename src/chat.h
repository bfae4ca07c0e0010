/*
 * chat.h — turning a conversation into the prompt text a model was tuned on.
 *
 * Templates are recognised from the model's tokenizer.chat_template (a Jinja
 * source we do not execute: we look for each family's markers) or chosen by
 * name. The rendered text contains special tokens as text ("<|eot_id|>",
 * "<s>"); the tokenizer turns them into their ids with parse_special.
 * A model without a template, or with one we do not recognise, gets the
 * documented default (CHAT_DEFAULT).
 */
#ifndef RACKLLM_CHAT_H
#define RACKLLM_CHAT_H

#include <stdbool.h>
#include <stddef.h>

#include "common.h"

typedef enum chat_template {
    CHAT_LLAMA3 = 0, /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    CHAT_LLAMA2,     /* <s>[INST] <<SYS>>...<</SYS>> ... [/INST] ... </s> */
    CHAT_ZEPHYR,     /* <|user|>\n...</s>\n<|assistant|>\n (TinyLlama chat) */
    CHAT_CHATML,     /* <|im_start|>role\n...<|im_end|>\n */
    CHAT_TEMPLATE_COUNT,
    CHAT_DEFAULT = CHAT_CHATML,
} chat_template;

typedef struct chat_msg {
    const char *role;    /* "system", "user", "assistant" */
    const char *content;
} chat_msg;

/* From a model's template source (may be NULL): the family, or CHAT_DEFAULT. */
chat_template chat_detect(const char *template_source);
/* By name ("llama3", "llama2", "zephyr", "chatml"); -1 if unknown. */
int chat_from_name(const char *name);
const char *chat_name(chat_template t);

/* Renders the messages; with add_assistant, ends with the opening of the
 * assistant's turn so generation continues there. `bos`/`eos` are the
 * model's BOS/EOS token texts (used by templates that spell them out).
 * Returns a malloc'ed string, NULL on error (unknown role, ...). */
char *chat_render(chat_template t, const chat_msg *msgs, size_t n, bool add_assistant, const char *bos,
                  const char *eos, rl_err *err);

/* Extra stop strings a template needs besides the model's EOG tokens
 * (e.g. "</s>" spelled as text); NULL-terminated, static. */
const char *const *chat_stop_strings(chat_template t);

#endif
