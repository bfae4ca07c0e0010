/*
 * test_distill.c — the distillation's files and its whole job, with the
 * real TinyStories model (../shared/models/stories260K.gguf) as the
 * teacher, on a few kilobytes of text:
 *
 *  - corpus: documents cut at blank lines and <|endoftext|>, the held-out
 *    split the same whatever the files' order, bad text refused with the
 *    file and byte offset;
 *  - teacher cache: its words are the teacher's engine logits (top-k, log-
 *    sum-exp); a stopped pass resumes, a torn or damaged record is
 *    recomputed, another run's file is refused naming the field, shards
 *    merge by concatenation;
 *  - the student GGUF reloads and the engine's logits equal the trainer's;
 *    F16 too, and `quantize` takes it;
 *  - the job: the same seed gives the same bytes; a run stopped (Ctrl-C)
 *    and resumed from its checkpoint ends with the same bytes as one that
 *    never stopped; bad input gets a clear error and no output file;
 *  - eval: llama-perplexity's figure on the same file and settings.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/engine.h"
#include "test.h"
#include "tools/quantize.h"
#include "train/corpus.h"
#include "train/distill.h"
#include "train/eval.h"
#include "train/student.h"
#include "train/tcache.h"

static char dir[256], teacher_path[512];
static model *teacher;

/* A path in the scratch folder; each call gets its own buffer (the
 * distill_params of a case hold several). */
static const char *tmp_path(const char *name) {
    static char buf[256][512];
    static int n;
    if (n == 256) {
        fprintf(stderr, "tmp_path: out of buffers\n");
        exit(1);
    }
    snprintf(buf[n], sizeof buf[n], "%s/%s", dir, name);
    return buf[n++];
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

/* The first `bytes` of the TinyStories sample, cut at a blank line. */
static char *stories(size_t bytes, size_t *len) {
    FILE *f = fopen(shared_path("text/tinystories_sample.txt"), "rb");
    CHECK(f != NULL);
    char *buf = calloc(bytes + 1, 1);
    size_t n = f ? fread(buf, 1, bytes, f) : 0;
    if (f) fclose(f);
    char *cut = n > 2 ? strstr(buf + n / 2, "\n\n") : NULL;
    *len = cut ? (size_t)(cut - buf) + 2 : n;
    buf[*len] = 0;
    return buf;
}

/* The texts the cases share: some stories, and bad text. */
static void make_texts(void) {
    size_t len;
    char *text = stories(8000, &len);
    write_file(tmp_path("train.txt"), text, len);
    free(text);
    write_file(tmp_path("bad.txt"), "good\n\xc3\x28 bad", 10);
    write_file(tmp_path("nul.txt"), "a\0b", 3);
    write_file(tmp_path("empty.txt"), "\n \n\n", 4);
}

/* ---- corpus ---- */

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static void test_corpus(void) {
    rl_err err = {0};
    mkdir(tmp_path("docs"), 0755);
    const char *a = "First document.\nStill the first.\n\n  \nSecond one.\n<|endoftext|>\nThird.\n";
    const char *b = "Fourth document here.\n\nFifth and last.";
    write_file(tmp_path("docs/a.txt"), a, strlen(a));
    write_file(tmp_path("docs/b.txt"), b, strlen(b));
    write_file(tmp_path("docs/.hidden"), "\xff\xfe", 2);
    corpus c;
    corpus_params p = {tmp_path("docs"), NULL, 0.4};
    CHECKF(corpus_load(&p, teacher->tok, &c, &err) == 0, "%s", err.msg);
    CHECK_EQ_INT(c.n_files, 2);
    CHECK_EQ_INT(c.train.n_docs + c.held.n_docs, 5);
    CHECK_EQ_INT(c.held.n_docs, 2);
    CHECK_EQ_INT(c.train.tokens[0], tok_bos(teacher->tok)); /* each document opens with BOS */
    uint64_t h = corpus_hash(&c);
    corpus_free(&c);
    /* the same documents in other files, in another order: the same split */
    char both[256];
    snprintf(both, sizeof both, "%s%s", b, "\n\nFirst document.\nStill the first.\n\nSecond one.\n\nThird.\n");
    mkdir(tmp_path("docs2"), 0755);
    write_file(tmp_path("docs2/z.txt"), both, strlen(both));
    p.path = tmp_path("docs2");
    CHECK(corpus_load(&p, teacher->tok, &c, &err) == 0);
    CHECK_EQ_INT(c.held.n_docs, 2);
    corpus c1;
    p.path = tmp_path("docs");
    corpus_load(&p, teacher->tok, &c1, &err);
    CHECK(h == corpus_hash(&c1)); /* the files of docs/ read again: the same tokens */
    CHECK(c.held.n_tokens == c1.held.n_tokens && c.train.n_tokens == c1.train.n_tokens);
    qsort(c.held.tokens, (size_t)c.held.n_tokens, 4, cmp_i32);
    qsort(c1.held.tokens, (size_t)c1.held.n_tokens, 4, cmp_i32);
    CHECK(memcmp(c.held.tokens, c1.held.tokens, (size_t)c.held.n_tokens * 4) == 0);
    corpus_free(&c);
    corpus_free(&c1);
    /* bad text */
    p.path = tmp_path("bad.txt");
    CHECK(corpus_load(&p, teacher->tok, &c, &err) == -1 && err.code == RL_ERR_INPUT);
    CHECKF(strstr(err.msg, "bad.txt") && strstr(err.msg, "not UTF-8") && strstr(err.msg, "offset 5"), "%s", err.msg);
    p.path = tmp_path("nul.txt");
    CHECK(corpus_load(&p, teacher->tok, &c, &err) == -1 && strstr(err.msg, "NUL") != NULL);
    p.path = tmp_path("empty.txt");
    CHECK(corpus_load(&p, teacher->tok, &c, &err) == -1 && strstr(err.msg, "no text") != NULL);
    p.path = tmp_path("missing.txt");
    CHECK(corpus_load(&p, teacher->tok, &c, &err) == -1 && strstr(err.msg, "missing.txt") != NULL);
}

/* ---- the teacher cache ---- */

typedef struct seqs {
    corpus c;
    int T;
} seqs;

static const int32_t *seq_fn(void *ctx, int64_t i) {
    seqs *s = ctx;
    return corpus_seq(&s->c.train, s->T, i);
}

static int build(const char *path, const tcache_key *k, seqs *s, int shard, int n_shards, tcache_stats *st) {
    tcache_build_params bp = {.n_threads = 2, .max_seqs = 8, .shard = shard, .n_shards = n_shards};
    rl_err err = {0};
    int rc = tcache_build(path, teacher, k, seq_fn, s, &bp, st, &err);
    CHECKF(rc == 0, "%s", err.msg);
    return rc;
}

/* Every sequence's words and NLL the same in two caches. */
static void same_cache(const char *a, const char *b, const tcache_key *k) {
    rl_err err = {0};
    tcache *x = tcache_open(a, k, &err), *y = x ? tcache_open(b, k, &err) : NULL;
    CHECKF(x && y, "%s", err.msg);
    size_t bytes = (size_t)k->seq_len * TR_SOFT_WORDS(k->top_k) * 4;
    for (int64_t i = 0; x && y && i < k->n_seqs; i++) {
        CHECK(memcmp(tcache_soft(x, i), tcache_soft(y, i), bytes) == 0);
        CHECK(tcache_nll(x, i) == tcache_nll(y, i));
    }
    tcache_close(x);
    tcache_close(y);
}

/* The cache's words of sequence 0 against the engine's logits. */
static void check_words(const char *path, const tcache_key *k, seqs *s) {
    rl_err err = {0};
    tcache *c = tcache_open(path, k, &err);
    CHECKF(c != NULL, "%s", err.msg);
    engine_params ep = engine_default_params();
    ep.n_ctx = s->T;
    ep.n_threads = 1;
    engine *e = engine_open(teacher, &ep, &err);
    const int32_t *tok = seq_fn(s, 0);
    engine_seq *q = engine_seq_add(e, tok, 1, NULL, &err);
    double nll = 0;
    for (int p = 0; c && p < s->T; p++) {
        CHECK(engine_step(e, &err) > 0);
        const float *z = engine_seq_logits(q);
        const uint32_t *w = tcache_soft(c, 0) + (size_t)p * TR_SOFT_WORDS(k->top_k);
        double sum = 0, sum1 = 0;
        for (uint32_t j = 0; j < k->n_vocab; j++) sum += exp(z[j] / k->temperature), sum1 += exp(z[j]);
        float lse;
        memcpy(&lse, w, 4);
        CHECK_NEAR(lse, log(sum), 1e-4);
        for (uint32_t i = 0; i < k->top_k; i++) {
            float v;
            memcpy(&v, w + 1 + k->top_k + i, 4);
            CHECK(v == z[w[1 + i]]);
            int above = 0; /* logits above the i-th: exactly i */
            for (uint32_t j = 0; j < k->n_vocab; j++) above += z[j] > v;
            CHECK(above <= (int)i);
        }
        nll += log(sum1) - z[tok[p + 1]];
        if (p + 1 < s->T) engine_seq_feed(q, &tok[p + 1], 1, &err);
    }
    if (c) CHECK_NEAR(tcache_nll(c, 0), nll, 1e-3);
    engine_close(e);
    tcache_close(c);
}

static void truncate_to(const char *path, long size) { CHECK(truncate(path, size) == 0); }

static void test_tcache(void) {
    size_t len;
    char *text = stories(6000, &len);
    write_file(tmp_path("six.txt"), text, len);
    free(text);
    seqs s = {.T = 32};
    rl_err err = {0};
    corpus_params cp = {tmp_path("six.txt"), NULL, 0};
    CHECK(corpus_load(&cp, teacher->tok, &s.c, &err) == 0);
    tcache_key k = {tcache_teacher_id(teacher->file), corpus_hash(&s.c), 512, 32, 8,
                    (uint32_t)corpus_n_seqs(&s.c.train, 32), 2.0f};
    tcache_stats st;
    const char *full = tmp_path("full.teacher");
    build(full, &k, &s, 0, 1, &st);
    CHECK_EQ_INT(st.computed, k.n_seqs);
    CHECK_EQ_INT(st.missing, 0);
    check_words(full, &k, &s);
    /* a torn last record: the good ones are kept, the rest recomputed */
    char cmd[1200];
    const char *torn = tmp_path("torn.teacher");
    snprintf(cmd, sizeof cmd, "cp %s %s", full, torn);
    CHECK(system(cmd) == 0);
    long rec = TCACHE_RECORD_HEAD + 32 * (long)TR_SOFT_WORDS(8) * 4;
    truncate_to(torn, TCACHE_HEADER_BYTES + 3 * rec + 100);
    build(torn, &k, &s, 0, 1, &st);
    CHECK_EQ_INT(st.had, 3);
    CHECK_EQ_INT(st.computed, k.n_seqs - 3);
    same_cache(full, torn, &k);
    /* a damaged record: it and what follows are recomputed */
    FILE *f = fopen(torn, "r+b");
    fseek(f, TCACHE_HEADER_BYTES + 2 * rec + 40, SEEK_SET);
    fputc(0x55, f);
    fclose(f);
    CHECK(tcache_open(torn, &k, &err) == NULL && strstr(err.msg, "missing") != NULL);
    build(torn, &k, &s, 0, 1, &st);
    CHECK_EQ_INT(st.had, 2);
    same_cache(full, torn, &k);
    /* another run's file */
    tcache_key other = k;
    other.top_k = 16;
    CHECK(tcache_open(full, &other, &err) == NULL && strstr(err.msg, "top-k differs") != NULL);
    CHECK(tcache_build(full, teacher, &other, seq_fn, &s, &(tcache_build_params){.n_threads = 1}, &st, &err) == -1);
    CHECKF(strstr(err.msg, "top-k differs"), "%s", err.msg);
    other = k;
    other.tokens_hash ^= 1;
    CHECK(tcache_open(full, &other, &err) == NULL && strstr(err.msg, "training text") != NULL);
    /* two shards, merged by concatenation */
    const char *a = tmp_path("a.teacher"), *b = tmp_path("b.teacher"), *m = tmp_path("m.teacher");
    build(a, &k, &s, 0, 2, &st);
    CHECK_EQ_INT(st.computed, (k.n_seqs + 1) / 2);
    build(b, &k, &s, 1, 2, &st);
    snprintf(cmd, sizeof cmd, "cat %s > %s && tail -c +%d %s >> %s", a, m, TCACHE_HEADER_BYTES + 1, b, m);
    CHECK(system(cmd) == 0);
    same_cache(full, m, &k);
    corpus_free(&s.c);
}

/* ---- the student's files ---- */

/* The engine's logits for the trainer's first sequence, position by
 * position, against the trainer's (max |difference| over max |logit|). */
static double engine_vs_trainer(const char *path, trainer *t, const int32_t *tokens, int T) {
    rl_err err = {0};
    model *m = model_load(path, NULL, &err);
    CHECKF(m != NULL, "%s", err.msg);
    if (!m) return INFINITY;
    engine_params ep = engine_default_params();
    ep.n_ctx = T;
    ep.n_threads = 1;
    ep.kv_f32 = true;
    engine *e = engine_open(m, &ep, &err);
    engine_seq *q = engine_seq_add(e, tokens, 1, NULL, &err);
    double worst = 0, scale = 0;
    int64_t V = m->shape.n_vocab;
    for (int p = 0; p < T; p++) {
        CHECK(engine_step(e, &err) > 0);
        const float *z = engine_seq_logits(q), *y = tr_logits(t) + (size_t)p * V;
        for (int64_t j = 0; j < V; j++) worst = fmax(worst, fabs(z[j] - y[j])), scale = fmax(scale, fabs(y[j]));
        if (p + 1 < T) engine_seq_feed(q, &tokens[p + 1], 1, &err);
    }
    engine_close(e);
    model_free(m);
    return worst / fmax(scale, 1e-6);
}

static void export_case(bool tied, bool f16) {
    rl_err err = {0};
    rl_shape s = teacher->shape;
    s.n_embd = 32, s.n_layer = 2, s.n_head = 4, s.n_head_kv = 2, s.head_dim = 8, s.n_ff = 64;
    s.tied_embeddings = tied;
    tr_layout L;
    CHECK(tr_layout_init(&L, &s, &err) == 0);
    tr_config c = tr_default_config();
    c.n_seq = 1, c.seq_len = 24, c.n_threads = 2;
    trainer *t = tr_new(&L, &c, &err);
    tr_init_weights(t, 3);
    float *w = tr_weights(t);
    for (size_t i = 0; i < L.n_floats; i++) w[i] *= 5.0f; /* logits far from uniform */
    if (f16) /* the trainer sees the weights the file will hold */
        for (int i = 0; i < L.n_tensors; i++)
            for (size_t j = 0; L.t[i].rows > 1 && j < (size_t)(L.t[i].rows * L.t[i].cols); j++)
                w[L.t[i].offset + j] = rl_f16_to_f32(rl_f32_to_f16(w[L.t[i].offset + j]));
    int32_t tokens[25];
    size_t len;
    char *text = stories(400, &len);
    int n = tok_encode(teacher->tok, text, len, true, false, tokens, 25, &err);
    free(text);
    CHECK(n >= 25);
    tr_batch b = {1, tokens, NULL};
    tr_loss l;
    CHECK(tr_forward(t, &b, false, &l, &err) == 0);
    student_export x = {teacher->file, "test student", f16, 0, 3, 0, 0.5f, 2.0f};
    const char *path = tmp_path("student.gguf");
    CHECKF(student_write(path, &L, w, &x, &err) == 0, "%s", err.msg);
    /* F16 weights: the engine rounds the activations to F16 too, as llama.cpp does */
    double rel = engine_vs_trainer(path, t, tokens, 24);
    CHECKF(rel < (f16 ? 2e-2 : 1e-5), "tied %d f16 %d: engine and trainer logits differ by %g of the largest", tied, f16, rel);
    /* the tokenizer and template came along; quantize takes the file */
    gguf_file *g = gguf_open(path, &err);
    CHECK(g && gguf_get_arr(g, "tokenizer.ggml.tokens", GGUF_STRING) != NULL);
    gguf_close(g);
    quantize_opts qo = {.threads = 1};
    CHECKF(quantize_file(path, tmp_path("student-q8.gguf"), quantize_mix_find("q8_0"), &qo, NULL, &err) == 0, "%s",
           err.msg);
    model *q = model_load(tmp_path("student-q8.gguf"), NULL, &err);
    CHECKF(q != NULL, "%s", err.msg);
    model_free(q);
    tr_free(t);
    tr_layout_free(&L);
}

static void test_student(void) {
    export_case(false, false);
    export_case(true, false);
    export_case(true, true);
}

static void test_checkpoint(void) {
    rl_err err = {0};
    rl_shape s = teacher->shape;
    s.n_layer = 1;
    tr_layout L;
    CHECK(tr_layout_init(&L, &s, &err) == 0);
    tr_config c = tr_default_config();
    c.n_seq = 1, c.seq_len = 8;
    trainer *t = tr_new(&L, &c, &err), *u = tr_new(&L, &c, &err);
    tr_init_weights(t, 5);
    for (size_t i = 0; i < L.n_floats; i++) tr_adam_m(t)[i] = (float)i, tr_adam_v(t)[i] = 1.0f / (float)(i + 1);
    curve_point pts[2] = {{1, 5.0f, 5.0f, 0, NAN, 1e-3f, 2.0f, 0.5}, {2, 4.0f, 4.0f, 0, 4.5f, 1e-3f, 1.0f, 1.0}};
    student_ckpt ck = {2, 99, "a=1 b=2 c=3", pts, 2, 1.0};
    CHECKF(student_ckpt_write(tmp_path("run.ckpt"), t, &ck, &err) == 0, "%s", err.msg);
    student_ckpt back = {.config = "a=1 b=2 c=3"};
    CHECKF(student_ckpt_read(tmp_path("run.ckpt"), u, &back, &err) == 0, "%s", err.msg);
    size_t bytes = L.n_floats * sizeof(float);
    CHECK(memcmp(tr_weights(t), tr_weights(u), bytes) == 0 && memcmp(tr_adam_m(t), tr_adam_m(u), bytes) == 0 &&
          memcmp(tr_adam_v(t), tr_adam_v(u), bytes) == 0);
    CHECK(back.step == 2 && back.seed == 99 && back.n_curve == 2 && isnan(back.curve[0].held));
    CHECK(back.curve[1].held == 4.5f && back.curve[1].seconds == 1.0);
    free(back.curve);
    student_ckpt other = {.config = "a=1 b=7 c=3"};
    CHECK(student_ckpt_read(tmp_path("run.ckpt"), u, &other, &err) == -1 && strstr(err.msg, "b=7") != NULL);
    tr_free(t);
    tr_free(u);
    tr_layout_free(&L);
}

/* ---- the whole job ---- */

static distill_params job(const char *out) {
    distill_params p = distill_default_params();
    p.teacher_path = teacher_path;
    p.data_path = tmp_path("train.txt");
    p.out_path = out;
    p.shape = "dim=32,layers=1,heads=4,kv=2,ff=64";
    p.holdout = 0.1;
    p.train.n_seq = 4, p.train.seq_len = 32, p.train.n_threads = 2, p.train.top_k = 8, p.train.warmup = 2;
    p.steps = 8, p.eval_every = 4, p.eval_seqs = 4, p.ckpt_every = 4, p.teacher_seqs = 8;
    p.cache_path = tmp_path("job.teacher");
    return p;
}

static int run_job(const distill_params *p, distill_result *r) {
    rl_err err = {0};
    int rc = distill_run(p, r, &err);
    CHECKF(rc == 0, "%s", err.msg);
    return rc;
}

static bool same_file(const char *a, const char *b) {
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "cmp -s %s %s", a, b);
    return system(cmd) == 0;
}

static void test_job(void) {
    distill_result r;
    distill_params p = job(tmp_path("A.gguf"));
    run_job(&p, &r);
    CHECK(!r.interrupted && r.steps_done == 8 && r.n_curve == 8 && exists(p.out_path));
    CHECK(isfinite(r.teacher_held) && isfinite(r.student_held) && r.student_held > r.teacher_held);
    CHECK(isnan(r.curve[2].held) && !isnan(r.curve[3].held) && r.curve[7].ce < r.curve[0].ce);
    distill_result_free(&r);
    /* the same seed on one thread: the same bytes */
    p = job(tmp_path("A1.gguf"));
    p.train.n_threads = 1;
    run_job(&p, &r);
    CHECK(r.cache_computed == 0 && same_file(tmp_path("A.gguf"), tmp_path("A1.gguf")));
    distill_result_free(&r);
    /* Ctrl-C after a step: a checkpoint, no student; resumed: the same bytes */
    int stop = 1;
    p = job(tmp_path("B.gguf"));
    p.stop = &stop;
    run_job(&p, &r);
    CHECK(r.interrupted && r.steps_done == 1 && !exists(tmp_path("B.gguf")) && exists(tmp_path("B.gguf.ckpt")));
    distill_result_free(&r);
    stop = 0;
    p.resume = true;
    run_job(&p, &r);
    CHECK(!r.interrupted && r.start_step == 1 && r.n_curve == 8 && same_file(tmp_path("A.gguf"), tmp_path("B.gguf")));
    distill_result_free(&r);
    /* Ctrl-C during the teacher's pass: run again, it finishes the cache */
    stop = 1;
    p = job(tmp_path("C.gguf"));
    p.cache_path = tmp_path("C.teacher");
    p.stop = &stop;
    run_job(&p, &r);
    CHECK(r.interrupted && r.steps_done == 0 && !exists(tmp_path("C.gguf")));
    distill_result_free(&r);
    stop = 0;
    run_job(&p, &r);
    CHECK(same_file(tmp_path("A.gguf"), tmp_path("C.gguf")));
    distill_result_free(&r);
}

/* The whole teacher as its own student (all five layers, no training):
 * the trainer's held-out loss is the engine's. */
static void test_init_from_teacher(void) {
    int layers[5] = {0, 1, 2, 3, 4};
    distill_params p = job(tmp_path("T.gguf"));
    p.shape = NULL;
    p.init_layers = layers;
    p.n_init_layers = 5;
    p.steps = 1, p.train.lr = 0;
    distill_result r;
    run_job(&p, &r);
    CHECKF(fabs(r.student_held - r.teacher_held) < 2e-3, "the teacher as a student: %g, the teacher: %g",
           r.student_held, r.teacher_held);
    CHECK(r.student.n_layer == 5 && r.student.tied_embeddings);
    distill_result_free(&r);
}

/* A run that must fail: the error names the problem, nothing is written. */
static void refused(distill_params *p, const char *why) {
    distill_result r;
    rl_err err = {0};
    CHECKF(distill_run(p, &r, &err) == -1 && err.code == RL_ERR_INPUT && strstr(err.msg, why), "wanted '%s', got "
           "'%s'", why, err.msg);
    CHECK(!exists(p->out_path));
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", p->out_path);
    CHECK(!exists(tmp));
    distill_result_free(&r);
}

static void test_bad_input(void) {
    distill_params p = job(tmp_path("bad.gguf"));
    p.cache_path = tmp_path("bad.teacher");
    p.data_path = tmp_path("empty.txt");
    refused(&p, "no text");
    p.data_path = tmp_path("bad.txt");
    refused(&p, "not UTF-8");
    p.data_path = tmp_path("train.txt");
    p.shape = "dim=32,layers=1,heads=4,kv=3,ff=64";
    refused(&p, "do not divide");
    p.shape = "dim=30,layers=1,heads=4";
    refused(&p, "not a multiple");
    p.shape = "llama3.2-1b";
    refused(&p, "tokenizer");
    p.shape = "dim=32,layers=1,heads=4,kv=2,ff=64";
    p.train.seq_len = 4000;
    refused(&p, "not one sequence");
    p.train.seq_len = 32;
    p.resume = true;
    p.ckpt_path = tmp_path("A.gguf.ckpt.missing");
    refused(&p, "missing");
    CHECK(!exists(tmp_path("bad.teacher")));
}

/* ---- eval ---- */

static void test_eval(void) {
    /* llama-perplexity (llama.cpp 3f545bec) on the same file:
     *   llama-perplexity -m stories260K.gguf -f tinystories_sample.txt -c 128 --chunks 20 -t 2
     *   Final estimate: PPL = 4.3657 +/- 0.23322 */
    rl_err err = {0};
    eval_params p = eval_default_params();
    p.n_ctx = 128, p.max_chunks = 20, p.n_threads = 2;
    eval_result r;
    CHECKF(eval_file(teacher, shared_path("text/tinystories_sample.txt"), &p, &r, &err) == 0, "%s", err.msg);
    CHECK_EQ_INT(r.n_chunks, 20);
    CHECK_EQ_INT(r.n_scored, 20 * 63);
    CHECK_NEAR(r.ppl, 4.3657, 2e-3);
    CHECK_NEAR(r.ppl_stderr, 0.23322, 1e-3);
    CHECK_NEAR(r.nll, log(4.3657), 5e-4);
    CHECK(eval_text(teacher, "Once upon a time.", 17, &p, &r, &err) == -1 && strstr(err.msg, "at least 256"));
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    snprintf(dir, sizeof dir, "/tmp/test_distill.XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    rl_err err = {0};
    snprintf(teacher_path, sizeof teacher_path, "%s", shared_path("models/stories260K.gguf"));
    teacher = model_load(teacher_path, NULL, &err);
    CHECKF(teacher != NULL, "%s", err.msg);
    if (!teacher) return test_report("test_distill");
    make_texts();
    RUN(test_corpus);
    RUN(test_tcache);
    RUN(test_student);
    RUN(test_checkpoint);
    RUN(test_job);
    RUN(test_init_from_teacher);
    RUN(test_bad_input);
    RUN(test_eval);
    model_free(teacher);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return test_report("test_distill");
}
