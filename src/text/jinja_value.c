/*
 * jinja_value.c — the interpreter's values as Python sees them: the arena
 * they live in, lists and ordered dicts, truth, equality and ordering,
 * str() and repr() (what {{ }} prints, byte for byte as Python), json.dumps
 * (the tojson filter) and the JSON reader that loads a render's variables.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

/* ---- arena ---- */
struct jarena_block {
    jarena_block *next;
    size_t used, size;
    max_align_t data[];
};

void *jarena_alloc(jarena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    if (a->used + n > a->cap || a->used + n < n) return NULL;
    jarena_block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = n > 65536 ? n : 65536;
        b = malloc(sizeof *b + size);
        if (!b) return NULL;
        b->next = a->head;
        b->used = 0;
        b->size = size;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    a->used += n;
    return p;
}

void jarena_free(jarena *a) {
    for (jarena_block *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    a->head = NULL;
    a->used = 0;
}

/* ---- Python whitespace and UTF-8 ---- */

/* The code point at p (n bytes left) and its length; invalid bytes count
 * as one byte each, code point 0xFFFD. */
static uint32_t utf8_at(const char *s, size_t n, size_t *len) {
    const unsigned char *p = (const unsigned char *)s;
    unsigned c = p[0];
    size_t l = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (l == 0 || l > n) { *len = 1; return c < 0x80 ? c : 0xfffd; }
    uint32_t cp = l == 1 ? c : l == 2 ? c & 0x1f : l == 3 ? c & 0x0f : c & 0x07;
    for (size_t i = 1; i < l; i++) {
        if ((p[i] & 0xc0) != 0x80) { *len = 1; return 0xfffd; }
        cp = cp << 6 | (p[i] & 0x3f);
    }
    *len = l;
    return cp;
}

static bool py_space(uint32_t c) {
    return (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

size_t jv_space_prefix(const char *p, size_t n) {
    size_t i = 0, l;
    while (i < n && py_space(utf8_at(p + i, n - i, &l))) i += l;
    return i;
}

size_t jv_space_suffix(const char *p, size_t n) {
    size_t end = n;
    while (end > 0) {
        size_t start = end - 1, l;
        while (start > 0 && end - start < 4 && ((unsigned char)p[start] & 0xc0) == 0x80) start--;
        uint32_t c = utf8_at(p + start, end - start, &l);
        if (start + l != end) { start = end - 1; c = (unsigned char)p[start]; }
        if (!py_space(c)) break;
        end = start;
    }
    return n - end;
}

size_t jv_utf8_len(const char *p, size_t n) {
    size_t k = 0;
    for (size_t i = 0, l; i < n; i += l, k++) utf8_at(p + i, n - i, &l);
    return k;
}

size_t jv_utf8_offset(const char *p, size_t n, size_t idx) {
    size_t i = 0, l;
    for (size_t k = 0; k < idx && i < n; k++, i += l) utf8_at(p + i, n - i, &l);
    return i;
}

/* ---- construction ---- */

jv jv_str(jctx *c, const char *p, size_t n) {
    char *o = jalloc(c, n + 1);
    if (n) memcpy(o, p, n);
    o[n] = 0;
    jcharge(c, n / 64);
    return jv_strref(o, n);
}

jv jv_list_new(jctx *c, size_t cap) {
    jv v = {.t = JV_LIST};
    v.l = jalloc(c, sizeof *v.l);
    v.l->n = 0;
    v.l->cap = cap;
    v.l->v = cap ? jalloc(c, cap * sizeof(jv)) : NULL;
    return v;
}

void jv_list_push(jctx *c, jv list, jv item) {
    jlist *l = list.l;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        jv *v = jalloc(c, cap * sizeof *v);
        if (l->n) memcpy(v, l->v, l->n * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = item;
}

jv jv_dict_new(jctx *c, size_t cap) {
    jv v = {.t = JV_DICT};
    v.d = jalloc(c, sizeof *v.d);
    v.d->n = 0;
    v.d->cap = cap;
    v.d->k = cap ? jalloc(c, cap * sizeof(jv)) : NULL;
    v.d->v = cap ? jalloc(c, cap * sizeof(jv)) : NULL;
    return v;
}

static long dict_find(jctx *c, const jdict *d, const jv *key) {
    jcharge(c, d->n / 16);
    for (size_t i = 0; i < d->n; i++)
        if (jv_equal(c, &d->k[i], key)) return (long)i;
    return -1;
}

void jv_dict_set(jctx *c, jv dict, jv key, jv val) {
    jdict *d = dict.d;
    long at = dict_find(c, d, &key);
    if (at >= 0) {
        d->v[at] = val;
        return;
    }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        jv *k = jalloc(c, cap * sizeof *k), *v = jalloc(c, cap * sizeof *v);
        if (d->n) {
            memcpy(k, d->k, d->n * sizeof *k);
            memcpy(v, d->v, d->n * sizeof *v);
        }
        d->k = k;
        d->v = v;
        d->cap = cap;
    }
    d->k[d->n] = key;
    d->v[d->n++] = val;
}

const jv *jv_dict_get(const jdict *d, const char *key, size_t n) {
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == JV_STR && d->k[i].s.n == n && memcmp(d->k[i].s.p, key, n) == 0) return &d->v[i];
    return NULL;
}

/* ---- truth, equality, order ---- */

bool jv_truthy(const jv *v) {
    switch (v->t) {
    case JV_UNDEF:
    case JV_NONE: return false;
    case JV_BOOL: return v->b;
    case JV_INT: return v->i != 0;
    case JV_FLOAT: return v->f != 0;
    case JV_STR: return v->s.n != 0;
    case JV_LIST: return v->l->n != 0;
    case JV_DICT: return v->flags & JVF_NAMESPACE ? true : v->d->n != 0;
    default: return true;
    }
}

static bool is_num(const jv *v) { return v->t == JV_INT || v->t == JV_FLOAT || v->t == JV_BOOL; }
static double num(const jv *v) { return v->t == JV_FLOAT ? v->f : v->t == JV_INT ? (double)v->i : (double)v->b; }

bool jv_equal(jctx *c, const jv *a, const jv *b) {
    if (is_num(a) && is_num(b)) {
        if (a->t != JV_FLOAT && b->t != JV_FLOAT) return (a->t == JV_INT ? a->i : a->b) == (b->t == JV_INT ? b->i : b->b);
        return num(a) == num(b);
    }
    if (a->t != b->t) return false;
    switch (a->t) {
    case JV_UNDEF:
    case JV_NONE: return true;
    case JV_STR: jcharge(c, a->s.n / 64); return a->s.n == b->s.n && memcmp(a->s.p, b->s.p, a->s.n) == 0;
    case JV_LIST:
        if (a->l->n != b->l->n) return false;
        for (size_t i = 0; i < a->l->n; i++)
            if (!jv_equal(c, &a->l->v[i], &b->l->v[i])) return false;
        return true;
    case JV_DICT:
        if (a->flags & JVF_NAMESPACE || b->flags & JVF_NAMESPACE) return a->d == b->d;
        if (a->d->n != b->d->n) return false;
        for (size_t i = 0; i < a->d->n; i++) {
            long j = dict_find(c, b->d, &a->d->k[i]);
            if (j < 0 || !jv_equal(c, &a->d->v[i], &b->d->v[j])) return false;
        }
        return true;
    case JV_MACRO: return a->macro == b->macro;
    default: return a->fn == b->fn;
    }
}

int jv_compare(jctx *c, const jv *a, const jv *b, int line) {
    if (is_num(a) && is_num(b)) {
        if (a->t == JV_INT && b->t == JV_INT) return (a->i > b->i) - (a->i < b->i);
        double x = num(a), y = num(b);
        return (x > y) - (x < y);
    }
    if (a->t == JV_STR && b->t == JV_STR) {
        size_t n = a->s.n < b->s.n ? a->s.n : b->s.n;
        jcharge(c, n / 64);
        int r = memcmp(a->s.p, b->s.p, n);
        return r ? (r > 0) - (r < 0) : (a->s.n > b->s.n) - (a->s.n < b->s.n);
    }
    if (a->t == JV_LIST && b->t == JV_LIST) {
        for (size_t i = 0; i < a->l->n && i < b->l->n; i++) {
            if (jv_equal(c, &a->l->v[i], &b->l->v[i])) continue;
            return jv_compare(c, &a->l->v[i], &b->l->v[i], line);
        }
        return (a->l->n > b->l->n) - (a->l->n < b->l->n);
    }
    jfail(c, JINJA_RUNTIME, line, "cannot order %s and %s", jv_type_name(a), jv_type_name(b));
}

const char *jv_type_name(const jv *v) {
    static const char *const names[] = {"undefined", "none", "bool", "int", "float", "str", "list", "dict",
                                        "macro", "method", "function"};
    if (v->t == JV_LIST && v->flags & JVF_TUPLE) return "tuple";
    if (v->t == JV_DICT && v->flags & JVF_NAMESPACE) return "namespace";
    return v->t < sizeof names / sizeof *names ? names[v->t] : "?";
}

/* ---- printing ---- */

void jbuf_add(jctx *c, jbuf *b, const char *p, size_t n) {
    if (b == &c->main_out && b->n + n > c->max_output)
        jfail(c, JINJA_LIMIT, 0, "the rendered prompt exceeds %zu bytes", c->max_output);
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = jalloc(c, cap);
        if (b->n) memcpy(q, b->p, b->n);
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = 0;
    jcharge(c, n / 64);
}

static void add_s(jctx *c, jbuf *b, const char *s) { jbuf_add(c, b, s, strlen(s)); }

/* Python's repr(float): the shortest digits that read back the same, in
 * fixed notation for exponents -5..15, scientific otherwise. */
static void float_repr(char *out, size_t cap, double f) {
    if (isnan(f)) { snprintf(out, cap, "nan"); return; }
    if (isinf(f)) { snprintf(out, cap, f < 0 ? "-inf" : "inf"); return; }
    char e[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f) break;
    }
    char digits[24];
    size_t nd = 0;
    const char *p = e;
    bool neg = *p == '-';
    if (neg) p++;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    size_t k = 0;
    if (neg) out[k++] = '-';
    if (exp >= 16 || exp < -4) {
        k += (size_t)snprintf(out + k, cap - k, "%c%s%s%se%c%02d", digits[0], nd > 1 ? "." : "", digits + 1, "",
                              exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        return;
    }
    if (exp < 0) {
        k += (size_t)snprintf(out + k, cap - k, "0.%0*d%s", -exp - 1, 0, digits);
        if (-exp - 1 == 0) snprintf(out + (neg ? 1 : 0), cap - (neg ? 1 : 0), "0.%s", digits);
        return;
    }
    size_t ip = (size_t)exp + 1;
    for (size_t i = 0; i < ip; i++) out[k++] = i < nd ? digits[i] : '0';
    out[k++] = '.';
    if (nd > ip) for (size_t i = ip; i < nd; i++) out[k++] = digits[i];
    else out[k++] = '0';
    out[k] = 0;
}

/* repr(str): single quotes unless the text has ' and no ". */
static void str_repr(jctx *c, jbuf *b, const char *p, size_t n) {
    bool sq = memchr(p, '\'', n) != NULL, dq = memchr(p, '"', n) != NULL;
    char q = sq && !dq ? '"' : '\'';
    jbuf_add(c, b, &q, 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        char esc[8];
        if (ch == '\\' || ch == (unsigned char)q) snprintf(esc, sizeof esc, "\\%c", ch);
        else if (ch == '\n') snprintf(esc, sizeof esc, "\\n");
        else if (ch == '\r') snprintf(esc, sizeof esc, "\\r");
        else if (ch == '\t') snprintf(esc, sizeof esc, "\\t");
        else if (ch < 0x20 || ch == 0x7f) snprintf(esc, sizeof esc, "\\x%02x", ch);
        else { jbuf_add(c, b, (const char *)&p[i], 1); continue; }
        add_s(c, b, esc);
    }
    jbuf_add(c, b, &q, 1);
}

static void repr(jctx *c, jbuf *b, const jv *v);

static void print_list(jctx *c, jbuf *b, const jv *v) {
    bool tuple = v->flags & JVF_TUPLE;
    add_s(c, b, tuple ? "(" : "[");
    for (size_t i = 0; i < v->l->n; i++) {
        if (i) add_s(c, b, ", ");
        repr(c, b, &v->l->v[i]);
    }
    add_s(c, b, tuple ? (v->l->n == 1 ? ",)" : ")") : "]");
}

static void print_dict(jctx *c, jbuf *b, const jv *v) {
    if (v->flags & JVF_NAMESPACE) add_s(c, b, "<Namespace ");
    add_s(c, b, "{");
    for (size_t i = 0; i < v->d->n; i++) {
        if (i) add_s(c, b, ", ");
        repr(c, b, &v->d->k[i]);
        add_s(c, b, ": ");
        repr(c, b, &v->d->v[i]);
    }
    add_s(c, b, v->flags & JVF_NAMESPACE ? "}>" : "}");
}

static void repr(jctx *c, jbuf *b, const jv *v) {
    jcharge(c, 1);
    if (v->t == JV_STR) str_repr(c, b, v->s.p, v->s.n);
    else jv_print(c, b, v);
}

void jv_print(jctx *c, jbuf *b, const jv *v) {
    char tmp[64];
    switch (v->t) {
    case JV_UNDEF: return;
    case JV_NONE: add_s(c, b, "None"); return;
    case JV_BOOL: add_s(c, b, v->b ? "True" : "False"); return;
    case JV_INT: snprintf(tmp, sizeof tmp, "%lld", (long long)v->i); add_s(c, b, tmp); return;
    case JV_FLOAT: float_repr(tmp, sizeof tmp, v->f); add_s(c, b, tmp); return;
    case JV_STR: jbuf_add(c, b, v->s.p, v->s.n); return;
    case JV_LIST: print_list(c, b, v); return;
    case JV_DICT: print_dict(c, b, v); return;
    case JV_MACRO: add_s(c, b, "<Macro>"); return;
    default: add_s(c, b, "<built-in function>"); return;
    }
}

jv jv_to_str(jctx *c, const jv *v) {
    if (v->t == JV_STR) return *v;
    jbuf b = {0};
    jv_print(c, &b, v);
    return jv_strref(b.p ? b.p : "", b.n);
}

/* ---- json.dumps ---- */

static void json_str(jctx *c, jbuf *b, const char *p, size_t n) {
    add_s(c, b, "\"");
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') continue;
        jbuf_add(c, b, p + run, i - run);
        run = i + 1;
        char esc[8];
        const char *named = ch == '"' ? "\\\"" : ch == '\\' ? "\\\\" : ch == '\n' ? "\\n" : ch == '\r' ? "\\r"
                          : ch == '\t' ? "\\t" : ch == '\b' ? "\\b" : ch == '\f' ? "\\f" : NULL;
        if (!named) snprintf(esc, sizeof esc, "\\u%04x", ch);
        add_s(c, b, named ? named : esc);
    }
    jbuf_add(c, b, p + run, n - run);
    add_s(c, b, "\"");
}

static void json_newline(jctx *c, jbuf *b, int indent, int level) {
    add_s(c, b, "\n");
    for (int i = 0; i < indent * level; i++) add_s(c, b, " ");
}

static void json_dict(jctx *c, jbuf *b, const jv *v, int indent, bool sort_keys, int level) {
    size_t n = v->d->n;
    if (n == 0) { add_s(c, b, "{}"); return; }
    size_t *order = jalloc(c, n * sizeof *order);
    for (size_t i = 0; i < n; i++) order[i] = i;
    for (size_t i = 1; sort_keys && i < n; i++)
        for (size_t j = i; j > 0 && jv_compare(c, &v->d->k[order[j - 1]], &v->d->k[order[j]], 0) > 0; j--) {
            size_t t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
        }
    add_s(c, b, "{");
    for (size_t k = 0; k < n; k++) {
        size_t i = order[k];
        if (k) add_s(c, b, indent >= 0 ? "," : ", ");
        if (indent >= 0) json_newline(c, b, indent, level + 1);
        const jv *key = &v->d->k[i];
        if (key->t == JV_STR) json_str(c, b, key->s.p, key->s.n);
        else { jv s = jv_to_str(c, key); json_str(c, b, s.s.p, s.s.n); }
        add_s(c, b, ": ");
        jv_tojson(c, b, &v->d->v[i], indent, sort_keys, level + 1);
    }
    if (indent >= 0) json_newline(c, b, indent, level);
    add_s(c, b, "}");
}

void jv_tojson(jctx *c, jbuf *b, const jv *v, int indent, bool sort_keys, int level) {
    jcharge(c, 1);
    if (level > 256) jfail(c, JINJA_LIMIT, 0, "tojson: nested too deeply");
    char tmp[64];
    switch (v->t) {
    case JV_NONE: add_s(c, b, "null"); return;
    case JV_BOOL: add_s(c, b, v->b ? "true" : "false"); return;
    case JV_INT: snprintf(tmp, sizeof tmp, "%lld", (long long)v->i); add_s(c, b, tmp); return;
    case JV_FLOAT:
        if (isnan(v->f)) add_s(c, b, "NaN");
        else if (isinf(v->f)) add_s(c, b, v->f < 0 ? "-Infinity" : "Infinity");
        else { float_repr(tmp, sizeof tmp, v->f); add_s(c, b, tmp); }
        return;
    case JV_STR: json_str(c, b, v->s.p, v->s.n); return;
    case JV_LIST:
        if (v->l->n == 0) { add_s(c, b, "[]"); return; }
        add_s(c, b, "[");
        for (size_t i = 0; i < v->l->n; i++) {
            if (i) add_s(c, b, indent >= 0 ? "," : ", ");
            if (indent >= 0) json_newline(c, b, indent, level + 1);
            jv_tojson(c, b, &v->l->v[i], indent, sort_keys, level + 1);
        }
        if (indent >= 0) json_newline(c, b, indent, level);
        add_s(c, b, "]");
        return;
    case JV_DICT:
        if (!(v->flags & JVF_NAMESPACE)) { json_dict(c, b, v, indent, sort_keys, level); return; }
        /* fall through */
    default: jfail(c, JINJA_RUNTIME, 0, "tojson: a %s is not JSON serializable", jv_type_name(v));
    }
}

/* ---- JSON in ---- */

typedef struct jreader {
    jctx *c;
    const char *start, *p, *end;
    int depth;
} jreader;

static _Noreturn void json_fail(jreader *r, const char *what) {
    jfail(r->c, JINJA_RUNTIME, 0, "template variables: %s at byte %zu", what, (size_t)(r->p - r->start));
}

static void json_ws(jreader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t')) r->p++;
}

static jv json_value(jreader *r);

static jv json_string(jreader *r) {
    r->p++;
    jbuf b = {0};
    jbuf_add(r->c, &b, "", 0);
    while (r->p < r->end && *r->p != '"') {
        if (*r->p != '\\') {
            const char *s = r->p;
            while (r->p < r->end && *r->p != '"' && *r->p != '\\') r->p++;
            jbuf_add(r->c, &b, s, (size_t)(r->p - s));
            continue;
        }
        if (r->end - r->p < 2) json_fail(r, "a string is cut off");
        char e = r->p[1], out[4];
        static const char in[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *k = e ? strchr(in, e) : NULL;
        r->p += 2;
        if (k) { jbuf_add(r->c, &b, &to[k - in], 1); continue; }
        if (e != 'u' || r->end - r->p < 4) json_fail(r, "a bad escape");
        unsigned cp = 0;
        for (int i = 0; i < 4; i++) {
            char h = r->p[i];
            int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (d < 0) json_fail(r, "a bad \\u escape");
            cp = cp * 16 + (unsigned)d;
        }
        r->p += 4;
        if (cp >= 0xd800 && cp < 0xdc00 && r->end - r->p >= 6 && r->p[0] == '\\' && r->p[1] == 'u') {
            unsigned lo = (unsigned)strtoul((char[5]){r->p[2], r->p[3], r->p[4], r->p[5], 0}, NULL, 16);
            if (lo >= 0xdc00 && lo < 0xe000) { cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00); r->p += 6; }
        }
        if (cp >= 0xd800 && cp < 0xe000) cp = 0xfffd;
        size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        if (n == 1) out[0] = (char)cp;
        else if (n == 2) { out[0] = (char)(0xc0 | cp >> 6); out[1] = (char)(0x80 | (cp & 63)); }
        else if (n == 3) { out[0] = (char)(0xe0 | cp >> 12); out[1] = (char)(0x80 | ((cp >> 6) & 63)); out[2] = (char)(0x80 | (cp & 63)); }
        else { out[0] = (char)(0xf0 | cp >> 18); out[1] = (char)(0x80 | ((cp >> 12) & 63)); out[2] = (char)(0x80 | ((cp >> 6) & 63)); out[3] = (char)(0x80 | (cp & 63)); }
        jbuf_add(r->c, &b, out, n);
    }
    if (r->p >= r->end) json_fail(r, "a string is never closed");
    r->p++;
    return jv_strref(b.p, b.n);
}

static jv json_number(jreader *r) {
    char buf[64];
    size_t n = 0;
    bool is_float = false;
    while (r->p < r->end && n + 1 < sizeof buf && strchr("+-0123456789.eE", *r->p)) {
        is_float |= *r->p == '.' || *r->p == 'e' || *r->p == 'E';
        buf[n++] = *r->p++;
    }
    buf[n] = 0;
    char *e;
    if (!is_float) {
        long long v = strtoll(buf, &e, 10);
        if (*e || n == 0) json_fail(r, "a bad number");
        return jv_int(v);
    }
    double f = strtod(buf, &e);
    if (*e) json_fail(r, "a bad number");
    return jv_float(f);
}

static jv json_container(jreader *r, bool object) {
    if (++r->depth > 128) json_fail(r, "nested too deeply");
    r->p++;
    jv out = object ? jv_dict_new(r->c, 0) : jv_list_new(r->c, 0);
    json_ws(r);
    char close = object ? '}' : ']';
    if (r->p < r->end && *r->p == close) { r->p++; r->depth--; return out; }
    for (;;) {
        json_ws(r);
        if (object) {
            if (r->p >= r->end || *r->p != '"') json_fail(r, "expected a key");
            jv k = json_string(r);
            json_ws(r);
            if (r->p >= r->end || *r->p != ':') json_fail(r, "expected ':'");
            r->p++;
            jv_dict_set(r->c, out, k, json_value(r));
        } else {
            jv_list_push(r->c, out, json_value(r));
        }
        json_ws(r);
        if (r->p < r->end && *r->p == ',') { r->p++; continue; }
        if (r->p < r->end && *r->p == close) { r->p++; r->depth--; return out; }
        json_fail(r, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static jv json_value(jreader *r) {
    json_ws(r);
    jcharge(r->c, 1);
    if (r->p >= r->end) json_fail(r, "unexpected end");
    char ch = *r->p;
    if (ch == '{' || ch == '[') return json_container(r, ch == '{');
    if (ch == '"') return json_string(r);
    static const struct { const char *word; uint8_t t; bool b; } words[] = {
        {"true", JV_BOOL, true}, {"false", JV_BOOL, false}, {"null", JV_NONE, false}};
    for (size_t i = 0; i < 3; i++) {
        size_t n = strlen(words[i].word);
        if ((size_t)(r->end - r->p) >= n && memcmp(r->p, words[i].word, n) == 0) {
            r->p += n;
            jv v = {.t = words[i].t};
            v.b = words[i].b;
            return v;
        }
    }
    return json_number(r);
}

jv jv_from_json(jctx *c, const char *p, size_t n) {
    jreader r = {.c = c, .start = p, .p = p, .end = p + n};
    json_ws(&r);
    if (r.p >= r.end || *r.p != '{') json_fail(&r, "not a JSON object");
    jv v = json_value(&r);
    json_ws(&r);
    if (r.p != r.end) json_fail(&r, "text after the object");
    return v;
}
