/*
 * test_train.c — the trainer (train.h, train_ops.h) checked against
 * central finite differences, on tiny shapes:
 *
 *  - every op's backward (RMSNorm, RoPE, attention, SwiGLU, the matrix
 *    product, the loss with and without a teacher): the directional
 *    derivative along a random direction, for every input, equals the
 *    finite difference of the forward; RMSNorm also element by element;
 *  - one whole layer and the whole model (tied and separate output, with
 *    a teacher): every weight tensor's gradient, the same way;
 *  - training works: a tiny model overfits one short sequence to near-zero
 *    loss; the KL to a fixed teacher falls; results do not depend on the
 *    thread count; the schedule warms up and decays.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/rng.h"
#include "base/threadpool.h"
#include "test.h"
#include "train/train.h"
#include "train/train_ops.h"

static rl_rng rng;

static float urand(void) { return (float)(rl_rng_uniform(&rng) * 2.0 - 1.0); }
static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * urand();
}
static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* A forward computation reduced to one number: sum(r * y). */
typedef double (*objective)(void *ctx);

/* The finite difference of f along u at x0, step h (central). */
static double central(float *x, const float *x0, const float *u, size_t n, objective f, void *ctx, float h) {
    for (size_t i = 0; i < n; i++) x[i] = x0[i] + h * u[i];
    double fp = f(ctx);
    for (size_t i = 0; i < n; i++) x[i] = x0[i] - h * u[i];
    double fm = f(ctx);
    memcpy(x, x0, n * sizeof *x);
    return (fp - fm) / (2.0 * h);
}

/* The directional derivative of f along a random u at x (finite
 * differences, step h) against the analytic gradient g: |fd - g.u| within
 * tol * (|fd| + |g.u|) + abs, where abs is the finite difference's own
 * error bar, twice the gap between the estimates at h and h/2 (F32
 * rounding in a forward pass of a whole model is not below 1e-5 of a
 * loss; the gap measures it), and at least 1e-6. */
static void check_direction(const char *what, float *x, size_t n, const float *g, objective f, void *ctx, float h,
                            double tol) {
    float *u = malloc(n * sizeof *u), *x0 = malloc(n * sizeof *x0);
    fill(u, n, 1.0f);
    memcpy(x0, x, n * sizeof *x);
    double fd = central(x, x0, u, n, f, ctx, h), fd2 = central(x, x0, u, n, f, ctx, h / 2), an = dot(g, u, n);
    double bar = RL_MAX(2.0 * fabs(fd - fd2), 1e-6);
    CHECKF(fabs(fd - an) <= tol * (fabs(fd) + fabs(an)) + bar, "%s: finite difference %.7g (at h/2 %.7g), backward %.7g",
           what, fd, fd2, an);
    if (getenv("TRAIN_FD_VERBOSE"))
        fprintf(stderr, "%-28s fd %.7g  h/2 %.7g  backward %.7g  bar %.2g\n", what, fd, fd2, an, bar);
    free(u);
    free(x0);
}

/* ---- RMSNorm ---- */

typedef struct norm_ctx {
    threadpool *tp;
    float *x, *w, *y, *rstd, *r;
    int n;
    int64_t d;
} norm_ctx;

static double norm_obj(void *p) {
    norm_ctx *c = p;
    tro_rmsnorm_fwd(c->tp, c->y, c->rstd, c->x, c->w, c->n, c->d, 1e-5f);
    return dot(c->y, c->r, (size_t)c->n * c->d);
}

static void test_rmsnorm(threadpool *tp) {
    enum { N = 5, D = 12 };
    float x[N * D], w[D], y[N * D], rstd[N], r[N * D], dx[N * D] = {0}, dw[D];
    fill(x, N * D, 1.0f);
    fill(w, D, 1.0f);
    fill(r, N * D, 1.0f);
    norm_ctx c = {tp, x, w, y, rstd, r, N, D};
    norm_obj(&c);
    tro_rmsnorm_bwd(tp, dx, dw, r, x, w, rstd, N, D);
    check_direction("rmsnorm dx", x, N * D, dx, norm_obj, &c, 1e-2f, 1e-3);
    check_direction("rmsnorm dw", w, D, dw, norm_obj, &c, 1e-2f, 1e-3);
    /* element by element too */
    for (int i = 0; i < N * D; i += 7) {
        float save = x[i];
        x[i] = save + 1e-2f;
        double fp = norm_obj(&c);
        x[i] = save - 1e-2f;
        double fm = norm_obj(&c);
        x[i] = save;
        CHECK_NEAR((fp - fm) / 2e-2, dx[i], 2e-3 * (1 + fabs(dx[i])));
    }
    /* dx is added to, not written */
    float dx2[N * D];
    for (int i = 0; i < N * D; i++) dx2[i] = 1.0f;
    tro_rmsnorm_bwd(tp, dx2, dw, r, x, w, rstd, N, D);
    CHECK_NEAR(dx2[3], dx[3] + 1.0f, 1e-6);
}

/* ---- RoPE ---- */

typedef struct rope_ctx {
    threadpool *tp;
    float *x, *y, *r;
    int n;
    tro_rope rp;
} rope_ctx;

static double rope_obj(void *p) {
    rope_ctx *c = p;
    size_t len = (size_t)c->n * c->rp.n_head * c->rp.head_dim;
    memcpy(c->y, c->x, len * sizeof *c->y);
    tro_rope_rows(c->tp, c->y, c->n, &c->rp, false);
    return dot(c->y, c->r, len);
}

static void test_rope(threadpool *tp) {
    enum { N = 12, H = 3, HD = 8, LEN = N * H * HD };
    float x[LEN], y[LEN], r[LEN], g[LEN], back[LEN];
    float freqs[HD / 2] = {1.0f, 2.0f, 4.0f, 8.0f};
    fill(x, LEN, 1.0f);
    fill(r, LEN, 1.0f);
    for (int with_freqs = 0; with_freqs < 2; with_freqs++) {
        rope_ctx c = {tp, x, y, r, N, {6, H, HD, 10000.0f, 0.5f, with_freqs ? freqs : NULL}};
        memcpy(g, r, sizeof g);
        tro_rope_rows(tp, g, N, &c.rp, true); /* the backward of a rotation */
        check_direction("rope", x, LEN, g, rope_obj, &c, 1e-2f, 1e-4);
        rope_obj(&c);
        memcpy(back, y, sizeof back);
        tro_rope_rows(tp, back, N, &c.rp, true);
        double err = 0;
        for (int i = 0; i < LEN; i++) err = fmax(err, fabs(back[i] - x[i]));
        CHECKF(err < 1e-5, "rope then its inverse is off by %g", err);
    }
}

/* ---- attention ---- */

typedef struct attn_ctx {
    threadpool *tp;
    float *q, *k, *v, *out, *probs, *r;
    tro_attn a;
} attn_ctx;

static double attn_obj(void *p) {
    attn_ctx *c = p;
    tro_attn_fwd(c->tp, c->out, c->probs, c->q, c->k, c->v, &c->a);
    return dot(c->out, c->r, (size_t)c->a.n_seq * c->a.seq_len * c->a.n_head * c->a.head_dim);
}

static void test_attention(threadpool *tp) {
    enum { B = 2, T = 5, H = 4, HKV = 2, HD = 4, NQ = B * T * H * HD, NK = B * T * HKV * HD };
    float q[NQ], k[NK], v[NK], out[NQ], probs[B * H * T * T], r[NQ], dq[NQ], dk[NK], dv[NK];
    float scratch[2 * (HD + 1) * T];
    fill(q, NQ, 1.0f);
    fill(k, NK, 1.0f);
    fill(v, NK, 1.0f);
    fill(r, NQ, 1.0f);
    attn_ctx c = {tp, q, k, v, out, probs, r, {B, T, H, HKV, HD, scratch}};
    attn_obj(&c);
    /* causal: the first position sees only itself */
    CHECK_NEAR(probs[0], 1.0f, 1e-6);
    CHECK_NEAR(probs[1], 0.0f, 0);
    tro_attn_bwd(tp, dq, dk, dv, r, probs, q, k, v, &c.a);
    check_direction("attention dq", q, NQ, dq, attn_obj, &c, 1e-2f, 2e-3);
    check_direction("attention dk", k, NK, dk, attn_obj, &c, 1e-2f, 2e-3);
    check_direction("attention dv", v, NK, dv, attn_obj, &c, 1e-2f, 2e-3);
}

/* ---- SwiGLU ---- */

typedef struct glu_ctx {
    threadpool *tp;
    float *g, *u, *a, *r;
    int64_t n;
} glu_ctx;

static double glu_obj(void *p) {
    glu_ctx *c = p;
    tro_swiglu_fwd(c->tp, c->a, c->g, c->u, c->n);
    return dot(c->a, c->r, (size_t)c->n);
}

static void test_swiglu(threadpool *tp) {
    enum { N = 40 };
    float g[N], u[N], a[N], r[N], dg[N], du[N];
    fill(g, N, 3.0f);
    fill(u, N, 1.0f);
    fill(r, N, 1.0f);
    glu_ctx c = {tp, g, u, a, r, N};
    glu_obj(&c);
    tro_swiglu_bwd(tp, dg, du, r, g, u, N);
    check_direction("swiglu dg", g, N, dg, glu_obj, &c, 1e-2f, 1e-3);
    check_direction("swiglu du", u, N, du, glu_obj, &c, 1e-2f, 1e-3);
}

/* ---- the matrix product ---- */

typedef struct mm_ctx {
    kernels *k;
    float *x, *w, *y, *r;
    int n;
    int64_t rows, cols;
} mm_ctx;

static double mm_obj(void *p) {
    mm_ctx *c = p;
    tro_matmul_fwd(c->k, c->y, c->x, c->w, c->n, c->rows, c->cols);
    return dot(c->y, c->r, (size_t)c->n * c->rows);
}

static void test_matmul(kernels *k) {
    enum { N = 7, R = 37, C = 19 };
    static float x[N * C], w[R * C], y[N * R], r[N * R], dx[N * C], dw[R * C], wt[R * C], xt[N * C], dyt[N * R],
        tmp[N * C];
    fill(x, N * C, 1.0f);
    fill(w, R * C, 1.0f);
    fill(r, N * R, 1.0f);
    mm_ctx c = {k, x, w, y, r, N, R, C};
    mm_obj(&c);
    tro_mm_scratch s = {wt, xt, dyt, tmp};
    tro_matmul_bwd(k, &s, dx, false, dw, r, x, w, N, R, C);
    check_direction("matmul dx", x, N * C, dx, mm_obj, &c, 1e-2f, 1e-4);
    check_direction("matmul dw", w, R * C, dw, mm_obj, &c, 1e-2f, 1e-4);
    float before = dx[5];
    tro_matmul_bwd(k, &s, dx, true, dw, r, x, w, N, R, C);
    CHECK_NEAR(dx[5], 2 * before, 1e-5);
}

/* ---- the loss ---- */

/* Teacher words for one position: the top-k of random logits z (scale 3),
 * with the log-sum-exp of all of them at tau. */
static void make_soft(uint32_t *w, int vocab, int k, float tau) {
    float z[256];
    fill(z, (size_t)vocab, 3.0f);
    double sum = 0;
    for (int j = 0; j < vocab; j++) sum += exp(z[j] / tau);
    float lse = (float)log(sum);
    memcpy(w, &lse, 4);
    for (int i = 0; i < k; i++) { /* the i-th largest */
        int best = -1;
        for (int j = 0; j < vocab; j++) {
            bool taken = false;
            for (int q = 0; q < i; q++) taken |= (int)w[1 + q] == j;
            if (!taken && (best < 0 || z[j] > z[best])) best = j;
        }
        w[1 + i] = (uint32_t)best;
        memcpy(&w[1 + k + i], &z[best], 4);
    }
}

typedef struct loss_ctx {
    threadpool *tp;
    tro_loss l;
} loss_ctx;

static double loss_obj(void *p) {
    loss_ctx *c = p;
    tro_loss l = c->l;
    l.dlogits = NULL;
    tro_loss_rows(c->tp, &l);
    double s = 0;
    for (int r = 0; r < l.n; r++) s += l.row_loss[r];
    return s / l.n;
}

static void test_loss(threadpool *tp) {
    enum { N = 6, V = 29, K = 5 };
    float logits[N * V], d[N * V], rl[N], rc[N], rk[N], scratch[2 * V];
    uint8_t mark[2 * V];
    uint32_t words[N][TR_SOFT_WORDS(K)];
    const uint32_t *soft[N];
    int32_t target[N] = {0, 5, 28, 3, 3, 17};
    fill(logits, N * V, 2.0f);
    float alphas[] = {0.0f, 1.0f, 0.4f}, taus[] = {1.0f, 1.0f, 2.5f};
    for (int a = 0; a < 3; a++) {
        for (int r = 0; r < N; r++) {
            make_soft(words[r], V, K, taus[a]);
            soft[r] = words[r];
        }
        loss_ctx c = {tp, {logits, d, N, V, target, soft, K, alphas[a], taus[a], rl, rc, rk, scratch, mark}};
        tro_loss_rows(tp, &c.l);
        char what[64];
        snprintf(what, sizeof what, "loss (alpha %.1f, tau %.1f)", alphas[a], taus[a]);
        check_direction(what, logits, N * V, d, loss_obj, &c, 1e-2f, 1e-3);
        for (int r = 0; r < N; r++) CHECKF(rk[r] >= -1e-6f, "KL %g < 0", rk[r]);
        if (a == 0) {
            tro_loss_rows(tp, &c.l);
            double lse = 0;
            for (int j = 0; j < V; j++) lse += exp(logits[j]);
            CHECK_NEAR(rc[0], log(lse) - logits[0], 1e-5);
        }
    }
}

/* ---- the whole model ---- */

static rl_shape tiny(bool tied) {
    rl_shape s = {.n_vocab = 32, .n_embd = 16, .n_layer = 2, .n_head = 4, .n_head_kv = 2, .n_ff = 24,
                  .head_dim = 4, .n_ctx_train = 64, .rope_base = 10000.0f, .rms_eps = 1e-5f,
                  .tied_embeddings = tied};
    return s;
}

typedef struct model_ctx {
    trainer *t;
    tr_batch b;
} model_ctx;

static double model_obj(void *p) {
    model_ctx *c = p;
    tr_loss l;
    rl_err err;
    tr_forward(c->t, &c->b, false, &l, &err);
    return l.loss;
}

/* Every tensor's gradient along a random direction, against the finite
 * difference of the loss. */
static void check_model(const rl_shape *s, float alpha, int n_threads) {
    tr_layout L;
    rl_err err = {0};
    CHECK(tr_layout_init(&L, s, &err) == 0);
    tr_config c = tr_default_config();
    c.n_seq = 2, c.seq_len = 6, c.n_threads = n_threads, c.alpha = alpha, c.temperature = 2.0f, c.top_k = 4;
    trainer *t = tr_new(&L, &c, &err);
    CHECKF(t != NULL, "%s", err.msg);
    if (!t) return;
    tr_init_weights(t, 7);
    float *w = tr_weights(t);
    for (int i = 0; i < L.n_tensors; i++) /* larger activations than at the start of training */
        for (size_t j = 0; L.t[i].rows > 1 && j < (size_t)L.t[i].rows * L.t[i].cols; j++) w[L.t[i].offset + j] *= 5.0f;
    int32_t tokens[2 * 7];
    for (int i = 0; i < 14; i++) tokens[i] = (int32_t)(rl_rng_next(&rng) % s->n_vocab);
    static uint32_t words[2][6][TR_SOFT_WORDS(4)];
    for (int q = 0; q < 2; q++)
        for (int p = 0; p < 6; p++) make_soft(words[q][p], (int)s->n_vocab, 4, 2.0f);
    const uint32_t *soft[2] = {&words[0][0][0], &words[1][0][0]};
    model_ctx mc = {t, {2, tokens, alpha > 0 ? soft : NULL}};
    tr_loss l;
    CHECK(tr_forward(t, &mc.b, true, &l, &err) == 0);
    tr_backward(t);
    float *g = malloc(L.n_floats * sizeof *g);
    memcpy(g, tr_grads(t), L.n_floats * sizeof *g);
    for (int i = 0; i < L.n_tensors; i++) {
        const tr_tensor *tt = &L.t[i];
        check_direction(tt->name, w + tt->offset, (size_t)tt->rows * tt->cols, g + tt->offset, model_obj, &mc,
                        2e-3f, 1e-2);
    }
    free(g);
    tr_free(t);
    tr_layout_free(&L);
}

static void test_layer(void) {
    rl_shape s = tiny(false);
    s.n_layer = 1;
    check_model(&s, 0.0f, 1);
}

static void test_model(void) {
    rl_shape s = tiny(false);
    check_model(&s, 0.0f, 2);
    s = tiny(true);
    check_model(&s, 0.5f, 2);
    s.rope_scaling = RL_ROPE_SCALING_LLAMA3, s.rope_factor = 8, s.rope_low_freq_factor = 1;
    s.rope_high_freq_factor = 4, s.rope_orig_ctx = 8;
    check_model(&s, 1.0f, 1);
}

/* ---- training ---- */

/* A trainer for the tiny shape, weights from seed 1. */
static trainer *tiny_trainer(tr_layout *L, const rl_shape *s, tr_config *c) {
    rl_err err = {0};
    if (tr_layout_init(L, s, &err)) return NULL;
    trainer *t = tr_new(L, c, &err);
    CHECKF(t != NULL, "%s", err.msg);
    if (t) tr_init_weights(t, 1);
    return t;
}

/* Steps of plain training on `tokens`; the loss of the last forward. */
static double train_steps(trainer *t, const tr_batch *b, int steps) {
    tr_loss l = {0};
    rl_err err = {0};
    for (int i = 0; i < steps; i++) {
        CHECK(tr_forward(t, b, true, &l, &err) == 0);
        tr_backward(t);
        tr_update(t, i);
    }
    CHECK(tr_forward(t, b, false, &l, &err) == 0);
    return b->soft ? l.kl : l.ce;
}

static void test_overfit(void) {
    rl_shape s = tiny(true);
    s.n_embd = 32, s.n_ff = 64, s.head_dim = 8;
    tr_config c = tr_default_config();
    c.n_seq = 1, c.seq_len = 16, c.n_threads = 2, c.lr = 1e-2f, c.warmup = 10, c.total_steps = 300;
    c.weight_decay = 0;
    tr_layout L;
    trainer *t = tiny_trainer(&L, &s, &c);
    if (!t) return;
    int32_t tokens[17];
    for (int i = 0; i < 17; i++) tokens[i] = (int32_t)(rl_rng_next(&rng) % s.n_vocab);
    tr_batch b = {1, tokens, NULL};
    double ce = train_steps(t, &b, 300);
    CHECKF(ce < 0.05, "after 300 steps on one sequence the loss is %g", ce);
    tr_free(t);
    tr_layout_free(&L);
}

static void test_kl_falls(void) {
    rl_shape s = tiny(false);
    tr_config c = tr_default_config();
    c.n_seq = 2, c.seq_len = 8, c.n_threads = 1, c.lr = 5e-3f, c.warmup = 5, c.total_steps = 150;
    c.alpha = 1, c.temperature = 2, c.top_k = 6;
    tr_layout L;
    trainer *t = tiny_trainer(&L, &s, &c);
    if (!t) return;
    int32_t tokens[18];
    for (int i = 0; i < 18; i++) tokens[i] = (int32_t)(rl_rng_next(&rng) % s.n_vocab);
    static uint32_t words[2][8][TR_SOFT_WORDS(6)];
    for (int q = 0; q < 2; q++)
        for (int p = 0; p < 8; p++) make_soft(words[q][p], (int)s.n_vocab, 6, 2.0f);
    const uint32_t *soft[2] = {&words[0][0][0], &words[1][0][0]};
    tr_batch b = {2, tokens, soft};
    double before = train_steps(t, &b, 0), after = train_steps(t, &b, 150);
    CHECKF(after < 0.25 * before, "KL to the teacher %g -> %g", before, after);
    tr_free(t);
    tr_layout_free(&L);
}

/* The same steps on 1 and 3 threads give the same bits. */
static void test_threads(void) {
    rl_shape s = tiny(false);
    float *w[2] = {NULL, NULL};
    size_t n = 0;
    int32_t tokens[4 * 11];
    for (int i = 0; i < 44; i++) tokens[i] = (int32_t)(rl_rng_next(&rng) % s.n_vocab);
    for (int r = 0; r < 2; r++) {
        tr_config c = tr_default_config();
        c.n_seq = 4, c.seq_len = 10, c.n_threads = r ? 3 : 1;
        tr_layout L;
        trainer *t = tiny_trainer(&L, &s, &c);
        if (!t) return;
        tr_batch b = {4, tokens, NULL};
        train_steps(t, &b, 5);
        n = L.n_floats;
        w[r] = malloc(n * sizeof(float));
        memcpy(w[r], tr_weights(t), n * sizeof(float));
        tr_free(t);
        tr_layout_free(&L);
    }
    CHECK(memcmp(w[0], w[1], n * sizeof(float)) == 0);
    free(w[0]);
    free(w[1]);
}

static void test_schedule(void) {
    tr_config c = tr_default_config();
    c.lr = 1.0f, c.min_lr_frac = 0.1f, c.warmup = 10, c.total_steps = 110;
    CHECK_NEAR(tr_lr(&c, 0), 0.1, 1e-6);
    CHECK_NEAR(tr_lr(&c, 9), 1.0, 1e-6);
    CHECK_NEAR(tr_lr(&c, 10), 1.0, 1e-6);
    CHECK_NEAR(tr_lr(&c, 60), 0.55, 1e-6);
    CHECK_NEAR(tr_lr(&c, 110), 0.1, 1e-6);
    CHECK_NEAR(tr_lr(&c, 500), 0.1, 1e-6);
}

static void test_layout(void) {
    rl_err err = {0};
    tr_layout L;
    rl_shape s = tiny(false);
    CHECK(tr_layout_init(&L, &s, &err) == 0);
    CHECK_EQ_INT(L.n_floats, shape_param_count(&s));
    CHECK_EQ_INT(L.n_tensors, 3 + 2 * 9);
    CHECK(tr_layout_find(&L, "blk.1.ffn_down.weight") == tr_layer_tensor(&L, 1, TR_DOWN));
    tr_layout_free(&L);
    s.n_head_kv = 3;
    CHECK(tr_layout_init(&L, &s, &err) == -1 && err.code == RL_ERR_INPUT);
    CHECKF(strstr(err.msg, "do not divide") != NULL, "%s", err.msg);
    s = tiny(false);
    s.head_dim = 5;
    CHECK(tr_layout_init(&L, &s, &err) == -1 && strstr(err.msg, "even") != NULL);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    rl_rng_seed(&rng, 42);
    rl_err err = {0};
    kern_params kp = {.n_threads = 2, .max_rows = 1, .max_cols = 1, .level = -1};
    kernels *k = kern_new(&kp, &err);
    CHECK(k != NULL);
    if (!k) return test_report("test_train");
    threadpool *tp = kern_pool(k);
    RUN_WITH(test_rmsnorm, tp);
    RUN_WITH(test_rope, tp);
    RUN_WITH(test_attention, tp);
    RUN_WITH(test_swiglu, tp);
    RUN_WITH(test_matmul, k);
    RUN_WITH(test_loss, tp);
    RUN(test_layer);
    RUN(test_model);
    RUN(test_overfit);
    RUN(test_kl_falls);
    RUN(test_threads);
    RUN(test_schedule);
    RUN(test_layout);
    kern_free(k);
    return test_report("test_train");
}
