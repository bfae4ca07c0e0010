/*
 * jinja_internal.h — what the interpreter's modules share (jinja.h is the
 * public side): the arena, values, the lexer's tokens, the syntax tree and
 * the render context. jinja_lex.c turns source into tokens, jinja_parse.c
 * tokens into a tree, jinja_value.c holds values (and the JSON reader and
 * Python-style printing), jinja_eval.c walks the tree, jinja_builtins.c
 * has the filters, tests, methods and global functions.
 */
#ifndef RACKLLM_JINJA_INTERNAL_H
#define RACKLLM_JINJA_INTERNAL_H

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jinja.h"

/* ---- arena: every allocation of a parse or a render, freed at once ---- */
typedef struct jarena_block jarena_block;
typedef struct jarena {
    jarena_block *head;
    size_t used, cap; /* bytes handed out, and the bound */
} jarena;

/* NULL when the bound would be passed or malloc fails. */
void *jarena_alloc(jarena *a, size_t n);
void jarena_free(jarena *a);

/* ---- values ---- */
typedef enum jv_type {
    JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT,
    JV_MACRO,  /* a {% macro %} */
    JV_METHOD, /* a bound method: str.strip, dict.items, ... */
    JV_GLOBAL, /* a global function: raise_exception, namespace, range ... */
} jv_type;

enum { JVF_TUPLE = 1, JVF_NAMESPACE = 2 };

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jnode jnode;

typedef struct jv {
    uint8_t t, flags;
    uint16_t fn; /* JV_METHOD / JV_GLOBAL: which */
    union {
        bool b;
        int64_t i;
        double f;
        struct {
            const char *p; /* JV_STR; JV_UNDEF: the name, for messages */
            size_t n;
        } s;
        jlist *l;
        jdict *d;
        const jnode *macro;
        struct jv *self; /* JV_METHOD: the object */
    };
} jv;

struct jlist {
    size_t n, cap;
    jv *v;
};
struct jdict {
    size_t n, cap;
    jv *k, *v; /* keys in insertion order */
};

/* ---- tokens ---- */
typedef enum jtok_kind {
    TK_DATA, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN, TK_BLOCK_END,
    TK_NAME, TK_STRING, TK_INT, TK_FLOAT, TK_OP, TK_EOF,
} jtok_kind;

typedef struct jtok {
    uint8_t kind;
    char op[3]; /* TK_OP: the operator, NUL-terminated */
    int line;
    const char *p; /* TK_DATA / TK_NAME / TK_STRING (unescaped): the text */
    size_t n;
    int64_t i;
    double f;
} jtok;

typedef struct jtoks {
    jtok *v;
    size_t n, cap;
} jtoks;

/* Tokenizes (whitespace control applied to the data tokens); -1 with err. */
int jinja_lex(const char *src, size_t len, jarena *a, jtoks *out, jinja_status *st, rl_err *err);

/* ---- the tree ---- */
typedef enum jnode_kind {
    /* expressions */
    N_LIT, N_NAME, N_LIST, N_TUPLE, N_DICT, N_ATTR, N_ITEM, N_SLICE, N_CALL, N_FILTER, N_TEST,
    N_NEG, N_POS, N_NOT, N_AND, N_OR, N_BIN, N_CMP, N_COND,
    /* statements */
    N_BODY, N_TEXT, N_PRINT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_BREAK, N_CONTINUE,
} jnode_kind;

struct jnode {
    uint8_t kind;
    uint8_t op;     /* N_BIN / N_CMP: the operator; N_FILTER / N_TEST: the builtin */
    bool flag;      /* N_TEST: negated; N_SET: the target is ns.attr */
    int line;
    const jnode *a, *b, *c, *d; /* children (N_SLICE: a[b:c:d]) */
    const jnode **items; /* arguments, elements, a body */
    int n_items;
    const jnode **items2; /* keyword values, an else body, macro defaults */
    int n_items2;
    const char **names; /* keyword names, loop targets, macro parameters */
    int n_names;
    jv lit; /* N_LIT: the value; N_NAME/N_ATTR/N_FILTER/N_TEST/N_MACRO/N_SET: the name */
};

enum jbin_op { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_CONCAT };
enum jcmp_op { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE, CMP_IN, CMP_NOTIN };

/* Parses the tokens into the body of a template; NULL with err. */
const jnode *jinja_parse_tokens(const jtoks *toks, jarena *a, jinja_status *st, rl_err *err);

/* ---- rendering ---- */
typedef struct jframe jframe;

typedef struct jbuf {
    char *p;
    size_t n, cap;
} jbuf;

typedef struct jctx {
    jarena arena;
    jmp_buf fail;
    jinja_status status;
    rl_err *err;
    uint64_t steps, max_steps;
    size_t max_output;
    int depth, max_depth;
    time_t now;
    jbuf *out;      /* where output goes now (a macro call's own buffer) */
    jbuf main_out;
    jframe *frame;  /* innermost scope */
    jdict *globals; /* the caller's variables */
    int loop_ctl;   /* 1 break, 2 continue, while unwinding a loop body */
} jctx;

/* Ends the render: longjmp to jinja_render with status and message. */
_Noreturn void jfail(jctx *c, jinja_status st, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void *jalloc(jctx *c, size_t n);      /* fails the render when over the memory bound */
void jcharge(jctx *c, uint64_t steps); /* fails the render when over the step budget */

/* values (jinja_value.c) */
jv jv_str(jctx *c, const char *p, size_t n); /* copies */
static inline jv jv_strref(const char *p, size_t n) { jv v = {.t = JV_STR}; v.s.p = p; v.s.n = n; return v; }
static inline jv jv_int(int64_t i) { jv v = {.t = JV_INT}; v.i = i; return v; }
static inline jv jv_float(double f) { jv v = {.t = JV_FLOAT}; v.f = f; return v; }
static inline jv jv_bool(bool b) { jv v = {.t = JV_BOOL}; v.b = b; return v; }
static inline jv jv_none(void) { jv v = {.t = JV_NONE}; return v; }
static inline jv jv_undef(const char *name) { jv v = {.t = JV_UNDEF}; v.s.p = name; v.s.n = name ? strlen(name) : 0; return v; }
jv jv_list_new(jctx *c, size_t cap);
void jv_list_push(jctx *c, jv list, jv item);
jv jv_dict_new(jctx *c, size_t cap);
void jv_dict_set(jctx *c, jv dict, jv key, jv val);
const jv *jv_dict_get(const jdict *d, const char *key, size_t n);
bool jv_truthy(const jv *v);
bool jv_equal(jctx *c, const jv *a, const jv *b);
int jv_compare(jctx *c, const jv *a, const jv *b, int line); /* <0, 0, >0; fails on unorderable types */
const char *jv_type_name(const jv *v);
void jbuf_add(jctx *c, jbuf *b, const char *p, size_t n);
/* str(v) as Python prints it (None, True, 1.5, ['a', 1], {'k': 'v'}) */
void jv_print(jctx *c, jbuf *b, const jv *v);
jv jv_to_str(jctx *c, const jv *v);
/* json.dumps(v, ensure_ascii=False, indent=indent (<0: none), sort_keys) */
void jv_tojson(jctx *c, jbuf *b, const jv *v, int indent, bool sort_keys, int level);
/* Loads a JSON object as the globals; -1 with the render failed. */
jv jv_from_json(jctx *c, const char *p, size_t n);
/* A string's length in code points, and the byte offset of code point i. */
size_t jv_utf8_len(const char *p, size_t n);
size_t jv_utf8_offset(const char *p, size_t n, size_t i);
/* Bytes of Python whitespace (str.isspace) at the start / end of p. */
size_t jv_space_prefix(const char *p, size_t n);
size_t jv_space_suffix(const char *p, size_t n);

/* builtins (jinja_builtins.c) */
int jinja_filter_id(const char *name, size_t n); /* -1 if not supported */
int jinja_test_id(const char *name, size_t n);
jv jinja_filter(jctx *c, int id, jv in, const jv *args, int n_args, const char **kw, const jv *kwv, int n_kw, int line);
bool jinja_test(jctx *c, int id, const jv *in, const jv *args, int n_args, int line);
/* obj.name as a bound method (or an undefined value when there is none) */
jv jinja_method(jctx *c, const jv *obj, const char *name, size_t n);
jv jinja_call_builtin(jctx *c, const jv *fn, const jv *args, int n_args, const char **kw, const jv *kwv, int n_kw,
                      int line);
/* the global functions: raise_exception, strftime_now, namespace, range, dict */
jv jinja_global(const char *name, size_t n);

/* eval (jinja_eval.c) */
bool jinja_contains(jctx *c, const jv *hay, const jv *needle, int line);
jv jinja_eval(jctx *c, const jnode *n);
void jinja_exec(jctx *c, const jnode *n);
/* Calls a macro value (the filters map/select use it too). */
jv jinja_call_macro(jctx *c, const jnode *m, const jv *args, int n_args, const char **kw, const jv *kwv, int n_kw,
                    int line);

#endif
