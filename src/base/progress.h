/*
 * progress.h — a one-line progress bar on stderr, shown only when stderr is
 * a terminal (so logs and pipes stay clean). Cheap to call often: it redraws
 * at most ten times a second. A note after the bar carries a long job's own
 * figures (a training run's step, speed and losses).
 */
#ifndef RACKLLM_PROGRESS_H
#define RACKLLM_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct progress {
    const char *label;
    uint64_t total;
    double started, last_draw;
    bool enabled;
    char note[160]; /* shown after the bar when set (progress_note) */
} progress;

/* enabled = stderr is a TTY and RACKLLM_NO_PROGRESS is unset. */
void progress_start(progress *p, const char *label, uint64_t total);
void progress_update(progress *p, uint64_t done);
void progress_done(progress *p); /* clears the line */
/* Text shown after the bar from the next redraw on ("step 40/100 ..."). */
void progress_note(progress *p, const char *text);

#endif
