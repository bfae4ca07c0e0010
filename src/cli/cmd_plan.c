/*
 * cmd_plan.c — `rackllm plan`: how many sessions at the floor speed fit a
 * server and a rack of a hardware choice, what each costs, and how wrong
 * the prediction is on this machine.
 *
 * The arithmetic is the plan module's (plan.h; calibrate.h for a bench
 * JSON as calibration and for verification); this file reads the flags,
 * finds the model (catalog id or GGUF file) and the hardware (catalog or
 * `this`), and prints tables, JSON or an SVG chart. With --verify it runs
 * the bench as a child process; with --verify-from it compares with a
 * measurement that already exists.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/types.h"
#include "commands.h"
#include "gguf/gguf.h"
#include "model/shape.h"
#include "plan/basis.h"
#include "plan/benchjson.h"
#include "plan/calibrate.h"
#include "plan/hwcatalog.h"
#include "plan/plan.h"
#include "plan/plansvg.h"
#include "tools/quantize.h"

extern char **environ;

/* The model each size class is drawn with in the matrix. */
static const char *const CLASS_MODELS[4] = {"llama3.2-1b", "llama3.1-8b", "llama3.3-70b", "llama3.1-405b"};

typedef struct plan_cli {
    const char *model, *quant, *hardware, *calibrate, *verify_from, *svg, *software;
    bool model_given, quant_given, list, matrix, json, verify, evidence, ctx_given;
    basis_fits *fits;     /* the published evidence, fitted; NULL if it failed */
    bool rackllm;         /* figures for rackllm (else for llama.cpp) */
    plan_params params;
    bool eff_bw_given, eff_compute_given;
    bench_json calib;     /* --calibrate, when calibrated */
    bool calibrated;
    int verify_repeat;    /* --verify's sweep: passes over its points */
} plan_cli;

static void usage(FILE *out) {
    fputs("usage: rackllm plan --model ID|FILE.gguf --hardware ID [options]\n"
          "       rackllm plan --list | --matrix [--svg FILE]\n"
          "       rackllm plan --hardware this [--calibrate BENCH.json] --verify | --verify-from BENCH.json\n"
          "\n"
          "How many decode sessions at >= the floor speed fit one server and one rack,\n"
          "from data/hardware.json (every figure with its source) and the model's shape.\n"
          "\n"
          "  --list               model and hardware ids, one per line, id first\n"
          "  --model ID|FILE      catalog model (default llama3.2-1b) or a GGUF file\n"
          "  --quant TYPE         weights: Q4_0, Q8_0, F16, Q4_K_M ... (default Q4_0;\n"
          "                       for a GGUF file, default: the file's own tensors)\n"
          "  --hardware ID        catalog hardware, or `this` (this machine, measured)\n"
          "  --floor TOK_S        every session at least this fast (default 10)\n"
          "  --ctx N              tokens of context per session (default 4096)\n"
          "  --kv-bytes B         bytes per KV element (default 2: F16 cache)\n"
          "  --mem-usable F       fraction of memory for weights + KV (default 0.9)\n"
          "  --cores N            plan instances of N cores (a cloud slice of a chip)\n"
          "  --bw-share F         bandwidth share of a socket such a slice gets\n"
          "                       (default: N / cores per socket)\n"
          "  --gpu-batching       GPU headline with batching (default: the seed's one\n"
          "                       session per GPU or MIG slice; both are always shown)\n"
          "  --rack-kw KW         rack power budget (default 12.5)\n"
          "  --rack-u U           rack height (default 42)\n"
          "  --overhead-u U       switch/overhead height (default 2)\n"
          "  --overhead-w W       switch/overhead power (default 300)\n"
          "  --usd-per-kwh USD    electricity price (default 0.10)\n"
          "  --pue F              facility overhead on electricity (default 1.0)\n"
          "  --years Y            server cost amortised over (default 4)\n"
          "  --eff-bw F           fraction of bandwidth the engine reaches (default:\n"
          "                       the catalog's conservative value, or calibrated)\n"
          "  --eff-compute F      fraction of peak compute the engine reaches\n"
          "  --calibrate FILE     take both efficiencies from a `rackllm bench --json` file\n"
          "  --verify             run a quick session sweep here (rackllm bench) of the\n"
          "                       calibrated model (else --model/--quant) and print\n"
          "                       predicted vs measured sessions at the floor\n"
          "  --verify-repeat N    passes of that sweep over its points, each session's\n"
          "                       median counting (default 3: this is a noisy measure)\n"
          "  --verify-from FILE   the same against an existing bench JSON\n"
          "  --software S         rackllm (default: the evidence's llama.cpp figures x\n"
          "                       rackllm's ratio measured here) or llama.cpp (as published)\n"
          "  --prompt P --answer A  a chat workload: P prompt tokens, then A answer\n"
          "                       tokens per request; prefill takes its share of every\n"
          "                       step (context then defaults to P + A/2)\n"
          "  --think S            seconds a user reads and types between requests:\n"
          "                       users per rack = sessions x (A/rate + S) / (A/rate)\n"
          "  --evidence           the published measurements, the fit per\n"
          "                       microarchitecture and its leave-one-out error\n"
          "                       (--json: every point; else a markdown table)\n"
          "  --matrix             sessions per rack for every size class x hardware\n"
          "  --json               machine-readable output\n"
          "  --svg FILE           also draw a bar chart (log scale) to FILE\n"
          "  --help               this text\n"
          "\n"
          "See docs/planner.md for the model and docs/bench-json.md for the bench file.\n",
          out);
}

/* ---- flags ---- */

/* 0: run; CLI_HELP; -1 with err. */
static int parse_flags(plan_cli *c, int argc, char **argv, rl_err *err) {
    memset(c, 0, sizeof *c);
    plan_params_default(&c->params);
    c->model = "llama3.2-1b";
    c->quant = "Q4_0";
    c->verify_repeat = 3;
    c->software = "rackllm";
    plan_params *p = &c->params;
    bool gpu_batching = false;
    const cli_flag flags[] = {
        FLAG_BOOL("list", 0, &c->list),
        {"model", 0, CLI_STR, &c->model, 0, 0, NULL, &c->model_given},
        {"quant", 0, CLI_STR, &c->quant, 0, 0, NULL, &c->quant_given},
        FLAG_STR("hardware", 0, &c->hardware),
        FLAG_NUM("floor", 0, &p->floor_tok_s, 1e-6, 1e6),
        {"ctx", 0, CLI_DOUBLE, &p->ctx, 1, 1e7, NULL, &c->ctx_given},
        FLAG_STR("software", 0, &c->software),
        FLAG_NUM("prompt", 0, &p->prompt, 1, 1e7),
        FLAG_NUM("answer", 0, &p->answer, 1, 1e7),
        FLAG_NUM("think", 0, &p->think_s, 0, 1e6),
        FLAG_BOOL("evidence", 0, &c->evidence),
        FLAG_NUM("kv-bytes", 0, &p->kv_elem_bytes, 0, 8),
        FLAG_NUM("mem-usable", 0, &p->mem_usable, 0.01, 1),
        FLAG_INT("cores", 0, &p->cores, 1, 1 << 20),
        FLAG_NUM("bw-share", 0, &p->bw_share, 1e-6, 64),
        FLAG_BOOL("gpu-batching", 0, &gpu_batching),
        FLAG_NUM("rack-kw", 0, &p->rack_kw, 0.001, 1e4),
        FLAG_NUM("rack-u", 0, &p->rack_u, 1, 1000),
        FLAG_NUM("overhead-u", 0, &p->overhead_u, 0, 1000),
        FLAG_NUM("overhead-w", 0, &p->overhead_w, 0, 1e7),
        FLAG_NUM("usd-per-kwh", 0, &p->usd_per_kwh, 0, 100),
        FLAG_NUM("pue", 0, &p->pue, 1, 10),
        FLAG_NUM("years", 0, &p->years, 0.01, 100),
        {"eff-bw", 0, CLI_DOUBLE, &p->eff_bw, 1e-6, 1, NULL, &c->eff_bw_given},
        {"eff-compute", 0, CLI_DOUBLE, &p->eff_compute, 1e-6, 1, NULL, &c->eff_compute_given},
        FLAG_STR("calibrate", 0, &c->calibrate),
        FLAG_BOOL("verify", 0, &c->verify),
        FLAG_INT("verify-repeat", 0, &c->verify_repeat, 1, 32),
        FLAG_STR("verify-from", 0, &c->verify_from),
        FLAG_BOOL("matrix", 0, &c->matrix),
        FLAG_BOOL("json", 0, &c->json),
        FLAG_STR("svg", 0, &c->svg),
    };
    int first, rc = cli_parse(argc, argv, flags, (int)RL_ARRAY_LEN(flags), usage, &first, err);
    if (gpu_batching) p->gpu_mode = PLAN_GPU_BATCHED;
    if (rc) return rc;
    if (first < argc) return rl_fail(err, RL_ERR_INPUT, "unexpected argument '%s'", argv[first]);
    if (strcmp(c->software, "rackllm") != 0 && strcmp(c->software, "llama.cpp") != 0)
        return rl_fail(err, RL_ERR_INPUT, "--software '%s': rackllm or llama.cpp", c->software);
    c->rackllm = strcmp(c->software, "rackllm") == 0;
    if ((p->prompt > 0) != (p->answer > 0))
        return rl_fail(err, RL_ERR_INPUT, "a chat workload needs both --prompt and --answer");
    if (p->prompt > 0 && !c->ctx_given) p->ctx = p->prompt + p->answer / 2;
    if ((c->verify || c->verify_from) && c->hardware && strcmp(c->hardware, "this") != 0)
        return rl_fail(err, RL_ERR_INPUT, "--verify compares with this machine: use --hardware this or leave it out");
    if (!c->list && !c->matrix && !c->verify && !c->verify_from && !c->evidence && !c->hardware)
        return rl_fail(err, RL_ERR_INPUT, "--hardware ID is required (see --list)");
    return 0;
}

/* ---- the model ---- */

static bool is_file_path(const char *s) {
    size_t n = strlen(s);
    return strchr(s, '/') || (n > 5 && strcasecmp(s + n - 5, ".gguf") == 0);
}

static int model_from_file(const plan_cli *c, plan_model *m, rl_err *err) {
    gguf_file *f = gguf_open(c->model, err);
    if (!f) return -1;
    rl_shape s;
    int rc = shape_from_gguf(f, &s, err);
    uint32_t type = quantize_file_type(f, NULL, 0);
    const char *quant = c->quant_given ? c->quant : rl_type_name(type);
    if (rc == 0) rc = plan_model_from_shape(&s, quant, &c->params, m, err);
    if (rc == 0 && !c->quant_given) {
        /* The file's own tensors say exactly how many bytes the weights are. */
        double bytes = 0;
        for (uint64_t i = 0; i < f->n_tensors; i++) bytes += (double)f->tensors[i].size;
        m->weight_bytes = bytes;
        m->bits_per_weight = m->params ? bytes * 8 / (double)m->params : 0;
        snprintf(m->quant, sizeof m->quant, "file (mostly %s)", rl_type_name(type));
        m->int8_compute = !(type == RL_TYPE_F32 || type == RL_TYPE_F16 || type == RL_TYPE_BF16);
    }
    if (rc == 0) {
        const char *base = strrchr(c->model, '/');
        snprintf(m->id, sizeof m->id, "%s", base ? base + 1 : c->model);
    }
    gguf_close(f);
    return rc;
}

static int load_model(const plan_cli *c, const char *id, plan_model *m, rl_err *err) {
    if (is_file_path(id)) return model_from_file(c, m, err);
    rl_shape s;
    if (shape_catalog_find(id, &s, err)) return -1;
    return plan_model_from_shape(&s, c->quant, &c->params, m, err);
}

/* ---- the hardware, calibration ---- */

static int load_hardware(const plan_cli *c, const char *id, plan_hw *hw, rl_err *err) {
    if (strcmp(id, "this") == 0) return hwcatalog_this(c->calibrated ? c->calib.bandwidth_gbs : 0, hw, err);
    return hwcatalog_find(id, hw, err);
}

/* Reads --calibrate and replaces the efficiency factors not set by flags. */
static int calibrate(plan_cli *c, rl_err *err) {
    if (bench_json_load(c->calibrate, &c->calib, err)) return -1;
    plan_hw self;
    if (hwcatalog_this(c->calib.bandwidth_gbs, &self, err)) return -1;
    if (plan_calibrate_bench(&c->calib, &self, &c->params, err)) return rl_fail_prefix(err, "%s: ", c->calibrate);
    c->calibrated = true;
    return 0;
}

/* What hw's figures rest on (basis.h), its factors written into hw; for a
 * CPU without evidence, the range the other CPUs' fits give for m. */
static int hw_basis(const plan_cli *c, plan_hw *hw, const plan_model *m, plan_basis *b, rl_err *err) {
    bool flags = c->eff_bw_given || c->eff_compute_given;
    basis_apply(c->fits, hw, &c->params, c->rackllm, flags, c->calibrated, b);
    if (b->kind == BASIS_NO_EVIDENCE) return basis_range(c->fits, hw, m, &c->params, c->rackllm, b, err);
    return 0;
}

/* ---- printing helpers ---- */

static void json_num(cJSON *o, const char *key, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

static int print_json(cJSON *root) {
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return 1;
    puts(text);
    free(text);
    return 0;
}

static const char *strategy_label(int s) {
    switch (s) {
    case PLAN_ONE_PER_GPU: return "1/GPU";
    case PLAN_ONE_PER_MIG: return "1/MIG slice";
    default: return "batched";
    }
}

/* "2 x 96 cores" or "4 GPUs" or "MIG slice" for a partition. */
static void part_label(const plan_hw *hw, const plan_part *pt, char *buf, size_t size) {
    if (pt->mig) snprintf(buf, size, "MIG slice");
    else if (hw->kind == PLAN_HW_GPU) snprintf(buf, size, "%d GPU%s", pt->gpus, pt->gpus > 1 ? "s" : "");
    else snprintf(buf, size, "%d core%s", pt->cores, pt->cores > 1 ? "s" : "");
}

/* Where the efficiency factors used for hw come from. */
static const char *efficiency_origin(const plan_cli *c, const plan_hw *hw) {
    if (c->eff_bw_given || c->eff_compute_given) return "set by flags";
    if (hw->fitted) return "fitted to published evidence";
    if (c->calibrated && hw->kind == PLAN_HW_CPU) return "calibrated by the bench JSON";
    return "conservative defaults, not measured";
}

/* ---- one plan ---- */

static void print_model_and_hw(const plan_cli *c, const plan_model *m, const plan_hw *hw, const plan_result *r,
                               const plan_basis *b) {
    printf("model      %s (%s), %s, %.3g B params, %s\n", m->name, m->id, m->quant, m->params / 1e9,
           shape_size_class_label(m->size_class));
    printf("           weights %.3g GB (%.3g bits/weight), KV %.1f kB/token = %.3g GB per session at ctx %.0f,"
           " %.3g GFLOP/token (%.3g of it attention)\n",
           m->weight_bytes / 1e9, m->bits_per_weight, m->kv_bytes_per_token / 1e3,
           m->kv_bytes_per_token * m->ctx / 1e9, m->ctx, m->flops_per_token / 1e9, m->attn_flops_per_token / 1e9);
    printf("hardware   %s (%s)\n", hw->name, hw->id);
    printf("           %d x %d %s, %.4g GB/s, %.4g GiB, %.4g int8 TOPS, %.4g bf16 TFLOPS per %s\n", hw->units,
           hw->cores, hw->kind == PLAN_HW_GPU ? "SMs" : "cores", hw->mem_bw_gbs, hw->mem_gib, hw->int8_tops,
           hw->bf16_tflops, hw->kind == PLAN_HW_GPU ? "card" : "socket");
    printf("           server %.0f W, %gU, $%.0f\n", hw->server_power_w, hw->server_u, hw->server_usd);
    char basis[512];
    basis_describe(c->fits, b, basis, sizeof basis);
    bool cpu = hw->kind == PLAN_HW_CPU;
    printf("efficiency bandwidth %.3g, compute %.3g, per-step arithmetic %.2g sessions' worth, barriers %.3g us per"
           " thread, arithmetic / (1 + %.3g%% x threads)\n", r->eff_bw, r->eff_compute, plan_step_fixed(hw, &c->params),
           cpu ? hw->sync_s * 1e6 : 0, cpu ? 100 * hw->thread_loss : 0);
    printf("rests on   %s (software: %s)\n", basis, c->software);
    if (c->params.prompt > 0)
        printf("workload   chat: prompt %g tokens, answer %g, think %g s; context %.0f\n", c->params.prompt,
               c->params.answer, c->params.think_s, c->params.ctx);
    if (r->slices > 0)
        printf("slicing    %d instances of %d cores per server, each with %.3g of a socket's bandwidth\n",
               r->slices, c->params.cores, r->slice_share);
}

static void print_server(const plan_hw *hw, const plan_params *p, const plan_result *r) {
    printf("\nper server (floor %g tok/s, ctx %.0f)\n", p->floor_tok_s, p->ctx);
    printf("  %-12s %-13s %10s %7s %9s %11s  %s\n", "strategy", "partition", "partitions", "batch", "sessions",
           "tok/s each", "limited by");
    for (int s = 0; s < PLAN_STRATEGIES; s++) {
        if (!r->has[s]) continue;
        const plan_fit *f = &r->fit[s];
        char part[48];
        part_label(hw, &f->part, part, sizeof part);
        printf("  %-12s %-13s %10d %7d %9ld %11.3g  %s%s\n", strategy_label(s), part, f->part.count, f->batch,
               f->sessions, f->tok_s, plan_limit_name(f->limit), s == r->headline ? "   <- headline" : "");
    }
    const plan_fit *h = &r->fit[r->headline];
    if (p->prompt > 0 && h->sessions > 0)
        printf("  chat: new prompts take %.1f%% of each step; %.0f users per server with %g s think time\n",
               100 * h->prefill_share, h->users, p->think_s);
}

static void print_rack(const plan_params *p, const plan_result *r) {
    const plan_rack *k = &r->rack[r->headline];
    printf("\nper rack (%g kW, %gU; switch/overhead %gU, %g W)\n", p->rack_kw, p->rack_u, p->overhead_u,
           p->overhead_w);
    printf("  servers per rack    %d   (power allows %d, space %d: limited by %s)\n", k->servers,
           k->servers_by_power, k->servers_by_space, plan_rack_limit_name(k->limit));
    printf("  sessions per rack   %ld\n", k->sessions);
    if (p->prompt > 0 && p->think_s > 0) printf("  users per rack      %.0f (with think time)\n", k->users);
    for (int s = 0; s < PLAN_STRATEGIES; s++)
        if (r->has[s] && s != r->headline)
            printf("                      %ld with %s\n", r->rack[s].sessions, strategy_label(s));
    printf("  rack power          %.2f kW\n", k->watts / 1000);
    if (k->sessions == 0) {
        printf("  no session reaches %g tok/s here (limited by %s): nothing per session to report\n", p->floor_tok_s,
               plan_limit_name(r->fit[r->headline].limit));
        return;
    }
    printf("  watts per session   %.3g W\n", k->watts_per_session);
    printf("  tokens per second   %.4g\n", k->tok_s);
    printf("  joules per token    %.3g J\n", k->joules_per_token);
    printf("  USD per 1M tokens   %.3g  (electricity $%g/kWh x PUE %g, servers over %g years, full occupancy)\n",
           k->usd_per_mtok, p->usd_per_kwh, p->pue, p->years);
}

static cJSON *fit_json(const plan_hw *hw, const plan_fit *f, const plan_rack *k) {
    cJSON *o = cJSON_CreateObject();
    char part[48];
    part_label(hw, &f->part, part, sizeof part);
    cJSON_AddStringToObject(o, "strategy", plan_strategy_name(f->strategy));
    cJSON_AddStringToObject(o, "partition", part);
    cJSON_AddNumberToObject(o, "partitions", f->part.count);
    cJSON_AddNumberToObject(o, "batch", f->batch);
    cJSON_AddNumberToObject(o, "sessions_per_server", (double)f->sessions);
    json_num(o, "tok_s_per_session", f->tok_s);
    cJSON_AddStringToObject(o, "limiting_factor", plan_limit_name(f->limit));
    cJSON_AddNumberToObject(o, "servers_per_rack", k->servers);
    cJSON_AddNumberToObject(o, "sessions_per_rack", (double)k->sessions);
    json_num(o, "watts_per_session", k->watts_per_session);
    json_num(o, "joules_per_token", k->joules_per_token);
    json_num(o, "usd_per_mtok", k->usd_per_mtok);
    return o;
}

static void basis_json(const plan_cli *c, cJSON *root, const plan_basis *b) {
    static const char *const KINDS[] = {"default", "flags", "measured", "fitted", "no_evidence"};
    char text[512];
    basis_describe(c->fits, b, text, sizeof text);
    cJSON *o = cJSON_AddObjectToObject(root, "basis");
    cJSON_AddStringToObject(o, "kind", KINDS[b->kind]);
    cJSON_AddStringToObject(o, "text", text);
    cJSON_AddStringToObject(o, "software", c->software);
    if (b->kind == BASIS_FITTED) {
        const basis_group *g = &c->fits->g[b->group];
        cJSON_AddStringToObject(o, "uarch", g->uarch);
        cJSON_AddStringToObject(o, "measured_with", c->fits->ev.software[g->software].id);
        cJSON_AddNumberToObject(o, "points", g->n);
        json_num(o, "loo_median_error", g->loo_median);
        json_num(o, "loo_worst_error", g->loo_worst);
        json_num(o, "ratio_bandwidth", b->ratio_bw);
        json_num(o, "ratio_compute", b->ratio_compute);
        json_num(o, "sync_s_per_thread", b->sync_s);
        json_num(o, "thread_loss", b->thread_loss);
    }
    if (b->kind == BASIS_NO_EVIDENCE) {
        cJSON_AddNumberToObject(o, "sessions_per_rack_low", (double)b->range_lo);
        cJSON_AddNumberToObject(o, "sessions_per_rack_high", (double)b->range_hi);
    }
}

static cJSON *plan_json(const plan_cli *c, const plan_model *m, const plan_hw *hw, const plan_result *r,
                        const plan_basis *b) {
    const plan_params *p = &c->params;
    const plan_fit *f = &r->fit[r->headline];
    const plan_rack *k = &r->rack[r->headline];
    cJSON *root = cJSON_CreateObject();
    cJSON *mo = cJSON_AddObjectToObject(root, "model");
    cJSON_AddStringToObject(mo, "id", m->id);
    cJSON_AddStringToObject(mo, "quant", m->quant);
    cJSON_AddNumberToObject(mo, "params", (double)m->params);
    cJSON_AddNumberToObject(mo, "size_class", m->size_class);
    cJSON_AddNumberToObject(mo, "weight_bytes", m->weight_bytes);
    cJSON_AddNumberToObject(mo, "kv_bytes_per_token", m->kv_bytes_per_token);
    cJSON_AddNumberToObject(mo, "flops_per_token", m->flops_per_token);
    cJSON_AddNumberToObject(mo, "attn_flops_per_token", m->attn_flops_per_token);
    cJSON *ho = cJSON_AddObjectToObject(root, "hardware");
    cJSON_AddStringToObject(ho, "id", hw->id);
    cJSON_AddStringToObject(ho, "name", hw->name);
    json_num(ho, "int8_tops", hw->int8_tops);
    json_num(ho, "bf16_tflops", hw->bf16_tflops);
    cJSON_AddNumberToObject(ho, "server_power_w", hw->server_power_w);
    cJSON_AddNumberToObject(ho, "server_u", hw->server_u);
    cJSON *po = cJSON_AddObjectToObject(root, "params");
    cJSON_AddNumberToObject(po, "floor_tok_s", p->floor_tok_s);
    cJSON_AddNumberToObject(po, "ctx", p->ctx);
    cJSON_AddNumberToObject(po, "rack_kw", p->rack_kw);
    cJSON_AddNumberToObject(po, "rack_u", p->rack_u);
    cJSON_AddNumberToObject(po, "eff_bw", r->eff_bw);
    cJSON_AddNumberToObject(po, "eff_compute", r->eff_compute);
    cJSON_AddNumberToObject(po, "step_fixed", plan_step_fixed(hw, &c->params));
    cJSON_AddStringToObject(po, "efficiency", efficiency_origin(c, hw));
    basis_json(c, root, b);
    if (p->prompt > 0) {
        cJSON *ch = cJSON_AddObjectToObject(root, "chat");
        cJSON_AddNumberToObject(ch, "prompt", p->prompt);
        cJSON_AddNumberToObject(ch, "answer", p->answer);
        cJSON_AddNumberToObject(ch, "think_s", p->think_s);
        json_num(ch, "prefill_share", f->prefill_share);
        json_num(ch, "users_per_rack", k->users);
    }
    cJSON_AddStringToObject(root, "strategy", plan_strategy_name(r->headline));
    cJSON_AddNumberToObject(root, "sessions_per_server", (double)f->sessions);
    cJSON_AddNumberToObject(root, "servers_per_rack", k->servers);
    cJSON_AddNumberToObject(root, "sessions_per_rack", (double)k->sessions);
    json_num(root, "watts_per_session", k->watts_per_session);
    json_num(root, "joules_per_token", k->joules_per_token);
    json_num(root, "usd_per_mtok", k->usd_per_mtok);
    json_num(root, "tok_s_per_session", f->tok_s);
    json_num(root, "rack_tok_s", k->tok_s);
    json_num(root, "rack_watts", k->watts);
    cJSON_AddStringToObject(root, "limiting_factor", plan_limit_name(f->limit));
    cJSON_AddStringToObject(root, "rack_limiting_factor", plan_rack_limit_name(k->limit));
    if (r->slices > 0) {
        cJSON_AddNumberToObject(root, "slices_per_server", r->slices);
        cJSON_AddNumberToObject(root, "slice_bw_share", r->slice_share);
    }
    cJSON *alt = cJSON_AddArrayToObject(root, "strategies");
    for (int s = 0; s < PLAN_STRATEGIES; s++)
        if (r->has[s]) cJSON_AddItemToArray(alt, fit_json(hw, &r->fit[s], &r->rack[s]));
    return root;
}

/* Partition counts worth drawing: powers of two, the best, the last. */
static bool worth_drawing(const plan_fit *all, int n, int i, const plan_fit *best) {
    int count = all[i].part.count;
    return n <= 12 || (count & (count - 1)) == 0 || i == n - 1 || count == best->part.count;
}

static int plan_svg(const plan_cli *c, const plan_model *m, const plan_hw *hw, const plan_result *r, rl_err *err) {
    enum { MAX_BARS = 40, MAX_FITS = 1024 };
    plan_fit *all = rl_calloc(MAX_FITS, sizeof *all, err);
    if (!all) return -1;
    char labels[MAX_BARS][64];
    const char *groups[MAX_BARS];
    double values[MAX_BARS];
    int bars = 0;
    for (int s = 0; s < PLAN_STRATEGIES && bars < MAX_BARS; s++) {
        int n = 0;
        plan_fit best;
        if (!plan_best(hw, m, &c->params, s, &best, all, MAX_FITS, &n)) continue;
        for (int i = 0; i < n && bars < MAX_BARS; i++) {
            if (!worth_drawing(all, n, i, &best)) continue;
            char part[40];
            part_label(hw, &all[i].part, part, sizeof part);
            snprintf(labels[bars], sizeof labels[bars], "%s%d x %.39s", s == PLAN_BATCHED ? "" : "1 each: ",
                     all[i].part.count, part);
            groups[bars] = labels[bars];
            values[bars++] = (double)all[i].sessions;
        }
    }
    char title[256], notes[4][200];
    snprintf(title, sizeof title, "Sessions per server at >= %g tok/s: %s %s on %s", c->params.floor_tok_s, m->id,
             m->quant, hw->id);
    snprintf(notes[0], sizeof notes[0], "x: partitions x (cores | GPUs | MIG slice) each; \"1 each\" = one session per partition (the seed's GPU assumption)");
    snprintf(notes[1], sizeof notes[1], "context %.0f tokens, F16 KV = %g bytes/element, %.0f%% of memory usable",
             c->params.ctx, c->params.kv_elem_bytes, c->params.mem_usable * 100);
    snprintf(notes[2], sizeof notes[2], "efficiency: bandwidth %.3g, compute %.3g (%s)", r->eff_bw, r->eff_compute,
             efficiency_origin(c, hw));
    snprintf(notes[3], sizeof notes[3], "hardware figures and their sources: data/hardware.json; model: docs/planner.md");
    const char *note_ptrs[4] = {notes[0], notes[1], notes[2], notes[3]};
    const char *series[1] = {"sessions per server"};
    plansvg_chart chart = {title, "sessions per server", true, bars, groups, 1, series, values, 4, note_ptrs};
    free(all);
    return plansvg_write_file(c->svg, &chart, err);
}

static int run_single(const plan_cli *c, rl_err *err) {
    plan_model m;
    plan_hw hw;
    plan_result r;
    plan_basis b;
    if (load_model(c, c->model, &m, err) || load_hardware(c, c->hardware, &hw, err) ||
        hw_basis(c, &hw, &m, &b, err) || plan_run(&hw, &m, &c->params, &r, err))
        return cli_fail(err);
    if (c->svg && plan_svg(c, &m, &hw, &r, err)) return cli_fail(err);
    if (c->json) return print_json(plan_json(c, &m, &hw, &r, &b));
    print_model_and_hw(c, &m, &hw, &r, &b);
    print_server(&hw, &c->params, &r);
    print_rack(&c->params, &r);
    return 0;
}

/* ---- --list ---- */

static int run_list(const plan_cli *c, rl_err *err) {
    int n = shape_catalog_count();
    for (int i = 0; i < n; i++) {
        rl_shape s;
        if (shape_catalog_get(i, &s, err)) return cli_fail(err);
        uint64_t params = shape_param_count(&s);
        printf("%s\tmodel\t%s\t%.3gB params\t%s\n", s.id, s.name, params / 1e9,
               shape_size_class_label(shape_size_class(params)));
    }
    int h = hwcatalog_count(err);
    if (h < 0) return cli_fail(err);
    for (int i = 0; i < h; i++) {
        plan_hw hw;
        if (hwcatalog_get(i, &hw, err)) return cli_fail(err);
        printf("%s\thardware\t%s\n", hw.id, hw.name);
    }
    return 0;
}

/* ---- --matrix ---- */

enum { MATRIX_MAX_ROWS = 64 };

typedef struct matrix_row {
    plan_hw hw;
    int strategy;
    char label[80];
    long sessions[4];
    double watts_per_session[4];
    double usd_per_mtok[4];
    char limit[4][24];
    plan_basis basis[4];  /* what each figure rests on */
    char mark[48];        /* ... in short, for the row */
} matrix_row;

static void matrix_fill(const plan_cli *c, matrix_row *row, const plan_model *models) {
    for (int k = 0; k < 4; k++) {
        plan_result r;
        plan_hw hw = row->hw;
        row->sessions[k] = 0;
        row->watts_per_session[k] = row->usd_per_mtok[k] = NAN;
        snprintf(row->limit[k], sizeof row->limit[k], "n/a");
        if (hw_basis(c, &hw, &models[k], &row->basis[k], NULL)) continue;
        if (plan_run(&hw, &models[k], &c->params, &r, NULL) || !r.has[row->strategy]) continue;
        row->sessions[k] = r.rack[row->strategy].sessions;
        row->watts_per_session[k] = r.rack[row->strategy].watts_per_session;
        row->usd_per_mtok[k] = r.rack[row->strategy].usd_per_mtok;
        snprintf(row->limit[k], sizeof row->limit[k], "%s", plan_limit_name(r.fit[row->strategy].limit));
    }
    basis_mark(c->fits, &row->basis[0], row->mark, sizeof row->mark);
    if (row->basis[0].kind == BASIS_NO_EVIDENCE) snprintf(row->mark, sizeof row->mark, "no evidence: range");
}

/* A cell: the sessions, or for a CPU without evidence the range. */
static void matrix_cell(const matrix_row *row, int k, char *buf, size_t size) {
    const plan_basis *b = &row->basis[k];
    if (b->kind == BASIS_NO_EVIDENCE) snprintf(buf, size, "%ld-%ld", b->range_lo, b->range_hi);
    else snprintf(buf, size, "%ld", row->sessions[k]);
}

/* One row per CPU; three per GPU (the seed's two assumptions, batching). */
static int matrix_rows(const plan_cli *c, matrix_row *rows, rl_err *err) {
    int h = hwcatalog_count(err), n = 0;
    if (h < 0) return -1;
    for (int i = 0; i < h; i++) {
        plan_hw hw;
        if (hwcatalog_get(i, &hw, err)) return -1;
        if (strcmp(hw.id, "this") == 0) {
            if (!c->calibrated) continue; /* only measured, never guessed */
            if (hwcatalog_this(c->calib.bandwidth_gbs, &hw, err)) return -1;
        }
        int strategies[3] = {PLAN_BATCHED, -1, -1};
        if (hw.kind == PLAN_HW_GPU) {
            strategies[0] = PLAN_ONE_PER_GPU;
            strategies[1] = hw.mig_instances > 0 ? PLAN_ONE_PER_MIG : -1;
            strategies[2] = PLAN_BATCHED;
        }
        for (int s = 0; s < 3 && n < MATRIX_MAX_ROWS; s++) {
            if (strategies[s] < 0) continue;
            matrix_row *row = &rows[n++];
            row->hw = hw;
            row->strategy = strategies[s];
            if (hw.kind == PLAN_HW_GPU) snprintf(row->label, sizeof row->label, "%s (%s)", hw.id, strategy_label(strategies[s]));
            else snprintf(row->label, sizeof row->label, "%s", hw.id);
        }
    }
    return n;
}

static void matrix_assumptions(const plan_cli *c, const plan_model *models, char lines[][200], int *n) {
    const plan_params *p = &c->params;
    *n = 0;
    snprintf(lines[(*n)++], 200, "sessions per rack at >= %g tok/s each; weights %s; F16 KV cache (%g B/element), context %.0f tokens",
             p->floor_tok_s, models[0].quant, p->kv_elem_bytes, p->ctx);
    snprintf(lines[(*n)++], 200, "rack %g kW, %gU, of which %gU and %g W for the switch; %.0f%% of memory usable",
             p->rack_kw, p->rack_u, p->overhead_u, p->overhead_w, p->mem_usable * 100);
    plan_hw gpu = {.kind = PLAN_HW_GPU};
    if (hwcatalog_find("h100-sxm", &gpu, NULL) == 0) {
        double gb, gc;
        plan_efficiency(&gpu, p, &gb, &gc);
        snprintf(lines[(*n)++], 200, "CPU efficiency: what each row rests on (fitted to published points, or a range where"
                 " none); GPU %.3g, %.3g (%s)", gb, gc, efficiency_origin(c, &gpu));
    }
    snprintf(lines[(*n)++], 200, "software: %s%s", c->software,
             c->rackllm ? " (llama.cpp's fitted factors x rackllm's ratio measured here, where measured on that ISA)" : "");
    snprintf(lines[(*n)++], 200, "GPU rows: 1/GPU and 1/MIG slice = the seed's one session each; batched = the model's best split and batch");
    snprintf(lines[(*n)++], 200, "classes drawn with %.24s, %.24s, %.24s, %.24s; 0 = floor not reached or model does not fit",
             models[0].id, models[1].id, models[2].id, models[3].id);
    snprintf(lines[(*n)++], 200, "figures: data/hardware.json (source per figure, estimates marked); model: docs/planner.md");
}

static int matrix_svg(const plan_cli *c, const matrix_row *rows, int n, const plan_model *models, rl_err *err) {
    char group_text[4][80], notes[8][200];
    const char *groups[4], *series[MATRIX_MAX_ROWS], *note_ptrs[8];
    double values[4 * MATRIX_MAX_ROWS];
    for (int k = 0; k < 4; k++) {
        snprintf(group_text[k], sizeof group_text[k], "class %d: %.47s", k, models[k].id);
        groups[k] = group_text[k];
        for (int i = 0; i < n; i++) values[k * n + i] = (double)rows[i].sessions[k];
    }
    char series_text[MATRIX_MAX_ROWS][112];
    for (int i = 0; i < n; i++) {
        bool range = rows[i].basis[0].kind == BASIS_NO_EVIDENCE;
        snprintf(series_text[i], sizeof series_text[i], "%s [%s]", rows[i].label,
                 range ? "no evidence: low end of range" : rows[i].mark);
        series[i] = series_text[i];
        for (int k = 0; k < 4 && range; k++) values[k * n + i] = (double)rows[i].basis[k].range_lo;
    }
    int n_notes;
    matrix_assumptions(c, models, notes, &n_notes);
    for (int i = 0; i < n_notes; i++) note_ptrs[i] = notes[i];
    char title[160];
    snprintf(title, sizeof title, "Sessions per %g kW rack at >= %g tok/s per session, by model size class",
             c->params.rack_kw, c->params.floor_tok_s);
    plansvg_chart chart = {title, "sessions per rack", true, 4, groups, n, series, values, n_notes, note_ptrs};
    return plansvg_write_file(c->svg, &chart, err);
}

static int matrix_json(const matrix_row *rows, int n, const plan_model *models, char notes[][200], int n_notes) {
    cJSON *root = cJSON_CreateObject();
    cJSON *cls = cJSON_AddArrayToObject(root, "classes");
    for (int k = 0; k < 4; k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "class", k);
        cJSON_AddStringToObject(o, "model", models[k].id);
        cJSON_AddItemToArray(cls, o);
    }
    cJSON *arr = cJSON_AddArrayToObject(root, "matrix");
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "hardware", rows[i].hw.id);
            cJSON_AddStringToObject(o, "strategy", plan_strategy_name(rows[i].strategy));
            cJSON_AddNumberToObject(o, "class", k);
            cJSON_AddStringToObject(o, "model", models[k].id);
            cJSON_AddNumberToObject(o, "sessions_per_rack", (double)rows[i].sessions[k]);
            json_num(o, "watts_per_session", rows[i].watts_per_session[k]);
            json_num(o, "usd_per_mtok", rows[i].usd_per_mtok[k]);
            cJSON_AddStringToObject(o, "limiting_factor", rows[i].limit[k]);
            cJSON_AddStringToObject(o, "rests_on", rows[i].mark);
            if (rows[i].basis[k].kind == BASIS_NO_EVIDENCE) {
                cJSON_AddNumberToObject(o, "sessions_per_rack_low", (double)rows[i].basis[k].range_lo);
                cJSON_AddNumberToObject(o, "sessions_per_rack_high", (double)rows[i].basis[k].range_hi);
            }
            cJSON_AddItemToArray(arr, o);
        }
    cJSON *as = cJSON_AddArrayToObject(root, "assumptions");
    for (int i = 0; i < n_notes; i++) cJSON_AddItemToArray(as, cJSON_CreateString(notes[i]));
    return print_json(root);
}

static void matrix_print(const plan_cli *c, const matrix_row *rows, int n, const plan_model *models, char notes[][200],
                         int n_notes) {
    printf("sessions per rack (%g kW, %gU) at >= %g tok/s per session\n\n", c->params.rack_kw, c->params.rack_u,
           c->params.floor_tok_s);
    printf("%-32s", "hardware");
    for (int k = 0; k < 4; k++) printf(" %15s", models[k].id);
    printf("   rests on\n%-32s", "");
    for (int k = 0; k < 4; k++) printf("       (class %d)", k);
    printf("\n");
    for (int i = 0; i < n; i++) {
        printf("%-32s", rows[i].label);
        for (int k = 0; k < 4; k++) {
            char cell[48];
            matrix_cell(&rows[i], k, cell, sizeof cell);
            printf(" %15s", cell);
        }
        printf("   %s\n", rows[i].mark);
    }
    printf("\nassumptions:\n");
    for (int i = 0; i < n_notes; i++) printf("  - %s\n", notes[i]);
}

static int run_matrix(const plan_cli *c, rl_err *err) {
    plan_model models[4];
    for (int k = 0; k < 4; k++) {
        if (load_model(c, CLASS_MODELS[k], &models[k], err)) return cli_fail(err);
        if (models[k].size_class != k)
            return cli_fail(&(rl_err){RL_ERR_INTERNAL, "matrix: the class representative has the wrong size class"});
    }
    matrix_row *rows = rl_calloc(MATRIX_MAX_ROWS, sizeof *rows, err);
    if (!rows) return cli_fail(err);
    int n = matrix_rows(c, rows, err);
    if (n >= 0)
        for (int i = 0; i < n; i++) matrix_fill(c, &rows[i], models);
    if (n < 0 || (c->svg && matrix_svg(c, rows, n, models, err))) {
        free(rows);
        return cli_fail(err);
    }
    char notes[8][200];
    int n_notes;
    matrix_assumptions(c, models, notes, &n_notes);
    if (c->json) {
        int rc = matrix_json(rows, n, models, notes, n_notes);
        free(rows);
        return rc;
    }
    matrix_print(c, rows, n, models, notes, n_notes);
    free(rows);
    return 0;
}

/* ---- --evidence ---- */

/* Median and worst |error| over every group's leave-one-out points. */
static void evidence_overall(basis_fits *f, double *median, double *worst, int *n, int *within) {
    int total = 0;
    for (int g = 0; g < f->n; g++) total += f->g[g].n;
    double *e = malloc((size_t)(total > 0 ? total : 1) * sizeof *e);
    *median = *worst = NAN;
    *n = *within = 0;
    if (!e) return;
    for (int g = 0; g < f->n; g++) {
        basis_fits_loo(f, g);
        for (int i = 0; i < f->g[g].n && f->g[g].loo_pred; i++)
            e[(*n)++] = fabs(f->g[g].loo_pred[i] / f->ev.points[f->g[g].idx[i]].tok_s - 1);
        *within += f->g[g].loo_within_15;
    }
    for (int i = 1; i < *n; i++) /* insertion sort: a thousand numbers, once */
        for (int j = i; j > 0 && e[j] < e[j - 1]; j--) {
            double t = e[j];
            e[j] = e[j - 1];
            e[j - 1] = t;
        }
    if (*n > 0) {
        *median = *n % 2 ? e[*n / 2] : (e[*n / 2 - 1] + e[*n / 2]) / 2;
        *worst = e[*n - 1];
    }
    free(e);
}

static void evidence_point_row(const basis_fits *f, const basis_group *g, int i) {
    const ev_point *pt = &f->ev.points[g->idx[i]];
    double pred = g->loo_pred[i];
    printf("| %s | %s %s | %s %s | %.0f+%.0f | %d x %d | %d | %.2f | %.2f | %+.1f%% |\n",
           f->ev.machines[pt->machine].id, f->ev.software[pt->software].id, pt->version, pt->model, pt->quant,
           pt->prompt, pt->gen, pt->procs, pt->threads, pt->batch, pt->tok_s, pred, 100 * (pred / pt->tok_s - 1));
}

static void evidence_markdown(basis_fits *f) {
    double med, worst;
    int n, within;
    evidence_overall(f, &med, &worst, &n, &within);
    printf("%d published points (%d of them at >= %g tok/s per stream, fitted); source %s\n\n", f->ev.n_points, n,
           f->min_tok_s, f->ev.source_url);
    printf("Leave-one-out, all fitted points: median error %.1f%%, worst %.0f%%, %d of %d within 1.5x.\n\n",
           100 * med, 100 * worst, within, n);
    printf("| microarchitecture | software | machines | points | eff. bandwidth | eff. compute | per-step (sessions) |"
           " barrier (us/thread) | arithmetic lost per thread | LOO median | LOO worst | within 1.5x |\n"
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int g = 0; g < f->n; g++) {
        const basis_group *b = &f->g[g];
        printf("| %s | %s %s | %s | %d | %.3f | %.4f | %.2f | %.1f | %.2f%% | %.1f%% | %.0f%% | %d |\n", b->uarch,
               f->ev.software[b->software].id, b->version, b->machines, b->n, b->x.eff_bw, b->x.eff_compute,
               b->x.step_fixed, b->x.sync_s * 1e6, 100 * b->x.thread_loss, 100 * b->loo_median, 100 * b->loo_worst,
               b->loo_within_15);
    }
    printf("\n| machine | software | model | prompt+gen | procs x threads | streams each | published tok/s |"
           " predicted (LOO) | error |\n|---|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (int g = 0; g < f->n; g++)
        for (int i = 0; i < f->g[g].n && f->g[g].loo_pred; i++) evidence_point_row(f, &f->g[g], i);
}

static void evidence_json(basis_fits *f) {
    double med, worst;
    int n, within;
    evidence_overall(f, &med, &worst, &n, &within);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddNumberToObject(root, "points_published", f->ev.n_points);
    cJSON_AddNumberToObject(root, "points_fitted", n);
    json_num(root, "loo_median_error", med);
    json_num(root, "loo_worst_error", worst);
    cJSON_AddNumberToObject(root, "loo_within_1_5x", within);
    cJSON *groups = cJSON_AddArrayToObject(root, "fits");
    for (int g = 0; g < f->n; g++) {
        const basis_group *b = &f->g[g];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "uarch", b->uarch);
        cJSON_AddStringToObject(o, "software", f->ev.software[b->software].id);
        cJSON_AddStringToObject(o, "version", b->version);
        cJSON_AddStringToObject(o, "machines", b->machines);
        cJSON_AddNumberToObject(o, "points", b->n);
        json_num(o, "eff_bw", b->x.eff_bw);
        json_num(o, "eff_compute", b->x.eff_compute);
        json_num(o, "step_fixed", b->x.step_fixed);
        json_num(o, "sync_s_per_thread", b->x.sync_s);
        json_num(o, "thread_loss", b->x.thread_loss);
        json_num(o, "loo_median_error", b->loo_median);
        json_num(o, "loo_worst_error", b->loo_worst);
        cJSON *pts = cJSON_AddArrayToObject(o, "loo");
        for (int i = 0; i < b->n && b->loo_pred; i++) {
            const ev_point *pt = &f->ev.points[b->idx[i]];
            cJSON *q = cJSON_CreateObject();
            cJSON_AddStringToObject(q, "file", pt->file);
            cJSON_AddNumberToObject(q, "csv_line", pt->line);
            cJSON_AddNumberToObject(q, "published_tok_s", pt->tok_s);
            json_num(q, "predicted_tok_s", b->loo_pred[i]);
            cJSON_AddItemToArray(pts, q);
        }
        cJSON_AddItemToArray(groups, o);
    }
    print_json(root);
}

static int run_evidence(const plan_cli *c, rl_err *err) {
    if (!c->fits) return cli_fail(err);
    if (c->json) evidence_json(c->fits);
    else evidence_markdown(c->fits);
    return 0;
}

/* ---- --verify ---- */

/* Runs `<this executable> bench --shape S --type T --sweep-only --json FILE`
 * with the child's stdout sent to our stderr. 0 if it wrote FILE. */
static int run_bench(const char *shape, const char *type, int repeat, const char *json_path, rl_err *err) {
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return rl_fail(err, RL_ERR_INTERNAL, "--verify: cannot find this executable: %s", strerror(errno));
    exe[n] = 0;
    char rep[16];
    snprintf(rep, sizeof rep, "%d", repeat);
    char *args[] = {exe, "bench", "--shape", (char *)shape, "--type", (char *)type, "--sweep-only", "--sweep-repeat", rep,
                    "--json", (char *)json_path, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
    pid_t pid;
    int rc = posix_spawn(&pid, exe, &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return rl_fail(err, RL_ERR_INTERNAL, "--verify: cannot start the bench: %s", strerror(rc));
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return rl_fail(err, RL_ERR_INTERNAL, "--verify: waiting for the bench: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return rl_fail(err, RL_ERR_INTERNAL,
                       "--verify: the bench is unavailable (`rackllm bench --sweep-only` %s %d); compare with an "
                       "existing measurement instead: --verify-from BENCH.json",
                       WIFEXITED(status) ? "exited with status" : "was killed by signal",
                       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    return 0;
}

/* The measurement against itself: what an error of this size means here. */
static void print_halves(const bench_halves *h) {
    int lo = RL_MIN(h->sessions[0], h->sessions[1]), d = abs(h->sessions[0] - h->sessions[1]);
    printf("\nthe measurement against itself: its passes in two interleaved halves (%d and %d passes)\n"
           "  measured %d and %d sessions at the floor (crossings %.2f and %.2f)",
           h->passes[0], h->passes[1], h->sessions[0], h->sessions[1], h->capacity[0], h->capacity[1]);
    if (d > 0 && lo > 0)
        printf(": on this machine the count\n  itself moves by %d (%.0f%%) within one run\n", d, 100.0 * d / lo);
    else
        printf("\n");
}

static void verify_json(const plan_cli *c, const plan_model *m, const plan_hw *hw, const plan_params *p,
                        const plan_bench_check *k, const char *origin) {
    const plan_verify *v = &k->v;
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "bench", origin);
    cJSON_AddStringToObject(root, "model", m->id);
    cJSON_AddStringToObject(root, "quant", m->quant);
    json_num(root, "floor_tok_s", p->floor_tok_s);
    json_num(root, "eff_bw", k->eff_bw);
    json_num(root, "eff_compute", k->eff_compute);
    json_num(root, "step_fixed", plan_step_fixed(hw, p));
    cJSON_AddStringToObject(root, "efficiency", efficiency_origin(c, hw));
    cJSON_AddNumberToObject(root, "predicted_batched", (double)v->predicted_batched);
    cJSON_AddNumberToObject(root, "measured_batched", (double)v->measured_batched);
    json_num(root, "error_batched_pct", v->error_batched_pct);
    cJSON_AddNumberToObject(root, "predicted_partitioned", (double)v->predicted_partitioned);
    json_num(root, "measured_partitioned", k->have_partitioned ? (double)v->measured_partitioned : NAN);
    json_num(root, "error_partitioned_pct", k->have_partitioned ? v->error_partitioned_pct : NAN);
    json_num(root, "predicted_capacity", v->predicted_capacity);
    json_num(root, "measured_capacity", v->measured_capacity);
    json_num(root, "error_capacity_pct", v->error_capacity_pct);
    json_num(root, "calibration_capacity", k->calibration_capacity);
    if (k->have_halves) {
        cJSON *hv = cJSON_AddObjectToObject(root, "measured_halves");
        cJSON_AddItemToObject(hv, "passes", cJSON_CreateIntArray(k->halves.passes, 2));
        cJSON_AddItemToObject(hv, "batched", cJSON_CreateIntArray(k->halves.sessions, 2));
        cJSON_AddItemToObject(hv, "capacity", cJSON_CreateDoubleArray(k->halves.capacity, 2));
    }
    print_json(root);
}

static void verify_print(const plan_cli *c, const plan_model *m, const plan_hw *hw, const plan_params *p,
                         const plan_bench_check *k, const char *origin) {
    const plan_verify *v = &k->v;
    printf("verify: %s %s on %s, floor %g tok/s, ctx %.0f (bench: %s)\n", m->id, m->quant, hw->name, p->floor_tok_s,
           p->ctx, origin);
    printf("efficiency bandwidth %.3g, compute %.3g, per-step arithmetic %.2g sessions' worth (%s)\n\n", k->eff_bw,
           k->eff_compute, plan_step_fixed(hw, p), efficiency_origin(c, hw));
    printf("  %-12s %10s %10s %9s\n", "sweep", "predicted", "measured", "error");
    printf("  %-12s %10ld %10ld %8.1f%%\n", "batched", v->predicted_batched, v->measured_batched, v->error_batched_pct);
    if (k->have_partitioned)
        printf("  %-12s %10ld %10ld %8.1f%%\n", "partitioned", v->predicted_partitioned, v->measured_partitioned,
               v->error_partitioned_pct);
    else
        printf("  %-12s %10ld %10s\n", "partitioned", v->predicted_partitioned, "(no sweep)");
    printf("\nbatched crossing of the floor, before rounding to whole sessions (the measured one\n"
           "interpolated between the sweep's points on either side):\n");
    printf("  %-12s %10.2f %10.2f %8.1f%%\n", "batched", v->predicted_capacity, v->measured_capacity,
           v->error_capacity_pct);
    double cc = k->calibration_capacity;
    if (cc > 0)
        printf("  (the calibration run crossed at %.2f: the model %+.1f%% from the data it was fitted to, the\n"
               "  machine %+.1f%% from that run to this one)\n",
               cc, 100 * (v->predicted_capacity - cc) / cc,
               v->measured_capacity > 0 ? 100 * (v->measured_capacity - cc) / cc : NAN);
    if (k->have_halves) print_halves(&k->halves);
}

/* The model and machine of run b, the prediction, and its printing. */
static int verify_against(const plan_cli *c, const bench_json *b, const char *origin, rl_err *err) {
    plan_cli vc = *c;
    plan_params_for_bench(b, &vc.params);
    vc.quant = b->type[0] ? b->type : c->quant;
    plan_model m;
    plan_hw hw;
    plan_bench_check k;
    if (!bench_json_has_sweep(b)) /* said before anything about the model */
        return rl_fail(err, RL_ERR_INPUT, "%s: no session sweep to compare with (sweep / max_sessions_at_floor)", origin);
    if (load_model(&vc, b->shape[0] ? b->shape : c->model, &m, err)) return -1;
    /* A prediction uses only what was known before this measurement: with
     * --calibrate, that file's bandwidth (its efficiency factors are
     * relative to it); without, this bench's own probe. */
    if (hwcatalog_this(c->calibrated ? c->calib.bandwidth_gbs : b->bandwidth_gbs, &hw, err)) return -1;
    if (plan_check_bench(&hw, &m, &vc.params, b, c->calibrated ? &c->calib : NULL, &k, err))
        return rl_fail_prefix(err, "%s: ", origin);
    if (c->json) verify_json(c, &m, &hw, &vc.params, &k, origin);
    else verify_print(c, &m, &hw, &vc.params, &k, origin);
    return 0;
}

static int run_verify(const plan_cli *c, rl_err *err) {
    bench_json b;
    if (c->verify_from) {
        if (bench_json_load(c->verify_from, &b, err) || verify_against(c, &b, c->verify_from, err)) return cli_fail(err);
        return 0;
    }
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/rackllm-verify-XXXXXX.json", dir && *dir ? dir : "/tmp");
    int fd = mkstemps(path, 5);
    if (fd < 0) return cli_fail(&(rl_err){RL_ERR_INTERNAL, "--verify: cannot create a temporary file"});
    close(fd);
    /* The calibrated model, unless --model / --quant say otherwise. */
    const char *shape = c->model, *type = c->quant;
    if (c->calibrated && !c->model_given && c->calib.shape[0]) shape = c->calib.shape;
    if (c->calibrated && !c->quant_given && c->calib.type[0]) type = c->calib.type;
    int rc = run_bench(shape, type, c->verify_repeat, path, err);
    if (rc == 0) rc = bench_json_load(path, &b, err);
    if (rc == 0) rc = verify_against(c, &b, "rackllm bench --sweep-only", err);
    unlink(path);
    return rc ? cli_fail(err) : 0;
}

/* The plans and the matrix: with the evidence fitted at half the floor. */
static int run_planned(plan_cli *c, rl_err *err) {
    static basis_fits fits;
    if (basis_fits_build(&fits, c->params.floor_tok_s / 2, err)) {
        if (c->evidence) return cli_fail(err);
        fprintf(stderr, "rackllm plan: no evidence (%s): catalog CPUs keep the defaults\n", err->msg);
    } else {
        c->fits = &fits;
    }
    int rc = c->evidence ? run_evidence(c, err) : c->matrix ? run_matrix(c, err) : run_single(c, err);
    if (c->fits) basis_fits_free(&fits);
    return rc;
}

int cmd_plan(int argc, char **argv) {
    plan_cli c;
    rl_err err = {0};
    int rc = parse_flags(&c, argc, argv, &err);
    if (rc) return rc == CLI_HELP ? 0 : cli_fail(&err);
    if (c.list) return run_list(&c, &err);
    if (c.calibrate && calibrate(&c, &err)) return cli_fail(&err);
    if (c.verify || c.verify_from) return run_verify(&c, &err);
    return run_planned(&c, &err);
}
