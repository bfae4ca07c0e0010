/*
 * main.c — the `rackllm` command: dispatches to a subcommand.
 */
#include <stdio.h>
#include <string.h>

#include "commands.h"

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} command;

static const command COMMANDS[] = {
    {"info", cmd_info, "describe a GGUF model: shape, tensors, size class, RAM"},
    {"tokenize", cmd_tokenize, "show the token ids of a text"},
    {"run", cmd_run, "generate text from a prompt, or chat"},
    {"synth", cmd_synth, "write a GGUF with a real model's shape and random weights"},
    {"quantize", cmd_quantize, "convert a GGUF's weights to a quantized type"},
    {"bench", cmd_bench, "measure prefill, decode, bandwidth and sessions at the floor"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server with admission control"},
    {"loadgen", cmd_loadgen, "open N streaming chat sessions against a server and report"},
    {"plan", cmd_plan, "sessions per rack for a model class and hardware"},
    {"distill", cmd_distill, "train a small student model from a teacher on your text"},
    {"eval", cmd_eval, "a model's perplexity on a text (as llama-perplexity scores it)"},
};

static void usage(FILE *out) {
    fprintf(out, "usage: rackllm COMMAND [options]   (rackllm COMMAND --help for details)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(out, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (strcmp(argv[1], COMMANDS[i].name) == 0) {
            cli_set_command(COMMANDS[i].name);
            return COMMANDS[i].fn(argc - 1, argv + 1);
        }
    fprintf(stderr, "rackllm: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
