/*
 * tokenizer.h — text to token ids and back, as llama.cpp does it.
 *
 * Two vocabularies are supported, chosen by tokenizer.ggml.model:
 *  - "llama": SentencePiece-style BPE over scored pieces, a space prefix,
 *    "▁" for spaces, and byte fallback (<0xNN> pieces) for unknown bytes;
 *  - "gpt2": byte-level BPE with ranked merges, after a pre-tokenizer regex
 *    (Llama 3's, run by PCRE2) splits the text.
 * Special tokens (control / user-defined, like <|eot_id|>) are matched as
 * whole strings only when the caller asks (parse_special), as for chat
 * templates; otherwise they are plain text. (User-defined tokens are always
 * matched, as llama.cpp does.)
 *
 * Detokenization is per token (a piece's bytes); tok_stream joins bytes that
 * arrive split across tokens so a caller only ever sees whole UTF-8.
 *
 * A loaded tokenizer is read-only: any number of threads may encode and
 * decode with it at once.
 *
 * Where rackllm differs from llama.cpp on purpose:
 *  - tok_decode does not apply llama.cpp's "clean_spaces" rewriting for
 *    BPE vocabularies (" ?" -> "?"): decoding gives back the exact text;
 *    and it drops the spm space prefix after a leading BOS too;
 *  - `tokenizer.ggml.pre` names llama.cpp maps to the Llama 3, Qwen 2 or
 *    GPT-2 regexes get those, the digits-first cascade too (smollm,
 *    starcoder, ...: tokenizer_bpe.c lists them); any other name,
 *    "default" and a missing one fall back to the GPT-2 regex instead of
 *    failing (llama.cpp rejects unknown names and runs a four-regex cascade
 *    for "default");
 *  - invalid UTF-8 in BPE input becomes U+FFFD per bad byte (as llama.cpp),
 *    but overlong forms and surrogates count as invalid too;
 *  - where llama.cpp would abort (spm byte fallback without byte pieces,
 *    BOS asked for but absent) rackllm uses <unk> or leaves the token out;
 *  - model-specific attributes llama.cpp sets by model name (lstrip/rstrip
 *    around special tokens for Phi-3 and some BERTs) are not applied.
 * Unicode classes (\p{L}, \p{N}, \s) come from PCRE2's tables, llama.cpp
 * uses its own: they can differ for characters newer than either's Unicode
 * version, and PCRE2's \s includes U+180E.
 *
 * Cost: encoding is O(n log n) in the text (priority queues of merges);
 * cutting special tokens out of the text is O(text x special tokens), as in
 * llama.cpp — cheap for Llama vocabularies (3 or 256 special tokens).
 */
#ifndef RACKLLM_TOKENIZER_H
#define RACKLLM_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

struct gguf_file;
typedef struct tokenizer tokenizer;

/* What a vocabulary may hold, so that a crafted file cannot make loading
 * (or any size computed from a token) unbounded: real vocabularies have up
 * to ~260K tokens of at most a few hundred bytes (Llama 3: 128,256 tokens,
 * the longest 256 bytes; 280,147 merges). */
#define TOK_MAX_VOCAB (1 << 22)       /* tokens (and merges) */
#define TOK_MAX_TOKEN_LEN (1 << 14)   /* bytes of a token's string (a merge: two and a space) */

typedef enum { TOK_KIND_SPM = 0, TOK_KIND_BPE = 1 } tok_kind;

/* Reads tokenizer.ggml.* from the file. Copies what it needs: the file may
 * be closed afterwards. Bad or missing metadata: NULL, err (RL_ERR_INPUT)
 * names the key and what is wrong. Special-token ids that are out of range
 * (e.g. 4294967295) or negative count as absent. */
tokenizer *tok_load(const struct gguf_file *f, rl_err *err);
void tok_free(tokenizer *t);

tok_kind tok_get_kind(const tokenizer *t);
int32_t tok_n_vocab(const tokenizer *t);
int32_t tok_bos(const tokenizer *t);     /* -1 if none */
int32_t tok_eos(const tokenizer *t);     /* -1 if none */
int32_t tok_eot(const tokenizer *t);     /* -1 if none (<|eot_id|> in Llama 3) */
/* tokenizer.ggml.add_bos_token; default true for spm and Llama-3 BPE. */
bool tok_add_bos(const tokenizer *t);
/* End of generation: eos, eot, eom (<|eom_id|>) and the tokens llama.cpp
 * recognises by name (<|eot_id|>, <|end_of_text|>, <|im_end|>, </s>, ...). */
bool tok_is_eog(const tokenizer *t, int32_t id);
bool tok_is_control(const tokenizer *t, int32_t id); /* false for ids out of range */

/* Encodes `len` bytes of text. Writes up to `cap` ids to `out` and returns
 * how many the text needs (which may exceed cap: call again with more room),
 * or -1 on error (err says why). add_bos prepends BOS when the vocabulary
 * has one. Never needs more than 2 * len + 2 ids. */
int tok_encode(const tokenizer *t, const char *text, size_t len, bool add_bos, bool parse_special,
               int32_t *out, int cap, rl_err *err);

/* A byte range of a text. */
typedef struct tok_range {
    size_t off, len;
} tok_range;

typedef struct tok_encode_opts {
    bool add_bos;           /* BOS first, when the vocabulary has one */
    bool parse_special;     /* control tokens' strings become those tokens ... */
    const tok_range *plain; /* ... except where they touch one of these ranges (sorted,
                               not overlapping): there the text is plain, as without
                               parse_special (a chat message's content in its template) */
    size_t n_plain;
    int max_ids;            /* > 0: stop as soon as the text surely needs more ids than
                               this, and return max_ids + 1 (the ids before are written) */
} tok_encode_opts;

/* A copy of text in which every control token's string (what parse_special
 * would make a token: "<|eot_id|>", "<|im_start|>" ...) is broken by a
 * WORD JOINER (U+2060) after its first character, so that no tokenization
 * can make it that token; NULL (and no error) when the text holds none, or
 * on a failed allocation (err set). For text that goes through a template
 * whose output is then tokenized with parse_special: a chat message's
 * content, where the template may move or rewrite it so that its place in
 * the output is not known (chat_jinja). */
char *tok_break_special(const tokenizer *t, const char *text, rl_err *err);

/* tok_encode with options. With max_ids the work stops at the limit: after
 * the fragment or word that passes it, or before one whose length alone
 * needs more ids than are left (no id stands for more bytes than the
 * longest token string), so a huge text costs little more than the limit. */
int tok_encode_with(const tokenizer *t, const char *text, size_t len, const tok_encode_opts *o, int32_t *out,
                    int cap, rl_err *err);

/* The vocabulary string of a token (as stored: "▁the", "<0x0A>", "Ġthe"),
 * NUL-terminated; NULL for an id out of range. */
const char *tok_piece(const tokenizer *t, int32_t id, size_t *len);

/* The bytes a token stands for (spaces restored, byte tokens decoded).
 * Control and unknown tokens give "" unless `special`. Returns the byte
 * count (may exceed cap; nothing past cap is written); 0 for ids out of
 * range. */
int tok_token_bytes(const tokenizer *t, int32_t id, bool special, char *buf, int cap);

/* The most bytes tok_token_bytes ever returns for this vocabulary (at most
 * TOK_MAX_TOKEN_LEN). */
size_t tok_max_token_bytes(const tokenizer *t);

/* Id of an exact vocabulary string, -1 if absent. */
int32_t tok_find(const tokenizer *t, const char *piece, size_t len);

/* Whole-text detokenization: the concatenated bytes of the tokens. For spm
 * the space the encoder put in front of the text is removed again: one
 * leading space of the first token that gives any bytes (so a leading BOS
 * does not count when `special` is false). Returns the byte count (may
 * exceed cap; nothing past cap is written). */
int tok_decode(const tokenizer *t, const int32_t *ids, int n, bool special, char *buf, int cap);

/* Streaming detokenizer: feed tokens, get back only complete, valid UTF-8.
 * Zero-initialise one per sequence. */
typedef struct tok_stream {
    char pending[8]; /* the start of an unfinished character (at most 3 bytes) */
    int n_pending;
} tok_stream;

/* Room that always suffices for one tok_stream_push / tok_stream_flush. */
size_t tok_stream_bound(const tokenizer *t);

/* Appends the text of `id` to out and returns the bytes written. Special
 * tokens are written as their text (<|eot_id|>): a caller that hides them
 * does not push them (tok_is_control). Bytes of an unfinished UTF-8
 * character are held until the next token; bytes that can never form a
 * character are replaced by U+FFFD. Returns -1, consuming nothing, if the
 * output does not fit in cap (tok_stream_bound bytes always do). */
int tok_stream_push(const tokenizer *t, tok_stream *s, int32_t id, char *out, size_t cap);
/* Ends the stream: an unfinished character still held becomes U+FFFD.
 * Returns the bytes written (at most 3), -1 if cap < 3. */
int tok_stream_flush(tok_stream *s, char *out, size_t cap);

#endif
