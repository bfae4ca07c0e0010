/*
 * plan.h — the rack planner's model: how many decode sessions at a floor
 * speed fit one server and one rack, and what each session costs.
 *
 * Everything here is arithmetic on plain structs: no files, no clock, no
 * globals, so every number can be checked against a hand calculation. The
 * hardware figures come from the catalog (hwcatalog.h), the model's from its
 * shape (shape.h), the efficiency factors from defaults or a measurement
 * (calibrate.h). docs/planner.md explains the model in prose; in short:
 *
 *   A partition (a group of cores, a GPU, a MIG slice) decodes a batch of b
 *   sessions one step at a time, in two phases. The matrix products stream
 *   the weights while doing their arithmetic (the two overlap): b tokens'
 *   plus a part done once per step whatever the batch (decoding the
 *   weights' blocks), u sessions' worth. Then attention: each session
 *   reads its KV cache and does its float arithmetic. The step's time,
 *   whose inverse is every session's speed, is
 *       max( weights / (eff_bw x bandwidth),
 *            (u + b) x weight FLOPs per token / (eff_compute x compute) )
 *     + b x ( KV bytes at the context / (eff_bw x bandwidth)
 *             + attention FLOPs per token / (eff_compute x float compute)
 *             + a chat workload's prompt tokens per answer token x the
 *               arithmetic of one prompt token )
 *     + threads x the barriers' cost per thread (sync_s),
 *   with the arithmetic's rates divided by 1 + thread_loss x threads (both
 *   fitted to published measurements of llama.cpp, where wide processes
 *   step slower, the more the more arithmetic a step does).
 *   Sessions per server = partitions x batch, maximised over the ways to
 *   split the server, such that the rate stays >= the floor and weights plus
 *   KV caches fit the partition's memory.
 *   Servers per rack = min(power budget / server power, rack U / server U),
 *   after the switch/overhead U and W; then watts per session, joules per
 *   token and dollars per million tokens follow.
 *
 * Units: bandwidth in GB/s (1e9 bytes), memory capacities in GiB (DIMMs and
 * HBM are sold in binary sizes), compute in ops/s, power in W, money in USD.
 */
#ifndef RACKLLM_PLAN_H
#define RACKLLM_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "base/common.h"
#include "model/shape.h"

#define PLAN_GIB 1073741824.0
#define PLAN_HOURS_PER_YEAR 8760.0

enum { PLAN_HW_CPU = 0, PLAN_HW_GPU = 1 };

/* One catalog entry: a server built from `units` sockets or cards. Per-unit
 * figures are per socket or card; 0 means unknown (prices, TDP). */
typedef struct plan_hw {
    char id[48];
    char name[128];
    int kind;             /* PLAN_HW_CPU (also `this`) or PLAN_HW_GPU */
    int units;            /* sockets or cards per server */
    int cores;            /* per unit: cores, or SMs of a GPU */
    double clock_ghz;     /* per core; informational */
    double mem_bw_gbs;    /* per unit, datasheet bandwidth */
    double mem_gib;       /* per unit, installed memory */
    double int8_tops;     /* per unit, dense int8 peak */
    double bf16_tflops;   /* per unit, dense bf16/fp16 peak */
    double tdp_w;         /* per unit */
    double unit_usd;      /* per unit */
    int mig_instances;    /* GPU: MIG slices per card (0: no MIG) */
    double mig_mem_gib;   /* memory of one slice */
    double mig_bw_fraction, mig_compute_fraction;
    double server_power_w, server_u, server_usd;
    double eff_bw, eff_compute; /* default efficiency factors for this kind,
                                   or fitted to published evidence */
    char uarch[24];       /* CPU microarchitecture ("zen4"), "" if unknown */
    char isa[12];         /* CPU kernels' instruction set: avx512, avx2, arm */
    bool fitted;          /* eff_* (and the two below) fitted to evidence:
                             calibration of this machine does not replace them */
    double step_fixed;    /* >= 0: per-step arithmetic for this hardware */
    double sync_s;        /* seconds per thread per step (barriers) */
    double thread_loss;   /* arithmetic slows by 1 + thread_loss x threads */
} plan_hw;

/* What the planner needs to know about a model at a quantization. */
typedef struct plan_model {
    char id[48];          /* catalog id or file name */
    char name[64];
    char quant[24];       /* "Q4_0", "Q4_K_M", "file" */
    uint64_t params;
    double bits_per_weight;
    double weight_bytes;        /* one copy of the weights */
    double kv_bytes_per_token;  /* K and V of one token, all layers */
    double ctx;                 /* tokens of context each session holds */
    double flops_per_token;     /* one decode step at that context */
    double attn_flops_per_token; /* ... of which attention over the context:
                                    floating point, whatever the weights */
    int size_class;             /* shape_size_class */
    bool int8_compute;          /* quantized weights: int8 dot products */
    double prefill_per_token;   /* prompt tokens per answer token (P / A):
                                   0 for decode only */
    double prefill_attn_flops;  /* attention FLOPs of a prompt token, on
                                   average (at position P / 2) */
} plan_model;

/* GPU headline: the seed's assumption (one session per GPU or MIG slice) or
 * batching; both are always computed and shown. */
enum { PLAN_GPU_SEED = 0, PLAN_GPU_BATCHED = 1 };

typedef struct plan_params {
    double floor_tok_s;    /* every session at least this fast (10) */
    double ctx;            /* tokens of context a session holds (4096) */
    double kv_elem_bytes;  /* bytes per K/V element (2: F16 cache) */
    double mem_usable;     /* fraction of memory for weights + KV (0.9) */
    double eff_bw;         /* > 0 overrides the hardware's default */
    double eff_compute;    /* > 0 overrides the hardware's default */
    double cpu_eff_bw;     /* > 0: measured on this CPU (calibration); used
                              for CPU hardware unless eff_bw is set */
    double cpu_eff_compute;
    double step_fixed;     /* arithmetic a step does once whatever its batch
                              (decoding the weights' blocks), in sessions'
                              worth (2) */
    double cpu_step_fixed; /* >= 0: measured on this CPU (calibration) */
    int cores;             /* > 0: instances of this many cores (a slice) */
    double bw_share;       /* > 0: fraction of a socket's bandwidth a slice
                              gets; 0: proportional to its cores */
    double rack_kw;        /* power budget (12.5) */
    double rack_u;         /* rack height (42) */
    double overhead_u;     /* switch, patch panel (2) */
    double overhead_w;     /* switch and other non-server draw (300) */
    double usd_per_kwh;    /* electricity (0.10) */
    double pue;            /* facility overhead on electricity (1.0) */
    double years;          /* server cost amortised over (4) */
    int gpu_mode;          /* PLAN_GPU_SEED or PLAN_GPU_BATCHED */
    double prompt;         /* > 0 with answer: a chat workload, prompt tokens */
    double answer;         /* ... and answer tokens per request */
    double think_s;        /* ... and a user's time between answer and prompt */
} plan_params;

void plan_params_default(plan_params *p);

/* ---- the model from a shape ---- */

/* Bits per weight of a quantization name: a llama.cpp mix from
 * data/quant-types.json (Q4_K_M ...) or a single block type from types.h
 * (Q4_0 = 18 bytes per 32 weights = 4.5). -1 if unknown. */
double plan_quant_bits(const char *quant, rl_err *err);

/* A chat workload's prefill: each answer of A tokens follows a prompt of P,
 * so a decoding session brings P / A prompt tokens per token it decodes; a
 * prompt token costs the weights' arithmetic and attention over half the
 * prompt. The server paces prefill into the decoders' steps, so in a steady
 * state a session's rate r satisfies r = (1 - share) / t(b) with share =
 * b r (P / A) c_p: prefill adds b (P / A) c_p to every step. */
void plan_model_set_chat(const rl_shape *s, const plan_params *p, plan_model *m);

/* Fills m from a shape at a quantization; ctx and kv_elem_bytes from p.
 * weight_bytes = params x bits / 8 (overridden by the caller for a file,
 * whose tensors say exactly). */
int plan_model_from_shape(const rl_shape *s, const char *quant, const plan_params *p, plan_model *m,
                          rl_err *err);

/* ---- one server ---- */

enum {
    PLAN_BATCHED = 0,     /* any split, any batch: the best the model allows */
    PLAN_ONE_PER_GPU = 1, /* seed: one session per GPU (or per smallest GPU
                             group that holds the model) */
    PLAN_ONE_PER_MIG = 2, /* seed: one session per MIG slice */
    PLAN_STRATEGIES = 3,
};
const char *plan_strategy_name(int strategy);

/* What stops one more session in a partition. */
enum {
    PLAN_LIMIT_NONE = 0,
    PLAN_LIMIT_BANDWIDTH,
    PLAN_LIMIT_COMPUTE,
    PLAN_LIMIT_MEMORY,
    PLAN_LIMIT_ASSUMPTION, /* one session per partition, by assumption */
};
const char *plan_limit_name(int limit);

/* One way to split a server: `count` equal partitions. */
typedef struct plan_part {
    int count;            /* partitions per server */
    int cores;            /* cores (or SMs) in each */
    int gpus;             /* GPUs in each (GPU servers; 0 for a MIG slice) */
    bool mig;             /* a MIG slice */
    double bw_gbs;        /* each, datasheet share */
    double compute_ops;   /* each, peak ops/s for the weights' arithmetic */
    double attn_ops;      /* each, peak FLOP/s for attention (the float
                             peak); 0: compute_ops */
    double mem_bytes;     /* each, usable for weights + KV */
    int max_batch;        /* 0: free; 1: one session each (seed) */
    double step_fixed;    /* the params' step_fixed for this hardware */
    int threads;          /* threads that step together (barriers) */
    double sync_s;        /* seconds per thread per step they cost */
    double thread_loss;   /* their arithmetic runs at 1 / (1 + thread_loss
                             x threads) of the factors' rate */
} plan_part;

/* A partitioning with the batch the model allows in it. */
typedef struct plan_fit {
    plan_part part;
    int strategy;
    int batch;            /* sessions per partition */
    double batch_exact;   /* the same before rounding down: where the
                             slowest bound meets the floor (e.g. 4.7) */
    long sessions;        /* per server = count x batch */
    double tok_s;         /* each session's speed at that batch (0 if none) */
    int limit;            /* PLAN_LIMIT_* that stops batch + 1 */
    double prefill_share; /* of each second, the share new prompts take */
    double users;         /* sessions counting think time (= sessions
                             without a chat workload) */
} plan_fit;

/* Tokens per second of every session in a partition decoding b at once. */
double plan_step_rate(const plan_part *pt, const plan_model *m, double eff_bw, double eff_compute, int b);

/* The largest batch with rate >= floor that fits memory, and its limit. */
plan_fit plan_fit_part(const plan_part *pt, const plan_model *m, const plan_params *p, double eff_bw,
                       double eff_compute);

/* Ways to split one server, at most: enough for any catalog server
 * (partition counts up to the core count). */
#define PLAN_MAX_PARTS 1024

/* The ways to split a server under a strategy (at most cap), in order of
 * increasing partition count. Each socket of a CPU server (or each --cores
 * slice) splits into 1..cores partitions; a GPU server into groups of the
 * fewest GPUs that hold the model, or into MIG slices. */
int plan_parts(const plan_hw *hw, const plan_model *m, const plan_params *p, int strategy, plan_part *out,
               int cap);

/* Efficiency factors in force: params' overrides; else, for a CPU, the
 * calibrated ones; else the hardware's defaults. */
void plan_efficiency(const plan_hw *hw, const plan_params *p, double *eff_bw, double *eff_compute);
/* The per-step arithmetic (in sessions' worth) in force for hw. */
double plan_step_fixed(const plan_hw *hw, const plan_params *p);

/* The best fit of a strategy: most sessions per server; on a tie, fewer
 * partitions. `all` (may be NULL) receives every fit, `n_all` their count.
 * Returns false if the strategy does not apply (MIG on a CPU ...). */
bool plan_best(const plan_hw *hw, const plan_model *m, const plan_params *p, int strategy, plan_fit *best,
               plan_fit *all, int cap, int *n_all);

/* --cores slicing: instances per server and the bandwidth share each gets
 * (params' bw_share, capped so that the slices never exceed the server). */
int plan_slices(const plan_hw *hw, const plan_params *p, double *share);

/* ---- one rack ---- */

enum { PLAN_RACK_POWER = 1, PLAN_RACK_SPACE = 2, PLAN_RACK_BOTH = 3 };
const char *plan_rack_limit_name(int limit);

typedef struct plan_rack {
    int servers;           /* per rack */
    int servers_by_power, servers_by_space;
    int limit;             /* PLAN_RACK_* */
    long sessions;         /* per rack */
    double users;          /* per rack, counting think time (chat) */
    double watts;          /* servers x server power + overhead */
    double tok_s;          /* all sessions at their speed */
    double watts_per_session;  /* NAN when no session fits */
    double joules_per_token;   /* NAN when no session fits */
    double usd_per_hour;       /* electricity x PUE + amortised servers */
    double usd_per_mtok;       /* NAN when no session fits */
} plan_rack;

void plan_rack_compute(const plan_hw *hw, const plan_params *p, const plan_fit *fit, plan_rack *r);

/* ---- everything for one (model, hardware) ---- */

typedef struct plan_result {
    plan_fit fit[PLAN_STRATEGIES];
    bool has[PLAN_STRATEGIES];
    plan_rack rack[PLAN_STRATEGIES];
    int headline;          /* the strategy reported as *the* answer */
    double eff_bw, eff_compute;
    int slices;            /* --cores instances per server (0: none) */
    double slice_share;    /* bandwidth share each slice gets */
} plan_result;

/* Runs every applicable strategy. The headline is PLAN_BATCHED on a CPU;
 * on a GPU the better seed strategy, or PLAN_BATCHED with gpu_mode. */
int plan_run(const plan_hw *hw, const plan_model *m, const plan_params *p, plan_result *r, rl_err *err);

/* The step of b sessions in seconds (the phase model): the matrix
 * products take the longer of streaming the weights (`stream`) and their
 * arithmetic, `per` for each session plus `u` sessions' worth once per
 * step; then every session's attention (`attn`: its KV read and float
 * arithmetic). plan_step_rate's step, and the one calibration fits. */
double plan_phase_step(double stream, double per, double u, double attn, int b);

/* Prefill's share of a step of b sessions, and the users b sessions serve
 * with think time (b x (A / r + think) / (A / r)); b without a chat. */
double plan_prefill_share(const plan_part *pt, const plan_model *m, double eff_compute, int b, double tok_s);
double plan_users(const plan_params *p, int b, double tok_s);

/* Whether weights of this quantization compute in int8 dot products: all
 * but F32, F16 and BF16 (any case). */
bool plan_quant_int8(const char *quant);

#endif
