/*
 * engine.c — sequences, their KV caches, and the step that batches them
 * (see engine.h for the contract). engine_step is where a batch is built:
 * one token from every decoding sequence, then chunks of waiting prompts,
 * oldest first, up to the step's budget; after forward_run it samples for
 * every sequence whose logits arrived, and a prompt that has just gone in
 * is copied to the prefix cache.
 */
#include "engine.h"

#include <stdlib.h>
#include <string.h>

#include "forward.h"

/* A prompt that computed at least this many tokens itself is copied to the
 * prefix cache as soon as it has gone in (snapshot_prompt). */
#define SNAPSHOT_MIN 64

struct engine_seq {
    engine *e;
    int slot;
    void *user;
    fw_kv kv;
    int32_t *input; /* pending tokens; room for n_ctx */
    int n_input;
    int pos;        /* tokens already in the cache ... */
    int32_t *hist;  /* ... and which (n_ctx room), for the prefix cache */
    int n_cached;   /* of the prompt, copied from the prefix cache */
    bool lookup;    /* that copy is still to come: at its first prefill chunk */
    sampler *smp;   /* NULL: manual */
    int32_t out;
    bool has_out;
    float *logits;
    bool logits_ready;
    engine_seq_state state;
    uint64_t arrival;
};

struct engine {
    const model *m;
    engine_params p;
    kernels *k;
    forward *fw;
    engine_seq **slots;
    int n_active;
    uint64_t arrivals;
    /* the batch being assembled, max_batch entries */
    int32_t *tok, *pos;
    fw_kv **kv;
    int *out_rows;
    float **out_logits;
    engine_seq **out_seq;
    engine_seq **seg_seq; /* the batch's sequences, in order ... */
    int *seg_len;         /* ... and how many of its tokens each has */
    int n_seg;
    int prefill_budget;   /* prompt tokens per step, at most max_batch */
    prefix_cache *cache;  /* NULL: none */
    engine_stats stats;
};

engine_params engine_default_params(void) {
    engine_params p = {0};
    p.max_seqs = 1;
    p.max_batch = 512;
    p.kern_level = -1;
    return p;
}

engine *engine_open(const model *m, const engine_params *params, rl_err *err) {
    engine *e = rl_calloc(1, sizeof *e, err);
    if (!e) return NULL;
    e->m = m;
    e->p = params ? *params : engine_default_params();
    engine_params *p = &e->p;
    if (p->max_seqs < 1) p->max_seqs = 1;
    if (p->max_batch < 1) p->max_batch = 512;
    if (p->max_batch < p->max_seqs) p->max_batch = p->max_seqs; /* every decoder fits a step */
    if (p->n_ctx <= 0) p->n_ctx = (int)RL_MIN(m->shape.n_ctx_train, 4096u);
    if (p->n_ctx < 1) p->n_ctx = 1;
    e->prefill_budget = p->max_batch;
    const rl_shape *s = &m->shape;
    kern_params kp = {.n_threads = p->n_threads, .cpus = p->cpus, .max_rows = p->max_batch,
                      .max_cols = RL_MAX((int64_t)s->n_ff, (int64_t)s->n_head * s->head_dim), .level = p->kern_level};
    if (kp.max_cols < (int64_t)s->n_embd) kp.max_cols = s->n_embd;
    e->k = kern_new(&kp, err);
    if (!e->k) goto fail;
    e->fw = forward_new(m, e->k, p->max_batch, p->max_seqs, p->n_ctx, !p->kv_f32, err);
    if (!e->fw) goto fail;
    size_t B = (size_t)p->max_batch, S = (size_t)p->max_seqs;
    e->slots = rl_calloc(S, sizeof *e->slots, err);
    e->tok = rl_calloc(B, sizeof *e->tok, err);
    e->pos = rl_calloc(B, sizeof *e->pos, err);
    e->kv = rl_calloc(B, sizeof *e->kv, err);
    e->out_rows = rl_calloc(S, sizeof *e->out_rows, err);
    e->out_logits = rl_calloc(S, sizeof *e->out_logits, err);
    e->out_seq = rl_calloc(S, sizeof *e->out_seq, err);
    e->seg_seq = rl_calloc(S, sizeof *e->seg_seq, err);
    e->seg_len = rl_calloc(S, sizeof *e->seg_len, err);
    if (!e->slots || !e->tok || !e->pos || !e->kv || !e->out_rows || !e->out_logits || !e->out_seq || !e->seg_seq ||
        !e->seg_len)
        goto fail;
    return e;
fail:
    engine_close(e);
    return NULL;
}

static void seq_free(engine_seq *s) {
    if (!s) return;
    free(s->kv.data);
    free(s->input);
    free(s->hist);
    free(s->logits);
    sampler_free(s->smp);
    free(s);
}

void engine_close(engine *e) {
    if (!e) return;
    for (int i = 0; e->slots && i < e->p.max_seqs; i++) seq_free(e->slots[i]);
    forward_free(e->fw);
    kern_free(e->k);
    free(e->slots);
    free(e->tok);
    free(e->pos);
    free(e->kv);
    free(e->out_rows);
    free(e->out_logits);
    free(e->out_seq);
    free(e->seg_seq);
    free(e->seg_len);
    free(e);
}

const model *engine_model(const engine *e) { return e->m; }
int engine_n_ctx(const engine *e) { return e->p.n_ctx; }
int engine_active(const engine *e) { return e->n_active; }
int engine_capacity(const engine *e) { return e->p.max_seqs; }
kernels *engine_kernels(engine *e) { return e->k; }
engine_stats engine_get_stats(const engine *e) { return e->stats; }

int engine_attention_cost(engine *e, double *seconds_per_token, rl_err *err) {
    return forward_attention_cost(e->fw, seconds_per_token, err);
}

uint64_t engine_seq_bytes(const engine *e, int n_ctx) {
    if (n_ctx <= 0 || n_ctx > e->p.n_ctx) n_ctx = e->p.n_ctx;
    uint64_t n_vocab = e->m->shape.n_vocab;
    /* KV cache; input and history; logits; the sampler's candidates and,
     * with penalties, its counts by token and its window of the context */
    return forward_kv_bytes(e->m, n_ctx, !e->p.kv_f32) + 8 * (uint64_t)n_ctx + 4 * n_vocab + 8 * n_vocab +
           12 * n_vocab + 8 * (uint64_t)n_ctx + sizeof(engine_seq);
}

void engine_set_prefix_cache(engine *e, prefix_cache *pc) { e->cache = pc; }

/* Starts s, about to prefill its prompt, from the prefix cache's longest
 * match for it (leaving at least the last token to run). Done at its first
 * chunk, not when it is added, so that a prompt waiting behind another
 * that begins the same way starts from that one's copy (snapshot_prompt). */
static void start_from_cache(engine *e, engine_seq *s) {
    s->lookup = false;
    int len = 0, src_ctx = 0;
    prefix_entry *en = prefix_cache_match(e->cache, s->input, s->n_input, s->n_input - 1, &len);
    if (!en) return;
    fw_kv src = {.data = (void *)prefix_entry_kv(en, &src_ctx)};
    src.n_ctx = src_ctx;
    forward_kv_copy(e->m, !e->p.kv_f32, &s->kv, &src, len);
    prefix_cache_release(e->cache, en);
    memcpy(s->hist, s->input, (size_t)len * sizeof *s->input);
    memmove(s->input, s->input + len, (size_t)(s->n_input - len) * sizeof *s->input);
    s->n_input -= len;
    s->pos = s->n_cached = len;
}

engine_seq *engine_seq_add(engine *e, const int32_t *prompt, int n, const sampler_params *sp, rl_err *err) {
    return engine_seq_add_ctx(e, prompt, n, sp, 0, err);
}

engine_seq *engine_seq_add_ctx(engine *e, const int32_t *prompt, int n, const sampler_params *sp, int n_ctx,
                               rl_err *err) {
    if (n_ctx <= 0 || n_ctx > e->p.n_ctx) n_ctx = e->p.n_ctx;
    if (n < 1) {
        rl_fail(err, RL_ERR_INPUT, "the prompt is empty");
        return NULL;
    }
    if (n > n_ctx) {
        rl_fail(err, RL_ERR_INPUT, "the prompt has %d tokens, more than the context of %d", n, n_ctx);
        return NULL;
    }
    int slot = -1;
    for (int i = 0; i < e->p.max_seqs && slot < 0; i++)
        if (!e->slots[i]) slot = i;
    if (slot < 0) {
        rl_fail(err, RL_ERR_INTERNAL, "all %d sequence slots are in use", e->p.max_seqs);
        return NULL;
    }
    engine_seq *s = rl_calloc(1, sizeof *s, err);
    if (!s) return NULL;
    s->e = e;
    s->slot = slot;
    s->kv.n_ctx = n_ctx;
    uint64_t kv_bytes = forward_kv_bytes(e->m, n_ctx, !e->p.kv_f32);
    s->kv.data = malloc(kv_bytes); /* untouched pages cost nothing until used */
    s->input = malloc((size_t)n_ctx * sizeof *s->input);
    s->hist = malloc((size_t)n_ctx * sizeof *s->hist);
    s->logits = malloc((size_t)e->m->shape.n_vocab * sizeof *s->logits);
    if (!s->kv.data || !s->input || !s->hist || !s->logits) {
        rl_fail(err, RL_ERR_INTERNAL, "out of memory for a sequence (%llu bytes of KV cache)",
                (unsigned long long)kv_bytes);
        seq_free(s);
        return NULL;
    }
    if (sp) {
        s->smp = sampler_new(sp, (int32_t)e->m->shape.n_vocab, err);
        if (!s->smp) {
            seq_free(s);
            return NULL;
        }
        for (int i = 0; i < n; i++) sampler_accept(s->smp, prompt[i]);
    }
    memcpy(s->input, prompt, (size_t)n * sizeof *prompt);
    s->n_input = n;
    s->lookup = e->cache && n > 1;
    s->state = s->n_input > 1 ? SEQ_PREFILL : SEQ_DECODE;
    s->arrival = e->arrivals++;
    e->slots[slot] = s;
    e->n_active++;
    return s;
}

int engine_seq_feed(engine_seq *s, const int32_t *tokens, int n, rl_err *err) {
    if (n < 1) return 0;
    if (s->state == SEQ_FULL || s->pos + s->n_input + n > s->kv.n_ctx)
        return rl_fail(err, RL_ERR_INPUT, "%d more tokens do not fit the context of %d (%d used)", n, s->kv.n_ctx,
                       s->pos + s->n_input);
    memcpy(s->input + s->n_input, tokens, (size_t)n * sizeof *tokens);
    s->n_input += n;
    if (s->smp)
        for (int i = 0; i < n; i++) sampler_accept(s->smp, tokens[i]);
    s->state = s->n_input > 1 ? SEQ_PREFILL : SEQ_DECODE;
    s->logits_ready = false;
    return 0;
}

void engine_seq_remove(engine *e, engine_seq *s) {
    if (!s) return;
    e->slots[s->slot] = NULL;
    e->n_active--;
    if (e->cache && s->pos > 0) { /* the cache owns its KV now */
        prefix_cache_put(e->cache, s->hist, s->pos, s->kv.data, s->kv.n_ctx, forward_kv_resident(e->m, s->pos, !e->p.kv_f32));
        s->kv.data = NULL;
    }
    seq_free(s);
}

bool engine_seq_take(engine_seq *s, int32_t *token) {
    if (!s->has_out) return false;
    *token = s->out;
    s->has_out = false;
    return true;
}

const float *engine_seq_logits(const engine_seq *s) { return s->logits_ready ? s->logits : NULL; }
engine_seq_state engine_seq_get_state(const engine_seq *s) { return s->state; }
int engine_seq_pos(const engine_seq *s) { return s->pos; }
int engine_seq_cached(const engine_seq *s) { return s->n_cached; }
void engine_seq_set_user(engine_seq *s, void *user) { s->user = user; }
void *engine_seq_user(const engine_seq *s) { return s->user; }

/* Puts `take` of the sequence's pending tokens into the batch. */
static int add_to_batch(engine *e, engine_seq *s, int n, int take, int *n_out) {
    for (int i = 0; i < take; i++) {
        e->tok[n + i] = s->input[i];
        e->pos[n + i] = s->pos + i;
        e->kv[n + i] = &s->kv;
    }
    e->seg_seq[e->n_seg] = s;
    e->seg_len[e->n_seg] = take;
    e->n_seg++;
    if (take == s->n_input) { /* its last input: logits wanted */
        e->out_rows[*n_out] = n + take - 1;
        e->out_logits[*n_out] = s->logits;
        e->out_seq[*n_out] = s;
        (*n_out)++;
    }
    return n + take;
}

/* The earliest-arrived sequence with more than one pending token that is
 * not yet in this batch. */
static engine_seq *next_prefill(engine *e, uint64_t after, bool first) {
    engine_seq *best = NULL;
    for (int i = 0; i < e->p.max_seqs; i++) {
        engine_seq *s = e->slots[i];
        if (!s || s->n_input <= 1 || (!first && s->arrival <= after)) continue;
        if (!best || s->arrival < best->arrival) best = s;
    }
    return best;
}

/* After the pass: the tokens s put in the batch leave its input (they are
 * in its cache now). Sampling, where logits arrived, is engine_step's. */
static void finish_seq(engine_seq *s, int took) {
    memcpy(s->hist + s->pos, s->input, (size_t)took * sizeof *s->input);
    memmove(s->input, s->input + took, (size_t)(s->n_input - took) * sizeof *s->input);
    s->n_input -= took;
    s->pos += took;
}

void engine_set_prefill_budget(engine *e, int tokens) {
    e->prefill_budget = tokens < 0 || tokens > e->p.max_batch ? e->p.max_batch : tokens;
}

/* s's prompt has just gone in: a copy of its KV goes to the prefix cache
 * now, not only when s ends, so that prompts arriving while s runs (users
 * behind one long system prompt) start from it. The copy is dropped from
 * the cache once s's own state, a longer sequence, arrives at its end. */
static void snapshot_prompt(engine *e, engine_seq *s) {
    if (!e->cache || s->pos - s->n_cached < SNAPSHOT_MIN) return;
    bool f16 = !e->p.kv_f32;
    uint64_t bytes = forward_kv_bytes(e->m, s->pos, f16);
    fw_kv copy = {.n_ctx = s->pos, .data = malloc(bytes)};
    if (!copy.data) return; /* a cache is an optimisation: none this time */
    forward_kv_copy(e->m, f16, &copy, &s->kv, s->pos);
    prefix_cache_put(e->cache, s->hist, s->pos, copy.data, s->pos, bytes);
}

int engine_step(engine *e, rl_err *err) {
    int n = 0, n_out = 0;
    e->n_seg = 0;
    /* decoders first: one token each */
    for (int i = 0; i < e->p.max_seqs; i++) {
        engine_seq *s = e->slots[i];
        if (s && s->n_input == 1) n = add_to_batch(e, s, n, 1, &n_out);
    }
    int n_decode = n;
    int budget = RL_MIN(e->p.max_batch, n_decode + e->prefill_budget);
    /* then prompt chunks, oldest first */
    uint64_t last = 0;
    bool first = true;
    engine_seq *s;
    while (n < budget && (s = next_prefill(e, last, first)) != NULL) {
        if (s->lookup) start_from_cache(e, s);
        int take = RL_MIN(s->n_input, budget - n);
        n = add_to_batch(e, s, n, take, &n_out);
        last = s->arrival;
        first = false;
    }
    if (n == 0) return 0;

    fw_batch b = {n, e->tok, e->pos, e->kv, n_out, e->out_rows, e->out_logits};
    double t0 = rl_now();
    if (forward_run(e->fw, &b, err)) return -1;
    double dt = rl_now() - t0;

    for (int i = 0; i < e->n_seg; i++) finish_seq(e->seg_seq[i], e->seg_len[i]);
    for (int i = 0; i < n_out; i++) {
        engine_seq *q = e->out_seq[i];
        q->logits_ready = true;
        if (q->state == SEQ_PREFILL) snapshot_prompt(e, q);
        if (!q->smp) {
            q->state = SEQ_IDLE;
            continue;
        }
        int32_t tok = sampler_sample(q->smp, q->logits);
        sampler_accept(q->smp, tok);
        q->out = tok;
        q->has_out = true;
        if (q->pos < q->kv.n_ctx) {
            q->input[0] = tok;
            q->n_input = 1;
            q->state = SEQ_DECODE;
        } else {
            q->state = SEQ_FULL;
        }
    }
    for (int i = 0; i < e->p.max_seqs; i++) {
        engine_seq *q = e->slots[i];
        if (q && q->n_input > 1) q->state = SEQ_PREFILL;
    }
    e->stats.steps++;
    e->stats.decode_tokens += (uint64_t)n_decode;
    e->stats.prompt_tokens += (uint64_t)(n - n_decode);
    e->stats.decode_seconds += dt * n_decode / n;
    e->stats.prompt_seconds += dt * (n - n_decode) / n;
    return n;
}
