/*
 * cmd_quantize.c — `rackllm quantize IN.gguf OUT.gguf TYPE`: a model's
 * F32/F16/BF16 weights converted to a quantized type or llama.cpp mix, as
 * llama-quantize does it (see quantize.h). Progress on a terminal, a one-line
 * summary at the end.
 */
#include <getopt.h>
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

static int bad_usage(const char *msg, const char *arg) {
    fprintf(stderr, "rackllm: %s%s\n", msg, arg ? arg : "");
    fprintf(stderr, "usage: rackllm quantize [options] IN.gguf OUT.gguf TYPE  (--help for more)\n");
    return 2;
}

int cmd_quantize(int argc, char **argv) {
    enum { O_PURE = 256 };
    static const struct option longs[] = {
        {"threads", required_argument, 0, 't'},
        {"pure", no_argument, 0, O_PURE},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    quantize_opts o = {.threads = 1, .progress = true, .log = stderr};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "t:h", longs, NULL)) != -1) {
        switch (c) {
        case 't': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*optarg == 0 || *end != 0 || n < 1 || n > 1024) return bad_usage("--threads wants 1 to 1024, not ", optarg);
            o.threads = (int)n;
            break;
        }
        case O_PURE: o.pure = true; break;
        case 'h': usage(stdout); return 0;
        default: return bad_usage("unknown option", NULL);
        }
    }
    if (argc - optind != 3) return bad_usage("expected IN.gguf OUT.gguf TYPE", NULL);
    const char *in = argv[optind], *out = argv[optind + 1], *type = argv[optind + 2];
    const quantize_mix *mix = quantize_mix_find(type);
    if (!mix) {
        fprintf(stderr, "rackllm: unknown TYPE '%s'; one of:", type);
        for (size_t i = 0; quantize_mix_at(i); i++) fprintf(stderr, " %s", quantize_mix_at(i)->name);
        fputc('\n', stderr);
        return 2;
    }
    rl_err err = {0};
    quantize_stats st;
    double t0 = rl_now();
    if (quantize_file(in, out, mix, &o, &st, &err) != 0) return cli_fail(&err);
    fprintf(stderr, "rackllm: wrote %s (%s): %llu tensors, %llu converted; %.2f MiB -> %.2f MiB (%.2f bits/weight) in %.1fs\n",
            out, mix->name, (unsigned long long)st.n_tensors, (unsigned long long)st.n_converted,
            (double)st.bytes_in / 1048576.0, (double)st.bytes_out / 1048576.0,
            st.n_weights ? (double)st.bytes_out * 8.0 / (double)st.n_weights : 0.0, rl_now() - t0);
    return 0;
}
