/*
 * tokenizer_internal.h — what the three tokenizer files share and nobody
 * else sees: the vocabulary as loaded (texts, scores, attributes, a hash
 * index), the merge-queue machinery both algorithms use, and the growable
 * arrays an encode call works in.
 *
 * tokenizer.c loads the vocabulary and splits text on special tokens;
 * tokenizer_spm.c and tokenizer_bpe.c each encode one plain text fragment
 * with their algorithm, on the symbol chain and merge queue of
 * tokenizer_merge.c; tokenizer_decode.c turns ids back into bytes.
 */
#ifndef RACKLLM_TOKENIZER_INTERNAL_H
#define RACKLLM_TOKENIZER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "tokenizer.h"

/* Token attributes, from tokenizer.ggml.token_type (as llama.cpp maps them). */
enum {
    TOK_ATTR_NORMAL = 1 << 0,       /* type 1 */
    TOK_ATTR_UNKNOWN = 1 << 1,      /* type 2 */
    TOK_ATTR_CONTROL = 1 << 2,      /* type 3 */
    TOK_ATTR_USER_DEFINED = 1 << 3, /* type 4 */
    TOK_ATTR_UNUSED = 1 << 4,       /* type 5 */
    TOK_ATTR_BYTE = 1 << 5,         /* type 6 */
    TOK_ATTR_EOG = 1 << 6,          /* ours: ends generation */
};

/* A string -> int32 index with open addressing. Each slot packs the key's
 * 32-bit hash (high half) and value + 1 (low half; 0 = empty); the key
 * itself lives with the caller, which supplies the equality test. */
typedef struct tok_index {
    uint64_t *slots;
    uint64_t mask; /* capacity - 1, capacity a power of two */
} tok_index;

typedef bool (*tok_index_eq)(const void *ctx, int32_t value, const void *key);

int tok_index_init(tok_index *ix, uint64_t n_keys, rl_err *err);
void tok_index_free(tok_index *ix);
/* Adds value under hash; if an equal key is present, `replace` decides
 * whether the new value wins (tokens: the last wins) or not (merges: the
 * first rank wins). */
void tok_index_put(tok_index *ix, uint32_t hash, int32_t value, bool replace, tok_index_eq eq,
                   const void *ctx, const void *key);
/* Asks the cache for the slot a hash starts at. Loading inserts hundreds of
 * thousands of keys at random places; prefetching a few keys ahead turns
 * one cache miss after another into misses that overlap. */
void tok_index_prefetch(const tok_index *ix, uint32_t hash);
enum { TOK_PREFETCH_AHEAD = 16 };
int32_t tok_index_get(const tok_index *ix, uint32_t hash, tok_index_eq eq, const void *ctx,
                      const void *key); /* -1 if absent */

/* FNV-1a, continued from h (start with TOK_HASH_SEED); tok_index mixes
 * the bits once more before using them. */
#define TOK_HASH_SEED 2166136261u
static inline uint32_t tok_hash(uint32_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

/* A string in the vocabulary: offset into an arena and length. */
typedef struct tok_span {
    uint64_t off;
    uint32_t len;
} tok_span;

/* The pre-tokenizer of a byte-level BPE vocabulary (compiled PCRE2 code,
 * kept opaque here so only tokenizer_bpe.c needs pcre2.h). */
typedef struct tok_bpe tok_bpe;

struct tokenizer {
    tok_kind kind;
    int32_t n_vocab;

    char *text;          /* every token's vocabulary string, NUL-terminated */
    tok_span *texts;     /* [n_vocab] into text */
    uint32_t max_text_len;
    float *scores;       /* [n_vocab]; 0 when the file has none */
    uint8_t *attrs;      /* [n_vocab] TOK_ATTR_* */
    tok_index by_text;   /* vocabulary string -> id (the last id wins) */

    char *bytes;         /* what each token stands for (special tokens as text) */
    tok_span *pieces;    /* [n_vocab] into bytes */
    uint32_t max_piece_len;

    int32_t *specials;   /* control / user-defined / unknown ids, longest text first */
    int32_t n_specials;
    bool has_user_defined;

    int32_t bos, eos, eot, eom, unk; /* -1 = none */
    size_t bytes_per_id;   /* most bytes of text one id stands for; 0 if some byte
                              has no token and is dropped (no bound then) */
    bool add_bos;
    bool add_space_prefix; /* spm: " " before the text, removed again by tok_decode */
    int32_t byte_token[256]; /* spm byte fallback: id of <0xNN> (or the byte itself), -1 */

    tok_bpe *bpe;        /* gpt2 only */
};

static inline bool tok_in_range(const tokenizer *t, int32_t id) { return id >= 0 && id < t->n_vocab; }

/* Vocabulary string of id (valid id) and lookup by string. */
static inline const char *tok_text(const tokenizer *t, int32_t id) { return t->text + t->texts[id].off; }
int32_t tok_lookup(const tokenizer *t, const char *s, size_t len);

/* ---- loading helpers ---- */
struct gguf_value;
/* "FILE: KEY: what is wrong" as an RL_ERR_INPUT error; returns -1. */
int tok_load_fail(rl_err *err, const struct gguf_file *f, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The array under key, with elements of type_a or type_b (`expected` says
 * which in words). *out = NULL if absent and not required. */
int tok_get_array(const struct gguf_file *f, const char *key, bool required, uint32_t type_a, uint32_t type_b,
                  const char *expected, const struct gguf_value **out, rl_err *err);

/* ---- growable arrays for one encode call ---- */
/* The ids so far. With a limit (> 0) the encoder stops as soon as more than
 * `limit` ids are certain: after a fragment or word that passes it, or
 * before one whose bytes alone need more ids than the room left
 * (tok_ids_surely_over). */
typedef struct tok_ids {
    int32_t *v;
    size_t n, cap;
    size_t limit; /* 0: none */
    bool over;    /* the text needs more than limit ids */
} tok_ids;
int tok_ids_push(tok_ids *a, int32_t id, rl_err *err);
static inline bool tok_ids_over(tok_ids *a) {
    if (a->limit && a->n > a->limit) a->over = true;
    return a->over;
}
/* Whether `bytes` more bytes of text surely pass the limit: every id stands
 * for at most tok_bytes_per_id bytes of the text (when no byte is ever
 * dropped, tok_bytes_per_id > 0). Marks the ids over if so. */
bool tok_ids_surely_over(const tokenizer *t, tok_ids *a, size_t bytes);

/* Byte buffer. */
typedef struct tok_buf {
    char *v;
    size_t n, cap;
} tok_buf;
int tok_buf_reserve(tok_buf *b, size_t extra, rl_err *err);

/* ---- the merge queue (both algorithms) ----
 * A symbol is a run of bytes of the text being encoded; neighbouring
 * symbols merge when the vocabulary allows. The queue holds candidate
 * merges of two neighbours, best first: highest key, then leftmost. SPM's
 * key is the merged piece's score, BPE's is minus the merge's rank. */
typedef struct tok_symbol {
    int32_t prev, next; /* neighbours in the live chain, -1 at the ends */
    uint32_t off, len;  /* bytes in the text; len 0 once merged away */
} tok_symbol;

typedef struct tok_bigram {
    double key;
    int32_t left, right;
    uint32_t len; /* left.len + right.len when pushed: stale if it changed */
} tok_bigram;

typedef struct tok_work {
    tok_symbol *sym;
    size_t n_sym, cap_sym;
    tok_bigram *heap;
    size_t n_heap, cap_heap;
    tok_buf text;  /* the fragment as the algorithm sees it */
    tok_buf text2; /* second scratch buffer (bpe: the byte-encoded word) */
    void *match;   /* bpe: pcre2 match data */
} tok_work;

void tok_work_free(tok_work *w);
/* Splits text[0..len) into one symbol per UTF-8 character (as llama.cpp:
 * the length comes from the lead byte, clipped at the end, not validated). */
int tok_work_symbols(tok_work *w, const char *text, size_t len, rl_err *err);
int tok_heap_push(tok_work *w, tok_bigram b, rl_err *err);
bool tok_heap_pop(tok_work *w, tok_bigram *out);
/* Joins right into left (the caller checked the bigram is current). */
void tok_work_merge(tok_work *w, int32_t left, int32_t right);

/* Length of the UTF-8 sequence a lead byte announces (1 for stray bytes). */
static inline size_t tok_utf8_len(uint8_t c) {
    static const uint8_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}

/* How many bytes at s[0..n) form one valid UTF-8 character (no overlongs,
 * surrogates or code points past U+10FFFF): its length if complete, 0 if
 * the bytes are a valid start that needs more, -k if the first k bytes
 * can never be completed (k >= 1). n >= 1. */
int tok_utf8_check(const uint8_t *s, size_t n);

/* ---- per algorithm ---- */
int tok_spm_encode(const tokenizer *t, tok_work *w, const char *text, size_t len, bool space_prefix,
                   tok_ids *out, rl_err *err);

/* Reads merges and the pre-tokenizer; fills t->bpe, t->add_bos default. */
int tok_bpe_load(tokenizer *t, const struct gguf_file *f, rl_err *err);
void tok_bpe_free(tok_bpe *b);
void tok_bpe_free_match(void *match); /* tok_work.match */
int tok_bpe_encode(const tokenizer *t, tok_work *w, const char *text, size_t len, tok_ids *out,
                   rl_err *err);
/* Whether every byte has a token (its stand-in), so none is ever dropped. */
bool tok_bpe_all_bytes(const tokenizer *t);
/* Bytes of a byte-level BPE string ("Ġthe" -> " the"), appended to out
 * (which has room for len bytes: decoding never grows a string). */
size_t tok_bpe_decode_text(const char *s, size_t len, char *out);
/* Whether the pre-tokenizer name turns on Llama 3's defaults (add_bos,
 * ignore_merges). */
bool tok_bpe_default_add_bos(const tok_bpe *b);

#endif
