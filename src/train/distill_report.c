/*
 * distill_report.c — a distillation run for machines and eyes: the JSON of
 * `rackllm distill --json` (settings, figures, the whole loss curve) and
 * the SVG of `--svg` (training and held-out loss by step, the teacher's
 * held-out loss as a dashed line), written by hand. NaN becomes null.
 */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "distill.h"

static void num(FILE *out, const char *key, double v, bool comma) {
    if (isfinite(v)) fprintf(out, "\"%s\": %.6g%s", key, v, comma ? ", " : "");
    else fprintf(out, "\"%s\": null%s", key, comma ? ", " : "");
}

static void json_str(FILE *out, const char *s) {
    fputc('"', out);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
        else if (c < 0x20) fprintf(out, "\\u%04x", c);
        else fputc(c, out);
    }
    fputc('"', out);
}

static void json_params(FILE *out, const distill_params *p) {
    const tr_config *c = &p->train;
    fprintf(out, "  \"params\": {\"teacher\": ");
    json_str(out, p->teacher_path);
    fprintf(out, ", \"data\": ");
    json_str(out, p->data_path);
    fprintf(out, ", \"student_shape\": ");
    json_str(out, p->shape ? p->shape : "");
    fprintf(out, ", \"init_from_teacher\": [");
    for (int i = 0; p->init_layers && i < p->n_init_layers; i++) fprintf(out, "%s%d", i ? ", " : "", p->init_layers[i]);
    fprintf(out, "], \"steps\": %d, \"seed\": %llu, \"batch\": %d, \"seq_len\": %d, \"threads\": %d, ", p->steps,
            (unsigned long long)p->seed, c->n_seq, c->seq_len, c->n_threads);
    num(out, "lr", c->lr, true);
    fprintf(out, "\"warmup\": %d, ", c->warmup);
    num(out, "alpha", c->alpha, true);
    num(out, "temperature", c->temperature, true);
    fprintf(out, "\"top_k\": %d, ", c->top_k);
    num(out, "holdout", p->eval_path ? 0 : p->holdout, false);
    fprintf(out, "},\n");
}

void distill_write_json(FILE *out, const distill_params *p, const distill_result *r) {
    const rl_shape *s = &r->student;
    fprintf(out, "{\n");
    json_params(out, p);
    fprintf(out, "  \"student\": {\"n_vocab\": %u, \"n_embd\": %u, \"n_layer\": %u, \"n_head\": %u, \"n_head_kv\": %u, "
            "\"head_dim\": %u, \"n_ff\": %u, \"tied_embeddings\": %s, \"params\": %llu},\n", s->n_vocab, s->n_embd,
            s->n_layer, s->n_head, s->n_head_kv, s->head_dim, s->n_ff, s->tied_embeddings ? "true" : "false",
            (unsigned long long)r->student_params);
    fprintf(out, "  \"teacher_params\": %llu, \"train_seqs\": %lld, \"held_seqs\": %lld, \"train_tokens\": %lld,\n",
            (unsigned long long)r->teacher_params, (long long)r->train_seqs, (long long)r->held_seqs,
            (long long)r->train_tokens);
    fprintf(out, "  \"teacher_cache\": {\"path\": ");
    json_str(out, r->cache_path);
    fprintf(out, ", \"had\": %lld, \"computed\": %lld, ", (long long)r->cache_had, (long long)r->cache_computed);
    num(out, "seconds", r->teacher_seconds, false);
    fprintf(out, "},\n  ");
    num(out, "teacher_held", r->teacher_held, true);
    num(out, "student_held", r->student_held, true);
    num(out, "train_seconds", r->train_seconds, true);
    num(out, "tok_per_s", r->tok_per_s, true);
    num(out, "flops_per_token", r->flops_per_token, true);
    fprintf(out, "\n  \"start_step\": %d, \"steps_done\": %d, \"interrupted\": %s,\n  \"curve\": [\n", r->start_step,
            r->steps_done, r->interrupted ? "true" : "false");
    for (int i = 0; i < r->n_curve; i++) {
        const curve_point *c = &r->curve[i];
        fprintf(out, "    {\"step\": %d, ", c->step);
        num(out, "loss", c->loss, true);
        num(out, "ce", c->ce, true);
        num(out, "kl", c->kl, true);
        num(out, "held", c->held, true);
        num(out, "lr", c->lr, true);
        num(out, "grad_norm", c->grad_norm, true);
        num(out, "seconds", c->seconds, false);
        fprintf(out, "}%s\n", i + 1 < r->n_curve ? "," : "");
    }
    fprintf(out, "  ]\n}\n");
}

/* ---- the chart ---- */

enum { W = 720, H = 420, LEFT = 64, RIGHT = 20, TOP = 48, BOTTOM = 48 };

typedef struct frame {
    double x_max, y_min, y_max;
} frame;

static double px(const frame *f, double step) { return LEFT + (W - LEFT - RIGHT) * step / f->x_max; }
static double py(const frame *f, double v) {
    return TOP + (H - TOP - BOTTOM) * (1 - (v - f->y_min) / (f->y_max - f->y_min));
}

static frame make_frame(const distill_result *r) {
    frame f = {1, INFINITY, -INFINITY};
    for (int i = 0; i < r->n_curve; i++) {
        const curve_point *c = &r->curve[i];
        f.x_max = fmax(f.x_max, c->step);
        float v[2] = {c->ce, c->held};
        for (int k = 0; k < 2; k++)
            if (isfinite(v[k])) f.y_min = fmin(f.y_min, v[k]), f.y_max = fmax(f.y_max, v[k]);
    }
    if (isfinite(r->teacher_held)) f.y_min = fmin(f.y_min, r->teacher_held), f.y_max = fmax(f.y_max, r->teacher_held);
    if (!isfinite(f.y_min)) f.y_min = 0, f.y_max = 1;
    f.y_min = floor(f.y_min * 2) / 2;
    f.y_max = ceil(f.y_max * 2) / 2 + (f.y_max == f.y_min ? 0.5 : 0);
    return f;
}

static void axes(FILE *out, const frame *f) {
    for (double v = f->y_min; v <= f->y_max + 1e-9; v += (f->y_max - f->y_min) > 4 ? 1 : 0.5) {
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", LEFT, py(f, v), W - RIGHT,
                py(f, v));
        fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%g</text>\n", LEFT - 6,
                py(f, v) + 4, v);
    }
    for (int i = 0; i <= 4; i++) {
        double s = f->x_max * i / 4;
        fprintf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">%.0f</text>\n", px(f, s),
                H - BOTTOM + 16, s);
    }
    fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"12\">step</text>\n", (LEFT + W - RIGHT) / 2,
            H - 12);
    fprintf(out, "<text x=\"16\" y=\"%d\" font-size=\"12\" transform=\"rotate(-90 16 %d)\" text-anchor=\"middle\">"
            "nats / token</text>\n", (TOP + H - BOTTOM) / 2, (TOP + H - BOTTOM) / 2);
}

/* A polyline of one field (0: ce, 1: held) over the steps that have it. */
static void series(FILE *out, const frame *f, const distill_result *r, int field, const char *color, double width) {
    fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\" points=\"", color, width);
    for (int i = 0; i < r->n_curve; i++) {
        float v = field ? r->curve[i].held : r->curve[i].ce;
        if (isfinite(v)) fprintf(out, "%.1f,%.1f ", px(f, r->curve[i].step), py(f, fmin(fmax(v, f->y_min), f->y_max)));
    }
    fprintf(out, "\"/>\n");
}

void distill_write_svg(FILE *out, const distill_result *r, const char *title) {
    frame f = make_frame(r);
    fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n", W, H);
    fprintf(out, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n<text x=\"%d\" y=\"24\" font-size=\"15\">", W, H,
            LEFT);
    rl_fputs_xml(out, title);
    fprintf(out, "</text>\n");
    axes(out, &f);
    series(out, &f, r, 0, "#9ecae1", 1.0);
    series(out, &f, r, 1, "#d62728", 2.0);
    if (isfinite(r->teacher_held))
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#2ca02c\" stroke-dasharray=\"6 4\"/>\n",
                LEFT, py(&f, r->teacher_held), W - RIGHT, py(&f, r->teacher_held));
    static const char *const labels[3] = {"training batch (cross-entropy)", "held-out", "teacher, held-out"};
    static const char *const colors[3] = {"#9ecae1", "#d62728", "#2ca02c"};
    for (int i = 0; i < 3; i++)
        fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"3\" fill=\"%s\"/><text x=\"%d\" y=\"%d\" "
                "font-size=\"11\">%s</text>\n", W - RIGHT - 200, TOP + 4 + 16 * i, colors[i], W - RIGHT - 184,
                TOP + 9 + 16 * i, labels[i]);
    fprintf(out, "</svg>\n");
}

static int save(const char *path, const distill_params *p, const distill_result *r, bool svg, rl_err *err) {
    FILE *f = fopen(path, "w");
    if (!f) return rl_fail(err, RL_ERR_INPUT, "%s: %s", path, strerror(errno));
    if (svg) {
        char title[256];
        snprintf(title, sizeof title, "distilling %s: %u layers x %u, alpha %.2f", p->teacher_path, r->student.n_layer,
                 r->student.n_embd, p->train.alpha);
        distill_write_svg(f, r, title);
    } else {
        distill_write_json(f, p, r);
    }
    if (ferror(f) | fclose(f)) return rl_fail(err, RL_ERR_INTERNAL, "writing %s failed", path);
    return 0;
}

int distill_save_reports(const char *json, const char *svg, const distill_params *p, const distill_result *r,
                         rl_err *err) {
    if (json && save(json, p, r, false, err)) return -1;
    return svg ? save(svg, p, r, true, err) : 0;
}
