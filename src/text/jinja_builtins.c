/*
 * jinja_builtins.c — the filters, tests, methods and global functions
 * that chat templates call, each with Python's / jinja2's behaviour: str
 * methods (strip, split, startswith, replace, ...), dict.items/keys/
 * values/get, filters such as trim, tojson (as transformers defines it),
 * default, join, selectattr and map, the `is` tests, and the globals
 * raise_exception, strftime_now, namespace, range and dict. Case mapping
 * (upper, lower, title) is ASCII-only; other letters pass unchanged.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jinja_internal.h"

/* ---- argument helpers ---- */

typedef struct call {
    jctx *c;
    const jv *args;
    int n;
    const char **kw;
    const jv *kwv;
    int n_kw;
    int line;
    const char *what;
} call;

/* Argument i (positional) or `name` (keyword); NULL when absent. */
static const jv *arg(const call *k, int i, const char *name) {
    if (i >= 0 && i < k->n) return &k->args[i];
    for (int j = 0; name && j < k->n_kw; j++)
        if (strcmp(k->kw[j], name) == 0) return &k->kwv[j];
    return NULL;
}

static void max_args(const call *k, int n) {
    if (k->n > n) jfail(k->c, JINJA_RUNTIME, k->line, "%s takes at most %d argument(s), %d given", k->what, n, k->n);
}

static jv str_arg(const call *k, int i, const char *name) {
    const jv *v = arg(k, i, name);
    if (!v) jfail(k->c, JINJA_RUNTIME, k->line, "%s: missing argument %d", k->what, i + 1);
    if (v->t != JV_STR) jfail(k->c, JINJA_RUNTIME, k->line, "%s: expected a string, got %s", k->what, jv_type_name(v));
    return *v;
}

static jv build(jctx *c, jbuf *b) {
    if (!b->p) jbuf_add(c, b, "", 0);
    return jv_strref(b->p, b->n);
}

/* ---- string operations ---- */

/* mode 0 lower, 1 upper, 2 str.title() (a letter after an uncased
 * character is upper), 3 capitalize, 4 jinja's title filter (the first
 * character after a run of whitespace, - ( { [ < is upper). */
static jv case_map(jctx *c, jv s, int mode) {
    char *o = jalloc(c, s.s.n + 1);
    bool prev_cased = false, word_start = true;
    for (size_t i = 0; i < s.s.n; i++) {
        unsigned char ch = (unsigned char)s.s.p[i];
        bool alpha = ch < 0x80 && isalpha(ch);
        bool sep = ch < 0x80 && (isspace(ch) || strchr("-({[<", ch));
        bool up = mode == 1 || (mode == 2 && !prev_cased) || (mode == 3 && i == 0) || (mode == 4 && word_start);
        o[i] = (char)(alpha ? (up ? toupper(ch) : tolower(ch)) : ch);
        prev_cased = alpha || (ch >= 0x80 && mode == 2 && prev_cased);
        word_start = sep || (word_start && (ch & 0xc0) == 0x80);
    }
    o[s.s.n] = 0;
    jcharge(c, s.s.n / 64);
    return jv_strref(o, s.s.n);
}

static bool in_chars(const jv *chars, const char *p, size_t len) {
    for (size_t i = 0; i < chars->s.n;) {
        size_t l = jv_utf8_offset(chars->s.p + i, chars->s.n - i, 1);
        if (l == len && memcmp(chars->s.p + i, p, len) == 0) return true;
        i += l;
    }
    return false;
}

/* str.strip / lstrip / rstrip: which 1 left, 2 right, 3 both. */
static jv strip(jctx *c, jv s, const jv *chars, int which) {
    const char *p = s.s.p;
    size_t n = s.s.n;
    jcharge(c, n / 64);
    if (!chars || chars->t == JV_NONE) {
        if (which & 1) { size_t k = jv_space_prefix(p, n); p += k; n -= k; }
        if (which & 2) n -= jv_space_suffix(p, n);
        return jv_strref(p, n);
    }
    if (chars->t != JV_STR) jfail(c, JINJA_RUNTIME, 0, "strip arg must be None or str");
    while ((which & 1) && n > 0) {
        size_t l = jv_utf8_offset(p, n, 1);
        if (!in_chars(chars, p, l)) break;
        p += l; n -= l;
    }
    while ((which & 2) && n > 0) {
        size_t start = n - 1;
        while (start > 0 && ((unsigned char)p[start] & 0xc0) == 0x80 && n - start < 4) start--;
        if (!in_chars(chars, p + start, n - start)) break;
        n = start;
    }
    return jv_strref(p, n);
}

static jv split(jctx *c, jv s, const jv *sep, int64_t maxsplit, int line) {
    jv out = jv_list_new(c, 4);
    const char *p = s.s.p, *end = p + s.s.n;
    jcharge(c, s.s.n / 32);
    if (!sep || sep->t == JV_NONE) {
        for (;;) {
            p += jv_space_prefix(p, (size_t)(end - p));
            if (p >= end) break;
            if (maxsplit >= 0 && (int64_t)out.l->n >= maxsplit) {
                jv_list_push(c, out, jv_strref(p, (size_t)(end - p) - jv_space_suffix(p, (size_t)(end - p))));
                break;
            }
            const char *q = p;
            while (q < end && jv_space_prefix(q, (size_t)(end - q)) == 0) q += jv_utf8_offset(q, (size_t)(end - q), 1);
            jv_list_push(c, out, jv_strref(p, (size_t)(q - p)));
            p = q;
        }
        return out;
    }
    if (sep->t != JV_STR) jfail(c, JINJA_RUNTIME, line, "split: the separator must be a string");
    if (sep->s.n == 0) jfail(c, JINJA_RUNTIME, line, "split: empty separator");
    for (;;) {
        const char *q = (maxsplit < 0 || (int64_t)out.l->n < maxsplit) ? memmem(p, (size_t)(end - p), sep->s.p, sep->s.n) : NULL;
        if (!q) { jv_list_push(c, out, jv_strref(p, (size_t)(end - p))); return out; }
        jv_list_push(c, out, jv_strref(p, (size_t)(q - p)));
        p = q + sep->s.n;
    }
}

static jv replace(jctx *c, jv s, jv old, jv new_, int64_t count) {
    jbuf b = {0};
    const char *p = s.s.p, *end = p + s.s.n;
    int64_t done = 0;
    jbuf_add(c, &b, "", 0);
    if (old.s.n == 0) {
        while (count < 0 || done < count) {
            jbuf_add(c, &b, new_.s.p, new_.s.n);
            done++;
            if (p >= end) break;
            size_t l = jv_utf8_offset(p, (size_t)(end - p), 1);
            jbuf_add(c, &b, p, l);
            p += l;
        }
        jbuf_add(c, &b, p, (size_t)(end - p));
        return build(c, &b);
    }
    for (;;) {
        const char *q = (count < 0 || done < count) ? memmem(p, (size_t)(end - p), old.s.p, old.s.n) : NULL;
        if (!q) break;
        jbuf_add(c, &b, p, (size_t)(q - p));
        jbuf_add(c, &b, new_.s.p, new_.s.n);
        p = q + old.s.n;
        done++;
    }
    jbuf_add(c, &b, p, (size_t)(end - p));
    return build(c, &b);
}

static bool affix(jctx *c, jv s, const jv *what, bool start, int line) {
    if (what->t == JV_LIST) {
        for (size_t i = 0; i < what->l->n; i++)
            if (affix(c, s, &what->l->v[i], start, line)) return true;
        return false;
    }
    if (what->t != JV_STR) jfail(c, JINJA_RUNTIME, line, "startswith/endswith needs a string or a tuple");
    if (what->s.n > s.s.n) return false;
    return memcmp(start ? s.s.p : s.s.p + s.s.n - what->s.n, what->s.p, what->s.n) == 0;
}

static jv join(jctx *c, const jv *seq, jv sep, const char *attr) {
    jbuf b = {0};
    jbuf_add(c, &b, "", 0);
    jv items = *seq;
    if (items.t != JV_LIST) jfail(c, JINJA_RUNTIME, 0, "join: a %s is not a list", jv_type_name(seq));
    for (size_t i = 0; i < items.l->n; i++) {
        if (i) jbuf_add(c, &b, sep.s.p, sep.s.n);
        jv v = items.l->v[i];
        if (attr && v.t == JV_DICT) {
            const jv *a = jv_dict_get(v.d, attr, strlen(attr));
            v = a ? *a : jv_undef(attr);
        }
        jv_print(c, &b, &v);
    }
    return build(c, &b);
}

/* ---- methods ---- */

enum { M_STARTSWITH, M_ENDSWITH, M_STRIP, M_LSTRIP, M_RSTRIP, M_SPLIT, M_REPLACE, M_UPPER, M_LOWER, M_TITLE,
       M_CAPITALIZE, M_FIND, M_COUNT, M_JOIN, M_STR_END, M_ITEMS = M_STR_END, M_KEYS, M_VALUES, M_GET, M_END };
static const char *const METHODS[M_END] = {"startswith", "endswith", "strip", "lstrip", "rstrip", "split", "replace",
                                           "upper", "lower", "title", "capitalize", "find", "count", "join",
                                           "items", "keys", "values", "get"};

jv jinja_method(jctx *c, const jv *obj, const char *name, size_t n) {
    int from = obj->t == JV_STR ? 0 : obj->t == JV_DICT && !(obj->flags & JVF_NAMESPACE) ? M_STR_END : -1;
    int to = obj->t == JV_STR ? M_STR_END : M_END;
    for (int i = from; from >= 0 && i < to; i++)
        if (strlen(METHODS[i]) == n && memcmp(METHODS[i], name, n) == 0) {
            jv m = {.t = JV_METHOD, .fn = (uint16_t)i};
            m.self = jalloc(c, sizeof *m.self);
            *m.self = *obj;
            return m;
        }
    return jv_undef(name);
}

static jv dict_view(jctx *c, const jv *d, int which) {
    jv out = jv_list_new(c, d->d->n);
    for (size_t i = 0; i < d->d->n; i++) {
        if (which == M_KEYS) { jv_list_push(c, out, d->d->k[i]); continue; }
        if (which == M_VALUES) { jv_list_push(c, out, d->d->v[i]); continue; }
        jv pair = jv_list_new(c, 2);
        pair.flags = JVF_TUPLE;
        jv_list_push(c, pair, d->d->k[i]);
        jv_list_push(c, pair, d->d->v[i]);
        jv_list_push(c, out, pair);
    }
    return out;
}

static int64_t int_arg(const call *k, int i, const char *name, int64_t dflt) {
    const jv *v = arg(k, i, name);
    if (!v || v->t == JV_NONE) return dflt;
    if (v->t != JV_INT) jfail(k->c, JINJA_RUNTIME, k->line, "%s: expected an integer", k->what);
    return v->i;
}

static jv call_method(const call *k, const jv *self, int fn) {
    jctx *c = k->c;
    jv s = *self;
    switch (fn) {
    case M_STARTSWITH: case M_ENDSWITH: {
        const jv *w = arg(k, 0, NULL);
        if (!w) jfail(c, JINJA_RUNTIME, k->line, "%s: missing argument", k->what);
        return jv_bool(affix(c, s, w, fn == M_STARTSWITH, k->line));
    }
    case M_STRIP: max_args(k, 1); return strip(c, s, arg(k, 0, "chars"), 3);
    case M_LSTRIP: max_args(k, 1); return strip(c, s, arg(k, 0, "chars"), 1);
    case M_RSTRIP: max_args(k, 1); return strip(c, s, arg(k, 0, "chars"), 2);
    case M_SPLIT: max_args(k, 2); return split(c, s, arg(k, 0, "sep"), int_arg(k, 1, "maxsplit", -1), k->line);
    case M_REPLACE: return replace(c, s, str_arg(k, 0, NULL), str_arg(k, 1, NULL), int_arg(k, 2, "count", -1));
    case M_UPPER: return case_map(c, s, 1);
    case M_LOWER: return case_map(c, s, 0);
    case M_TITLE: return case_map(c, s, 2);
    case M_CAPITALIZE: return case_map(c, s, 3);
    case M_FIND: case M_COUNT: {
        jv needle = str_arg(k, 0, NULL);
        const char *p = s.s.p, *end = p + s.s.n;
        int64_t count = 0;
        for (const char *q; (q = memmem(p, (size_t)(end - p), needle.s.p, needle.s.n)); count++) {
            if (fn == M_FIND) return jv_int((int64_t)jv_utf8_len(s.s.p, (size_t)(q - s.s.p)));
            p = q + (needle.s.n ? needle.s.n : 1);
            if (p > end) { count++; break; }
        }
        return jv_int(fn == M_FIND ? -1 : count);
    }
    case M_JOIN: { const jv *seq = arg(k, 0, NULL); if (!seq) jfail(c, JINJA_RUNTIME, k->line, "join: missing argument"); return join(c, seq, s, NULL); }
    case M_ITEMS: case M_KEYS: case M_VALUES: return dict_view(c, self, fn);
    case M_GET: {
        const jv *key = arg(k, 0, NULL), *dflt = arg(k, 1, NULL);
        if (!key) jfail(c, JINJA_RUNTIME, k->line, "get: missing argument");
        for (size_t i = 0; i < self->d->n; i++)
            if (jv_equal(c, &self->d->k[i], key)) return self->d->v[i];
        return dflt ? *dflt : jv_none();
    }
    default: jfail(c, JINJA_RUNTIME, k->line, "unknown method");
    }
}

/* ---- globals ---- */

enum { G_RAISE, G_STRFTIME, G_NAMESPACE, G_RANGE, G_DICT, G_END };
static const char *const GLOBALS[G_END] = {"raise_exception", "strftime_now", "namespace", "range", "dict"};

jv jinja_global(const char *name, size_t n) {
    for (int i = 0; i < G_END; i++)
        if (strlen(GLOBALS[i]) == n && memcmp(GLOBALS[i], name, n) == 0) return (jv){.t = JV_GLOBAL, .fn = (uint16_t)i};
    return jv_undef(name);
}

static jv range(const call *k) {
    int64_t a = 0, b, step = 1;
    if (k->n == 1) b = int_arg(k, 0, NULL, 0);
    else if (k->n == 2 || k->n == 3) { a = int_arg(k, 0, NULL, 0); b = int_arg(k, 1, NULL, 0); step = int_arg(k, 2, NULL, 1); }
    else jfail(k->c, JINJA_RUNTIME, k->line, "range expects 1 to 3 arguments");
    if (step == 0) jfail(k->c, JINJA_RUNTIME, k->line, "range() arg 3 must not be zero");
    __int128 len = step > 0 ? ((__int128)b - a + step - 1) / step : ((__int128)a - b - step - 1) / -step;
    if (len < 0) len = 0;
    if (len > 100000) jfail(k->c, JINJA_LIMIT, k->line, "range too big (more than 100000 items)");
    jv out = jv_list_new(k->c, (size_t)len);
    for (int64_t i = 0; i < (int64_t)len; i++) jv_list_push(k->c, out, jv_int(a + i * step));
    jcharge(k->c, (uint64_t)len);
    return out;
}

static jv call_global(const call *k, int fn) {
    jctx *c = k->c;
    switch (fn) {
    case G_RAISE: {
        jv msg = k->n ? jv_to_str(c, &k->args[0]) : jv_strref("", 0);
        jfail(c, JINJA_RAISED, 0, "%.*s", (int)(msg.s.n > 300 ? 300 : msg.s.n), msg.s.p);
    }
    case G_STRFTIME: {
        jv fmt = str_arg(k, 0, NULL);
        char f[256], out[512];
        snprintf(f, sizeof f, "%.*s", (int)(fmt.s.n > 200 ? 200 : fmt.s.n), fmt.s.p);
        struct tm tm;
        time_t now = c->now;
        localtime_r(&now, &tm);
        size_t n = strftime(out, sizeof out, f, &tm);
        return jv_str(c, out, n);
    }
    case G_NAMESPACE:
    case G_DICT: {
        jv d = jv_dict_new(c, (size_t)k->n_kw);
        if (fn == G_NAMESPACE) d.flags = JVF_NAMESPACE;
        if (k->n > 1) jfail(c, JINJA_RUNTIME, k->line, "%s takes at most one positional argument", GLOBALS[fn]);
        if (k->n == 1 && k->args[0].t == JV_DICT)
            for (size_t i = 0; i < k->args[0].d->n; i++) jv_dict_set(c, d, k->args[0].d->k[i], k->args[0].d->v[i]);
        for (int i = 0; i < k->n_kw; i++) jv_dict_set(c, d, jv_strref(k->kw[i], strlen(k->kw[i])), k->kwv[i]);
        return d;
    }
    default: return range(k);
    }
}

jv jinja_call_builtin(jctx *c, const jv *fn, const jv *args, int n_args, const char **kw, const jv *kwv, int n_kw,
                      int line) {
    call k = {c, args, n_args, kw, kwv, n_kw, line, fn->t == JV_METHOD ? METHODS[fn->fn] : GLOBALS[fn->fn]};
    return fn->t == JV_METHOD ? call_method(&k, fn->self, fn->fn) : call_global(&k, fn->fn);
}

/* ---- tests ---- */

enum { T_DEFINED, T_UNDEFINED, T_NONE, T_STRING, T_NUMBER, T_INTEGER, T_FLOAT, T_BOOLEAN, T_TRUE, T_FALSE,
       T_MAPPING, T_ITERABLE, T_SEQUENCE, T_CALLABLE, T_EQ, T_EQUALTO, T_EQ_OP, T_NE, T_NE_OP, T_LT, T_LT_OP,
       T_LE, T_LE_OP, T_GT, T_GT_OP, T_GE, T_GE_OP, T_IN, T_ODD, T_EVEN, T_DIVISIBLEBY, T_LOWER, T_UPPER,
       T_SAMEAS, T_END };
static const char *const TESTS[T_END] = {
    "defined", "undefined", "none", "string", "number", "integer", "float", "boolean", "true", "false",
    "mapping", "iterable", "sequence", "callable", "eq", "equalto", "==", "ne", "!=", "lt", "<",
    "le", "<=", "gt", ">", "ge", ">=", "in", "odd", "even", "divisibleby", "lower", "upper", "sameas"};

int jinja_test_id(const char *name, size_t n) {
    for (int i = 0; i < T_END; i++)
        if (strlen(TESTS[i]) == n && memcmp(TESTS[i], name, n) == 0) return i;
    return -1;
}

static bool all_case(const jv *v, bool upper) {
    if (v->t != JV_STR) return false;
    bool cased = false;
    for (size_t i = 0; i < v->s.n; i++) {
        unsigned char ch = (unsigned char)v->s.p[i];
        if (ch < 0x80 && isalpha(ch)) {
            cased = true;
            if (upper ? islower(ch) : isupper(ch)) return false;
        }
    }
    return cased;
}

bool jinja_test(jctx *c, int id, const jv *in, const jv *args, int n_args, int line) {
    const jv *a = n_args > 0 ? &args[0] : NULL;
    bool cmp = id >= T_EQ && id <= T_GE_OP;
    if ((cmp || id == T_IN || id == T_DIVISIBLEBY || id == T_SAMEAS) && !a)
        jfail(c, JINJA_RUNTIME, line, "the test '%s' needs an argument", TESTS[id]);
    switch (id) {
    case T_DEFINED: return in->t != JV_UNDEF;
    case T_UNDEFINED: return in->t == JV_UNDEF;
    case T_NONE: return in->t == JV_NONE;
    case T_STRING: return in->t == JV_STR;
    case T_NUMBER: return in->t == JV_INT || in->t == JV_FLOAT || in->t == JV_BOOL;
    case T_INTEGER: return in->t == JV_INT;
    case T_FLOAT: return in->t == JV_FLOAT;
    case T_BOOLEAN: return in->t == JV_BOOL;
    case T_TRUE: return in->t == JV_BOOL && in->b;
    case T_FALSE: return in->t == JV_BOOL && !in->b;
    case T_MAPPING: return in->t == JV_DICT && !(in->flags & JVF_NAMESPACE);
    case T_ITERABLE: return in->t == JV_STR || in->t == JV_LIST || (in->t == JV_DICT && !(in->flags & JVF_NAMESPACE)) || in->t == JV_UNDEF;
    case T_SEQUENCE: return in->t == JV_STR || in->t == JV_LIST || (in->t == JV_DICT && !(in->flags & JVF_NAMESPACE));
    case T_CALLABLE: return in->t == JV_MACRO || in->t == JV_METHOD || in->t == JV_GLOBAL;
    case T_EQ: case T_EQUALTO: case T_EQ_OP: return jv_equal(c, in, a);
    case T_NE: case T_NE_OP: return !jv_equal(c, in, a);
    case T_LT: case T_LT_OP: return jv_compare(c, in, a, line) < 0;
    case T_LE: case T_LE_OP: return jv_compare(c, in, a, line) <= 0;
    case T_GT: case T_GT_OP: return jv_compare(c, in, a, line) > 0;
    case T_GE: case T_GE_OP: return jv_compare(c, in, a, line) >= 0;
    case T_IN: return jinja_contains(c, a, in, line);
    case T_ODD: case T_EVEN:
        if (in->t != JV_INT) jfail(c, JINJA_RUNTIME, line, "odd/even need an integer");
        return (in->i % 2 != 0) == (id == T_ODD);
    case T_DIVISIBLEBY:
        if (in->t != JV_INT || a->t != JV_INT || a->i == 0) jfail(c, JINJA_RUNTIME, line, "divisibleby needs non-zero integers");
        return in->i % a->i == 0;
    case T_LOWER: return all_case(in, false);
    case T_UPPER: return all_case(in, true);
    default: return in->t == a->t && memcmp(in, a, sizeof *in) == 0; /* sameas */
    }
}

/* ---- filters ---- */

enum { F_ABS, F_CAPITALIZE, F_COUNT, F_D, F_DEFAULT, F_FIRST, F_FLOAT, F_INDENT, F_INT, F_ITEMS, F_JOIN, F_LAST,
       F_LENGTH, F_LIST, F_LOWER, F_MAP, F_REJECT, F_REJECTATTR, F_REPLACE, F_REVERSE, F_SAFE, F_SELECT,
       F_SELECTATTR, F_STRING, F_TITLE, F_TOJSON, F_TRIM, F_UNIQUE, F_UPPER, F_END };
static const char *const FILTERS[F_END] = {
    "abs", "capitalize", "count", "d", "default", "first", "float", "indent", "int", "items", "join", "last",
    "length", "list", "lower", "map", "reject", "rejectattr", "replace", "reverse", "safe", "select",
    "selectattr", "string", "title", "tojson", "trim", "unique", "upper"};

int jinja_filter_id(const char *name, size_t n) {
    for (int i = 0; i < F_END; i++)
        if (strlen(FILTERS[i]) == n && memcmp(FILTERS[i], name, n) == 0) return i;
    return -1;
}

static jv as_list(jctx *c, jv v, int line) {
    if (v.t == JV_LIST) return v;
    jv out = jv_list_new(c, 0);
    if (v.t == JV_UNDEF) return out;
    if (v.t == JV_DICT && !(v.flags & JVF_NAMESPACE)) {
        for (size_t i = 0; i < v.d->n; i++) jv_list_push(c, out, v.d->k[i]);
        return out;
    }
    if (v.t == JV_STR) {
        for (size_t i = 0; i < v.s.n;) {
            size_t l = jv_utf8_offset(v.s.p + i, v.s.n - i, 1);
            jv_list_push(c, out, jv_strref(v.s.p + i, l));
            i += l;
        }
        return out;
    }
    jfail(c, JINJA_RUNTIME, line, "a %s is not iterable", jv_type_name(&v));
}

/* item.a.b as jinja2's attribute getters read it (keys, list indexes). */
static jv get_path(jctx *c, jv item, jv path) {
    const char *p = path.s.p, *end = p + path.s.n;
    while (p <= end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t n = (size_t)((dot ? dot : end) - p);
        if (item.t == JV_DICT) {
            const jv *v = jv_dict_get(item.d, p, n);
            item = v ? *v : jv_undef("attribute");
        } else if (item.t == JV_LIST && n > 0 && n < 10 && strspn(p, "0123456789") >= n) {
            size_t i = (size_t)strtoul(p, NULL, 10);
            item = i < item.l->n ? item.l->v[i] : jv_undef("item");
        } else {
            jv m = jinja_method(c, &item, p, n);
            item = m;
        }
        if (!dot) break;
        p = dot + 1;
    }
    return item;
}

/* select / reject / selectattr / rejectattr */
static jv select_items(const call *k, jv seq, bool by_attr, bool keep) {
    jctx *c = k->c;
    jv items = as_list(c, seq, k->line), out = jv_list_new(c, 0);
    int at = 0;
    jv attr = by_attr ? str_arg(k, at++, NULL) : (jv){0};
    const jv *test = arg(k, at, NULL);
    int id = -1;
    if (test) {
        if (test->t != JV_STR || (id = jinja_test_id(test->s.p, test->s.n)) < 0)
            jfail(c, JINJA_UNSUPPORTED, k->line, "%s: unsupported test", k->what);
    }
    for (size_t i = 0; i < items.l->n; i++) {
        jcharge(c, 1);
        jv v = by_attr ? get_path(c, items.l->v[i], attr) : items.l->v[i];
        bool pass = id >= 0 ? jinja_test(c, id, &v, k->args + at + 1, k->n - at - 1, k->line) : jv_truthy(&v);
        if (pass == keep) jv_list_push(c, out, items.l->v[i]);
    }
    return out;
}

static jv map_items(const call *k, jv seq) {
    jctx *c = k->c;
    jv items = as_list(c, seq, k->line), out = jv_list_new(c, items.l->n);
    const jv *attr = arg(k, -1, "attribute"), *dflt = arg(k, -1, "default");
    int id = -1;
    if (!attr) {
        jv name = str_arg(k, 0, NULL);
        if ((id = jinja_filter_id(name.s.p, name.s.n)) < 0) jfail(c, JINJA_UNSUPPORTED, k->line, "map: unsupported filter");
    } else if (attr->t != JV_STR) {
        jfail(c, JINJA_RUNTIME, k->line, "map: attribute must be a string");
    }
    for (size_t i = 0; i < items.l->n; i++) {
        jv v;
        if (attr) {
            v = get_path(c, items.l->v[i], *attr);
            if (v.t == JV_UNDEF && dflt) v = *dflt;
        } else {
            v = jinja_filter(c, id, items.l->v[i], k->args + 1, k->n - 1, NULL, NULL, 0, k->line);
        }
        jv_list_push(c, out, v);
    }
    return out;
}

static jv to_number(const call *k, jv in, bool as_float) {
    const jv *d = arg(k, 0, "default");
    jv dflt = d ? *d : as_float ? jv_float(0) : jv_int(0);
    if (in.t == JV_INT || in.t == JV_BOOL) return as_float ? jv_float((double)(in.t == JV_INT ? in.i : in.b)) : jv_int(in.t == JV_INT ? in.i : in.b);
    if (in.t == JV_FLOAT) return as_float ? in : (in.f > -9.2e18 && in.f < 9.2e18 ? jv_int((int64_t)in.f) : dflt);
    if (in.t != JV_STR || in.s.n == 0 || in.s.n > 60) return dflt;
    char buf[64], *e;
    snprintf(buf, sizeof buf, "%.*s", (int)in.s.n, in.s.p);
    if (as_float) { double f = strtod(buf, &e); while (*e == ' ') e++; return *e || e == buf ? dflt : jv_float(f); }
    long long v = strtoll(buf, &e, 10);
    while (*e == ' ' || *e == '\n' || *e == '\t') e++;
    if (!*e && e != buf) return jv_int(v);
    double f = strtod(buf, &e);
    return !*e && e != buf && f > -9.2e18 && f < 9.2e18 ? jv_int((int64_t)f) : dflt;
}

static jv tojson(const call *k, jv in) {
    const jv *indent = arg(k, 0, "indent"), *sort = arg(k, -1, "sort_keys"), *sep = arg(k, -1, "separators");
    if (sep && sep->t != JV_NONE) jfail(k->c, JINJA_UNSUPPORTED, k->line, "unsupported: tojson(separators=...)");
    if (indent && indent->t != JV_NONE && indent->t != JV_INT)
        jfail(k->c, JINJA_UNSUPPORTED, k->line, "unsupported: tojson(indent=) other than an integer");
    jbuf b = {0};
    int ind = indent && indent->t == JV_INT ? (int)(indent->i < 0 ? 0 : indent->i > 64 ? 64 : indent->i) : -1;
    jv_tojson(k->c, &b, &in, ind, sort && jv_truthy(sort), 0);
    return build(k->c, &b);
}

static jv indent(const call *k, jv in) {
    jctx *c = k->c;
    jv s = jv_to_str(c, &in);
    int64_t width = int_arg(k, 0, "width", 4);
    bool first = arg(k, 1, "first") && jv_truthy(arg(k, 1, "first")), blank = arg(k, 2, "blank") && jv_truthy(arg(k, 2, "blank"));
    if (width < 0 || width > 256) jfail(c, JINJA_RUNTIME, k->line, "indent: width out of range");
    jbuf b = {0};
    jbuf_add(c, &b, "", 0);
    const char *p = s.s.p, *end = p + s.s.n;
    for (bool line0 = true; p <= end; line0 = false) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        if ((line0 ? first : true) && (blank || n > 0))
            for (int64_t i = 0; i < width; i++) jbuf_add(c, &b, " ", 1);
        jbuf_add(c, &b, p, n);
        if (!nl) break;
        jbuf_add(c, &b, "\n", 1);
        p = nl + 1;
    }
    return build(c, &b);
}

static jv first_last(jctx *c, jv in, bool last, int line) {
    jv l = as_list(c, in, line);
    if (l.l->n == 0) return jv_undef(last ? "last" : "first");
    return l.l->v[last ? l.l->n - 1 : 0];
}

static jv unique(jctx *c, jv in, int line) {
    jv items = as_list(c, in, line), out = jv_list_new(c, 0), seen = jv_list_new(c, 0);
    for (size_t i = 0; i < items.l->n; i++) {
        jv key = items.l->v[i].t == JV_STR ? case_map(c, items.l->v[i], 0) : items.l->v[i];
        if (jinja_contains(c, &seen, &key, line)) continue;
        jv_list_push(c, seen, key);
        jv_list_push(c, out, items.l->v[i]);
    }
    return out;
}

static jv reverse(jctx *c, jv in, int line) {
    if (in.t == JV_STR) {
        jv chars = as_list(c, in, line);
        jbuf b = {0};
        jbuf_add(c, &b, "", 0);
        for (size_t i = chars.l->n; i-- > 0;) jbuf_add(c, &b, chars.l->v[i].s.p, chars.l->v[i].s.n);
        return build(c, &b);
    }
    jv items = as_list(c, in, line), out = jv_list_new(c, items.l->n);
    for (size_t i = items.l->n; i-- > 0;) jv_list_push(c, out, items.l->v[i]);
    return out;
}

static jv length(jctx *c, jv in, int line) {
    switch (in.t) {
    case JV_UNDEF: return jv_int(0);
    case JV_STR: jcharge(c, in.s.n / 64); return jv_int((int64_t)jv_utf8_len(in.s.p, in.s.n));
    case JV_LIST: return jv_int((int64_t)in.l->n);
    case JV_DICT: return jv_int((int64_t)in.d->n);
    default: jfail(c, JINJA_RUNTIME, line, "a %s has no length", jv_type_name(&in));
    }
}

jv jinja_filter(jctx *c, int id, jv in, const jv *args, int n_args, const char **kw, const jv *kwv, int n_kw, int line) {
    call k = {c, args, n_args, kw, kwv, n_kw, line, FILTERS[id]};
    jcharge(c, 1);
    switch (id) {
    case F_ABS:
        if (in.t == JV_INT) return in.i == INT64_MIN ? in : jv_int(in.i < 0 ? -in.i : in.i);
        if (in.t == JV_FLOAT) return jv_float(in.f < 0 ? -in.f : in.f);
        jfail(c, JINJA_RUNTIME, line, "abs: a %s is not a number", jv_type_name(&in));
    case F_CAPITALIZE: return case_map(c, jv_to_str(c, &in), 3);
    case F_COUNT: case F_LENGTH: return length(c, in, line);
    case F_D: case F_DEFAULT: {
        const jv *d = arg(&k, 0, "default_value"), *boolean = arg(&k, 1, "boolean");
        bool use = in.t == JV_UNDEF || (boolean && jv_truthy(boolean) && !jv_truthy(&in));
        return use ? (d ? *d : jv_strref("", 0)) : in;
    }
    case F_FIRST: case F_LAST: return first_last(c, in, id == F_LAST, line);
    case F_FLOAT: return to_number(&k, in, true);
    case F_INT: return to_number(&k, in, false);
    case F_INDENT: return indent(&k, in);
    case F_ITEMS:
        if (in.t == JV_UNDEF) return jv_list_new(c, 0);
        if (in.t != JV_DICT || in.flags & JVF_NAMESPACE) jfail(c, JINJA_RUNTIME, line, "items: a %s is not a mapping", jv_type_name(&in));
        return dict_view(c, &in, M_ITEMS);
    case F_JOIN: {
        const jv *sep = arg(&k, 0, "d"), *attr = arg(&k, 1, "attribute");
        jv s = sep ? jv_to_str(c, sep) : jv_strref("", 0);
        char *a = NULL;
        if (attr && attr->t == JV_STR) { a = jalloc(c, attr->s.n + 1); memcpy(a, attr->s.p, attr->s.n); a[attr->s.n] = 0; }
        jv items = as_list(c, in, line);
        return join(c, &items, s, a);
    }
    case F_LIST: { jv l = as_list(c, in, line); if (l.t == JV_LIST && in.t == JV_LIST) { jv copy = jv_list_new(c, l.l->n); for (size_t i = 0; i < l.l->n; i++) jv_list_push(c, copy, l.l->v[i]); return copy; } return l; }
    case F_LOWER: return case_map(c, jv_to_str(c, &in), 0);
    case F_UPPER: return case_map(c, jv_to_str(c, &in), 1);
    case F_TITLE: return case_map(c, jv_to_str(c, &in), 4);
    case F_MAP: return map_items(&k, in);
    case F_SELECT: case F_REJECT: return select_items(&k, in, false, id == F_SELECT);
    case F_SELECTATTR: case F_REJECTATTR: return select_items(&k, in, true, id == F_SELECTATTR);
    case F_REPLACE: {
        const jv *cnt = arg(&k, 2, "count");
        return replace(c, jv_to_str(c, &in), str_arg(&k, 0, "old"), str_arg(&k, 1, "new"), cnt && cnt->t == JV_INT ? cnt->i : -1);
    }
    case F_REVERSE: return reverse(c, in, line);
    case F_SAFE: case F_STRING: return jv_to_str(c, &in);
    case F_TOJSON: return tojson(&k, in);
    case F_TRIM: return strip(c, jv_to_str(c, &in), arg(&k, 0, "chars"), 3);
    case F_UNIQUE: return unique(c, in, line);
    default: jfail(c, JINJA_UNSUPPORTED, line, "unsupported filter");
    }
}
