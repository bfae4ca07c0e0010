/*
 * cmd_bench.c — `rackllm bench`: measure this machine with a model file or
 * a synthetic model of a real shape built in memory (nothing written), print
 * a table, and optionally write the JSON the planner reads and an SVG of the
 * session sweep. The measuring is bench.c's; this file is flags and output.
 */
#include <getopt.h>
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

static bool parse_int(const char *s, long lo, long hi, int *out) {
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (!s[0] || *end || v < lo || v > hi) return false;
    *out = (int)v;
    return true;
}

static int bad(const char *what, const char *arg) {
    fprintf(stderr, "rackllm: bench: invalid %s '%s'\n", what, arg);
    return 2;
}

/* Returns -1 to go on, else an exit code. */
static int parse(int argc, char **argv, bench_cli *c) {
    enum { O_LAYERS = 256, O_SEED, O_FLOOR, O_PROMPT, O_GEN, O_SESSIONS, O_PARTS, O_MAXS, O_MINS, O_SWEEP_REPEAT, O_SWEEP_ONLY, O_NO_SWEEP,
           O_QUICK, O_JSON, O_SVG };
    static const struct option longs[] = {
        {"model", required_argument, 0, 'm'},       {"shape", required_argument, 0, 's'},
        {"type", required_argument, 0, 'T'},        {"layers", required_argument, 0, O_LAYERS},
        {"seed", required_argument, 0, O_SEED},     {"threads", required_argument, 0, 't'},
        {"ctx", required_argument, 0, 'c'},         {"pp", required_argument, 0, 'p'},
        {"tg", required_argument, 0, 'n'},          {"repeat", required_argument, 0, 'r'},
        {"floor", required_argument, 0, O_FLOOR},   {"prompt", required_argument, 0, O_PROMPT},
        {"gen", required_argument, 0, O_GEN},       {"sessions", required_argument, 0, O_SESSIONS},
        {"partitions", required_argument, 0, O_PARTS}, {"max-sessions", required_argument, 0, O_MAXS},
        {"min-sessions", required_argument, 0, O_MINS}, {"sweep-repeat", required_argument, 0, O_SWEEP_REPEAT},
        {"sweep-only", no_argument, 0, O_SWEEP_ONLY}, {"no-sweep", no_argument, 0, O_NO_SWEEP},
        {"quick", no_argument, 0, O_QUICK},         {"json", required_argument, 0, O_JSON},
        {"svg", required_argument, 0, O_SVG},       {"quiet", no_argument, 0, 'q'},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0},
    };
    memset(c, 0, sizeof *c);
    c->type = "q4_0";
    c->seed = 1;
    c->threads = c->ctx = c->tg = c->repeat = c->prompt = c->gen = c->sweep_repeat = c->max_sessions = c->min_sessions = -1;
    c->floor_tok_s = -1;
    int o, v;
    optind = 1;
    while ((o = getopt_long(argc, argv, "m:s:T:t:c:p:n:r:qh", longs, NULL)) != -1) {
        switch (o) {
        case 'm': c->model_path = optarg; break;
        case 's': c->shape = optarg; break;
        case 'T': c->type = optarg; break;
        case O_LAYERS:
            if (!parse_int(optarg, 1, 100000, &v)) return bad("--layers", optarg);
            c->layers = (uint32_t)v;
            break;
        case O_SEED: {
            char *end = NULL;
            c->seed = strtoull(optarg, &end, 10);
            if (!optarg[0] || *end || optarg[0] == '-') return bad("--seed", optarg);
            break;
        }
        case 't': if (!parse_int(optarg, 1, 1024, &c->threads)) return bad("--threads", optarg); break;
        case 'c': if (!parse_int(optarg, 1, 1 << 20, &c->ctx)) return bad("--ctx", optarg); break;
        case 'n': if (!parse_int(optarg, 0, 1 << 16, &c->tg)) return bad("--tg", optarg); break;
        case 'r': if (!parse_int(optarg, 1, BENCH_MAX_RUNS, &c->repeat)) return bad("--repeat", optarg); break;
        case O_PROMPT: if (!parse_int(optarg, 1, 1 << 16, &c->prompt)) return bad("--prompt", optarg); break;
        case O_GEN: if (!parse_int(optarg, 2, 1 << 16, &c->gen)) return bad("--gen", optarg); break;
        case O_SWEEP_REPEAT:
            if (!parse_int(optarg, 1, BENCH_MAX_RUNS, &c->sweep_repeat)) return bad("--sweep-repeat", optarg);
            break;
        case O_MAXS:
            if (!parse_int(optarg, 1, BENCH_MAX_SESSIONS, &c->max_sessions)) return bad("--max-sessions", optarg);
            break;
        case O_MINS:
            if (!parse_int(optarg, 1, BENCH_MAX_SESSIONS, &c->min_sessions)) return bad("--min-sessions", optarg);
            break;
        case O_FLOOR: {
            char *end = NULL;
            c->floor_tok_s = strtod(optarg, &end);
            if (!optarg[0] || *end || !(c->floor_tok_s > 0) || c->floor_tok_s > 1e9) return bad("--floor", optarg);
            break;
        }
        case 'p':
            if (bench_parse_list(optarg, 1, 1 << 16, c->pp, BENCH_MAX_LIST, &c->n_pp)) return bad("--pp list", optarg);
            break;
        case O_SESSIONS:
            if (bench_parse_list(optarg, 1, BENCH_MAX_SESSIONS, c->sessions, BENCH_MAX_LIST, &c->n_sessions))
                return bad("--sessions list", optarg);
            break;
        case O_PARTS:
            if (strcmp(optarg, "0") == 0) {
                c->no_parts = true;
            } else if (bench_parse_list(optarg, 1, 1024, c->parts, BENCH_MAX_LIST, &c->n_parts)) {
                return bad("--partitions list", optarg);
            }
            break;
        case O_SWEEP_ONLY: c->sweep_only = true; break;
        case O_NO_SWEEP: c->no_sweep = true; break;
        case O_QUICK: c->quick = true; break;
        case O_JSON: c->json = optarg; break;
        case O_SVG: c->svg = optarg; break;
        case 'q': c->quiet = true; break;
        case 'h': usage(stdout); return 0;
        default: fprintf(stderr, "usage: rackllm bench (-m FILE | --shape NAME) [options]  (--help for more)\n"); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rackllm: bench: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!!c->model_path == !!c->shape) {
        fprintf(stderr, "rackllm: bench: give a model, either -m FILE or --shape NAME\n");
        return 2;
    }
    if (c->sweep_only && c->no_sweep) {
        fprintf(stderr, "rackllm: bench: --sweep-only and --no-sweep exclude each other\n");
        return 2;
    }
    return -1;
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
    int rc = parse(argc, argv, &c);
    if (rc >= 0) return rc;
    bench_params p = make_params(&c);
    rl_err err = {0};
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
