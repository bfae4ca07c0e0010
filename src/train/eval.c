/*
 * eval.c — llama-perplexity's scoring through rackllm's engine (see
 * eval.h): each window's first half is one prompt, the scored half is fed
 * a token at a time, the windows of a round share every step.
 */
#include "eval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/progress.h"
#include "corpus.h"
#include "engine/engine.h"

eval_params eval_default_params(void) { return (eval_params){.n_ctx = 512, .max_seqs = 8}; }

typedef struct window {
    engine_seq *s;
    int32_t *tok; /* n_ctx tokens, BOS first */
    int pos;      /* the position whose logits arrive next */
} window;

typedef struct scorer {
    const model *m;
    const eval_params *p;
    const int32_t *tokens;
    int next_chunk, n_chunks;
    double sum, sum2;
    int64_t count;
    engine *e;
} scorer;

/* -log softmax(z)[target], in double. */
static double nll_of(const float *z, int64_t n, int32_t target) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) mx = fmaxf(mx, z[j]);
    double sum = 0;
    for (int64_t j = 0; j < n; j++) sum += exp((double)z[j] - mx);
    return log(sum) + mx - z[target];
}

static int start_window(scorer *S, window *w, rl_err *err) {
    if (S->next_chunk >= S->n_chunks) return 0;
    int n = S->p->n_ctx, first = n / 2;
    memcpy(w->tok, S->tokens + (size_t)S->next_chunk * n, (size_t)n * sizeof *w->tok);
    int32_t bos = tok_bos(S->m->tok);
    if (tok_add_bos(S->m->tok) && bos >= 0) w->tok[0] = bos;
    w->s = engine_seq_add(S->e, w->tok, first + 1, NULL, err);
    if (!w->s) return -1;
    w->pos = first;
    S->next_chunk++;
    return 1;
}

/* The window's logits for position pos are ready: score, feed or finish. */
static int advance(scorer *S, window *w, rl_err *err) {
    const float *z = engine_seq_logits(w->s);
    if (!z) return 0; /* still in its prompt */
    double v = nll_of(z, S->m->shape.n_vocab, w->tok[w->pos + 1]);
    S->sum += v;
    S->sum2 += v * v;
    S->count++;
    if (++w->pos <= S->p->n_ctx - 2) return engine_seq_feed(w->s, &w->tok[w->pos], 1, err);
    engine_seq_remove(S->e, w->s);
    w->s = NULL;
    return 0;
}

static int score(scorer *S, window *w, int n_w, eval_result *r, rl_err *err) {
    progress pr;
    progress_start(&pr, "eval", (uint64_t)S->n_chunks * (S->p->n_ctx - 1 - S->p->n_ctx / 2));
    pr.enabled = pr.enabled && S->p->progress;
    for (bool more = true;;) {
        for (int i = 0; i < n_w && more; i++) {
            int rc = w[i].s ? 1 : start_window(S, &w[i], err);
            if (rc < 0) return -1;
            more = rc > 0;
        }
        int active = 0;
        for (int i = 0; i < n_w; i++) active += w[i].s != NULL;
        if (!active) break;
        if (engine_step(S->e, err) < 0) return -1;
        for (int i = 0; i < n_w; i++)
            if (w[i].s && advance(S, &w[i], err)) return -1;
        progress_update(&pr, (uint64_t)S->count);
        if (S->p->stop && *S->p->stop) {
            r->stopped = true;
            break;
        }
    }
    progress_done(&pr);
    return 0;
}

static void finish(const scorer *S, eval_result *r) {
    r->n_scored = S->count;
    r->n_chunks = S->n_chunks;
    if (S->count == 0) return;
    double mean = S->sum / S->count, mean2 = S->sum2 / S->count;
    r->nll = mean;
    r->nll_stderr = S->count > 1 ? sqrt(fmax(0.0, mean2 - mean * mean) / (double)(S->count - 1)) : 0;
    r->ppl = exp(mean);
    r->ppl_stderr = r->ppl * r->nll_stderr;
}

int eval_text(const model *m, const char *text, size_t len, const eval_params *p, eval_result *r, rl_err *err) {
    memset(r, 0, sizeof *r);
    if (p->n_ctx < 4 || p->n_ctx > (1 << 20)) return rl_fail(err, RL_ERR_INPUT, "window of %d tokens: need 4 or more", p->n_ctx);
    if (len > (1u << 30)) return rl_fail(err, RL_ERR_INPUT, "the text is over 1 GiB");
    int32_t *tokens = malloc((2 * len + 2) * sizeof *tokens);
    if (!tokens) return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    int n = tok_encode(m->tok, text, len, tok_add_bos(m->tok), false, tokens, (int)(2 * len + 2), err);
    if (n < 0) {
        free(tokens);
        return -1;
    }
    r->n_tokens = n;
    if (n < 2 * p->n_ctx) {
        free(tokens);
        return rl_fail(err, RL_ERR_INPUT, "the text is %d tokens: at least %d are needed for windows of %d "
                       "(llama-perplexity's rule)", n, 2 * p->n_ctx, p->n_ctx);
    }
    scorer S = {.m = m, .p = p, .tokens = tokens, .n_chunks = n / p->n_ctx};
    if (p->max_chunks > 0) S.n_chunks = RL_MIN(S.n_chunks, p->max_chunks);
    int n_w = p->max_seqs > 0 ? p->max_seqs : 8;
    engine_params ep = engine_default_params();
    ep.n_threads = p->n_threads;
    ep.max_seqs = n_w;
    ep.n_ctx = p->n_ctx;
    ep.max_batch = RL_MAX(512, n_w);
    S.e = engine_open(m, &ep, err);
    window *w = S.e ? rl_calloc((size_t)n_w, sizeof *w, err) : NULL;
    int rc = w ? 0 : -1;
    for (int i = 0; rc == 0 && i < n_w; i++)
        if (!(w[i].tok = malloc((size_t)p->n_ctx * sizeof *w[i].tok))) rc = rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    double t0 = rl_now();
    if (rc == 0) rc = score(&S, w, n_w, r, err);
    r->seconds = rl_now() - t0;
    finish(&S, r);
    for (int i = 0; w && i < n_w; i++) free(w[i].tok);
    free(w);
    engine_close(S.e);
    free(tokens);
    return rc;
}

int eval_file(const model *m, const char *path, const eval_params *p, eval_result *r, rl_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return rl_fail(err, RL_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size <= (1u << 30)) {
        buf = malloc((size_t)st.st_size + 1);
        got = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    }
    fclose(f);
    if (!buf || got != (size_t)st.st_size) {
        free(buf);
        return rl_fail(err, RL_ERR_INPUT, "%s: not a readable text file of at most 1 GiB", path);
    }
    int rc = corpus_check_utf8(path, (const uint8_t *)buf, got, err);
    if (rc == 0) rc = eval_text(m, buf, got, p, r, err);
    free(buf);
    return rc;
}
