/*
 * tokvec.c — llama.cpp's ids for test strings: reads NAME.gguf.inp (strings
 * separated by lines "__ggml_vocab_test__", as llama.cpp's own vocabulary
 * tests) and prints one line of ids per string, tokenized by libllama with
 * no BOS and special tokens not parsed — the .out file test_tokenizer
 * compares with. Not part of the build; see README.md for how it is run.
 */
#include <llama.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet(enum ggml_log_level l, const char *t, void *u) { (void)l; (void)t; (void)u; }

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: tokvec VOCAB.gguf INP\n"); return 2; }
    llama_log_set(quiet, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "load failed\n"); return 1; }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    FILE *f = fopen(argv[2], "rb");
    if (!f) { perror(argv[2]); return 1; }
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    static const char SEP[] = "\n__ggml_vocab_test__\n";
    for (char *p = buf; p < buf + n;) {
        char *sep = strstr(p, SEP);
        size_t len = sep ? (size_t)(sep - p) : strlen(p);
        llama_token toks[4096];
        int k = llama_tokenize(vocab, p, (int)len, toks, 4096, false, false);
        if (k < 0) { fprintf(stderr, "tokenize failed\n"); return 1; }
        for (int i = 0; i < k; i++) printf("%s%d", i ? " " : "", toks[i]);
        printf("\n");
        p = sep ? sep + strlen(SEP) : buf + n;
    }
    llama_model_free(model);
    return 0;
}
