/*
 * benchsvg.c — the sweep chart of benchsvg.h, written by hand: two panels
 * sharing a log2 x axis (sessions), round linear y steps, polylines with
 * markers per series, the floor and roofline as labelled horizontal lines,
 * a legend and the notes. Text is escaped; numbers are finite by the time
 * they are drawn (anything else is drawn at zero).
 */
#include "benchsvg.h"

#include <errno.h>
#include <math.h>
#include <string.h>

enum { WIDTH = 780, LEFT = 72, RIGHT = 24, TOP_A = 96, H_A = 300, TOP_B = 458, H_B = 170, NOTES_Y = 678,
       HEIGHT = 734 };

#define BATCHED_COLOR "#1f77b4"
#define PARTITIONED_COLOR "#ff7f0e"
#define FLOOR_COLOR "#d62728"
#define ROOF_COLOR "#555555"
#define MARK_COLOR "#2ca02c"


static double pos_or_zero(double v) { return isfinite(v) && v > 0 ? v : 0; }

/* A round step for about five grid lines up to max. */
static double nice_step(double max) {
    double raw = max / 5, mag = pow(10, floor(log10(raw)));
    double r = raw / mag;
    return (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * mag;
}

typedef struct panel {
    int top, height;
    double y_top, step;     /* value at the top, grid step */
    double log2_x_max;      /* the x axis runs from 1 to 2^log2_x_max sessions */
} panel;

static int plot_w(void) { return WIDTH - LEFT - RIGHT; }

static double px(const panel *p, double sessions) {
    return LEFT + plot_w() * (sessions > 1 ? log2(sessions) / p->log2_x_max : 0);
}

static double py(const panel *p, double v) {
    double f = p->y_top > 0 ? pos_or_zero(v) / p->y_top : 0;
    return p->top + p->height * (1 - (f > 1.02 ? 1.02 : f));
}

static panel make_panel(int top, int height, double max_value, double log2_x_max) {
    panel p = {top, height, 1, 1, log2_x_max};
    double max = max_value > 0 ? max_value * 1.08 : 1;
    p.step = nice_step(max);
    p.y_top = p.step * ceil(max / p.step);
    return p;
}

static void axes(FILE *out, const panel *p, const char *y_label) {
    int base = p->top + p->height;
    for (double v = 0; v <= p->y_top * 1.0001; v += p->step) {
        double y = py(p, v);
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>\n", LEFT, y,
                LEFT + plot_w(), y);
        fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%g</text>\n", LEFT - 6, y + 4, v);
    }
    for (int k = 0; k <= (int)p->log2_x_max; k++) {
        double x = px(p, pow(2, k));
        fprintf(out, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e4e4e4\"/>\n", x, p->top, x, base);
        fprintf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">%d</text>\n", x, base + 15,
                1 << k);
    }
    fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>\n", LEFT, p->top,
            plot_w(), p->height);
    fprintf(out,
            "<text x=\"%d\" y=\"%d\" transform=\"rotate(-90 %d %d)\" text-anchor=\"middle\" font-size=\"12\">",
            18, p->top + p->height / 2, 18, p->top + p->height / 2);
    rl_fputs_xml(out, y_label);
    fputs("</text>\n", out);
    fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"12\">concurrent sessions</text>\n",
            LEFT + plot_w() / 2, base + 32);
}

typedef double (*value_fn)(const bench_point_result *);
static double slowest(const bench_point_result *pt) { return pt->min_tok_s; }
static double aggregate(const bench_point_result *pt) { return pt->aggregate_tok_s; }

static void series(FILE *out, const panel *p, const bench_point_result *pts, int n, value_fn v, const char *color,
                   bool squares) {
    if (n <= 0) return;
    fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", color);
    for (int i = 0; i < n; i++) fprintf(out, "%s%.1f,%.1f", i ? " " : "", px(p, pts[i].sessions), py(p, v(&pts[i])));
    fputs("\"/>\n", out);
    for (int i = 0; i < n; i++) {
        double x = px(p, pts[i].sessions), y = py(p, v(&pts[i]));
        if (squares)
            fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"8\" height=\"8\" fill=\"%s\">", x - 4, y - 4, color);
        else
            fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\">", x, y, color);
        fprintf(out, "<title>%d sessions: %.2f tok/s</title></%s>\n", pts[i].sessions, pos_or_zero(v(&pts[i])),
                squares ? "rect" : "circle");
    }
}

static void hline(FILE *out, const panel *p, double v, const char *color, const char *dash, const char *label) {
    double y = py(p, v);
    fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.5\" "
                 "stroke-dasharray=\"%s\"/>\n",
            LEFT, y, LEFT + plot_w(), y, color, dash);
    fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\" fill=\"%s\">", LEFT + plot_w() - 4,
            y - 4, color);
    rl_fputs_xml(out, label);
    fputs("</text>\n", out);
}

static void legend(FILE *out, int x, int y, bool partitioned) {
    fprintf(out, "<circle cx=\"%d\" cy=\"%d\" r=\"4\" fill=\"%s\"/>\n", x, y - 4, BATCHED_COLOR);
    fprintf(out, "<text x=\"%d\" y=\"%d\" font-size=\"11\">batched (one engine, all threads)</text>\n", x + 10, y);
    if (!partitioned) return;
    fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"8\" height=\"8\" fill=\"%s\"/>\n", x - 4, y + 8, PARTITIONED_COLOR);
    fprintf(out, "<text x=\"%d\" y=\"%d\" font-size=\"11\">partitioned (one session per core group)</text>\n", x + 10,
            y + 16);
}

static double max_of(const bench_point_result *pts, int n, value_fn v) {
    double m = 0;
    for (int i = 0; i < n; i++) m = fmax(m, pos_or_zero(v(&pts[i])));
    return m;
}

static int max_sessions(const bench_result *r) {
    int m = 2;
    for (int i = 0; i < r->n_batched; i++) m = m > r->batched[i].sessions ? m : r->batched[i].sessions;
    for (int i = 0; i < r->n_partitioned; i++) m = m > r->partitioned[i].sessions ? m : r->partitioned[i].sessions;
    return m;
}

int benchsvg_write(FILE *out, const bench_result *r, rl_err *err) {
    if (!r->have_sweep) return rl_fail(err, RL_ERR_INPUT, "the SVG shows the session sweep, which was not run");
    char buf[512];
    double log2_x = ceil(log2((double)max_sessions(r)));
    double top_a = fmax(fmax(max_of(r->batched, r->n_batched, slowest), max_of(r->partitioned, r->n_partitioned, slowest)),
                        r->floor_tok_s);
    /* a roofline far above the points (a model that fits the caches) is
     * named, not drawn: it would flatten everything else */
    bool roof_drawn = r->roofline_tok_s > 0 && r->roofline_tok_s <= 2 * top_a;
    if (roof_drawn) top_a = fmax(top_a, r->roofline_tok_s);
    double top_b = fmax(max_of(r->batched, r->n_batched, aggregate), max_of(r->partitioned, r->n_partitioned, aggregate));
    panel a = make_panel(TOP_A, H_A, top_a, log2_x), b = make_panel(TOP_B, H_B, top_b, log2_x);

    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
            "font-family=\"sans-serif\">\n",
            WIDTH, HEIGHT, WIDTH, HEIGHT);
    fprintf(out, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", WIDTH, HEIGHT);
    snprintf(buf, sizeof buf, "rackllm bench: %s %s, tok/s of each session vs concurrent sessions",
             r->shape[0] ? r->shape : r->name, r->type);
    fprintf(out, "<text x=\"%d\" y=\"26\" font-size=\"16\" font-weight=\"bold\">", LEFT);
    rl_fputs_xml(out, buf);
    fputs("</text>\n", out);
    snprintf(buf, sizeof buf, "%s, %d threads, kernels %s; prompt %d + generate %d tokens per session", r->cpu,
             r->threads, r->kernels, r->prompt_len, r->gen_len);
    fprintf(out, "<text x=\"%d\" y=\"46\" font-size=\"12\" fill=\"#444\">", LEFT);
    rl_fputs_xml(out, buf);
    fputs("</text>\n", out);

    /* top: the slowest session's speed */
    axes(out, &a, "tok/s of the slowest session");
    snprintf(buf, sizeof buf, "bandwidth roofline, one stream: %.1f tok/s (%.1f GB/s / %.3g GB per token)%s",
             r->roofline_tok_s, r->bandwidth_gbs, r->bytes_per_token / 1e9, roof_drawn ? "" : ", above the chart");
    if (roof_drawn) {
        hline(out, &a, r->roofline_tok_s, ROOF_COLOR, "2,3", buf);
    } else if (r->roofline_tok_s > 0) {
        fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\" font-size=\"11\" fill=\"%s\">", LEFT + plot_w() - 4,
                a.top + 14, ROOF_COLOR);
        rl_fputs_xml(out, buf);
        fputs("</text>\n", out);
    }
    snprintf(buf, sizeof buf, "floor: %g tok/s", r->floor_tok_s);
    hline(out, &a, r->floor_tok_s, FLOOR_COLOR, "6,4", buf);
    if (r->max_batched > 0) {
        double x = px(&a, r->max_batched);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"%s\" stroke-width=\"1.5\" "
                     "stroke-dasharray=\"4,3\"/>\n",
                x, a.top, x, a.top + a.height, MARK_COLOR);
        snprintf(buf, sizeof buf, "%d session%s at \xe2\x89\xa5 %g tok/s", r->max_batched, r->max_batched > 1 ? "s" : "",
                 r->floor_tok_s);
        bool right_half = x > LEFT + plot_w() * 0.6;
        fprintf(out, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\" font-size=\"11\" fill=\"%s\">", x + (right_half ? -4 : 4),
                a.top + a.height - 8, right_half ? "end" : "start", MARK_COLOR);
        rl_fputs_xml(out, buf);
        fputs("</text>\n", out);
    }
    series(out, &a, r->batched, r->n_batched, slowest, BATCHED_COLOR, false);
    series(out, &a, r->partitioned, r->n_partitioned, slowest, PARTITIONED_COLOR, true);
    legend(out, LEFT + plot_w() - 250, TOP_A - 28, r->n_partitioned > 0);

    /* bottom: aggregate */
    axes(out, &b, "aggregate tok/s");
    series(out, &b, r->batched, r->n_batched, aggregate, BATCHED_COLOR, false);
    series(out, &b, r->partitioned, r->n_partitioned, aggregate, PARTITIONED_COLOR, true);

    int n = snprintf(buf, sizeof buf, "Measured by rackllm bench in %.0f s; memory bandwidth %.1f GB/s", r->seconds,
                     r->bandwidth_gbs);
    if (r->have_tg && n > 0 && (size_t)n < sizeof buf)
        snprintf(buf + n, sizeof buf - (size_t)n, "; single-stream decode (%s) %.1f tok/s", r->tg.name, r->tg.median);
    fprintf(out, "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#444\">", LEFT, NOTES_Y + 20);
    rl_fputs_xml(out, buf);
    fputs("</text>\n", out);
    fprintf(out, "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#444\">Speed of a session = tokens after its first "
                 "/ time from its first to its last; greedy decoding.</text>\n",
            LEFT, NOTES_Y + 36);
    fputs("</svg>\n", out);
    return ferror(out) ? rl_fail(err, RL_ERR_INTERNAL, "write error") : 0;
}

int benchsvg_write_file(const bench_result *r, const char *path, rl_err *err) {
    FILE *f = fopen(path, "w");
    if (!f) return rl_fail(err, RL_ERR_INPUT, "%s: cannot write: %s", path, strerror(errno));
    int rc = benchsvg_write(f, r, err);
    if (fclose(f) != 0 && rc == 0) rc = rl_fail(err, RL_ERR_INTERNAL, "%s: write failed", path);
    return rc;
}
