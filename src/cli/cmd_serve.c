/* cmd_serve.c — placeholder until the command lands. */
#include <stdio.h>

#include "commands.h"

int cmd_serve(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "rackllm serve: not built yet\n");
    return 1;
}
