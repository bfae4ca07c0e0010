/*
 * prefix_cache.h — finished sequences' KV caches, kept so that a new prompt
 * that begins with the same tokens starts from them instead of prefilling
 * them again: the next turn of a chat (its prompt is the last one plus the
 * answer plus the new message), or many users behind one system prompt.
 *
 * An entry is a token sequence and the KV cache that holds exactly those
 * tokens, at positions 0..n-1. A lookup finds the entry sharing the longest
 * prefix with a prompt, by exact token match: a cached state never serves a
 * different sequence, so outputs are the same with or without the cache
 * (the engine's outputs do not depend on how a sequence's tokens were
 * batched). The cache holds at most `budget` bytes of KV, evicting the
 * least recently used entries; an entry whose tokens are a prefix of a newer
 * one is dropped (the newer one serves every prompt it would). Running
 * sequences own their own caches: eviction never touches them.
 *
 * The engine stores and looks up (engine_params.prefix_cache); one cache
 * may be shared by the engines of several partitions over one model (they
 * must agree on the KV type), so every call is thread-safe.
 */
#ifndef RACKLLM_PREFIX_CACHE_H
#define RACKLLM_PREFIX_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/common.h"

typedef struct prefix_cache prefix_cache;
typedef struct prefix_entry prefix_entry;

/* A cache of at most budget_bytes of KV (0: a cache that keeps nothing). */
prefix_cache *prefix_cache_new(uint64_t budget_bytes, rl_err *err);
void prefix_cache_free(prefix_cache *c);

/* Keeps a finished sequence's state: its n tokens and the KV cache `kv`
 * (malloc'd, head-major with a stride of n_ctx positions, see fw_kv) that
 * holds them, `bytes` being what it occupies. Takes ownership of kv: it is
 * freed at once if the entry is not kept (too big, a prefix of an entry
 * already there). */
void prefix_cache_put(prefix_cache *c, const int32_t *tokens, int n, void *kv, int n_ctx, uint64_t bytes);

/* The entry sharing the longest prefix with tokens[0..n), at most max_len
 * tokens of it (a prompt's last token must still run, for its logits), and
 * that length in *len; NULL (and *len 0) when none shares a token. The
 * entry is pinned until prefix_cache_release: its KV stays valid. */
prefix_entry *prefix_cache_match(prefix_cache *c, const int32_t *tokens, int n, int max_len, int *len);
/* The length prefix_cache_match would find now, without pinning, counting
 * or touching an entry (admission's estimate: it may change before use). */
int prefix_cache_peek(prefix_cache *c, const int32_t *tokens, int n, int max_len);
const void *prefix_entry_kv(const prefix_entry *en, int *n_ctx);
void prefix_cache_release(prefix_cache *c, prefix_entry *en);

typedef struct prefix_cache_stats {
    int entries;
    uint64_t bytes, budget;
    uint64_t lookups, hits, tokens_reused, evictions;
} prefix_cache_stats;
prefix_cache_stats prefix_cache_get_stats(prefix_cache *c);

#endif
