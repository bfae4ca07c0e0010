/*
 * cmd_eval.c — `rackllm eval -m M.gguf --text FILE`: the model's mean
 * negative log-likelihood per token and perplexity on a text, scored in
 * windows the way llama-perplexity scores them (src/train/eval.h), so the
 * two compare on the same file. One line, or --json.
 */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "train/eval.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: rackllm eval -m M.gguf --text FILE [options]\n"
            "\n"
            "Mean negative log-likelihood (nats/token) and perplexity of the model on FILE, as\n"
            "llama-perplexity computes them: the text tokenized once (BOS first), windows of\n"
            "--ctx tokens each starting with BOS, the second half of each window scored.\n"
            "\n"
            "  -m, --model FILE   the model (GGUF)\n"
            "      --text FILE    UTF-8 text (at least two windows of tokens)\n"
            "  -c, --ctx N        window in tokens (default 512, llama-perplexity's)\n"
            "      --chunks N     score only the first N windows\n"
            "      --seqs N       windows run at once (default 8)\n"
            "  -t, --threads N    threads (default: all CPUs)\n"
            "      --json         one JSON object on stdout instead of the line\n"
            "  -h, --help         this help\n");
}

static volatile int stop_flag;
static void on_interrupt(int sig) {
    (void)sig;
    stop_flag = 1;
    signal(SIGINT, SIG_DFL);
}

int cmd_eval(int argc, char **argv) {
    const char *model_path = NULL, *text = NULL;
    bool json = false;
    eval_params p = eval_default_params();
    const cli_flag flags[] = {
        FLAG_STR("model", 'm', &model_path), FLAG_STR("text", 0, &text), FLAG_INT("ctx", 'c', &p.n_ctx, 4, 1 << 20),
        FLAG_INT("chunks", 0, &p.max_chunks, 1, 1 << 30), FLAG_INT("seqs", 0, &p.max_seqs, 1, 4096),
        FLAG_INT("threads", 't', &p.n_threads, 1, 1024), FLAG_BOOL("json", 0, &json),
    };
    rl_err err = {0};
    int first, rc = cli_parse(argc, argv, flags, (int)RL_ARRAY_LEN(flags), usage, &first, &err);
    if (rc) return rc == CLI_HELP ? 0 : cli_fail(&err);
    if (first != argc) return cli_usage_error("unexpected argument '%s'", argv[first]);
    if (!model_path || !text) return cli_usage_error("-m MODEL and --text FILE are required (see rackllm eval --help)");
    model_load_params mp = {.progress = true};
    model *m = model_load(model_path, &mp, &err);
    if (!m) return cli_fail(&err);
    p.progress = true;
    p.stop = &stop_flag;
    signal(SIGINT, on_interrupt);
    eval_result r;
    rc = eval_file(m, text, &p, &r, &err);
    signal(SIGINT, SIG_DFL);
    model_free(m);
    if (rc) return cli_fail(&err);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "model", model_path);
        cJSON_AddStringToObject(o, "text", text);
        double nums[] = {p.n_ctx, (double)r.n_tokens, r.n_chunks, (double)r.n_scored, r.nll, r.nll_stderr, r.ppl,
                         r.ppl_stderr, r.seconds};
        static const char *const keys[] = {"n_ctx", "tokens", "chunks", "scored", "nll", "nll_stderr", "ppl",
                                           "ppl_stderr", "seconds"};
        for (size_t i = 0; i < RL_ARRAY_LEN(keys); i++) cJSON_AddNumberToObject(o, keys[i], nums[i]);
        cJSON_AddBoolToObject(o, "stopped", r.stopped);
        char *s = cJSON_Print(o);
        if (s) puts(s);
        free(s);
        cJSON_Delete(o);
    }
    else
        printf("%s: %.4f ± %.4f nats/token, perplexity %.4f ± %.4f, %lld tokens scored in %d windows of %d%s\n",
               model_path, r.nll, r.nll_stderr, r.ppl, r.ppl_stderr, (long long)r.n_scored, r.n_chunks, p.n_ctx,
               r.stopped ? " (stopped early)" : "");
    return r.stopped ? 130 : 0;
}
