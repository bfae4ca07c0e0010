/*
 * cmd_synth.c — `rackllm synth`: write a synthetic model of a real shape
 * (synth.h), so that rackllm and llama.cpp can be measured on the same file
 * without downloading a model.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "tools/quantize.h"
#include "model/shape.h"
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

/* A whole number in [lo, hi], or false. */
static bool parse_count(const char *s, unsigned long long lo, unsigned long long hi, unsigned long long *out) {
    char *end = NULL;
    if (!s[0] || s[0] == '-') return false;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

int cmd_synth(int argc, char **argv) {
    enum { O_LAYERS = 256, O_SEED };
    static const struct option longs[] = {
        {"shape", required_argument, 0, 's'}, {"type", required_argument, 0, 'T'},
        {"output", required_argument, 0, 'o'}, {"layers", required_argument, 0, O_LAYERS},
        {"seed", required_argument, 0, O_SEED}, {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    const char *shape = NULL, *out = NULL;
    synth_params p = {.type = "q4_0", .seed = 1, .progress = true};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:T:o:t:h", longs, NULL)) != -1) {
        unsigned long long v = 0;
        bool ok = true;
        switch (c) {
        case 's': shape = optarg; break;
        case 'T': p.type = optarg; break;
        case 'o': out = optarg; break;
        case O_LAYERS: ok = parse_count(optarg, 1, 100000, &v), p.layers = (uint32_t)v; break;
        case O_SEED: ok = parse_count(optarg, 0, UINT64_MAX, &v), p.seed = v; break;
        case 't': ok = parse_count(optarg, 1, 1024, &v), p.n_threads = (int)v; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (!ok) {
            fprintf(stderr, "rackllm: synth: invalid number '%s'\n", optarg);
            return 2;
        }
    }
    if (!shape || !out || optind < argc) {
        fprintf(stderr, "rackllm: synth: %s\n", optind < argc ? "unexpected argument" : "--shape and -o are required");
        fprintf(stderr, "usage: rackllm synth --shape NAME --type TYPE -o FILE.gguf  (--help for more)\n");
        return 2;
    }
    rl_err err = {0};
    if (shape_catalog_find(shape, &p.shape, &err)) return cli_fail(&err);
    if (synth_write(&p, out, &err)) return cli_fail(&err);
    return 0;
}
