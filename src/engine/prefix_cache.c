/*
 * prefix_cache.c — the store behind prefix_cache.h: an array of entries
 * under one lock, each a token sequence, the KV cache holding it, its size
 * and when it was last used. Lookups compare tokens exactly, entry by entry
 * (a few hundred entries of a few thousand tokens cost microseconds against
 * the milliseconds each reused token saves); eviction takes the least
 * recently used entry that nobody is copying from.
 */
#include "prefix_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct prefix_entry {
    int32_t *tokens;
    int n;
    void *kv;
    int n_ctx;
    uint64_t bytes;
    uint64_t used; /* the cache's clock when last stored or matched */
    int pins;
};

struct prefix_cache {
    pthread_mutex_t lock;
    prefix_entry **entries;
    int n, cap;
    uint64_t clock;
    prefix_cache_stats st;
};

prefix_cache *prefix_cache_new(uint64_t budget_bytes, rl_err *err) {
    prefix_cache *c = rl_calloc(1, sizeof *c, err);
    if (!c) return NULL;
    pthread_mutex_init(&c->lock, NULL);
    c->st.budget = budget_bytes;
    return c;
}

static void entry_free(prefix_entry *en) {
    if (!en) return;
    free(en->tokens);
    free(en->kv);
    free(en);
}

void prefix_cache_free(prefix_cache *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) entry_free(c->entries[i]);
    free(c->entries);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

/* How many leading tokens a and b share, at most n. */
static int common_prefix(const int32_t *a, const int32_t *b, int n) {
    int i = 0;
    while (i < n && a[i] == b[i]) i++;
    return i;
}

/* Drops entry i (unpinned) from the array; the last one takes its place. */
static void drop_locked(prefix_cache *c, int i) {
    c->st.bytes -= c->entries[i]->bytes;
    entry_free(c->entries[i]);
    c->entries[i] = c->entries[--c->n];
}

/* Evicts least recently used, unpinned entries until `need` more bytes fit
 * the budget. False if they cannot (pinned entries fill it). */
static bool make_room_locked(prefix_cache *c, uint64_t need) {
    while (c->st.bytes + need > c->st.budget) {
        int lru = -1;
        for (int i = 0; i < c->n; i++)
            if (c->entries[i]->pins == 0 && (lru < 0 || c->entries[i]->used < c->entries[lru]->used)) lru = i;
        if (lru < 0) return false;
        drop_locked(c, lru);
        c->st.evictions++;
    }
    return true;
}

/* Whether a sequence of n tokens is already served by an entry (it is a
 * prefix of one); drops the unpinned entries that are prefixes of it. */
static bool covered_locked(prefix_cache *c, const int32_t *tokens, int n) {
    for (int i = 0; i < c->n;) {
        prefix_entry *en = c->entries[i];
        int k = common_prefix(en->tokens, tokens, RL_MIN(en->n, n));
        if (k == n && en->n >= n) {
            en->used = ++c->clock;
            return true;
        }
        if (k == en->n && en->pins == 0) drop_locked(c, i); /* the new one serves all it did */
        else i++;
    }
    return false;
}

static bool add_locked(prefix_cache *c, const int32_t *tokens, int n, void *kv, int n_ctx, uint64_t bytes) {
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        prefix_entry **grown = realloc(c->entries, (size_t)cap * sizeof *grown);
        if (!grown) return false;
        c->entries = grown;
        c->cap = cap;
    }
    prefix_entry *en = calloc(1, sizeof *en);
    int32_t *copy = malloc((size_t)n * sizeof *copy);
    if (!en || !copy) {
        free(en);
        free(copy);
        return false;
    }
    memcpy(copy, tokens, (size_t)n * sizeof *copy);
    *en = (prefix_entry){.tokens = copy, .n = n, .kv = kv, .n_ctx = n_ctx, .bytes = bytes, .used = ++c->clock};
    c->entries[c->n++] = en;
    c->st.bytes += bytes;
    return true;
}

void prefix_cache_put(prefix_cache *c, const int32_t *tokens, int n, void *kv, int n_ctx, uint64_t bytes) {
    bool kept = false;
    if (n > 0 && bytes <= c->st.budget) {
        pthread_mutex_lock(&c->lock);
        if (!covered_locked(c, tokens, n) && make_room_locked(c, bytes))
            kept = add_locked(c, tokens, n, kv, n_ctx, bytes);
        pthread_mutex_unlock(&c->lock);
    }
    if (!kept) free(kv);
}

prefix_entry *prefix_cache_match(prefix_cache *c, const int32_t *tokens, int n, int max_len, int *len) {
    prefix_entry *best = NULL;
    int best_len = 0;
    int limit = RL_MIN(n, max_len);
    pthread_mutex_lock(&c->lock);
    c->st.lookups++;
    for (int i = 0; i < c->n; i++) {
        prefix_entry *en = c->entries[i];
        int k = common_prefix(en->tokens, tokens, RL_MIN(en->n, limit));
        if (k > best_len || (k == best_len && k > 0 && en->used > best->used)) {
            best = en;
            best_len = k;
        }
    }
    if (best) {
        best->pins++;
        best->used = ++c->clock;
        c->st.hits++;
        c->st.tokens_reused += (uint64_t)best_len;
    }
    pthread_mutex_unlock(&c->lock);
    *len = best_len;
    return best;
}

int prefix_cache_peek(prefix_cache *c, const int32_t *tokens, int n, int max_len) {
    int best = 0, limit = RL_MIN(n, max_len);
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < c->n; i++) best = RL_MAX(best, common_prefix(c->entries[i]->tokens, tokens, RL_MIN(c->entries[i]->n, limit)));
    pthread_mutex_unlock(&c->lock);
    return best;
}

const void *prefix_entry_kv(const prefix_entry *en, int *n_ctx) {
    *n_ctx = en->n_ctx;
    return en->kv;
}

void prefix_cache_release(prefix_cache *c, prefix_entry *en) {
    if (!en) return;
    pthread_mutex_lock(&c->lock);
    en->pins--;
    pthread_mutex_unlock(&c->lock);
}

prefix_cache_stats prefix_cache_get_stats(prefix_cache *c) {
    pthread_mutex_lock(&c->lock);
    prefix_cache_stats st = c->st;
    st.entries = c->n;
    pthread_mutex_unlock(&c->lock);
    return st;
}
