/*
 * sampler.c — the sampling chain and the stop matcher (see sampler.h for
 * what each step means; this file is about doing it cheaply).
 *
 * One call of sampler_sample reads the logits once or twice and never
 * allocates: penalties patch a copy of the logits at the few tokens of the
 * recent history; the filters leave their survivors in a candidate array
 * sized for the whole vocabulary; the draw walks the survivors. Ordering is
 * done in place (a heap for top-k, a mass quickselect for top-p) and only
 * on candidates; qsort is avoided because it may allocate.
 */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"

/* ---- candidates and their order ---- */

typedef struct cand {
    float logit;
    int32_t id;
} cand;

/* NaN logits count as -infinity, so every comparison below is total. */
static inline float clean(float x) { return x == x ? x : -INFINITY; }

/* The order of the whole file: higher logit first, then lower id. */
static inline bool better(cand a, cand b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

/* A heap whose root is the worst element: the top-k selection keeps the k
 * best seen so far and compares each new logit with the root only. */
static void sift_down(cand *h, int32_t n, int32_t i) {
    for (;;) {
        int32_t w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && better(h[w], h[l])) w = l;
        if (r < n && better(h[w], h[r])) w = r;
        if (w == i) return;
        cand t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void sift_up(cand *h, int32_t i) {
    while (i > 0) {
        int32_t parent = (i - 1) / 2;
        if (!better(h[parent], h[i])) return;
        cand t = h[i];
        h[i] = h[parent];
        h[parent] = t;
        i = parent;
    }
}

/* Sorts a worst-at-root heap best-first, in place: each step moves the
 * current worst to the end of the shrinking heap. */
static void heap_sort_best_first(cand *h, int32_t n) {
    for (int32_t end = n - 1; end > 0; end--) {
        cand t = h[0];
        h[0] = h[end];
        h[end] = t;
        sift_down(h, end, 0);
    }
}

static void sort_best_first(cand *c, int32_t n) {
    for (int32_t i = n / 2 - 1; i >= 0; i--) sift_down(c, n, i);
    heap_sort_best_first(c, n);
}

/* The largest logit, NaN ignored (-inf if there is none). `v > m ? v : m`
 * is false for NaN, and eight independent maxima keep the comparisons from
 * waiting on each other. */
#define TAKE_MAX(m, v) ((v) > (m) ? (v) : (m))

static float max_of(const float *l, int32_t n) {
    float m0 = -INFINITY, m1 = m0, m2 = m0, m3 = m0, m4 = m0, m5 = m0, m6 = m0, m7 = m0;
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        m0 = TAKE_MAX(m0, l[i]);
        m1 = TAKE_MAX(m1, l[i + 1]);
        m2 = TAKE_MAX(m2, l[i + 2]);
        m3 = TAKE_MAX(m3, l[i + 3]);
        m4 = TAKE_MAX(m4, l[i + 4]);
        m5 = TAKE_MAX(m5, l[i + 5]);
        m6 = TAKE_MAX(m6, l[i + 6]);
        m7 = TAKE_MAX(m7, l[i + 7]);
    }
    for (; i < n; i++) m0 = TAKE_MAX(m0, l[i]);
    m0 = TAKE_MAX(m0, m1);
    m2 = TAKE_MAX(m2, m3);
    m4 = TAKE_MAX(m4, m5);
    m6 = TAKE_MAX(m6, m7);
    m0 = TAKE_MAX(m0, m2);
    m4 = TAKE_MAX(m4, m6);
    return TAKE_MAX(m0, m4);
}

int32_t sampler_argmax(const float *l, int32_t n) {
    float m = max_of(l, n);
    for (int32_t i = 0; i < n; i++)
        if (l[i] == m) return i;
    return 0;
}

/* ---- the sampler ---- */

struct sampler {
    sampler_params p;
    int32_t n_vocab;
    rl_rng rng;
    cand *cand; /* n_vocab: the survivors of the filters */

    /* Penalties: allocated only when they are on. The window is a ring of
     * the last penalty_last_n tokens; count[] says how often each token is
     * in it, and distinct[] lists the tokens with count > 0 (slot[] says
     * where), so applying penalties touches each of them once. */
    bool penalties;
    float *work; /* n_vocab: the logits after penalties */
    int32_t *ring;
    int32_t ring_len, ring_head;
    int32_t *count;
    int32_t *distinct;
    int32_t *slot;
    int32_t n_distinct;
};

sampler_params sampler_default_params(void) {
    sampler_params p = {
        .temperature = 0.8f,
        .top_k = 40,
        .top_p = 0.95f,
        .min_p = 0.05f,
        .repeat_penalty = 1.0f,
        .presence_penalty = 0.0f,
        .frequency_penalty = 0.0f,
        .penalty_last_n = 64,
        .seed = 0xFFFFFFFFu,
    };
    return p;
}

static int check_params(const sampler_params *p, int32_t n_vocab, rl_err *err) {
    if (n_vocab <= 0) return rl_fail(err, RL_ERR_INPUT, "sampler: vocabulary size %d", (int)n_vocab);
    if (!isfinite(p->temperature)) return rl_fail(err, RL_ERR_INPUT, "sampler: temperature is not a number");
    if (isnan(p->top_p)) return rl_fail(err, RL_ERR_INPUT, "sampler: top_p is not a number");
    if (isnan(p->min_p)) return rl_fail(err, RL_ERR_INPUT, "sampler: min_p is not a number");
    if (!isfinite(p->repeat_penalty) || p->repeat_penalty <= 0.0f)
        return rl_fail(err, RL_ERR_INPUT, "sampler: repeat penalty %g must be a positive number",
                       (double)p->repeat_penalty);
    if (!isfinite(p->presence_penalty)) return rl_fail(err, RL_ERR_INPUT, "sampler: presence penalty is not finite");
    if (!isfinite(p->frequency_penalty)) return rl_fail(err, RL_ERR_INPUT, "sampler: frequency penalty is not finite");
    if (p->penalty_last_n < 0 || p->penalty_last_n > SAMPLER_MAX_LAST_N)
        return rl_fail(err, RL_ERR_INPUT, "sampler: penalty window %d must be 0..%d", (int)p->penalty_last_n,
                       SAMPLER_MAX_LAST_N);
    return 0;
}

static bool penalties_on(const sampler_params *p) {
    return p->penalty_last_n > 0 &&
           (p->repeat_penalty != 1.0f || p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f);
}

sampler *sampler_new(const sampler_params *p, int32_t n_vocab, rl_err *err) {
    if (check_params(p, n_vocab, err)) return NULL;
    sampler *s = rl_calloc(1, sizeof *s, err);
    if (!s) return NULL;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->penalties = penalties_on(p);
    s->cand = rl_calloc((size_t)n_vocab, sizeof *s->cand, err);
    if (!s->cand) goto fail;
    if (s->penalties) {
        size_t n = (size_t)n_vocab, w = (size_t)p->penalty_last_n;
        if (!(s->work = rl_calloc(n, sizeof *s->work, err)) || !(s->count = rl_calloc(n, sizeof *s->count, err)) ||
            !(s->slot = rl_calloc(n, sizeof *s->slot, err)) || !(s->ring = rl_calloc(w, sizeof *s->ring, err)) ||
            !(s->distinct = rl_calloc(w, sizeof *s->distinct, err)))
            goto fail;
    }
    sampler_reset(s);
    return s;
fail:
    sampler_free(s);
    return NULL;
}

void sampler_free(sampler *s) {
    if (!s) return;
    free(s->cand);
    free(s->work);
    free(s->ring);
    free(s->count);
    free(s->distinct);
    free(s->slot);
    free(s);
}

void sampler_reset(sampler *s) {
    rl_rng_seed(&s->rng, s->p.seed);
    if (s->penalties) {
        for (int32_t i = 0; i < s->n_distinct; i++) s->count[s->distinct[i]] = 0;
        s->n_distinct = 0;
        s->ring_len = 0;
        s->ring_head = 0;
    }
}

const sampler_params *sampler_get_params(const sampler *s) { return &s->p; }

/* ---- penalties ---- */

static void history_add(sampler *s, int32_t t) {
    if (s->count[t]++ == 0) {
        s->slot[t] = s->n_distinct;
        s->distinct[s->n_distinct++] = t;
    }
}

static void history_remove(sampler *s, int32_t t) {
    if (--s->count[t] == 0) {
        int32_t i = s->slot[t], last = s->distinct[--s->n_distinct];
        s->distinct[i] = last;
        s->slot[last] = i;
    }
}

void sampler_accept(sampler *s, int32_t token) {
    if (!s->penalties || token < 0 || token >= s->n_vocab) return;
    int32_t cap = s->p.penalty_last_n;
    if (s->ring_len == cap) { /* full: the oldest token leaves the window */
        history_remove(s, s->ring[s->ring_head]);
        s->ring[s->ring_head] = token;
        s->ring_head = (s->ring_head + 1) % cap;
    } else {
        s->ring[s->ring_len++] = token;
    }
    history_add(s, token);
}

/* The logits the rest of the chain sees: the caller's, or a copy with the
 * penalties applied to the tokens of the window. */
static const float *penalised(sampler *s, const float *logits) {
    if (!s->penalties || s->n_distinct == 0) return logits;
    memcpy(s->work, logits, (size_t)s->n_vocab * sizeof *logits);
    const sampler_params *p = &s->p;
    for (int32_t i = 0; i < s->n_distinct; i++) {
        int32_t t = s->distinct[i], c = s->count[t];
        float l = s->work[t];
        /* Dividing a negative logit would raise it: multiply instead. */
        l = l <= 0.0f ? l * p->repeat_penalty : l / p->repeat_penalty;
        l -= (float)c * p->frequency_penalty + p->presence_penalty;
        s->work[t] = l;
    }
    return s->work;
}

/* ---- filters ---- */

/* The k best logits, sorted best-first, into c[0..k). */
static int32_t select_top_k(const float *l, int32_t n, int32_t k, cand *c) {
    for (int32_t i = 0; i < k; i++) {
        c[i] = (cand){clean(l[i]), i};
        sift_up(c, i);
    }
    float root = c[0].logit;
    for (int32_t i = k; i < n; i++) {
        /* Ids come in increasing order, so an equal logit never beats the
         * root; neither does NaN. */
        if (l[i] > root) {
            c[0] = (cand){l[i], i};
            sift_down(c, k, 0);
            root = c[0].logit;
        }
    }
    heap_sort_best_first(c, k);
    return k;
}

/* top-p on candidates sorted best-first: the shortest prefix whose softmax
 * mass (over these candidates, temperature 1) reaches p; at least 1. */
static int32_t cut_top_p(const cand *c, int32_t n, float p) {
    float m = c[0].logit;
    double z = 0.0;
    for (int32_t i = 0; i < n; i++) z += expf(c[i].logit - m);
    double target = (double)p * z, cum = 0.0;
    for (int32_t i = 0; i < n; i++) {
        cum += expf(c[i].logit - m);
        if (cum >= target) return i + 1;
    }
    return n;
}

/* min-p on candidates sorted best-first: those within log(p) of the best. */
static int32_t cut_min_p(const cand *c, int32_t n, float p) {
    float floor_logit = c[0].logit + logf(p);
    int32_t i = 1;
    while (i < n && c[i].logit >= floor_logit) i++;
    return i;
}

/* Bands of distance from the max logit for the top-p pre-pass: 0.25 nats
 * wide over 32 nats (exp(-32) ~ 1e-14), the rest in the last band. */
enum { TOP_P_BANDS = 128 };
#define TOP_P_SPAN 32.0f

static inline int band_of(float m, float v) {
    float d = m - v; /* >= 0; +inf for -inf logits */
    return d < TOP_P_SPAN ? (int)(d * (TOP_P_BANDS / TOP_P_SPAN)) : TOP_P_BANDS - 1;
}

static inline void swap_cand(cand *a, cand *b) {
    cand t = *a;
    *a = *b;
    *b = t;
}

/* Partitions c[lo..hi) (hi - lo >= 3) around the median of its first,
 * middle and last elements; returns the pivot's index s: c[lo..s) are
 * better, c(s..hi) worse. The order is total (ids differ), so both sides
 * are non-empty and every step makes progress. */
static int32_t partition(cand *c, int32_t lo, int32_t hi) {
    int32_t mid = lo + (hi - lo) / 2, last = hi - 1;
    if (better(c[mid], c[lo])) swap_cand(&c[mid], &c[lo]);
    if (better(c[last], c[lo])) swap_cand(&c[last], &c[lo]);
    if (better(c[last], c[mid])) swap_cand(&c[last], &c[mid]);
    swap_cand(&c[mid], &c[last]); /* the median is the pivot, at the end */
    cand pivot = c[last];
    int32_t s = lo;
    for (int32_t i = lo; i < last; i++)
        if (better(c[i], pivot)) swap_cand(&c[i], &c[s++]);
    swap_cand(&c[s], &c[last]);
    return s;
}

/* Reorders c[0..k) so that the nucleus comes first and returns its size:
 * the fewest best tokens whose weight exp(logit - m) sums to `target`
 * (all k if rounding keeps the sum short). A quickselect that sums weights
 * instead of counting: expected O(k), where sorting a flat distribution's
 * nucleus of tens of thousands would cost far more. The nucleus is left in
 * no particular order; the draw does not need one. */
static int32_t select_by_mass(cand *c, int32_t k, float m, double target) {
    int32_t lo = 0, hi = k; /* c[0..lo) is in the nucleus, c[hi..k) is out */
    double acc = 0.0;
    while (hi - lo > 16) {
        int32_t s = partition(c, lo, hi);
        double upper = 0.0;
        for (int32_t i = lo; i <= s; i++) upper += expf(c[i].logit - m);
        if (acc + upper >= target) {
            hi = s + 1;
        } else {
            acc += upper;
            lo = s + 1;
        }
    }
    sort_best_first(c + lo, hi - lo);
    for (int32_t i = lo; i < hi; i++) {
        acc += expf(c[i].logit - m);
        if (acc >= target) return i + 1;
    }
    return hi;
}

/* top-p over the whole vocabulary (no top-k before it), together with the
 * min-p floor. A first pass sums the probability mass per band of distance
 * from the max; the bands from the top until the mass reaches p hold the
 * whole nucleus (every token in them is at least as likely as any token
 * outside). A second pass copies just those tokens, and only those at or
 * above the min-p floor (min-p after top-p keeps the intersection, and
 * the nucleus is a prefix of the same order). For a peaked distribution
 * that is a few dozen tokens; for a flat one, select_by_mass keeps it
 * linear. */
static int32_t collect_top_p(const float *l, int32_t n, float m, float p, float floor_logit, cand *c) {
    /* Four interleaved histograms: neighbours often share a band, and one
     * histogram would make each addition wait for the last. */
    double part[4][TOP_P_BANDS] = {{0}}, mass[TOP_P_BANDS];
    for (int32_t i = 0; i < n; i++) {
        float v = clean(l[i]);
        part[i & 3][band_of(m, v)] += expf(v - m);
    }
    double z = 0.0;
    for (int b = 0; b < TOP_P_BANDS; b++) {
        mass[b] = part[0][b] + part[1][b] + part[2][b] + part[3][b];
        z += mass[b];
    }
    double target = (double)p * z, cum = 0.0;
    int last_band = TOP_P_BANDS - 1;
    for (int b = 0; b < TOP_P_BANDS; b++) {
        cum += mass[b];
        if (cum >= target) {
            last_band = b;
            break;
        }
    }

    int32_t k = 0;
    for (int32_t i = 0; i < n; i++) {
        float v = clean(l[i]);
        if (v >= floor_logit && band_of(m, v) <= last_band) c[k++] = (cand){v, i};
    }
    return select_by_mass(c, k, m, target);
}

/* Every token at or above a floor (-inf: all but NaN), in id order; at
 * least one, as the floor is never above the max. */
static int32_t collect_above(const float *l, int32_t n, float floor_logit, cand *c) {
    int32_t k = 0;
    for (int32_t i = 0; i < n; i++)
        if (l[i] >= floor_logit) c[k++] = (cand){l[i], i}; /* never NaN */
    return k;
}

/* Runs top-k, top-p and min-p; leaves the survivors in s->cand (at least
 * one) and returns how many. With no max logit to measure from (all -inf,
 * or a +inf), the distribution collapses to the argmax. */
static int32_t filter(sampler *s, const float *l) {
    const sampler_params *p = &s->p;
    int32_t n = s->n_vocab;
    cand *c = s->cand;
    bool use_p = p->top_p < 1.0f, use_min = p->min_p > 0.0f;

    if (p->top_k > 0 && p->top_k < n) {
        int32_t k = select_top_k(l, n, p->top_k, c);
        if (!isfinite(c[0].logit)) return 1;
        if (use_p) k = cut_top_p(c, k, p->top_p);
        if (use_min) k = cut_min_p(c, k, p->min_p);
        return k;
    }

    int32_t best = sampler_argmax(l, n);
    float m = clean(l[best]);
    if (!isfinite(m)) { /* all -inf or NaN, or a +inf */
        c[0] = (cand){m, best};
        return 1;
    }
    /* min-p never removes the best token, even with min_p > 1. */
    float floor_logit = use_min ? fminf(m + logf(p->min_p), m) : -INFINITY;
    if (use_p) return collect_top_p(l, n, m, p->top_p, floor_logit, c);
    return collect_above(l, n, floor_logit, c);
}

static float max_logit(const cand *c, int32_t n) {
    float m = c[0].logit;
    for (int32_t i = 1; i < n; i++) m = TAKE_MAX(m, c[i].logit);
    return m;
}

/* Softmax weight of a candidate at temperature t, relative to the max. */
static inline float weight(float logit, float m, float t) { return expf((logit - m) / t); }

/* Draws one candidate in proportion to its weight. The candidates are
 * scratch by now: each logit is overwritten with its weight, so the walk
 * does not compute every exp a second time. */
static int32_t draw(rl_rng *r, cand *c, int32_t n, float t) {
    float m = max_logit(c, n);
    double z = 0.0;
    for (int32_t i = 0; i < n; i++) {
        c[i].logit = weight(c[i].logit, m, t);
        z += c[i].logit;
    }
    double target = rl_rng_uniform(r) * z, acc = 0.0;
    int32_t last_nonzero = 0;
    for (int32_t i = 0; i < n; i++) {
        if (c[i].logit <= 0.0f) continue;
        acc += c[i].logit;
        last_nonzero = i;
        if (acc > target) return c[i].id;
    }
    return c[last_nonzero].id; /* target rounded up to z */
}

int32_t sampler_sample(sampler *s, const float *logits) {
    const float *l = penalised(s, logits);
    if (s->p.temperature <= 0.0f) return sampler_argmax(l, s->n_vocab);
    int32_t k = filter(s, l);
    if (k == 1) {
        /* Keep the random stream in step whatever survived. */
        (void)rl_rng_next(&s->rng);
        return s->cand[0].id;
    }
    return draw(&s->rng, s->cand, k, s->p.temperature);
}

int32_t sampler_distribution(sampler *s, const float *logits, int32_t *ids, float *probs) {
    const float *l = penalised(s, logits);
    if (s->p.temperature <= 0.0f) {
        ids[0] = sampler_argmax(l, s->n_vocab);
        probs[0] = 1.0f;
        return 1;
    }
    int32_t k = filter(s, l);
    const cand *c = s->cand;
    float m = max_logit(c, k), t = s->p.temperature;
    double z = 0.0;
    for (int32_t i = 0; i < k; i++) z += weight(c[i].logit, m, t);
    for (int32_t i = 0; i < k; i++) {
        ids[i] = c[i].id;
        probs[i] = k == 1 ? 1.0f : (float)(weight(c[i].logit, m, t) / z);
    }
    return k;
}

/* ---- log-probabilities of the model's distribution ---- */

void sampler_logprobs(const float *logits, int32_t n_vocab, int32_t token, int n_top, sampler_logprob *out) {
    if (n_top < 0) n_top = 0;
    if (n_top > SAMPLER_MAX_TOP_LOGPROBS) n_top = SAMPLER_MAX_TOP_LOGPROBS;
    float m = max_of(logits, n_vocab);
    /* the top n_top by the file's order (a sorted insertion: n_top <= 20,
     * and a logit below the current last costs one comparison) */
    cand top[SAMPLER_MAX_TOP_LOGPROBS];
    int k = 0;
    double z = 0.0;
    for (int32_t i = 0; i < n_vocab; i++) {
        float v = clean(logits[i]);
        if (v > -INFINITY) z += expf(v - m);
        if (n_top == 0) continue;
        cand c = {v, i};
        if (k == n_top && !better(c, top[k - 1])) continue;
        int j = k < n_top ? k++ : k - 1;
        while (j > 0 && better(c, top[j - 1])) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = c;
    }
    /* all -inf (or NaN): every token equally (im)probable, log 1/n */
    bool flat = !(m > -INFINITY);
    double log_z = flat ? log((double)n_vocab) : m + log(z);
    out->token = token >= 0 && token < n_vocab ? token : 0;
    out->logprob = flat ? (float)-log_z : (float)(clean(logits[out->token]) - log_z);
    out->n_top = k;
    for (int i = 0; i < k; i++) {
        out->top_ids[i] = top[i].id;
        out->top_logprobs[i] = flat ? (float)-log_z : (float)(top[i].logit - log_z);
    }
}

/* ---- stop strings ---- */

struct stop_matcher {
    int n;
    char **stops;
    size_t *lens;
    size_t max_len;
    char *held; /* a tail that is a proper prefix of some stop string */
    size_t n_held;
    bool stopped;
};

stop_matcher *stop_new(const char *const *stops, int n_stops, rl_err *err) {
    if (n_stops < 0 || n_stops > STOP_MAX_STRINGS || (n_stops > 0 && !stops)) {
        rl_fail(err, RL_ERR_INPUT, "stop strings: %d given, at most %d allowed", n_stops, STOP_MAX_STRINGS);
        return NULL;
    }
    stop_matcher *m = rl_calloc(1, sizeof *m, err);
    if (!m) return NULL;
    if (n_stops > 0) {
        m->stops = rl_calloc((size_t)n_stops, sizeof *m->stops, err);
        m->lens = rl_calloc((size_t)n_stops, sizeof *m->lens, err);
        if (!m->stops || !m->lens) goto fail;
    }
    for (int i = 0; i < n_stops; i++) {
        if (!stops[i]) continue;
        size_t len = strlen(stops[i]);
        if (len == 0) continue; /* an empty stop would end every generation at once */
        if (len > STOP_MAX_LEN) {
            rl_fail(err, RL_ERR_INPUT, "stop string %d: %zu bytes, at most %d allowed", i, len, STOP_MAX_LEN);
            goto fail;
        }
        if (!(m->stops[m->n] = rl_calloc(len + 1, 1, err))) goto fail;
        memcpy(m->stops[m->n], stops[i], len);
        m->lens[m->n++] = len;
        if (len > m->max_len) m->max_len = len;
    }
    if (m->max_len > 0 && !(m->held = rl_calloc(m->max_len, 1, err))) goto fail;
    return m;
fail:
    stop_free(m);
    return NULL;
}

void stop_free(stop_matcher *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++) free(m->stops[i]);
    free(m->stops);
    free(m->lens);
    free(m->held);
    free(m);
}

void stop_reset(stop_matcher *m) {
    m->n_held = 0;
    m->stopped = false;
}

size_t stop_max_len(const stop_matcher *m) { return m->max_len; }

/* Length of the longest stop string that ends exactly at text[end], 0 if none. */
static size_t stop_ending_at(const stop_matcher *m, const char *text, size_t end) {
    size_t best = 0;
    for (int j = 0; j < m->n; j++) {
        size_t len = m->lens[j];
        if (len <= end && len > best && memcmp(text + end - len, m->stops[j], len) == 0) best = len;
    }
    return best;
}

/* Length of the longest suffix of text[0..n) that is a proper prefix of a
 * stop string: the part that must wait for more text. */
static size_t pending_tail(const stop_matcher *m, const char *text, size_t n) {
    size_t most = m->max_len > 0 ? RL_MIN(n, m->max_len - 1) : 0;
    for (size_t k = most; k > 0; k--) {
        for (int j = 0; j < m->n; j++)
            if (m->lens[j] > k && memcmp(text + n - k, m->stops[j], k) == 0) return k;
    }
    return 0;
}

size_t stop_push(stop_matcher *m, const char *text, size_t len, char *out, bool *stopped) {
    *stopped = m->stopped;
    if (m->stopped) return 0;
    /* Work on held tail + new text, laid out in `out`. */
    if (m->n_held) memcpy(out, m->held, m->n_held);
    if (len) memcpy(out + m->n_held, text, len);
    size_t total = m->n_held + len;

    /* Stops ending inside the held tail were ruled out by the last push. */
    for (size_t end = m->n_held + 1; end <= total; end++) {
        size_t match = stop_ending_at(m, out, end);
        if (match) {
            m->stopped = true;
            m->n_held = 0;
            *stopped = true;
            return end - match;
        }
    }
    size_t keep = pending_tail(m, out, total);
    if (keep) memcpy(m->held, out + total - keep, keep);
    m->n_held = keep;
    return total - keep;
}

size_t stop_flush(stop_matcher *m, char *out) {
    size_t n = m->n_held;
    if (n) memcpy(out, m->held, n);
    m->n_held = 0;
    return n;
}
