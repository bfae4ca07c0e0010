/* cmd_loadgen.c — placeholder until the command lands. */
#include <stdio.h>

#include "commands.h"

int cmd_loadgen(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "rackllm loadgen: not built yet\n");
    return 1;
}
