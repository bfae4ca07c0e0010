/*
 * tokenizer_spm.c — SentencePiece-style encoding ("llama" vocabularies),
 * llama.cpp's algorithm step for step so the ids are the same.
 *
 * The text (with a space in front when asked) has its spaces written as
 * "▁" and is cut into UTF-8 characters. Then, repeatedly, the neighbouring
 * pair whose joined text is a vocabulary piece with the highest score
 * (leftmost on ties) is merged — a priority queue of candidate pairs, each
 * checked for staleness when it comes out. What is left is looked up; a
 * character with no piece falls back to its bytes (<0xNN> tokens), or to
 * the unknown token if even those are missing.
 */
#include <string.h>

#include "tokenizer_internal.h"

/* Queues the merge of symbols left and right if their joined text is a
 * piece. Symbols are adjacent slices of w->text, so the join is a slice. */
static int try_pair(const tokenizer *t, tok_work *w, int32_t left, int32_t right, rl_err *err) {
    if (left < 0 || right < 0) return 0;
    const tok_symbol *l = &w->sym[left], *r = &w->sym[right];
    uint32_t len = l->len + r->len;
    int32_t id = tok_lookup(t, w->text.v + l->off, len);
    if (id < 0) return 0;
    return tok_heap_push(w, (tok_bigram){t->scores[id], left, right, len}, err);
}

/* Emits the tokens of one final symbol. */
static int emit(const tokenizer *t, const tok_work *w, const tok_symbol *s, tok_ids *out, rl_err *err) {
    const char *p = w->text.v + s->off;
    int32_t id = tok_lookup(t, p, s->len);
    if (id >= 0) return tok_ids_push(out, id, err);
    for (uint32_t i = 0; i < s->len; i++) {
        int32_t b = t->byte_token[(uint8_t)p[i]];
        if (b < 0) b = t->unk; /* no byte piece either (llama.cpp would abort) */
        if (b >= 0 && tok_ids_push(out, b, err)) return -1;
    }
    return 0;
}

/* "▁"-escaped copy of the text into w->text, with the space prefix. */
static int escape(tok_work *w, const char *text, size_t len, bool space_prefix, rl_err *err) {
    w->text.n = 0;
    if (tok_buf_reserve(&w->text, 3 * (len + 1), err)) return -1;
    char *o = w->text.v;
    size_t n = 0;
    if (space_prefix) memcpy(o, "\xe2\x96\x81", 3), n = 3;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') memcpy(o + n, "\xe2\x96\x81", 3), n += 3;
        else o[n++] = text[i];
    }
    w->text.n = n;
    return 0;
}

int tok_spm_encode(const tokenizer *t, tok_work *w, const char *text, size_t len, bool space_prefix,
                   tok_ids *out, rl_err *err) {
    if (tok_ids_surely_over(t, out, len)) return 0; /* the caller's limit: no need to merge */
    if (escape(w, text, len, space_prefix, err) || tok_work_symbols(w, w->text.v, w->text.n, err)) return -1;
    if (w->n_sym == 0) return 0;
    for (int32_t i = 1; i < (int32_t)w->n_sym; i++)
        if (try_pair(t, w, i - 1, i, err)) return -1;

    tok_bigram b;
    while (tok_heap_pop(w, &b)) {
        tok_symbol *l = &w->sym[b.left], *r = &w->sym[b.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != b.len) continue; /* stale */
        tok_work_merge(w, b.left, b.right);
        if (try_pair(t, w, l->prev, b.left, err) || try_pair(t, w, b.left, l->next, err)) return -1;
    }
    for (int32_t i = 0; i != -1; i = w->sym[i].next)
        if (emit(t, w, &w->sym[i], out, err)) return -1;
    return 0;
}
