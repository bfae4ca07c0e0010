/*
 * student.c — students and checkpoints as GGUF files, and a student's
 * start from its teacher's weights (see student.h).
 */
#include "student.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/types.h"
#include "kernels/quant.h"

#define CKPT_VERSION 1
/* llama.cpp's general.file_type: all F32, mostly F16 */
#define FTYPE_ALL_F32 0
#define FTYPE_MOSTLY_F16 1

/* ---- the delivered model ---- */

typedef struct export_job {
    const float **src; /* per tensor written: its floats */
} export_job;

static int fill_f16(void *ctx, uint64_t i, void *buf, uint64_t size, rl_err *err) {
    (void)err;
    const export_job *j = ctx;
    rl_f16 *out = buf;
    for (uint64_t k = 0; k < size / 2; k++) out[k] = rl_f32_to_f16(j->src[i][k]);
    return 0;
}

static void copy_tokenizer(gguf_writer *gw, const gguf_file *teacher) {
    for (uint64_t i = 0; i < teacher->n_kv; i++) {
        gguf_str k = teacher->kv[i].key;
        if (k.len > 10 && memcmp(k.ptr, "tokenizer.", 10) == 0) gguf_writer_add_value(gw, k, &teacher->kv[i].val);
    }
}

static void add_provenance(gguf_writer *gw, const student_export *x) {
    gguf_str tname;
    char buf[128] = "";
    if (gguf_get_str(x->teacher, "general.name", &tname))
        snprintf(buf, sizeof buf, "%.*s", (int)RL_MIN(tname.len, 120), tname.ptr);
    gguf_writer_add_str(gw, "rackllm.distill.teacher", buf);
    gguf_writer_add_u32(gw, "rackllm.distill.steps", (uint32_t)x->steps);
    gguf_writer_add_u64(gw, "rackllm.distill.seed", x->seed);
    gguf_writer_add_u64(gw, "rackllm.distill.tokens", x->tokens);
    gguf_writer_add_f32(gw, "rackllm.distill.alpha", x->alpha);
    gguf_writer_add_f32(gw, "rackllm.distill.temperature", x->temperature);
}

int student_write(const char *path, const tr_layout *L, const float *w, const student_export *x, rl_err *err) {
    export_job j = {rl_calloc((size_t)L->n_tensors + 1, sizeof *j.src, err)};
    gguf_writer *gw = j.src ? gguf_writer_new(3) : NULL;
    if (!gw) {
        free(j.src);
        return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    }
    gguf_writer_add_str(gw, "general.architecture", "llama");
    gguf_writer_add_str(gw, "general.name", x->name);
    gguf_writer_add_u32(gw, "general.alignment", GGUF_DEFAULT_ALIGNMENT);
    gguf_writer_add_u32(gw, "general.file_type", x->f16 ? FTYPE_MOSTLY_F16 : FTYPE_ALL_F32);
    shape_write_gguf(gw, &L->s);
    copy_tokenizer(gw, x->teacher);
    add_provenance(gw, x);
    int rc = 0, n = 0;
    for (int i = 0; i < L->n_tensors && rc == 0; i++) {
        const tr_tensor *t = &L->t[i];
        uint64_t ne[2] = {(uint64_t)t->cols, (uint64_t)t->rows};
        bool half = x->f16 && t->rows > 1;
        j.src[n++] = w + t->offset;
        rc = gguf_writer_add_tensor(gw, t->name, half ? RL_TYPE_F16 : RL_TYPE_F32, t->rows > 1 ? 2 : 1, ne,
                                    half ? NULL : w + t->offset, err);
    }
    if (rc == 0 && L->rope_freqs) {
        uint64_t ne[1] = {L->s.head_dim / 2};
        rc = gguf_writer_add_tensor(gw, "rope_freqs.weight", RL_TYPE_F32, 1, ne, L->rope_freqs, err);
    }
    if (rc == 0) rc = gguf_writer_write(gw, path, fill_f16, &j, NULL, err);
    gguf_writer_free(gw);
    free(j.src);
    return rc;
}

/* ---- checkpoints ---- */

#define CURVE_KEY "rackllm.ckpt.curve."

static void add_curve(gguf_writer *gw, const student_ckpt *c) {
    int n = c->n_curve;
    int32_t *steps = calloc((size_t)RL_MAX(n, 1), sizeof *steps);
    float *f = calloc((size_t)RL_MAX(n, 1) * 6, sizeof *f);
    double *secs = calloc((size_t)RL_MAX(n, 1), sizeof *secs);
    if (steps && f && secs) {
        for (int i = 0; i < n; i++) {
            const curve_point *p = &c->curve[i];
            steps[i] = p->step;
            float v[6] = {p->loss, p->ce, p->kl, p->held, p->lr, p->grad_norm};
            for (int k = 0; k < 6; k++) f[k * n + i] = v[k];
            secs[i] = p->seconds;
        }
        static const char *const names[6] = {"loss", "ce", "kl", "held", "lr", "grad_norm"};
        gguf_writer_add_arr(gw, CURVE_KEY "step", GGUF_INT32, steps, (uint64_t)n);
        for (int k = 0; k < 6; k++) {
            char key[64];
            snprintf(key, sizeof key, CURVE_KEY "%s", names[k]);
            gguf_writer_add_arr(gw, key, GGUF_FLOAT32, f + (size_t)k * n, (uint64_t)n);
        }
        gguf_writer_add_arr(gw, CURVE_KEY "seconds", GGUF_FLOAT64, secs, (uint64_t)n);
    }
    free(steps);
    free(f);
    free(secs);
}

int student_ckpt_write(const char *path, trainer *t, const student_ckpt *c, rl_err *err) {
    const tr_layout *L = tr_get_layout(t);
    gguf_writer *gw = gguf_writer_new(3);
    if (!gw) return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    gguf_writer_add_str(gw, "general.architecture", "rackllm-checkpoint");
    gguf_writer_add_u32(gw, "rackllm.ckpt.version", CKPT_VERSION);
    gguf_writer_add_u32(gw, "rackllm.ckpt.step", (uint32_t)c->step);
    gguf_writer_add_u64(gw, "rackllm.ckpt.seed", c->seed);
    gguf_writer_add_str(gw, "rackllm.ckpt.config", c->config);
    gguf_value secs = {.type = GGUF_FLOAT64, .f64 = c->seconds};
    gguf_writer_add_value(gw, (gguf_str){"rackllm.ckpt.seconds", strlen("rackllm.ckpt.seconds")}, &secs);
    add_curve(gw, c);
    float *bufs[3] = {tr_weights(t), tr_adam_m(t), tr_adam_v(t)};
    static const char *const prefix[3] = {"", "adam_m.", "adam_v."};
    int rc = 0;
    for (int b = 0; b < 3 && rc == 0; b++)
        for (int i = 0; i < L->n_tensors && rc == 0; i++) {
            const tr_tensor *tt = &L->t[i];
            char name[80];
            snprintf(name, sizeof name, "%s%s", prefix[b], tt->name);
            uint64_t ne[2] = {(uint64_t)tt->cols, (uint64_t)tt->rows};
            rc = gguf_writer_add_tensor(gw, name, RL_TYPE_F32, 2, ne, bufs[b] + tt->offset, err);
        }
    if (rc == 0) rc = gguf_writer_write(gw, path, NULL, NULL, NULL, err);
    gguf_writer_free(gw);
    return rc;
}

/* The first setting (space-separated key=value) where two lines differ. */
static void first_difference(const char *a, const char *b, char *out, size_t size) {
    size_t i = 0, start = 0;
    while (a[i] && a[i] == b[i]) {
        if (a[i] == ' ') start = i + 1;
        i++;
    }
    size_t end = start;
    while (a[end] && a[end] != ' ') end++;
    snprintf(out, size, "%.*s", (int)RL_MIN(end - start, 200), a + start);
}

static int read_curve(const gguf_file *f, student_ckpt *c, rl_err *err) {
    const gguf_value *steps = gguf_get_arr(f, CURVE_KEY "step", GGUF_INT32);
    static const char *const names[7] = {"loss", "ce", "kl", "held", "lr", "grad_norm", "seconds"};
    const gguf_value *cols[7];
    for (int k = 0; k < 7; k++) {
        char key[64];
        snprintf(key, sizeof key, CURVE_KEY "%s", names[k]);
        cols[k] = gguf_get_arr(f, key, k < 6 ? GGUF_FLOAT32 : GGUF_FLOAT64);
        if (!steps || !cols[k] || cols[k]->arr.n != steps->arr.n || steps->arr.n > (1u << 24))
            return rl_fail(err, RL_ERR_INPUT, "%s: the checkpoint's loss curve is missing or damaged", f->path);
    }
    c->n_curve = (int)steps->arr.n;
    c->curve = rl_calloc((size_t)RL_MAX(c->n_curve, 1), sizeof *c->curve, err);
    if (!c->curve) return -1;
    for (int i = 0; i < c->n_curve; i++) {
        double v[7];
        int64_t s;
        gguf_arr_i64(steps, (uint64_t)i, &s);
        for (int k = 0; k < 7; k++) gguf_arr_f64(cols[k], (uint64_t)i, &v[k]);
        c->curve[i] = (curve_point){(int32_t)s, (float)v[0], (float)v[1], (float)v[2], (float)v[3], (float)v[4],
                                    (float)v[5], v[6]};
    }
    return 0;
}

/* One buffer's tensors (prefix "", "adam_m." or "adam_v.") into dst. */
static int read_tensors(const gguf_file *f, const tr_layout *L, const char *prefix, float *dst, rl_err *err) {
    for (int i = 0; i < L->n_tensors; i++) {
        const tr_tensor *tt = &L->t[i];
        char name[80];
        snprintf(name, sizeof name, "%s%s", prefix, tt->name);
        const gguf_tensor *g = gguf_find_tensor(f, name);
        if (!g || g->type != RL_TYPE_F32 || g->ne[0] != (uint64_t)tt->cols || g->ne[1] != (uint64_t)tt->rows ||
            g->ne[2] != 1 || g->ne[3] != 1)
            return rl_fail(err, RL_ERR_INPUT, "%s: tensor %s is missing or not F32 [%lld, %lld]", f->path, name,
                           (long long)tt->cols, (long long)tt->rows);
        memcpy(dst + tt->offset, g->data, (size_t)tt->rows * tt->cols * sizeof(float));
    }
    return 0;
}

int student_ckpt_read(const char *path, trainer *t, student_ckpt *c, rl_err *err) {
    gguf_file *f = gguf_open(path, err);
    if (!f) return -1;
    uint64_t version = 0, step = 0, seed = 0;
    double secs = 0;
    gguf_str cfg;
    int rc = 0;
    if (!gguf_get_u64(f, "rackllm.ckpt.version", &version) || version != CKPT_VERSION ||
        !gguf_get_u64(f, "rackllm.ckpt.step", &step) || !gguf_get_u64(f, "rackllm.ckpt.seed", &seed) ||
        !gguf_get_str(f, "rackllm.ckpt.config", &cfg) || !gguf_get_f64(f, "rackllm.ckpt.seconds", &secs) ||
        step > INT32_MAX)
        rc = rl_fail(err, RL_ERR_INPUT, "%s: not a rackllm checkpoint (version %d)", path, CKPT_VERSION);
    if (rc == 0 && (cfg.len != strlen(c->config) || memcmp(cfg.ptr, c->config, cfg.len) != 0)) {
        char *theirs = strndup(cfg.ptr, cfg.len), what[256] = "?";
        if (theirs) first_difference(c->config, theirs, what, sizeof what);
        rc = rl_fail(err, RL_ERR_INPUT, "%s was made with other settings: this run has %s (resume with the same "
                     "flags)", path, what);
        free(theirs);
    }
    const tr_layout *L = tr_get_layout(t);
    if (rc == 0) rc = read_tensors(f, L, "", tr_weights(t), err);
    if (rc == 0) rc = read_tensors(f, L, "adam_m.", tr_adam_m(t), err);
    if (rc == 0) rc = read_tensors(f, L, "adam_v.", tr_adam_v(t), err);
    if (rc == 0) rc = read_curve(f, c, err);
    c->step = (int32_t)step;
    c->seed = seed;
    c->seconds = secs;
    gguf_close(f);
    return rc;
}

/* ---- from the teacher ---- */

static void copy_matrix(const kern_matrix *m, float *out) {
    for (int64_t r = 0; r < m->rows; r++)
        quant_dequantize_row(m->type, (const uint8_t *)m->data + (size_t)r * m->row_bytes, out + r * m->cols, m->cols);
}

int student_from_teacher(const model *teacher, const int *layers, int n, const tr_layout *L, float *w, rl_err *err) {
    const rl_shape *ts = &teacher->shape, *s = &L->s;
    if (s->n_vocab != ts->n_vocab || s->n_embd != ts->n_embd || s->n_head != ts->n_head ||
        s->n_head_kv != ts->n_head_kv || s->head_dim != ts->head_dim || s->n_ff != ts->n_ff || (int)s->n_layer != n)
        return rl_fail(err, RL_ERR_INPUT, "a student started from its teacher keeps the teacher's widths and "
                       "vocabulary, with as many layers as it takes (%d)", n);
    for (int i = 0; i < n; i++)
        if (layers[i] < 0 || (uint32_t)layers[i] >= ts->n_layer)
            return rl_fail(err, RL_ERR_INPUT, "the teacher has no layer %d (it has 0 to %u)", layers[i],
                           ts->n_layer - 1);
    copy_matrix(&teacher->tok_embd, w + L->t[0].offset);
    memcpy(w + L->t[1].offset, teacher->output_norm, (size_t)s->n_embd * sizeof(float));
    if (!s->tied_embeddings) copy_matrix(&teacher->output, w + L->t[2].offset);
    for (int i = 0; i < n; i++) {
        const model_layer *tl = &teacher->layers[layers[i]];
        const float *norms[2] = {tl->attn_norm, tl->ffn_norm};
        const kern_matrix *mats[7] = {&tl->wq, &tl->wk, &tl->wv, &tl->wo, &tl->w_gate, &tl->w_up, &tl->w_down};
        static const int norm_kind[2] = {TR_ATTN_NORM, TR_FFN_NORM};
        static const int mat_kind[7] = {TR_WQ, TR_WK, TR_WV, TR_WO, TR_GATE, TR_UP, TR_DOWN};
        for (int k = 0; k < 2; k++)
            memcpy(w + L->t[tr_layer_tensor(L, i, norm_kind[k])].offset, norms[k], (size_t)s->n_embd * sizeof(float));
        for (int k = 0; k < 7; k++) copy_matrix(mats[k], w + L->t[tr_layer_tensor(L, i, mat_kind[k])].offset);
    }
    return 0;
}
