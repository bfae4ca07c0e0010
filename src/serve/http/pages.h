/*
 * pages.h — the web pages `rackllm serve` shows in a browser: `/` (chat),
 * `/dashboard` (live capacity) and `/plan` (the rack planner's charts).
 *
 * The pages are plain HTML, CSS and JavaScript from web/, compiled into the
 * binary at build time (scripts/embed.cmake): nothing is fetched from
 * anywhere else, so they work offline. Every page and asset goes out with
 * a Content-Security-Policy that lets it load only this server's own
 * scripts, styles and images, and talk only to this server. The pages
 * hold no data: they read it from the API (/v1/chat/completions,
 * /v1/stats, /v1/plan/...), sending the API key the user typed, so
 * `--api-key` guards what they show. `--no-web` leaves the pages out.
 *
 * /plan's two charts are the SVGs `rackllm plan` draws, made after the first
 * request, in a thread of their own, by running this executable (`plan --matrix --svg`, and `plan
 * --model FILE --hardware this --svg`, which measures this machine's
 * memory bandwidth once; both with the server's --floor and context, and
 * --calibrate with --plan-bench) and kept.
 */
#ifndef RACKLLM_SERVER_PAGES_H
#define RACKLLM_SERVER_PAGES_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "base/common.h"

typedef struct pages pages;

/* model_path: the served GGUF file, for /plan's chart of this machine;
 * bench_json (NULL: none): a `rackllm bench --json` file both charts are
 * calibrated with (`plan --calibrate`; the matrix then has this machine's
 * row); floor_tps, ctx: the server's floor and context, which both charts
 * plan with. */
pages *pages_new(const char *model_path, const char *bench_json, double floor_tps, int ctx, rl_err *err);
void pages_free(pages *pg);

/* Whether url is a page or one of their assets. */
bool pages_has(const char *url);
/* The response for it (404 for an asset that does not exist), with its
 * status in *status; NULL if out of memory. */
struct MHD_Response *pages_response(const char *url, int *status);

/* Whether url is one of /plan's charts (/v1/plan/matrix.svg,
 * /v1/plan/this.svg). */
bool pages_is_chart(const char *url);
/* That chart's SVG text (malloc'ed). The first call starts drawing both
 * in a thread of their own (no HTTP thread waits for the child): until
 * they are drawn it returns NULL with *ready false (ask again); NULL with
 * *ready true and *err when drawing failed. */
char *pages_chart(pages *pg, const char *url, bool *ready, rl_err *err);

#endif
