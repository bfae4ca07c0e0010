/*
 * plan.c — the rack planner's arithmetic (see plan.h and docs/planner.md).
 *
 * The one idea: a partition decodes its batch in lock-step, and a step
 * has two phases. The matrix products stream the weights once for the
 * whole batch while doing every session's arithmetic (and a part done once
 * per step); streaming and arithmetic overlap, so that phase takes the
 * longer of the two, a max. Attention follows: each session reads its KV
 * cache and does its float arithmetic, one session after another, a sum.
 * The step time, max(stream, (u + b) per) + b attn (plan_phase_step), is
 * what every session in the batch sees. The largest batch that keeps the
 * rate at the floor has a closed form for each bound, so the search over
 * ways to split a server is a loop over partition counts. Fitting the
 * model to a measurement is calibrate.c's.
 */
#include "plan.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <strings.h>

#include "base/embedded.h"
#include "base/types.h"

/* Guards floor() against 2.9999999 where the exact answer is 3. */
#define PLAN_EPS 1e-9
/* A batch larger than this is treated as unbounded (no KV, tiny model). */
#define PLAN_BATCH_CAP 1000000.0

void plan_params_default(plan_params *p) {
    memset(p, 0, sizeof *p);
    p->floor_tok_s = 10;
    p->ctx = 4096;
    p->kv_elem_bytes = 2;
    p->mem_usable = 0.9;
    p->rack_kw = 12.5;
    p->rack_u = 42;
    p->overhead_u = 2;
    p->overhead_w = 300;
    p->usd_per_kwh = 0.10;
    p->pue = 1.0;
    p->years = 4;
    p->gpu_mode = PLAN_GPU_SEED;
    p->step_fixed = 2;
    p->cpu_step_fixed = -1;
}

/* ---- the model ---- */

/* Bits per weight of a llama.cpp mix in data/quant-types.json, or 0. */
static double mix_bits(const char *quant, rl_err *err, bool *failed) {
    size_t size;
    const unsigned char *text = rl_embedded_find("quant-types.json", &size);
    *failed = false;
    if (!text) {
        *failed = true;
        rl_fail(err, RL_ERR_INTERNAL, "data/quant-types.json is not embedded in this build");
        return 0;
    }
    cJSON *root = cJSON_ParseWithLength((const char *)text, size);
    if (!root) {
        *failed = true;
        rl_fail(err, RL_ERR_INTERNAL, "data/quant-types.json does not parse");
        return 0;
    }
    double bits = 0;
    const cJSON *mix;
    cJSON_ArrayForEach(mix, cJSON_GetObjectItemCaseSensitive(root, "mixes")) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(mix, "name");
        const cJSON *bpw = cJSON_GetObjectItemCaseSensitive(mix, "bpw");
        if (cJSON_IsString(name) && cJSON_IsNumber(bpw) && strcasecmp(name->valuestring, quant) == 0) {
            bits = bpw->valuedouble;
            break;
        }
    }
    cJSON_Delete(root);
    return bits;
}

double plan_quant_bits(const char *quant, rl_err *err) {
    bool failed;
    double bits = mix_bits(quant, err, &failed);
    if (failed) return -1;
    if (bits > 0) return bits;
    int t = rl_type_from_name(quant);
    const rl_type_info *info = t >= 0 ? rl_type_get((uint32_t)t) : NULL;
    if (!info || info->block == 0) {
        rl_fail(err, RL_ERR_INPUT, "unknown quantization '%s' (a ggml type such as Q4_0, Q8_0, F16, or a mix such as Q4_K_M)",
                quant);
        return -1;
    }
    return 8.0 * info->bytes / info->block;
}

bool plan_quant_int8(const char *quant) {
    return !(strcasecmp(quant, "f32") == 0 || strcasecmp(quant, "f16") == 0 || strcasecmp(quant, "bf16") == 0);
}

int plan_model_from_shape(const rl_shape *s, const char *quant, const plan_params *p, plan_model *m,
                          rl_err *err) {
    memset(m, 0, sizeof *m);
    double bits = plan_quant_bits(quant, err);
    if (bits < 0) return -1;
    if (!(p->ctx >= 1) || p->ctx > 1e8)
        return rl_fail(err, RL_ERR_INPUT, "context %g must be between 1 and 1e8 tokens", p->ctx);
    snprintf(m->id, sizeof m->id, "%s", s->id[0] ? s->id : "file");
    snprintf(m->name, sizeof m->name, "%s", s->name[0] ? s->name : m->id);
    snprintf(m->quant, sizeof m->quant, "%s", quant);
    m->params = shape_param_count(s);
    m->bits_per_weight = bits;
    m->weight_bytes = (double)m->params * bits / 8.0;
    m->kv_bytes_per_token = (double)shape_kv_bytes_per_token(s, p->kv_elem_bytes);
    m->ctx = p->ctx;
    m->flops_per_token = shape_flops_per_token(s, (uint32_t)p->ctx);
    m->attn_flops_per_token = shape_attention_flops(s, (uint32_t)p->ctx);
    m->size_class = shape_size_class(m->params);
    m->int8_compute = plan_quant_int8(quant);
    plan_model_set_chat(s, p, m);
    return 0;
}

void plan_model_set_chat(const rl_shape *s, const plan_params *p, plan_model *m) {
    m->prefill_per_token = 0;
    m->prefill_attn_flops = 0;
    if (!(p->prompt > 0) || !(p->answer > 0)) return;
    m->prefill_per_token = p->prompt / p->answer;
    m->prefill_attn_flops = shape_attention_flops(s, (uint32_t)(p->prompt / 2));
}

/* ---- one partition ---- */

const char *plan_strategy_name(int strategy) {
    switch (strategy) {
    case PLAN_BATCHED: return "batched";
    case PLAN_ONE_PER_GPU: return "one-per-gpu";
    case PLAN_ONE_PER_MIG: return "one-per-mig";
    default: return "unknown";
    }
}

const char *plan_limit_name(int limit) {
    switch (limit) {
    case PLAN_LIMIT_BANDWIDTH: return "bandwidth";
    case PLAN_LIMIT_COMPUTE: return "compute";
    case PLAN_LIMIT_MEMORY: return "memory";
    case PLAN_LIMIT_ASSUMPTION: return "assumption";
    default: return "none";
    }
}

/* KV cache of one session at the planning context. */
static double session_kv(const plan_model *m) { return m->kv_bytes_per_token * m->ctx; }

/* What one step of a partition costs, in seconds. The matrix products
 * stream the weights (`stream`) while doing the weights' arithmetic, `per`
 * for each session plus `u` sessions' worth done once per step; they
 * overlap, so that phase takes the longer. Attention is a phase of its own
 * (between the products, in every layer): each session reads its KV cache
 * and does its floating-point arithmetic, one after the other (`attn`).
 * Infinite when the partition lacks what the part needs. */
typedef struct step_cost {
    double stream, per, u, attn, fixed;
} step_cost;

/* Seconds of arithmetic for one prompt token in a partition: the weights'
 * products (a prompt is many tokens at once: arithmetic-bound) and
 * attention over half the prompt on average. */
/* The arithmetic's share of the factors' rate a partition's threads keep. */
static double thread_scale(const plan_part *pt) { return 1 / (1 + pt->thread_loss * pt->threads); }

static double prefill_cost(const plan_part *pt, const plan_model *m, double eff_compute) {
    double C = eff_compute * pt->compute_ops * thread_scale(pt);
    double Ca = eff_compute * (pt->attn_ops > 0 ? pt->attn_ops : pt->compute_ops) * thread_scale(pt);
    double Fw = m->flops_per_token - m->attn_flops_per_token;
    if (!(C > 0) || !(Ca > 0)) return INFINITY;
    return Fw / C + m->prefill_attn_flops / Ca;
}

static step_cost step_costs(const plan_part *pt, const plan_model *m, double eff_bw, double eff_compute) {
    double B = eff_bw * pt->bw_gbs * 1e9, C = eff_compute * pt->compute_ops * thread_scale(pt);
    double Ca = eff_compute * (pt->attn_ops > 0 ? pt->attn_ops : pt->compute_ops) * thread_scale(pt);
    double Fa = m->attn_flops_per_token, Fw = m->flops_per_token - Fa;
    step_cost c = {.u = pt->step_fixed};
    c.stream = B > 0 ? m->weight_bytes / B : INFINITY;
    c.per = Fw <= 0 ? 0 : C > 0 ? Fw / C : INFINITY;
    double kv = B > 0 ? session_kv(m) / B : INFINITY, arith = Fa <= 0 ? 0 : Ca > 0 ? Fa / Ca : INFINITY;
    c.attn = kv + arith + m->prefill_per_token * prefill_cost(pt, m, eff_compute);
    c.fixed = pt->sync_s * pt->threads;
    return c;
}

double plan_phase_step(double stream, double per, double u, double attn, int b) {
    return fmax(stream, (u + b) * per) + b * attn;
}

double plan_step_rate(const plan_part *pt, const plan_model *m, double eff_bw, double eff_compute, int b) {
    if (b < 1) return 0;
    step_cost c = step_costs(pt, m, eff_bw, eff_compute);
    return 1 / (plan_phase_step(c.stream, c.per, c.u, c.attn, b) + c.fixed); /* 0 when a part is infinite */
}

double plan_prefill_share(const plan_part *pt, const plan_model *m, double eff_compute, int b, double tok_s) {
    if (b < 1 || !(m->prefill_per_token > 0)) return 0;
    return fmin(1, b * tok_s * m->prefill_per_token * prefill_cost(pt, m, eff_compute));
}

double plan_users(const plan_params *p, int b, double tok_s) {
    if (!(p->answer > 0) || !(tok_s > 0)) return b;
    double busy = p->answer / tok_s;
    return b * (busy + p->think_s) / busy;
}

/* A bound kept within [0, PLAN_BATCH_CAP]. */
static double bound(double x) {
    if (!(x > 0)) return 0; /* also NaN */
    return fmin(x, PLAN_BATCH_CAP);
}

/* ... rounded down to whole sessions. */
static double whole(double x) { return floor(x + PLAN_EPS); }

plan_fit plan_fit_part(const plan_part *pt, const plan_model *m, const plan_params *p, double eff_bw,
                       double eff_compute) {
    plan_fit fit;
    memset(&fit, 0, sizeof fit);
    fit.part = *pt;
    double kv = session_kv(m), f = p->floor_tok_s, W = m->weight_bytes;
    step_cost c = step_costs(pt, m, eff_bw, eff_compute);
    /* Each bound is the largest b that keeps its own condition true (s =
     * c.stream, w = c.per, A = c.attn):
     * with the barriers' fixed time o taken off the step first:
     *   bandwidth: s + b A + o <= 1/f         =>  b <= (1/f - o - s) / A
     *   compute:   (u + b) w + b A + o <= 1/f =>  b <= (1/f - o - u w) / (w + A)
     *   memory:    W + b K <= M               =>  b <= (M - W) / K             */
    double slack = 1 / f - c.fixed; /* a step's time left after the barriers */
    double ex_bw = !isfinite(c.stream) ? 0 : c.attn > 0 ? bound((slack - c.stream) / c.attn)
                                          : c.stream <= slack ? PLAN_BATCH_CAP : 0;
    double ex_compute = c.per <= 0 ? PLAN_BATCH_CAP : bound((slack - c.u * c.per) / (c.per + c.attn));
    double ex_mem = kv > 0 ? bound((pt->mem_bytes - W) / kv) : pt->mem_bytes >= W ? PLAN_BATCH_CAP : 0;
    double by_bw = whole(ex_bw), by_mem = whole(ex_mem), by_compute = whole(ex_compute);
    double by_assumption = pt->max_batch > 0 ? pt->max_batch : PLAN_BATCH_CAP;
    double exact = fmin(fmin(ex_bw, ex_mem), fmin(ex_compute, by_assumption));

    /* The smallest bound wins; on a tie the physical limits are named
     * before the assumption, in the order bandwidth, compute, memory. */
    double b = by_bw;
    fit.limit = PLAN_LIMIT_BANDWIDTH;
    if (by_compute < b) { b = by_compute; fit.limit = PLAN_LIMIT_COMPUTE; }
    if (by_mem < b) { b = by_mem; fit.limit = PLAN_LIMIT_MEMORY; }
    if (by_assumption < b) { b = by_assumption; fit.limit = PLAN_LIMIT_ASSUMPTION; }
    if (b >= PLAN_BATCH_CAP) fit.limit = PLAN_LIMIT_NONE;
    /* Weights that do not fit at all say more than any speed. */
    if (W > pt->mem_bytes) {
        b = 0;
        fit.limit = PLAN_LIMIT_MEMORY;
    }
    fit.batch = (int)b;
    fit.batch_exact = b == 0 ? 0 : fmax(exact, b);
    fit.sessions = (long)fit.batch * pt->count;
    fit.tok_s = fit.batch > 0 ? plan_step_rate(pt, m, eff_bw, eff_compute, fit.batch) : 0;
    fit.prefill_share = plan_prefill_share(pt, m, eff_compute, fit.batch, fit.tok_s);
    fit.users = (double)pt->count * plan_users(p, fit.batch, fit.tok_s);
    return fit;
}

/* ---- ways to split a server ---- */

/* Peak ops/s of one unit for the model's arithmetic. */
static double unit_compute(const plan_hw *hw, const plan_model *m) {
    return (m->int8_compute ? hw->int8_tops : hw->bf16_tflops) * 1e12;
}

/* ... and for attention, which is floating point whatever the weights. */
static double unit_attn(const plan_hw *hw) { return hw->bf16_tflops * 1e12; }

int plan_slices(const plan_hw *hw, const plan_params *p, double *share) {
    *share = 0;
    if (p->cores <= 0 || hw->cores <= 0) return 0;
    int total = hw->units * hw->cores;
    int slices = total / p->cores;
    if (slices < 1) return 0;
    double s = p->bw_share > 0 ? p->bw_share : (double)p->cores / hw->cores;
    /* Every slice cannot get more than its part of the server's bandwidth. */
    double cap = (double)hw->units / slices;
    *share = fmin(s, cap);
    return slices;
}

/* A CPU server splits into pools that never span sockets (a partition
 * across NUMA nodes would not get both sockets' bandwidth), or into its
 * --cores slices; each pool splits into 1..cores partitions. */
static int cpu_parts(const plan_hw *hw, const plan_model *m, const plan_params *p, plan_part *out, int cap) {
    int pools = hw->units, pool_cores = hw->cores;
    double pool_bw = hw->mem_bw_gbs;
    double pool_compute = unit_compute(hw, m), pool_attn = unit_attn(hw);
    double pool_mem = hw->mem_gib * PLAN_GIB * p->mem_usable;
    double share;
    int slices = plan_slices(hw, p, &share);
    if (slices > 0) {
        double frac = (double)p->cores / hw->cores; /* of one unit */
        pools = slices;
        pool_cores = p->cores;
        pool_bw = share * hw->mem_bw_gbs;
        pool_compute = frac * unit_compute(hw, m);
        pool_attn = frac * unit_attn(hw);
        pool_mem = frac * hw->mem_gib * PLAN_GIB * p->mem_usable;
    }
    int n = 0;
    for (int q = 1; q <= pool_cores && n < cap; q++) {
        plan_part *pt = &out[n++];
        memset(pt, 0, sizeof *pt);
        pt->count = pools * q;
        pt->cores = pool_cores / q;
        pt->bw_gbs = pool_bw / q;
        pt->compute_ops = pool_compute * pt->cores / pool_cores;
        pt->attn_ops = pool_attn * pt->cores / pool_cores;
        pt->mem_bytes = pool_mem / q;
        pt->threads = pt->cores;
    }
    return n;
}

/* The fewest GPUs (a divisor of the count) whose memory holds the weights
 * and one session; all of them if none does. Larger groups are not
 * considered: tensor parallelism's communication is not modelled, so a
 * model is never spread wider than it must be. */
static int gpu_group(const plan_hw *hw, const plan_model *m, const plan_params *p) {
    double need = m->weight_bytes + m->kv_bytes_per_token * m->ctx;
    for (int k = 1; k < hw->units; k++)
        if (hw->units % k == 0 && k * hw->mem_gib * PLAN_GIB * p->mem_usable >= need) return k;
    return hw->units;
}

/* A GPU server: partitions of the smallest GPU group that holds the model,
 * or MIG slices. */
static int gpu_parts(const plan_hw *hw, const plan_model *m, const plan_params *p, int strategy, plan_part *out,
                     int cap) {
    int n = 0;
    if ((strategy == PLAN_BATCHED || strategy == PLAN_ONE_PER_GPU) && n < cap && hw->units > 0) {
        int k = gpu_group(hw, m, p);
        plan_part *pt = &out[n++];
        memset(pt, 0, sizeof *pt);
        pt->count = hw->units / k;
        pt->gpus = k;
        pt->cores = k * hw->cores;
        pt->bw_gbs = k * hw->mem_bw_gbs;
        pt->compute_ops = k * unit_compute(hw, m);
        pt->attn_ops = k * unit_attn(hw);
        pt->mem_bytes = k * hw->mem_gib * PLAN_GIB * p->mem_usable;
        pt->max_batch = strategy == PLAN_ONE_PER_GPU ? 1 : 0;
    }
    if ((strategy == PLAN_BATCHED || strategy == PLAN_ONE_PER_MIG) && hw->mig_instances > 0 && n < cap) {
        plan_part *pt = &out[n++];
        memset(pt, 0, sizeof *pt);
        pt->count = hw->units * hw->mig_instances;
        pt->mig = true;
        pt->cores = (int)floor(hw->cores * hw->mig_compute_fraction + PLAN_EPS);
        pt->bw_gbs = hw->mem_bw_gbs * hw->mig_bw_fraction;
        pt->compute_ops = unit_compute(hw, m) * hw->mig_compute_fraction;
        pt->attn_ops = unit_attn(hw) * hw->mig_compute_fraction;
        pt->mem_bytes = hw->mig_mem_gib * PLAN_GIB * p->mem_usable;
        pt->max_batch = strategy == PLAN_ONE_PER_MIG ? 1 : 0;
    }
    return n;
}

int plan_parts(const plan_hw *hw, const plan_model *m, const plan_params *p, int strategy, plan_part *out,
               int cap) {
    bool cpu = hw->kind == PLAN_HW_CPU;
    int n = !cpu ? gpu_parts(hw, m, p, strategy, out, cap) : strategy == PLAN_BATCHED ? cpu_parts(hw, m, p, out, cap) : 0;
    for (int i = 0; i < n; i++) {
        out[i].step_fixed = plan_step_fixed(hw, p);
        out[i].sync_s = cpu ? hw->sync_s : 0;
        out[i].thread_loss = cpu ? hw->thread_loss : 0;
    }
    return n;
}

double plan_step_fixed(const plan_hw *hw, const plan_params *p) {
    if (hw->kind == PLAN_HW_CPU && hw->fitted && hw->step_fixed >= 0) return hw->step_fixed;
    return hw->kind == PLAN_HW_CPU && p->cpu_step_fixed >= 0 ? p->cpu_step_fixed : p->step_fixed;
}

void plan_efficiency(const plan_hw *hw, const plan_params *p, double *eff_bw, double *eff_compute) {
    /* Calibration measures this machine; a CPU with factors fitted to its
     * own microarchitecture's evidence keeps them. */
    bool cpu = hw->kind == PLAN_HW_CPU && !hw->fitted;
    *eff_bw = p->eff_bw > 0 ? p->eff_bw : cpu && p->cpu_eff_bw > 0 ? p->cpu_eff_bw : hw->eff_bw;
    *eff_compute = p->eff_compute > 0       ? p->eff_compute
                   : cpu && p->cpu_eff_compute > 0 ? p->cpu_eff_compute
                                                   : hw->eff_compute;
}

bool plan_best(const plan_hw *hw, const plan_model *m, const plan_params *p, int strategy, plan_fit *best,
               plan_fit *all, int cap, int *n_all) {
    plan_part parts[PLAN_MAX_PARTS];
    int n = plan_parts(hw, m, p, strategy, parts, PLAN_MAX_PARTS);
    if (n_all) *n_all = 0;
    memset(best, 0, sizeof *best);
    best->strategy = strategy;
    if (n == 0) return false;
    double eb, ec;
    plan_efficiency(hw, p, &eb, &ec);
    bool have = false;
    for (int i = 0; i < n; i++) {
        plan_fit f = plan_fit_part(&parts[i], m, p, eb, ec);
        f.strategy = strategy;
        if (all && n_all && *n_all < cap) all[(*n_all)++] = f;
        /* Parts come in increasing partition count, so `>` keeps the
         * fewest partitions on a tie. With no session anywhere, the first
         * (largest) partition explains best why. */
        if (!have || f.sessions > best->sessions) {
            *best = f;
            have = true;
        }
    }
    return true;
}

/* ---- one rack ---- */

const char *plan_rack_limit_name(int limit) {
    switch (limit) {
    case PLAN_RACK_POWER: return "power";
    case PLAN_RACK_SPACE: return "space";
    case PLAN_RACK_BOTH: return "power and space";
    default: return "none";
    }
}

/* Whole servers within a budget, kept far from int overflow. */
static int servers_within(double x) { return (int)fmin(floor(x + PLAN_EPS), 1e6); }

void plan_rack_compute(const plan_hw *hw, const plan_params *p, const plan_fit *fit, plan_rack *r) {
    memset(r, 0, sizeof *r);
    double power_left = p->rack_kw * 1000 - p->overhead_w;
    double space_left = p->rack_u - p->overhead_u;
    r->servers_by_power = hw->server_power_w > 0 && power_left > 0 ? servers_within(power_left / hw->server_power_w) : 0;
    r->servers_by_space = hw->server_u > 0 && space_left > 0 ? servers_within(space_left / hw->server_u) : 0;
    r->servers = RL_MIN(r->servers_by_power, r->servers_by_space);
    r->limit = r->servers_by_power < r->servers_by_space   ? PLAN_RACK_POWER
               : r->servers_by_space < r->servers_by_power ? PLAN_RACK_SPACE
                                                           : PLAN_RACK_BOTH;
    r->sessions = (long)r->servers * fit->sessions;
    r->users = r->servers * fit->users;
    r->watts = r->servers * hw->server_power_w + p->overhead_w;
    r->tok_s = r->sessions * fit->tok_s;
    double capital = p->years > 0 ? r->servers * hw->server_usd / (p->years * PLAN_HOURS_PER_YEAR) : 0;
    r->usd_per_hour = r->watts / 1000 * p->pue * p->usd_per_kwh + capital;
    if (r->sessions > 0 && r->tok_s > 0) {
        r->watts_per_session = r->watts / r->sessions;
        r->joules_per_token = r->watts / r->tok_s;
        r->usd_per_mtok = r->usd_per_hour / (r->tok_s * 3600 / 1e6);
    } else {
        r->watts_per_session = r->joules_per_token = r->usd_per_mtok = NAN;
    }
}

/* ---- everything ---- */

int plan_run(const plan_hw *hw, const plan_model *m, const plan_params *p, plan_result *r, rl_err *err) {
    memset(r, 0, sizeof *r);
    if (!(p->floor_tok_s > 0)) return rl_fail(err, RL_ERR_INPUT, "the floor must be a positive tokens/s");
    if (!(p->mem_usable > 0 && p->mem_usable <= 1))
        return rl_fail(err, RL_ERR_INPUT, "the usable memory fraction must be in (0, 1]");
    if (p->cores > 0) {
        if (hw->kind == PLAN_HW_GPU) return rl_fail(err, RL_ERR_INPUT, "--cores slices a CPU, not %s", hw->id);
        if (p->cores > hw->units * hw->cores)
            return rl_fail(err, RL_ERR_INPUT, "--cores %d is more than the %d cores of %s", p->cores,
                           hw->units * hw->cores, hw->id);
    }
    if ((p->prompt > 0) != (p->answer > 0) || p->prompt < 0 || p->think_s < 0)
        return rl_fail(err, RL_ERR_INPUT, "a chat workload needs both --prompt and --answer (tokens > 0), think time >= 0");
    if (p->bw_share < 0 || p->bw_share > hw->units)
        return rl_fail(err, RL_ERR_INPUT, "--bw-share %g must be a fraction of a socket's bandwidth", p->bw_share);
    plan_efficiency(hw, p, &r->eff_bw, &r->eff_compute);
    r->slices = plan_slices(hw, p, &r->slice_share);
    for (int s = 0; s < PLAN_STRATEGIES; s++) {
        r->has[s] = plan_best(hw, m, p, s, &r->fit[s], NULL, 0, NULL);
        if (r->has[s]) plan_rack_compute(hw, p, &r->fit[s], &r->rack[s]);
    }
    r->headline = PLAN_BATCHED;
    if (hw->kind == PLAN_HW_GPU && p->gpu_mode == PLAN_GPU_SEED) {
        r->headline = PLAN_ONE_PER_GPU;
        if (r->has[PLAN_ONE_PER_MIG] && r->fit[PLAN_ONE_PER_MIG].sessions > r->fit[PLAN_ONE_PER_GPU].sessions)
            r->headline = PLAN_ONE_PER_MIG;
    }
    return 0;
}
