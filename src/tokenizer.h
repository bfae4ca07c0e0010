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
 * templates; otherwise they are plain text.
 *
 * Detokenization is per token (a piece's bytes); tok_stream joins bytes that
 * arrive split across tokens so a caller only ever sees whole UTF-8.
 */
#ifndef RACKLLM_TOKENIZER_H
#define RACKLLM_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

struct gguf_file;
typedef struct tokenizer tokenizer;

typedef enum { TOK_KIND_SPM = 0, TOK_KIND_BPE = 1 } tok_kind;

/* Reads tokenizer.ggml.* from the file. Copies what it needs: the file may
 * be closed afterwards. */
tokenizer *tok_load(const struct gguf_file *f, rl_err *err);
void tok_free(tokenizer *t);

tok_kind tok_get_kind(const tokenizer *t);
int32_t tok_n_vocab(const tokenizer *t);
int32_t tok_bos(const tokenizer *t);     /* -1 if none */
int32_t tok_eos(const tokenizer *t);     /* -1 if none */
int32_t tok_eot(const tokenizer *t);     /* -1 if none (<|eot_id|> in Llama 3) */
bool tok_add_bos(const tokenizer *t);    /* tokenizer.ggml.add_bos_token (default true for spm) */
bool tok_is_eog(const tokenizer *t, int32_t id);     /* end of generation: eos, eot, ... */
bool tok_is_control(const tokenizer *t, int32_t id);

/* Encodes `len` bytes of text. Writes up to `cap` ids to `out` and returns
 * how many the text needs (which may exceed cap: call again with more room),
 * or -1 on error (err says why). */
int tok_encode(const tokenizer *t, const char *text, size_t len, bool add_bos, bool parse_special,
               int32_t *out, int cap, rl_err *err);

/* The vocabulary string of a token (as stored: "▁the", "<0x0A>", "Ġthe"). */
const char *tok_piece(const tokenizer *t, int32_t id, size_t *len);

/* The bytes a token stands for (spaces restored, byte tokens decoded).
 * Control tokens give "" unless `special`. Returns the byte count (may
 * exceed cap; nothing past cap is written). */
int tok_token_bytes(const tokenizer *t, int32_t id, bool special, char *buf, int cap);

/* Id of an exact vocabulary string, -1 if absent. */
int32_t tok_find(const tokenizer *t, const char *piece, size_t len);

/* Whole-text detokenization: the concatenated bytes of the tokens, without
 * the leading space the tokenizer added (spm). Returns the byte count
 * (may exceed cap). */
int tok_decode(const tokenizer *t, const int32_t *ids, int n, bool special, char *buf, int cap);

/* Streaming detokenizer: feed tokens, get back only complete UTF-8. */
typedef struct tok_stream {
    char pending[8];
    int n_pending;
} tok_stream;

/* Appends the text of `id` to out (cap bytes) and returns the bytes written.
 * Bytes of an unfinished UTF-8 character are held until the next token. */
int tok_stream_push(const tokenizer *t, tok_stream *s, int32_t id, char *out, int cap);
/* Whatever is still held (an invalid tail), e.g. at the end of generation. */
int tok_stream_flush(tok_stream *s, char *out, int cap);

#endif
