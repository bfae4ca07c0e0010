/* cmd_synth.c — placeholder until the command lands. */
#include <stdio.h>

#include "commands.h"

int cmd_synth(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "rackllm synth: not built yet\n");
    return 1;
}
