/*
 * jinja.h — a sandboxed interpreter for the Jinja subset that chat
 * templates use (the GGUF's tokenizer.chat_template), configured as Hugging
 * Face transformers configures jinja2 for apply_chat_template: trim_blocks
 * and lstrip_blocks on, the loopcontrols extension, a tojson filter that
 * keeps non-ASCII text, and the globals raise_exception and strftime_now.
 * What it renders is meant to be byte-identical to jinja2's output for the
 * same template and variables; docs/templates.md lists the constructs.
 *
 * Templates are untrusted input. Parsing bounds nesting depth; rendering
 * bounds work (a step budget that also charges per byte copied), output
 * size, memory (everything a render allocates comes from one capped arena)
 * and macro recursion. Exceeding a bound is an error, never a hang.
 *
 * The variables a template sees come as one JSON object (messages,
 * add_generation_prompt, bos_token, ...): numbers, strings, lists, objects,
 * true/false/null, as Python's json module would load them.
 */
#ifndef RACKLLM_JINJA_H
#define RACKLLM_JINJA_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "base/common.h"

typedef struct jinja_template jinja_template;

/* What went wrong, for callers that treat them differently. */
typedef enum jinja_status {
    JINJA_OK = 0,
    JINJA_SYNTAX,      /* not a template: a parse error */
    JINJA_UNSUPPORTED, /* valid Jinja that this interpreter does not implement */
    JINJA_RAISED,      /* the template called raise_exception(message) */
    JINJA_RUNTIME,     /* a type error, an undefined value used, ... */
    JINJA_LIMIT,       /* a bound was exceeded (steps, output, memory, depth) */
} jinja_status;

typedef struct jinja_limits {
    uint64_t max_steps; /* 0: 20 million */
    size_t max_output;  /* bytes; 0: 16 MiB */
    size_t max_memory;  /* bytes of one render's arena; 0: 128 MiB */
    int max_depth;      /* nested macro calls; 0: 32 */
    time_t now;         /* what strftime_now formats (local time); 0: now */
} jinja_limits;

/* Parses a template; NULL with err naming the construct and line. The
 * status of a failure (JINJA_SYNTAX or JINJA_UNSUPPORTED) goes to *status
 * when it is not NULL. */
jinja_template *jinja_parse(const char *src, size_t len, jinja_status *status, rl_err *err);
void jinja_free(jinja_template *t);

/* Renders with the variables of a JSON object; a malloc'ed NUL-terminated
 * string (its length in *out_len if not NULL), or NULL with *status and
 * err set. limits may be NULL (the defaults). Thread-safe: a template is
 * read-only once parsed. */
char *jinja_render(const jinja_template *t, const char *vars_json, size_t vars_len, const jinja_limits *limits,
                   size_t *out_len, jinja_status *status, rl_err *err);

#endif
