/*
 * distill.c — the distillation job (see distill.h): set-up (teacher,
 * corpus, student shape, teacher cache, checkpoint), the training loop, the
 * student written at the end.
 */
#include "distill.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/progress.h"
#include "base/rng.h"
#include "corpus.h"
#include "model/model.h"
#include "tcache.h"

distill_params distill_default_params(void) {
    distill_params p = {0};
    p.holdout = 0.05;
    p.train = tr_default_config();
    p.train.alpha = 0.5f;
    p.train.temperature = 2.0f;
    p.train.top_k = 32;
    p.steps = 1000;
    p.seed = 1;
    p.eval_every = 100;
    p.eval_seqs = 64;
    p.ckpt_every = 500;
    p.teacher_seqs = 32;
    return p;
}

/* ---- the student's shape ---- */

static int shape_field(rl_shape *s, const char *key, long v, bool *head_dim_set, rl_err *err) {
    if (v < 1 || v > (1l << 20)) return rl_fail(err, RL_ERR_INPUT, "student shape: %s=%ld is out of range", key, v);
    uint32_t *dst = strcmp(key, "dim") == 0 ? &s->n_embd : strcmp(key, "layers") == 0 ? &s->n_layer
                  : strcmp(key, "heads") == 0 ? &s->n_head : strcmp(key, "kv") == 0 ? &s->n_head_kv
                  : strcmp(key, "ff") == 0 ? &s->n_ff : strcmp(key, "head_dim") == 0 ? &s->head_dim : NULL;
    if (!dst)
        return rl_fail(err, RL_ERR_INPUT, "student shape: unknown field '%s' (dim, layers, heads, kv, ff, head_dim, "
                       "tied, untied)", key);
    *dst = (uint32_t)v;
    if (dst == &s->head_dim) *head_dim_set = true;
    return 0;
}

/* "dim=64,layers=2,heads=8,kv=4,ff=172[,head_dim=8][,tied|untied]" over the teacher's shape. */
static int explicit_shape(const char *spec, rl_shape *s, rl_err *err) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    bool head_dim_set = false, kv_set = false;
    s->tied_embeddings = true;
    for (char *save = NULL, *f = strtok_r(buf, ",", &save); f; f = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(f, '=');
        if (!eq) {
            if (strcmp(f, "tied") != 0 && strcmp(f, "untied") != 0)
                return rl_fail(err, RL_ERR_INPUT, "student shape: '%s' is not KEY=NUMBER, tied or untied", f);
            s->tied_embeddings = strcmp(f, "tied") == 0;
            continue;
        }
        *eq = 0;
        char *end;
        long v = strtol(eq + 1, &end, 10);
        if (*end || end == eq + 1) return rl_fail(err, RL_ERR_INPUT, "student shape: %s needs a whole number", f);
        if (shape_field(s, f, v, &head_dim_set, err)) return -1;
        kv_set |= strcmp(f, "kv") == 0;
    }
    if (!kv_set) s->n_head_kv = s->n_head;
    if (!head_dim_set) {
        if (s->n_embd % s->n_head)
            return rl_fail(err, RL_ERR_INPUT, "student shape: dim %u is not a multiple of heads %u (or give head_dim)",
                           s->n_embd, s->n_head);
        s->head_dim = s->n_embd / s->n_head;
    }
    return 0;
}

int distill_parse_shape(const char *spec, const rl_shape *teacher, rl_shape *out, rl_err *err) {
    *out = *teacher;
    snprintf(out->id, sizeof out->id, "student");
    if (strchr(spec, '=')) return explicit_shape(spec, out, err);
    rl_shape cat;
    if (shape_catalog_find(spec, &cat, err)) return -1;
    if (cat.n_vocab != teacher->n_vocab)
        return rl_fail(err, RL_ERR_INPUT, "student shape %s has a vocabulary of %u, the teacher's tokenizer %u: a "
                       "student keeps its teacher's tokenizer (give explicit dims instead)", spec, cat.n_vocab,
                       teacher->n_vocab);
    *out = cat;
    return 0;
}

int distill_parse_layers(const char *spec, int *layers, int max, rl_err *err) {
    int n = 0;
    for (const char *p = spec; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 65535 || (*end && *end != ',') || n == max)
            return rl_fail(err, RL_ERR_INPUT, "--init-from-teacher: '%s' is not a list of layer numbers like 0,2,4",
                           spec);
        layers[n++] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (n == 0) return rl_fail(err, RL_ERR_INPUT, "--init-from-teacher: no layers given");
    return n;
}

int distill_parse_shard(const char *spec, int *shard, int *n_shards, rl_err *err) {
    char *end;
    long i = strtol(spec, &end, 10), n = 0;
    if (end != spec && *end == '/') {
        const char *q = end + 1;
        n = strtol(q, &end, 10);
        if (end == q) n = 0;
    }
    if (*end || n < 1 || n > 65536 || i < 0 || i >= n)
        return rl_fail(err, RL_ERR_INPUT, "--teacher-shard: '%s' is not I/N with 0 <= I < N <= 65536 (e.g. 0/4)", spec);
    *shard = (int)i;
    *n_shards = (int)n;
    return 0;
}

/* ---- the run's state ---- */

typedef struct run {
    const distill_params *p;
    distill_result *r;
    model *teacher;
    corpus c;
    int T, B;
    int64_t n_train, n_eval;
    tr_layout L;
    trainer *t;
    tcache *cache;
    int32_t *batch;
    const uint32_t **soft;
    int64_t *perm, perm_epoch;
    char config[1024];
    char out_tmp[1100];
} run;

static void say(const run *R, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(const run *R, const char *fmt, ...) {
    if (!R->p->log) return;
    va_list ap;
    va_start(ap, fmt);
    fputs("distill: ", R->p->log);
    vfprintf(R->p->log, fmt, ap);
    fputc('\n', R->p->log);
    va_end(ap);
    fflush(R->p->log);
}

static const int32_t *seq_at(void *ctx, int64_t i) {
    run *R = ctx;
    return i < R->n_train ? corpus_seq(&R->c.train, R->T, i) : corpus_seq(&R->c.held, R->T, i - R->n_train);
}

/* ---- set-up ---- */

static int student_shape(run *R, rl_err *err);

static int load_inputs(run *R, rl_err *err) {
    const distill_params *p = R->p;
    if (p->out_path && strcmp(p->out_path, p->teacher_path) == 0)
        return rl_fail(err, RL_ERR_INPUT, "the student would overwrite its teacher %s", p->teacher_path);
    model_load_params mp = {.progress = p->progress};
    R->teacher = model_load(p->teacher_path, &mp, err);
    if (!R->teacher || student_shape(R, err)) return -1;
    corpus_params cp = {p->data_path, p->eval_path, p->eval_path ? 0 : p->holdout};
    if (corpus_load(&cp, R->teacher->tok, &R->c, err)) return -1;
    R->T = p->train.seq_len;
    R->B = p->train.n_seq;
    R->n_train = corpus_n_seqs(&R->c.train, R->T);
    if (R->n_train == 0)
        return rl_fail(err, RL_ERR_INPUT, "the training text is %lld tokens: not one sequence of %d + 1 (add text or "
                       "lower --seq-len)", (long long)R->c.train.n_tokens, R->T);
    R->n_eval = RL_MIN(corpus_n_seqs(&R->c.held, R->T), (int64_t)p->eval_seqs);
    if (R->c.held.n_docs > 0 && R->n_eval == 0)
        return rl_fail(err, RL_ERR_INPUT, "the held-out text is %lld tokens: not one sequence of %d + 1 (more "
                       "--holdout, an --eval file, or a lower --seq-len)", (long long)R->c.held.n_tokens, R->T);
    R->r->train_seqs = R->n_train;
    R->r->held_seqs = R->n_eval;
    R->r->teacher_params = R->teacher->n_params;
    say(R, "teacher %s: %llu parameters; text: %d file(s), %d + %d documents, %lld + %lld tokens; %lld training "
        "sequences of %d tokens, %lld held out", p->teacher_path, (unsigned long long)R->teacher->n_params,
        R->c.n_files, R->c.train.n_docs, R->c.held.n_docs, (long long)R->c.train.n_tokens,
        (long long)R->c.held.n_tokens, (long long)R->n_train, R->T, (long long)R->n_eval);
    return 0;
}

static void describe(run *R, const char *init) {
    const rl_shape *s = &R->L.s;
    const tr_config *c = &R->p->train;
    snprintf(R->config, sizeof R->config,
             "shape=%u:%u:%u:%u:%u:%u:%u:%s rope=%a:%a eps=%a n_seq=%d seq_len=%d lr=%a min_lr=%a warmup=%d "
             "steps=%d wd=%a beta1=%a beta2=%a adam_eps=%a clip=%a alpha=%a tau=%a k=%d seed=%llu data=%016llx "
             "eval=%lld init=%s", s->n_vocab, s->n_embd, s->n_layer, s->n_head, s->n_head_kv, s->head_dim, s->n_ff,
             s->tied_embeddings ? "tied" : "untied", s->rope_base, R->L.rope_freq_scale, s->rms_eps, c->n_seq,
             c->seq_len, c->lr, c->min_lr_frac, c->warmup, R->p->steps, c->weight_decay, c->beta1, c->beta2,
             c->adam_eps, c->clip, c->alpha, c->temperature, c->top_k, (unsigned long long)R->p->seed,
             (unsigned long long)corpus_hash(&R->c), (long long)R->n_eval, init);
}

/* The student's shape and layout, checked before any work is done. */
static int student_shape(run *R, rl_err *err) {
    const distill_params *p = R->p;
    rl_shape s = R->teacher->shape;
    if (p->shape) {
        if (distill_parse_shape(p->shape, &R->teacher->shape, &s, err)) return -1;
    } else if (p->init_layers) {
        if (strcmp(R->teacher->shape.arch, "llama") != 0)
            return rl_fail(err, RL_ERR_INPUT, "--init-from-teacher copies llama layers; this teacher is '%s' (give "
                           "--student-shape instead)", R->teacher->shape.arch);
        s.n_layer = (uint32_t)p->n_init_layers;
        s.tied_embeddings = true;
    } else {
        return rl_fail(err, RL_ERR_INPUT, "no student: give --student-shape or --init-from-teacher");
    }
    /* the trainer's layer is llama's, whatever the teacher's architecture */
    if (shape_set_arch(&s, "llama", err)) return -1;
    if (tr_layout_init(&R->L, &s, err)) return rl_fail_prefix(err, "student shape: ");
    for (int i = 0; p->init_layers && i < p->n_init_layers; i++)
        if (p->init_layers[i] < 0 || (uint32_t)p->init_layers[i] >= R->teacher->shape.n_layer)
            return rl_fail(err, RL_ERR_INPUT, "the teacher has no layer %d (it has 0 to %u)", p->init_layers[i],
                           R->teacher->shape.n_layer - 1);
    R->r->student = s;
    R->r->student_params = R->L.n_floats + (R->L.rope_freqs ? s.head_dim / 2 : 0);
    return 0;
}

static int make_student(run *R, rl_err *err) {
    const distill_params *p = R->p;
    const rl_shape *s = &R->L.s;
    tr_config c = p->train;
    c.total_steps = p->steps;
    R->t = tr_new(&R->L, &c, err);
    if (!R->t) return -1;
    tr_init_weights(R->t, p->seed);
    char init[256] = "random";
    if (p->init_layers) {
        if (student_from_teacher(R->teacher, p->init_layers, p->n_init_layers, &R->L, tr_weights(R->t), err))
            return -1;
        size_t n = 0;
        for (int i = 0; i < p->n_init_layers && n < sizeof init - 8; i++)
            n += (size_t)snprintf(init + n, sizeof init - n, "%s%d", i ? "," : "teacher:", p->init_layers[i]);
    }
    R->r->flops_per_token = tr_flops_per_token(&R->L, R->T);
    describe(R, init);
    say(R, "student: dim %u, %u layers, %u heads (%u KV), ffn %u, %s output: %llu parameters (%.1f%% of the "
        "teacher's); %s", s->n_embd, s->n_layer, s->n_head, s->n_head_kv, s->n_ff,
        s->tied_embeddings ? "tied" : "separate", (unsigned long long)R->r->student_params,
        100.0 * R->r->student_params / R->r->teacher_params,
        p->init_layers ? "started from the teacher's layers" : "random start");
    R->batch = rl_calloc((size_t)R->B * (R->T + 1), sizeof *R->batch, err);
    R->soft = R->batch ? rl_calloc((size_t)R->B, sizeof *R->soft, err) : NULL;
    R->perm = R->soft ? rl_calloc((size_t)R->n_train, sizeof *R->perm, err) : NULL;
    R->perm_epoch = -1;
    return R->perm ? 0 : -1;
}

static void default_path(char *dst, size_t size, const char *given, const char *out, const char *ext) {
    if (given) snprintf(dst, size, "%s", given);
    else snprintf(dst, size, "%s%s", out ? out : "student.gguf", ext);
}

/* The teacher's pass (or what is left of it), then the cache opened. */
static int prepare_cache(run *R, rl_err *err) {
    const distill_params *p = R->p;
    distill_result *r = R->r;
    if (p->train.alpha <= 0) return 0;
    tcache_key key = {tcache_teacher_id(R->teacher->file), corpus_hash(&R->c), R->L.s.n_vocab, (uint32_t)R->T,
                      (uint32_t)p->train.top_k, (uint32_t)(R->n_train + R->n_eval), p->train.temperature};
    tcache_build_params bp = {.n_threads = p->train.n_threads, .max_seqs = p->teacher_seqs, .stop = p->stop,
                              .progress = p->progress, .shard = p->shard, .n_shards = p->n_shards};
    tcache_stats st;
    if (tcache_build(r->cache_path, R->teacher, &key, seq_at, R, &bp, &st, err)) return -1;
    r->cache_had = st.had;
    r->cache_computed = st.computed;
    r->teacher_seconds = st.seconds;
    say(R, "teacher pass: %lld sequences from %s, %lld computed in %.1f s (%.0f tok/s)%s", (long long)st.had,
        r->cache_path, (long long)st.computed, st.seconds, st.seconds > 0 ? st.computed * R->T / st.seconds : 0.0,
        st.missing ? "; stopped" : "");
    if (st.missing) {
        r->interrupted = true;
        return 0;
    }
    if (p->n_shards > 1) { /* this server's share only: the shards are merged, then trained from */
        say(R, "teacher shard %d of %d done: merge the shards' records behind one header "
               "(cp shard0 all; tail -c +%d shardK >> all), then distill with --cache all",
            p->shard, p->n_shards, TCACHE_HEADER_BYTES + 1);
        return 0;
    }
    R->cache = tcache_open(r->cache_path, &key, err);
    if (!R->cache) return -1;
    double nll = 0;
    for (int64_t i = 0; i < R->n_eval; i++) nll += tcache_nll(R->cache, R->n_train + i);
    if (R->n_eval) r->teacher_held = nll / ((double)R->n_eval * R->T);
    return 0;
}

/* ---- training ---- */

/* Sequence b of step s's batch: the epochs' permutations, end to end. */
static int64_t batch_seq(run *R, int step, int b) {
    int64_t pos = (int64_t)step * R->B + b, epoch = pos / R->n_train;
    if (epoch != R->perm_epoch) {
        rl_rng rng;
        rl_rng_seed(&rng, R->p->seed ^ ((uint64_t)(epoch + 1) * 0xd1b54a32d192ed03ull));
        for (int64_t i = 0; i < R->n_train; i++) R->perm[i] = i;
        for (int64_t i = R->n_train - 1; i > 0; i--) { /* Fisher-Yates */
            int64_t j = (int64_t)(rl_rng_next(&rng) % (uint64_t)(i + 1)), tmp = R->perm[i];
            R->perm[i] = R->perm[j];
            R->perm[j] = tmp;
        }
        R->perm_epoch = epoch;
    }
    return R->perm[pos % R->n_train];
}

static tr_batch fill_batch(run *R, int step) {
    for (int b = 0; b < R->B; b++) {
        int64_t i = batch_seq(R, step, b);
        memcpy(R->batch + (size_t)b * (R->T + 1), seq_at(R, i), (size_t)(R->T + 1) * sizeof *R->batch);
        R->soft[b] = R->cache ? tcache_soft(R->cache, i) : NULL;
    }
    return (tr_batch){R->B, R->batch, R->cache ? R->soft : NULL};
}

/* Mean next-token NLL over the held-out sequences. */
static int eval_held(run *R, double *out, rl_err *err) {
    double sum = 0;
    int64_t n = 0;
    for (int64_t i = 0; i < R->n_eval; i += R->B) {
        int m = (int)RL_MIN((int64_t)R->B, R->n_eval - i);
        for (int b = 0; b < m; b++)
            memcpy(R->batch + (size_t)b * (R->T + 1), seq_at(R, R->n_train + i + b), (size_t)(R->T + 1) * 4);
        tr_batch tb = {m, R->batch, NULL};
        tr_loss l;
        if (tr_forward(R->t, &tb, false, &l, err)) return -1;
        sum += l.ce * (double)l.n_tok;
        n += l.n_tok;
    }
    *out = n ? sum / (double)n : NAN;
    return 0;
}

static int write_ckpt(run *R, int steps_done, double seconds, rl_err *err) {
    student_ckpt ck = {steps_done, R->p->seed, R->config, R->r->curve, R->r->n_curve, seconds};
    return student_ckpt_write(R->r->ckpt_path, R->t, &ck, err);
}

static int resume(run *R, double *seconds, rl_err *err) {
    distill_result *r = R->r;
    r->curve = rl_calloc((size_t)R->p->steps + 1, sizeof *r->curve, err);
    if (!r->curve) return -1;
    if (!R->p->resume) return 0;
    student_ckpt ck = {.config = R->config};
    int rc = student_ckpt_read(r->ckpt_path, R->t, &ck, err);
    if (rc == 0 && (ck.step > R->p->steps || ck.n_curve > R->p->steps || ck.seed != R->p->seed))
        rc = rl_fail(err, RL_ERR_INPUT, "%s: step %d does not fit this run", r->ckpt_path, ck.step);
    if (rc == 0) {
        memcpy(r->curve, ck.curve, (size_t)ck.n_curve * sizeof *r->curve);
        r->n_curve = ck.n_curve;
        r->start_step = ck.step;
        *seconds = ck.seconds;
        say(R, "resumed from %s at step %d", r->ckpt_path, ck.step);
    }
    free(ck.curve);
    return rc;
}

/* One step: forward, backward, update; its point on the curve. */
static int step_once(run *R, int step, double *seconds, curve_point *pt, rl_err *err) {
    tr_batch b = fill_batch(R, step);
    tr_loss l;
    double t0 = rl_now();
    if (tr_forward(R->t, &b, true, &l, err)) return -1;
    tr_backward(R->t);
    double gn = tr_update(R->t, step), dt = rl_now() - t0;
    R->r->train_seconds += dt;
    *seconds += dt;
    *pt = (curve_point){step + 1, (float)l.loss, (float)l.ce, (float)l.kl, NAN, tr_lr(tr_get_config(R->t), step),
                        (float)gn, *seconds};
    bool eval = step + 1 == R->p->steps || (R->p->eval_every > 0 && (step + 1) % R->p->eval_every == 0);
    double held = NAN;
    if (eval && R->n_eval && eval_held(R, &held, err)) return -1;
    pt->held = (float)held;
    return 0;
}

static int train(run *R, double seconds, rl_err *err) {
    const distill_params *p = R->p;
    distill_result *r = R->r;
    progress pr;
    progress_start(&pr, "distill", (uint64_t)(p->steps - r->start_step));
    pr.enabled = pr.enabled && p->progress;
    double last_held = NAN;
    int step = r->start_step;
    for (; step < p->steps; step++) {
        curve_point pt;
        if (step_once(R, step, &seconds, &pt, err)) return -1;
        r->curve[r->n_curve++] = pt;
        double tps = r->train_seconds > 0 ? (double)(step + 1 - r->start_step) * R->B * R->T / r->train_seconds : 0;
        if (!isnan(pt.held)) {
            last_held = pt.held;
            if (!pr.enabled)
                say(R, "step %d/%d: loss %.4f (ce %.4f, kl %.4f), held-out %.4f nats/token, %.0f tok/s", step + 1,
                    p->steps, pt.loss, pt.ce, pt.kl, pt.held, tps);
        }
        char note[160];
        snprintf(note, sizeof note, "step %d/%d, %.0f tok/s, loss %.3f, held-out %.3f", step + 1, p->steps, tps,
                 pt.loss, last_held);
        progress_note(&pr, note);
        progress_update(&pr, (uint64_t)(step + 1 - r->start_step));
        bool stop = p->stop && *p->stop;
        if ((stop || (p->ckpt_every > 0 && (step + 1) % p->ckpt_every == 0)) && step + 1 < p->steps &&
            write_ckpt(R, step + 1, seconds, err))
            return -1;
        if (stop && step + 1 < p->steps) {
            r->interrupted = true;
            step++;
            break;
        }
    }
    progress_done(&pr);
    r->steps_done = step;
    r->student_held = last_held;
    r->train_tokens = (int64_t)(step - r->start_step) * R->B * R->T;
    r->tok_per_s = r->train_seconds > 0 ? r->train_tokens / r->train_seconds : 0;
    return 0;
}

static int write_student(run *R, rl_err *err) {
    gguf_str tname;
    char name[128];
    if (gguf_get_str(R->teacher->file, "general.name", &tname))
        snprintf(name, sizeof name, "student of %.*s", (int)RL_MIN(tname.len, 100), tname.ptr);
    else
        snprintf(name, sizeof name, "student");
    student_export x = {R->teacher->file, name, R->p->f16, R->p->steps, R->p->seed,
                        (uint64_t)R->p->steps * R->B * R->T, R->p->train.alpha, R->p->train.temperature};
    if (student_write(R->p->out_path, &R->L, tr_weights(R->t), &x, err)) return -1;
    say(R, "wrote %s (%s, %llu parameters)", R->p->out_path, R->p->f16 ? "F16" : "F32",
        (unsigned long long)R->r->student_params);
    return 0;
}

int distill_run(const distill_params *p, distill_result *r, rl_err *err) {
    memset(r, 0, sizeof *r);
    r->teacher_held = r->student_held = NAN;
    run R = {.p = p, .r = r};
    if (p->steps < 1 || !p->teacher_path || !p->data_path || !p->out_path)
        return rl_fail(err, RL_ERR_INPUT, "a distillation needs a teacher, text, an output and at least one step");
    default_path(r->ckpt_path, sizeof r->ckpt_path, p->ckpt_path, p->out_path, ".ckpt");
    default_path(r->cache_path, sizeof r->cache_path, p->cache_path, p->out_path, ".teacher");
    double seconds = 0;
    int rc = load_inputs(&R, err);
    if (rc == 0) rc = make_student(&R, err);
    if (rc == 0) rc = resume(&R, &seconds, err);
    if (rc == 0) rc = prepare_cache(&R, err);
    bool go = rc == 0 && !r->interrupted && p->n_shards <= 1;
    if (go) rc = train(&R, seconds, err);
    if (rc == 0 && r->interrupted && r->steps_done > r->start_step)
        say(&R, "stopped at step %d: checkpoint %s (resume with --resume)", r->steps_done, r->ckpt_path);
    if (go && rc == 0 && !r->interrupted) rc = write_student(&R, err);
    tcache_close(R.cache);
    tr_free(R.t);
    tr_layout_free(&R.L);
    corpus_free(&R.c);
    model_free(R.teacher);
    free(R.batch);
    free(R.soft);
    free(R.perm);
    return rc;
}

void distill_result_free(distill_result *r) {
    free(r->curve);
    r->curve = NULL;
}
