/*
 * test_fuzz_corpus.c — makes the seed corpus of the GGUF fuzzer, and keeps
 * it honest.
 *
 *   test_fuzz_corpus --write DIR   writes the seeds into DIR
 *                                  (fuzz/corpus/fuzz_gguf/ is what we commit)
 *   test_fuzz_corpus               (CTest) regenerates every seed in memory
 *                                  and checks the committed file is identical,
 *                                  then runs the fuzz target's own checks
 *                                  (fuzz/fuzz_gguf.c, included below) on every
 *                                  file of the committed corpus, so the seeds
 *                                  and any crash inputs added there later are
 *                                  replayed by every test run, ASan included.
 *
 * The seeds are small valid files that between them use every value type,
 * nested arrays, every tensor type, a custom alignment, both versions and a
 * tiny but complete llama model of each tokenizer kind; plus the headers of
 * the shared models (metadata without the vocabulary, and the tensor infos,
 * cut before the tensor data), which make the fuzzer start from real layouts.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/fuzz_gguf.c"
#include "gguf/gguf.h"
#include "test.h"
#include "base/types.h"

#define CORPUS_DIR "fuzz/corpus/fuzz_gguf"
#define SEED_MAX (64 * 1024)

typedef struct seed {
    char name[64];
    char *bytes;
    size_t len;
    bool valid; /* false: a header cut before its tensor data */
} seed;

typedef struct seeds {
    seed items[32];
    int n;
} seeds;

/* Writes w into a new seed (and frees w). */
static seed *add(seeds *s, const char *name, gguf_writer *w) {
    rl_err err = {0};
    seed *sd = &s->items[s->n++];
    snprintf(sd->name, sizeof sd->name, "%s", name);
    sd->valid = true;
    FILE *mem = open_memstream(&sd->bytes, &sd->len);
    CHECKF(gguf_writer_write_stream(w, mem, name, NULL, NULL, NULL, &err) == 0, "%s: %s", name, err.msg);
    fclose(mem);
    gguf_writer_free(w);
    return sd;
}

/* A deterministic byte pattern for tensor data. */
static uint8_t *pattern(size_t n, unsigned salt) {
    uint8_t *p = malloc(n ? n : 1);
    uint32_t x = 2463534242u + salt;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        p[i] = (uint8_t)x;
    }
    return p;
}

/* Tensor data must live until the writer runs: one arena per seed set. */
typedef struct arena {
    uint8_t *blocks[256];
    int n;
} arena;

static const void *data_for(arena *a, uint32_t type, const uint64_t *ne, uint32_t n_dims) {
    uint64_t row, n = 1;
    for (uint32_t d = 1; d < n_dims; d++) n *= ne[d];
    if (!rl_type_row_bytes(type, ne[0], &row)) return NULL;
    uint8_t *p = pattern((size_t)(row * n), (unsigned)a->n);
    /* F16/BF16/F32 data: keep values finite (clear the top exponent bit) */
    if (type == RL_TYPE_F32) for (size_t i = 3; i < row * n; i += 4) p[i] &= 0xbf;
    if (type == RL_TYPE_F16 || type == RL_TYPE_BF16) for (size_t i = 1; i < row * n; i += 2) p[i] &= 0xbf;
    a->blocks[a->n++] = p;
    return p;
}

static void tensor(gguf_writer *w, arena *a, const char *name, uint32_t type, uint32_t n_dims, uint64_t ne0,
                   uint64_t ne1) {
    rl_err err = {0};
    uint64_t ne[GGUF_MAX_DIMS] = {ne0, ne1, 1, 1};
    CHECKF(gguf_writer_add_tensor(w, name, type, n_dims, ne, data_for(a, type, ne, n_dims), &err) == 0, "%s: %s",
           name, err.msg);
}

static void add_scalar(gguf_writer *w, const char *key, gguf_value v) {
    gguf_writer_add_value(w, (gguf_str){key, strlen(key)}, &v);
}

/* ---- the synthetic seeds ---- */

static void every_type(seeds *s, arena *a) {
    gguf_writer *w = gguf_writer_new(3);
    add_scalar(w, "v.u8", (gguf_value){.type = GGUF_UINT8, .u64 = 200});
    add_scalar(w, "v.i8", (gguf_value){.type = GGUF_INT8, .i64 = -100});
    add_scalar(w, "v.u16", (gguf_value){.type = GGUF_UINT16, .u64 = 60000});
    add_scalar(w, "v.i16", (gguf_value){.type = GGUF_INT16, .i64 = -30000});
    gguf_writer_add_u32(w, "v.u32", 4000000000u);
    gguf_writer_add_i32(w, "v.i32", -2000000000);
    gguf_writer_add_f32(w, "v.f32", 1.5f);
    gguf_writer_add_bool(w, "v.bool", true);
    gguf_writer_add_str(w, "v.str", "h\xc3\xa9llo\n\"q\"\\");
    gguf_writer_add_u64(w, "v.u64", (1ull << 63) + 5);
    add_scalar(w, "v.i64", (gguf_value){.type = GGUF_INT64, .i64 = -(1ll << 62)});
    add_scalar(w, "v.f64", (gguf_value){.type = GGUF_FLOAT64, .f64 = 0.1});
    gguf_writer_add_str(w, "v.empty", "");
    const char *strs[] = {"a", "", "\xe2\x96\x81the", "<0x0A>"};
    gguf_writer_add_arr_str(w, "arr.string", strs, 4);
    uint8_t raw[24];
    for (int i = 0; i < 24; i++) raw[i] = (uint8_t)(i * 37);
    for (uint32_t t = 0; t < GGUF_VTYPE_COUNT; t++) {
        if (t == GGUF_STRING || t == GGUF_ARRAY) continue;
        char key[32];
        snprintf(key, sizeof key, "arr.%s", gguf_vtype_name(t));
        if (t == GGUF_BOOL) {
            uint8_t bools[3] = {1, 0, 1};
            gguf_writer_add_arr(w, key, t, bools, 3);
        } else if (t == GGUF_FLOAT32) {
            float f[3] = {0.5f, -2.0f, 1e30f};
            gguf_writer_add_arr(w, key, t, f, 3);
        } else if (t == GGUF_FLOAT64) {
            double d[3] = {0.25, -1e300, 3.0};
            gguf_writer_add_arr(w, key, t, d, 3);
        } else {
            gguf_writer_add_arr(w, key, t, raw, 3);
        }
    }
    gguf_writer_add_arr(w, "arr.empty", GGUF_INT32, raw, 0);
    /* nested: [["a", "bc"], [], ["d"]] and [[1, -2], [3]] and 8 levels deep */
    gguf_value s_a[2] = {{.type = GGUF_STRING, .str = {"a", 1}}, {.type = GGUF_STRING, .str = {"bc", 2}}};
    gguf_value s_d[1] = {{.type = GGUF_STRING, .str = {"d", 1}}};
    gguf_value inner_s[3] = {
        {.type = GGUF_ARRAY, .arr = {.type = GGUF_STRING, .n = 2, .items = s_a}},
        {.type = GGUF_ARRAY, .arr = {.type = GGUF_STRING, .n = 0, .items = s_d}},
        {.type = GGUF_ARRAY, .arr = {.type = GGUF_STRING, .n = 1, .items = s_d}},
    };
    add_scalar(w, "nest.strings", (gguf_value){.type = GGUF_ARRAY, .arr = {.type = GGUF_ARRAY, .n = 3, .items = inner_s}});
    int32_t i12[2] = {1, -2}, i3[1] = {3};
    gguf_value inner_i[2] = {
        {.type = GGUF_ARRAY, .arr = {.type = GGUF_INT32, .n = 2, .data = (const uint8_t *)i12}},
        {.type = GGUF_ARRAY, .arr = {.type = GGUF_INT32, .n = 1, .data = (const uint8_t *)i3}},
    };
    add_scalar(w, "nest.ints", (gguf_value){.type = GGUF_ARRAY, .arr = {.type = GGUF_ARRAY, .n = 2, .items = inner_i}});
    gguf_value chain[8];
    uint8_t leaf = 42;
    chain[7] = (gguf_value){.type = GGUF_ARRAY, .arr = {.type = GGUF_UINT8, .n = 1, .data = &leaf}};
    for (int d = 6; d >= 0; d--)
        chain[d] = (gguf_value){.type = GGUF_ARRAY, .arr = {.type = GGUF_ARRAY, .n = 1, .items = &chain[d + 1]}};
    add_scalar(w, "nest.deep", chain[0]);
    tensor(w, a, "a", RL_TYPE_F32, 2, 8, 2);
    tensor(w, a, "b", RL_TYPE_Q8_0, 2, 32, 1);
    tensor(w, a, "c", RL_TYPE_F16, 1, 4, 1);
    add(s, "every-type.gguf", w);
}

static void tensor_types(seeds *s, arena *a) {
    gguf_writer *w = gguf_writer_new(3);
    gguf_writer_add_str(w, "general.architecture", "none");
    for (uint32_t t = 0; t < RL_TYPE_COUNT; t++) {
        const rl_type_info *ti = rl_type_get(t);
        if (!ti) continue;
        char name[32];
        snprintf(name, sizeof name, "t.%s", ti->name);
        tensor(w, a, name, t, 2, ti->block, 2);
    }
    add(s, "tensor-types.gguf", w);
}

static void small_ones(seeds *s, arena *a) {
    add(s, "empty-v3.gguf", gguf_writer_new(3));

    gguf_writer *w = gguf_writer_new(2);
    gguf_writer_set_pad_empty(w, false);
    gguf_writer_add_str(w, "general.architecture", "llama");
    gguf_writer_add_u32(w, "llama.context_length", 16);
    add(s, "kv-only-v2-unpadded.gguf", w);

    w = gguf_writer_new(3);
    gguf_writer_add_u32(w, "general.alignment", 64);
    tensor(w, a, "x", RL_TYPE_F32, 1, 3, 1);
    tensor(w, a, "y", RL_TYPE_Q4_0, 2, 64, 3);
    tensor(w, a, "z", RL_TYPE_BF16, 4, 2, 1);
    add(s, "align64.gguf", w);
}

/* Hyper-parameters and tokenizer of a tiny model `shape_from_gguf` accepts. */
static void tiny_llama_kv(gguf_writer *w, const char *name, bool llama3) {
    gguf_writer_add_str(w, "general.architecture", "llama");
    gguf_writer_add_str(w, "general.name", name);
    gguf_writer_add_u32(w, "llama.context_length", llama3 ? 8192 : 64);
    gguf_writer_add_u32(w, "llama.embedding_length", 32);
    gguf_writer_add_u32(w, "llama.block_count", 1);
    gguf_writer_add_u32(w, "llama.feed_forward_length", 64);
    gguf_writer_add_u32(w, "llama.attention.head_count", 4);
    gguf_writer_add_u32(w, "llama.attention.head_count_kv", 2);
    gguf_writer_add_u32(w, "llama.rope.dimension_count", 8);
    gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    gguf_writer_add_f32(w, "llama.rope.freq_base", llama3 ? 500000.0f : 10000.0f);
    if (llama3) {
        gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2");
        gguf_writer_add_str(w, "tokenizer.ggml.pre", "llama-bpe");
        const char *toks[] = {"!", "a", "b", "ab", "\xc4\xa0", "\304\240ab", "<|begin_of_text|>", "<|eot_id|>"};
        gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, 8);
        int32_t types[8] = {1, 1, 1, 1, 1, 1, 3, 3};
        gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, types, 8);
        const char *merges[] = {"a b", "\xc4\xa0 ab"};
        gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", merges, 2);
        gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 6);
        gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 7);
        gguf_writer_add_str(w, "tokenizer.chat_template", "{% for m in messages %}{{ m.content }}{% endfor %}");
    } else {
        gguf_writer_add_str(w, "tokenizer.ggml.model", "llama");
        const char *toks[] = {"<unk>", "<s>", "</s>", "<0x0A>", "\xe2\x96\x81", "a", "b", "\342\226\201ab"};
        gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, 8);
        float scores[8] = {0, 0, 0, 0, -1, -2, -3, -4};
        gguf_writer_add_arr(w, "tokenizer.ggml.scores", GGUF_FLOAT32, scores, 8);
        int32_t types[8] = {2, 3, 3, 6, 1, 1, 1, 1};
        gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, types, 8);
        gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
        gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
        gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", true);
    }
}

static void tiny_llamas(seeds *s, arena *a) {
    for (int llama3 = 0; llama3 <= 1; llama3++) {
        gguf_writer *w = gguf_writer_new(3);
        tiny_llama_kv(w, llama3 ? "tiny-llama3" : "tiny-llama2", llama3);
        uint32_t wt = llama3 ? RL_TYPE_Q8_0 : RL_TYPE_Q4_0;
        tensor(w, a, "token_embd.weight", llama3 ? RL_TYPE_Q8_0 : RL_TYPE_F16, 2, 32, 8);
        tensor(w, a, "output_norm.weight", RL_TYPE_F32, 1, 32, 1);
        if (!llama3) tensor(w, a, "output.weight", RL_TYPE_Q8_0, 2, 32, 8);
        if (llama3) tensor(w, a, "rope_freqs.weight", RL_TYPE_F32, 1, 4, 1);
        tensor(w, a, "blk.0.attn_norm.weight", RL_TYPE_F32, 1, 32, 1);
        tensor(w, a, "blk.0.attn_q.weight", wt, 2, 32, 32);
        tensor(w, a, "blk.0.attn_k.weight", wt, 2, 32, 16);
        tensor(w, a, "blk.0.attn_v.weight", wt, 2, 32, 16);
        tensor(w, a, "blk.0.attn_output.weight", wt, 2, 32, 32);
        tensor(w, a, "blk.0.ffn_norm.weight", RL_TYPE_F32, 1, 32, 1);
        tensor(w, a, "blk.0.ffn_gate.weight", wt, 2, 32, 64);
        tensor(w, a, "blk.0.ffn_up.weight", wt, 2, 32, 64);
        tensor(w, a, "blk.0.ffn_down.weight", llama3 ? RL_TYPE_BF16 : RL_TYPE_Q4_1, 2, 64, 32);
        add(s, llama3 ? "tiny-llama3.gguf" : "tiny-llama2.gguf", w);
    }
}

/* The header of a shared model without its vocabulary: metadata (minus the
 * token lists) and tensor infos, cut where the tensor data would start. */
static void shared_header(seeds *s, const char *rel, const char *name) {
    static const char *const vocab[] = {"tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
                                        "tokenizer.ggml.merges", NULL};
    rl_err err = {0};
    gguf_file *f = gguf_open(shared_path(rel), &err);
    CHECKF(f != NULL, "%s", err.msg);
    if (!f) return;
    gguf_writer *w = gguf_writer_new(f->version);
    gguf_writer_copy_kv(w, f, vocab);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        char tname[256];
        snprintf(tname, sizeof tname, "%.*s", (int)t->name.len, t->name.ptr);
        CHECK(gguf_writer_add_tensor(w, tname, t->type, t->n_dims, t->ne, t->data, &err) == 0);
    }
    seed *sd = add(s, name, w);
    gguf_close(f);
    gguf_file *full = gguf_open_memory(sd->bytes, sd->len, name, &err);
    CHECKF(full != NULL, "%s: %s", name, err.msg);
    if (full) {
        sd->len = full->header_size; /* the tensor infos end here */
        sd->valid = false;
        gguf_close(full);
    }
}

static void make_seeds(seeds *s, arena *a) {
    memset(s, 0, sizeof *s);
    small_ones(s, a);
    every_type(s, a);
    tensor_types(s, a);
    tiny_llamas(s, a);
    shared_header(s, "models/stories260K.gguf", "header-stories260K.gguf");
    shared_header(s, "models/synth-s512-q4_k_m.gguf", "header-synth-s512-q4_k_m.gguf");
    shared_header(s, "models/synth-l3-q8_0.gguf", "header-synth-l3-q8_0.gguf");
}

static void free_seeds(seeds *s, arena *a) {
    for (int i = 0; i < s->n; i++) free(s->items[i].bytes);
    for (int i = 0; i < a->n; i++) free(a->blocks[i]);
}

/* ---- checking and writing ---- */

static char *read_all(const char *path, size_t *len) {
    FILE *in = fopen(path, "rb");
    if (!in) return NULL;
    char *buf = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (*len == cap) {
            cap = cap ? cap * 2 : 65536;
            char *q = realloc(buf, cap);
            if (!q) break;
            buf = q;
        }
        size_t n = fread(buf + *len, 1, cap - *len, in);
        if (n == 0) break;
        *len += n;
    }
    fclose(in);
    return buf;
}

static void check_seed(const seed *sd) {
    rl_err err = {0};
    CHECKF(sd->len < SEED_MAX, "%s: %zu bytes, seeds must stay under %d", sd->name, sd->len, SEED_MAX);
    gguf_file *f = gguf_open_memory(sd->bytes, sd->len, sd->name, &err);
    if (sd->valid) {
        CHECKF(f != NULL, "%s: %s", sd->name, err.msg);
    } else {
        CHECKF(f == NULL && (strstr(err.msg, "extends past the end") || strstr(err.msg, "before the tensor data")),
               "%s: a cut header should stop at the tensor data: %s", sd->name, f ? "accepted" : err.msg);
    }
    if (f && strncmp(sd->name, "tiny-llama", 10) == 0) {
        rl_shape shape;
        CHECKF(shape_from_gguf(f, &shape, &err) == 0, "%s: %s", sd->name, err.msg);
    }
    gguf_close(f);
    char path[512];
    size_t len;
    snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, sd->name);
    char *committed = read_all(path, &len);
    CHECKF(committed != NULL, "%s is missing: regenerate with `test_fuzz_corpus --write %s`", path, CORPUS_DIR);
    CHECKF(!committed || (len == sd->len && memcmp(committed, sd->bytes, len) == 0),
           "%s differs from what the generator makes now: regenerate with `test_fuzz_corpus --write %s`", path,
           CORPUS_DIR);
    free(committed);
}

/* Every file in the corpus through the fuzz target's checks (which abort on
 * a violation, failing the test loudly). */
static void replay_corpus(void) {
    DIR *dir = opendir(CORPUS_DIR);
    CHECKF(dir != NULL, "cannot open %s", CORPUS_DIR);
    if (!dir) return;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        size_t len;
        snprintf(path, sizeof path, "%s/%s", CORPUS_DIR, e->d_name);
        char *bytes = read_all(path, &len);
        CHECKF(bytes != NULL || len == 0, "cannot read %s", path);
        /* an exact-size copy, so ASan sees any read past the end */
        uint8_t *exact = malloc(len ? len : 1);
        if (len) memcpy(exact, bytes, len);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
        free(bytes);
        n++;
    }
    closedir(dir);
    printf("test_fuzz_corpus: replayed %d corpus files through fuzz_gguf\n", n);
    CHECK(n > 0);
}

static int write_seeds(const seeds *s, const char *dir) {
    for (int i = 0; i < s->n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, s->items[i].name);
        FILE *out = fopen(path, "wb");
        if (!out || fwrite(s->items[i].bytes, 1, s->items[i].len, out) != s->items[i].len) {
            fprintf(stderr, "test_fuzz_corpus: cannot write %s: %s\n", path, strerror(errno));
            if (out) fclose(out);
            return 1;
        }
        fclose(out);
        printf("%s (%zu bytes)\n", path, s->items[i].len);
    }
    return 0;
}

int main(int argc, char **argv) {
    seeds s;
    arena a = {0};
    make_seeds(&s, &a);
    if (argc == 3 && strcmp(argv[1], "--write") == 0) {
        int rc = test_failures ? 1 : write_seeds(&s, argv[2]);
        free_seeds(&s, &a);
        return rc;
    }
    test_init(argc, argv);
    if (test_selected("seeds"))
        for (int i = 0; i < s.n; i++) check_seed(&s.items[i]);
    free_seeds(&s, &a);
    RUN(replay_corpus);
    return test_report("test_fuzz_corpus");
}
