/*
 * progress.c — the terminal progress bar (see progress.h).
 */
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common.h"

void progress_start(progress *p, const char *label, uint64_t total) {
    p->label = label;
    p->total = total ? total : 1;
    p->started = rl_now();
    p->last_draw = 0;
    p->enabled = isatty(STDERR_FILENO) && !getenv("RACKLLM_NO_PROGRESS");
    p->note[0] = 0;
}

void progress_note(progress *p, const char *text) { snprintf(p->note, sizeof p->note, "%s", text); }

void progress_update(progress *p, uint64_t done) {
    if (!p->enabled) return;
    double now = rl_now();
    if (done < p->total && now - p->last_draw < 0.1) return;
    p->last_draw = now;
    const int width = 30;
    double frac = (double)RL_MIN(done, p->total) / (double)p->total;
    int filled = (int)(frac * width);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    double elapsed = now - p->started;
    double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
    if (p->note[0])
        fprintf(stderr, "\r\033[K%s [%s] %3d%%  %s, %.0fs left ", p->label, bar, (int)(frac * 100), p->note, eta);
    else
        fprintf(stderr, "\r%s [%s] %3d%%  %.1fs elapsed, %.1fs left ", p->label, bar, (int)(frac * 100), elapsed, eta);
    fflush(stderr);
}

void progress_done(progress *p) {
    if (!p->enabled) return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
}
