/*
 * kernel_speed.c — how fast one matrix kernel multiplies, level against
 * level, on this CPU: giga multiply-adds per second of kern_matmul for a
 * weight type, a matrix size and a number of activation rows, on one
 * thread (or more), for every kernel level the machine supports.
 *
 * It times what the forward pass calls (activation conversion included),
 * on packed weights, so its figures are the ones a step is made of. A small
 * matrix (the default: 1024 x 2048, about 1 MB of Q4_0) stays in cache and
 * shows the arithmetic; a large one (--rows 8192 --cols 8192) shows the
 * memory stream. Levels are measured in turn, several rounds, and the best
 * round of each is kept (this machine's speed drifts between runs; the
 * best round is the least disturbed one).
 *
 *   build/kernel_speed --type q4_0 --n 1,4,8,16
 *   build/kernel_speed --type q6_k --levels avx2,avx512 --json out.json
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/kernels.h"
#include "kernels/kernels_impl.h"
#include "kernels/quant.h"
#include "base/rng.h"
#include "base/types.h"

typedef struct opts {
    uint32_t type;
    int64_t rows, cols;
    int n[16], n_count;
    int levels[KERN_LEVEL_COUNT], level_count;
    int threads, rounds;
    double seconds;
    const char *json;
} opts;

static void usage(FILE *f) {
    fprintf(f,
            "usage: kernel_speed [options]\n\n"
            "Giga multiply-adds per second of one matrix product (kern_matmul on packed\n"
            "weights, activation conversion included) at every kernel level this CPU has.\n\n"
            "  --type T        weight type (default q4_0; q8_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, f16, ...)\n"
            "  --rows N        weight rows (default 1024)\n"
            "  --cols N        columns (default 2048)\n"
            "  --n LIST        activation rows per product (default 1,4,8,16)\n"
            "  --levels LIST   kernel levels (default: every one this CPU supports)\n"
            "  --threads N     threads (default 1)\n"
            "  --rounds N      rounds over the levels; the best is kept (default 3)\n"
            "  --seconds S     time per measurement (default 0.2)\n"
            "  --json FILE     the figures as JSON lines\n"
            "  -h, --help      this help\n");
}

static int parse_list(const char *s, int *out, int max) {
    int n = 0;
    for (const char *p = s; *p && n < max;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 4096) return -1;
        out[n++] = (int)v;
        p = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

static int parse_levels(const char *s, opts *o) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    o->level_count = 0;
    for (char *tok = strtok(buf, ","); tok && o->level_count < KERN_LEVEL_COUNT; tok = strtok(NULL, ",")) {
        int l = kern_level_from_name(tok);
        if (l < 0) return -1;
        o->levels[o->level_count++] = l;
    }
    return o->level_count > 0 ? 0 : -1;
}

static int parse(int argc, char **argv, opts *o) {
    *o = (opts){.type = RL_TYPE_Q4_0, .rows = 1024, .cols = 2048, .n = {1, 4, 8, 16}, .n_count = 4,
                .threads = 1, .rounds = 3, .seconds = 0.2};
    for (int l = 0; l < KERN_LEVEL_COUNT; l++)
        if (kern_level_supported((kern_level)l)) o->levels[o->level_count++] = l;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        }
        if (!v) return fprintf(stderr, "kernel_speed: %s needs a value\n", a), -1;
        i++;
        if (!strcmp(a, "--type")) {
            int t = rl_type_from_name(v);
            if (t < 0 || !quant_supported((uint32_t)t)) return fprintf(stderr, "kernel_speed: unknown type %s\n", v), -1;
            o->type = (uint32_t)t;
        } else if (!strcmp(a, "--rows")) {
            o->rows = atoll(v);
        } else if (!strcmp(a, "--cols")) {
            o->cols = atoll(v);
        } else if (!strcmp(a, "--n")) {
            if ((o->n_count = parse_list(v, o->n, 16)) <= 0) return fprintf(stderr, "kernel_speed: bad --n %s\n", v), -1;
        } else if (!strcmp(a, "--levels")) {
            if (parse_levels(v, o)) return fprintf(stderr, "kernel_speed: bad --levels %s\n", v), -1;
        } else if (!strcmp(a, "--threads")) {
            o->threads = atoi(v);
        } else if (!strcmp(a, "--rounds")) {
            o->rounds = atoi(v);
        } else if (!strcmp(a, "--seconds")) {
            o->seconds = atof(v);
        } else if (!strcmp(a, "--json")) {
            o->json = v;
        } else {
            return fprintf(stderr, "kernel_speed: unknown option %s (--help)\n", a), -1;
        }
    }
    int64_t bs = quant_block_size(o->type);
    if (o->rows < 1 || o->cols < 1 || bs < 1 || o->cols % (bs < 32 ? 32 : bs) || o->threads < 1 || o->rounds < 1 ||
        o->seconds <= 0)
        return fprintf(stderr, "kernel_speed: bad sizes (cols must be whole blocks of %s)\n", rl_type_name(o->type)),
               -1;
    return 0;
}

/* Seconds per product, the best of repeated timings for about o->seconds. */
static double time_product(kernels *k, const kern_matrix *W, const float *X, int n, float *Y, double seconds) {
    kern_matmul(k, W, X, n, Y, W->rows); /* warm: pages, caches, threads */
    double best = 1e30, start = rl_now();
    int reps = 0;
    while (rl_now() - start < seconds || reps < 3) {
        double t0 = rl_now();
        kern_matmul(k, W, X, n, Y, W->rows);
        double dt = rl_now() - t0;
        best = dt < best ? dt : best;
        reps++;
    }
    return best;
}

int main(int argc, char **argv) {
    opts o;
    if (parse(argc, argv, &o)) return 2;
    uint64_t row_bytes;
    if (!rl_type_row_bytes(o.type, (uint64_t)o.cols, &row_bytes)) return fprintf(stderr, "kernel_speed: bad cols\n"), 2;
    int nmax = 0;
    for (int i = 0; i < o.n_count; i++) nmax = o.n[i] > nmax ? o.n[i] : nmax;
    uint8_t *w = malloc(row_bytes * (size_t)o.rows);
    float *row = malloc((size_t)o.cols * sizeof(float)), *X = malloc((size_t)o.cols * nmax * sizeof(float));
    float *Y = malloc((size_t)o.rows * nmax * sizeof(float));
    if (!w || !row || !X || !Y) return fprintf(stderr, "kernel_speed: out of memory\n"), 1;
    rl_rng rng;
    rl_rng_seed(&rng, 7);
    for (int64_t r = 0; r < o.rows; r++) {
        for (int64_t c = 0; c < o.cols; c++) row[c] = (float)(rl_rng_uniform(&rng) * 2 - 1);
        quant_quantize_row(o.type, row, w + (size_t)r * row_bytes, o.cols);
    }
    for (int64_t i = 0; i < o.cols * nmax; i++) X[i] = (float)(rl_rng_uniform(&rng) * 2 - 1);

    double best[KERN_LEVEL_COUNT][16];
    for (int l = 0; l < KERN_LEVEL_COUNT; l++)
        for (int i = 0; i < 16; i++) best[l][i] = 1e30;
    for (int round = 0; round < o.rounds; round++)
        for (int li = 0; li < o.level_count; li++) {
            kern_level level = (kern_level)o.levels[li];
            rl_err err = {0};
            kern_params p = {.n_threads = o.threads, .max_rows = nmax, .max_cols = o.cols, .level = (int)level};
            kernels *k = kern_new(&p, &err);
            if (!k) return fprintf(stderr, "kernel_speed: %s\n", err.msg), 2;
            kern_matrix W = {.data = w, .type = o.type, .rows = o.rows, .cols = o.cols, .row_bytes = row_bytes};
            if (kern_matrix_pack_level(&W, level, &err)) return fprintf(stderr, "kernel_speed: %s\n", err.msg), 1;
            for (int i = 0; i < o.n_count; i++) {
                double s = time_product(k, &W, X, o.n[i], Y, o.seconds);
                best[level][i] = s < best[level][i] ? s : best[level][i];
            }
            kern_matrix_unpack(&W);
            kern_free(k);
        }

    FILE *js = o.json ? fopen(o.json, "w") : NULL;
    if (o.json && !js) return fprintf(stderr, "kernel_speed: cannot write %s\n", o.json), 1;
    printf("%s %lld x %lld, %d thread%s: G multiply-adds/s (best of %d rounds)\n", rl_type_name(o.type),
           (long long)o.rows, (long long)o.cols, o.threads, o.threads == 1 ? "" : "s", o.rounds);
    printf("%-8s", "n");
    for (int i = 0; i < o.n_count; i++) printf(" %8d", o.n[i]);
    printf("\n");
    for (int li = 0; li < o.level_count; li++) {
        int l = o.levels[li];
        printf("%-8s", kern_level_name((kern_level)l));
        for (int i = 0; i < o.n_count; i++) {
            double gmacs = (double)o.rows * (double)o.cols * o.n[i] / best[l][i] / 1e9;
            printf(" %8.1f", gmacs);
            if (js)
                fprintf(js, "{\"type\":\"%s\",\"rows\":%lld,\"cols\":%lld,\"threads\":%d,\"level\":\"%s\",\"n\":%d,"
                            "\"gmacs\":%.3f}\n",
                        rl_type_name(o.type), (long long)o.rows, (long long)o.cols, o.threads,
                        kern_level_name((kern_level)l), o.n[i], gmacs);
        }
        printf("\n");
    }
    if (js) fclose(js);
    free(w), free(row), free(X), free(Y);
    return 0;
}
