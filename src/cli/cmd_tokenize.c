/*
 * cmd_tokenize.c — `rackllm tokenize`: the token ids of a text under a
 * model's vocabulary, to check prompts and compare with llama.cpp.
 *
 * Prints one token per line, its id and the text it stands for
 * (`15043  ' Hello'`, with control bytes and broken UTF-8 escaped), or with
 * --ids one bracketed list (`[1, 15043, 3186]`). The text is the argument,
 * a file (-f), or standard input ('-').
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "gguf/gguf.h"
#include "text/tokenizer.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: rackllm tokenize -m FILE [--no-bos] [--ids] [--special] (TEXT | -f FILE | -)\n"
            "\n"
            "Shows the tokens of TEXT under the vocabulary of the GGUF model FILE.\n"
            "\n"
            "  -m, --model FILE  the model (any GGUF file with tokenizer.ggml.* metadata)\n"
            "  -f, --file FILE   read the text from FILE ('-': standard input)\n"
            "      --no-bos      do not add the BOS token, even if the model asks for it\n"
            "      --ids         print only the ids, as one list: [1, 15043, 3186]\n"
            "      --special     treat special-token text (<|eot_id|>, <s>) as those tokens\n"
            "  -h, --help        this help\n"
            "\n"
            "TEXT '-' also reads standard input. Without --ids each line is\n"
            "`ID  'TEXT'`: what the token stands for, with \\n, \\t, \\r, \\\\ and \\xNN\n"
            "(bytes that are not whole UTF-8) escaped.\n");
}

/* Reads a whole stream (the text to tokenize). */
static char *read_stream(FILE *in, size_t *len, rl_err *err) {
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    if (!buf) return rl_fail(err, RL_ERR_INTERNAL, "out of memory"), NULL;
    for (;;) {
        n += fread(buf + n, 1, cap - n, in);
        if (n < cap) break;
        char *bigger = cap < ((size_t)1 << 40) ? realloc(buf, cap * 2) : NULL;
        if (!bigger) {
            free(buf);
            return rl_fail(err, RL_ERR_INTERNAL, "out of memory reading the text"), NULL;
        }
        buf = bigger;
        cap *= 2;
    }
    if (ferror(in)) {
        free(buf);
        return rl_fail(err, RL_ERR_INPUT, "cannot read the text"), NULL;
    }
    *len = n;
    return buf;
}

static char *read_text_file(const char *path, size_t *len, rl_err *err) {
    if (strcmp(path, "-") == 0) return read_stream(stdin, len, err);
    FILE *f = fopen(path, "rb");
    if (!f) return rl_fail(err, RL_ERR_INPUT, "%s: cannot open", path), NULL;
    char *text = read_stream(f, len, err);
    fclose(f);
    if (!text) rl_fail_prefix(err, "%s: ", path);
    return text;
}

/* Writes bytes for a human: whole UTF-8 characters as they are, the rest
 * escaped. */
static void print_escaped(FILE *out, const char *s, int n) {
    for (int i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        bool whole = len > 1 && i + len <= n;
        for (int k = 1; whole && k < len; k++) whole = ((unsigned char)s[i + k] & 0xC0) == 0x80;
        if (whole) {
            fwrite(s + i, 1, (size_t)len, out);
            i += len;
            continue;
        }
        if (c == '\n') fputs("\\n", out);
        else if (c == '\t') fputs("\\t", out);
        else if (c == '\r') fputs("\\r", out);
        else if (c == '\\') fputs("\\\\", out);
        else if (c >= 0x20 && c < 0x7F) fputc(c, out);
        else fprintf(out, "\\x%02x", c);
        i++;
    }
}

static void print_tokens(const tokenizer *t, const int32_t *ids, int n, bool ids_only) {
    if (ids_only) {
        fputc('[', stdout);
        for (int i = 0; i < n; i++) printf(i ? ", %d" : "%d", ids[i]);
        fputs("]\n", stdout);
        return;
    }
    char *piece = malloc(tok_max_token_bytes(t) + 1);
    for (int i = 0; i < n && piece; i++) {
        int len = tok_token_bytes(t, ids[i], true, piece, (int)tok_max_token_bytes(t) + 1);
        printf("%6d  '", ids[i]);
        print_escaped(stdout, piece, len);
        fputs("'\n", stdout);
    }
    free(piece);
}

typedef struct options {
    const char *model, *file, *text;
    bool no_bos, ids_only, special;
} options;

/* 0: run; CLI_HELP; -1 with err. */
static int parse_args(int argc, char **argv, options *o, rl_err *err) {
    const cli_flag flags[] = {
        FLAG_STR("model", 'm', &o->model),
        FLAG_STR("file", 'f', &o->file),
        FLAG_BOOL("no-bos", 0, &o->no_bos),
        FLAG_BOOL("ids", 0, &o->ids_only),
        FLAG_BOOL("special", 0, &o->special),
    };
    int first, rc = cli_parse(argc, argv, flags, (int)RL_ARRAY_LEN(flags), usage, &first, err);
    if (rc) return rc;
    if (!o->model) return rl_fail(err, RL_ERR_INPUT, "no model (-m FILE)");
    if (first < argc && o->file) return rl_fail(err, RL_ERR_INPUT, "give the text or -f FILE, not both");
    if (first + 1 < argc) return rl_fail(err, RL_ERR_INPUT, "one TEXT argument only (quote it)");
    if (first == argc && !o->file) return rl_fail(err, RL_ERR_INPUT, "no text (TEXT, -f FILE, or '-' for standard input)");
    if (first < argc) o->text = argv[first];
    if (o->text && strcmp(o->text, "-") == 0) o->file = "-", o->text = NULL;
    return 0;
}

int cmd_tokenize(int argc, char **argv) {
    options o = {0};
    rl_err err = {0};
    int rc = parse_args(argc, argv, &o, &err);
    if (rc) return rc == CLI_HELP ? 0 : cli_fail(&err);

    size_t len = 0;
    char *owned = NULL;
    const char *text = o.text;
    if (o.file) {
        if (!(owned = read_text_file(o.file, &len, &err))) return cli_fail(&err);
        text = owned;
    } else {
        len = strlen(text);
    }

    gguf_file *f = gguf_open(o.model, &err);
    tokenizer *t = f ? tok_load(f, &err) : NULL;
    gguf_close(f);
    int32_t *ids = NULL;
    int n = -1;
    if (t) {
        bool bos = tok_add_bos(t) && !o.no_bos;
        n = tok_encode(t, text, len, bos, o.special, NULL, 0, &err);
        ids = n >= 0 ? malloc(sizeof *ids * (size_t)(n + 1)) : NULL;
        if (ids) n = tok_encode(t, text, len, bos, o.special, ids, n, &err);
        else if (n >= 0) n = rl_fail(&err, RL_ERR_INTERNAL, "out of memory");
    }
    if (n >= 0) print_tokens(t, ids, n, o.ids_only);
    rc = n >= 0 ? 0 : cli_fail(&err);
    free(ids);
    tok_free(t);
    free(owned);
    return rc;
}
