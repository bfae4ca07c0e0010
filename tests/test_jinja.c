/*
 * test_jinja.c — the chat-template interpreter's own checks, and the
 * renderer the jinja2 oracle drives.
 *
 *   test_jinja                         (CTest) the cases below: the bounds
 *                                      on untrusted templates (steps, output,
 *                                      memory, depth), errors that name the
 *                                      construct and line, raise_exception
 *   test_jinja --render T.jinja V.json renders template T with the variables
 *                                      of V (strftime_now at a fixed time) to
 *                                      stdout; on failure the error on stderr
 *                                      and exit status 10 + jinja_status
 *
 * Whether what it renders is right is the oracle's question:
 * tests/test_chat_oracle.sh compares it with Python's jinja2 byte for byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "text/chat.h"
#include "text/jinja.h"

#define ORACLE_TIME 1700000000 /* what strftime_now formats; jinja_oracle.py uses the same */

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 > cap) buf = realloc(buf, cap = cap * 2 + 8192);
        size_t k = fread(buf + len, 1, cap - len, f);
        len += k;
        if (k == 0) break;
    }
    fclose(f);
    *n = len;
    return buf;
}

static int render_files(const char *tpath, const char *vpath) {
    size_t tn, vn;
    char *t = slurp(tpath, &tn), *v = slurp(vpath, &vn);
    if (!t || !v) {
        fprintf(stderr, "test_jinja: cannot read %s\n", !t ? tpath : vpath);
        return 2;
    }
    rl_err err = {0};
    jinja_status st = JINJA_OK;
    jinja_limits lim = {.now = ORACLE_TIME};
    jinja_template *tp = jinja_parse(t, tn, &st, &err);
    size_t n = 0;
    char *out = tp ? jinja_render(tp, v, vn, &lim, &n, &st, &err) : NULL;
    int rc = 0;
    if (out) fwrite(out, 1, n, stdout);
    else {
        fprintf(stderr, "%s\n", err.msg);
        rc = 10 + (int)st;
    }
    free(out);
    jinja_free(tp);
    free(t);
    free(v);
    return rc;
}

/* Renders src with vars; returns the output (malloc'ed) or NULL, with the
 * status and message. */
static char *render(const char *src, const char *vars, const jinja_limits *lim, jinja_status *st, rl_err *err) {
    jinja_template *t = jinja_parse(src, strlen(src), st, err);
    if (!t) return NULL;
    char *out = jinja_render(t, vars, strlen(vars), lim, NULL, st, err);
    jinja_free(t);
    return out;
}

static void expect_fail(const char *src, const char *vars, const jinja_limits *lim, jinja_status want, const char *msg_part) {
    jinja_status st = JINJA_OK;
    rl_err err = {0};
    char *out = render(src, vars, lim, &st, &err);
    CHECKF(!out, "%s rendered, expected a failure", src);
    CHECKF(st == want, "%s: status %d, expected %d (%s)", src, (int)st, (int)want, err.msg);
    CHECKF(strstr(err.msg, msg_part) != NULL, "%s: message \"%s\" lacks \"%s\"", src, err.msg, msg_part);
    free(out);
}

static void expect_out(const char *src, const char *vars, const char *want) {
    jinja_status st = JINJA_OK;
    rl_err err = {0};
    char *out = render(src, vars, NULL, &st, &err);
    CHECKF(out && strcmp(out, want) == 0, "%s: got \"%s\" (%s), expected \"%s\"", src, out ? out : "(null)", err.msg, want);
    free(out);
}

static void test_bounds(void) {
    jinja_limits small = {.max_steps = 100000, .max_output = 4096, .max_memory = 1 << 20, .max_depth = 8};
    expect_fail("{% for i in range(1000) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", "{}", &small,
                JINJA_LIMIT, "steps");
    expect_fail("{% for i in range(10000) %}xxxxxxxxxx{% endfor %}", "{}", &small, JINJA_LIMIT, "4096 bytes");
    expect_fail("{% set s = 'x' * 100000000 %}", "{}", &small, JINJA_LIMIT, "too long");
    expect_fail("{% set ns = namespace(s='xxxxxxxxxxxxxxxx') %}{% for i in range(30) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
                "{}", &small, JINJA_LIMIT, "memory");
    expect_fail("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "{}", &small, JINJA_LIMIT, "nested");
    expect_fail("{{ range(1000000) }}", "{}", NULL, JINJA_LIMIT, "range too big");
    char src[700] = "{{ ";
    for (int i = 0; i < 300; i++) strcat(src, "(");
    strcat(src, "1");
    for (int i = 0; i < 300; i++) strcat(src, ")");
    strcat(src, " }}");
    expect_fail(src, "{}", NULL, JINJA_SYNTAX, "brackets nested too deeply");
    char nots[1400] = "{{ ";
    for (int i = 0; i < 300; i++) strcat(nots, "not ");
    strcat(nots, "1 }}");
    expect_fail(nots, "{}", NULL, JINJA_LIMIT, "nested more than");
}

static void test_errors_name_the_construct(void) {
    expect_fail("a\n{{ x | frobnicate }}", "{}", NULL, JINJA_UNSUPPORTED, "line 2: unsupported filter 'frobnicate'");
    expect_fail("{% if x is prime %}{% endif %}", "{}", NULL, JINJA_UNSUPPORTED, "unsupported test 'prime'");
    expect_fail("{% include 'x' %}", "{}", NULL, JINJA_UNSUPPORTED, "unsupported statement '{% include %}'");
    expect_fail("{% if x %}", "{}", NULL, JINJA_SYNTAX, "missing '{% endif %}'");
    expect_fail("{{ 'abc }}", "{}", NULL, JINJA_SYNTAX, "never closed");
    expect_fail("{{ x.y }}", "{}", NULL, JINJA_RUNTIME, "'x' is undefined");
    expect_fail("{{ raise_exception('Roles must alternate') }}", "{}", NULL, JINJA_RAISED, "Roles must alternate");
    expect_fail("{{ 1 + 'a' }}", "{}", NULL, JINJA_RUNTIME, "cannot add int and str");
    expect_fail("{{ x }}", "[1]", NULL, JINJA_RUNTIME, "not a JSON object");
}

static void test_basics(void) {
    expect_out("{{ messages[0].content | upper }}", "{\"messages\":[{\"content\":\"hi\"}]}", "HI");
    expect_out("{% for k, v in d.items() %}{{ k }}={{ v }}{% if not loop.last %},{% endif %}{% endfor %}",
               "{\"d\":{\"a\":1,\"b\":[true,null]}}", "a=1,b=[True, None]");
    expect_out("{{ 'x' if none is none else 'y' }}{{ [1,2,3][::-1] }}{{ 'héllo'[1:3] }}", "{}", "x[3, 2, 1]él");
}

/* chat_jinja: checked at load, BOS stripped when the tokenizer adds it. */
static void test_chat_jinja(void) {
    rl_err err = {0};
    chat_jinja *bad = chat_jinja_load("{% for m in messages %}{{ m.content | wordwrap }}{% endfor %}", &err);
    CHECK(!bad);
    CHECKF(strstr(err.msg, "cannot be used") && strstr(err.msg, "unsupported filter 'wordwrap'"), "%s", err.msg);
    chat_jinja *undef = chat_jinja_load("{{ messages[0].content.nope() }}", &err);
    CHECKF(!undef && strstr(err.msg, "undefined"), "%s", err.msg);
    /* Gemma refuses a system message with raise_exception: still loads */
    const char *gemma = "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
                        "supported') }}{% endif %}{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}";
    chat_jinja *t = chat_jinja_load(gemma, &err);
    CHECKF(t != NULL, "%s", err.msg);
    chat_msg msgs[] = {{"user", "a\"b\\c\n"}, {"assistant", NULL}};
    char *out = t ? chat_jinja_render(t, msgs, 2, true, "<bos>", "<eos>", true, &err) : NULL;
    CHECKF(out && strcmp(out, "<user>a\"b\\c\n<assistant>") == 0, "%s", out ? out : err.msg);
    free(out);
    out = t ? chat_jinja_render(t, msgs, 2, true, "<bos>", "<eos>", false, &err) : NULL;
    CHECKF(out && strncmp(out, "<bos><user>", 11) == 0, "%s", out ? out : err.msg);
    free(out);
    chat_msg sys[] = {{"system", "x"}, {"user", "y"}};
    out = t ? chat_jinja_render(t, sys, 2, true, "<bos>", "<eos>", true, &err) : NULL;
    CHECKF(!out && err.code == RL_ERR_INPUT && strstr(err.msg, "System role not supported"), "%s", err.msg);
    chat_jinja_free(t);
}

int main(int argc, char **argv) {
    if (argc == 4 && strcmp(argv[1], "--render") == 0) return render_files(argv[2], argv[3]);
    test_init(argc, argv);
    RUN(test_bounds);
    RUN(test_errors_name_the_construct);
    RUN(test_basics);
    RUN(test_chat_jinja);
    return test_report("test_jinja");
}
