/*
 * commands.h — the subcommands of the `rackllm` binary. Each lives in its
 * own file (cmd_NAME.c), parses its own flags, prints its own --help, and
 * returns the process exit code: 0 success, 1 internal failure, 2 bad input.
 */
#ifndef RACKLLM_COMMANDS_H
#define RACKLLM_COMMANDS_H

#include "base/common.h"

int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_loadgen(int argc, char **argv);
int cmd_plan(int argc, char **argv);

/* Prints "rackllm: <message>" on stderr and returns the exit code for it. */
int cli_fail(const rl_err *err);

#endif
