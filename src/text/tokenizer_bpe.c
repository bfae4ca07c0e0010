/*
 * tokenizer_bpe.c — byte-level BPE ("gpt2" vocabularies: Llama 3 and
 * kin), llama.cpp's algorithm step for step so the ids are the same.
 *
 * 1. Invalid UTF-8 in the text becomes U+FFFD, one per bad byte.
 * 2. The pre-tokenizer regex (tokenizer.ggml.pre picks it; run by PCRE2 in
 *    UTF + UCP mode) cuts the text into words; text no alternative matches
 *    is a word of its own. Some (smollm, starcoder, ...) first make every
 *    \p{N} character a word and run their regex only between them.
 * 3. Each word's bytes are written as GPT-2's printable stand-ins (a space
 *    is "Ġ"), the alphabet the vocabulary and merges are spelled in.
 * 4. Llama 3 ("ignore_merges"): a word that is a token is that token.
 *    Otherwise the word is cut into characters and, repeatedly, the
 *    neighbouring pair with the lowest merge rank (leftmost on ties) is
 *    joined — a priority queue, stale pairs skipped when they come out.
 * 5. Each part is looked up; one that is not a token (only in a broken
 *    vocabulary) falls back to its single bytes, dropping what is missing.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "tokenizer_internal.h"

#define KEY_MERGES "tokenizer.ggml.merges"
#define KEY_PRE "tokenizer.ggml.pre"

/* ---------------------------------------------------------------- pre-tokenizers */

/* Llama 3 (as llama.cpp writes it: the case-insensitive group spelled out). */
static const char RE_LLAMA3[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* Qwen 2 and others: as Llama 3 but one digit per word. */
static const char RE_QWEN2[] =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
    "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/* GPT-2, the original byte-level BPE. */
static const char RE_GPT2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";

typedef struct pre_tokenizer {
    const char *name; /* tokenizer.ggml.pre */
    const char *regex;
    bool ignore_merges, add_bos; /* llama.cpp's defaults for it */
    bool digits_first; /* llama.cpp's two-regex cascade: every \p{N} a word of its
                          own first, then `regex` within the text between them */
} pre_tokenizer;

/* The names llama.cpp maps to these three regexes. Any other name (and a
 * missing one) gets GPT-2's: the generic byte-level BPE split. */
static const pre_tokenizer PRE_TOKENIZERS[] = {
    {"smollm", RE_GPT2, false, false, true},     {"starcoder", RE_GPT2, false, false, true},
    {"refact", RE_GPT2, false, false, true},     {"command-r", RE_GPT2, false, false, true},
    {"codeshell", RE_GPT2, false, false, true},  {"exaone", RE_GPT2, false, false, true},
    {"minerva-7b", RE_GPT2, false, false, true},
    {"llama3", RE_LLAMA3, true, true, false},      {"llama-v3", RE_LLAMA3, true, true, false},
    {"llama-bpe", RE_LLAMA3, true, true, false},   {"falcon3", RE_LLAMA3, true, true, false},
    {"falcon-h1", RE_LLAMA3, true, true, false},   {"pixtral", RE_LLAMA3, true, true, false},
    {"midm-2.0", RE_LLAMA3, true, true, false},    {"lfm2", RE_LLAMA3, true, true, false},
    {"jina-v5-nano", RE_LLAMA3, true, true, false}, {"dbrx", RE_LLAMA3, false, false, false},
    {"smaug-bpe", RE_LLAMA3, false, false, false}, {"qwen2", RE_QWEN2, false, false, false},
    {"deepseek-r1-qwen", RE_QWEN2, false, false, false}, {"stablelm2", RE_QWEN2, false, false, false},
    {"megrez", RE_QWEN2, false, false, false},     {"gpt-2", RE_GPT2, false, false, false},
    {"phi-2", RE_GPT2, false, false, false},       {"mpt", RE_GPT2, false, false, false},
    {"olmo", RE_GPT2, false, false, false},        {"jais", RE_GPT2, false, false, false},
};
static const pre_tokenizer PRE_FALLBACK = {"gpt-2", RE_GPT2, false, false, false};

struct tok_bpe {
    pcre2_code *re;
    pcre2_code *re_digit; /* \p{N}, for pre.digits_first; else NULL */
    pre_tokenizer pre;
    char *merges;     /* every merge string "first second", NUL-terminated */
    uint64_t *merge_off;
    uint32_t *merge_split; /* length of "first"; "second" starts one byte later */
    uint32_t *merge_len;
    int32_t n_merges;
    uint32_t max_merge_len; /* longer pairs need no lookup */
    tok_index by_pair; /* (first, second) -> rank, the first rank wins */
};

void tok_bpe_free(tok_bpe *b) {
    if (!b) return;
    pcre2_code_free(b->re);
    pcre2_code_free(b->re_digit);
    free(b->merges);
    free(b->merge_off);
    free(b->merge_split);
    free(b->merge_len);
    tok_index_free(&b->by_pair);
    free(b);
}

void tok_bpe_free_match(void *match) { pcre2_match_data_free(match); }

bool tok_bpe_default_add_bos(const tok_bpe *b) { return b->pre.add_bos; }

static pcre2_code *compile_one(const char *regex, rl_err *err) {
    int code;
    PCRE2_SIZE at;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code, &at, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        rl_fail(err, RL_ERR_INTERNAL, "pre-tokenizer regex, offset %zu: %s", (size_t)at, (char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: the interpreter is the fallback */
    return re;
}

static int compile_regex(tok_bpe *b, rl_err *err) {
    if (!(b->re = compile_one(b->pre.regex, err))) return -1;
    if (b->pre.digits_first && !(b->re_digit = compile_one("\\p{N}", err))) return -1;
    return 0;
}

/* ---------------------------------------------------------------- merges */

typedef struct pair_key {
    const char *a, *b;
    size_t alen, blen;
} pair_key;

static bool pair_eq(const void *ctx, int32_t rank, const void *key) {
    const tok_bpe *m = ctx;
    const pair_key *k = key;
    const char *s = m->merges + m->merge_off[rank];
    uint32_t split = m->merge_split[rank];
    return split == k->alen && m->merge_len[rank] - split - 1 == k->blen && memcmp(s, k->a, k->alen) == 0 &&
           memcmp(s + split + 1, k->b, k->blen) == 0;
}

/* The hash of a pair is the hash of "first second". */
static uint32_t pair_hash(const char *a, size_t alen, const char *b, size_t blen) {
    return tok_hash(tok_hash(tok_hash(TOK_HASH_SEED, a, alen), " ", 1), b, blen);
}

static int32_t merge_rank(const tok_bpe *m, const char *a, size_t alen, const char *b, size_t blen) {
    if (alen + blen + 1 > m->max_merge_len) return -1;
    pair_key k = {a, b, alen, blen};
    return tok_index_get(&m->by_pair, pair_hash(a, alen, b, blen), pair_eq, m, &k);
}

/* Copies the merges; "first second" splits at the first space after the
 * first byte, as llama.cpp does. A merge with no such space never applies. */
static int load_merges(tok_bpe *m, const gguf_file *f, rl_err *err) {
    const gguf_value *arr;
    if (tok_get_array(f, KEY_MERGES, true, GGUF_STRING, GGUF_STRING, "string", &arr, err)) return -1;
    if (arr->arr.n > TOK_MAX_VOCAB)
        return tok_load_fail(err, f, KEY_MERGES, "%llu merges is too many (at most %d)",
                             (unsigned long long)arr->arr.n, TOK_MAX_VOCAB);
    m->n_merges = (int32_t)arr->arr.n;
    uint64_t total = 1;
    for (int32_t i = 0; i < m->n_merges; i++) {
        if (gguf_arr_str(arr, (uint64_t)i).len > 2 * TOK_MAX_TOKEN_LEN + 1)
            return tok_load_fail(err, f, KEY_MERGES, "merge %d is too long (at most two tokens of %d bytes)", i,
                                 TOK_MAX_TOKEN_LEN);
        total += gguf_arr_str(arr, (uint64_t)i).len + 1;
    }
    size_t n = (size_t)m->n_merges + 1;
    m->merges = rl_calloc(total, 1, err);
    m->merge_off = rl_calloc(n, sizeof *m->merge_off, err);
    m->merge_split = rl_calloc(n, sizeof *m->merge_split, err);
    m->merge_len = rl_calloc(n, sizeof *m->merge_len, err);
    if (!m->merges || !m->merge_off || !m->merge_split || !m->merge_len ||
        tok_index_init(&m->by_pair, (uint64_t)m->n_merges, err))
        return -1;
    uint32_t *hashes = rl_calloc(n, sizeof *hashes, err);
    if (!hashes) return -1;
    uint64_t at = 0;
    for (int32_t i = 0; i < m->n_merges; i++) {
        gguf_str s = gguf_arr_str(arr, (uint64_t)i);
        char *dst = m->merges + at;
        if (s.len) memcpy(dst, s.ptr, s.len);
        m->merge_off[i] = at;
        m->merge_len[i] = (uint32_t)s.len;
        if (s.len > m->max_merge_len) m->max_merge_len = (uint32_t)s.len;
        at += s.len + 1;
        const char *space = s.len > 1 ? memchr(dst + 1, ' ', s.len - 1) : NULL;
        m->merge_split[i] = space ? (uint32_t)(space - dst) : 0; /* 0: no split, never applies */
        hashes[i] = tok_hash(TOK_HASH_SEED, dst, s.len);
    }
    for (int32_t i = 0; i < m->n_merges; i++) {
        if (i + TOK_PREFETCH_AHEAD < m->n_merges)
            tok_index_prefetch(&m->by_pair, hashes[i + TOK_PREFETCH_AHEAD]);
        uint32_t split = m->merge_split[i];
        if (split == 0) continue;
        const char *s = m->merges + m->merge_off[i];
        pair_key k = {s, s + split + 1, split, m->merge_len[i] - split - 1};
        tok_index_put(&m->by_pair, hashes[i], i, false, pair_eq, m, &k);
    }
    free(hashes);
    return 0;
}

int tok_bpe_load(tokenizer *t, const gguf_file *f, rl_err *err) {
    tok_bpe *b = rl_calloc(1, sizeof *b, err);
    if (!b) return -1;
    t->bpe = b;
    b->pre = PRE_FALLBACK;
    const gguf_kv *kv = gguf_find(f, KEY_PRE);
    if (kv && kv->val.type != GGUF_STRING)
        return tok_load_fail(err, f, KEY_PRE, "expected a string, found %s", gguf_vtype_name(kv->val.type));
    for (size_t i = 0; kv && i < RL_ARRAY_LEN(PRE_TOKENIZERS); i++)
        if (gguf_str_eq(kv->val.str, PRE_TOKENIZERS[i].name)) b->pre = PRE_TOKENIZERS[i];
    return load_merges(b, f, err) || compile_regex(b, err) ? -1 : 0;
}

/* ---------------------------------------------------------------- bytes <-> stand-ins */

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
 * the other 68 (controls, space, 0x7F-0xA0, soft hyphen) become U+0100 on,
 * in byte order. */
static bool byte_is_printable(unsigned b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

static unsigned byte_to_cp(unsigned b) {
    if (byte_is_printable(b)) return b;
    if (b <= 0x20) return 256 + b;
    if (b >= 0x7F && b <= 0xA0) return 256 + 33 + (b - 0x7F);
    return 256 + 67; /* 0xAD */
}

/* -1 if cp stands for no byte. */
static int cp_to_byte(unsigned cp) {
    if (cp < 256) return byte_is_printable(cp) ? (int)cp : -1;
    unsigned n = cp - 256;
    if (n <= 32) return (int)n;
    if (n <= 66) return (int)(0x7F + n - 33);
    return n == 67 ? 0xAD : -1;
}

/* Writes the stand-in of byte b (1 or 2 bytes of UTF-8). */
static size_t put_stand_in(unsigned b, char *out) {
    unsigned cp = byte_to_cp(b);
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

bool tok_bpe_all_bytes(const tokenizer *t) {
    for (unsigned b = 0; b < 256; b++) {
        char s[4];
        if (tok_lookup(t, s, put_stand_in(b, s)) < 0) return false;
    }
    return true;
}

size_t tok_bpe_decode_text(const char *s, size_t len, char *out) {
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        const uint8_t *p = (const uint8_t *)s + i;
        int r = tok_utf8_check(p, RL_MIN(len - i, (size_t)4));
        if (r <= 0) { /* not UTF-8: keep the byte */
            out[n++] = s[i++];
            continue;
        }
        unsigned cp = r == 1 ? p[0] : r == 2 ? ((p[0] & 0x1Fu) << 6) | (p[1] & 0x3Fu) : 0x110000;
        int b = cp_to_byte(cp);
        if (b >= 0) {
            out[n++] = (char)b;
        } else { /* no byte stands behind this character: keep it */
            memcpy(out + n, p, (size_t)r);
            n += (size_t)r;
        }
        i += (size_t)r;
    }
    return n;
}

/* ---------------------------------------------------------------- encoding */

/* Copy of text into w->text with each invalid byte replaced by U+FFFD. */
static int sanitize(tok_work *w, const char *text, size_t len, rl_err *err) {
    w->text.n = 0;
    if (tok_buf_reserve(&w->text, 3 * len, err)) return -1;
    char *o = w->text.v;
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        int r = tok_utf8_check((const uint8_t *)text + i, RL_MIN(len - i, (size_t)4));
        if (r > 0) {
            memcpy(o + n, text + i, (size_t)r);
            n += (size_t)r;
            i += (size_t)r;
        } else {
            memcpy(o + n, "\xef\xbf\xbd", 3);
            n += 3;
            i++;
        }
    }
    w->text.n = n;
    return 0;
}

static int try_pair(const tok_bpe *m, tok_work *w, int32_t left, int32_t right, rl_err *err) {
    if (left < 0 || right < 0) return 0;
    const tok_symbol *l = &w->sym[left], *r = &w->sym[right];
    const char *s = w->text2.v;
    int32_t rank = merge_rank(m, s + l->off, l->len, s + r->off, r->len);
    if (rank < 0) return 0;
    return tok_heap_push(w, (tok_bigram){-(double)rank, left, right, l->len + r->len}, err);
}

static int emit(const tokenizer *t, const char *s, size_t len, tok_ids *out, rl_err *err) {
    int32_t id = tok_lookup(t, s, len);
    if (id >= 0) return tok_ids_push(out, id, err);
    for (size_t i = 0; i < len; i++) {
        id = tok_lookup(t, s + i, 1);
        if (id >= 0 && tok_ids_push(out, id, err)) return -1;
    }
    return 0;
}

/* BPE over one word of w->text: text[off, off+len). */
static int encode_word(const tokenizer *t, tok_work *w, size_t off, size_t len, tok_ids *out, rl_err *err) {
    const tok_bpe *m = t->bpe;
    w->text2.n = 0;
    if (tok_buf_reserve(&w->text2, 2 * len, err)) return -1;
    const uint8_t *src = (const uint8_t *)w->text.v + off;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += put_stand_in(src[i], w->text2.v + n);
    w->text2.n = n;
    const char *s = w->text2.v;

    if (m->pre.ignore_merges) {
        int32_t id = tok_lookup(t, s, n);
        if (id >= 0) return tok_ids_push(out, id, err);
    }
    if (tok_work_symbols(w, s, n, err)) return -1;
    for (int32_t i = 1; i < (int32_t)w->n_sym; i++)
        if (try_pair(m, w, i - 1, i, err)) return -1;
    tok_bigram b;
    while (tok_heap_pop(w, &b)) {
        tok_symbol *l = &w->sym[b.left], *r = &w->sym[b.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != b.len) continue; /* stale */
        tok_work_merge(w, b.left, b.right);
        if (try_pair(m, w, l->prev, b.left, err) || try_pair(m, w, b.left, l->next, err)) return -1;
    }
    for (int32_t i = 0; i != -1 && w->n_sym > 0; i = w->sym[i].next)
        if (emit(t, s + w->sym[i].off, w->sym[i].len, out, err)) return -1;
    return 0;
}

/* The next match of `re` in text[start, end) (the text ends at `end` for
 * it, as llama.cpp's cascade cuts it): 1 with [*m0, *m1), 0 if none, -1 on
 * error. */
static int next_match(const pcre2_code *re, tok_work *w, size_t start, size_t end, size_t *m0, size_t *m1,
                      rl_err *err) {
    const PCRE2_SPTR subject = (PCRE2_SPTR)w->text.v;
    int rc = pcre2_match(re, subject, end, start, PCRE2_NO_UTF_CHECK, w->match, NULL);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) /* a very long word: let the interpreter (heap frames) do it */
        rc = pcre2_match(re, subject, end, start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, w->match, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return rl_fail(err, RL_ERR_INTERNAL, "pre-tokenizer at byte %zu: %s", start, (char *)msg);
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(w->match);
    *m0 = ov[0];
    *m1 = ov[1];
    return 1;
}

/* Cuts text[lo, hi) into words by `re` and encodes each; text no
 * alternative matches is a word of its own. With `re_inner`, each word
 * of `re` and each gap are cut again by re_inner (llama.cpp's cascade). */
static int split(const tokenizer *t, tok_work *w, const pcre2_code *re, const pcre2_code *re_inner, size_t lo,
                 size_t hi, tok_ids *out, rl_err *err) {
#define WORD(a, b) (re_inner ? split(t, w, re_inner, NULL, a, b, out, err) : encode_word(t, w, a, (b) - (a), out, err))
    size_t start = lo, gap = lo; /* text[gap, next match) matched nothing */
    while (start < hi) {
        size_t m0, m1;
        int found = next_match(re, w, start, hi, &m0, &m1, err);
        if (found < 0) return -1;
        if (!found) break;
        if (m1 == m0) { /* empty match: step over a character, it joins the gap */
            start = m0 + tok_utf8_len((uint8_t)w->text.v[m0]);
            continue;
        }
        if (tok_ids_surely_over(t, out, m1 - gap) || tok_ids_over(out)) return 0; /* past the limit */
        if (m0 > gap && WORD(gap, m0)) return -1;
        if (WORD(m0, m1)) return -1;
        gap = start = m1;
    }
    if (tok_ids_surely_over(t, out, hi - gap) || tok_ids_over(out)) return 0;
    if (gap < hi && WORD(gap, hi)) return -1;
#undef WORD
    return 0;
}

int tok_bpe_encode(const tokenizer *t, tok_work *w, const char *text, size_t len, tok_ids *out, rl_err *err) {
    const tok_bpe *m = t->bpe;
    if (!w->match && !(w->match = pcre2_match_data_create_from_pattern(m->re, NULL)))
        return rl_fail(err, RL_ERR_INTERNAL, "tokenizer: out of memory");
    if (sanitize(w, text, len, err)) return -1;
    if (m->re_digit) return split(t, w, m->re_digit, m->re, 0, w->text.n, out, err);
    return split(t, w, m->re, NULL, 0, w->text.n, out, err);
}
