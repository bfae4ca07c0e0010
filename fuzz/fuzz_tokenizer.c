/*
 * fuzz_tokenizer.c — libFuzzer target for the tokenizer: any bytes, as
 * text, through both vocabularies (Llama 2's SentencePiece and Llama 3's
 * byte-level BPE, loaded once from ../shared or $RACKLLM_SHARED), with and
 * without special-token parsing, then back through tok_decode and the
 * UTF-8 stream. Beyond "no crash, no leak, no undefined behaviour" it
 * checks what must always hold:
 *  - valid UTF-8 decodes back to itself, in both vocabularies (for spm:
 *    unless it holds "▁" itself, which is how spm writes a space; and not
 *    for broken UTF-8, where llama.cpp's character split takes the byte
 *    after a stray lead byte along, so a space after it comes back as "▁");
 *  - the stream only ever emits valid UTF-8.
 * An input that starts with "GGUF" is also opened as a model file and its
 * vocabulary, if any, loaded and used: broken metadata must fail cleanly.
 *
 *   CC=clang cmake -S . -B build-fuzz -DRACKLLM_FUZZ=ON -DRACKLLM_SANITIZE=ON
 *   cmake --build build-fuzz --target fuzz_tokenizer
 *   build-fuzz/fuzz_tokenizer fuzz/corpus/fuzz_tokenizer -max_total_time=60
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf/gguf.h"
#include "text/tokenizer.h"

static tokenizer *g_spm, *g_bpe; /* loaded once: the harness's fixture */

static tokenizer *load(const char *rel) {
    const char *dir = getenv("RACKLLM_SHARED");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "../shared", rel);
    rl_err err = {0};
    gguf_file *f = gguf_open(path, &err);
    tokenizer *t = f ? tok_load(f, &err) : NULL;
    gguf_close(f);
    if (!t) {
        fprintf(stderr, "fuzz_tokenizer: %s (set RACKLLM_SHARED)\n", err.msg);
        abort();
    }
    return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    g_spm = load("golden/tokenizer/ggml-vocab-llama-spm.gguf");
    g_bpe = load("golden/tokenizer/ggml-vocab-llama-bpe.gguf");
    return 0;
}

static int utf8_valid(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t len = c < 0x80                  ? 1
                     : c >= 0xC2 && c <= 0xDF ? 2
                     : c >= 0xE0 && c <= 0xEF ? 3
                     : c >= 0xF0 && c <= 0xF4 ? 4
                                              : 0;
        if (!len || i + len > n) return 0;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return 0;
        if (len == 3 && ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F))) return 0;
        if (len == 4 && ((c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] > 0x8F))) return 0;
        i += len;
    }
    return 1;
}

/* Tokenizes, decodes and streams; returns whether decode gave the text back. */
static int exercise(const tokenizer *t, const uint8_t *data, size_t size, int special) {
    rl_err err = {0};
    const char *text = (const char *)data;
    int n = tok_encode(t, text, size, special, special, NULL, 0, &err);
    if (n < 0) abort(); /* no input is an error for a loaded vocabulary */
    int32_t *ids = malloc(sizeof *ids * (size_t)(n + 1));
    if (tok_encode(t, text, size, special, special, ids, n, &err) != n) abort();
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= tok_n_vocab(t)) abort();

    int len = tok_decode(t, ids, n, false, NULL, 0);
    char *back = malloc((size_t)len + 1);
    if (tok_decode(t, ids, n, false, back, len) != len) abort();
    int same = (size_t)len == size && memcmp(back, data, size) == 0;

    tok_stream s = {0};
    size_t cap = tok_stream_bound(t);
    char *out = malloc((size_t)cap);
    for (int i = 0; i < n; i++) {
        int k = tok_stream_push(t, &s, ids[i], out, cap);
        if (k < 0 || !utf8_valid((const uint8_t *)out, (size_t)k)) abort();
    }
    int k = tok_stream_flush(&s, out, cap);
    if (k < 0 || !utf8_valid((const uint8_t *)out, (size_t)k)) abort();
    free(out);
    free(back);
    free(ids);
    return same;
}

/* The input as a model file: loading may fail, but cleanly. */
static void fuzz_vocabulary(const uint8_t *data, size_t size) {
    rl_err err = {0};
    gguf_file *f = gguf_open_memory(data, size, "fuzz", &err);
    if (!f) return;
    tokenizer *t = tok_load(f, &err);
    gguf_close(f); /* the tokenizer must not need the file any more */
    if (!t) return;
    static const char SAMPLE[] = "Hello <s> world <|eot_id|> caf\xc3\xa9 \xf0\x9f\x98\x80 \xff 123  ";
    exercise(t, (const uint8_t *)SAMPLE, sizeof SAMPLE - 1, 0);
    exercise(t, (const uint8_t *)SAMPLE, sizeof SAMPLE - 1, 1);
    for (int32_t id = -1; id <= tok_n_vocab(t) && id < 4096; id++) {
        char buf[64];
        size_t len;
        tok_piece(t, id, &len);
        tok_token_bytes(t, id, id & 1, buf, sizeof buf);
        tok_is_eog(t, id);
    }
    tok_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1 << 15)) return 0; /* long inputs only slow the search down */
    if (size >= 4 && memcmp(data, "GGUF", 4) == 0) fuzz_vocabulary(data, size);
    int valid = utf8_valid(data, size);
    int same_spm = exercise(g_spm, data, size, 0);
    if (valid && !same_spm && !memmem(data, size, "\xe2\x96\x81", 3)) abort();
    exercise(g_spm, data, size, 1);
    int same_bpe = exercise(g_bpe, data, size, 0);
    if (valid && !same_bpe) abort();
    exercise(g_bpe, data, size, 1);
    return 0;
}
