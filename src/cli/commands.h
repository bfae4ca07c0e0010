/*
 * commands.h — the subcommands of the `rackllm` binary. Each lives in its
 * own file (cmd_NAME.c): it declares its flags for cli_parse (flags.h),
 * prints its own --help, calls the library, prints what it got, and
 * returns the process exit code: 0 success, 1 internal failure, 2 bad
 * input (reported by cli_fail, one line).
 */
#ifndef RACKLLM_COMMANDS_H
#define RACKLLM_COMMANDS_H

#include "base/common.h"
#include "flags.h"

int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_loadgen(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_distill(int argc, char **argv);
int cmd_eval(int argc, char **argv);

#endif
