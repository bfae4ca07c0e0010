/*
 * hwcatalog.c — data/hardware.json into plan_hw, and the probe of `this`
 * machine (see hwcatalog.h).
 */
#include "hwcatalog.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/embedded.h"

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

/* ---- peak compute from the instruction set ---- */

/* Whole-word search in a space-separated flag list. */
static bool has_flag(const char *flags, const char *flag) {
    size_t n = strlen(flag);
    for (const char *p = flags; (p = strstr(p, flag)) != NULL; p += n) {
        bool start = p == flags || p[-1] == ' ' || p[-1] == '\t';
        bool end = p[n] == 0 || p[n] == ' ' || p[n] == '\n' || p[n] == '\t';
        if (start && end) return true;
    }
    return false;
}

void hwcatalog_cpu_peaks(int cores, double ghz, const char *flags, const char *vendor, double *int8_ops,
                         double *bf16_ops) {
    /* int8 ops and 16-bit-float FLOPs per cycle per core (docs/planner.md):
     * two SIMD pipes doing dot products or FMAs of the widest width found. */
    bool intel = vendor && strstr(vendor, "Intel");
    double i8 = 16, f16 = 8; /* plain SSE2 / Advanced SIMD without dot products */
    if (has_flag(flags, "avx512_vnni")) i8 = intel ? 256 : 128; /* AMD splits 512-bit into 2 x 256 */
    else if (has_flag(flags, "avx_vnni") || has_flag(flags, "avx2")) i8 = 128;
    else if (has_flag(flags, "asimddp")) i8 = 64;
    else if (has_flag(flags, "sse4_1")) i8 = 64;
    if (has_flag(flags, "avx512_bf16")) f16 = intel ? 128 : 64;
    else if (has_flag(flags, "avx512f")) f16 = intel ? 64 : 32;
    else if (has_flag(flags, "fma")) f16 = 32;
    else if (has_flag(flags, "asimdhp")) f16 = 32;
    else if (has_flag(flags, "asimd")) f16 = 16;
    *int8_ops = cores * ghz * 1e9 * i8;
    *bf16_ops = cores * ghz * 1e9 * f16;
}

/* ---- bandwidth ---- */

typedef struct reader {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} reader;

static void *read_slice(void *arg) {
    reader *r = arg;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    size_t i = 0;
    for (; i + 4 <= r->n; i += 4) {
        a += r->p[i];
        b += r->p[i + 1];
        c += r->p[i + 2];
        d += r->p[i + 3];
    }
    for (; i < r->n; i++) a += r->p[i];
    r->sum = a + b + c + d;
    return NULL;
}

int hwcatalog_measure_bandwidth(int threads, size_t bytes, double *gbs, rl_err *err) {
    if (threads < 1) threads = 1;
    if (threads > 256) threads = 256;
    size_t words = bytes / sizeof(uint64_t);
    if (words < (size_t)threads * 1024) return rl_fail(err, RL_ERR_INPUT, "bandwidth probe: buffer too small");
    uint64_t *buf = rl_aligned_alloc(words * sizeof *buf, err);
    if (!buf) return -1;
    for (size_t i = 0; i < words; i++) buf[i] = i; /* touch every page */
    reader rd[256];
    pthread_t tid[256];
    size_t per = words / threads;
    double best = 0;
    volatile uint64_t sink = 0; /* keeps the sums alive */
    for (int pass = 0; pass < 5; pass++) {
        double t0 = rl_now();
        int started = 0;
        for (int t = 0; t < threads; t++) {
            rd[t] = (reader){buf + t * per, per, 0};
            if (t > 0 && pthread_create(&tid[t], NULL, read_slice, &rd[t]) == 0) started = t;
            else if (t > 0) rd[t].n = 0; /* could not start: do without */
        }
        read_slice(&rd[0]);
        for (int t = 1; t <= started; t++) pthread_join(tid[t], NULL);
        double dt = rl_now() - t0;
        size_t read = 0;
        for (int t = 0; t < threads; t++) {
            read += rd[t].n * sizeof(uint64_t);
            sink += rd[t].sum;
        }
        if (dt > 0 && read / dt / 1e9 > best) best = read / dt / 1e9;
    }
    (void)sink;
    free(buf);
    *gbs = best;
    return 0;
}

/* ---- this machine ---- */

/* The value of the first "key : value" line of /proc/cpuinfo, or "". */
static void cpuinfo_value(const char *text, const char *key, char *out, size_t size) {
    out[0] = 0;
    size_t n = strlen(key);
    for (const char *line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
        if (strncmp(line, key, n) != 0 || (line[n] != ' ' && line[n] != '\t' && line[n] != ':')) continue;
        const char *colon = strchr(line, ':');
        const char *eol = strchr(line, '\n');
        if (!colon || (eol && colon > eol)) continue;
        colon++;
        while (*colon == ' ') colon++;
        size_t len = eol ? (size_t)(eol - colon) : strlen(colon);
        snprintf(out, size, "%.*s", (int)RL_MIN(len, size - 1), colon);
        return;
    }
}

/* The largest "cpu MHz" of /proc/cpuinfo, in GHz (0 if none). */
static double cpuinfo_max_ghz(const char *text) {
    double best = 0;
    for (const char *p = text; (p = strstr(p, "cpu MHz")) != NULL; p++) {
        const char *colon = strchr(p, ':');
        if (colon) best = fmax(best, strtod(colon + 1, NULL) / 1000);
    }
    return best;
}


static double cpufreq_ghz(void) {
    char *s = rl_read_small_file("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", 64);
    double khz = s ? strtod(s, NULL) : 0;
    free(s);
    return khz / 1e6;
}

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

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    hw->units = 1;
    hw->cores = cores > 0 ? (int)RL_MIN(cores, 4096) : 1;
    hw->mem_gib = pages > 0 && page > 0 ? (double)pages * page / PLAN_GIB : 0;

    char *info = rl_read_small_file("/proc/cpuinfo", 1 << 20);
    char flags[4096] = "", vendor[128] = "", model[96] = "";
    double ghz = 0;
    if (info) {
        cpuinfo_value(info, "flags", flags, sizeof flags);
        if (!flags[0]) cpuinfo_value(info, "Features", flags, sizeof flags);
        cpuinfo_value(info, "vendor_id", vendor, sizeof vendor);
        cpuinfo_value(info, "model name", model, sizeof model);
        ghz = cpuinfo_max_ghz(info);
        free(info);
    }
    if (!(ghz > 0)) ghz = cpufreq_ghz();
    if (!(ghz > 0)) ghz = 2.5; /* documented fallback */
    hw->clock_ghz = ghz;
    double i8, f16;
    hwcatalog_cpu_peaks(hw->cores, ghz, flags, vendor, &i8, &f16);
    hw->int8_tops = i8 / 1e12;
    hw->bf16_tflops = f16 / 1e12;
    if (model[0]) snprintf(hw->name, sizeof hw->name, "this machine: %s, %d cores", model, hw->cores);

    if (bandwidth_gbs > 0) {
        hw->mem_bw_gbs = bandwidth_gbs;
    } else {
        size_t bytes = 256u << 20;
        double phys = hw->mem_gib * PLAN_GIB;
        if (phys > 0 && bytes > phys / 8) bytes = (size_t)(phys / 8);
        if (hwcatalog_measure_bandwidth(hw->cores, bytes, &hw->mem_bw_gbs, err)) return -1;
    }
    hw->server_power_w = hw->cores * w_per_core;
    hw->server_usd = hw->cores * usd_per_core;
    hw->server_u = u;
    return 0;
}
