/*
 * cmd_synth.c — `rackllm synth`: write a synthetic model of a real shape.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "synth.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: rackllm synth --shape NAME --type TYPE -o FILE.gguf [options]\n"
            "\n"
            "Writes a GGUF with the exact tensors and metadata of a real model, seeded random\n"
            "weights and a synthetic byte-level tokenizer of the real vocabulary size.\n"
            "\n"
            "  -s, --shape NAME    model shape (see `rackllm plan --list`), e.g. llama3.2-1b\n"
            "  -T, --type TYPE     f32 f16 bf16 q8_0 q4_0 q4_1 q4_k q5_k q6_k (default q4_0)\n"
            "  -o, --output FILE   where to write it\n"
            "      --layers N      keep only the first N layers (small test models)\n"
            "      --seed S        random seed (default 1); same seed, same bytes\n"
            "  -t, --threads N     threads (default: all CPUs)\n"
            "  -h, --help          this help\n");
}

int cmd_synth(int argc, char **argv) {
    static const struct option longs[] = {
        {"shape", required_argument, 0, 's'}, {"type", required_argument, 0, 'T'},
        {"output", required_argument, 0, 'o'}, {"layers", required_argument, 0, 'L'},
        {"seed", required_argument, 0, 'S'},  {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0},
    };
    const char *shape = NULL, *out = NULL;
    synth_params p = {.type = "q4_0", .seed = 1, .progress = true};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:T:o:t:h", longs, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 's': shape = optarg; break;
        case 'T': p.type = optarg; break;
        case 'o': out = optarg; break;
        case 'L': p.layers = (uint32_t)strtoul(optarg, &end, 10); break;
        case 'S': p.seed = strtoull(optarg, &end, 10); break;
        case 't': p.n_threads = (int)strtol(optarg, &end, 10); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (end && *end) {
            fprintf(stderr, "rackllm synth: invalid number '%s'\n", optarg);
            return 2;
        }
    }
    if (!shape || !out || optind < argc) {
        usage(stderr);
        return 2;
    }
    rl_err err = {0};
    if (shape_catalog_find(shape, &p.shape, &err)) return cli_fail(&err);
    if (synth_write(&p, out, &err)) return cli_fail(&err);
    return 0;
}
