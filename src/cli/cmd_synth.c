/*
 * cmd_synth.c — `rackllm synth`: write a synthetic model of a real shape
 * (synth.h), so that rackllm and llama.cpp can be measured on the same file
 * without downloading a model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "model/shape.h"
#include "tools/quantize.h"
#include "tools/synth.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: rackllm synth --shape NAME --type TYPE -o FILE.gguf [options]\n"
            "\n"
            "Writes a GGUF with the exact tensors and metadata of a real model, seeded random\n"
            "weights and a synthetic byte-level tokenizer of the real vocabulary size. It loads\n"
            "in llama.cpp too, so both can be timed on the same file.\n"
            "\n"
            "  -s, --shape NAME    model shape, e.g. llama3.2-1b (list: `rackllm plan --list`)\n"
            "  -T, --type TYPE     weight type or llama.cpp mix (default q4_0), one of:\n");
    for (size_t i = 0; quantize_mix_at(i); i++)
        fprintf(out, "                        %-7s %s\n", quantize_mix_at(i)->name, quantize_mix_at(i)->about);
    fprintf(out,
            "  -o, --output FILE   where to write it (atomically)\n"
            "      --layers N      keep only the first N layers (small test models)\n"
            "      --seed S        random seed (default 1); same seed, same bytes\n"
            "  -t, --threads N     threads (default: all CPUs; the bytes do not depend on it)\n"
            "  -h, --help          this help\n");
}

int cmd_synth(int argc, char **argv) {
    const char *shape = NULL, *out = NULL;
    synth_params p = {.type = "q4_0", .seed = 1, .progress = true};
    int layers = 0;
    const cli_flag flags[] = {
        FLAG_STR("shape", 's', &shape),
        FLAG_STR("type", 'T', &p.type),
        FLAG_STR("output", 'o', &out),
        FLAG_INT("layers", 0, &layers, 1, 100000),
        FLAG_U64("seed", 0, &p.seed, 0, 0),
        FLAG_INT("threads", 't', &p.n_threads, 1, 1024),
    };
    rl_err err = {0};
    int first, rc = cli_parse(argc, argv, flags, (int)RL_ARRAY_LEN(flags), usage, &first, &err);
    if (rc) return rc == CLI_HELP ? 0 : cli_fail(&err);
    p.layers = (uint32_t)layers;
    if (first < argc) return cli_usage_error("unexpected argument '%s'", argv[first]);
    if (!shape || !out) return cli_usage_error("--shape and -o are required");
    if (shape_catalog_find(shape, &p.shape, &err)) return cli_fail(&err);
    if (synth_write(&p, out, &err)) return cli_fail(&err);
    return 0;
}
