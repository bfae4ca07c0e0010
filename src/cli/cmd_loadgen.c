/*
 * cmd_loadgen.c — `rackllm loadgen`: N concurrent streaming chat sessions
 * against an OpenAI-compatible server on this machine, measured from the
 * client's side. The load generator is bench/loadgen.c; this file reads
 * the flags and prints its figures as a table or one JSON object.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/loadgen.h"
#include "commands.h"

typedef struct lg_opts {
    loadgen_params p;
    bool json;
} lg_opts;

static void usage(FILE *out) {
    fprintf(out,
            "usage: rackllm loadgen --url URL --sessions N --duration S [options]\n"
            "\n"
            "Opens N concurrent streaming chat sessions against an OpenAI-compatible server on\n"
            "this machine (loopback addresses only) and reports, from the client's side,\n"
            "per-session tok/s, time to first token, inter-token latency, 429s and errors.\n"
            "\n"
            "  --url URL           the server, e.g. http://127.0.0.1:8080\n"
            "  --sessions N        concurrent sessions (1..4096)\n"
            "  --duration S        seconds to keep starting requests (then a grace period)\n"
            "  --prompt-len L      prompt length in words, about as many tokens (default 64)\n"
            "  --max-tokens M      tokens per answer (default 128)\n"
            "  --max-requests R    stop after R requests in all (default 100000)\n"
            "  --model NAME        model to ask for (default: the first of GET /v1/models)\n"
            "  --api-key KEY       sent as 'Authorization: Bearer KEY'\n"
            "  --allow-eos         let answers end early at end-of-text (default: ignore_eos, so\n"
            "                      every answer is M tokens long)\n"
            "  --completions       use /v1/completions with the prompt as plain text instead of\n"
            "                      chat (for servers whose chat parsing fails on a synthetic\n"
            "                      model's random text, as llama-server's does)\n"
            "  --turns T           requests per conversation (default 1): each sends the whole\n"
            "                      chat so far and a new message, as a chat client does; time to\n"
            "                      first token is reported per turn too\n"
            "  --system-len W      a system prompt of W words that every conversation shares\n"
            "  --json              one JSON object instead of the table\n"
            "  -h, --help          this help\n");
}

/* 0: run; CLI_HELP; -1 with err. */
static int parse(int argc, char **argv, lg_opts *o, rl_err *err) {
    memset(o, 0, sizeof *o);
    o->p = loadgen_default_params();
    loadgen_params *p = &o->p;
    const cli_flag flags[] = {
        FLAG_STR("url", 0, &p->url),
        FLAG_INT("sessions", 0, &p->sessions, 1, 4096),
        FLAG_NUM("duration", 0, &p->duration, 0.1, 86400),
        FLAG_INT("prompt-len", 0, &p->prompt_len, 1, 100000),
        FLAG_INT("max-tokens", 0, &p->max_tokens, 1, 10000000),
        FLAG_INT("max-requests", 0, &p->max_requests, 1, 10000000),
        FLAG_STR("model", 0, &p->model),
        FLAG_STR("api-key", 0, &p->api_key),
        FLAG_BOOL("allow-eos", 0, &p->allow_eos),
        FLAG_BOOL("completions", 0, &p->completions),
        FLAG_INT("turns", 0, &p->turns, 1, LOADGEN_MAX_TURNS),
        FLAG_INT("system-len", 0, &p->system_len, 0, 100000),
        FLAG_BOOL("json", 0, &o->json),
    };
    int first, rc = cli_parse(argc, argv, flags, (int)RL_ARRAY_LEN(flags), usage, &first, err);
    if (rc) return rc;
    if (first < argc) return rl_fail(err, RL_ERR_INPUT, "unexpected argument '%s'", argv[first]);
    if (!p->url || !p->sessions || !p->duration)
        return rl_fail(err, RL_ERR_INPUT, "--url, --sessions and --duration are required");
    if (p->completions && (p->turns > 1 || p->system_len > 0))
        return rl_fail(err, RL_ERR_INPUT, "--turns and --system-len are for chat requests, not --completions");
    return 0;
}

/* ---- report ---- */

static void print_json(const loadgen_params *o, const loadgen_result *r) {
    const loadgen_samples *tps = &r->tps, *ttft = &r->ttft, *itl = &r->itl;
    printf("{\"url\":\"%s\",\"model\":\"%s\",\"sessions\":%d,\"duration_s\":%g,\"prompt_words\":%d,\"max_tokens\":%d,"
           "\"wall_s\":%.3f,\"requests\":{\"completed\":%d,\"rejected_429\":%d,\"errors\":%d,\"cut\":%d},"
           "\"tokens\":%ld,\"session_tps\":{\"min\":%.3f,\"p50\":%.3f,\"mean\":%.3f,\"max\":%.3f},"
           "\"ttft_s\":{\"p50\":%.4f,\"p99\":%.4f},\"itl_s\":{\"p50\":%.4f,\"p99\":%.4f},",
           r->base, r->model, o->sessions, o->duration, o->prompt_len, o->max_tokens, r->wall, r->completed,
           r->rejected, r->errors, r->cut, r->tokens, tps->n ? tps->v[0] : 0, loadgen_percentile(tps, 50),
           loadgen_mean(tps), tps->n ? tps->v[tps->n - 1] : 0, loadgen_percentile(ttft, 50),
           loadgen_percentile(ttft, 99), loadgen_percentile(itl, 50), loadgen_percentile(itl, 99));
    printf("\"prompt_tokens\":%ld,\"cached_tokens\":%ld,\"turns\":%d,\"ttft_by_turn_s\":[", r->prompt_tokens,
           r->cached_tokens, o->turns > 0 ? o->turns : 1);
    for (int t = 0; t < (o->turns > 0 ? o->turns : 1); t++)
        printf("%s{\"n\":%zu,\"p50\":%.4f,\"p99\":%.4f}", t ? "," : "", r->ttft_turn[t].n,
               loadgen_percentile(&r->ttft_turn[t], 50), loadgen_percentile(&r->ttft_turn[t], 99));
    printf("],\"first_error\":");
    cJSON *e = r->first_error[0] ? cJSON_CreateString(r->first_error) : cJSON_CreateNull();
    char *es = cJSON_PrintUnformatted(e);
    printf("%s}\n", es ? es : "null");
    free(es);
    cJSON_Delete(e);
}

static void print_table(const loadgen_params *o, const loadgen_result *r) {
    const loadgen_samples *tps = &r->tps, *ttft = &r->ttft, *itl = &r->itl;
    printf("loadgen: %d %s session%s for %g s against %s (model %s, ~%d-word prompts, %d tokens max)\n",
           o->sessions, o->completions ? "completion" : "chat", o->sessions == 1 ? "" : "s", o->duration, r->base,
           r->model, o->prompt_len, o->max_tokens);
    printf("requests:             %d completed, %d rejected (429), %d failed, %d cut at the end (%.1f s)\n",
           r->completed, r->rejected, r->errors, r->cut, r->wall);
    printf("per-session tok/s:    min %.2f  p50 %.2f  mean %.2f\n", tps->n ? tps->v[0] : 0,
           loadgen_percentile(tps, 50), loadgen_mean(tps));
    printf("time to first token:  p50 %.3f s  p99 %.3f s\n", loadgen_percentile(ttft, 50),
           loadgen_percentile(ttft, 99));
    int turns = o->turns > 0 ? o->turns : 1;
    if (turns > 1)
        for (int t = 0; t < turns; t++)
            printf("  turn %2d:            p50 %.3f s  p99 %.3f s  (%zu answers)\n", t + 1,
                   loadgen_percentile(&r->ttft_turn[t], 50), loadgen_percentile(&r->ttft_turn[t], 99),
                   r->ttft_turn[t].n);
    printf("inter-token latency:  p50 %.4f s  p99 %.4f s\n", loadgen_percentile(itl, 50), loadgen_percentile(itl, 99));
    printf("tokens received:      %ld (%.1f tok/s in all)\n", r->tokens, r->wall > 0 ? r->tokens / r->wall : 0);
    printf("prompt tokens:        %ld, %ld of them from the server's prefix cache (%.0f%%)\n", r->prompt_tokens,
           r->cached_tokens, r->prompt_tokens > 0 ? 100.0 * r->cached_tokens / r->prompt_tokens : 0);
    if (r->first_error[0]) printf("first error:          %s\n", r->first_error);
}

int cmd_loadgen(int argc, char **argv) {
    lg_opts o;
    rl_err err = {0};
    int rc = parse(argc, argv, &o, &err);
    if (rc) return rc == CLI_HELP ? 0 : cli_fail(&err);
    loadgen_result r;
    if (loadgen_run(&o.p, &r, &err)) {
        loadgen_result_free(&r);
        return cli_fail(&err);
    }
    if (o.json) print_json(&o.p, &r);
    else print_table(&o.p, &r);
    rc = r.completed > 0 || r.rejected > 0 ? 0 : 1;
    loadgen_result_free(&r);
    return rc;
}
