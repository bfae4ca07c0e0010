/*
 * cmd_quantize.c — `rackllm quantize IN.gguf OUT.gguf TYPE`: a model's
 * F32/F16/BF16 weights converted to a quantized type or llama.cpp mix, as
 * llama-quantize does it (see quantize.h). Progress on a terminal, a one-line
 * summary at the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "tools/quantize.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: rackllm quantize [options] IN.gguf OUT.gguf TYPE\n"
            "\n"
            "Converts the weight matrices of IN (F32, F16 or BF16) to TYPE and writes OUT.\n"
            "Norms and other 1-D tensors keep their type. The choice of type per tensor\n"
            "follows llama.cpp's llama-quantize (e.g. output.weight gets Q6_K), and so do\n"
            "the bytes: on the same input the result is the file llama-quantize writes.\n"
            "\n"
            "  -t, --threads N   quantize rows on N threads (default 1)\n"
            "      --pure        every weight matrix in TYPE itself: no Q6_K output, no mix rules\n"
            "  -h, --help        this help\n"
            "\nTYPE:\n");
    for (size_t i = 0; quantize_mix_at(i); i++)
        fprintf(out, "  %-8s %s\n", quantize_mix_at(i)->name, quantize_mix_at(i)->about);
}

int cmd_quantize(int argc, char **argv) {
    quantize_opts o = {.threads = 1, .progress = true, .log = stderr};
    const cli_flag flags[] = {
        FLAG_INT("threads", 't', &o.threads, 1, 1024),
        FLAG_BOOL("pure", 0, &o.pure),
    };
    rl_err err = {0};
    int first, rc = cli_parse(argc, argv, flags, (int)RL_ARRAY_LEN(flags), usage, &first, &err);
    if (rc) return rc == CLI_HELP ? 0 : cli_fail(&err);
    if (argc - first != 3) return cli_usage_error("expected IN.gguf OUT.gguf TYPE (see rackllm quantize --help)");
    const char *in = argv[first], *out = argv[first + 1], *type = argv[first + 2];
    const quantize_mix *mix = quantize_mix_find(type);
    if (!mix) {
        char names[256] = "";
        for (size_t i = 0; quantize_mix_at(i); i++) {
            size_t n = strlen(names);
            snprintf(names + n, sizeof names - n, " %s", quantize_mix_at(i)->name);
        }
        return cli_usage_error("unknown TYPE '%s'; one of:%s", type, names);
    }
    quantize_stats st;
    double t0 = rl_now();
    if (quantize_file(in, out, mix, &o, &st, &err) != 0) return cli_fail(&err);
    fprintf(stderr, "rackllm quantize: wrote %s (%s): %llu tensors, %llu converted; %.2f MiB -> %.2f MiB (%.2f bits/weight) in %.1fs\n",
            out, mix->name, (unsigned long long)st.n_tensors, (unsigned long long)st.n_converted,
            (double)st.bytes_in / 1048576.0, (double)st.bytes_out / 1048576.0,
            st.n_weights ? (double)st.bytes_out * 8.0 / (double)st.n_weights : 0.0, rl_now() - t0);
    return 0;
}
