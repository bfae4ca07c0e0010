/*
 * corpus.c — reading, checking, splitting and tokenizing training text
 * (see corpus.h).
 */
#include "corpus.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The most bytes read from one file, and from all of them. */
#define MAX_FILE_BYTES (1ull << 32)
#define MAX_DOC_BYTES (1 << 29)

typedef struct doc {
    const char *text;
    size_t len;
    uint64_t hash;
    bool held;
} doc;

typedef struct reader {
    char **bufs;   /* every file's bytes */
    int n_bufs;
    doc *docs;
    int n_docs, cap_docs;
    uint64_t bytes;
} reader;

uint64_t corpus_fnv(uint64_t h, const void *data, size_t n) {
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

int corpus_check_utf8(const char *what, const uint8_t *b, size_t n, rl_err *err) {
    for (size_t i = 0; i < n;) {
        uint8_t c = b[i];
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (c == 0) return rl_fail(err, RL_ERR_INPUT, "%s: a NUL byte at offset %zu: not text", what, i);
        bool ok = len > 0 && i + len <= n;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1fu : len == 3 ? c & 0x0fu : c & 0x07u;
        for (size_t k = 1; ok && k < len; k++) {
            ok = (b[i + k] & 0xc0) == 0x80;
            cp = cp << 6 | (b[i + k] & 0x3fu);
        }
        /* no overlong forms, no surrogates, nothing past U+10FFFF */
        if (ok && len > 1)
            ok = cp >= (len == 2 ? 0x80u : len == 3 ? 0x800u : 0x10000u) && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
        if (!ok) return rl_fail(err, RL_ERR_INPUT, "%s: not UTF-8 text (invalid byte 0x%02x at offset %zu)", what, c, i);
        i += len;
    }
    return 0;
}

static int read_file(reader *R, const char *path, char **out, size_t *len, rl_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return rl_fail(err, RL_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_FILE_BYTES ||
        R->bytes + (uint64_t)st.st_size > MAX_FILE_BYTES) {
        fclose(f);
        return rl_fail(err, RL_ERR_INPUT, "%s: not a regular file of at most 4 GiB of text in all", path);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (!buf || got != (size_t)st.st_size) {
        free(buf);
        return rl_fail(err, RL_ERR_INPUT, "%s: could not read %lld bytes", path, (long long)st.st_size);
    }
    buf[got] = 0;
    R->bufs[R->n_bufs++] = buf;
    R->bytes += got;
    *out = buf;
    *len = got;
    return corpus_check_utf8(path, (const uint8_t *)buf, got, err);
}

/* A line that separates documents: only white space, or <|endoftext|>. */
static bool separator(const char *line, size_t len) {
    while (len && (line[len - 1] == '\r' || line[len - 1] == '\n')) len--;
    if (len == 13 && memcmp(line, "<|endoftext|>", 13) == 0) return true;
    for (size_t i = 0; i < len; i++)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\f' && line[i] != '\v') return false;
    return true;
}

static int add_doc(reader *R, const char *text, size_t len, const char *path, rl_err *err) {
    if (len > MAX_DOC_BYTES)
        return rl_fail(err, RL_ERR_INPUT, "%s: a document of %zu bytes (no blank line for 512 MiB) is too long", path,
                       len);
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r')) len--; /* the same text wherever it stands */
    if (R->n_docs == R->cap_docs) {
        int cap = R->cap_docs ? 2 * R->cap_docs : 256;
        doc *d = realloc(R->docs, (size_t)cap * sizeof *d);
        if (!d) return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
        R->docs = d;
        R->cap_docs = cap;
    }
    R->docs[R->n_docs++] = (doc){text, len, corpus_fnv(CORPUS_FNV_START, text, len), false};
    return 0;
}

/* Cuts a file's text into documents. */
static int split_docs(reader *R, const char *buf, size_t len, const char *path, rl_err *err) {
    const char *start = NULL, *end = NULL;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(buf + i, '\n', len - i);
        size_t line_len = nl ? (size_t)(nl - (buf + i)) + 1 : len - i;
        if (separator(buf + i, line_len)) {
            if (start && add_doc(R, start, (size_t)(end - start), path, err)) return -1;
            start = NULL;
        } else {
            if (!start) start = buf + i;
            end = buf + i + line_len;
        }
        i += line_len;
    }
    if (start && add_doc(R, start, (size_t)(end - start), path, err)) return -1;
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The regular files of a folder, by name. */
static int read_folder(reader *R, const char *dir, rl_err *err) {
    DIR *d = opendir(dir);
    if (!d) return rl_fail(err, RL_ERR_INPUT, "%s: cannot open the folder: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && rc == 0) {
        if (e->d_name[0] == '.') continue;
        char **more = realloc(names, (size_t)(n + 1) * sizeof *names);
        if (more) names = more;
        if (!more || !(names[n++] = strdup(e->d_name))) rc = rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    }
    closedir(d);
    if (n > 0) qsort(names, (size_t)n, sizeof *names, by_name);
    char **bufs = rc ? NULL : realloc(R->bufs, (size_t)(R->n_bufs + n + 1) * sizeof *R->bufs);
    if (bufs) R->bufs = bufs;
    else if (!rc) rc = rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    for (int i = 0; i < n && rc == 0; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        char *buf;
        size_t len;
        rc = read_file(R, path, &buf, &len, err) || split_docs(R, buf, len, path, err) ? -1 : 0;
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

static int read_path(reader *R, const char *path, rl_err *err) {
    struct stat st;
    if (stat(path, &st) != 0) return rl_fail(err, RL_ERR_INPUT, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return read_folder(R, path, err);
    char **bufs = realloc(R->bufs, (size_t)(R->n_bufs + 1) * sizeof *R->bufs);
    if (!bufs) return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    R->bufs = bufs;
    char *buf;
    size_t len;
    return read_file(R, path, &buf, &len, err) || split_docs(R, buf, len, path, err) ? -1 : 0;
}

static int by_hash(const void *a, const void *b) {
    const doc *x = *(doc *const *)a, *y = *(doc *const *)b;
    return x->hash < y->hash ? -1 : x->hash > y->hash ? 1 : x < y ? -1 : x > y;
}

/* Marks the held-out documents: the lowest hashes. */
static int hold_out(reader *R, double frac, rl_err *err) {
    if (frac <= 0) return 0;
    if (R->n_docs < 2)
        return rl_fail(err, RL_ERR_INPUT, "the text has %d document: too few to hold one out (--holdout 0 or --eval "
                       "FILE)", R->n_docs);
    int n_held = (int)(frac * R->n_docs + 0.5);
    n_held = RL_MAX(1, RL_MIN(n_held, R->n_docs - 1));
    doc **order = rl_calloc((size_t)R->n_docs, sizeof *order, err);
    if (!order) return -1;
    for (int i = 0; i < R->n_docs; i++) order[i] = &R->docs[i];
    qsort(order, (size_t)R->n_docs, sizeof *order, by_hash);
    for (int i = 0; i < n_held; i++) order[i]->held = true;
    free(order);
    return 0;
}

/* Tokenizes the documents with held == want into one stream. */
static int tokenize(const reader *R, bool want, const tokenizer *tok, corpus_split *s, rl_err *err) {
    size_t cap = 0;
    for (int i = 0; i < R->n_docs; i++)
        if (R->docs[i].held == want) cap += 2 * R->docs[i].len + 2;
    s->tokens = malloc(RL_MAX(cap, 1) * sizeof *s->tokens);
    if (!s->tokens) return rl_fail(err, RL_ERR_INTERNAL, "out of memory for %zu tokens", cap);
    for (int i = 0; i < R->n_docs; i++) {
        const doc *d = &R->docs[i];
        if (d->held != want) continue;
        int n = tok_encode(tok, d->text, d->len, tok_add_bos(tok), false, s->tokens + s->n_tokens,
                           (int)(2 * d->len + 2), err);
        if (n < 0) return rl_fail_prefix(err, "tokenizing the corpus: ");
        s->n_tokens += n;
        s->n_docs++;
    }
    return 0;
}

static void reader_free(reader *R) {
    for (int i = 0; i < R->n_bufs; i++) free(R->bufs[i]);
    free(R->bufs);
    free(R->docs);
}

int corpus_load(const corpus_params *p, const tokenizer *tok, corpus *c, rl_err *err) {
    memset(c, 0, sizeof *c);
    reader R = {0}, E = {0};
    int rc = read_path(&R, p->path, err);
    if (!rc && R.n_docs == 0) rc = rl_fail(err, RL_ERR_INPUT, "%s: no text to train on", p->path);
    if (!rc && p->eval_path) {
        rc = read_path(&E, p->eval_path, err);
        if (!rc && E.n_docs == 0) rc = rl_fail(err, RL_ERR_INPUT, "%s: no held-out text in it", p->eval_path);
        for (int i = 0; i < E.n_docs; i++) E.docs[i].held = true;
    } else if (!rc) {
        rc = hold_out(&R, p->holdout, err);
    }
    if (!rc) rc = tokenize(&R, false, tok, &c->train, err);
    if (!rc) rc = p->eval_path ? tokenize(&E, true, tok, &c->held, err) : tokenize(&R, true, tok, &c->held, err);
    c->n_files = R.n_bufs + E.n_bufs;
    c->bytes = R.bytes + E.bytes;
    reader_free(&R);
    reader_free(&E);
    if (rc) corpus_free(c);
    return rc;
}

void corpus_free(corpus *c) {
    free(c->train.tokens);
    free(c->held.tokens);
    memset(c, 0, sizeof *c);
}

int64_t corpus_n_seqs(const corpus_split *s, int seq_len) {
    return s->n_tokens > seq_len ? (s->n_tokens - 1) / seq_len : 0;
}

const int32_t *corpus_seq(const corpus_split *s, int seq_len, int64_t i) { return s->tokens + i * seq_len; }

uint64_t corpus_hash(const corpus *c) {
    uint64_t h = corpus_fnv(CORPUS_FNV_START, c->train.tokens, (size_t)c->train.n_tokens * sizeof(int32_t));
    h = corpus_fnv(h, "|", 1);
    return corpus_fnv(h, c->held.tokens, (size_t)c->held.n_tokens * sizeof(int32_t));
}
