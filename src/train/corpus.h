/*
 * corpus.h — the text a model is trained on, read and checked, split into
 * training and held-out documents, tokenized, and cut into sequences.
 *
 * Input: a UTF-8 text file or a folder of them (its regular files, by name;
 * names starting with '.' are skipped). Every byte is checked: invalid
 * UTF-8 or a NUL byte is an error naming the file and the byte offset; so
 * is a corpus with no text at all.
 *
 * Documents: a file's text is cut at blank lines (a line holding only
 * white space) and at lines that are exactly "<|endoftext|>"; each
 * document is tokenized on its own with the tokenizer's BOS in front (when
 * the vocabulary adds one), and the documents are joined into one token
 * stream per split.
 *
 * The held-out split is by document and deterministic: the documents whose
 * FNV-1a hash of their bytes is lowest, a `holdout` fraction of them (at
 * least one). It depends on the text alone, not on the seed or the order of
 * files, so every run on the same data holds out the same documents.
 * Alternatively a separate file is the held-out text (eval_path).
 *
 * Sequences: stream positions i*T .. i*T + T (T + 1 tokens: T inputs and
 * their next tokens), so consecutive sequences share one token.
 */
#ifndef RACKLLM_CORPUS_H
#define RACKLLM_CORPUS_H

#include <stdint.h>

#include "base/common.h"
#include "text/tokenizer.h"

typedef struct corpus_params {
    const char *path;      /* a file or a folder */
    const char *eval_path; /* NULL: hold out documents of path */
    double holdout;        /* fraction of documents held out (when eval_path is NULL) */
} corpus_params;

typedef struct corpus_split {
    int32_t *tokens;
    int64_t n_tokens;
    int n_docs;
} corpus_split;

typedef struct corpus {
    corpus_split train, held;
    int n_files;
    uint64_t bytes;  /* of text read */
} corpus;

int corpus_load(const corpus_params *p, const tokenizer *tok, corpus *c, rl_err *err);
void corpus_free(corpus *c);

/* Sequences of seq_len (+1) tokens in a split. */
int64_t corpus_n_seqs(const corpus_split *s, int seq_len);
/* The seq_len + 1 tokens of sequence i. */
const int32_t *corpus_seq(const corpus_split *s, int seq_len, int64_t i);

/* FNV-1a (64 bits) of n bytes, continuing from h (start: CORPUS_FNV_START). */
#define CORPUS_FNV_START 0xcbf29ce484222325ull
uint64_t corpus_fnv(uint64_t h, const void *data, size_t n);

/* A hash of both splits' tokens (what a teacher cache is keyed on). */
uint64_t corpus_hash(const corpus *c);

/* Checks that bytes are UTF-8 text: -1 with err naming `what` and the
 * offset of the first invalid byte (or NUL). */
int corpus_check_utf8(const char *what, const uint8_t *b, size_t n, rl_err *err);

#endif
