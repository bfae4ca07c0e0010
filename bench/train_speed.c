/*
 * train_speed.c — the trainer of `rackllm distill` (src/train/train.c) on
 * a plain next-token task, timed, with everything another trainer needs to
 * train the very same model: the comparison with PyTorch
 * (bench/oracles/train_llama.py) of issue 13.
 *
 * It loads a model for its tokenizer and base shape (vocabulary, rope,
 * epsilon), reads and tokenizes a text as `rackllm distill` does (the
 * held-out documents left out), sets up a student of --shape with seeded
 * weights and trains it --steps steps on sequences taken in order (step s:
 * sequences s*B .. s*B + B - 1, modulo their number). It prints the loss of
 * each step and the training tokens per second of the steps after the first
 * (forward, backward, clipping and AdamW; nothing else is timed).
 *
 * With --dump DIR it first writes DIR/config.txt (shape and optimiser
 * settings, key=value), DIR/layout.tsv (each tensor: name, rows, cols,
 * offset, decay), DIR/init.f32 (the initial weights, one flat F32 buffer)
 * and DIR/batches.i32 (every step's tokens), which the oracle reads.
 *
 *   build/train_speed --model ../shared/models/stories260K.gguf \
 *     --text ../shared/text/tinystories_sample.txt \
 *     --shape dim=64,layers=1,heads=8,kv=4,ff=172 --steps 50 -t 2 --dump /tmp/ts
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/common.h"
#include "model/model.h"
#include "train/corpus.h"
#include "train/distill.h"
#include "train/train.h"

typedef struct opts {
    const char *model, *text, *shape, *dump;
    int steps;
    uint64_t seed;
    tr_config c;
} opts;

static void usage(FILE *f) {
    fprintf(f, "usage: train_speed --model M.gguf --text FILE --shape dim=..,layers=..,heads=..,kv=..,ff=..\n"
               "         [--batch 16] [--seq-len 128] [--steps 50] [-t THREADS] [--seed 1] [--lr 0.001]\n"
               "         [--warmup 20] [--dump DIR]\n");
}

static int parse(int argc, char **argv, opts *o) {
    o->c = tr_default_config();
    o->steps = 50, o->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(stdout), 1;
        if (!v) return usage(stderr), -1;
        i++;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--text")) o->text = v;
        else if (!strcmp(a, "--shape")) o->shape = v;
        else if (!strcmp(a, "--dump")) o->dump = v;
        else if (!strcmp(a, "--batch")) o->c.n_seq = atoi(v);
        else if (!strcmp(a, "--seq-len")) o->c.seq_len = atoi(v);
        else if (!strcmp(a, "--steps")) o->steps = atoi(v);
        else if (!strcmp(a, "-t")) o->c.n_threads = atoi(v);
        else if (!strcmp(a, "--seed")) o->seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--lr")) o->c.lr = strtof(v, NULL);
        else if (!strcmp(a, "--warmup")) o->c.warmup = atoi(v);
        else return fprintf(stderr, "train_speed: unknown option %s\n", a), -1;
    }
    if (!o->model || !o->text || !o->shape || o->steps < 1 || o->c.n_seq < 1 || o->c.seq_len < 2)
        return usage(stderr), -1;
    o->c.total_steps = o->steps;
    return 0;
}

/* Step s's tokens: B rows of T + 1. */
static void batch_tokens(const corpus_split *sp, int T, int B, int step, int32_t *out) {
    int64_t n = corpus_n_seqs(sp, T);
    for (int i = 0; i < B; i++)
        memcpy(out + (size_t)i * (T + 1), corpus_seq(sp, T, ((int64_t)step * B + i) % n),
               (size_t)(T + 1) * sizeof *out);
}

static FILE *open_in(const char *dir, const char *name, const char *mode) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, mode);
    if (!f) fprintf(stderr, "train_speed: %s: %s\n", path, strerror(errno));
    return f;
}

static int dump(const opts *o, trainer *t, const corpus_split *sp) {
    const tr_layout *L = tr_get_layout(t);
    const rl_shape *s = &L->s;
    const tr_config *c = &o->c;
    mkdir(o->dump, 0777);
    FILE *cf = open_in(o->dump, "config.txt", "w"), *lf = open_in(o->dump, "layout.tsv", "w");
    FILE *wf = open_in(o->dump, "init.f32", "wb"), *bf = open_in(o->dump, "batches.i32", "wb");
    int rc = cf && lf && wf && bf ? 0 : -1;
    if (!rc) {
        fprintf(cf, "n_vocab=%u\nn_embd=%u\nn_layer=%u\nn_head=%u\nn_head_kv=%u\nhead_dim=%u\nn_ff=%u\ntied=%d\n"
                    "rope_base=%.9g\nrope_freq_scale=%.9g\nrms_eps=%.9g\nbatch=%d\nseq_len=%d\nsteps=%d\nlr=%.9g\n"
                    "min_lr_frac=%.9g\nwarmup=%d\nweight_decay=%.9g\nbeta1=%.9g\nbeta2=%.9g\nadam_eps=%.9g\n"
                    "clip=%.9g\n", s->n_vocab, s->n_embd, s->n_layer, s->n_head, s->n_head_kv, s->head_dim, s->n_ff,
                s->tied_embeddings, s->rope_base, L->rope_freq_scale, s->rms_eps, c->n_seq, c->seq_len, o->steps,
                c->lr, c->min_lr_frac, c->warmup, c->weight_decay, c->beta1, c->beta2, c->adam_eps, c->clip);
        for (int i = 0; i < L->n_tensors; i++)
            fprintf(lf, "%s\t%lld\t%lld\t%zu\t%d\n", L->t[i].name, (long long)L->t[i].rows, (long long)L->t[i].cols,
                    L->t[i].offset, L->t[i].decay);
        if (fwrite(tr_weights(t), sizeof(float), L->n_floats, wf) != L->n_floats) rc = -1;
        size_t row = (size_t)c->n_seq * (c->seq_len + 1);
        int32_t *b = malloc(row * sizeof *b);
        for (int st = 0; st < o->steps && b && !rc; st++) {
            batch_tokens(sp, c->seq_len, c->n_seq, st, b);
            if (fwrite(b, sizeof *b, row, bf) != row) rc = -1;
        }
        free(b);
    }
    FILE *fs[] = {cf, lf, wf, bf};
    for (int i = 0; i < 4; i++)
        if (fs[i] && fclose(fs[i])) rc = -1;
    return rc;
}

/* Trains o->steps steps, printing each loss; the tokens/s after step 0. */
static int train(const opts *o, trainer *t, const corpus_split *sp, rl_err *err) {
    const tr_config *c = &o->c;
    int32_t *b = malloc((size_t)c->n_seq * (c->seq_len + 1) * sizeof *b);
    if (!b) return -1;
    double t0 = 0;
    for (int st = 0; st < o->steps; st++) {
        if (st == 1) t0 = rl_now();
        batch_tokens(sp, c->seq_len, c->n_seq, st, b);
        tr_batch batch = {c->n_seq, b, NULL};
        tr_loss l;
        if (tr_forward(t, &batch, true, &l, err)) return free(b), -1;
        tr_backward(t);
        tr_update(t, st);
        printf("step %d loss %.6f\n", st, l.ce);
    }
    double secs = rl_now() - t0, tokens = (double)(o->steps - 1) * c->n_seq * c->seq_len;
    printf("train_speed: %d steps of %d x %d tokens, %.0f tok/s (steps 1..%d), %.2f GFLOP/s\n", o->steps, c->n_seq,
           c->seq_len, o->steps > 1 ? tokens / secs : 0, o->steps - 1,
           o->steps > 1 ? tokens * tr_flops_per_token(tr_get_layout(t), c->seq_len) / secs / 1e9 : 0);
    free(b);
    return 0;
}

int main(int argc, char **argv) {
    opts o = {0};
    int pr = parse(argc, argv, &o);
    if (pr) return pr > 0 ? 0 : 2;
    rl_err err = {0};
    model_load_params mp = {0};
    model *m = model_load(o.model, &mp, &err);
    rl_shape s;
    corpus cp = {0};
    corpus_params cpp = {o.text, NULL, 0.05};
    tr_layout L = {0};
    trainer *t = NULL;
    int rc = 1;
    if (m && !distill_parse_shape(o.shape, &m->shape, &s, &err) && !corpus_load(&cpp, m->tok, &cp, &err) &&
        !tr_layout_init(&L, &s, &err) && (t = tr_new(&L, &o.c, &err))) {
        tr_init_weights(t, o.seed);
        if (corpus_n_seqs(&cp.train, o.c.seq_len) == 0) fprintf(stderr, "train_speed: text too short\n");
        else if (o.dump && dump(&o, t, &cp.train)) fprintf(stderr, "train_speed: could not write %s\n", o.dump);
        else rc = train(&o, t, &cp.train, &err) ? 1 : 0;
    }
    if (err.msg[0]) fprintf(stderr, "train_speed: %s\n", err.msg);
    tr_free(t);
    tr_layout_free(&L);
    corpus_free(&cp);
    model_free(m);
    return rc;
}
