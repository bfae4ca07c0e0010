/*
 * fuzz_jinja.c — libFuzzer target for the chat-template interpreter
 * (src/text/jinja_*.c): any bytes as a template (and, after a NUL byte,
 * as the JSON variables), parsed and rendered under small bounds. Beyond
 * "no crash, no leak, no undefined behaviour" it checks that a render
 * either succeeds within its output bound or fails with a status and a
 * message — never a hang (the step budget) or a bound passed.
 *
 *   CC=clang cmake -S . -B build-fuzz -DRACKLLM_FUZZ=ON -DRACKLLM_SANITIZE=ON
 *   cmake --build build-fuzz --target fuzz_jinja
 *   build-fuzz/fuzz_jinja fuzz/corpus/fuzz_jinja -max_total_time=60
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/jinja.h"

static const char VARS[] =
    "{\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi \\u00e9\"},"
    " {\"role\": \"assistant\", \"content\": \"<think>x</think>Hello\"}, {\"role\": \"user\", \"content\": \"?\"}],"
    " \"add_generation_prompt\": true, \"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"tools\": null}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1 << 16)) return 0;
    const char *src = (const char *)data;
    const uint8_t *nul = memchr(data, 0, size);
    size_t tlen = nul ? (size_t)(nul - data) : size;
    const char *vars = nul ? (const char *)nul + 1 : VARS;
    size_t vlen = nul ? size - tlen - 1 : sizeof VARS - 1;
    rl_err err = {0};
    jinja_status st = JINJA_OK;
    jinja_template *t = jinja_parse(src, tlen, &st, &err);
    if (!t) {
        if (st == JINJA_OK || !err.msg[0]) abort();
        return 0;
    }
    jinja_limits lim = {.max_steps = 200000, .max_output = 1 << 16, .max_memory = 16 << 20, .max_depth = 16,
                        .now = 1700000000};
    size_t n = 0;
    char *out = jinja_render(t, vars, vlen, &lim, &n, &st, &err);
    if (out && (n > lim.max_output || strlen(out) > n || st != JINJA_OK)) abort();
    if (!out && (st == JINJA_OK || !err.msg[0])) abort();
    free(out);
    jinja_free(t);
    return 0;
}
