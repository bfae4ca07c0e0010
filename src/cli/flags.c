/*
 * flags.c — the commands' flag parser and error line (see flags.h): a
 * getopt_long table built from the command's cli_flag list, each value
 * checked by its kind.
 */
#include "flags.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CLI_MAX_FLAGS 64

static const char *command = "";

void cli_set_command(const char *name) { command = name; }

int cli_fail(const rl_err *err) {
    fprintf(stderr, "rackllm%s%s: %s\n", command[0] ? " " : "", command, err->msg);
    return err->code == RL_ERR_INPUT ? 2 : 1;
}

int cli_usage_error(const char *fmt, ...) {
    rl_err err = {.code = RL_ERR_INPUT};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof err.msg, fmt, ap);
    va_end(ap);
    return cli_fail(&err);
}

/* A whole number, all of s, in [lo, hi]. */
static bool whole_number(const char *s, double lo, double hi, long long *out) {
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || (double)v < lo || (double)v > hi) return false;
    *out = v;
    return true;
}

/* A finite number, all of s, in [lo, hi]. */
static bool number(const char *s, double lo, double hi, double *out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* Reads the value of flag f into its destination. */
static int take(const cli_flag *f, const char *value, rl_err *err) {
    long long i;
    double d;
    switch (f->kind) {
    case CLI_BOOL: *(bool *)f->dest = true; return 0;
    case CLI_STR: *(const char **)f->dest = value; return 0;
    case CLI_FN: return f->fn(f->dest, value, err);
    case CLI_INT:
        if (!whole_number(value, f->lo, f->hi, &i)) break;
        *(int *)f->dest = (int)i;
        return 0;
    case CLI_U64: {
        char *end = NULL;
        errno = 0;
        unsigned long long u = strtoull(value, &end, 10);
        if (!*value || *value == '-' || *end || errno || (double)u < f->lo || (f->hi > 0 && (double)u > f->hi)) break;
        *(uint64_t *)f->dest = u;
        return 0;
    }
    case CLI_DOUBLE:
    case CLI_FLOAT:
        if (!number(value, f->lo, f->hi, &d)) break;
        if (f->kind == CLI_DOUBLE) *(double *)f->dest = d;
        else *(float *)f->dest = (float)d;
        return 0;
    }
    if (f->kind == CLI_DOUBLE || f->kind == CLI_FLOAT)
        return rl_fail(err, RL_ERR_INPUT, "--%s '%s': expected a number from %g to %g", f->name, value, f->lo, f->hi);
    if (f->kind == CLI_U64 && !(f->hi > 0))
        return rl_fail(err, RL_ERR_INPUT, "--%s '%s': expected a whole number from %.0f", f->name, value, f->lo);
    return rl_fail(err, RL_ERR_INPUT, "--%s '%s': expected a whole number from %.0f to %.0f", f->name, value, f->lo,
                   f->hi);
}

/* The getopt_long tables for flags + help: longs[] and the letters. */
static int build_tables(const cli_flag *flags, int n, struct option *longs, char *letters, size_t size, rl_err *err) {
    if (n + 1 >= CLI_MAX_FLAGS) return rl_fail(err, RL_ERR_INTERNAL, "too many flags (%d)", n);
    size_t k = 0;
    letters[k++] = ':'; /* a missing value returns ':' */
    for (int i = 0; i < n; i++) {
        bool value = flags[i].kind != CLI_BOOL;
        longs[i] = (struct option){flags[i].name, value ? required_argument : no_argument, NULL, 256 + i};
        if (flags[i].letter && k + 3 < size) {
            letters[k++] = flags[i].letter;
            if (value) letters[k++] = ':';
        }
    }
    longs[n] = (struct option){"help", no_argument, NULL, 'h'};
    longs[n + 1] = (struct option){0, 0, 0, 0};
    letters[k++] = 'h';
    letters[k] = 0;
    return 0;
}

/* The flag a getopt result stands for (its index), -1 if none. */
static int flag_index(const cli_flag *flags, int n, int opt) {
    if (opt >= 256 && opt < 256 + n) return opt - 256;
    for (int i = 0; i < n; i++)
        if (flags[i].letter && flags[i].letter == opt) return i;
    return -1;
}

int cli_parse(int argc, char **argv, const cli_flag *flags, int n, void (*usage)(FILE *out), int *first_arg,
              rl_err *err) {
    struct option longs[CLI_MAX_FLAGS + 1];
    char letters[3 * CLI_MAX_FLAGS + 3];
    if (build_tables(flags, n, longs, letters, sizeof letters, err)) return -1;
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, letters, longs, NULL)) != -1) {
        if (opt == 'h') {
            usage(stdout);
            return CLI_HELP;
        }
        if (opt == ':') return rl_fail(err, RL_ERR_INPUT, "option '%s' needs a value", argv[optind - 1]);
        int i = flag_index(flags, n, opt);
        if (opt == '?' || i < 0)
            return rl_fail(err, RL_ERR_INPUT, "unknown option '%s' (see rackllm %s --help)", argv[optind - 1],
                           argv[0]);
        if (take(&flags[i], optarg, err)) return -1;
        if (flags[i].given) *flags[i].given = true;
    }
    *first_arg = optind;
    return CLI_RUN;
}
