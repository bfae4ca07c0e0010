/* cmd_bench.c — placeholder until the command lands. */
#include <stdio.h>

#include "commands.h"

int cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "rackllm bench: not built yet\n");
    return 1;
}
