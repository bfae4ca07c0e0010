/*
 * flags.h — the one way a `rackllm` command reads its command line and
 * reports a mistake.
 *
 * A command lists its flags in a table: a long name, an optional letter,
 * the kind of value (none, text, a whole number or a number within a
 * range, or a function of the command's own) and where it goes. cli_parse
 * reads argv with getopt_long, checks every value against its range,
 * answers -h / --help with the command's usage on stdout, and leaves the
 * positional arguments. Every mistake, the parser's or the command's own
 * (cli_fail, also for errors from the library), is one line on stderr:
 *
 *     rackllm COMMAND: what is wrong
 *
 * with exit status 2 for bad input and 1 for an internal failure.
 */
#ifndef RACKLLM_FLAGS_H
#define RACKLLM_FLAGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/common.h"

typedef enum cli_kind {
    CLI_BOOL,   /* no value: *(bool *)dest = true */
    CLI_STR,    /* *(const char **)dest = the value */
    CLI_INT,    /* *(int *)dest = a whole number in [lo, hi] */
    CLI_U64,    /* *(uint64_t *)dest = a whole number >= lo, <= hi unless hi is 0 */
    CLI_DOUBLE, /* *(double *)dest = a finite number in [lo, hi] */
    CLI_FLOAT,  /* *(float *)dest, as CLI_DOUBLE */
    CLI_FN,     /* fn(dest, value, err): the command's own reading */
} cli_kind;

typedef struct cli_flag {
    const char *name; /* the long name, without "--" */
    char letter;      /* the short name, or 0 */
    cli_kind kind;
    void *dest;
    double lo, hi;    /* the range of a number */
    int (*fn)(void *dest, const char *value, rl_err *err); /* CLI_FN: 0, or -1 with err */
    bool *given;      /* set to true when the flag appears (NULL: not wanted) */
} cli_flag;

/* Table entries: FLAG_INT("threads", 't', &n, 1, 1024). A flag whose
 * appearance matters gets the whole struct, `given` last. */
#define FLAG_BOOL(name, letter, dest) {(name), (letter), CLI_BOOL, (dest), 0, 0, NULL, NULL}
#define FLAG_STR(name, letter, dest) {(name), (letter), CLI_STR, (dest), 0, 0, NULL, NULL}
#define FLAG_INT(name, letter, dest, lo, hi) {(name), (letter), CLI_INT, (dest), (lo), (hi), NULL, NULL}
#define FLAG_U64(name, letter, dest, lo, hi) {(name), (letter), CLI_U64, (dest), (lo), (hi), NULL, NULL}
#define FLAG_NUM(name, letter, dest, lo, hi) {(name), (letter), CLI_DOUBLE, (dest), (lo), (hi), NULL, NULL}
#define FLAG_FLOAT(name, letter, dest, lo, hi) {(name), (letter), CLI_FLOAT, (dest), (lo), (hi), NULL, NULL}
#define FLAG_FN(name, letter, dest, fn) {(name), (letter), CLI_FN, (dest), 0, 0, (fn), NULL}

enum { CLI_RUN = 0, CLI_HELP = 1 };

/* Reads argv[1..] (argv[0] is the command's name) against the n flags,
 * plus -h / --help. Returns CLI_RUN with *first_arg the index of the first
 * positional argument, CLI_HELP after printing usage(stdout), or -1 with
 * err (RL_ERR_INPUT) naming the mistake. */
int cli_parse(int argc, char **argv, const cli_flag *flags, int n, void (*usage)(FILE *out), int *first_arg,
              rl_err *err);

/* The command whose name cli_fail prints (main sets it). */
void cli_set_command(const char *name);

/* Prints "rackllm COMMAND: <message>" on stderr and returns the exit code
 * for it: 2 for bad input, 1 for an internal failure. */
int cli_fail(const rl_err *err);

/* cli_fail of an input error made of a format. */
int cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
