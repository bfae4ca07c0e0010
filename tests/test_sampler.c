/*
 * test_sampler.c — the sampling chain and the stop matcher.
 *
 * Expected values come from the definitions (softmax, nucleus, penalties as
 * llama.cpp and OpenAI define them), computed here independently of the
 * code under test: a plain full sort stands in for the sampler's heap and
 * band pre-pass on a 128k vocabulary. Frequencies are checked with a fixed
 * seed against the expected probabilities, within five standard errors.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/sampler.h"
#include "test.h"

/* ---- helpers ---- */

/* A deterministic stream for test data (not the sampler's). */
static uint64_t test_state = 12345;
static double test_rand(void) {
    test_state = test_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(test_state >> 11) * 0x1.0p-53;
}
static float test_gauss(void) {
    double u = test_rand() + 1e-12, v = test_rand();
    return (float)(sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v));
}

static sampler_params plain_params(void) {
    sampler_params p = sampler_default_params();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = 42;
    return p;
}

static sampler *make(const sampler_params *p, int32_t n) {
    rl_err err = {0};
    sampler *s = sampler_new(p, n, &err);
    CHECKF(s != NULL, "sampler_new: %s", err.msg);
    return s;
}

/* Draws `draws` tokens and returns their frequencies in freq[0..n). */
static void frequencies(sampler *s, const float *logits, int32_t n, int draws, double *freq) {
    int out_of_range = 0;
    for (int32_t i = 0; i < n; i++) freq[i] = 0;
    for (int d = 0; d < draws; d++) {
        int32_t t = sampler_sample(s, logits);
        if (t >= 0 && t < n)
            freq[t] += 1.0 / draws;
        else
            out_of_range++;
    }
    CHECK_EQ_INT(out_of_range, 0);
}

/* Frequencies within five standard errors of the expected probabilities;
 * tokens with probability 0 must never appear. */
static void check_frequencies(const char *what, const double *freq, const double *expect, int32_t n, int draws) {
    for (int32_t i = 0; i < n; i++) {
        double se = sqrt(expect[i] * (1 - expect[i]) / draws);
        if (expect[i] == 0.0)
            CHECKF(freq[i] == 0.0, "%s: token %d appeared (%.4f) but should not", what, (int)i, freq[i]);
        else
            CHECKF(fabs(freq[i] - expect[i]) <= 5 * se + 1e-9, "%s: token %d frequency %.4f, expected %.4f", what,
                   (int)i, freq[i], expect[i]);
    }
}

/* softmax(logit / t) over the tokens where keep[i], into p[]. */
static void softmax_kept(const float *logits, const bool *keep, int32_t n, double t, double *p) {
    double m = -INFINITY, z = 0;
    for (int32_t i = 0; i < n; i++)
        if (keep[i] && logits[i] > m) m = logits[i];
    for (int32_t i = 0; i < n; i++) z += keep[i] ? exp((logits[i] - m) / t) : 0.0;
    for (int32_t i = 0; i < n; i++) p[i] = keep[i] ? exp((logits[i] - m) / t) / z : 0.0;
}

/* ---- greedy ---- */

static void test_greedy(void) {
    float logits[] = {0.5f, 3.0f, -1.0f, 2.9f, 3.0f, NAN};
    sampler_params p = plain_params();
    p.temperature = 0.0f;
    sampler *s = make(&p, 6);
    CHECK_EQ_INT(sampler_sample(s, logits), 1); /* tie 1 vs 4: the lower id; NaN never wins */
    logits[3] = 7.0f;
    CHECK_EQ_INT(sampler_sample(s, logits), 3);
    float all_ninf[] = {-INFINITY, -INFINITY, -INFINITY};
    sampler_free(s);
    s = make(&p, 3);
    CHECK_EQ_INT(sampler_sample(s, all_ninf), 0);
    int32_t id;
    float prob;
    CHECK_EQ_INT(sampler_distribution(s, all_ninf, &id, &prob), 1);
    CHECK_EQ_INT(id, 0);
    sampler_free(s);

    /* Negative temperature is greedy too, whatever the filters say. */
    p.temperature = -1.0f;
    p.top_k = 2;
    p.top_p = 0.1f;
    s = make(&p, 6);
    logits[3] = 2.9f;
    CHECK_EQ_INT(sampler_sample(s, logits), 1);
    sampler_free(s);
}

/* top-k = 1 leaves only the argmax, so any temperature draws it. */
static void test_top_k_1_is_greedy(void) {
    enum { N = 1000 };
    static float logits[N];
    sampler_params g = plain_params(), k1 = plain_params();
    g.temperature = 0.0f;
    k1.top_k = 1;
    k1.temperature = 1.5f;
    k1.top_p = 0.9f;
    sampler *sg = make(&g, N), *sk = make(&k1, N);
    int same = 0;
    for (int trial = 0; trial < 200; trial++) {
        for (int i = 0; i < N; i++) logits[i] = test_gauss() * 2.0f;
        if (trial % 10 == 0) logits[trial] = logits[trial + 1] = 50.0f; /* a tie at the top */
        same += sampler_sample(sg, logits) == sampler_sample(sk, logits);
    }
    CHECK_EQ_INT(same, 200);
    sampler_free(sg);
    sampler_free(sk);
}

/* ---- seeds ---- */

static void test_seed(void) {
    enum { N = 64, DRAWS = 2000 };
    float logits[N];
    for (int i = 0; i < N; i++) logits[i] = test_gauss();
    sampler_params p = plain_params();
    p.seed = 7;
    sampler *a = make(&p, N), *b = make(&p, N);
    p.seed = 8;
    sampler *c = make(&p, N);
    static int32_t seq_a[DRAWS];
    int same_ab = 0, same_ac = 0;
    for (int d = 0; d < DRAWS; d++) {
        int32_t ta = sampler_sample(a, logits), tb = sampler_sample(b, logits), tc = sampler_sample(c, logits);
        seq_a[d] = ta;
        same_ab += ta == tb;
        same_ac += ta == tc;
    }
    /* a, b and c drew in turn: b repeats a exactly, so sessions do not
     * disturb each other. */
    CHECK_EQ_INT(same_ab, DRAWS);
    /* Independent draws over 64 tokens agree by chance a few percent of the time. */
    CHECKF(same_ac < DRAWS / 4, "seeds 7 and 8 agree on %d of %d draws", same_ac, DRAWS);

    /* reset restarts the stream: the same sequence again. */
    sampler_reset(a);
    int again = 0;
    for (int d = 0; d < DRAWS; d++) again += sampler_sample(a, logits) == seq_a[d];
    CHECK_EQ_INT(again, DRAWS);
    sampler_free(a);
    sampler_free(b);
    sampler_free(c);
}

/* ---- the filters and temperature, statistically ---- */

enum { SMALL = 5, DRAWS = 20000 };
static const double PROBS[SMALL] = {0.4, 0.3, 0.15, 0.1, 0.05};

static void check_case(const char *what, const sampler_params *p, const bool keep[SMALL], double temp) {
    float logits[SMALL];
    for (int i = 0; i < SMALL; i++) logits[i] = logf((float)PROBS[i]);
    double expect[SMALL], freq[SMALL];
    softmax_kept(logits, keep, SMALL, temp, expect);

    sampler *s = make(p, SMALL);
    int32_t ids[SMALL];
    float probs[SMALL];
    int32_t k = sampler_distribution(s, logits, ids, probs);
    int kept = 0;
    for (int i = 0; i < SMALL; i++) kept += keep[i];
    CHECKF(k == kept, "%s: %d candidates, expected %d", what, (int)k, kept);
    for (int32_t i = 0; i < k && i < SMALL; i++) {
        CHECKF(ids[i] >= 0 && ids[i] < SMALL && keep[ids[i]], "%s: token %d should not survive", what, (int)ids[i]);
        if (ids[i] >= 0 && ids[i] < SMALL)
            CHECKF(fabs(probs[i] - expect[ids[i]]) < 1e-5, "%s: p(%d) = %.6f, expected %.6f", what, (int)ids[i],
                   probs[i], expect[ids[i]]);
    }
    frequencies(s, logits, SMALL, DRAWS, freq);
    check_frequencies(what, freq, expect, SMALL, DRAWS);
    sampler_free(s);
}

static void test_filters(void) {
    const bool all[SMALL] = {1, 1, 1, 1, 1};
    sampler_params p = plain_params();
    check_case("temperature 1", &p, all, 1.0);

    p.temperature = 0.5f; /* p^2, renormalised: sharper */
    check_case("temperature 0.5", &p, all, 0.5);
    p.temperature = 2.0f; /* sqrt(p): flatter */
    check_case("temperature 2", &p, all, 2.0);

    p = plain_params();
    p.top_k = 3;
    check_case("top-k 3", &p, (const bool[SMALL]){1, 1, 1, 0, 0}, 1.0);

    /* 0.4 < 0.5 <= 0.4 + 0.3: the two most likely tokens, never the others. */
    p = plain_params();
    p.top_p = 0.5f;
    check_case("top-p 0.5", &p, (const bool[SMALL]){1, 1, 0, 0, 0}, 1.0);
    p.top_p = 0.9f; /* 0.85 < 0.9 <= 0.95 */
    check_case("top-p 0.9", &p, (const bool[SMALL]){1, 1, 1, 1, 0}, 1.0);
    p.top_p = 0.0f; /* keeps at least one */
    check_case("top-p 0", &p, (const bool[SMALL]){1, 0, 0, 0, 0}, 1.0);

    /* min-p 0.3: p >= 0.3 * 0.4 = 0.12 */
    p = plain_params();
    p.min_p = 0.3f;
    check_case("min-p 0.3", &p, (const bool[SMALL]){1, 1, 1, 0, 0}, 1.0);
    p.min_p = 2.0f; /* more than the max: still the max */
    check_case("min-p 2", &p, (const bool[SMALL]){1, 0, 0, 0, 0}, 1.0);

    /* The whole chain. top-k 4 leaves 0.95 of the mass, renormalised to
     * .421 .316 .158 .105; top-p 0.8 over those keeps three (.737 < .8 <=
     * .895); min-p 0.2 (floor .08) keeps them; then temperature 0.7. */
    p = plain_params();
    p.top_k = 4;
    p.top_p = 0.8f;
    p.min_p = 0.2f;
    p.temperature = 0.7f;
    check_case("chain", &p, (const bool[SMALL]){1, 1, 1, 0, 0}, 0.7);
    /* ... and min-p 0.5 (floor .2) drops the third: the cut is the tighter one. */
    p.min_p = 0.5f;
    check_case("chain, tight min-p", &p, (const bool[SMALL]){1, 1, 0, 0, 0}, 0.7);
    /* top-p measures at temperature 1 even when the temperature is high. */
    p.min_p = 0.0f;
    p.temperature = 5.0f;
    check_case("chain, hot", &p, (const bool[SMALL]){1, 1, 1, 0, 0}, 5.0);
}

/* ---- a 128k vocabulary against a full sort ---- */

typedef struct ref_tok {
    float logit;
    int32_t id;
} ref_tok;

static int ref_cmp(const void *a, const void *b) {
    const ref_tok *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The chain by its definition: sort everything, cut by top-k, softmax,
 * cut by top-p, cut by min-p. Marks the survivors in keep[]. */
static void reference_chain(const float *logits, int32_t n, const sampler_params *p, ref_tok *tmp, bool *keep) {
    for (int32_t i = 0; i < n; i++) tmp[i] = (ref_tok){logits[i], i};
    qsort(tmp, (size_t)n, sizeof *tmp, ref_cmp);
    int32_t k = p->top_k > 0 && p->top_k < n ? p->top_k : n;
    if (p->top_p < 1.0f) {
        double z = 0, cum = 0;
        for (int32_t i = 0; i < k; i++) z += exp(tmp[i].logit - tmp[0].logit);
        for (int32_t i = 0; i < k; i++) {
            cum += exp(tmp[i].logit - tmp[0].logit);
            if (cum >= p->top_p * z) {
                k = i + 1;
                break;
            }
        }
    }
    if (p->min_p > 0.0f) {
        int32_t i = 1;
        while (i < k && tmp[i].logit >= tmp[0].logit + logf(p->min_p)) i++;
        k = i;
    }
    memset(keep, 0, (size_t)n);
    for (int32_t i = 0; i < k; i++) keep[tmp[i].id] = true;
}

static void compare_with_reference(const char *what, const float *logits, int32_t n, const sampler_params *p,
                                   int32_t *ids, float *probs, ref_tok *tmp, bool *keep, double *expect) {
    reference_chain(logits, n, p, tmp, keep);
    softmax_kept(logits, keep, n, p->temperature, expect);
    sampler *s = make(p, n);
    int32_t k = sampler_distribution(s, logits, ids, probs);
    int32_t kept = 0, wrong = 0;
    double worst = 0;
    for (int32_t i = 0; i < n; i++) kept += keep[i];
    for (int32_t i = 0; i < k; i++) {
        if (ids[i] < 0 || ids[i] >= n || !keep[ids[i]]) {
            wrong++;
            continue;
        }
        worst = fmax(worst, fabs(probs[i] - expect[ids[i]]));
    }
    CHECKF(k == kept && wrong == 0, "%s: %d candidates (%d not in the reference), reference has %d", what, (int)k,
           (int)wrong, (int)kept);
    CHECKF(worst < 1e-6, "%s: probabilities differ from the reference by %g", what, worst);
    /* And the draws only ever land on survivors. */
    int outside = 0;
    for (int d = 0; d < 200; d++) {
        int32_t t = sampler_sample(s, logits);
        outside += t < 0 || t >= n || !keep[t];
    }
    CHECK_EQ_INT(outside, 0);
    sampler_free(s);
}

static void test_large_vocab(void) {
    enum { N = 128256 };
    float *logits = malloc(N * sizeof *logits);
    int32_t *ids = malloc(N * sizeof *ids);
    float *probs = malloc(N * sizeof *probs);
    ref_tok *tmp = malloc(N * sizeof *tmp);
    bool *keep = malloc(N);
    double *expect = malloc(N * sizeof *expect);
    CHECK(logits && ids && probs && tmp && keep && expect);
    if (!(logits && ids && probs && tmp && keep && expect)) return;

    /* Shaped like a model's: most logits in a broad bulk, a few far above. */
    for (int32_t i = 0; i < N; i++) logits[i] = test_gauss() * 2.0f;
    for (int j = 0; j < 30; j++) logits[(int32_t)(test_rand() * N)] = 8.0f + (float)j * 0.3f;

    sampler_params p = plain_params();
    p.top_p = 0.9f;
    compare_with_reference("128k top-p 0.9", logits, N, &p, ids, probs, tmp, keep, expect);
    p.top_p = 0.999f; /* reaches deep into the bulk */
    compare_with_reference("128k top-p 0.999", logits, N, &p, ids, probs, tmp, keep, expect);
    p.min_p = 0.01f;
    p.top_p = 0.95f;
    p.temperature = 0.8f;
    compare_with_reference("128k top-p + min-p", logits, N, &p, ids, probs, tmp, keep, expect);
    p = plain_params();
    p.min_p = 0.05f;
    compare_with_reference("128k min-p", logits, N, &p, ids, probs, tmp, keep, expect);
    p = sampler_default_params(); /* top-k 40, top-p .95, min-p .05, temp .8 */
    compare_with_reference("128k defaults", logits, N, &p, ids, probs, tmp, keep, expect);
    p.top_k = 5000;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    compare_with_reference("128k top-k 5000", logits, N, &p, ids, probs, tmp, keep, expect);

    /* A flat distribution: the nucleus is most of the vocabulary. */
    for (int32_t i = 0; i < N; i++) logits[i] = (float)(test_rand() * 0.1);
    p = plain_params();
    p.top_p = 0.5f;
    compare_with_reference("128k flat top-p", logits, N, &p, ids, probs, tmp, keep, expect);

    /* Ties across the whole vocabulary: the lower ids survive top-k. */
    for (int32_t i = 0; i < N; i++) logits[i] = 1.0f;
    p = plain_params();
    p.top_k = 3;
    sampler *s = make(&p, N);
    int32_t k = sampler_distribution(s, logits, ids, probs);
    CHECK_EQ_INT(k, 3);
    bool low = true;
    for (int32_t i = 0; i < k; i++) low = low && ids[i] < 3;
    CHECK(low);
    sampler_free(s);

    free(logits);
    free(ids);
    free(probs);
    free(tmp);
    free(keep);
    free(expect);
}

/* ---- penalties ---- */

static void test_penalties(void) {
    sampler_params p = plain_params();
    p.temperature = 0.0f;
    p.repeat_penalty = 1.5f;
    p.penalty_last_n = 2;

    /* A positive logit is divided: 2.0 / 1.5 = 1.33 < 1.9. */
    float pos[] = {2.0f, 1.9f, -3.0f, -3.0f};
    sampler *s = make(&p, 4);
    CHECK_EQ_INT(sampler_sample(s, pos), 0);
    sampler_accept(s, 0);
    CHECK_EQ_INT(sampler_sample(s, pos), 1);
    /* The window is two tokens: after two more, token 0 is forgiven. */
    sampler_accept(s, 2);
    CHECK_EQ_INT(sampler_sample(s, pos), 1);
    sampler_accept(s, 3);
    CHECK_EQ_INT(sampler_sample(s, pos), 0);
    /* Ids out of range are ignored. */
    sampler_accept(s, -1);
    sampler_accept(s, 4);
    CHECK_EQ_INT(sampler_sample(s, pos), 0);
    /* reset forgets the history. */
    sampler_accept(s, 0);
    CHECK_EQ_INT(sampler_sample(s, pos), 1);
    sampler_reset(s);
    CHECK_EQ_INT(sampler_sample(s, pos), 0);
    sampler_free(s);

    /* A negative logit is multiplied (dividing would make it likelier):
     * -1.0 * 1.5 = -1.5 < -1.2. */
    float neg[] = {-1.0f, -1.2f};
    s = make(&p, 2);
    sampler_accept(s, 0);
    CHECK_EQ_INT(sampler_sample(s, neg), 1);
    sampler_free(s);

    /* Presence subtracts once, frequency once per occurrence (OpenAI), after
     * the repetition penalty. Checked on the distribution at temperature 1. */
    p = plain_params();
    p.repeat_penalty = 1.25f;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    p.penalty_last_n = 8;
    float logits[] = {1.0f, 2.0f, -0.5f, 0.0f};
    s = make(&p, 4);
    int32_t hist[] = {1, 1, 1, 2, 1};
    for (size_t i = 0; i < RL_ARRAY_LEN(hist); i++) sampler_accept(s, hist[i]);
    float adjusted[] = {1.0f, 2.0f / 1.25f - 4 * 0.25f - 0.5f, -0.5f * 1.25f - 1 * 0.25f - 0.5f, 0.0f};
    const bool all[4] = {1, 1, 1, 1};
    double expect[4];
    softmax_kept(adjusted, all, 4, 1.0, expect);
    int32_t ids[4];
    float probs[4];
    int32_t k = sampler_distribution(s, logits, ids, probs);
    CHECK_EQ_INT(k, 4);
    for (int32_t i = 0; i < k; i++)
        CHECKF(fabs(probs[i] - expect[ids[i]]) < 1e-6, "penalised p(%d) = %.6f, expected %.6f", (int)ids[i], probs[i],
               expect[ids[i]]);
    /* The logits passed in are not modified. */
    CHECK(logits[1] == 2.0f && logits[2] == -0.5f);
    sampler_free(s);

    /* penalty_last_n 0 turns penalties off. */
    p.penalty_last_n = 0;
    p.temperature = 0.0f;
    s = make(&p, 4);
    for (int i = 0; i < 10; i++) sampler_accept(s, 1);
    CHECK_EQ_INT(sampler_sample(s, logits), 1);
    sampler_free(s);
}

static void test_bad_params(void) {
    rl_err err = {0};
    sampler_params p = plain_params();
    CHECK(sampler_new(&p, 0, &err) == NULL && err.code == RL_ERR_INPUT);
    p.repeat_penalty = 0.0f;
    CHECK(sampler_new(&p, 10, &err) == NULL && err.code == RL_ERR_INPUT);
    p = plain_params();
    p.temperature = NAN;
    CHECK(sampler_new(&p, 10, &err) == NULL && err.code == RL_ERR_INPUT);
    p = plain_params();
    p.penalty_last_n = -1;
    CHECK(sampler_new(&p, 10, &err) == NULL && err.code == RL_ERR_INPUT);
    p.penalty_last_n = SAMPLER_MAX_LAST_N + 1;
    CHECK(sampler_new(&p, 10, &err) == NULL && err.code == RL_ERR_INPUT);
    CHECK(strstr(err.msg, "penalty window") != NULL);
}

/* ---- log-probabilities ---- */

static int by_logit_desc(const void *a, const void *b, const float *l) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return l[x] > l[y] ? -1 : l[x] < l[y] ? 1 : x - y;
}
static const float *sort_logits;
static int cmp_ids(const void *a, const void *b) { return by_logit_desc(a, b, sort_logits); }

static void test_logprobs(void) {
    enum { N = 3000 };
    float *l = malloc(N * sizeof *l);
    int32_t *order = malloc(N * sizeof *order);
    for (int i = 0; i < N; i++) l[i] = 3.0f * test_gauss(), order[i] = i;
    l[17] = l[18] = 40.0f; /* a tie at the top: the lower id first */
    sort_logits = l;
    qsort(order, N, sizeof *order, cmp_ids);
    /* the reference: log-softmax in double */
    double m = l[17], z = 0;
    for (int i = 0; i < N; i++) z += exp((double)l[i] - m);
    double log_z = m + log(z), mass = 0;
    for (int32_t t = 0; t < N; t++) {
        sampler_logprob lp;
        sampler_logprobs(l, N, t, 0, &lp);
        CHECK(lp.token == t && lp.n_top == 0);
        CHECKF(lp.logprob <= 0 && fabs(lp.logprob - (l[t] - log_z)) < 1e-4, "logprob(%d) = %g, expected %g", (int)t,
               lp.logprob, l[t] - log_z);
        mass += exp((double)lp.logprob);
    }
    CHECKF(fabs(mass - 1.0) < 1e-4, "the probabilities sum to %.6f", mass);
    /* the top 20 (more asked for is clamped), best first, ties by id; the
     * greedy sampler's token is the first, with the same log-probability */
    sampler_params p = plain_params();
    p.temperature = 0;
    sampler *s = make(&p, N);
    int32_t greedy = sampler_sample(s, l);
    sampler_free(s);
    sampler_logprob lp;
    sampler_logprobs(l, N, greedy, 99, &lp);
    CHECK_EQ_INT(lp.n_top, SAMPLER_MAX_TOP_LOGPROBS);
    CHECK_EQ_INT(lp.top_ids[0], 17);
    CHECK_EQ_INT(greedy, lp.top_ids[0]);
    CHECK(lp.logprob == lp.top_logprobs[0]);
    for (int i = 0; i < lp.n_top; i++) {
        CHECKF(lp.top_ids[i] == order[i], "top %d: %d, expected %d", i, (int)lp.top_ids[i], (int)order[i]);
        CHECK(i == 0 || lp.top_logprobs[i] <= lp.top_logprobs[i - 1]);
    }
    sampler_logprobs(l, N, 5, 3, &lp);
    CHECK(lp.n_top == 3 && lp.top_ids[1] == 18 && lp.token == 5);
    /* NaN counts as -inf; all -inf is uniform */
    float odd[4] = {NAN, 0.0f, -INFINITY, 0.0f};
    sampler_logprobs(odd, 4, 0, 4, &lp);
    CHECK(isinf(lp.logprob) && lp.logprob < 0 && lp.top_ids[0] == 1 && lp.top_ids[1] == 3);
    CHECK(fabs(lp.top_logprobs[0] - (float)log(0.5)) < 1e-6);
    float none[2] = {-INFINITY, NAN};
    sampler_logprobs(none, 2, 1, 1, &lp);
    CHECK(fabs(lp.logprob - (float)log(0.5)) < 1e-6 && lp.n_top == 1);
    free(l);
    free(order);
}

/* ---- stop strings ---- */

/* Pushes text in pieces of the given sizes (0-terminated list; the rest in
 * one piece), then flushes unless stopped. Returns what was emitted. */
static char *run_stops(const char *const *stops, int n_stops, const char *text, const size_t *pieces,
                       bool *stopped) {
    rl_err err = {0};
    stop_matcher *m = stop_new(stops, n_stops, &err);
    CHECKF(m != NULL, "stop_new: %s", err.msg);
    if (!m) return NULL;
    size_t len = strlen(text), at = 0, used = 0;
    char *result = calloc(len + 1, 1);
    char *out = malloc(len + stop_max_len(m) + 1);
    *stopped = false;
    do {
        size_t piece = pieces && *pieces ? *pieces++ : len - at;
        if (piece > len - at) piece = len - at;
        bool st = false;
        size_t n = stop_push(m, text + at, piece, out, &st);
        CHECK(used + n <= len);
        memcpy(result + used, out, n);
        used += n;
        at += piece;
        if (st) *stopped = true;
    } while (at < len);
    if (!*stopped) {
        size_t n = stop_flush(m, out);
        CHECK(used + n <= len);
        memcpy(result + used, out, n);
        used += n;
    }
    result[used] = 0;
    free(out);
    stop_free(m);
    return result;
}

static void expect_stops(const char *const *stops, int n_stops, const char *text, const size_t *pieces,
                         const char *want, bool want_stopped) {
    bool stopped;
    char *got = run_stops(stops, n_stops, text, pieces, &stopped);
    CHECKF(got && strcmp(got, want) == 0, "text \"%s\": emitted \"%s\", expected \"%s\"", text, got ? got : "(null)",
           want);
    CHECKF(stopped == want_stopped, "text \"%s\": stopped %d, expected %d", text, stopped, want_stopped);
    free(got);
}

static void test_stop_cases(void) {
    const char *stop[] = {"STOP"};
    expect_stops(stop, 1, "Hello STOP world", NULL, "Hello ", true);             /* exact, one push */
    expect_stops(stop, 1, "STOPxyz", NULL, "", true);                            /* at the start */
    expect_stops(stop, 1, "no stop here", NULL, "no stop here", false);          /* none */
    expect_stops(stop, 1, "abSTOP", (const size_t[]){3, 1, 1, 1, 0}, "ab", true); /* across pushes */
    expect_stops(stop, 1, "STO", NULL, "STO", false);                            /* partial, then the end */
    expect_stops(stop, 1, "STOSTOP", (const size_t[]){1, 1, 1, 1, 1, 1, 1, 0}, "STO", true);
    expect_stops(NULL, 0, "anything", (const size_t[]){2, 0}, "anything", false);

    /* Partial match, then divergence: the held bytes come out. */
    const char *abc[] = {"abc"};
    bool stopped;
    rl_err err = {0};
    stop_matcher *m = stop_new(abc, 1, &err);
    CHECK(m != NULL);
    if (m) {
        char out[64];
        CHECK_EQ_INT(stop_push(m, "xab", 3, out, &stopped), 1); /* "x"; "ab" held */
        CHECK(!stopped && out[0] == 'x');
        CHECK_EQ_INT(stop_push(m, "d", 1, out, &stopped), 3);
        CHECK(!stopped && memcmp(out, "abd", 3) == 0);
        CHECK_EQ_INT(stop_push(m, "abc tail", 8, out, &stopped), 0);
        CHECK(stopped);
        CHECK_EQ_INT(stop_push(m, "more", 4, out, &stopped), 0); /* nothing after a stop */
        CHECK(stopped);
        stop_reset(m);
        CHECK_EQ_INT(stop_push(m, "ok", 2, out, &stopped), 2);
        CHECK(!stopped);
        stop_free(m);
    }

    /* Two stops sharing a prefix. */
    const char *shared[] = {"abc", "abd"};
    expect_stops(shared, 2, "xxabd", (const size_t[]){4, 1, 0}, "xx", true);
    expect_stops(shared, 2, "xxabe", (const size_t[]){4, 1, 0}, "xxabe", false);
    /* One stop a prefix of another: the first to complete wins, however
     * the text is split. */
    const char *nested[] = {"abcd", "ab"};
    expect_stops(nested, 2, "zabcd", NULL, "z", true);
    expect_stops(nested, 2, "zabcd", (const size_t[]){2, 0}, "z", true);
    /* Two ending at the same byte: the longer one (nothing of it emitted). */
    const char *ends[] = {"cd", "bcd"};
    expect_stops(ends, 2, "abcd", (const size_t[]){2, 0}, "a", true);

    /* UTF-8: bytes, so a character split across pushes is fine. */
    const char *utf[] = {"\xC3\xA9!"}; /* "é!" */
    expect_stops(utf, 1, "caf\xC3\xA9!", (const size_t[]){4, 1, 1, 0}, "caf", true);
    expect_stops(utf, 1, "caf\xC3\xA9.", (const size_t[]){4, 1, 1, 0}, "caf\xC3\xA9.", false);

    /* Empty stop strings are ignored; limits are enforced. */
    const char *empty[] = {"", "END"};
    expect_stops(empty, 2, "a END", NULL, "a ", true);
    const char *many[STOP_MAX_STRINGS + 1];
    for (int i = 0; i <= STOP_MAX_STRINGS; i++) many[i] = "x";
    CHECK(stop_new(many, STOP_MAX_STRINGS + 1, &err) == NULL && err.code == RL_ERR_INPUT);
    char *big = malloc(STOP_MAX_LEN + 2);
    memset(big, 'a', STOP_MAX_LEN + 1);
    big[STOP_MAX_LEN + 1] = 0;
    const char *bigs[] = {big};
    CHECK(stop_new(bigs, 1, &err) == NULL && err.code == RL_ERR_INPUT);
    free(big);
}

/* The outcome does not depend on how the text is split: random texts and
 * random splits against the definition (the earliest-ending stop; at equal
 * ends the longest; emit what precedes it). */
static void test_stop_split_invariance(void) {
    const char *stops[] = {"abc", "bca", "cc", "abab"};
    enum { LEN = 24 };
    char text[LEN + 1], want[LEN + 1];
    size_t pieces[LEN + 1];
    int bad = 0;
    for (int trial = 0; trial < 3000; trial++) {
        for (int i = 0; i < LEN; i++) text[i] = (char)('a' + (int)(test_rand() * 3));
        text[LEN] = 0;
        size_t emit = LEN;
        bool want_stopped = false;
        for (size_t end = 1; end <= LEN && !want_stopped; end++) {
            size_t best = 0;
            for (int j = 0; j < 4; j++) {
                size_t l = strlen(stops[j]);
                if (l <= end && l > best && memcmp(text + end - l, stops[j], l) == 0) best = l;
            }
            if (best) {
                want_stopped = true;
                emit = end - best;
            }
        }
        memcpy(want, text, emit);
        want[emit] = 0;
        size_t np = 0, left = LEN;
        while (left > 0) {
            size_t piece = 1 + (size_t)(test_rand() * 4);
            if (piece > left) piece = left;
            pieces[np++] = piece;
            left -= piece;
        }
        pieces[np] = 0;
        bool stopped;
        char *got = run_stops(stops, 4, text, pieces, &stopped);
        if (!got || strcmp(got, want) != 0 || stopped != want_stopped) {
            if (bad++ < 3)
                fprintf(stderr, "split invariance: \"%s\" gave \"%s\", expected \"%s\"\n", text, got ? got : "", want);
        }
        free(got);
    }
    CHECK_EQ_INT(bad, 0);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(test_greedy);
    RUN(test_top_k_1_is_greedy);
    RUN(test_seed);
    RUN(test_filters);
    RUN(test_large_vocab);
    RUN(test_penalties);
    RUN(test_bad_params);
    RUN(test_logprobs);
    RUN(test_stop_cases);
    RUN(test_stop_split_invariance);
    return test_report("test_sampler");
}
