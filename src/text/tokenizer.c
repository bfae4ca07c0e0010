/*
 * tokenizer.c — the vocabulary and the way into encoding: loading
 * tokenizer.ggml.* from a GGUF file (never trusting it), the hash index
 * from piece to id, what each token stands for, special tokens (which ids,
 * which end generation), and cutting a text at special-token strings
 * before the algorithm encodes the pieces between them.
 *
 * The algorithms live in tokenizer_spm.c (SentencePiece-style, "llama")
 * and tokenizer_bpe.c (byte-level BPE, "gpt2"); ids go back to bytes in
 * tokenizer_decode.c.
 *
 * Behaviour follows llama.cpp's llama-vocab.cpp so that ids match it
 * exactly; the few deliberate differences are listed in tokenizer.h.
 */
#include "tokenizer.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "tokenizer_internal.h"

#define KEY_MODEL "tokenizer.ggml.model"
#define KEY_TOKENS "tokenizer.ggml.tokens"
#define KEY_SCORES "tokenizer.ggml.scores"
#define KEY_TYPES "tokenizer.ggml.token_type"

/* ---------------------------------------------------------------- index */

int tok_index_init(tok_index *ix, uint64_t n_keys, rl_err *err) {
    uint64_t cap = 16;
    while (cap < n_keys * 2) cap *= 2; /* load factor <= 1/2 */
    ix->slots = rl_calloc(cap, sizeof *ix->slots, err);
    ix->mask = cap - 1;
    return ix->slots ? 0 : -1;
}

void tok_index_free(tok_index *ix) {
    free(ix->slots);
    ix->slots = NULL;
}

/* The slot to start probing at: FNV's low bits cluster, so mix them
 * (murmur3's finaliser). */
static uint64_t home_slot(const tok_index *ix, uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h & ix->mask;
}

void tok_index_put(tok_index *ix, uint32_t hash, int32_t value, bool replace, tok_index_eq eq,
                   const void *ctx, const void *key) {
    for (uint64_t i = home_slot(ix, hash);; i = (i + 1) & ix->mask) {
        uint64_t slot = ix->slots[i];
        if (slot == 0) {
            ix->slots[i] = ((uint64_t)hash << 32) | ((uint32_t)value + 1u);
            return;
        }
        if ((uint32_t)(slot >> 32) == hash && eq(ctx, (int32_t)(uint32_t)slot - 1, key)) {
            if (replace) ix->slots[i] = ((uint64_t)hash << 32) | ((uint32_t)value + 1u);
            return;
        }
    }
}

void tok_index_prefetch(const tok_index *ix, uint32_t hash) {
    __builtin_prefetch(&ix->slots[home_slot(ix, hash)], 1);
}

int32_t tok_index_get(const tok_index *ix, uint32_t hash, tok_index_eq eq, const void *ctx,
                      const void *key) {
    for (uint64_t i = home_slot(ix, hash);; i = (i + 1) & ix->mask) {
        uint64_t slot = ix->slots[i];
        if (slot == 0) return -1;
        if ((uint32_t)(slot >> 32) == hash && eq(ctx, (int32_t)(uint32_t)slot - 1, key))
            return (int32_t)(uint32_t)slot - 1;
    }
}

typedef struct str_key {
    const char *s;
    size_t len;
} str_key;

static bool text_eq(const void *ctx, int32_t id, const void *key) {
    const tokenizer *t = ctx;
    const str_key *k = key;
    return t->texts[id].len == k->len && memcmp(tok_text(t, id), k->s, k->len) == 0;
}

int32_t tok_lookup(const tokenizer *t, const char *s, size_t len) {
    if (len > t->max_text_len) return -1;
    str_key k = {s, len};
    return tok_index_get(&t->by_text, tok_hash(TOK_HASH_SEED, s, len), text_eq, t, &k);
}

/* ---------------------------------------------------------------- arrays */

int tok_ids_push(tok_ids *a, int32_t id, rl_err *err) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        int32_t *v = realloc(a->v, cap * sizeof *v);
        if (!v) return rl_fail(err, RL_ERR_INTERNAL, "tokenizer: out of memory");
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = id;
    return 0;
}

int tok_buf_reserve(tok_buf *b, size_t extra, rl_err *err) {
    if (b->cap - b->n >= extra) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->n < extra) cap *= 2;
    char *v = realloc(b->v, cap);
    if (!v) return rl_fail(err, RL_ERR_INTERNAL, "tokenizer: out of memory");
    b->v = v;
    b->cap = cap;
    return 0;
}

/* ---------------------------------------------------------------- loading */

int tok_load_fail(rl_err *err, const gguf_file *f, const char *key, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return rl_fail(err, RL_ERR_INPUT, "%s: %s: %s", f->path ? f->path : "model", key, what);
}

int tok_get_array(const gguf_file *f, const char *key, bool required, uint32_t type_a, uint32_t type_b,
                  const char *expected, const gguf_value **out, rl_err *err) {
    *out = NULL;
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return required ? tok_load_fail(err, f, key, "missing") : 0;
    if (kv->val.type != GGUF_ARRAY)
        return tok_load_fail(err, f, key, "expected an array of %s, found a %s", expected,
                             gguf_vtype_name(kv->val.type));
    if (kv->val.arr.type != type_a && kv->val.arr.type != type_b)
        return tok_load_fail(err, f, key, "expected an array of %s, found an array of %s", expected,
                             gguf_vtype_name(kv->val.arr.type));
    *out = &kv->val;
    return 0;
}

/* A token id from the file: absent, negative or out of range -> keep *id
 * (stories260K stores 4294967295 for "none"). */
static int get_token_id(const gguf_file *f, const char *key, int32_t n_vocab, int32_t *id, rl_err *err) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return 0;
    uint64_t u;
    if (gguf_value_u64(&kv->val, &u)) {
        if (u < (uint64_t)n_vocab) *id = (int32_t)u;
        return 0;
    }
    uint32_t type = kv->val.type;
    if (type == GGUF_INT8 || type == GGUF_INT16 || type == GGUF_INT32 || type == GGUF_INT64)
        return 0; /* negative: none */
    return tok_load_fail(err, f, key, "expected an integer token id, found %s", gguf_vtype_name(type));
}

static int get_flag(const gguf_file *f, const char *key, bool *out, rl_err *err) {
    const gguf_kv *kv = gguf_find(f, key);
    if (!kv) return 0;
    if (kv->val.type != GGUF_BOOL)
        return tok_load_fail(err, f, key, "expected a bool, found %s", gguf_vtype_name(kv->val.type));
    *out = kv->val.b;
    return 0;
}

static uint8_t attr_of_type(int64_t type) {
    switch (type) {
    case 1: return TOK_ATTR_NORMAL;
    case 2: return TOK_ATTR_UNKNOWN;
    case 3: return TOK_ATTR_CONTROL;
    case 4: return TOK_ATTR_USER_DEFINED;
    case 5: return TOK_ATTR_UNUSED;
    case 6: return TOK_ATTR_BYTE;
    default: return 0; /* undefined: decodes to nothing, like llama.cpp */
    }
}

/* Copies the token strings into one arena and builds the index. An empty
 * string becomes "[EMPTY_<id>]" as in llama.cpp (an empty special token
 * would otherwise match everywhere). */
static int load_texts(tokenizer *t, const gguf_file *f, const gguf_value *tokens, rl_err *err) {
    uint64_t total = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        uint64_t len = gguf_arr_str(tokens, (uint64_t)i).len;
        if (len > TOK_MAX_TOKEN_LEN)
            return tok_load_fail(err, f, KEY_TOKENS, "token %d is %llu bytes long (at most %d)", i,
                                 (unsigned long long)len, TOK_MAX_TOKEN_LEN);
        total += (len ? len : 24) + 1;
    }
    t->text = rl_calloc(total ? total : 1, 1, err);
    t->texts = rl_calloc((size_t)t->n_vocab, sizeof *t->texts, err);
    if (!t->text || !t->texts || tok_index_init(&t->by_text, (uint64_t)t->n_vocab, err)) return -1;
    uint32_t *hashes = rl_calloc((size_t)t->n_vocab, sizeof *hashes, err);
    if (!hashes) return -1;
    uint64_t at = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        gguf_str s = gguf_arr_str(tokens, (uint64_t)i);
        char *dst = t->text + at;
        size_t len = s.len;
        if (len) memcpy(dst, s.ptr, len);
        else len = (size_t)snprintf(dst, 24, "[EMPTY_%d]", i);
        dst[len] = 0;
        t->texts[i] = (tok_span){at, (uint32_t)len};
        at += len + 1;
        if (len > t->max_text_len) t->max_text_len = (uint32_t)len;
        hashes[i] = tok_hash(TOK_HASH_SEED, dst, len);
    }
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (i + TOK_PREFETCH_AHEAD < t->n_vocab) tok_index_prefetch(&t->by_text, hashes[i + TOK_PREFETCH_AHEAD]);
        str_key k = {tok_text(t, i), t->texts[i].len};
        tok_index_put(&t->by_text, hashes[i], i, true, text_eq, t, &k);
    }
    free(hashes);
    return 0;
}

static int load_scores_and_types(tokenizer *t, const gguf_file *f, rl_err *err) {
    t->scores = rl_calloc((size_t)t->n_vocab, sizeof *t->scores, err);
    t->attrs = rl_calloc((size_t)t->n_vocab, 1, err);
    if (!t->scores || !t->attrs) return -1;

    const gguf_value *scores;
    if (tok_get_array(f, KEY_SCORES, false, GGUF_FLOAT32, GGUF_INT32, "float32 (or int32)", &scores, err))
        return -1;
    if (scores) {
        if (scores->arr.n < (uint64_t)t->n_vocab)
            return tok_load_fail(err, f, KEY_SCORES, "%llu scores for %d tokens",
                             (unsigned long long)scores->arr.n, t->n_vocab);
        for (int32_t i = 0; i < t->n_vocab; i++) {
            double d = 0;
            gguf_arr_f64(scores, (uint64_t)i, &d);
            t->scores[i] = (float)d;
        }
    }

    const gguf_value *types;
    if (tok_get_array(f, KEY_TYPES, false, GGUF_INT32, GGUF_INT32, "int32", &types, err)) return -1;
    if (types && types->arr.n < (uint64_t)t->n_vocab)
        return tok_load_fail(err, f, KEY_TYPES, "%llu types for %d tokens", (unsigned long long)types->arr.n,
                         t->n_vocab);
    for (int32_t i = 0; i < t->n_vocab; i++) {
        int64_t type = 1;
        if (types) gguf_arr_i64(types, (uint64_t)i, &type);
        t->attrs[i] = attr_of_type(type);
    }
    return 0;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "<0xNN>" -> NN, or -1. */
static int parse_byte_token(const char *s, size_t len) {
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* What token i stands for, rendered with special tokens as their text
 * (llama.cpp's token_to_piece with special = true). Never longer than the
 * vocabulary string. */
static size_t render_piece(const tokenizer *t, int32_t i, char *out) {
    const char *s = tok_text(t, i);
    size_t len = t->texts[i].len;
    uint8_t attr = t->attrs[i];
    if (attr & (TOK_ATTR_UNKNOWN | TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED)) {
        memcpy(out, s, len);
        return len;
    }
    if (attr & TOK_ATTR_NORMAL) {
        if (t->kind == TOK_KIND_BPE) return tok_bpe_decode_text(s, len, out);
        size_t n = 0; /* spm: "▁" (E2 96 81) is a space */
        for (size_t j = 0; j < len; j++) {
            if (j + 2 < len && memcmp(s + j, "\xe2\x96\x81", 3) == 0) {
                out[n++] = ' ';
                j += 2;
            } else {
                out[n++] = s[j];
            }
        }
        return n;
    }
    if (attr & TOK_ATTR_BYTE) {
        int b = parse_byte_token(s, len);
        if (b >= 0) {
            out[0] = (char)b;
            return 1;
        }
        memcpy(out, s, len); /* a byte token not spelled <0xNN>: its text */
        return len;
    }
    return 0; /* unused or undefined */
}

static int build_pieces(tokenizer *t, rl_err *err) {
    uint64_t total = t->texts[t->n_vocab - 1].off + t->texts[t->n_vocab - 1].len + 1;
    t->bytes = rl_calloc(total, 1, err);
    t->pieces = rl_calloc((size_t)t->n_vocab, sizeof *t->pieces, err);
    if (!t->bytes || !t->pieces) return -1;
    uint64_t at = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        size_t n = render_piece(t, i, t->bytes + at);
        t->pieces[i] = (tok_span){at, (uint32_t)n};
        at += n;
        if (n > t->max_piece_len) t->max_piece_len = (uint32_t)n;
    }
    return 0;
}

/* Special ids: llama.cpp's defaults per kind, then the file's keys. */
static int load_special_ids(tokenizer *t, const gguf_file *f, rl_err *err) {
    if (t->kind == TOK_KIND_SPM) {
        t->bos = 1, t->eos = 2, t->unk = 0;
    } else {
        t->bos = 11, t->eos = 11, t->unk = -1; /* llama.cpp's (GPT-2's) defaults */
    }
    t->eot = t->eom = -1;
    int32_t *defaults[] = {&t->bos, &t->eos, &t->unk};
    for (size_t i = 0; i < RL_ARRAY_LEN(defaults); i++)
        if (*defaults[i] >= t->n_vocab) *defaults[i] = -1;

    if (get_token_id(f, "tokenizer.ggml.bos_token_id", t->n_vocab, &t->bos, err) ||
        get_token_id(f, "tokenizer.ggml.eos_token_id", t->n_vocab, &t->eos, err) ||
        get_token_id(f, "tokenizer.ggml.eot_token_id", t->n_vocab, &t->eot, err) ||
        get_token_id(f, "tokenizer.ggml.eom_token_id", t->n_vocab, &t->eom, err) ||
        get_token_id(f, "tokenizer.ggml.unknown_token_id", t->n_vocab, &t->unk, err))
        return -1;
    return get_flag(f, "tokenizer.ggml.add_bos_token", &t->add_bos, err);
}

/* End-of-generation tokens found by name, as llama.cpp does (its list,
 * less the entries of non-Llama families). The first of EOT_NAMES present
 * becomes the EOT token when the file names none. */
static const char *const EOT_NAMES[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>",
    "<EOT>", "_<EOT>", "<end_of_utterance>",
};
static const char *const EOG_NAMES[] = {
    "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
    "<|end_of_text|>", "</s>", "<EOT>", "_<EOT>", "<end_of_utterance>",
};

static void mark_eog(tokenizer *t, int32_t id) {
    if (id >= 0) t->attrs[id] |= TOK_ATTR_EOG | TOK_ATTR_CONTROL;
}

static void find_eog(tokenizer *t) {
    for (size_t i = 0; i < RL_ARRAY_LEN(EOT_NAMES) && t->eot < 0; i++)
        t->eot = tok_lookup(t, EOT_NAMES[i], strlen(EOT_NAMES[i]));
    if (t->eom < 0) t->eom = tok_lookup(t, "<|eom_id|>", strlen("<|eom_id|>"));
    for (size_t i = 0; i < RL_ARRAY_LEN(EOG_NAMES); i++)
        mark_eog(t, tok_lookup(t, EOG_NAMES[i], strlen(EOG_NAMES[i])));
    mark_eog(t, t->eot);
    mark_eog(t, t->eom);
    if (t->eos >= 0) t->attrs[t->eos] |= TOK_ATTR_EOG; /* its type stays as the file says */
}

/* Special tokens longest first (ties: lower id first), the order in which
 * they are cut out of a text. */
static int cmp_special(const void *a, const void *b, void *ctx) {
    const tokenizer *t = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (t->texts[x].len != t->texts[y].len) return t->texts[x].len > t->texts[y].len ? -1 : 1;
    return (x > y) - (x < y);
}

static int collect_specials(tokenizer *t, rl_err *err) {
    const uint8_t mask = TOK_ATTR_CONTROL | TOK_ATTR_USER_DEFINED | TOK_ATTR_UNKNOWN;
    int32_t n = 0;
    for (int32_t i = 0; i < t->n_vocab; i++) n += (t->attrs[i] & mask) != 0;
    t->specials = rl_calloc((size_t)n + 1, sizeof *t->specials, err);
    if (!t->specials) return -1;
    for (int32_t i = 0; i < t->n_vocab; i++) {
        if (!(t->attrs[i] & mask)) continue;
        t->specials[t->n_specials++] = i;
        if ((t->attrs[i] & TOK_ATTR_USER_DEFINED) && !(t->attrs[i] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN)))
            t->has_user_defined = true;
    }
    qsort_r(t->specials, (size_t)t->n_specials, sizeof *t->specials, cmp_special, t);
    return 0;
}

/* Byte fallback of spm: "<0xNN>", else the byte as a one-byte piece. */
static void find_byte_tokens(tokenizer *t) {
    for (int b = 0; b < 256; b++) {
        char hex[8], raw = (char)b;
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        int32_t id = tok_lookup(t, hex, 6);
        t->byte_token[b] = id >= 0 ? id : tok_lookup(t, &raw, 1);
    }
}

/* Whether every byte of any text ends up in some id (then no id stands for
 * more than the longest token string, or 4 bytes for an unknown character):
 * spm with an unknown token or all 256 byte pieces, bpe with a token for
 * every byte's stand-in. */
static bool never_drops(const tokenizer *t) {
    if (t->kind == TOK_KIND_BPE) return tok_bpe_all_bytes(t);
    if (t->unk >= 0) return true;
    for (int b = 0; b < 256; b++)
        if (t->byte_token[b] < 0) return false;
    return true;
}

static int load(tokenizer *t, const gguf_file *f, rl_err *err) {
    gguf_str model;
    if (!gguf_find(f, KEY_MODEL))
        return tok_load_fail(err, f, KEY_MODEL, "missing (not a model with a vocabulary?)");
    if (!gguf_get_str(f, KEY_MODEL, &model)) return tok_load_fail(err, f, KEY_MODEL, "expected a string");
    if (gguf_str_eq(model, "llama")) t->kind = TOK_KIND_SPM;
    else if (gguf_str_eq(model, "gpt2")) t->kind = TOK_KIND_BPE;
    else
        return tok_load_fail(err, f, KEY_MODEL, "unsupported tokenizer '%.*s' (rackllm knows llama and gpt2)",
                         (int)RL_MIN(model.len, 64), model.ptr);

    const gguf_value *tokens;
    if (tok_get_array(f, KEY_TOKENS, true, GGUF_STRING, GGUF_STRING, "string", &tokens, err)) return -1;
    if (tokens->arr.n == 0) return tok_load_fail(err, f, KEY_TOKENS, "empty vocabulary");
    if (tokens->arr.n > TOK_MAX_VOCAB)
        return tok_load_fail(err, f, KEY_TOKENS, "%llu tokens is too many (at most %d)",
                             (unsigned long long)tokens->arr.n, TOK_MAX_VOCAB);
    t->n_vocab = (int32_t)tokens->arr.n;

    if (load_texts(t, f, tokens, err) || load_scores_and_types(t, f, err)) return -1;
    if (t->kind == TOK_KIND_SPM) {
        t->add_bos = true;
        t->add_space_prefix = true;
        if (get_flag(f, "tokenizer.ggml.add_space_prefix", &t->add_space_prefix, err)) return -1;
        find_byte_tokens(t);
    } else {
        if (tok_bpe_load(t, f, err)) return -1;
        t->add_bos = tok_bpe_default_add_bos(t->bpe);
        for (int b = 0; b < 256; b++) t->byte_token[b] = -1;
    }
    if (load_special_ids(t, f, err)) return -1;
    find_eog(t);
    if (build_pieces(t, err) || collect_specials(t, err)) return -1;
    t->bytes_per_id = never_drops(t) ? RL_MAX((size_t)t->max_text_len, 4) : 0;
    return 0;
}

tokenizer *tok_load(const gguf_file *f, rl_err *err) {
    tokenizer *t = rl_calloc(1, sizeof *t, err);
    if (!t) return NULL;
    if (load(t, f, err)) {
        tok_free(t);
        return NULL;
    }
    return t;
}

void tok_free(tokenizer *t) {
    if (!t) return;
    free(t->text);
    free(t->texts);
    free(t->scores);
    free(t->attrs);
    tok_index_free(&t->by_text);
    free(t->bytes);
    free(t->pieces);
    free(t->specials);
    tok_bpe_free(t->bpe);
    free(t);
}

/* ---------------------------------------------------------------- queries */

tok_kind tok_get_kind(const tokenizer *t) { return t->kind; }
int32_t tok_n_vocab(const tokenizer *t) { return t->n_vocab; }
int32_t tok_bos(const tokenizer *t) { return t->bos; }
int32_t tok_eos(const tokenizer *t) { return t->eos; }
int32_t tok_eot(const tokenizer *t) { return t->eot; }
bool tok_add_bos(const tokenizer *t) { return t->add_bos; }

bool tok_is_eog(const tokenizer *t, int32_t id) { return tok_in_range(t, id) && (t->attrs[id] & TOK_ATTR_EOG); }
bool tok_is_control(const tokenizer *t, int32_t id) {
    return tok_in_range(t, id) && (t->attrs[id] & TOK_ATTR_CONTROL);
}

const char *tok_piece(const tokenizer *t, int32_t id, size_t *len) {
    if (!tok_in_range(t, id)) {
        if (len) *len = 0;
        return NULL;
    }
    if (len) *len = t->texts[id].len;
    return tok_text(t, id);
}

int32_t tok_find(const tokenizer *t, const char *piece, size_t len) { return tok_lookup(t, piece, len); }

/* ---------------------------------------------------------------- encoding */

/* A piece of the text: plain text to encode, or one special token. */
typedef struct fragment {
    int32_t token; /* -1: text */
    size_t off, len;
} fragment;

typedef struct fragments {
    fragment *v;
    size_t n, cap;
} fragments;

static int frag_push(fragments *a, fragment f, rl_err *err) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        fragment *v = realloc(a->v, cap * sizeof *v);
        if (!v) return rl_fail(err, RL_ERR_INTERNAL, "tokenizer: out of memory");
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = f;
    return 0;
}

/* Whether [pos, pos + n) overlaps one of the plain ranges (sorted, not
 * overlapping): a binary search for the first range that ends after pos. */
static bool in_plain(const tok_encode_opts *o, size_t pos, size_t n) {
    size_t lo = 0, hi = o->n_plain;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (o->plain[mid].off + o->plain[mid].len <= pos) lo = mid + 1;
        else hi = mid;
    }
    return lo < o->n_plain && o->plain[lo].off < pos + n && o->plain[lo].len > 0;
}

/* Cuts every occurrence of special token `id` out of the text fragments of
 * `in`, appending the result to `out` (llama.cpp's tokenizer_st_partition,
 * one token at a time, longest tokens first). With `keep_plain`, an
 * occurrence that touches a plain range stays text. */
static int cut_special(const tokenizer *t, int32_t id, const char *text, const fragments *in, fragments *out,
                       const tok_encode_opts *keep_plain, rl_err *err) {
    const char *needle = tok_text(t, id);
    size_t nlen = t->texts[id].len;
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        fragment fr = in->v[i];
        if (fr.token >= 0 || fr.len < nlen) {
            if (frag_push(out, fr, err)) return -1;
            continue;
        }
        size_t at = fr.off, from = fr.off, end = fr.off + fr.len;
        for (;;) {
            const char *hit = memmem(text + from, end - from, needle, nlen);
            if (!hit) break;
            size_t pos = (size_t)(hit - text);
            if (keep_plain && in_plain(keep_plain, pos, nlen)) {
                from = pos + 1; /* text here: look further on */
                continue;
            }
            if (pos > at && frag_push(out, (fragment){-1, at, pos - at}, err)) return -1;
            if (frag_push(out, (fragment){id, pos, nlen}, err)) return -1;
            at = from = pos + nlen;
        }
        if (at < end && frag_push(out, (fragment){-1, at, end - at}, err)) return -1;
    }
    return 0;
}

static int partition(const tokenizer *t, const char *text, size_t len, const tok_encode_opts *o, fragments *a,
                     fragments *b, rl_err *err) {
    a->n = 0;
    if (len == 0) return 0;
    if (frag_push(a, (fragment){-1, 0, len}, err)) return -1;
    if (!o->parse_special && !t->has_user_defined) return 0;
    for (int32_t i = 0; i < t->n_specials; i++) {
        int32_t id = t->specials[i];
        /* Without parse_special only user-defined tokens are cut out; in
         * the plain ranges too. */
        bool special = (t->attrs[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN)) != 0;
        if (!o->parse_special && special) continue;
        if (cut_special(t, id, text, a, b, special && o->n_plain ? o : NULL, err)) return -1;
        fragments tmp = *a;
        *a = *b;
        *b = tmp;
    }
    return 0;
}

/* The bytes of text's first UTF-8 character (1 for a stray byte). */
static size_t first_char_len(const char *s, size_t n) {
    size_t k = 1;
    while (k < n && ((unsigned char)s[k] & 0xC0) == 0x80 && k < 4) k++;
    return k;
}

/* src with the joiner after the first character of every occurrence of
 * needle, in one pass; NULL if none occurs or memory is short (*oom). */
static char *break_one(const char *src, const char *needle, size_t nlen, const char *joiner, size_t jlen, bool *oom) {
    size_t count = 0, len = strlen(src);
    for (const char *p = src; (p = strstr(p, needle)) != NULL; p += nlen) count++;
    if (count == 0) return NULL;
    char *out = malloc(len + count * jlen + 1), *w = out;
    if (!out) {
        *oom = true;
        return NULL;
    }
    size_t first = first_char_len(needle, nlen);
    const char *p = src, *hit;
    while ((hit = strstr(p, needle)) != NULL) {
        size_t before = (size_t)(hit - p);
        memcpy(w, p, before + first), w += before + first;
        memcpy(w, joiner, jlen), w += jlen;
        memcpy(w, hit + first, nlen - first), w += nlen - first;
        p = hit + nlen;
    }
    memcpy(w, p, strlen(p) + 1);
    return out;
}

char *tok_break_special(const tokenizer *t, const char *text, rl_err *err) {
    static const char JOINER[] = "\xE2\x81\xA0"; /* U+2060 */
    char *cur = NULL; /* the broken copy so far (NULL: none needed yet) */
    bool oom = false;
    for (int32_t i = 0; i < t->n_specials && !oom; i++) {
        int32_t id = t->specials[i];
        size_t nlen = t->texts[id].len;
        if (!(t->attrs[id] & (TOK_ATTR_CONTROL | TOK_ATTR_UNKNOWN)) || nlen == 0) continue;
        char *next = break_one(cur ? cur : text, tok_text(t, id), nlen, JOINER, sizeof JOINER - 1, &oom);
        if (next) {
            free(cur);
            cur = next;
        }
    }
    if (oom) {
        free(cur);
        rl_fail(err, RL_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    return cur;
}

bool tok_ids_surely_over(const tokenizer *t, tok_ids *a, size_t bytes) {
    if (!a->limit || !t->bytes_per_id || a->over) return a->over;
    size_t room = a->limit >= a->n ? a->limit - a->n : 0;
    if (bytes / t->bytes_per_id > room) a->over = true; /* needs more than bytes / per ids */
    return a->over;
}

static int encode(const tokenizer *t, const char *text, size_t len, const tok_encode_opts *o, tok_ids *out,
                  rl_err *err) {
    fragments a = {0}, b = {0};
    tok_work w = {0};
    int rc = 0;
    if (o->add_bos && t->bos >= 0) rc = tok_ids_push(out, t->bos, err);
    if (!rc && !tok_ids_surely_over(t, out, len)) rc = partition(t, text, len, o, &a, &b, err);
    /* spm puts a space before the text at the start and after each
     * special token (llama.cpp's is_prev_special). */
    bool prev_special = true;
    for (size_t i = 0; !rc && i < a.n && !tok_ids_over(out); i++) {
        fragment fr = a.v[i];
        if (fr.token >= 0) {
            rc = tok_ids_push(out, fr.token, err);
            prev_special = true;
        } else if (t->kind == TOK_KIND_SPM) {
            rc = tok_spm_encode(t, &w, text + fr.off, fr.len, t->add_space_prefix && prev_special, out, err);
            prev_special = false;
        } else {
            rc = tok_bpe_encode(t, &w, text + fr.off, fr.len, out, err);
        }
    }
    free(a.v);
    free(b.v);
    tok_work_free(&w);
    return rc;
}

int tok_encode_with(const tokenizer *t, const char *text, size_t len, const tok_encode_opts *o, int32_t *out,
                    int cap, rl_err *err) {
    if (len > (size_t)INT_MAX / 4)
        return rl_fail(err, RL_ERR_INPUT, "text of %zu bytes is too long to tokenize", len);
    if (!text && len) return rl_fail(err, RL_ERR_INPUT, "tokenize: no text");
    tok_ids ids = {.limit = o->max_ids > 0 ? (size_t)o->max_ids : 0};
    if (encode(t, text, len, o, &ids, err)) {
        free(ids.v);
        return -1;
    }
    if (cap > 0 && out) memcpy(out, ids.v, RL_MIN(ids.n, (size_t)cap) * sizeof *out);
    int n = tok_ids_over(&ids) ? o->max_ids + 1 : (int)ids.n;
    free(ids.v);
    return n;
}

int tok_encode(const tokenizer *t, const char *text, size_t len, bool add_bos, bool parse_special,
               int32_t *out, int cap, rl_err *err) {
    tok_encode_opts o = {.add_bos = add_bos, .parse_special = parse_special};
    return tok_encode_with(t, text, len, &o, out, cap, err);
}
