/*
 * tokenizer_merge.c — the machinery both encoders share: a text cut into
 * symbols (one per UTF-8 character) chained left to right, and a priority
 * queue of candidate merges of neighbours, best first. The encoders decide
 * what may merge and in which order (score or rank); this file keeps the
 * chain and the queue.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

void tok_work_free(tok_work *w) {
    free(w->sym);
    free(w->heap);
    free(w->text.v);
    free(w->text2.v);
    tok_bpe_free_match(w->match);
    memset(w, 0, sizeof *w);
}

int tok_work_symbols(tok_work *w, const char *text, size_t len, rl_err *err) {
    if (len > UINT32_MAX)
        return rl_fail(err, RL_ERR_INPUT, "tokenize: a text fragment of %zu bytes is too long", len);
    if (w->cap_sym < len) {
        tok_symbol *s = realloc(w->sym, len * sizeof *s);
        if (!s) return rl_fail(err, RL_ERR_INTERNAL, "tokenizer: out of memory");
        w->sym = s;
        w->cap_sym = len;
    }
    w->n_sym = 0;
    w->n_heap = 0;
    for (size_t off = 0; off < len;) {
        size_t n = RL_MIN(tok_utf8_len((uint8_t)text[off]), len - off);
        int32_t i = (int32_t)w->n_sym++;
        w->sym[i] = (tok_symbol){i - 1, off + n == len ? -1 : i + 1, (uint32_t)off, (uint32_t)n};
        off += n;
    }
    return 0;
}

/* a comes out of the queue before b */
static bool bigram_before(const tok_bigram *a, const tok_bigram *b) {
    return a->key > b->key || (a->key == b->key && a->left < b->left);
}

int tok_heap_push(tok_work *w, tok_bigram b, rl_err *err) {
    if (w->n_heap == w->cap_heap) {
        size_t cap = w->cap_heap ? w->cap_heap * 2 : 64;
        tok_bigram *h = realloc(w->heap, cap * sizeof *h);
        if (!h) return rl_fail(err, RL_ERR_INTERNAL, "tokenizer: out of memory");
        w->heap = h;
        w->cap_heap = cap;
    }
    size_t i = w->n_heap++;
    while (i > 0) { /* sift up */
        size_t parent = (i - 1) / 2;
        if (!bigram_before(&b, &w->heap[parent])) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = b;
    return 0;
}

bool tok_heap_pop(tok_work *w, tok_bigram *out) {
    if (w->n_heap == 0) return false;
    *out = w->heap[0];
    tok_bigram last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) { /* sift down */
        size_t child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && bigram_before(&w->heap[child + 1], &w->heap[child])) child++;
        if (!bigram_before(&w->heap[child], &last)) break;
        w->heap[i] = w->heap[child];
        i = child;
    }
    if (n > 0) w->heap[i] = last;
    return true;
}

void tok_work_merge(tok_work *w, int32_t left, int32_t right) {
    tok_symbol *l = &w->sym[left], *r = &w->sym[right];
    l->len += r->len;
    r->len = 0;
    l->next = r->next;
    if (r->next >= 0) w->sym[r->next].prev = left;
}
