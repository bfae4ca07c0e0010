/*
 * jinja_eval.c — rendering: walks the syntax tree with Python's semantics
 * for the values (jinja_value.c) and jinja2's for scopes (a for loop's
 * body has its own scope each iteration, so `set` inside it does not leak
 * out; `if` has none; a macro sees the template's top level), undefined
 * values (printing as nothing, false, an error when used further) and the
 * loop variable. Also the public entry points of jinja.h: parse, render,
 * free. Every step is charged to the render's budget.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

struct jframe {
    jframe *parent;
    const char **names;
    jv *vals;
    size_t n, cap;
};

struct jinja_template {
    jarena arena;
    const jnode *root;
};

_Noreturn void jfail(jctx *c, jinja_status st, int line, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->status = st;
    if (line > 0) rl_fail(c->err, RL_ERR_INPUT, "chat template line %d: %s", line, msg);
    else rl_fail(c->err, RL_ERR_INPUT, "chat template: %s", msg);
    longjmp(c->fail, 1);
}

void *jalloc(jctx *c, size_t n) {
    void *p = jarena_alloc(&c->arena, n);
    if (!p) jfail(c, JINJA_LIMIT, 0, "the render needs more than %zu bytes of memory", c->arena.cap);
    return p;
}

void jcharge(jctx *c, uint64_t steps) {
    c->steps += steps;
    if (c->steps > c->max_steps)
        jfail(c, JINJA_LIMIT, 0, "the template ran more than %llu steps", (unsigned long long)c->max_steps);
}

/* ---- scopes ---- */

static jframe *frame_new(jctx *c, jframe *parent) {
    jframe *f = jalloc(c, sizeof *f);
    memset(f, 0, sizeof *f);
    f->parent = parent;
    return f;
}

static void frame_set(jctx *c, jframe *f, const char *name, jv v) {
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0) { f->vals[i] = v; return; }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        const char **names = jalloc(c, cap * sizeof *names);
        jv *vals = jalloc(c, cap * sizeof *vals);
        if (f->n) {
            memcpy(names, f->names, f->n * sizeof *names);
            memcpy(vals, f->vals, f->n * sizeof *vals);
        }
        f->names = names;
        f->vals = vals;
        f->cap = cap;
    }
    f->names[f->n] = name;
    f->vals[f->n++] = v;
}

static jv lookup(jctx *c, const char *name, size_t len) {
    for (jframe *f = c->frame; f; f = f->parent) {
        jcharge(c, f->n / 8);
        for (size_t i = f->n; i-- > 0;)
            if (strlen(f->names[i]) == len && memcmp(f->names[i], name, len) == 0) return f->vals[i];
    }
    const jv *g = jv_dict_get(c->globals, name, len);
    if (g) return *g;
    jv b = jinja_global(name, len);
    return b.t == JV_UNDEF ? jv_undef(name) : b;
}

static jframe *root_frame(jctx *c) {
    jframe *f = c->frame;
    while (f->parent) f = f->parent;
    return f;
}

/* ---- expressions ---- */

static _Noreturn void undefined_use(jctx *c, const jv *v, int line) {
    jfail(c, JINJA_RUNTIME, line, "'%.*s' is undefined", (int)(v->s.n > 60 ? 60 : v->s.n), v->s.p ? v->s.p : "");
}

static jv get_attr(jctx *c, const jv *obj, const char *name, size_t n, int line) {
    if (obj->t == JV_UNDEF) undefined_use(c, obj, line);
    if (obj->t == JV_DICT) {
        if (!(obj->flags & JVF_NAMESPACE)) {
            jv m = jinja_method(c, obj, name, n);
            if (m.t != JV_UNDEF) return m;
        }
        const jv *v = jv_dict_get(obj->d, name, n);
        return v ? *v : jv_undef(name);
    }
    jv m = jinja_method(c, obj, name, n);
    return m.t != JV_UNDEF ? m : jv_undef(name);
}

static bool index_of(const jv *key, size_t len, size_t *out) {
    if (key->t != JV_INT && key->t != JV_BOOL) return false;
    int64_t i = key->t == JV_INT ? key->i : key->b;
    if (i < 0) i += (int64_t)len;
    if (i < 0 || (uint64_t)i >= len) return false;
    *out = (size_t)i;
    return true;
}

static jv get_item(jctx *c, const jv *obj, const jv *key, int line) {
    size_t i;
    switch (obj->t) {
    case JV_UNDEF: undefined_use(c, obj, line);
    case JV_DICT:
        for (size_t k = 0; k < obj->d->n; k++)
            if (jv_equal(c, &obj->d->k[k], key)) return obj->d->v[k];
        if (key->t == JV_STR && !(obj->flags & JVF_NAMESPACE)) return jinja_method(c, obj, key->s.p, key->s.n);
        return jv_undef("item");
    case JV_LIST: return index_of(key, obj->l->n, &i) ? obj->l->v[i] : jv_undef("item");
    case JV_STR: {
        size_t len = jv_utf8_len(obj->s.p, obj->s.n);
        jcharge(c, obj->s.n / 64);
        if (!index_of(key, len, &i)) return key->t == JV_STR ? jinja_method(c, obj, key->s.p, key->s.n) : jv_undef("item");
        size_t a = jv_utf8_offset(obj->s.p, obj->s.n, i), b = jv_utf8_offset(obj->s.p, obj->s.n, i + 1);
        return jv_strref(obj->s.p + a, b - a);
    }
    default:
        if (key->t == JV_STR) return jinja_method(c, obj, key->s.p, key->s.n);
        return jv_undef("item");
    }
}

static int64_t slice_bound(jctx *c, const jnode *n, int64_t dflt, int64_t len, int64_t step, int line) {
    if (!n) return dflt;
    jv v = jinja_eval(c, n);
    if (v.t == JV_NONE) return dflt;
    if (v.t != JV_INT && v.t != JV_BOOL) jfail(c, JINJA_RUNTIME, line, "slice indices must be integers");
    int64_t i = v.t == JV_INT ? v.i : v.b;
    if (i < 0) i += len;
    int64_t lo = step < 0 ? -1 : 0, hi = step < 0 ? len - 1 : len;
    return i < lo ? lo : i > hi ? hi : i;
}

static jv eval_slice(jctx *c, const jnode *n) {
    jv obj = jinja_eval(c, n->a);
    if (obj.t != JV_LIST && obj.t != JV_STR) jfail(c, JINJA_RUNTIME, n->line, "cannot slice a %s", jv_type_name(&obj));
    bool is_str = obj.t == JV_STR;
    int64_t len = is_str ? (int64_t)jv_utf8_len(obj.s.p, obj.s.n) : (int64_t)obj.l->n, step = 1;
    if (n->d) {
        jv s = jinja_eval(c, n->d);
        if (s.t == JV_INT) step = s.i;
        else if (s.t != JV_NONE) jfail(c, JINJA_RUNTIME, n->line, "slice step must be an integer");
        if (step == 0) jfail(c, JINJA_RUNTIME, n->line, "slice step cannot be zero");
    }
    int64_t start = slice_bound(c, n->b, step < 0 ? len - 1 : 0, len, step, n->line);
    int64_t stop = slice_bound(c, n->c, step < 0 ? -1 : len, len, step, n->line);
    jv out = is_str ? (jv){.t = JV_STR} : jv_list_new(c, 0);
    jbuf b = {0};
    size_t *offs = NULL;
    if (is_str) {
        offs = jalloc(c, ((size_t)len + 1) * sizeof *offs);
        for (int64_t i = 0, at = 0; i <= len; i++) offs[i] = (size_t)(at = (int64_t)jv_utf8_offset(obj.s.p + at, obj.s.n - (size_t)at, i ? 1 : 0) + at);
        jbuf_add(c, &b, "", 0);
    }
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        jcharge(c, 1);
        if (is_str) jbuf_add(c, &b, obj.s.p + offs[i], offs[i + 1] - offs[i]);
        else jv_list_push(c, out, obj.l->v[i]);
    }
    return is_str ? jv_strref(b.p, b.n) : out;
}

/* Evaluates positional and keyword arguments of a call, filter or test. */
typedef struct jargs {
    jv *v, *kwv;
    int n, n_kw;
    const char **kw;
} jargs;

static jargs eval_args(jctx *c, const jnode *n) {
    jargs a = {.n = n->n_items, .n_kw = n->n_names, .kw = n->names};
    a.v = a.n ? jalloc(c, (size_t)a.n * sizeof(jv)) : NULL;
    a.kwv = a.n_kw ? jalloc(c, (size_t)a.n_kw * sizeof(jv)) : NULL;
    for (int i = 0; i < a.n; i++) a.v[i] = jinja_eval(c, n->items[i]);
    for (int i = 0; i < a.n_kw; i++) a.kwv[i] = jinja_eval(c, n->items2[i]);
    return a;
}

static jv eval_call(jctx *c, const jnode *n) {
    jv fn = jinja_eval(c, n->a);
    jargs a = eval_args(c, n);
    if (fn.t == JV_MACRO) return jinja_call_macro(c, fn.macro, a.v, a.n, a.kw, a.kwv, a.n_kw, n->line);
    if (fn.t == JV_METHOD || fn.t == JV_GLOBAL) return jinja_call_builtin(c, &fn, a.v, a.n, a.kw, a.kwv, a.n_kw, n->line);
    if (fn.t == JV_UNDEF) undefined_use(c, &fn, n->line);
    jfail(c, JINJA_RUNTIME, n->line, "a %s is not callable", jv_type_name(&fn));
}

/* ---- operators ---- */

static bool is_number(const jv *v) { return v->t == JV_INT || v->t == JV_FLOAT || v->t == JV_BOOL; }
static int64_t as_int(const jv *v) { return v->t == JV_INT ? v->i : v->b; }
static double as_double(const jv *v) { return v->t == JV_FLOAT ? v->f : (double)as_int(v); }

static jv repeat(jctx *c, const jv *seq, int64_t times, int line) {
    if (times < 0) times = 0;
    size_t unit = seq->t == JV_STR ? seq->s.n : seq->l->n;
    if (unit && (uint64_t)times > c->arena.cap / unit) jfail(c, JINJA_LIMIT, line, "a repeated sequence is too long");
    jcharge(c, (uint64_t)times);
    if (seq->t == JV_LIST) {
        jv l = jv_list_new(c, unit * (size_t)times);
        for (int64_t k = 0; k < times; k++)
            for (size_t i = 0; i < unit; i++) jv_list_push(c, l, seq->l->v[i]);
        return l;
    }
    jbuf b = {0};
    jbuf_add(c, &b, "", 0);
    for (int64_t k = 0; k < times; k++) jbuf_add(c, &b, seq->s.p, unit);
    return jv_strref(b.p, b.n);
}

static jv add(jctx *c, const jv *x, const jv *y, int line) {
    if (x->t == JV_STR && y->t == JV_STR) {
        jbuf b = {0};
        jbuf_add(c, &b, x->s.p, x->s.n);
        jbuf_add(c, &b, y->s.p, y->s.n);
        return jv_strref(b.p, b.n);
    }
    if (x->t == JV_LIST && y->t == JV_LIST) {
        jv l = jv_list_new(c, x->l->n + y->l->n);
        for (size_t i = 0; i < x->l->n; i++) jv_list_push(c, l, x->l->v[i]);
        for (size_t i = 0; i < y->l->n; i++) jv_list_push(c, l, y->l->v[i]);
        l.flags = x->flags & y->flags & JVF_TUPLE;
        return l;
    }
    jfail(c, JINJA_RUNTIME, line, "cannot add %s and %s", jv_type_name(x), jv_type_name(y));
}

static jv int_arith(jctx *c, int op, int64_t a, int64_t b, int line) {
    int64_t r = 0;
    bool over = false;
    switch (op) {
    case OP_ADD: over = __builtin_add_overflow(a, b, &r); break;
    case OP_SUB: over = __builtin_sub_overflow(a, b, &r); break;
    case OP_MUL: over = __builtin_mul_overflow(a, b, &r); break;
    case OP_FLOORDIV:
    case OP_MOD:
        if (b == 0) jfail(c, JINJA_RUNTIME, line, "integer division or modulo by zero");
        if (a == INT64_MIN && b == -1) { over = true; break; }
        r = op == OP_MOD ? a % b : a / b;
        if (op == OP_MOD && r != 0 && ((r < 0) != (b < 0))) r += b;
        if (op == OP_FLOORDIV && (a % b != 0) && ((a < 0) != (b < 0))) r -= 1;
        break;
    case OP_POW:
        if (b < 0) return jv_float(pow((double)a, (double)b));
        r = 1;
        for (int64_t k = 0; k < b && !over; k++) {
            over = __builtin_mul_overflow(r, a, &r);
            jcharge(c, 1);
        }
        break;
    }
    if (over) jfail(c, JINJA_RUNTIME, line, "integer overflow (beyond 64 bits)");
    return jv_int(r);
}

static jv float_arith(jctx *c, int op, double a, double b, int line) {
    if ((op == OP_DIV || op == OP_FLOORDIV || op == OP_MOD) && b == 0) jfail(c, JINJA_RUNTIME, line, "float division by zero");
    switch (op) {
    case OP_ADD: return jv_float(a + b);
    case OP_SUB: return jv_float(a - b);
    case OP_MUL: return jv_float(a * b);
    case OP_DIV: return jv_float(a / b);
    case OP_FLOORDIV: return jv_float(floor(a / b));
    case OP_MOD: { double m = fmod(a, b); if (m != 0 && ((m < 0) != (b < 0))) m += b; return jv_float(m); }
    default: return jv_float(pow(a, b));
    }
}

static jv eval_bin(jctx *c, const jnode *n) {
    jv x = jinja_eval(c, n->a), y = jinja_eval(c, n->b);
    if (n->op == OP_CONCAT) {
        jv a = jv_to_str(c, &x), b = jv_to_str(c, &y);
        return add(c, &a, &b, n->line);
    }
    if (x.t == JV_UNDEF) undefined_use(c, &x, n->line);
    if (y.t == JV_UNDEF) undefined_use(c, &y, n->line);
    if (is_number(&x) && is_number(&y)) {
        if (x.t != JV_FLOAT && y.t != JV_FLOAT && n->op != OP_DIV) return int_arith(c, n->op, as_int(&x), as_int(&y), n->line);
        return float_arith(c, n->op, as_double(&x), as_double(&y), n->line);
    }
    if (n->op == OP_ADD) return add(c, &x, &y, n->line);
    if (n->op == OP_MUL && (x.t == JV_STR || x.t == JV_LIST) && (y.t == JV_INT || y.t == JV_BOOL)) return repeat(c, &x, as_int(&y), n->line);
    if (n->op == OP_MUL && (y.t == JV_STR || y.t == JV_LIST) && (x.t == JV_INT || x.t == JV_BOOL)) return repeat(c, &y, as_int(&x), n->line);
    if (n->op == OP_MOD && x.t == JV_STR) jfail(c, JINJA_UNSUPPORTED, n->line, "unsupported: '%%' string formatting");
    jfail(c, JINJA_RUNTIME, n->line, "unsupported operand types %s and %s", jv_type_name(&x), jv_type_name(&y));
}

/* `needle in hay`, as Python's __contains__ (an undefined hay is empty). */
bool jinja_contains(jctx *c, const jv *hay, const jv *needle, int line) {
    switch (hay->t) {
    case JV_UNDEF: return false;
    case JV_STR:
        if (needle->t != JV_STR) jfail(c, JINJA_RUNTIME, line, "'in <string>' needs a string, not %s", jv_type_name(needle));
        jcharge(c, hay->s.n / 16);
        return needle->s.n == 0 || memmem(hay->s.p, hay->s.n, needle->s.p, needle->s.n) != NULL;
    case JV_LIST:
        for (size_t i = 0; i < hay->l->n; i++)
            if (jv_equal(c, &hay->l->v[i], needle)) return true;
        return false;
    case JV_DICT:
        for (size_t i = 0; i < hay->d->n; i++)
            if (jv_equal(c, &hay->d->k[i], needle)) return true;
        return false;
    default: jfail(c, JINJA_RUNTIME, line, "a %s is not a container", jv_type_name(hay));
    }
}

static jv eval_cmp(jctx *c, const jnode *n) {
    jv x = jinja_eval(c, n->a), y = jinja_eval(c, n->b);
    switch (n->op) {
    case CMP_EQ: return jv_bool(jv_equal(c, &x, &y));
    case CMP_NE: return jv_bool(!jv_equal(c, &x, &y));
    case CMP_IN: return jv_bool(jinja_contains(c, &y, &x, n->line));
    case CMP_NOTIN: return jv_bool(!jinja_contains(c, &y, &x, n->line));
    default: break;
    }
    if (x.t == JV_UNDEF) undefined_use(c, &x, n->line);
    if (y.t == JV_UNDEF) undefined_use(c, &y, n->line);
    int r = jv_compare(c, &x, &y, n->line);
    return jv_bool(n->op == CMP_LT ? r < 0 : n->op == CMP_LE ? r <= 0 : n->op == CMP_GT ? r > 0 : r >= 0);
}

static jv eval_op(jctx *c, const jnode *n) {
    switch (n->kind) {
    case N_NOT: { jv v = jinja_eval(c, n->a); return jv_bool(!jv_truthy(&v)); }
    case N_AND: { jv v = jinja_eval(c, n->a); return jv_truthy(&v) ? jinja_eval(c, n->b) : v; }
    case N_OR: { jv v = jinja_eval(c, n->a); return jv_truthy(&v) ? v : jinja_eval(c, n->b); }
    case N_COND: {
        jv cond = jinja_eval(c, n->a);
        if (jv_truthy(&cond)) return jinja_eval(c, n->b);
        return n->c ? jinja_eval(c, n->c) : jv_undef("conditional");
    }
    case N_NEG:
    case N_POS: {
        jv v = jinja_eval(c, n->a);
        if (!is_number(&v)) jfail(c, JINJA_RUNTIME, n->line, "bad operand type for unary %c: %s", n->kind == N_NEG ? '-' : '+', jv_type_name(&v));
        if (n->kind == N_POS) return v.t == JV_BOOL ? jv_int(v.b) : v;
        if (v.t == JV_FLOAT) return jv_float(-v.f);
        if (as_int(&v) == INT64_MIN) jfail(c, JINJA_RUNTIME, n->line, "integer overflow (beyond 64 bits)");
        return jv_int(-as_int(&v));
    }
    case N_BIN: return eval_bin(c, n);
    case N_CMP: return eval_cmp(c, n);
    default: jfail(c, JINJA_RUNTIME, n->line, "a statement where an expression belongs");
    }
}

jv jinja_eval(jctx *c, const jnode *n) {
    jcharge(c, 1);
    switch (n->kind) {
    case N_LIT: return n->lit;
    case N_NAME: return lookup(c, n->lit.s.p, n->lit.s.n);
    case N_LIST:
    case N_TUPLE: {
        jv l = jv_list_new(c, (size_t)n->n_items);
        if (n->kind == N_TUPLE) l.flags |= JVF_TUPLE;
        for (int i = 0; i < n->n_items; i++) jv_list_push(c, l, jinja_eval(c, n->items[i]));
        return l;
    }
    case N_DICT: {
        jv d = jv_dict_new(c, (size_t)n->n_items / 2);
        for (int i = 0; i + 1 < n->n_items; i += 2) jv_dict_set(c, d, jinja_eval(c, n->items[i]), jinja_eval(c, n->items[i + 1]));
        return d;
    }
    case N_ATTR: { jv o = jinja_eval(c, n->a); return get_attr(c, &o, n->lit.s.p, n->lit.s.n, n->line); }
    case N_ITEM: { jv o = jinja_eval(c, n->a), k = jinja_eval(c, n->b); return get_item(c, &o, &k, n->line); }
    case N_SLICE: return eval_slice(c, n);
    case N_CALL: return eval_call(c, n);
    case N_FILTER: {
        jv in = jinja_eval(c, n->a);
        jargs a = eval_args(c, n);
        return jinja_filter(c, n->op, in, a.v, a.n, a.kw, a.kwv, a.n_kw, n->line);
    }
    case N_TEST: {
        jv in = jinja_eval(c, n->a);
        jargs a = eval_args(c, n);
        return jv_bool(jinja_test(c, n->op, &in, a.v, a.n, n->line) != n->flag);
    }
    default: return eval_op(c, n);
    }
}

/* ---- statements ---- */

static void assign(jctx *c, const jnode *n, jv v) {
    if (n->flag) {
        jv ns = lookup(c, n->names[0], strlen(n->names[0]));
        if (ns.t != JV_DICT || !(ns.flags & JVF_NAMESPACE))
            jfail(c, JINJA_RUNTIME, n->line, "cannot assign attribute on non-namespace object '%s'", n->names[0]);
        jv_dict_set(c, ns, n->lit, v);
        return;
    }
    if (n->n_names == 1) { frame_set(c, c->frame, n->names[0], v); return; }
    if (v.t != JV_LIST || v.l->n != (size_t)n->n_names)
        jfail(c, JINJA_RUNTIME, n->line, "cannot unpack a %s into %d names", jv_type_name(&v), n->n_names);
    for (int i = 0; i < n->n_names; i++) frame_set(c, c->frame, n->names[i], v.l->v[i]);
}

static void bind_targets(jctx *c, const jnode *n, jv item) {
    if (n->n_names == 1) { frame_set(c, c->frame, n->names[0], item); return; }
    if (item.t != JV_LIST || item.l->n != (size_t)n->n_names)
        jfail(c, JINJA_RUNTIME, n->line, "cannot unpack a %s into %d loop variables", jv_type_name(&item), n->n_names);
    for (int i = 0; i < n->n_names; i++) frame_set(c, c->frame, n->names[i], item.l->v[i]);
}

/* What a for loop walks: a list's items, a dict's keys, a string's
 * characters; nothing for an undefined value. */
static jv iterable(jctx *c, jv v, int line) {
    if (v.t == JV_LIST) return v;
    if (v.t == JV_UNDEF) return jv_list_new(c, 0);
    if (v.t == JV_DICT && !(v.flags & JVF_NAMESPACE)) {
        jv l = jv_list_new(c, v.d->n);
        for (size_t i = 0; i < v.d->n; i++) jv_list_push(c, l, v.d->k[i]);
        return l;
    }
    if (v.t == JV_STR) {
        jv l = jv_list_new(c, v.s.n);
        for (size_t i = 0; i < v.s.n;) {
            size_t k = jv_utf8_offset(v.s.p + i, v.s.n - i, 1);
            jv_list_push(c, l, jv_strref(v.s.p + i, k));
            i += k;
        }
        return l;
    }
    jfail(c, JINJA_RUNTIME, line, "a %s is not iterable", jv_type_name(&v));
}

static void set_loop(jctx *c, jv loop, const jv *items, size_t i, size_t n) {
    jv *v = loop.d->v;
    v[0] = jv_int((int64_t)i + 1);
    v[1] = jv_int((int64_t)i);
    v[2] = jv_bool(i == 0);
    v[3] = jv_bool(i + 1 == n);
    v[4] = jv_int((int64_t)n);
    v[5] = jv_int((int64_t)(n - i));
    v[6] = jv_int((int64_t)(n - i - 1));
    v[7] = i > 0 ? items[i - 1] : jv_undef("loop.previtem");
    v[8] = i + 1 < n ? items[i + 1] : jv_undef("loop.nextitem");
    (void)c;
}

static jv loop_object(jctx *c) {
    static const char *const keys[] = {"index", "index0", "first", "last", "length", "revindex", "revindex0",
                                       "previtem", "nextitem"};
    jv loop = jv_dict_new(c, 9);
    for (int i = 0; i < 9; i++) jv_dict_set(c, loop, jv_strref(keys[i], strlen(keys[i])), jv_none());
    return loop;
}

static void exec_for(jctx *c, const jnode *n) {
    jv all = iterable(c, jinja_eval(c, n->a), n->line);
    jframe *outer = c->frame, *f = frame_new(c, outer);
    c->frame = f;
    jv items = all;
    if (n->b) { /* the loop's filter, before loop.length is known */
        items = jv_list_new(c, all.l->n);
        for (size_t i = 0; i < all.l->n; i++) {
            f->n = 0;
            bind_targets(c, n, all.l->v[i]);
            jv keep = jinja_eval(c, n->b);
            if (jv_truthy(&keep)) jv_list_push(c, items, all.l->v[i]);
        }
    }
    jv loop = loop_object(c);
    size_t count = items.l->n;
    for (size_t i = 0; i < count; i++) {
        jcharge(c, 1);
        f->n = 0;
        bind_targets(c, n, items.l->v[i]);
        set_loop(c, loop, items.l->v, i, count);
        frame_set(c, f, "loop", loop);
        jinja_exec(c, n->c);
        int ctl = c->loop_ctl;
        c->loop_ctl = 0;
        if (ctl == 1) break;
    }
    c->frame = outer;
    if (count == 0 && n->d) jinja_exec(c, n->d);
}

static jbuf *capture_begin(jctx *c, jbuf *b) {
    jbuf *saved = c->out;
    memset(b, 0, sizeof *b);
    jbuf_add(c, b, "", 0);
    c->out = b;
    return saved;
}

jv jinja_call_macro(jctx *c, const jnode *m, const jv *args, int n_args, const char **kw, const jv *kwv, int n_kw,
                    int line) {
    if (n_args > m->n_names)
        jfail(c, JINJA_RUNTIME, line, "macro '%s' takes not more than %d argument(s)", m->lit.s.p, m->n_names);
    if (++c->depth > c->max_depth) jfail(c, JINJA_LIMIT, line, "macro calls nested more than %d deep", c->max_depth);
    jframe *saved_frame = c->frame;
    jframe *f = frame_new(c, root_frame(c));
    c->frame = f;
    for (int i = 0; i < m->n_names; i++) {
        jv v = i < n_args ? args[i] : m->items2[i] ? jinja_eval(c, m->items2[i]) : jv_undef(m->names[i]);
        for (int k = 0; k < n_kw; k++)
            if (strcmp(kw[k], m->names[i]) == 0) v = kwv[k];
        frame_set(c, f, m->names[i], v);
    }
    for (int k = 0; k < n_kw; k++) {
        bool known = false;
        for (int i = 0; i < m->n_names; i++) known |= strcmp(kw[k], m->names[i]) == 0;
        if (!known) jfail(c, JINJA_RUNTIME, line, "macro '%s' takes no keyword argument '%s'", m->lit.s.p, kw[k]);
    }
    jbuf b;
    jbuf *saved_out = capture_begin(c, &b);
    jinja_exec(c, m->c);
    c->loop_ctl = 0;
    c->out = saved_out;
    c->frame = saved_frame;
    c->depth--;
    return jv_strref(b.p, b.n);
}

void jinja_exec(jctx *c, const jnode *n) {
    jcharge(c, 1);
    switch (n->kind) {
    case N_BODY:
        for (int i = 0; i < n->n_items && !c->loop_ctl; i++) jinja_exec(c, n->items[i]);
        return;
    case N_TEXT: jbuf_add(c, c->out, n->lit.s.p, n->lit.s.n); return;
    case N_PRINT: { jv v = jinja_eval(c, n->a); jv_print(c, c->out, &v); return; }
    case N_IF: {
        jv cond = jinja_eval(c, n->a);
        if (jv_truthy(&cond)) jinja_exec(c, n->b);
        else if (n->c) jinja_exec(c, n->c);
        return;
    }
    case N_FOR: exec_for(c, n); return;
    case N_SET: assign(c, n, jinja_eval(c, n->a)); return;
    case N_SETBLOCK: {
        jbuf b;
        jbuf *saved = capture_begin(c, &b);
        jinja_exec(c, n->c);
        c->out = saved;
        assign(c, n, jv_strref(b.p, b.n));
        return;
    }
    case N_MACRO: {
        jv m = {.t = JV_MACRO};
        m.macro = n;
        frame_set(c, c->frame, n->lit.s.p, m);
        return;
    }
    case N_BREAK: c->loop_ctl = 1; return;
    case N_CONTINUE: c->loop_ctl = 2; return;
    default: { jv v = jinja_eval(c, n); (void)v; return; }
    }
}

/* ---- jinja.h ---- */

jinja_template *jinja_parse(const char *src, size_t len, jinja_status *status, rl_err *err) {
    jinja_status st_local = JINJA_OK;
    jinja_status *st = status ? status : &st_local;
    *st = JINJA_OK;
    if (len > (8u << 20)) {
        *st = JINJA_LIMIT;
        rl_fail(err, RL_ERR_INPUT, "chat template: %zu bytes is more than the 8 MiB allowed", len);
        return NULL;
    }
    jinja_template *t = calloc(1, sizeof *t);
    if (!t) { rl_fail(err, RL_ERR_INTERNAL, "out of memory"); return NULL; }
    t->arena.cap = (1u << 20) + len * 256;
    jtoks toks = {0};
    if (jinja_lex(src, len, &t->arena, &toks, st, err) == 0) t->root = jinja_parse_tokens(&toks, &t->arena, st, err);
    if (!t->root) {
        jinja_free(t);
        return NULL;
    }
    return t;
}

void jinja_free(jinja_template *t) {
    if (!t) return;
    jarena_free(&t->arena);
    free(t);
}

char *jinja_render(const jinja_template *t, const char *vars_json, size_t vars_len, const jinja_limits *limits,
                   size_t *out_len, jinja_status *status, rl_err *err) {
    jinja_limits lim = limits ? *limits : (jinja_limits){0};
    jctx *volatile c = calloc(1, sizeof *c);
    if (!c) { rl_fail(err, RL_ERR_INTERNAL, "out of memory"); return NULL; }
    c->err = err;
    c->max_steps = lim.max_steps ? lim.max_steps : 20000000;
    c->max_output = lim.max_output ? lim.max_output : (16u << 20);
    c->arena.cap = lim.max_memory ? lim.max_memory : (128u << 20);
    c->max_depth = lim.max_depth > 0 ? lim.max_depth : 32;
    c->now = lim.now ? lim.now : time(NULL);
    char *volatile result = NULL;
    if (setjmp(c->fail) == 0) {
        jv vars = jv_from_json(c, vars_json, vars_len);
        c->globals = vars.d;
        c->frame = frame_new(c, NULL);
        c->out = &c->main_out;
        jbuf_add(c, c->out, "", 0);
        jinja_exec(c, t->root);
        result = malloc(c->main_out.n + 1);
        if (result) {
            memcpy(result, c->main_out.p, c->main_out.n + 1);
            if (out_len) *out_len = c->main_out.n;
        } else {
            rl_fail(err, RL_ERR_INTERNAL, "out of memory");
            c->status = JINJA_LIMIT;
        }
    }
    if (status) *status = result ? JINJA_OK : c->status;
    jarena_free(&c->arena);
    free(c);
    return result;
}
