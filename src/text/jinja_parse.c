/*
 * jinja_parse.c — tokens into a syntax tree, by jinja2's grammar: the
 * statements if/elif/else, for (with a filter, else, tuple targets), set
 * (a value, a namespace attribute, or a block), macro, break and continue;
 * expressions with jinja2's precedence (conditional, or, and, not,
 * comparisons and `in`, + -, ~, * / // %, **, unary, then postfix
 * attribute / item / slice / call, filters and `is` tests). Filters and
 * tests are looked up here, so a template that needs one we lack fails
 * when it is loaded, naming it. Nesting is bounded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jinja_internal.h"

#define MAX_NESTING 200

typedef struct parser {
    const jtoks *t;
    size_t i;
    jarena *a;
    jinja_status *st;
    rl_err *err;
    int depth;
    jmp_buf fail;
} parser;

static _Noreturn __attribute__((format(printf, 3, 4))) void pfail(parser *P, jinja_status st, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (P->st) *P->st = st;
    rl_fail(P->err, RL_ERR_INPUT, "chat template line %d: %s", P->t->v[P->i].line, msg);
    longjmp(P->fail, 1);
}

static void *palloc(parser *P, size_t n) {
    void *p = jarena_alloc(P->a, n);
    if (!p) pfail(P, JINJA_LIMIT, "the template is too large (out of memory)");
    memset(p, 0, n);
    return p;
}

static jnode *node(parser *P, int kind) {
    jnode *n = palloc(P, sizeof *n);
    n->kind = (uint8_t)kind;
    n->line = P->t->v[P->i].line;
    return n;
}

static const jtok *cur(parser *P) { return &P->t->v[P->i]; }
static const jtok *next(parser *P) { const jtok *t = cur(P); if (t->kind != TK_EOF) P->i++; return t; }
static bool is_op(parser *P, const char *op) { return cur(P)->kind == TK_OP && strcmp(cur(P)->op, op) == 0; }
static bool is_name(parser *P, const char *name) {
    const jtok *t = cur(P);
    return t->kind == TK_NAME && t->n == strlen(name) && memcmp(t->p, name, t->n) == 0;
}
static bool skip_op(parser *P, const char *op) { if (!is_op(P, op)) return false; P->i++; return true; }
static bool skip_name(parser *P, const char *name) { if (!is_name(P, name)) return false; P->i++; return true; }

static const char *describe(const jtok *t) {
    switch (t->kind) {
    case TK_NAME: return "a name";
    case TK_STRING: return "a string";
    case TK_INT: case TK_FLOAT: return "a number";
    case TK_OP: return t->op;
    case TK_VAR_END: return "'}}'";
    case TK_BLOCK_END: return "'%}'";
    case TK_EOF: return "the end of the template";
    default: return "text";
    }
}

static void expect_op(parser *P, const char *op) {
    if (!skip_op(P, op)) pfail(P, JINJA_SYNTAX, "expected '%s', found %s", op, describe(cur(P)));
}

static const char *expect_name(parser *P) {
    const jtok *t = cur(P);
    if (t->kind != TK_NAME) pfail(P, JINJA_SYNTAX, "expected a name, found %s", describe(t));
    char *s = palloc(P, t->n + 1);
    memcpy(s, t->p, t->n);
    P->i++;
    return s;
}

static void expect_kind(parser *P, int kind) {
    if (cur(P)->kind != kind)
        pfail(P, JINJA_SYNTAX, "expected %s, found %s", kind == TK_BLOCK_END ? "'%}'" : "'}}'", describe(cur(P)));
    P->i++;
}

/* A growing array of node pointers (or names), copied into the arena. */
typedef struct vec {
    const void *v[64];
    const void **heap;
    int n, cap;
} vec;

static void vec_push(parser *P, vec *v, const void *x) {
    if (v->n < 64 && !v->heap) { v->v[v->n++] = x; return; }
    if (!v->heap || v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 128;
        const void **h = palloc(P, (size_t)cap * sizeof *h);
        memcpy(h, v->heap ? v->heap : v->v, (size_t)v->n * sizeof *h);
        v->heap = h;
        v->cap = cap;
    }
    v->heap[v->n++] = x;
}

static const void **vec_done(parser *P, vec *v) {
    if (v->n == 0) return NULL;
    const void **out = palloc(P, (size_t)v->n * sizeof *out);
    memcpy(out, v->heap ? v->heap : v->v, (size_t)v->n * sizeof *out);
    return out;
}

static void enter(parser *P) {
    if (++P->depth > MAX_NESTING) pfail(P, JINJA_LIMIT, "nested more than %d levels deep", MAX_NESTING);
}

/* ---- expressions ---- */

static const jnode *parse_expr(parser *P, bool condexpr);
static const jnode *parse_unary(parser *P, bool with_filter);

/* (args) after a callee, a filter or a test: positional and name=value. */
static void parse_args(parser *P, jnode *n) {
    vec pos = {0}, kwn = {0}, kwv = {0};
    expect_op(P, "(");
    while (!is_op(P, ")")) {
        if (pos.n + kwn.n > 0) expect_op(P, ",");
        if (is_op(P, ")")) break;
        if (is_op(P, "*") || is_op(P, "**")) pfail(P, JINJA_UNSUPPORTED, "unsupported: *args / **kwargs in a call");
        if (cur(P)->kind == TK_NAME && P->t->v[P->i + 1].kind == TK_OP && strcmp(P->t->v[P->i + 1].op, "=") == 0) {
            vec_push(P, &kwn, expect_name(P));
            P->i++;
            vec_push(P, &kwv, parse_expr(P, true));
        } else {
            if (kwn.n) pfail(P, JINJA_SYNTAX, "a positional argument after a keyword argument");
            vec_push(P, &pos, parse_expr(P, true));
        }
    }
    P->i++;
    n->items = (const jnode **)vec_done(P, &pos);
    n->n_items = pos.n;
    n->names = (const char **)vec_done(P, &kwn);
    n->n_names = kwn.n;
    n->items2 = (const jnode **)vec_done(P, &kwv);
    n->n_items2 = kwv.n;
}

/* [ ... ] after a value: an index or a slice. */
static const jnode *parse_subscript(parser *P, const jnode *target) {
    jnode *n = node(P, N_ITEM);
    n->a = target;
    const jnode *parts[3] = {NULL, NULL, NULL};
    int k = 0;
    bool slice = false;
    for (;;) {
        if (is_op(P, ":")) {
            if (k >= 2) pfail(P, JINJA_SYNTAX, "too many ':' in a slice");
            slice = true;
            P->i++;
            k++;
            continue;
        }
        if (is_op(P, "]")) break;
        if (parts[k]) pfail(P, JINJA_SYNTAX, "expected ':' or ']' in a subscript");
        parts[k] = parse_expr(P, true);
    }
    P->i++;
    if (!slice) {
        if (!parts[0]) pfail(P, JINJA_SYNTAX, "an empty subscript []");
        n->b = parts[0];
        return n;
    }
    n->kind = N_SLICE;
    n->b = parts[0];
    n->c = parts[1];
    n->d = parts[2];
    return n;
}

static const jnode *parse_postfix(parser *P, const jnode *n) {
    for (;;) {
        if (skip_op(P, ".")) {
            jnode *g;
            if (cur(P)->kind == TK_INT) {
                g = node(P, N_ITEM);
                jnode *idx = node(P, N_LIT);
                idx->lit = jv_int(next(P)->i);
                g->b = idx;
            } else {
                g = node(P, N_ATTR);
                const char *name = expect_name(P);
                g->lit = jv_strref(name, strlen(name));
            }
            g->a = n;
            n = g;
        } else if (skip_op(P, "[")) {
            n = parse_subscript(P, n);
        } else if (is_op(P, "(")) {
            jnode *call = node(P, N_CALL);
            call->a = n;
            parse_args(P, call);
            n = call;
        } else {
            return n;
        }
    }
}

static const jnode *parse_filter(parser *P, const jnode *operand) {
    jnode *f = node(P, N_FILTER);
    const jtok *t = cur(P);
    const char *name = expect_name(P);
    int id = jinja_filter_id(t->p, t->n);
    if (id < 0) pfail(P, JINJA_UNSUPPORTED, "unsupported filter '%s'", name);
    f->op = (uint8_t)id;
    f->lit = jv_strref(name, strlen(name));
    f->a = operand;
    if (is_op(P, "(")) parse_args(P, f);
    return f;
}

static bool starts_primary(parser *P) {
    const jtok *t = cur(P);
    if (t->kind == TK_NAME) return !is_name(P, "else") && !is_name(P, "or") && !is_name(P, "and");
    return t->kind == TK_STRING || t->kind == TK_INT || t->kind == TK_FLOAT || is_op(P, "(") || is_op(P, "[") ||
           is_op(P, "{");
}

static const jnode *parse_primary(parser *P);

static const jnode *parse_test(parser *P, const jnode *operand) {
    jnode *t = node(P, N_TEST);
    t->flag = skip_name(P, "not");
    const jtok *tk = cur(P);
    const char *name = tk->kind == TK_NAME ? expect_name(P) : NULL;
    if (!name) {
        if (!is_op(P, "==") && !is_op(P, "!=") && !is_op(P, "<") && !is_op(P, ">") && !is_op(P, "<=") && !is_op(P, ">="))
            pfail(P, JINJA_SYNTAX, "expected a test name after 'is', found %s", describe(tk));
        name = next(P)->op;
    }
    int id = jinja_test_id(name, strlen(name));
    if (id < 0) pfail(P, JINJA_UNSUPPORTED, "unsupported test '%s'", name);
    t->op = (uint8_t)id;
    t->lit = jv_strref(name, strlen(name));
    t->a = operand;
    if (is_op(P, "(")) {
        parse_args(P, t);
    } else if (starts_primary(P)) {
        if (is_name(P, "is")) pfail(P, JINJA_SYNTAX, "cannot chain tests with 'is'");
        const jnode **arg = palloc(P, sizeof *arg);
        arg[0] = parse_postfix(P, parse_primary(P));
        t->items = arg;
        t->n_items = 1;
    }
    return t;
}

static const jnode *parse_filter_expr(parser *P, const jnode *n) {
    for (;;) {
        if (skip_op(P, "|")) n = parse_filter(P, n);
        else if (skip_name(P, "is")) n = parse_test(P, n);
        else if (is_op(P, "(")) {
            jnode *call = node(P, N_CALL);
            call->a = n;
            parse_args(P, call);
            n = call;
        } else return n;
    }
}

/* [a, b], {k: v}, (a, b) / (a) */
static const jnode *parse_collection(parser *P, const char *close, int kind) {
    jnode *n = node(P, kind);
    vec items = {0};
    bool comma = false;
    while (!is_op(P, close)) {
        if (items.n) {
            expect_op(P, ",");
            comma = true;
            if (is_op(P, close)) break;
        }
        vec_push(P, &items, parse_expr(P, true));
        if (kind == N_DICT) {
            expect_op(P, ":");
            vec_push(P, &items, parse_expr(P, true));
        }
    }
    P->i++;
    if (kind == N_TUPLE && items.n == 1 && !comma) return items.v[0];
    n->items = (const jnode **)vec_done(P, &items);
    n->n_items = items.n;
    return n;
}

static const jnode *parse_literal_name(parser *P) {
    static const struct { const char *word; uint8_t t; bool b; } words[] = {
        {"true", JV_BOOL, true}, {"True", JV_BOOL, true}, {"false", JV_BOOL, false},
        {"False", JV_BOOL, false}, {"none", JV_NONE, false}, {"None", JV_NONE, false}};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (is_name(P, words[i].word)) {
            jnode *n = node(P, N_LIT);
            n->lit.t = words[i].t;
            n->lit.b = words[i].b;
            P->i++;
            return n;
        }
    jnode *n = node(P, N_NAME);
    const char *name = expect_name(P);
    n->lit = jv_strref(name, strlen(name));
    return n;
}

static const jnode *parse_primary(parser *P) {
    const jtok *t = cur(P);
    jnode *n;
    switch (t->kind) {
    case TK_NAME: return parse_literal_name(P);
    case TK_STRING: {
        n = node(P, N_LIT);
        size_t len = 0, k = P->i;
        while (P->t->v[k].kind == TK_STRING) len += P->t->v[k++].n;
        char *s = palloc(P, len + 1);
        len = 0;
        while (cur(P)->kind == TK_STRING) {
            memcpy(s + len, cur(P)->p, cur(P)->n);
            len += next(P)->n;
        }
        n->lit = jv_strref(s, len);
        return n;
    }
    case TK_INT: n = node(P, N_LIT); n->lit = jv_int(next(P)->i); return n;
    case TK_FLOAT: n = node(P, N_LIT); n->lit = jv_float(next(P)->f); return n;
    default: break;
    }
    if (skip_op(P, "(")) return parse_collection(P, ")", N_TUPLE);
    if (skip_op(P, "[")) return parse_collection(P, "]", N_LIST);
    if (skip_op(P, "{")) return parse_collection(P, "}", N_DICT);
    pfail(P, JINJA_SYNTAX, "unexpected %s in an expression", describe(t));
}

static const jnode *parse_unary(parser *P, bool with_filter) {
    enter(P);
    const jnode *n;
    if (is_op(P, "-") || is_op(P, "+")) {
        jnode *u = node(P, is_op(P, "-") ? N_NEG : N_POS);
        P->i++;
        u->a = parse_unary(P, false);
        n = u;
    } else {
        n = parse_primary(P);
    }
    n = parse_postfix(P, n);
    if (with_filter) n = parse_filter_expr(P, n);
    P->depth--;
    return n;
}

static const jnode *binary(parser *P, int kind, int op, const jnode *a, const jnode *b) {
    jnode *n = node(P, kind);
    n->op = (uint8_t)op;
    n->a = a;
    n->b = b;
    return n;
}

static const jnode *parse_pow(parser *P) {
    const jnode *n = parse_unary(P, true);
    while (skip_op(P, "**")) n = binary(P, N_BIN, OP_POW, n, parse_unary(P, true));
    return n;
}

static const jnode *parse_math2(parser *P) {
    const jnode *n = parse_pow(P);
    for (;;) {
        int op = is_op(P, "*") ? OP_MUL : is_op(P, "/") ? OP_DIV : is_op(P, "//") ? OP_FLOORDIV : is_op(P, "%") ? OP_MOD : -1;
        if (op < 0) return n;
        P->i++;
        n = binary(P, N_BIN, op, n, parse_pow(P));
    }
}

static const jnode *parse_concat(parser *P) {
    const jnode *n = parse_math2(P);
    while (skip_op(P, "~")) n = binary(P, N_BIN, OP_CONCAT, n, parse_math2(P));
    return n;
}

static const jnode *parse_math1(parser *P) {
    const jnode *n = parse_concat(P);
    for (;;) {
        int op = is_op(P, "+") ? OP_ADD : is_op(P, "-") ? OP_SUB : -1;
        if (op < 0) return n;
        P->i++;
        n = binary(P, N_BIN, op, n, parse_concat(P));
    }
}

static int compare_op(parser *P) {
    static const char *const ops[] = {"==", "!=", "<", "<=", ">", ">="};
    static const int codes[] = {CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE};
    for (int i = 0; i < 6; i++)
        if (skip_op(P, ops[i])) return codes[i];
    if (skip_name(P, "in")) return CMP_IN;
    if (is_name(P, "not") && P->t->v[P->i + 1].kind == TK_NAME && P->t->v[P->i + 1].n == 2 &&
        memcmp(P->t->v[P->i + 1].p, "in", 2) == 0) {
        P->i += 2;
        return CMP_NOTIN;
    }
    return -1;
}

/* a < b < c is (a < b) and (b < c), as Python chains it. */
static const jnode *parse_compare(parser *P) {
    const jnode *left = parse_math1(P), *result = NULL;
    int op;
    while ((op = compare_op(P)) >= 0) {
        const jnode *right = parse_math1(P);
        const jnode *cmp = binary(P, N_CMP, op, left, right);
        result = result ? binary(P, N_AND, 0, result, cmp) : cmp;
        left = right;
    }
    return result ? result : left;
}

static const jnode *parse_not(parser *P) {
    if (!skip_name(P, "not")) return parse_compare(P);
    enter(P);
    jnode *n = node(P, N_NOT);
    n->a = parse_not(P);
    P->depth--;
    return n;
}

static const jnode *parse_and(parser *P) {
    const jnode *n = parse_not(P);
    while (skip_name(P, "and")) n = binary(P, N_AND, 0, n, parse_not(P));
    return n;
}

static const jnode *parse_or(parser *P) {
    const jnode *n = parse_and(P);
    while (skip_name(P, "or")) n = binary(P, N_OR, 0, n, parse_and(P));
    return n;
}

static const jnode *parse_expr(parser *P, bool condexpr) {
    enter(P);
    const jnode *n = parse_or(P);
    while (condexpr && skip_name(P, "if")) {
        jnode *c = node(P, N_COND);
        c->a = parse_or(P);
        c->b = n;
        c->c = skip_name(P, "else") ? parse_expr(P, true) : NULL;
        n = c;
    }
    P->depth--;
    return n;
}

/* a, b, c (without brackets) as a tuple; one expression as itself. */
static const jnode *parse_tuple(parser *P, bool condexpr) {
    const jnode *first = parse_expr(P, condexpr);
    if (!is_op(P, ",")) return first;
    jnode *t = node(P, N_TUPLE);
    vec items = {0};
    vec_push(P, &items, first);
    while (skip_op(P, ",")) {
        if (cur(P)->kind == TK_BLOCK_END || cur(P)->kind == TK_VAR_END) break;
        vec_push(P, &items, parse_expr(P, condexpr));
    }
    t->items = (const jnode **)vec_done(P, &items);
    t->n_items = items.n;
    return t;
}

/* ---- statements ---- */

static const jnode *parse_body(parser *P, const char *const *ends, const char **found);

static const char *const END_IF[] = {"endif", NULL};

static const jnode *parse_if(parser *P) {
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    jnode *n = node(P, N_IF);
    n->a = parse_tuple(P, true);
    expect_kind(P, TK_BLOCK_END);
    const char *found;
    n->b = parse_body(P, ends, &found);
    if (found == ends[0]) {
        n->c = parse_if(P);
        return n;
    }
    if (found == ends[1]) {
        expect_kind(P, TK_BLOCK_END);
        n->c = parse_body(P, END_IF, &found);
    }
    expect_kind(P, TK_BLOCK_END);
    return n;
}

static void parse_targets(parser *P, jnode *n) {
    vec names = {0};
    bool paren = skip_op(P, "(");
    do vec_push(P, &names, expect_name(P));
    while (skip_op(P, ","));
    if (paren) expect_op(P, ")");
    n->names = (const char **)vec_done(P, &names);
    n->n_names = names.n;
}

static const jnode *parse_for(parser *P) {
    static const char *const ends[] = {"endfor", "else", NULL}, *const end_for[] = {"endfor", NULL};
    jnode *n = node(P, N_FOR);
    parse_targets(P, n);
    if (!skip_name(P, "in")) pfail(P, JINJA_SYNTAX, "expected 'in' in a for loop, found %s", describe(cur(P)));
    n->a = parse_tuple(P, false);
    if (skip_name(P, "if")) n->b = parse_expr(P, true);
    if (is_name(P, "recursive")) pfail(P, JINJA_UNSUPPORTED, "unsupported: recursive for loops");
    expect_kind(P, TK_BLOCK_END);
    const char *found;
    n->c = parse_body(P, ends, &found);
    if (found == ends[1]) {
        expect_kind(P, TK_BLOCK_END);
        n->d = parse_body(P, end_for, &found);
    }
    expect_kind(P, TK_BLOCK_END);
    return n;
}

static const jnode *parse_set(parser *P) {
    static const char *const ends[] = {"endset", NULL};
    jnode *n = node(P, N_SET);
    const char *first = expect_name(P);
    if (skip_op(P, ".")) {
        const char *attr = expect_name(P);
        n->flag = true;
        n->lit = jv_strref(attr, strlen(attr));
        n->names = palloc(P, sizeof *n->names);
        n->names[0] = first;
        n->n_names = 1;
    } else {
        vec names = {0};
        vec_push(P, &names, first);
        while (skip_op(P, ",")) vec_push(P, &names, expect_name(P));
        n->names = (const char **)vec_done(P, &names);
        n->n_names = names.n;
    }
    if (skip_op(P, "=")) {
        n->a = parse_tuple(P, true);
        expect_kind(P, TK_BLOCK_END);
        return n;
    }
    if (n->flag || n->n_names != 1) pfail(P, JINJA_SYNTAX, "a block set takes one name");
    if (is_op(P, "|")) pfail(P, JINJA_UNSUPPORTED, "unsupported: a filter on a block set");
    expect_kind(P, TK_BLOCK_END);
    n->kind = N_SETBLOCK;
    const char *found;
    n->c = parse_body(P, ends, &found);
    expect_kind(P, TK_BLOCK_END);
    return n;
}

static const jnode *parse_macro(parser *P) {
    static const char *const ends[] = {"endmacro", NULL};
    jnode *n = node(P, N_MACRO);
    const char *name = expect_name(P);
    n->lit = jv_strref(name, strlen(name));
    vec params = {0}, defaults = {0};
    expect_op(P, "(");
    while (!skip_op(P, ")")) {
        if (params.n) expect_op(P, ",");
        if (skip_op(P, ")")) break;
        vec_push(P, &params, expect_name(P));
        vec_push(P, &defaults, skip_op(P, "=") ? parse_expr(P, true) : NULL);
    }
    n->names = (const char **)vec_done(P, &params);
    n->n_names = params.n;
    n->items2 = (const jnode **)vec_done(P, &defaults);
    n->n_items2 = defaults.n;
    expect_kind(P, TK_BLOCK_END);
    const char *found;
    n->c = parse_body(P, ends, &found);
    if (cur(P)->kind == TK_NAME) P->i++; /* {% endmacro name %} */
    expect_kind(P, TK_BLOCK_END);
    return n;
}

static const jnode *parse_statement(parser *P) {
    static const char *const unsupported[] = {"raw", "call", "filter", "include", "import", "from", "extends",
                                              "block", "with", "do", "autoescape", "generation", NULL};
    if (skip_name(P, "if")) return parse_if(P);
    if (skip_name(P, "for")) return parse_for(P);
    if (skip_name(P, "set")) return parse_set(P);
    if (skip_name(P, "macro")) return parse_macro(P);
    if (is_name(P, "break") || is_name(P, "continue")) {
        jnode *n = node(P, is_name(P, "break") ? N_BREAK : N_CONTINUE);
        P->i++;
        expect_kind(P, TK_BLOCK_END);
        return n;
    }
    const jtok *t = cur(P);
    if (t->kind != TK_NAME) pfail(P, JINJA_SYNTAX, "expected a statement after '{%%', found %s", describe(t));
    for (int i = 0; unsupported[i]; i++)
        if (is_name(P, unsupported[i])) pfail(P, JINJA_UNSUPPORTED, "unsupported statement '{%% %s %%}'", unsupported[i]);
    pfail(P, JINJA_SYNTAX, "unknown or misplaced statement '{%% %.*s %%}'", (int)(t->n > 40 ? 40 : t->n), t->p);
}

/* Text, {{ }} and statements up to one of `ends` ({% NAME ... %}, the
 * name consumed and returned in *found), or to the end of the template
 * when ends is NULL. */
static const jnode *parse_body(parser *P, const char *const *ends, const char **found) {
    enter(P);
    jnode *body = node(P, N_BODY);
    vec items = {0};
    for (;;) {
        const jtok *t = cur(P);
        if (t->kind == TK_EOF) {
            if (ends) {
                int k = 0;
                while (ends[k + 1] && strncmp(ends[k], "end", 3) != 0) k++;
                pfail(P, JINJA_SYNTAX, "missing '{%% %s %%}'", ends[k]);
            }
            break;
        }
        P->i++;
        if (t->kind == TK_DATA) {
            jnode *x = node(P, N_TEXT);
            x->lit = jv_strref(t->p, t->n);
            vec_push(P, &items, x);
        } else if (t->kind == TK_VAR_BEGIN) {
            jnode *x = node(P, N_PRINT);
            x->a = parse_tuple(P, true);
            expect_kind(P, TK_VAR_END);
            vec_push(P, &items, x);
        } else if (t->kind == TK_BLOCK_BEGIN) {
            for (int i = 0; ends && ends[i]; i++)
                if (skip_name(P, ends[i])) {
                    *found = ends[i];
                    goto done;
                }
            vec_push(P, &items, parse_statement(P));
        } else {
            P->i--;
            pfail(P, JINJA_SYNTAX, "unexpected %s", describe(t));
        }
    }
done:
    body->items = (const jnode **)vec_done(P, &items);
    body->n_items = items.n;
    P->depth--;
    return body;
}

const jnode *jinja_parse_tokens(const jtoks *toks, jarena *a, jinja_status *st, rl_err *err) {
    parser P = {.t = toks, .a = a, .st = st, .err = err};
    if (setjmp(P.fail)) return NULL;
    const jnode *body = parse_body(&P, NULL, NULL);
    if (cur(&P)->kind != TK_EOF) pfail(&P, JINJA_SYNTAX, "unexpected %s", describe(cur(&P)));
    return body;
}
