/*
 * cmd_bench.c — `rackllm bench`: measure this machine with a model file or
 * a synthetic model of a real shape built in memory (nothing written), print
 * a table, and optionally write the JSON the planner reads and an SVG of the
 * session sweep. The measuring is bench.c's; this file is flags and output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "bench/benchsvg.h"
#include "commands.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "model/shape.h"
#include "tools/synth.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: rackllm bench (-m FILE | --shape NAME [--type TYPE]) [options]\n"
            "\n"
            "Measures prefill and decode speed, this machine's memory bandwidth and the roofline\n"
            "it implies, and the session sweep: how many sessions decoding together (batched in\n"
            "one engine, or one per core partition) each keep --floor tok/s.\n"
            "\n"
            "model:\n"
            "  -m, --model FILE      a GGUF model\n"
            "  -s, --shape NAME      a synthetic model of this shape, built in memory\n"
            "                        (e.g. llama3.2-1b; list: `rackllm plan --list`)\n"
            "  -T, --type TYPE       its weight type or mix (default q4_0; see `rackllm synth --help`)\n"
            "      --layers N        only its first N layers (small test models)\n"
            "      --seed S          its weights' seed (default 1)\n"
            "measurements:\n"
            "  -t, --threads N       threads (default: every CPU)\n"
            "  -c, --ctx N           KV cache per sequence (default: what the tests need)\n"
            "  -p, --pp LIST         prefill tests, prompt lengths (default 128,512)\n"
            "  -n, --tg N            decode test, tokens generated (default 128; 0: none)\n"
            "  -r, --repeat N        runs of each prefill/decode test (default 3; median reported)\n"
            "      --floor F         tok/s every session must keep (default 10)\n"
            "      --prompt N        sweep: prompt tokens per session (default 128)\n"
            "      --gen N           sweep: tokens generated per session (default 64)\n"
            "      --sweep-repeat N  sweep: N passes over its points (each a fresh prefill and\n"
            "                        generation, backwards and forwards in turn); each session's\n"
            "                        speed is its median (default 1)\n"
            "      --sessions LIST   sweep: batched session counts (default 1,2,4,... until\n"
            "                        clearly below the floor, then bisection)\n"
            "      --partitions LIST sweep: partition counts (default 1,2,4,... up to the threads;\n"
            "                        0: no partitioned sweep)\n"
            "      --max-sessions N  cap of the automatic batched sweep (default 256)\n"
            "      --min-sessions N  ... which always goes this far, even below the floor, so that\n"
            "                        its largest batch shows the compute limit (default 8)\n"
            "      --sweep-only      only bandwidth and the sweep (what `plan --verify` needs)\n"
            "      --no-sweep        only bandwidth, prefill and decode\n"
            "      --quick           a short run for tests and CI (rough numbers)\n"
            "output:\n"
            "      --json FILE       all figures as JSON (docs/bench-json.md)\n"
            "      --svg FILE        the sweep as a chart\n"
            "  -q, --quiet           no progress lines on stderr\n"
            "  -h, --help            this help\n");
}

typedef struct bench_cli {
    const char *model_path, *shape, *type, *json, *svg;
    uint32_t layers;
    uint64_t seed;
    bool quick, sweep_only, no_sweep, no_parts, quiet;
    /* flags given explicitly override --quick's values */
    int threads, ctx, tg, repeat, prompt, gen, sweep_repeat, max_sessions, min_sessions;
    double floor_tok_s;
    int pp[BENCH_MAX_LIST], n_pp, sessions[BENCH_MAX_LIST], n_sessions, parts[BENCH_MAX_LIST], n_parts;
} bench_cli;

/* --pp, --sessions: "1,2,4" (bench_parse_list); dest is the list's struct. */
typedef struct int_list {
    int *v, *n;
    int hi;
    const char *flag;
} int_list;

static int read_list(void *dest, const char *value, rl_err *err) {
    const int_list *l = dest;
    if (bench_parse_list(value, 1, l->hi, l->v, BENCH_MAX_LIST, l->n))
        return rl_fail(err, RL_ERR_INPUT, "--%s '%s': expected up to %d whole numbers from 1 to %d, comma-separated",
                       l->flag, value, BENCH_MAX_LIST, l->hi);
    return 0;
}

/* --partitions: a list, or 0 for no partitioned sweep. */
static int read_partitions(void *dest, const char *value, rl_err *err) {
    bench_cli *c = dest;
    if (strcmp(value, "0") == 0) {
        c->no_parts = true;
        return 0;
    }
    int_list l = {c->parts, &c->n_parts, 1024, "partitions"};
    return read_list(&l, value, err);
}

/* 0: run; CLI_HELP; -1 with err. */
static int parse(int argc, char **argv, bench_cli *c, rl_err *err) {
    memset(c, 0, sizeof *c);
    c->type = "q4_0";
    c->seed = 1;
    c->threads = c->ctx = c->tg = c->repeat = c->prompt = c->gen = c->sweep_repeat = c->max_sessions = c->min_sessions = -1;
    c->floor_tok_s = -1;
    int layers = 0;
    int_list pp = {c->pp, &c->n_pp, 1 << 16, "pp"}, sessions = {c->sessions, &c->n_sessions, BENCH_MAX_SESSIONS, "sessions"};
    const cli_flag flags[] = {
        FLAG_STR("model", 'm', &c->model_path),
        FLAG_STR("shape", 's', &c->shape),
        FLAG_STR("type", 'T', &c->type),
        FLAG_INT("layers", 0, &layers, 1, 100000),
        FLAG_U64("seed", 0, &c->seed, 0, 0),
        FLAG_INT("threads", 't', &c->threads, 1, 1024),
        FLAG_INT("ctx", 'c', &c->ctx, 1, 1 << 20),
        FLAG_FN("pp", 'p', &pp, read_list),
        FLAG_INT("tg", 'n', &c->tg, 0, 1 << 16),
        FLAG_INT("repeat", 'r', &c->repeat, 1, BENCH_MAX_RUNS),
        FLAG_NUM("floor", 0, &c->floor_tok_s, 1e-6, 1e9),
        FLAG_INT("prompt", 0, &c->prompt, 1, 1 << 16),
        FLAG_INT("gen", 0, &c->gen, 2, 1 << 16),
        FLAG_FN("sessions", 0, &sessions, read_list),
        FLAG_FN("partitions", 0, c, read_partitions),
        FLAG_INT("max-sessions", 0, &c->max_sessions, 1, BENCH_MAX_SESSIONS),
        FLAG_INT("min-sessions", 0, &c->min_sessions, 1, BENCH_MAX_SESSIONS),
        FLAG_INT("sweep-repeat", 0, &c->sweep_repeat, 1, BENCH_MAX_RUNS),
        FLAG_BOOL("sweep-only", 0, &c->sweep_only),
        FLAG_BOOL("no-sweep", 0, &c->no_sweep),
        FLAG_BOOL("quick", 0, &c->quick),
        FLAG_STR("json", 0, &c->json),
        FLAG_STR("svg", 0, &c->svg),
        FLAG_BOOL("quiet", 'q', &c->quiet),
    };
    int first, rc = cli_parse(argc, argv, flags, (int)RL_ARRAY_LEN(flags), usage, &first, err);
    c->layers = (uint32_t)layers;
    if (rc) return rc;
    if (first < argc) return rl_fail(err, RL_ERR_INPUT, "unexpected argument '%s'", argv[first]);
    if (!!c->model_path == !!c->shape) return rl_fail(err, RL_ERR_INPUT, "give a model, either -m FILE or --shape NAME");
    if (c->sweep_only && c->no_sweep) return rl_fail(err, RL_ERR_INPUT, "--sweep-only and --no-sweep exclude each other");
    return 0;
}

static bench_params make_params(const bench_cli *c) {
    bench_params p = bench_default_params();
    if (c->quick) bench_make_quick(&p);
    if (c->threads > 0) p.n_threads = c->threads;
    if (c->ctx > 0) p.n_ctx = c->ctx;
    if (c->tg >= 0) p.tg = c->tg;
    if (c->repeat > 0) p.repeat = c->repeat;
    if (c->prompt > 0) p.prompt_len = c->prompt;
    if (c->gen > 0) p.gen_len = c->gen;
    if (c->sweep_repeat > 0) p.sweep_repeat = c->sweep_repeat;
    if (c->max_sessions > 0) p.max_sessions = c->max_sessions;
    if (c->min_sessions > 0) p.min_sessions = c->min_sessions;
    if (c->floor_tok_s > 0) p.floor_tok_s = c->floor_tok_s;
    if (c->n_pp > 0) {
        memcpy(p.pp, c->pp, sizeof p.pp);
        p.n_pp = c->n_pp;
    }
    memcpy(p.sessions, c->sessions, sizeof p.sessions);
    p.n_sessions = c->n_sessions;
    memcpy(p.partitions, c->parts, sizeof p.partitions);
    p.n_partitions = c->n_parts;
    p.partitioned = !c->no_parts;
    p.single = !c->sweep_only;
    p.sweep = !c->no_sweep;
    p.progress = true;
    p.log = c->quiet ? NULL : stderr;
    return p;
}

/* The model: loaded from a file, or synthesised in memory (*buf owns the
 * bytes, freed after the model). */
static model *get_model(const bench_cli *c, int threads, bench_params *p, void **buf, rl_err *err) {
    *buf = NULL;
    if (c->model_path) {
        model_load_params lp = {.progress = true, .prefault = true};
        return model_load(c->model_path, &lp, err);
    }
    synth_params sp = {.type = c->type, .seed = c->seed, .layers = c->layers, .n_threads = threads, .progress = true};
    if (shape_catalog_find(c->shape, &sp.shape, err)) return NULL;
    /* a cut model is no longer the catalog's shape (the planner must not take it for one) */
    bool whole = c->layers == 0 || c->layers >= sp.shape.n_layer;
    p->shape_id = whole ? c->shape : "";
    p->type_name = c->type;
    uint64_t size = 0;
    if (synth_build(&sp, buf, &size, err)) return NULL;
    gguf_file *f = gguf_open_memory(*buf, size, c->shape, err);
    model *m = f ? model_from_gguf(f, NULL, err) : NULL;
    if (!m) {
        gguf_close(f);
        free(*buf);
        *buf = NULL;
    }
    return m;
}

int cmd_bench(int argc, char **argv) {
    bench_cli c;
    rl_err err = {0};
    int rc = parse(argc, argv, &c, &err);
    if (rc) return rc == CLI_HELP ? 0 : cli_fail(&err);
    bench_params p = make_params(&c);
    void *buf = NULL;
    model *m = get_model(&c, p.n_threads, &p, &buf, &err);
    if (!m) return cli_fail(&err);
    bench_result r;
    rc = bench_run(m, &p, &r, &err) ? cli_fail(&err) : 0;
    if (rc == 0) {
        bench_print(&r, stdout);
        if (c.json && bench_write_json(&r, c.json, &err)) rc = cli_fail(&err);
        if (rc == 0 && c.svg && benchsvg_write_file(&r, c.svg, &err)) rc = cli_fail(&err);
    }
    bench_result_free(&r);
    model_free(m);
    free(buf);
    return rc;
}
