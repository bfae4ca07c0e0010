/* cmd_plan.c — placeholder until the command lands. */
#include <stdio.h>

#include "commands.h"

int cmd_plan(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "rackllm plan: not built yet\n");
    return 1;
}
