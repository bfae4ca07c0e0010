/*
 * jinja_lex.c — a chat template's source into tokens, as jinja2's lexer
 * does it with trim_blocks and lstrip_blocks on: the source's line ends
 * are normalised (and a final one dropped, keep_trailing_newline off),
 * text between tags becomes TK_DATA with the whitespace control of the
 * tags around it applied ({%- -%}, {{- -}}, {#- -#}, {%+ +%}), comments
 * vanish, and the inside of {{ }} and {% %} becomes names, literals and
 * operators. String literals are unescaped here, as Python's
 * unicode-escape codec does.
 */
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

typedef struct lexer {
    const char *s;
    size_t n, pos;
    int line;
    jarena *a;
    jtoks *out;
    jinja_status *st;
    rl_err *err;
    bool line_starting;
} lexer;

static int lex_fail(lexer *L, const char *fmt, const char *what) {
    if (L->st) *L->st = JINJA_SYNTAX;
    rl_fail(L->err, RL_ERR_INPUT, "chat template line %d: %s%s", L->line, fmt, what ? what : "");
    return -1;
}

static jtok *push(lexer *L, int kind) {
    jtoks *t = L->out;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        jtok *v = jarena_alloc(L->a, cap * sizeof *v);
        if (!v) return NULL;
        if (t->n) memcpy(v, t->v, t->n * sizeof *v);
        t->v = v;
        t->cap = cap;
    }
    jtok *k = &t->v[t->n++];
    memset(k, 0, sizeof *k);
    k->kind = (uint8_t)kind;
    k->line = L->line;
    return k;
}

/* Python's str.splitlines() then "\n".join: every line end becomes "\n"
 * (\r\n, \r, \v, \f, \x1c-\x1e, U+0085, U+2028, U+2029), and a final one
 * is dropped. */
static char *normalise(jarena *a, const char *s, size_t n, size_t *out_n) {
    char *o = jarena_alloc(a, n + 1);
    if (!o) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t skip = 0;
        if (c == '\r') skip = i + 1 < n && s[i + 1] == '\n' ? 1 : 0;
        else if (c == '\n' || c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1e)) skip = 0;
        else if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] == 0x85) skip = 1;
        else if (c == 0xe2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
                 ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9)) skip = 2;
        else {
            o[k++] = (char)c;
            continue;
        }
        o[k++] = '\n';
        i += skip;
    }
    if (k > 0 && o[k - 1] == '\n') k--;
    o[k] = 0;
    *out_n = k;
    return o;
}

static void count_lines(lexer *L, size_t from, size_t to) {
    for (size_t i = from; i < to; i++) L->line += L->s[i] == '\n';
}

/* The text before a tag, with the tag's left-side whitespace control. */
static int emit_data(lexer *L, size_t start, size_t end, char kind, char sign) {
    const char *p = L->s + start;
    size_t n = end - start;
    if (sign == '-') {
        n -= jv_space_suffix(p, n);
    } else if (sign != '+' && kind != '{') {
        size_t l = n;
        while (l > 0 && p[l - 1] != '\n') l--;
        if (l > 0 || L->line_starting) {
            size_t ws = jv_space_prefix(p + l, n - l);
            if (ws == n - l && ws > 0 && !memchr(p + l, '\n', ws)) n = l;
        }
    }
    if (n == 0) return 0;
    jtok *t = push(L, TK_DATA);
    if (!t) return lex_fail(L, "out of memory", NULL);
    t->p = p;
    t->n = n;
    return 0;
}

/* After a tag's end: -X} strips all whitespace, a block's or comment's
 * plain end one newline (trim_blocks). */
static void after_tag(lexer *L, char end_sign, bool trims) {
    if (end_sign == '-') {
        size_t ws = jv_space_prefix(L->s + L->pos, L->n - L->pos);
        count_lines(L, L->pos, L->pos + ws);
        L->pos += ws;
    } else if (end_sign != '+' && trims && L->pos < L->n && L->s[L->pos] == '\n') {
        L->pos++;
        L->line++;
    }
    L->line_starting = L->pos > 0 && L->s[L->pos - 1] == '\n';
}

static int lex_comment(lexer *L) {
    size_t body = L->pos;
    const char *e = NULL;
    for (size_t i = body; i + 1 < L->n; i++)
        if (L->s[i] == '#' && L->s[i + 1] == '}') {
            e = L->s + i;
            break;
        }
    if (!e) return lex_fail(L, "a comment '{#' is never closed", NULL);
    size_t at = (size_t)(e - L->s);
    char sign = at > body && (e[-1] == '-' || e[-1] == '+') ? e[-1] : 0;
    count_lines(L, body, at + 2);
    L->pos = at + 2;
    after_tag(L, sign, true);
    return 0;
}

int jinja_lex_string(lexer *L, jtok *t, char quote);
int jinja_lex_inner(lexer *L, bool block);

int jinja_lex(const char *src, size_t len, jarena *a, jtoks *out, jinja_status *st, rl_err *err) {
    lexer L = {.a = a, .out = out, .st = st, .err = err, .line = 1, .line_starting = true};
    L.s = normalise(a, src, len, &L.n);
    if (!L.s) return lex_fail(&L, "out of memory", NULL);
    while (L.pos < L.n) {
        size_t start = L.pos, at = L.n;
        char kind = 0;
        for (size_t i = start; i + 1 < L.n; i++)
            if (L.s[i] == '{' && (L.s[i + 1] == '{' || L.s[i + 1] == '%' || L.s[i + 1] == '#')) {
                at = i;
                kind = L.s[i + 1];
                break;
            }
        char sign = at + 2 < L.n && (L.s[at + 2] == '-' || L.s[at + 2] == '+') ? L.s[at + 2] : 0;
        if (emit_data(&L, start, at, kind, sign)) return -1;
        count_lines(&L, start, at);
        if (!kind) break;
        L.pos = at + 2 + (sign ? 1 : 0);
        int rc = kind == '#' ? lex_comment(&L) : jinja_lex_inner(&L, kind == '%');
        if (rc) return -1;
    }
    return push(&L, TK_EOF) ? 0 : lex_fail(&L, "out of memory", NULL);
}

/* ---- inside {{ }} and {% %} ---- */

static const char *const OPS2[] = {"**", "//", "==", "!=", ">=", "<="};
static const char OPS1[] = "+-/*%~[](){}><=.:|,;";

/* The end of the tag at L->pos, if it is one: returns its length, the
 * sign ('-', '+' or 0) in *sign. */
static size_t tag_end(const lexer *L, bool block, char *sign) {
    const char *p = L->s + L->pos;
    size_t left = L->n - L->pos;
    char c = block ? '%' : '}';
    *sign = 0;
    if (left >= 3 && (p[0] == '-' || (p[0] == '+' && block)) && p[1] == c && p[2] == '}') {
        *sign = p[0];
        return 3;
    }
    return left >= 2 && p[0] == c && p[1] == '}' ? 2 : 0;
}

static int lex_number(lexer *L) {
    const char *p = L->s + L->pos, *end = L->s + L->n, *q = p;
    while (q < end && ((*q >= '0' && *q <= '9') || (*q == '_' && q + 1 < end && q[1] >= '0' && q[1] <= '9'))) q++;
    bool is_float = false;
    if (q + 1 < end && *q == '.' && q[1] >= '0' && q[1] <= '9') {
        is_float = true;
        q++;
        while (q < end && ((*q >= '0' && *q <= '9') || *q == '_')) q++;
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        const char *r = q + 1;
        if (r < end && (*r == '+' || *r == '-')) r++;
        if (r < end && *r >= '0' && *r <= '9') {
            is_float = true;
            q = r;
            while (q < end && *q >= '0' && *q <= '9') q++;
        }
    }
    char buf[64];
    size_t k = 0;
    for (const char *r = p; r < q && k + 1 < sizeof buf; r++)
        if (*r != '_') buf[k++] = *r;
    buf[k] = 0;
    if ((size_t)(q - p) >= sizeof buf) return lex_fail(L, "number literal too long", NULL);
    jtok *t = push(L, is_float ? TK_FLOAT : TK_INT);
    if (!t) return lex_fail(L, "out of memory", NULL);
    if (is_float) t->f = strtod(buf, NULL);
    else {
        char *e;
        unsigned long long v = strtoull(buf, &e, 10);
        if (v > INT64_MAX || *e) return lex_fail(L, "integer literal too large: ", buf);
        t->i = (int64_t)v;
    }
    L->pos = (size_t)(q - L->s);
    return 0;
}

static int lex_op(lexer *L, char *stack, int *depth) {
    const char *p = L->s + L->pos;
    size_t left = L->n - L->pos;
    size_t len = 0;
    for (size_t i = 0; i < sizeof OPS2 / sizeof *OPS2 && !len; i++)
        if (left >= 2 && p[0] == OPS2[i][0] && p[1] == OPS2[i][1]) len = 2;
    if (!len && strchr(OPS1, p[0]) && p[0]) len = 1;
    if (!len) {
        char what[8] = {p[0], 0};
        return lex_fail(L, "unexpected character ", what[0] >= 32 && what[0] < 127 ? what : "(a control or non-ASCII byte)");
    }
    if (p[0] == '(' || p[0] == '[' || p[0] == '{') {
        if (*depth >= 64) return lex_fail(L, "brackets nested too deeply", NULL);
        stack[(*depth)++] = p[0] == '(' ? ')' : p[0] == '[' ? ']' : '}';
    } else if (len == 1 && (p[0] == ')' || p[0] == ']' || p[0] == '}')) {
        if (*depth == 0 || stack[*depth - 1] != p[0]) return lex_fail(L, "unbalanced bracket ", p[0] == ')' ? ")" : p[0] == ']' ? "]" : "}");
        (*depth)--;
    }
    jtok *t = push(L, TK_OP);
    if (!t) return lex_fail(L, "out of memory", NULL);
    memcpy(t->op, p, len);
    L->pos += len;
    return 0;
}

static int lex_token(lexer *L, char *stack, int *depth) {
    char c = L->s[L->pos];
    if (c >= '0' && c <= '9') return lex_number(L);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
        size_t e = L->pos;
        while (e < L->n && ((L->s[e] >= 'a' && L->s[e] <= 'z') || (L->s[e] >= 'A' && L->s[e] <= 'Z') ||
                            (L->s[e] >= '0' && L->s[e] <= '9') || L->s[e] == '_'))
            e++;
        jtok *t = push(L, TK_NAME);
        if (!t) return lex_fail(L, "out of memory", NULL);
        t->p = L->s + L->pos;
        t->n = e - L->pos;
        L->pos = e;
        return 0;
    }
    if (c == '\'' || c == '"') {
        jtok *t = push(L, TK_STRING);
        if (!t) return lex_fail(L, "out of memory", NULL);
        return jinja_lex_string(L, t, c);
    }
    return lex_op(L, stack, depth);
}

int jinja_lex_inner(lexer *L, bool block) {
    int open_line = L->line;
    if (!push(L, block ? TK_BLOCK_BEGIN : TK_VAR_BEGIN)) return lex_fail(L, "out of memory", NULL);
    char stack[64];
    int depth = 0;
    for (;;) {
        size_t ws = jv_space_prefix(L->s + L->pos, L->n - L->pos);
        count_lines(L, L->pos, L->pos + ws);
        L->pos += ws;
        if (L->pos >= L->n) {
            L->line = open_line;
            return lex_fail(L, block ? "'{%' is never closed" : "'{{' is never closed", NULL);
        }
        char sign;
        size_t end = depth == 0 ? tag_end(L, block, &sign) : 0;
        if (end) {
            if (!push(L, block ? TK_BLOCK_END : TK_VAR_END)) return lex_fail(L, "out of memory", NULL);
            L->pos += end;
            after_tag(L, sign, block);
            return 0;
        }
        if (lex_token(L, stack, &depth)) return -1;
    }
}

/* ---- string literals ---- */

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xc0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 63)); o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 63));
    o[2] = (char)(0x80 | ((cp >> 6) & 63)); o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

static int hex_digits(const char *p, size_t left, int count, uint32_t *out) {
    uint32_t v = 0;
    if ((size_t)count > left) return -1;
    for (int i = 0; i < count; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* One escape after a backslash at p (p[0] is the character after it):
 * writes its bytes to o, returns how many source bytes it used (0: bad). */
static size_t unescape_one(const char *p, size_t left, char *o, size_t *on) {
    static const char simple_in[] = "\\'\"abfnrtv", simple_out[] = "\\'\"\a\b\f\n\r\t\v";
    const char *k = strchr(simple_in, p[0]);
    if (k && p[0]) { o[0] = simple_out[k - simple_in]; *on = 1; return 1; }
    if (p[0] == '\n') { *on = 0; return 1; }
    if (p[0] >= '0' && p[0] <= '7') {
        uint32_t v = 0;
        size_t i = 0;
        while (i < 3 && i < left && p[i] >= '0' && p[i] <= '7') v = v * 8 + (uint32_t)(p[i++] - '0');
        *on = put_utf8(o, v);
        return i;
    }
    int count = p[0] == 'x' ? 2 : p[0] == 'u' ? 4 : p[0] == 'U' ? 8 : 0;
    if (count) {
        uint32_t cp;
        if (hex_digits(p + 1, left - 1, count, &cp) || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return 0;
        *on = put_utf8(o, cp);
        return 1 + (size_t)count;
    }
    if (p[0] == 'N') return 0;
    o[0] = '\\';
    *on = 1; /* an unknown escape stays as it is written: the character follows */
    return 0;
}

int jinja_lex_string(lexer *L, jtok *t, char quote) {
    size_t i = L->pos + 1, start = i;
    while (i < L->n && L->s[i] != quote) i += L->s[i] == '\\' && i + 1 < L->n ? 2 : 1;
    if (i >= L->n) return lex_fail(L, "a string literal is never closed", NULL);
    char *o = jarena_alloc(L->a, i - start + 1);
    if (!o) return lex_fail(L, "out of memory", NULL);
    size_t k = 0;
    for (size_t j = start; j < i;) {
        if (L->s[j] != '\\') { o[k++] = L->s[j++]; continue; }
        size_t on = 0, used = unescape_one(L->s + j + 1, i - j - 1, o + k, &on);
        if (used == 0 && on == 0) return lex_fail(L, "bad escape in a string literal", NULL);
        k += on;
        j += 1 + used;
    }
    o[k] = 0;
    t->p = o;
    t->n = k;
    count_lines(L, L->pos, i + 1);
    L->pos = i + 1;
    return 0;
}
