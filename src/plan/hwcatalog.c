/*
 * hwcatalog.c — data/hardware.json into plan_hw, and `this` machine from
 * the machine module's facts (see hwcatalog.h).
 */
#include "hwcatalog.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/embedded.h"
#include "base/machine.h"

/* ---- the file ---- */

static cJSON *load_root(rl_err *err) {
    size_t size;
    const unsigned char *text = rl_embedded_find("hardware.json", &size);
    if (!text) {
        rl_fail(err, RL_ERR_INTERNAL, "data/hardware.json is not embedded in this build");
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength((const char *)text, size);
    if (!root) rl_fail(err, RL_ERR_INTERNAL, "data/hardware.json does not parse");
    return root;
}

/* The value of a figure object ({"value": ..., "src": ...}); 0 when null. */
static double fig(const cJSON *entry, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(entry, key), "value");
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* The string value of a figure object, into buf ("" when absent). */
static void fig_str(const cJSON *entry, const char *key, char *buf, size_t size) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(entry, key), "value");
    snprintf(buf, size, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

static void efficiency_defaults(const cJSON *root, const char *kind, plan_hw *hw) {
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "efficiency_defaults"), kind);
    hw->eff_bw = fig(d, "bandwidth");
    hw->eff_compute = fig(d, "compute");
}

static void from_json(const cJSON *root, const cJSON *e, plan_hw *hw) {
    memset(hw, 0, sizeof *hw);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "name");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(e, "kind");
    if (cJSON_IsString(id)) snprintf(hw->id, sizeof hw->id, "%s", id->valuestring);
    if (cJSON_IsString(name)) snprintf(hw->name, sizeof hw->name, "%s", name->valuestring);
    bool gpu = cJSON_IsString(kind) && strcmp(kind->valuestring, "gpu") == 0;
    hw->kind = gpu ? PLAN_HW_GPU : PLAN_HW_CPU;
    hw->units = (int)fig(e, "units");
    hw->cores = (int)fig(e, "cores");
    hw->clock_ghz = fig(e, "clock_ghz");
    hw->mem_bw_gbs = fig(e, "mem_bw_gbs");
    hw->mem_gib = fig(e, "mem_gb");
    hw->int8_tops = fig(e, "int8_tops");
    hw->bf16_tflops = fig(e, "bf16_tflops");
    hw->tdp_w = fig(e, "tdp_w");
    hw->unit_usd = fig(e, "unit_usd");
    hw->mig_instances = (int)fig(e, "mig_instances");
    fig_str(e, "uarch", hw->uarch, sizeof hw->uarch);
    fig_str(e, "isa", hw->isa, sizeof hw->isa);
    hw->mig_mem_gib = fig(e, "mig_mem_gb");
    hw->mig_bw_fraction = fig(e, "mig_bw_fraction");
    hw->mig_compute_fraction = fig(e, "mig_compute_fraction");
    hw->server_power_w = fig(e, "server_power_w");
    hw->server_u = fig(e, "server_u");
    hw->server_usd = fig(e, "server_usd");
    efficiency_defaults(root, gpu ? "gpu" : "cpu", hw);
}

static const cJSON *entries(const cJSON *root) { return cJSON_GetObjectItemCaseSensitive(root, "hardware"); }

int hwcatalog_count(rl_err *err) {
    cJSON *root = load_root(err);
    if (!root) return -1;
    int n = cJSON_GetArraySize(entries(root));
    cJSON_Delete(root);
    return n;
}

int hwcatalog_get(int i, plan_hw *hw, rl_err *err) {
    cJSON *root = load_root(err);
    if (!root) return -1;
    const cJSON *e = cJSON_GetArrayItem(entries(root), i);
    if (e) from_json(root, e, hw);
    cJSON_Delete(root);
    return e ? 0 : rl_fail(err, RL_ERR_INPUT, "no hardware entry number %d", i);
}

int hwcatalog_find(const char *id, plan_hw *hw, rl_err *err) {
    cJSON *root = load_root(err);
    if (!root) return -1;
    const cJSON *e;
    bool found = false;
    cJSON_ArrayForEach(e, entries(root)) {
        const cJSON *eid = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (cJSON_IsString(eid) && strcmp(eid->valuestring, id) == 0) {
            from_json(root, e, hw);
            found = true;
            break;
        }
    }
    cJSON_Delete(root);
    if (!found) return rl_fail(err, RL_ERR_INPUT, "unknown hardware '%s' (see `rackllm plan --list`)", id);
    return 0;
}

/* ---- this machine ---- */

int hwcatalog_this(double bandwidth_gbs, plan_hw *hw, rl_err *err) {
    if (hwcatalog_find("this", hw, err)) return -1;
    cJSON *root = load_root(err);
    if (!root) return -1;
    const cJSON *e;
    double w_per_core = 0, usd_per_core = 0, u = 1;
    cJSON_ArrayForEach(e, entries(root)) {
        const cJSON *eid = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (cJSON_IsString(eid) && strcmp(eid->valuestring, "this") == 0) {
            w_per_core = fig(e, "power_w_per_core");
            usd_per_core = fig(e, "usd_per_core");
            u = fig(e, "server_u");
        }
    }
    cJSON_Delete(root);

    uint64_t phys = machine_memory_bytes();
    hw->units = 1;
    hw->cores = RL_MIN(machine_online_cpus(), 4096);
    hw->mem_gib = (double)phys / PLAN_GIB;

    machine_cpu cpu;
    machine_cpu_describe(&cpu);
    double ghz = cpu.ghz > 0 ? cpu.ghz : 2.5; /* documented fallback */
    hw->clock_ghz = ghz;
    double i8, f16;
    machine_peak_per_cycle(&cpu, NULL, &i8, &f16);
    hw->int8_tops = hw->cores * ghz * i8 / 1e3;
    hw->bf16_tflops = hw->cores * ghz * f16 / 1e3;
    if (cpu.model[0]) snprintf(hw->name, sizeof hw->name, "this machine: %.96s, %d cores", cpu.model, hw->cores);

    if (bandwidth_gbs > 0) {
        hw->mem_bw_gbs = bandwidth_gbs;
    } else {
        size_t bytes = 256u << 20;
        if (phys > 0 && bytes > phys / 8) bytes = (size_t)(phys / 8);
        if (machine_bandwidth(hw->cores, bytes, &hw->mem_bw_gbs, err)) return -1;
    }
    hw->server_power_w = hw->cores * w_per_core;
    hw->server_usd = hw->cores * usd_per_core;
    hw->server_u = u;
    return 0;
}
