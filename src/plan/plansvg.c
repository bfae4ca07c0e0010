/*
 * plansvg.c — the grouped bar chart of plansvg.h, written by hand: a
 * viewBox, a plot frame, grid lines at decades (log) or round steps
 * (linear), bars, value labels, a legend and the notes. Text is escaped.
 */
#include "plansvg.h"

#include <errno.h>
#include <math.h>

static const char *const PALETTE[] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#ad494a", "#637939", "#843c39",
    "#e7ba52", "#5254a3", "#6b6ecf", "#b5cf6b",
};

enum { BAR_W = 14, MAX_BAR_W = 40, MIN_GROUP_W = 100, GROUP_GAP = 28, LEFT = 80, RIGHT = 24, TOP = 56,
       PLOT_H = 340, LINE_H = 16 };

/* Bars are BAR_W wide unless a group would be too narrow for its label. */
static int bar_width(const plansvg_chart *c) {
    if (c->n_series * BAR_W >= MIN_GROUP_W) return BAR_W;
    return RL_MIN(MAX_BAR_W, (MIN_GROUP_W + c->n_series - 1) / c->n_series);
}

/* Room for one group: its bars, or at least MIN_GROUP_W for the label. */
static int group_width(const plansvg_chart *c) { return RL_MAX(c->n_series * bar_width(c), MIN_GROUP_W); }


/* The y axis: value -> pixel offset above the baseline, 0..PLOT_H. */
typedef struct axis {
    bool log;
    double top; /* value at the top of the plot (log: a power of ten) */
} axis;

static double axis_y(const axis *a, double v) {
    if (a->log) return v >= 1 ? PLOT_H * log10(v) / log10(a->top) : 0;
    return v > 0 ? PLOT_H * v / a->top : 0;
}

/* A round step for about five linear grid lines. */
static double nice_step(double max) {
    double raw = max / 5, mag = pow(10, floor(log10(raw)));
    double r = raw / mag;
    return (r <= 1 ? 1 : r <= 2 ? 2 : r <= 5 ? 5 : 10) * mag;
}

static axis make_axis(const plansvg_chart *c) {
    double max = 0;
    for (int i = 0; i < c->n_groups * c->n_series; i++)
        if (isfinite(c->values[i])) max = fmax(max, c->values[i]);
    axis a = {c->log_scale, 1};
    if (c->log_scale) {
        a.top = 10;
        while (a.top < max * 1.0001) a.top *= 10;
    } else {
        double step = nice_step(max > 0 ? max : 1);
        a.top = step * ceil((max > 0 ? max : 1) / step);
    }
    return a;
}

static void grid(FILE *out, const axis *a, int plot_w) {
    int base = TOP + PLOT_H;
    double step = a->log ? 0 : nice_step(a->top);
    for (double v = a->log ? 1 : 0; v <= a->top * 1.0001; v = a->log ? v * 10 : v + step) {
        double y = base - axis_y(a, v);
        fprintf(out, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", LEFT, y, LEFT + plot_w, y);
        fprintf(out, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\">%g</text>\n", LEFT - 6, y + 4, v);
    }
}

static void bars(FILE *out, const plansvg_chart *c, const axis *a) {
    int bw = bar_width(c), base = TOP + PLOT_H, group_w = group_width(c);
    for (int g = 0; g < c->n_groups; g++) {
        int x0 = LEFT + GROUP_GAP / 2 + g * (group_w + GROUP_GAP) + (group_w - c->n_series * bw) / 2;
        for (int s = 0; s < c->n_series; s++) {
            double v = c->values[g * c->n_series + s];
            int x = x0 + s * bw;
            double h = isfinite(v) ? axis_y(a, v) : 0;
            const char *color = PALETTE[s % RL_ARRAY_LEN(PALETTE)];
            if (h > 0)
                fprintf(out, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%.1f\" fill=\"%s\"><title>", x + 1,
                        base - h, bw - 2, h, color);
            else
                fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"1\" fill=\"%s\"><title>", x + 1, base - 1,
                        bw - 2, color);
            rl_fputs_xml(out, c->series[s]);
            fprintf(out, ", ");
            rl_fputs_xml(out, c->groups[g]);
            fprintf(out, ": %g</title></rect>\n", isfinite(v) ? v : 0);
            /* The value, written upwards above the bar. */
            double ty = base - h - 4;
            fprintf(out, "<text transform=\"translate(%d,%.1f) rotate(-90)\" font-size=\"9\">%.4g</text>\n",
                    x + bw / 2 + 3, ty, isfinite(v) ? v : 0);
        }
        fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"11\">", x0 + c->n_series * bw / 2,
                base + 18);
        rl_fputs_xml(out, c->groups[g]);
        fputs("</text>\n", out);
    }
}

int plansvg_write(FILE *out, const plansvg_chart *c, rl_err *err) {
    if (c->n_groups < 1 || c->n_series < 1) return rl_fail(err, RL_ERR_INPUT, "svg: nothing to draw");
    int plot_w = c->n_groups * (group_width(c) + GROUP_GAP);
    /* Wide enough for the plot, the title (~9 px a character) and notes. */
    int text_w = (int)strlen(c->title) * 9;
    for (int i = 0; i < c->n_notes; i++) text_w = RL_MAX(text_w, (int)strlen(c->notes[i]) * 6);
    int width = RL_MAX(RL_MAX(LEFT + plot_w + RIGHT, 760), LEFT + text_w + RIGHT);
    int legend_cols = RL_MAX(1, (width - LEFT) / 240);
    int legend_rows = (c->n_series + legend_cols - 1) / legend_cols;
    int legend_top = TOP + PLOT_H + 40;
    int notes_top = legend_top + legend_rows * LINE_H + 16;
    int height = notes_top + c->n_notes * LINE_H + 12;
    axis a = make_axis(c);

    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                 "font-family=\"sans-serif\">\n", width, height, width, height);
    fprintf(out, "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n", width, height);
    fprintf(out, "<text x=\"%d\" y=\"24\" font-size=\"16\" font-weight=\"bold\">", LEFT);
    rl_fputs_xml(out, c->title);
    fputs("</text>\n", out);
    fprintf(out, "<text transform=\"translate(18,%d) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">",
            TOP + PLOT_H / 2);
    rl_fputs_xml(out, c->y_label);
    if (c->log_scale) fputs(" (log scale)", out);
    fputs("</text>\n", out);
    grid(out, &a, plot_w);
    bars(out, c, &a);
    fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", LEFT, TOP, LEFT, TOP + PLOT_H);
    fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"black\"/>\n", LEFT, TOP + PLOT_H,
            LEFT + plot_w, TOP + PLOT_H);
    for (int s = 0; s < c->n_series; s++) {
        int x = LEFT + (s % legend_cols) * 240, y = legend_top + (s / legend_cols) * LINE_H;
        fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>\n", x, y - 9,
                PALETTE[s % RL_ARRAY_LEN(PALETTE)]);
        fprintf(out, "<text x=\"%d\" y=\"%d\" font-size=\"11\">", x + 14, y);
        rl_fputs_xml(out, c->series[s]);
        fputs("</text>\n", out);
    }
    for (int i = 0; i < c->n_notes; i++) {
        fprintf(out, "<text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#333\">", LEFT, notes_top + i * LINE_H);
        rl_fputs_xml(out, c->notes[i]);
        fputs("</text>\n", out);
    }
    fputs("</svg>\n", out);
    return ferror(out) ? rl_fail(err, RL_ERR_INTERNAL, "svg: write error") : 0;
}

int plansvg_write_file(const char *path, const plansvg_chart *c, rl_err *err) {
    FILE *f = fopen(path, "w");
    if (!f) return rl_fail(err, RL_ERR_INPUT, "%s: %s", path, strerror(errno));
    int rc = plansvg_write(f, c, err);
    if (fclose(f) != 0 && rc == 0) rc = rl_fail(err, RL_ERR_INTERNAL, "%s: %s", path, strerror(errno));
    if (rc) rl_fail_prefix(err, "%s: ", path);
    return rc;
}
