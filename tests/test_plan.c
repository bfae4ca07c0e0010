/*
 * test_plan.c — the rack planner against hand calculations.
 *
 * Every expected number below is worked out in the comment above its check
 * from the explicit inputs of the test (round figures, not the catalog's),
 * never by calling the code under test. Then: every figure of the hardware
 * catalog has a source, the matrix's qualitative result (a 192-core CPU
 * serves far more class 0/1 sessions per rack than H100s running one
 * session each), calibration and verification from a sample bench JSON,
 * and --cores slicing.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/machine.h"
#include "plan/benchjson.h"
#include "plan/calibrate.h"
#include "plan/hwcatalog.h"
#include "plan/plan.h"
#include "plan/plansvg.h"
#include "model/shape.h"
#include "test.h"

/* ---- fixtures: a made-up CPU server, GPU server and model ---- */

/* One socket of 10 cores: 100 GB/s, 100 GiB, 10 int8 TOPS; 500 W, 1U,
 * 10,000 USD; efficiencies 0.5 / 0.5. */
static plan_hw cpu_hw(void) {
    plan_hw hw;
    memset(&hw, 0, sizeof hw);
    snprintf(hw.id, sizeof hw.id, "test-cpu");
    hw.kind = PLAN_HW_CPU;
    hw.units = 1;
    hw.cores = 10;
    hw.mem_bw_gbs = 100;
    hw.mem_gib = 100;
    hw.int8_tops = 10;
    hw.bf16_tflops = 5;
    hw.server_power_w = 500;
    hw.server_u = 1;
    hw.server_usd = 10000;
    hw.eff_bw = 0.5;
    hw.eff_compute = 0.5;
    return hw;
}

/* Eight cards of 1000 GB/s, 80 GiB, 100 int8 TOPS; MIG 7 x 10 GiB with 1/8
 * of the bandwidth and 1/7 of the compute; 10 kW, 8U; efficiencies
 * 0.6 / 0.3. */
static plan_hw gpu_hw(void) {
    plan_hw hw;
    memset(&hw, 0, sizeof hw);
    snprintf(hw.id, sizeof hw.id, "test-gpu");
    hw.kind = PLAN_HW_GPU;
    hw.units = 8;
    hw.cores = 100;
    hw.mem_bw_gbs = 1000;
    hw.mem_gib = 80;
    hw.int8_tops = 100;
    hw.bf16_tflops = 50;
    hw.mig_instances = 7;
    hw.mig_mem_gib = 10;
    hw.mig_bw_fraction = 0.125;
    hw.mig_compute_fraction = 1.0 / 7;
    hw.server_power_w = 10000;
    hw.server_u = 8;
    hw.server_usd = 200000;
    hw.eff_bw = 0.6;
    hw.eff_compute = 0.3;
    return hw;
}

/* 1 GB of weights, 1e5 bytes of KV per token at a context of 1000 tokens
 * (0.1 GB per session), quantized (int8 arithmetic). Its arithmetic is
 * free (0 FLOP per token), so only streaming and memory limit it;
 * test_compute_bound, test_step_rate and test_verify add the FLOPs. */
static plan_model test_model(double weight_bytes) {
    plan_model m;
    memset(&m, 0, sizeof m);
    snprintf(m.id, sizeof m.id, "test-model");
    m.weight_bytes = weight_bytes;
    m.kv_bytes_per_token = 1e5;
    m.ctx = 1000;
    m.flops_per_token = 0;
    m.int8_compute = true;
    return m;
}

/* The defaults of plan.h: floor 10 tok/s, 90% memory usable, a 12.5 kW 42U
 * rack less 2U and 300 W, 0.10 USD/kWh, PUE 1, four years. */
static plan_params params(void) {
    plan_params p;
    plan_params_default(&p);
    return p;
}

/* ---- the formulas ---- */

static void test_bandwidth_bound_and_power_bound(void) {
    plan_hw hw = cpu_hw();
    plan_model m = test_model(1e9);
    plan_params p = params();
    plan_result r;
    rl_err err = {0};
    CHECK(plan_run(&hw, &m, &p, &r, &err) == 0);
    const plan_fit *f = &r.fit[PLAN_BATCHED];
    /* One partition of 10 cores:
     *   speed:     B = 0.5 x 100e9 = 50e9 B/s; b <= (B/10 - 1e9) / 1e8 = (5e9 - 1e9) / 1e8 = 40
     *   memory:    100 GiB x 0.9 = 96.64e9;   b <= (96.64e9 - 1e9) / 1e8 = 956
     * so 40 sessions, bandwidth-bound, each at 50e9 / (1e9 + 40 x 1e8) = 10 tok/s.
     * Two partitions get 25e9 B/s each: (2.5e9 - 1e9) / 1e8 = 15 each, 30 < 40. */
    CHECK(r.headline == PLAN_BATCHED);
    CHECK_EQ_INT(f->part.count, 1);
    CHECK_EQ_INT(f->batch, 40);
    CHECK_EQ_INT(f->sessions, 40);
    CHECK_EQ_INT(f->limit, PLAN_LIMIT_BANDWIDTH);
    CHECK_NEAR(f->tok_s, 10.0, 1e-9);
    CHECK(!r.has[PLAN_ONE_PER_GPU] && !r.has[PLAN_ONE_PER_MIG]);

    plan_fit all[16];
    int n = 0;
    plan_fit best;
    CHECK(plan_best(&hw, &m, &p, PLAN_BATCHED, &best, all, 16, &n));
    CHECK_EQ_INT(n, 10); /* 1..10 partitions */
    CHECK_EQ_INT(all[1].part.count, 2);
    CHECK_EQ_INT(all[1].sessions, 30);

    /* Rack: power (12500 - 300) / 500 = 24.4 -> 24 servers; space (42 - 2) / 1
     * = 40; power-bound, 24 x 40 = 960 sessions. Draw 24 x 500 + 300 = 12300 W:
     * 12300 / 960 = 12.8125 W per session. Tokens 960 x 10 = 9600/s: 12300 /
     * 9600 = 1.28125 J/token. Cost per hour: 12.3 kW x 0.10 = 1.23 USD +
     * 24 x 10000 / (4 x 8760) = 6.849315 USD = 8.079315 USD; per million
     * tokens: 8.079315 / (9600 x 3600 / 1e6 = 34.56) = 0.2337765 USD. */
    const plan_rack *k = &r.rack[PLAN_BATCHED];
    CHECK_EQ_INT(k->servers_by_power, 24);
    CHECK_EQ_INT(k->servers_by_space, 40);
    CHECK_EQ_INT(k->servers, 24);
    CHECK_EQ_INT(k->limit, PLAN_RACK_POWER);
    CHECK_EQ_INT(k->sessions, 960);
    CHECK_NEAR(k->watts, 12300, 1e-9);
    CHECK_NEAR(k->watts_per_session, 12.8125, 1e-9);
    CHECK_NEAR(k->tok_s, 9600, 1e-6);
    CHECK_NEAR(k->joules_per_token, 1.28125, 1e-9);
    CHECK_NEAR(k->usd_per_hour, 8.0793151, 1e-6);
    CHECK_NEAR(k->usd_per_mtok, 0.2337765, 1e-6);
}

static void test_compute_bound(void) {
    plan_hw hw = cpu_hw();
    hw.int8_tops = 1;
    plan_model m = test_model(1e9);
    m.flops_per_token = 2e9;
    plan_params p = params();
    plan_result r;
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    /* B = 50e9, C = 0.5 x 1e12 = 5e11: a session's arithmetic takes 2e9 / 5e11
     * = 0.004 s, and every step does u = 2 sessions' worth more (the default);
     * each session's attention reads its KV cache, 1e8 / 50e9 = 0.002 s,
     * after the products:
     *   compute:   (2 + b) x 0.004 + b x 0.002 <= 0.1  =>  b <= 15.33
     *   bandwidth: 1e9 / 50e9 + b x 0.002 <= 0.1      =>  b <= 40
     * so 15, compute-bound, each at 1 / (max(0.02, 0.068) + 0.03) tok/s. */
    const plan_fit *f = &r.fit[PLAN_BATCHED];
    CHECK_EQ_INT(f->part.count, 1);
    CHECK_EQ_INT(f->sessions, 15);
    CHECK_EQ_INT(f->limit, PLAN_LIMIT_COMPUTE);
    CHECK_NEAR(f->batch_exact, 0.092 / 0.006, 1e-9);
    CHECK_NEAR(f->tok_s, 1 / 0.098, 1e-9);
    /* Without the per-step part (u = 0): 0.1 / 0.006 = 16.7; with a
     * calibrated u = 5 for CPUs: 0.08 / 0.006 = 13.3. */
    p.step_fixed = 0;
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].sessions, 16);
    p.cpu_step_fixed = 5;
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].sessions, 13);
    /* Attention is floating point: 0.5 of the 2 GFLOP at the bf16/fp peak
     * (0.25 TFLOPS x 0.5 = 1.25e11: 0.004 s), the weights' 1.5 at int8
     * (5e11: 0.003 s), so a session's attention is 0.002 + 0.004 s:
     *   (2 + b) x 0.003 + b x 0.006 <= 0.1  =>  b <= 0.094 / 0.009 = 10.44
     * where counting all 2 GFLOP at the int8 rate gave 15. */
    p = params();
    hw.bf16_tflops = 0.25;
    m.attn_flops_per_token = 0.5e9;
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    f = &r.fit[PLAN_BATCHED];
    CHECK_EQ_INT(f->sessions, 10);
    CHECK_EQ_INT(f->limit, PLAN_LIMIT_COMPUTE);
    CHECK_NEAR(f->batch_exact, 0.094 / 0.009, 1e-9);
    CHECK_NEAR(f->tok_s, 1 / (12 * 0.003 + 10 * 0.006), 1e-9);
    m.attn_flops_per_token = 0;
    /* 10 TOPS: 0.0008 + b x 0.0024 <= 0.1 -> 41; bandwidth first at 40. */
    hw = cpu_hw();
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].sessions, 40);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].limit, PLAN_LIMIT_BANDWIDTH);
    /* bf16 weights use the bf16 peak: C = 0.5 x 5e12, 0.0008 s a session:
     * 0.0016 + b x 0.0028 <= 0.1 -> 35, now before bandwidth. At 0.5
     * TFLOPS, 0.008 s: 0.016 + b x 0.01 <= 0.1 -> 8. */
    m.int8_compute = false;
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].sessions, 35);
    hw.bf16_tflops = 0.5;
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].sessions, 8);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].limit, PLAN_LIMIT_COMPUTE);
    /* No compute at all: nothing runs. */
    hw.bf16_tflops = 0;
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].sessions, 0);
}

static void test_memory_bound(void) {
    plan_hw hw = cpu_hw();
    hw.mem_gib = 2;
    plan_model m = test_model(1e9);
    plan_params p = params();
    plan_result r;
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    /* 2 GiB x 0.9 = 1932735283 bytes: b <= (1.9327e9 - 1e9) / 1e8 = 9.33 -> 9.
     * Two partitions hold 0.966e9 each, less than the weights: none.
     * Speed at 9: 50e9 / 1.9e9 = 26.3158. */
    const plan_fit *f = &r.fit[PLAN_BATCHED];
    CHECK_EQ_INT(f->sessions, 9);
    CHECK_EQ_INT(f->limit, PLAN_LIMIT_MEMORY);
    CHECK_NEAR(f->tok_s, 50e9 / 1.9e9, 1e-9);
    /* Weights larger than memory: nothing fits, and memory is named. */
    m.weight_bytes = 3e9;
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].sessions, 0);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].limit, PLAN_LIMIT_MEMORY);
    CHECK(isnan(r.rack[PLAN_BATCHED].watts_per_session));
    CHECK(isnan(r.rack[PLAN_BATCHED].usd_per_mtok));
    CHECK_EQ_INT(r.rack[PLAN_BATCHED].sessions, 0);
}

static void test_space_bound(void) {
    plan_hw hw = cpu_hw();
    hw.server_power_w = 200;
    hw.server_u = 2;
    plan_model m = test_model(1e9);
    plan_params p = params();
    plan_result r;
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    /* Power (12500 - 300) / 200 = 61; space (42 - 2) / 2 = 20: 20 servers,
     * space-bound, 20 x 40 = 800 sessions; 20 x 200 + 300 = 4300 W. */
    const plan_rack *k = &r.rack[PLAN_BATCHED];
    CHECK_EQ_INT(k->servers_by_power, 61);
    CHECK_EQ_INT(k->servers_by_space, 20);
    CHECK_EQ_INT(k->servers, 20);
    CHECK_EQ_INT(k->limit, PLAN_RACK_SPACE);
    CHECK_EQ_INT(k->sessions, 800);
    CHECK_NEAR(k->watts, 4300, 1e-9);
    /* Both limits equal: 40 servers either way at 305 W, 1U. */
    hw.server_power_w = 305;
    hw.server_u = 1;
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    CHECK_EQ_INT(r.rack[PLAN_BATCHED].servers, 40);
    CHECK_EQ_INT(r.rack[PLAN_BATCHED].limit, PLAN_RACK_BOTH);
}

static void test_gpu_strategies(void) {
    plan_hw hw = gpu_hw();
    plan_model m = test_model(1e9);
    plan_params p = params();
    plan_result r;
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    CHECK(r.has[PLAN_BATCHED] && r.has[PLAN_ONE_PER_GPU] && r.has[PLAN_ONE_PER_MIG]);
    /* One session per GPU: 8, each at 0.6 x 1000e9 / 1.1e9 = 545.45 tok/s. */
    CHECK_EQ_INT(r.fit[PLAN_ONE_PER_GPU].sessions, 8);
    CHECK_EQ_INT(r.fit[PLAN_ONE_PER_GPU].limit, PLAN_LIMIT_ASSUMPTION);
    CHECK_NEAR(r.fit[PLAN_ONE_PER_GPU].tok_s, 600e9 / 1.1e9, 1e-6);
    /* One per MIG slice: 8 x 7 = 56, each at 0.6 x 125e9 / 1.1e9 = 68.18. */
    CHECK_EQ_INT(r.fit[PLAN_ONE_PER_MIG].sessions, 56);
    CHECK_NEAR(r.fit[PLAN_ONE_PER_MIG].tok_s, 75e9 / 1.1e9, 1e-6);
    /* Batched per GPU: bandwidth (60e9 - 1e9) / 1e8 = 590; memory 80 GiB x
     * 0.9 = 77.31e9 -> 763; compute 0.3 x 100e12 / 2e10 = 1500: 590 x 8 =
     * 4720. Batched per MIG slice: bandwidth (7.5e9 - 1e9) / 1e8 = 65, x 56
     * = 3640 < 4720. */
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].part.count, 8);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].batch, 590);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].sessions, 4720);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].limit, PLAN_LIMIT_BANDWIDTH);
    /* The seed's headline is the better of its two assumptions: MIG. Rack:
     * (12500 - 300) / 10000 = 1 server (power), 56 sessions. */
    CHECK_EQ_INT(r.headline, PLAN_ONE_PER_MIG);
    CHECK_EQ_INT(r.rack[PLAN_ONE_PER_MIG].servers, 1);
    CHECK_EQ_INT(r.rack[PLAN_ONE_PER_MIG].limit, PLAN_RACK_POWER);
    CHECK_EQ_INT(r.rack[PLAN_ONE_PER_MIG].sessions, 56);
    p.gpu_mode = PLAN_GPU_BATCHED;
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    CHECK_EQ_INT(r.headline, PLAN_BATCHED);

    /* 100 GB of weights do not fit one GPU (77.31e9 usable) but fit two
     * (154.6e9): one session per pair of GPUs = 4, none per MIG slice. */
    m = test_model(100e9);
    p = params();
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    CHECK_EQ_INT(r.fit[PLAN_ONE_PER_GPU].part.gpus, 2);
    CHECK_EQ_INT(r.fit[PLAN_ONE_PER_GPU].sessions, 4);
    CHECK_EQ_INT(r.fit[PLAN_ONE_PER_MIG].sessions, 0);
    CHECK_EQ_INT(r.fit[PLAN_ONE_PER_MIG].limit, PLAN_LIMIT_MEMORY);
    CHECK_EQ_INT(r.headline, PLAN_ONE_PER_GPU);
    /* --cores does not apply to a GPU. */
    p.cores = 2;
    rl_err err = {0};
    CHECK(plan_run(&hw, &m, &p, &r, &err) == -1 && err.code == RL_ERR_INPUT);
}

static void test_cores_slicing(void) {
    plan_hw hw = cpu_hw();
    plan_model m = test_model(0.5e9);
    plan_params p = params();
    plan_result r;
    /* Whole socket: (5e9 - 0.5e9) / 1e8 = 45 sessions. */
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].sessions, 45);
    CHECK_EQ_INT(r.slices, 0);
    /* --cores 2: 10 / 2 = 5 slices, each with 2/10 of the bandwidth (20 GB/s),
     * compute and memory. A slice: B = 0.5 x 20e9 = 10e9 -> (1e9 - 0.5e9) /
     * 1e8 = 5 sessions; the server 5 x 5 = 25 (each slice streams its own
     * weights, hence less than 45). */
    p.cores = 2;
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    CHECK_EQ_INT(r.slices, 5);
    CHECK_NEAR(r.slice_share, 0.2, 1e-12);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].part.count, 5);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].part.cores, 2);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].sessions, 25);
    /* A configured share of 0.15: B = 0.5 x 15e9 = 7.5e9 -> (0.75e9 - 0.5e9)
     * / 1e8 = 2.5 -> 2 per slice, 10 per server. */
    p.bw_share = 0.15;
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    CHECK_NEAR(r.slice_share, 0.15, 1e-12);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].sessions, 10);
    /* A share of 0.5 cannot hold for 5 slices: capped at 1 / 5 = 0.2. */
    p.bw_share = 0.5;
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    CHECK_NEAR(r.slice_share, 0.2, 1e-12);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].sessions, 25);
    /* --cores 3: 10 / 3 = 3 slices (one core idle), share 0.3 each: B = 15e9
     * -> (1.5e9 - 0.5e9) / 1e8 = 10 per slice, 30 per server. */
    p.bw_share = 0;
    p.cores = 3;
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    CHECK_EQ_INT(r.slices, 3);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].sessions, 30);
    /* More cores than the server has: bad input. */
    p.cores = 11;
    rl_err err = {0};
    CHECK(plan_run(&hw, &m, &p, &r, &err) == -1 && err.code == RL_ERR_INPUT);
}

static void test_two_sockets_do_not_pool(void) {
    /* Two sockets of 100 GB/s: partitions stay within a socket, so 1 GB of
     * weights gives 40 sessions per socket (as one socket), 80 per server,
     * not (10e9 - 1e9) / 1e8 = 90 from pooling both sockets. */
    plan_hw hw = cpu_hw();
    hw.units = 2;
    plan_model m = test_model(1e9);
    plan_params p = params();
    plan_result r;
    CHECK(plan_run(&hw, &m, &p, &r, NULL) == 0);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].part.count, 2);
    CHECK_EQ_INT(r.fit[PLAN_BATCHED].sessions, 80);
}

static void test_step_rate(void) {
    plan_hw hw = cpu_hw();
    plan_model m = test_model(1e9);
    m.flops_per_token = 2e9;
    plan_part pt = {.count = 1, .cores = 10, .bw_gbs = 100, .compute_ops = 10e12, .mem_bytes = 1e11, .step_fixed = 2};
    /* The longer of the products' two parts, then the sessions' attention
     * (each reads 1e8 B of KV cache at 50e9 B/s): b = 1: max(1e9 / 50e9 =
     * 0.02, (2 + 1) x 2e9 / 5e12 = 0.0012) + 0.002 s. b = 0: 0. b = 100:
     * max(0.02, 0.0408) + 0.2. */
    CHECK_NEAR(plan_step_rate(&pt, &m, hw.eff_bw, hw.eff_compute, 1), 1 / 0.022, 1e-9);
    CHECK_NEAR(plan_step_rate(&pt, &m, hw.eff_bw, hw.eff_compute, 0), 0, 0);
    CHECK_NEAR(plan_step_rate(&pt, &m, hw.eff_bw, hw.eff_compute, 100), 1 / 0.2408, 1e-9);
    /* 0.1 TOPS: arithmetic (2 + 1) x 2e9 / 5e10 = 0.12 s is the longer. */
    pt.compute_ops = 0.1e12;
    CHECK_NEAR(plan_step_rate(&pt, &m, hw.eff_bw, hw.eff_compute, 1), 1 / 0.122, 1e-9);
    /* No bandwidth: no speed (not a division by zero). */
    pt.bw_gbs = 0;
    CHECK_NEAR(plan_step_rate(&pt, &m, hw.eff_bw, hw.eff_compute, 1), 0, 0);
}

/* ---- the model from a shape ---- */

static void test_model_from_shape(void) {
    rl_err err = {0};
    /* Bits per weight: block sizes of types.h (Q4_0 = 18 bytes / 32, Q8_0 =
     * 34 / 32, Q4_K = 144 / 256), mixes from data/quant-types.json. */
    CHECK_NEAR(plan_quant_bits("Q4_0", &err), 4.5, 1e-12);
    CHECK_NEAR(plan_quant_bits("q8_0", &err), 8.5, 1e-12);
    CHECK_NEAR(plan_quant_bits("F16", &err), 16, 1e-12);
    CHECK_NEAR(plan_quant_bits("Q4_K", &err), 4.5, 1e-12);
    CHECK_NEAR(plan_quant_bits("Q4_K_M", &err), 4.8944, 1e-12);
    CHECK(plan_quant_bits("Q9_Z", &err) < 0 && err.code == RL_ERR_INPUT);

    rl_shape s;
    plan_model m;
    plan_params p = params();
    CHECK(shape_catalog_find("llama3.2-1b", &s, &err) == 0);
    CHECK(plan_model_from_shape(&s, "Q4_0", &p, &m, &err) == 0);
    /* Llama 3.2 1B: embedding 128256 x 2048 = 262,668,288; a layer 2048 +
     * 2048^2 + 2 x 2048 x 512 + 2048^2 + 2048 + 3 x 2048 x 8192 = 60,821,504,
     * x 16 = 973,144,064; output norm 2048, tied output, rope_freqs 32:
     * 1,235,814,432 parameters, x 4.5 / 8 = 695,145,618 bytes. KV per token:
     * 2 x 16 layers x 8 heads x 64 x 2 bytes = 32768. */
    CHECK_EQ_INT(m.params, 1235814432LL);
    CHECK_NEAR(m.weight_bytes, 695145618.0, 1);
    CHECK_NEAR(m.kv_bytes_per_token, 32768, 0);
    CHECK_EQ_INT(m.size_class, 0);
    CHECK(m.int8_compute);
    CHECK(plan_model_from_shape(&s, "F16", &p, &m, &err) == 0);
    CHECK(!m.int8_compute);
    CHECK(plan_model_from_shape(&s, "nope", &p, &m, &err) == -1);
}

/* ---- the catalog ---- */

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = 0;
    fclose(f);
    return buf;
}

/* A figure object: {value: number | null, src, basis?, note?}; src names a
 * source or is derived/estimate (with a basis), or measured for `this`. */
static void check_figure(const char *entry, const char *key, const cJSON *fig, const cJSON *sources, bool is_this) {
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(fig, "value");
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(fig, "src");
    const cJSON *basis = cJSON_GetObjectItemCaseSensitive(fig, "basis");
    const cJSON *note = cJSON_GetObjectItemCaseSensitive(fig, "note");
    bool has_basis = cJSON_IsString(basis) && strlen(basis->valuestring) > 3;
    bool named = strcmp(key, "uarch") == 0 || strcmp(key, "isa") == 0; /* a name, not a number */
    CHECKF(cJSON_IsNumber(value) || cJSON_IsNull(value) || (named && cJSON_IsString(value)),
           "%s.%s: value must be a number or null", entry, key);
    CHECKF(cJSON_IsString(src), "%s.%s: no src", entry, key);
    if (!cJSON_IsString(src)) return;
    const char *s = src->valuestring;
    if (strcmp(s, "derived") == 0 || strcmp(s, "estimate") == 0)
        CHECKF(has_basis, "%s.%s: %s without a basis", entry, key, s);
    else if (strcmp(s, "measured") == 0)
        CHECKF(is_this, "%s.%s: only `this` is measured", entry, key);
    else
        CHECKF(cJSON_GetObjectItemCaseSensitive(sources, s) != NULL, "%s.%s: unknown source '%s'", entry, key, s);
    if (cJSON_IsNull(value) && !is_this)
        CHECKF(cJSON_IsString(note), "%s.%s: a null value needs a note saying why", entry, key);
}

static void test_catalog_sources(void) {
    char *text = read_text("data/hardware.json");
    CHECKF(text != NULL, "data/hardware.json not found (run from the source directory)");
    if (!text) return;
    cJSON *root = cJSON_Parse(text);
    free(text);
    CHECKF(root != NULL, "data/hardware.json does not parse");
    if (!root) return;
    const cJSON *sources = cJSON_GetObjectItemCaseSensitive(root, "sources"), *src;
    cJSON_ArrayForEach(src, sources) {
        const cJSON *title = cJSON_GetObjectItemCaseSensitive(src, "title");
        const cJSON *url = cJSON_GetObjectItemCaseSensitive(src, "url");
        CHECKF(cJSON_IsString(title) && strlen(title->valuestring) > 10, "source %s: no title", src->string);
        CHECKF(cJSON_IsString(url) && strncmp(url->valuestring, "https://", 8) == 0, "source %s: no https url",
               src->string);
        CHECKF(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(src, "checked")), "source %s: checked?", src->string);
    }
    const cJSON *kind, *fig;
    cJSON_ArrayForEach(kind, cJSON_GetObjectItemCaseSensitive(root, "efficiency_defaults"))
        cJSON_ArrayForEach(fig, kind) check_figure("efficiency_defaults", fig->string, fig, sources, false);

    static const char *const REQUIRED_IDS[] = {"ampereone-a192-32x", "ampereone-m", "altra-max-m128-30",
                                               "altra-q80-30", "graviton4", "epyc-9654", "epyc-9754", "epyc-9r14",
                                               "xeon-8480p", "h100-sxm", "h100-pcie", "this"};
    static const char *const REQUIRED_FIGURES[] = {"units", "cores", "mem_bw_gbs", "mem_gb", "int8_tops",
                                                   "bf16_tflops", "server_u"};
    int figures = 0, entries = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(root, "hardware")) {
        const char *id = cJSON_GetObjectItemCaseSensitive(e, "id")->valuestring;
        bool is_this = strcmp(id, "this") == 0;
        entries++;
        const cJSON *member;
        cJSON_ArrayForEach(member, e) {
            if (cJSON_IsObject(member)) {
                check_figure(id, member->string, member, sources, is_this);
                figures++;
            } else {
                CHECKF(strcmp(member->string, "id") == 0 || strcmp(member->string, "name") == 0 ||
                           strcmp(member->string, "kind") == 0,
                       "%s.%s: a bare value without a source", id, member->string);
            }
        }
        for (size_t i = 0; i < RL_ARRAY_LEN(REQUIRED_FIGURES); i++)
            CHECKF(cJSON_GetObjectItemCaseSensitive(e, REQUIRED_FIGURES[i]) != NULL, "%s: no %s", id,
                   REQUIRED_FIGURES[i]);
        if (!is_this) {
            CHECKF(cJSON_GetObjectItemCaseSensitive(e, "tdp_w") && cJSON_GetObjectItemCaseSensitive(e, "unit_usd") &&
                       cJSON_GetObjectItemCaseSensitive(e, "server_power_w") &&
                       cJSON_GetObjectItemCaseSensitive(e, "server_usd"),
                   "%s: TDP, price, server power and cost are all required (null with a note if not public)", id);
            /* A derived bandwidth agrees with its channels x MT/s x 8 bytes. */
            const cJSON *bw = cJSON_GetObjectItemCaseSensitive(e, "mem_bw_gbs");
            const cJSON *bsrc = cJSON_GetObjectItemCaseSensitive(bw, "src");
            if (cJSON_IsString(bsrc) && strcmp(bsrc->valuestring, "derived") == 0) {
                double ch = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "mem_channels"), "value")->valuedouble;
                double mts = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(e, "mem_mts"), "value")->valuedouble;
                double v = cJSON_GetObjectItemCaseSensitive(bw, "value")->valuedouble;
                CHECKF(fabs(v - ch * mts * 8 / 1000) < 0.05, "%s: bandwidth %g != %g x %g x 8", id, v, ch, mts);
            }
        }
    }
    for (size_t i = 0; i < RL_ARRAY_LEN(REQUIRED_IDS); i++) {
        plan_hw hw;
        CHECKF(hwcatalog_find(REQUIRED_IDS[i], &hw, NULL) == 0, "catalog lacks %s", REQUIRED_IDS[i]);
    }
    /* The binary carries the same file. */
    CHECK_EQ_INT(hwcatalog_count(NULL), entries);
    CHECKF(figures > 150, "only %d figures", figures);
    printf("catalog: %d entries, %d figures, all with a source\n", entries, figures);
    cJSON_Delete(root);

    /* Loaded entries carry the figures (A192-32X: 192 cores, 332.8 GB/s). */
    plan_hw a;
    CHECK(hwcatalog_find("ampereone-a192-32x", &a, NULL) == 0);
    CHECK_EQ_INT(a.cores, 192);
    CHECK_NEAR(a.mem_bw_gbs, 332.8, 1e-9);
    CHECK_EQ_INT(a.kind, PLAN_HW_CPU);
    CHECK(a.eff_bw > 0 && a.eff_compute > 0);
    plan_hw h;
    CHECK(hwcatalog_find("h100-sxm", &h, NULL) == 0);
    CHECK_EQ_INT(h.kind, PLAN_HW_GPU);
    CHECK_EQ_INT(h.mig_instances, 7);
    CHECK(hwcatalog_find("no-such-thing", &h, NULL) == -1);
}

/* ---- the seed's qualitative result ---- */

static void test_matrix_qualitative(void) {
    plan_hw cpu, gpu;
    rl_err err = {0};
    CHECK(hwcatalog_find("ampereone-a192-32x", &cpu, &err) == 0);
    CHECK(hwcatalog_find("h100-sxm", &gpu, &err) == 0);
    static const char *const MODELS[2] = {"llama3.2-1b", "llama3.1-8b"};
    for (int k = 0; k < 2; k++) {
        rl_shape s;
        plan_model m;
        plan_params p = params();
        CHECK(shape_catalog_find(MODELS[k], &s, &err) == 0);
        CHECK(plan_model_from_shape(&s, "Q4_0", &p, &m, &err) == 0);
        CHECK_EQ_INT(m.size_class, k);
        plan_result rc, rg;
        CHECK(plan_run(&cpu, &m, &p, &rc, &err) == 0);
        CHECK(plan_run(&gpu, &m, &p, &rg, &err) == 0);
        long c = rc.rack[PLAN_BATCHED].sessions;
        long g1 = rg.rack[PLAN_ONE_PER_GPU].sessions, gm = rg.rack[PLAN_ONE_PER_MIG].sessions;
        long gb = rg.rack[PLAN_BATCHED].sessions;
        printf("class %d (%s, Q4_0, 12.5 kW rack, floor 10 tok/s): AmpereOne A192-32X %ld sessions; "
               "H100 SXM one per GPU %ld, one per MIG slice %ld, batched %ld; ratio CPU / one-per-GPU %.0fx, "
               "CPU / one-per-MIG %.1fx\n",
               k, MODELS[k], c, g1, gm, gb, g1 ? (double)c / g1 : 0, gm ? (double)c / gm : 0);
        CHECKF(g1 > 0 && c >= 20 * g1, "class %d: CPU %ld vs one session per H100 %ld", k, c, g1);
        CHECKF(gm > 0 && c >= 5 * gm, "class %d: CPU %ld vs one session per MIG slice %ld", k, c, gm);
    }
}

/* ---- calibration and verification ---- */

static void test_calibration(void) {
    bench_json b;
    rl_err err = {0};
    CHECKF(bench_json_load("tests/data/bench-sample.json", &b, &err) == 0, "%s", err.msg);
    CHECK_STR(b.shape, "llama3.2-1b");
    CHECK_STR(b.type, "q4_0");
    CHECK_NEAR(b.bandwidth_gbs, 20, 0);
    CHECK_NEAR(b.decode_tok_s, 20, 0);
    CHECK_EQ_INT(b.n_batched, 5);
    CHECK_EQ_INT(b.n_partitioned, 2);
    CHECK_EQ_INT(b.max_batched, 9);
    CHECK_EQ_INT(b.max_partitioned, 2);
    CHECK_EQ_INT(b.prompt_len + b.gen_len, 192);
    /* Of the points with min >= 10 tok/s the most sessions is 9. */
    const bench_point *one = bench_json_batched_at(&b, 1), *twelve = bench_json_batched_at(&b, 12);
    CHECK(twelve && twelve->aggregate_tok_s == 100);
    CHECK(one && one->min_tok_s == 20);
    CHECK(bench_json_batched_at(&b, 3) == NULL);
    CHECK_EQ_INT(bench_json_max_at_floor(b.batched, b.n_batched, 10), 9);
    CHECK_EQ_INT(bench_json_max_at_floor(b.partitioned, b.n_partitioned, 10), 2);
    /* The crossing: 9 sessions at 10.2 tok/s, 12 at 8. Step times 1/10.2
     * and 1/8 s; the floor's 1/10 s lies (1/10 - 1/10.2) / (1/8 - 1/10.2)
     * = (1/510) / (11/408) = 4/55 of the way: 9 + 3 x 4/55 sessions. With
     * nothing measured above the last point kept, that point; with no
     * point at the floor, 0; a point exactly at the floor is the crossing. */
    CHECK_NEAR(bench_json_capacity(b.batched, b.n_batched, 10), 9 + 12.0 / 55, 1e-12);
    CHECK_NEAR(bench_json_capacity(b.partitioned, b.n_partitioned, 10), 2, 0);
    CHECK_NEAR(bench_json_capacity(b.batched, b.n_batched, 25), 0, 0);
    CHECK_NEAR(bench_json_capacity(b.batched, b.n_batched, 14), 4, 1e-12); /* 4 sessions at exactly 14 */

    /* One session at 20 tok/s: eff_bw = 20 x 7e8 B / 20e9 B/s = 0.7. The
     * batches (4, 8, 9, 12) fit the phase model by least squares: its steps
     * then lie within 6% of each measured one (the sample bends more than
     * the model can). */
    plan_measure ms = {.bandwidth_gbs = b.bandwidth_gbs, .bytes_per_token = b.bytes_per_token,
                       .decode_tok_s = b.decode_tok_s, .flops_per_token = 2.5e9, .one_tok_s = one->min_tok_s};
    for (int i = 0; i < b.n_batched; i++)
        if (b.batched[i].sessions >= 2) {
            ms.sessions[ms.n_points] = b.batched[i].sessions;
            ms.tok_s[ms.n_points++] = b.batched[i].min_tok_s;
        }
    CHECK_EQ_INT(ms.n_points, 4);
    double eb = 0, ec = 0.123, u = -1;
    CHECK(plan_calibrate(&ms, 1e12, 0, &eb, &ec, &u, &err) == 0);
    CHECK_NEAR(eb, 0.7, 1e-12);
    CHECK(ec > 0 && ec != 0.123 && u >= 0);
    for (int i = 0; i < ms.n_points; i++) {
        double t = fmax(1 / 20.0, (u + ms.sessions[i]) * 2.5e9 / (ec * 1e12));
        CHECKF(fabs(t * ms.tok_s[i] - 1) < 0.06, "%d sessions: model %.4f s, measured %.4f s", ms.sessions[i], t,
               1 / ms.tok_s[i]);
    }
    /* Without sweep batches the compute figures are left alone; without a
     * one-session point the single-stream decode stands in for it. */
    int n_points = ms.n_points;
    ms.n_points = 0;
    ec = 0.123;
    u = -1;
    ms.one_tok_s = 0;
    ms.decode_tok_s = 10;
    CHECK(plan_calibrate(&ms, 1e12, 0, &eb, &ec, &u, &err) == 0);
    CHECK_NEAR(eb, 0.35, 1e-12);
    CHECK_NEAR(ec, 0.123, 0);
    CHECK_NEAR(u, -1, 0);
    /* Steps that do not grow past streaming (within 5%) say nothing about
     * compute either: every batch at the single stream's 0.1 s. */
    ms.n_points = n_points;
    for (int i = 0; i < n_points; i++) ms.tok_s[i] = 10 / 1.04;
    CHECK(plan_calibrate(&ms, 1e12, 0, &eb, &ec, &u, &err) == 0);
    CHECK_NEAR(ec, 0.123, 0);
    CHECK_NEAR(u, -1, 0);
    ms.tok_s[1] = 0; /* a batch that made no progress is bad input */
    CHECK(plan_calibrate(&ms, 1e12, 0, &eb, &ec, &u, &err) == -1);
    ms.tok_s[1] = 10;
    ms.decode_tok_s = 0;
    CHECK(plan_calibrate(&ms, 1e12, 0, &eb, &ec, &u, &err) == -1);
    ms.decode_tok_s = 10;
    ms.bandwidth_gbs = NAN;
    CHECK(plan_calibrate(&ms, 1e12, 0, &eb, &ec, &u, &err) == -1);

}

/* The fit on exact data of the phase model gives the machine back. */
static void test_calibration_exact(void) {
    rl_err err = {0};
    plan_measure ms;
    double eb = 0, ec = 0, u = -1;

    /* Exact data gives the machine back. Efficiency 0.5, peaks 1e12 (int8)
     * and 0.25e12 (float), a model of 1.5 + 0.5 GFLOP, u = 3: the products
     * take (3 + b) x 1.5e9 / 5e11 = 0.003 (3 + b) s, attention b x 0.5e9 /
     * 1.25e11 = 0.004 b. One session streams in 0.01 s (100 tok/s), so
     * from 2 sessions on the products' arithmetic is the longer:
     *   t(b) = 0.003 (3 + b) + 0.004 b = 0.009 + 0.007 b. */
    ms = (plan_measure){.bandwidth_gbs = 100, .bytes_per_token = 7e8, .one_tok_s = 100, .flops_per_token = 2e9,
                        .attn_flops_per_token = 0.5e9, .n_points = 4, .sessions = {2, 4, 8, 12}};
    for (int i = 0; i < ms.n_points; i++) ms.tok_s[i] = 1 / (0.009 + 0.007 * ms.sessions[i]);
    CHECK(plan_calibrate(&ms, 1e12, 0.25e12, &eb, &ec, &u, &err) == 0);
    CHECK_NEAR(eb, 0.7, 1e-12);
    CHECK_NEAR(ec, 0.5, 1e-6);
    CHECK_NEAR(u, 3, 1e-5);
    /* ... and when streaming is the longer at small batches: one session
     * at 20 tok/s (0.05 s), steps max(0.05, 0.003 (3 + b)) + 0.004 b:
     * 0.058 at 2, 0.066 at 4, 0.082 at 8, 0.098 at 12 (all streaming), and
     * 0.121, 0.149, 0.177 at 16, 20, 24 (arithmetic). */
    ms.one_tok_s = 20;
    ms.bandwidth_gbs = 20;
    int many[] = {2, 4, 8, 12, 16, 20, 24};
    ms.n_points = 7;
    for (int i = 0; i < 7; i++) {
        ms.sessions[i] = many[i];
        ms.tok_s[i] = 1 / (fmax(0.05, 0.003 * (3 + many[i])) + 0.004 * many[i]);
    }
    CHECK(plan_calibrate(&ms, 1e12, 0.25e12, &eb, &ec, &u, &err) == 0);
    CHECK_NEAR(ec, 0.5, 1e-6);
    CHECK_NEAR(u, 3, 1e-5);
    /* ... and a KV cache of 14 MB per session, read at eff_bw x 20 GB/s =
     * 14e9 B/s in 0.001 s: streaming is the single stream less that,
     * 0.049 s, and every session's step adds it: */
    ms.kv_bytes_per_session = 14e6;
    for (int i = 0; i < 7; i++) ms.tok_s[i] = 1 / (fmax(0.049, 0.003 * (3 + many[i])) + 0.005 * many[i]);
    CHECK(plan_calibrate(&ms, 1e12, 0.25e12, &eb, &ec, &u, &err) == 0);
    CHECK_NEAR(eb, 0.7, 1e-12);
    CHECK_NEAR(ec, 0.5, 1e-6);
    CHECK_NEAR(u, 3, 1e-5);

}

/* Calibrated factors apply to CPUs, not to GPUs (rackllm runs on CPUs). */
static void test_calibrated_factors(void) {
    double eb, ec;
    plan_params p = params();
    p.cpu_eff_bw = 0.7;
    p.cpu_eff_compute = 0.25;
    plan_hw c = cpu_hw(), g = gpu_hw();
    plan_efficiency(&c, &p, &eb, &ec);
    CHECK_NEAR(eb, 0.7, 0);
    CHECK_NEAR(ec, 0.25, 0);
    plan_efficiency(&g, &p, &eb, &ec);
    CHECK_NEAR(eb, 0.6, 0);
    CHECK_NEAR(ec, 0.3, 0);
    p.eff_bw = 0.9; /* an explicit flag wins everywhere */
    plan_efficiency(&g, &p, &eb, &ec);
    CHECK_NEAR(eb, 0.9, 0);
}

/* The machine and model of the verification cases: 2 cores, 20 GB/s,
 * 8 GiB, 1 int8 TOPS; 0.7e9 bytes of weights, 32768 B/token of KV at ctx
 * 192 (bench-sample.json's sweep), 2.5 GFLOP/token. */
static plan_hw two_core_hw(void) {
    plan_hw hw = cpu_hw();
    hw.cores = 2;
    hw.mem_bw_gbs = 20;
    hw.mem_gib = 8;
    hw.int8_tops = 1;
    return hw;
}

static plan_model sample_model(void) {
    plan_model m = test_model(0.7e9);
    m.kv_bytes_per_token = 32768;
    m.ctx = 192;
    m.flops_per_token = 2.5e9;
    return m;
}

static void test_verify(void) {
    /* A 2-core machine: 20 GB/s, 8 GiB, 1 int8 TOPS; calibrated 0.7 / 0.25,
     * the default u = 2. The model: 0.7e9 bytes, 32768 B/token of KV at ctx
     * 192 = 6,291,456 B per session, 2.5 GFLOP/token.
     *   batched: B = 14e9, C = 2.5e11, a session's arithmetic 0.01 s, its
     *            KV read a = 6291456 / 14e9 s: compute (2 + b) x 0.01 + b a
     *            <= 0.1 -> b <= 0.08 / (0.01 + a) = 7.66; bandwidth (0.1 -
     *            0.05) / a = 111 -> 7 sessions predicted.
     *   partitioned, one session each: the whole machine as one partition
     *            steps in max(0.05, 0.03) + a s (19.8 tok/s); two partitions
     *            of one core, half of B and C each, in max(0.1, 0.06) + 2a s
     *            (9.91 tok/s < 10) -> 1.
     * Measured 9 and 2: errors (7 - 9) / 9 = -22.2%, (1 - 2) / 2 = -50%. */
    plan_hw hw = two_core_hw();
    plan_model m = sample_model();
    plan_params p = params();
    p.cpu_eff_bw = 0.7;
    p.cpu_eff_compute = 0.25;
    plan_verify v;
    plan_verify_compare(&hw, &m, &p, 9, 2, 9.5, &v);
    const double a = 6291456 / 14e9, cap = 0.08 / (0.01 + a);
    CHECK_EQ_INT(v.predicted_batched, 7);
    CHECK_EQ_INT(v.predicted_partitioned, 1);
    CHECK_NEAR(v.error_batched_pct, -200.0 / 9, 1e-9);
    CHECK_NEAR(v.error_partitioned_pct, -50, 1e-9);
    /* Before rounding: the compute bound, 7.66 sessions. */
    CHECK_NEAR(v.predicted_capacity, cap, 1e-9);
    CHECK_NEAR(v.measured_capacity, 9.5, 0);
    CHECK_NEAR(v.error_capacity_pct, 100 * (cap - 9.5) / 9.5, 1e-9);
    plan_verify_compare(&hw, &m, &p, 0, 0, 0, &v);
    CHECK(isnan(v.error_batched_pct));
    CHECK(isnan(v.error_capacity_pct));
    /* eff_compute 0.27: C = 2.7e11, a session's arithmetic s = 2.5e9 / C:
     * (0.1 - 2 s) / (s + a) = 8.39 sessions, 8 whole (bandwidth allows 111). */
    p.cpu_eff_compute = 0.27;
    plan_verify_compare(&hw, &m, &p, 9, 2, 9, &v);
    const double s27 = 2.5e9 / 2.7e11, cap27 = (0.1 - 2 * s27) / (s27 + a);
    CHECK_EQ_INT(v.predicted_batched, 8);
    CHECK_NEAR(v.predicted_capacity, cap27, 1e-9);
    CHECK_NEAR(v.error_capacity_pct, 100 * (cap27 - 9) / 9, 1e-9);
}

/* A bench run as the calibration takes it (tests/data/bench-sample.json):
 * the sweep's middle at 128 + 64 / 2 = 160 tokens, the catalog model's
 * FLOPs there, 32768 B x 160 of KV per session, one session at 20 tok/s,
 * and the batches of 2 or more at half the floor (5 tok/s) or faster. */
static void test_bench_calibration(void) {
    bench_json b;
    rl_err err = {0};
    CHECKF(bench_json_load("tests/data/bench-sample.json", &b, &err) == 0, "%s", err.msg);
    plan_measure ms;
    plan_measure_bench(&b, &ms);
    rl_shape s;
    CHECK(shape_catalog_find("llama3.2-1b", &s, &err) == 0);
    CHECK_NEAR(ms.flops_per_token, shape_flops_per_token(&s, 160), 0);
    CHECK_NEAR(ms.attn_flops_per_token, shape_attention_flops(&s, 160), 0);
    CHECK(ms.attn_flops_per_token > 0 && ms.attn_flops_per_token < ms.flops_per_token);
    CHECK_NEAR(ms.kv_bytes_per_session, 32768.0 * 160, 0);
    CHECK_NEAR(ms.bandwidth_gbs, 20, 0);
    CHECK_NEAR(ms.bytes_per_token, 7e8, 0);
    CHECK_NEAR(ms.one_tok_s, 20, 0);
    CHECK_EQ_INT(ms.n_points, 4); /* 4, 9, 8 and 12 sessions, in the file's order */
    CHECK(ms.sessions[0] == 4 && ms.sessions[1] == 9 && ms.sessions[2] == 8 && ms.sessions[3] == 12);
    CHECK_NEAR(ms.tok_s[3], 8, 0);
    /* the same fit as plan_calibrate's on that measurement, at this
     * machine's int8 peak (q4_0), attention at its bf16 peak */
    plan_hw self = cpu_hw();
    self.int8_tops = 1;
    self.bf16_tflops = 0.25;
    self.eff_bw = 0.5;
    double eb = self.eff_bw, ec = 0, u = -1;
    CHECK(plan_calibrate(&ms, 1e12, 0.25e12, &eb, &ec, &u, &err) == 0);
    plan_params p = params();
    CHECKF(plan_calibrate_bench(&b, &self, &p, &err) == 0, "%s", err.msg);
    CHECK_NEAR(p.cpu_eff_bw, 0.7, 1e-12); /* 20 tok/s x 7e8 B / 20 GB/s */
    CHECK(ec > 0 && p.cpu_eff_compute == ec && p.cpu_step_fixed == u);
    /* a float run: the weights' arithmetic at the bf16 peak too */
    snprintf(b.type, sizeof b.type, "F16");
    double ec16 = 0, u16 = -1;
    CHECK(plan_calibrate(&ms, 0.25e12, 0.25e12, &eb, &ec16, &u16, &err) == 0);
    p = params();
    CHECK(plan_calibrate_bench(&b, &self, &p, &err) == 0);
    CHECK(p.cpu_eff_compute == ec16 && ec16 != ec);
    /* a floor of 20: only batches at 10 tok/s or faster (4, 9, 8) */
    b.floor_tok_s = 20;
    plan_measure_bench(&b, &ms);
    CHECK_EQ_INT(ms.n_points, 3);
    b.floor_tok_s = 10;
    /* an unknown model: no FLOPs, no batches; bandwidth alone is calibrated */
    snprintf(b.shape, sizeof b.shape, "no-such-shape");
    plan_measure_bench(&b, &ms);
    CHECK(ms.flops_per_token == 0 && ms.n_points == 0);
    p = params();
    CHECK(plan_calibrate_bench(&b, &self, &p, &err) == 0);
    CHECK_NEAR(p.cpu_eff_bw, 0.7, 1e-12);
    CHECK(p.cpu_eff_compute == 0 && p.cpu_step_fixed == -1);
    /* nothing measured: refused */
    b.bandwidth_gbs = 0;
    CHECK(plan_calibrate_bench(&b, &self, &p, &err) == -1 && err.code == RL_ERR_INPUT);
}

/* test_verify's machine and model, checked against bench-sample.json:
 * the run's floor (10) and context (128 + 64), its counts (9 and 2), its
 * crossing 9 + 12/55 (see test_calibration). */
static void test_bench_verification(void) {
    bench_json b, calib;
    rl_err err = {0};
    CHECKF(bench_json_load("tests/data/bench-sample.json", &b, &err) == 0, "%s", err.msg);
    calib = b;
    plan_params p = params();
    p.floor_tok_s = 3;
    p.ctx = 4096;
    plan_params_for_bench(&b, &p);
    CHECK_NEAR(p.floor_tok_s, 10, 0);
    CHECK_NEAR(p.ctx, 192, 0);
    p.cpu_eff_bw = 0.7;
    p.cpu_eff_compute = 0.25;
    plan_hw hw = two_core_hw();
    plan_model m = sample_model();
    plan_bench_check k;
    CHECKF(plan_check_bench(&hw, &m, &p, &b, &calib, &k, &err) == 0, "%s", err.msg);
    CHECK_EQ_INT(k.v.predicted_batched, 7);
    CHECK_EQ_INT(k.v.measured_batched, 9);
    CHECK_EQ_INT(k.v.predicted_partitioned, 1);
    CHECK_EQ_INT(k.v.measured_partitioned, 2);
    CHECK_NEAR(k.v.measured_capacity, 9 + 12.0 / 55, 1e-12);
    CHECK_NEAR(k.eff_bw, 0.7, 0);
    CHECK_NEAR(k.eff_compute, 0.25, 0);
    CHECK(k.have_partitioned);
    CHECK_NEAR(k.calibration_capacity, 9 + 12.0 / 55, 1e-12); /* the same conditions */
    CHECK(!k.have_halves);                                     /* one pass per point */
    /* the counts from the points when the run does not state them */
    b.max_batched = b.max_partitioned = -1;
    CHECK(plan_check_bench(&hw, &m, &p, &b, NULL, &k, &err) == 0);
    CHECK(k.v.measured_batched == 9 && k.v.measured_partitioned == 2);
    CHECK(isnan(k.calibration_capacity)); /* no calibration run */
    /* a calibration run under other conditions has no crossing to show */
    calib.prompt_len = 64;
    CHECK(plan_check_bench(&hw, &m, &p, &b, &calib, &k, &err) == 0);
    CHECK(isnan(k.calibration_capacity));
    /* the weights the run streamed, not the model's: at 1.4 GB a step
     * streams for the whole 0.1 s period, and no session keeps the floor */
    b.weight_bytes = 1.4e9;
    CHECK(plan_check_bench(&hw, &m, &p, &b, NULL, &k, &err) == 0);
    CHECK_EQ_INT(k.v.predicted_batched, 0);
    /* no partitioned sweep (--partitions 0), then no sweep at all */
    b.n_partitioned = 0;
    CHECK(plan_check_bench(&hw, &m, &p, &b, NULL, &k, &err) == 0);
    CHECK(!k.have_partitioned);
    CHECK(bench_json_has_sweep(&b));
    b.n_batched = 0;
    CHECK(!bench_json_has_sweep(&b));
    CHECK(plan_check_bench(&hw, &m, &p, &b, NULL, &k, &err) == -1 && err.code == RL_ERR_INPUT);
    /* a run without a sweep: its ctx, else the context as it was */
    b.prompt_len = b.gen_len = 0;
    plan_params_for_bench(&b, &p);
    CHECK_NEAR(p.ctx, 256, 0);
    b.ctx = 0;
    p.ctx = 1000;
    plan_params_for_bench(&b, &p);
    CHECK_NEAR(p.ctx, 1000, 0);
}

/* The measurement against itself: passes split into interleaved halves. */
static void test_bench_json_halves(void) {
    bench_json b;
    rl_err err = {0};
    /* Three passes: halves A = passes 1 and 3, B = pass 2 (A B A). Each
     * half's point is the median of its passes' slowest sessions:
     *   A: 4 -> (12 + 13) / 2 = 12.5, 6 -> (10.5 + 10.2) / 2 = 10.35, 8 -> 9.2
     *   B: 4 -> 11, 6 -> 9.5, 8 -> 8
     * so A keeps the floor up to 6 sessions, B up to 4; the crossings
     * interpolate the step time as bench_json_capacity does. */
    const char *three = "{\"rackllm_bench\": 1, \"model\": {}, \"sweep\": {\"batched\": ["
                        "{\"sessions\": 4, \"min_tok_s\": 12, \"pass_min_tok_s\": [12, 11, 13]},"
                        "{\"sessions\": 6, \"min_tok_s\": 10.2, \"pass_min_tok_s\": [10.5, 9.5, 10.2]},"
                        "{\"sessions\": 8, \"min_tok_s\": 9, \"pass_min_tok_s\": [9, 8, 9.4]}]}}";
    CHECK(bench_json_parse(three, strlen(three), "three", &b, &err) == 0);
    CHECK_EQ_INT(b.batched[1].n_passes, 3);
    CHECK_NEAR(b.batched[2].pass_min_tok_s[2], 9.4, 0);
    bench_halves h;
    CHECK(bench_json_halves(b.batched, b.n_batched, 10, &h));
    CHECK_EQ_INT(h.passes[0], 2);
    CHECK_EQ_INT(h.passes[1], 1);
    CHECK_EQ_INT(h.sessions[0], 6);
    CHECK_EQ_INT(h.sessions[1], 4);
    CHECK_NEAR(h.capacity[0], 6 + 2 * (0.1 - 1 / 10.35) / (1 / 9.2 - 1 / 10.35), 1e-12);
    CHECK_NEAR(h.capacity[1], 4 + 2 * (0.1 - 1 / 11.0) / (1 / 9.5 - 1 / 11.0), 1e-12);
    /* Four passes: A B B A. At one point, A = passes 1 and 4 (11, 10.6:
     * median 10.8, kept), B = passes 2 and 3 (9.8, 10.0: 9.9, not). */
    const char *four = "{\"rackllm_bench\": 1, \"model\": {}, \"sweep\": {\"batched\": ["
                       "{\"sessions\": 5, \"min_tok_s\": 10, \"pass_min_tok_s\": [11, 9.8, 10.0, 10.6]}]}}";
    CHECK(bench_json_parse(four, strlen(four), "four", &b, &err) == 0);
    CHECK(bench_json_halves(b.batched, b.n_batched, 10, &h));
    CHECK_EQ_INT(h.sessions[0], 5);
    CHECK_EQ_INT(h.sessions[1], 0);
    CHECK_NEAR(h.capacity[0], 5, 0); /* nothing measured above */
    /* Not enough to split: one pass, or points measured a different number
     * of times (or none recorded). */
    const char *one = "{\"rackllm_bench\": 1, \"model\": {}, \"sweep\": {\"batched\": ["
                      "{\"sessions\": 5, \"min_tok_s\": 10, \"pass_min_tok_s\": [11]}]}}";
    CHECK(bench_json_parse(one, strlen(one), "one", &b, &err) == 0);
    CHECK(!bench_json_halves(b.batched, b.n_batched, 10, &h));
    const char *uneven = "{\"rackllm_bench\": 1, \"model\": {}, \"sweep\": {\"batched\": ["
                         "{\"sessions\": 5, \"min_tok_s\": 10, \"pass_min_tok_s\": [11, 12]},"
                         "{\"sessions\": 6, \"min_tok_s\": 10, \"pass_min_tok_s\": [11, 12, 13]}]}}";
    CHECK(bench_json_parse(uneven, strlen(uneven), "uneven", &b, &err) == 0);
    CHECK(!bench_json_halves(b.batched, b.n_batched, 10, &h));
    CHECK(bench_json_load("tests/data/bench-sample.json", &b, &err) == 0);
    CHECK(!bench_json_halves(b.batched, b.n_batched, 10, &h));
}

static void test_bench_json_rejects(void) {
    bench_json b;
    rl_err err = {0};
    static const char *const BAD[] = {
        "", "[]", "{\"rackllm_bench\": 2, \"model\": {}}", "{\"rackllm_bench\": 1}",
        "{\"rackllm_bench\": 1, \"model\": {\"bytes_per_token\": -5}}",
        "{\"rackllm_bench\": 1, \"model\": {}, \"bandwidth_gbs\": \"fast\"}",
        "{\"rackllm_bench\": 1, \"model\": {}, \"sweep\": {\"batched\": [{\"sessions\": 0}]}}",
        "{\"rackllm_bench\": 1, \"model\": {}, \"sweep\": {\"batched\": [{\"sessions\": 2.5}]}}",
        "{\"rackllm_bench\": 1, \"model\": {}, \"max_sessions_at_floor\": {\"batched\": -1}}",
        "{\"rackllm_bench\": 1, \"model\": {}, \"floor\": 0}",
        "{\"rackllm_bench\": 1, \"model\": {}, \"sweep\": {\"batched\": [{\"sessions\": 1, \"pass_min_tok_s\": 3}]}}",
        "{\"rackllm_bench\": 1, \"model\": {}, \"sweep\": {\"batched\": [{\"sessions\": 1, \"pass_min_tok_s\": [3, -1]}]}}",
        "{\"rackllm_bench\": 1, \"model\": {}, \"sweep\": {\"batched\": [{\"sessions\": 1, \"pass_min_tok_s\": [\"x\"]}]}}",
        ("{\"rackllm_bench\": 1, \"model\": {}, \"sweep\": {\"batched\": [{\"sessions\": 1, \"pass_min_tok_s\": "
         "[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]}]}}"), /* 33 passes: one too many */
    };
    for (size_t i = 0; i < RL_ARRAY_LEN(BAD); i++) {
        err.code = 0;
        CHECKF(bench_json_parse(BAD[i], strlen(BAD[i]), "bad", &b, &err) == -1 && err.code == RL_ERR_INPUT,
               "accepted: %s", BAD[i]);
    }
    /* Unknown fields are ignored; a minimal file parses. */
    const char *ok = "{\"rackllm_bench\": 1, \"model\": {\"bytes_per_token\": 1e9}, \"future\": [1, 2]}";
    CHECK(bench_json_parse(ok, strlen(ok), "ok", &b, &err) == 0);
    CHECK_EQ_INT(b.max_batched, -1);
    CHECK(bench_json_load("tests/data/no-such-file.json", &b, &err) == -1);
}

/* ---- this machine and the SVG ---- */

static void test_cpu_peaks(void) {
    /* per core and cycle, from the flags (docs/planner.md) */
    machine_cpu c = {.vendor = "AuthenticAMD", .family = 25};
    double i8, f16;
    snprintf(c.flags, sizeof c.flags, "fpu sse4_1 avx2 fma f16c");
    CHECK_STR(machine_best_kernels(&c), "avx2");
    machine_peak_per_cycle(&c, NULL, &i8, &f16);
    CHECK_NEAR(i8, 128, 0);
    CHECK_NEAR(f16, 32, 0);
    /* AVX-512 VNNI: 256 int8 ops on Intel and on Zen 5, 128 on Zen 4
     * (two passes of 256 bits); forced avx2 kernels: AVX2's figure */
    snprintf(c.flags, sizeof c.flags, "avx2 fma f16c avx512f avx512bw avx512vl avx512dq avx512_vnni avx_vnni");
    CHECK_STR(machine_best_kernels(&c), "avx512");
    machine_peak_per_cycle(&c, NULL, &i8, &f16);
    CHECK_NEAR(i8, 128, 0);
    CHECK_NEAR(f16, 32, 0);
    c.family = 26;
    machine_peak_per_cycle(&c, NULL, &i8, &f16);
    CHECK_NEAR(i8, 256, 0);
    CHECK_NEAR(f16, 64, 0);
    machine_peak_per_cycle(&c, "avx2", &i8, &f16);
    CHECK_NEAR(i8, 128, 0);
    machine_peak_per_cycle(&c, "ref", &i8, &f16);
    CHECK_NEAR(i8, 2, 0);
    snprintf(c.vendor, sizeof c.vendor, "GenuineIntel");
    c.family = 6;
    machine_peak_per_cycle(&c, NULL, &i8, &f16);
    CHECK_NEAR(i8, 256, 0);
    /* AVX-VNNI without AVX-512 (no DQ here): avxvnni */
    snprintf(c.flags, sizeof c.flags, "avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni avx_vnni");
    CHECK_STR(machine_best_kernels(&c), "avxvnni");
    /* Arm: dot product 64, i8mm 128. A flag is a whole word. */
    machine_cpu arm = {.flags = "fp asimd asimdhp asimddp"};
    CHECK_STR(machine_best_kernels(&arm), "dotprod");
    machine_peak_per_cycle(&arm, NULL, &i8, &f16);
    CHECK_NEAR(i8, 64, 0);
    CHECK_NEAR(f16, 32, 0);
    snprintf(arm.flags, sizeof arm.flags, "fp asimd asimddp i8mm");
    machine_peak_per_cycle(&arm, NULL, &i8, &f16);
    CHECK_NEAR(i8, 128, 0);
    machine_cpu odd = {.flags = "avx512fx avx2x"};
    CHECK_STR(machine_best_kernels(&odd), "ref");
    machine_peak_per_cycle(&odd, NULL, &i8, &f16);
    CHECK_NEAR(f16, 8, 0);
}

static void test_this_machine(void) {
    /* With a bandwidth given, nothing is measured; cores come from the machine module. */
    plan_hw hw;
    rl_err err = {0};
    CHECKF(hwcatalog_this(12.5, &hw, &err) == 0, "%s", err.msg);
    CHECK_NEAR(hw.mem_bw_gbs, 12.5, 0);
    CHECK(hw.cores >= 1);
    CHECK(hw.int8_tops > 0 && hw.server_power_w > 0 && hw.mem_gib > 0);
    CHECK_STR(hw.id, "this");
}

static void test_svg(void) {
    const char *groups[2] = {"a & b", "c"}, *series[2] = {"x<1>", "y"}, *notes[1] = {"note \"quoted\""};
    double values[4] = {1, 10, 0, 1000};
    plansvg_chart c = {"title", "y", true, 2, groups, 2, series, values, 1, notes};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    rl_err err = {0};
    CHECK(plansvg_write(f, &c, &err) == 0);
    fclose(f);
    CHECK(buf && strncmp(buf, "<?xml", 5) == 0);
    CHECK(buf && strstr(buf, "<svg xmlns=\"http://www.w3.org/2000/svg\"") != NULL);
    CHECK(buf && strstr(buf, "</svg>\n") != NULL);
    CHECK(buf && strstr(buf, "a &amp; b") && strstr(buf, "x&lt;1&gt;") && strstr(buf, "&quot;quoted&quot;"));
    CHECK(buf && !strstr(buf, "a & b"));
    /* Log axis: decades 1, 10, 100, 1000 labelled. */
    CHECK(buf && strstr(buf, ">1000</text>") != NULL);
    free(buf);
    plansvg_chart empty = {"t", "y", false, 0, groups, 2, series, values, 0, notes};
    f = open_memstream(&buf, &len);
    CHECK(plansvg_write(f, &empty, &err) == -1);
    fclose(f);
    free(buf);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(test_bench_json_halves);
    RUN(test_bandwidth_bound_and_power_bound);
    RUN(test_compute_bound);
    RUN(test_memory_bound);
    RUN(test_space_bound);
    RUN(test_gpu_strategies);
    RUN(test_cores_slicing);
    RUN(test_two_sockets_do_not_pool);
    RUN(test_step_rate);
    RUN(test_model_from_shape);
    RUN(test_catalog_sources);
    RUN(test_matrix_qualitative);
    RUN(test_calibration);
    RUN(test_calibration_exact);
    RUN(test_calibrated_factors);
    RUN(test_verify);
    RUN(test_bench_calibration);
    RUN(test_bench_verification);
    RUN(test_bench_json_rejects);
    RUN(test_cpu_peaks);
    RUN(test_this_machine);
    RUN(test_svg);
    return test_report("test_plan");
}
