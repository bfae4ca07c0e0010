/* cmd_quantize.c — placeholder until the command lands. */
#include <stdio.h>

#include "commands.h"

int cmd_quantize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "rackllm quantize: not built yet\n");
    return 1;
}
