/*
 * machine.c — the machine's facts (see machine.h): /proc/cpuinfo parsed,
 * the affinity mask listed, threads split into partitions, and the
 * streaming-read bandwidth probe, run on the thread pool.
 */
#include "machine.h"

#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "threadpool.h"

/* ---- /proc/cpuinfo ---- */

/* The value of the first "key<spaces or tabs>: value" line, or "". */
static void cpuinfo_value(const char *text, const char *key, char *out, size_t size) {
    out[0] = 0;
    size_t n = strlen(key);
    for (const char *line = text; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        if (strncmp(line, key, n) == 0 && (line[n] == ' ' || line[n] == '\t' || line[n] == ':')) {
            const char *colon = memchr(line, ':', len);
            if (colon) {
                colon++;
                while (*colon == ' ') colon++;
                snprintf(out, size, "%.*s", (int)(line + len - colon), colon);
                return;
            }
        }
        line = eol ? eol + 1 : NULL;
    }
}

/* The largest "cpu MHz" of the text, in GHz (0 if none). */
static double cpuinfo_max_ghz(const char *text) {
    double best = 0;
    for (const char *p = text; (p = strstr(p, "cpu MHz")) != NULL; p++) {
        const char *colon = strchr(p, ':');
        if (colon) best = fmax(best, strtod(colon + 1, NULL) / 1000);
    }
    return best;
}

void machine_cpu_parse(const char *text, machine_cpu *c) {
    memset(c, 0, sizeof *c);
    cpuinfo_value(text, "model name", c->model, sizeof c->model);
    if (!c->model[0]) cpuinfo_value(text, "Hardware", c->model, sizeof c->model);
    if (!c->model[0]) {
        char impl[32], part[32];
        cpuinfo_value(text, "CPU implementer", impl, sizeof impl);
        cpuinfo_value(text, "CPU part", part, sizeof part);
        if (impl[0]) snprintf(c->model, sizeof c->model, "Arm implementer %s part %s", impl, part);
    }
    cpuinfo_value(text, "vendor_id", c->vendor, sizeof c->vendor);
    cpuinfo_value(text, "flags", c->flags, sizeof c->flags);
    if (!c->flags[0]) cpuinfo_value(text, "Features", c->flags, sizeof c->flags);
    c->ghz = cpuinfo_max_ghz(text);
    char family[16];
    cpuinfo_value(text, "cpu family", family, sizeof family);
    c->family = atoi(family);
}

void machine_cpu_describe(machine_cpu *c) {
    char *info = rl_read_small_file("/proc/cpuinfo", 1 << 20);
    machine_cpu_parse(info ? info : "", c);
    free(info);
    if (!(c->ghz > 0)) {
        char *s = rl_read_small_file("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", 64);
        c->ghz = s ? strtod(s, NULL) / 1e6 : 0; /* kHz */
        free(s);
    }
}

bool machine_has_flag(const char *flags, const char *flag) {
    size_t n = strlen(flag);
    for (const char *p = flags; n && (p = strstr(p, flag)) != NULL; p += n) {
        bool start = p == flags || p[-1] == ' ' || p[-1] == '\t';
        bool end = p[n] == 0 || p[n] == ' ' || p[n] == '\n' || p[n] == '\t';
        if (start && end) return true;
    }
    return false;
}

const char *machine_best_kernels(const machine_cpu *c) {
    const char *f = c->flags;
    bool avx2 = machine_has_flag(f, "avx2") && machine_has_flag(f, "fma") && machine_has_flag(f, "f16c");
    if (avx2 && machine_has_flag(f, "avx512f") && machine_has_flag(f, "avx512bw") && machine_has_flag(f, "avx512vl") &&
        machine_has_flag(f, "avx512dq") && machine_has_flag(f, "avx512_vnni"))
        return "avx512";
    if (avx2 && machine_has_flag(f, "avx_vnni")) return "avxvnni";
    if (avx2) return "avx2";
    if (machine_has_flag(f, "asimd")) {
        if (machine_has_flag(f, "asimddp") && machine_has_flag(f, "i8mm")) return "i8mm";
        return machine_has_flag(f, "asimddp") ? "dotprod" : "neon";
    }
    return "ref";
}

void machine_peak_per_cycle(const machine_cpu *c, const char *kernels, double *int8_ops, double *f16_flops) {
    const char *level = kernels && *kernels ? kernels : machine_best_kernels(c);
    const char *f = c->flags;
    /* 512-bit instructions at full width: Intel, AMD from Zen 5 */
    bool amd = strstr(c->vendor, "AMD") != NULL;
    bool full512 = !amd || c->family >= 26;
    static const struct { const char *level; double i8; } I8[] = {
        {"avx512", 256}, {"avxvnni", 128}, {"avx2", 128}, {"i8mm", 128}, {"dotprod", 64}, {"neon", 16},
    };
    double i8 = 2;
    for (size_t i = 0; i < RL_ARRAY_LEN(I8); i++)
        if (strcmp(level, I8[i].level) == 0) i8 = I8[i].i8;
    if (strcmp(level, "avx512") == 0 && !full512) i8 = 128;
    double f16 = 8;
    if (machine_has_flag(f, "avx512_bf16")) f16 = full512 ? 128 : 64;
    else if (machine_has_flag(f, "avx512f")) f16 = full512 ? 64 : 32;
    else if (machine_has_flag(f, "fma") || machine_has_flag(f, "asimdhp")) f16 = 32;
    else if (machine_has_flag(f, "asimd")) f16 = 16;
    *int8_ops = i8;
    *f16_flops = f16;
}

/* The features the kernels (or the planner's peak estimate) care about. */
static const char *const FEATURES[] = {
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx_vnni", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni",
    "avx512_bf16", "amx_int8", "amx_bf16", "asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2",
};

void machine_features(const char *flags, char *out, size_t size) {
    out[0] = 0;
    for (size_t i = 0; i < RL_ARRAY_LEN(FEATURES); i++) {
        if (!machine_has_flag(flags, FEATURES[i])) continue;
        size_t n = strlen(out);
        snprintf(out + n, size - n, "%s%s", n ? " " : "", FEATURES[i]);
    }
}

/* ---- CPUs and memory ---- */

int machine_cpus(int *cpus, int max) {
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        for (int c = 0; c < CPU_SETSIZE && n < max; c++)
            if (CPU_ISSET(c, &set)) cpus[n++] = c;
    if (n == 0 && max > 0) cpus[n++] = 0;
    return n;
}

int machine_online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)RL_MIN(n, 1 << 20) : 1;
}

uint64_t machine_memory_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

/* The first number in a file (a /proc or /sys value), or false. */
static bool read_number(const char *path, const char *after, uint64_t *out) {
    FILE *f = fopen(path, "r");
    if (!f) return false;
    char line[256];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        const char *p = after ? (strncmp(line, after, strlen(after)) == 0 ? line + strlen(after) : NULL) : line;
        unsigned long long v;
        if (p && sscanf(p, " %llu", &v) == 1) {
            *out = v;
            found = true;
        }
    }
    fclose(f);
    return found;
}

/* Room left in the cgroup whose memory files are in dir (limit - usage);
 * false when it has no limit. */
static bool cgroup_room(const char *dir, const char *limit_file, const char *usage_file, uint64_t *room) {
    char path[700];
    uint64_t limit, used;
    snprintf(path, sizeof path, "%s/%s", dir, limit_file);
    if (!read_number(path, NULL, &limit) || limit >= (1ull << 60)) return false; /* "max", or v1's "none" */
    snprintf(path, sizeof path, "%s/%s", dir, usage_file);
    if (!read_number(path, NULL, &used)) used = 0;
    *room = limit > used ? limit - used : 0;
    return true;
}

/* The memory cgroup's directory from /proc/self/cgroup: "0::/path" (v2)
 * or "N:memory:/path" (v1). */
static bool own_cgroup(bool v2, char *out, size_t cap) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return false;
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        const char *tag = v2 ? "0::" : ":memory:";
        const char *p = v2 ? (strncmp(line, tag, 3) == 0 ? line + 3 : NULL) : strstr(line, tag);
        if (p && !v2) p += strlen(tag);
        if (p) {
            snprintf(out, cap, "%s%s", v2 ? "/sys/fs/cgroup" : "/sys/fs/cgroup/memory", p);
            found = true;
        }
    }
    fclose(f);
    return found;
}

uint64_t machine_available_bytes(void) {
    uint64_t kb = 0, avail = 0, room;
    if (read_number("/proc/meminfo", "MemAvailable:", &kb)) avail = kb * 1024;
    char dir[600];
    const struct { bool v2; const char *root, *limit, *usage; } groups[] = {
        {true, "/sys/fs/cgroup", "memory.max", "memory.current"},
        {false, "/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes"},
    };
    for (size_t i = 0; i < sizeof groups / sizeof *groups; i++) {
        bool own = own_cgroup(groups[i].v2, dir, sizeof dir);
        for (int k = 0; k < 2; k++) { /* the process's own group, then the mount's root (a container's) */
            const char *d = k == 0 ? (own ? dir : NULL) : groups[i].root;
            if (d && cgroup_room(d, groups[i].limit, groups[i].usage, &room) && (avail == 0 || room < avail))
                avail = room;
        }
    }
    return avail;
}

/* ---- partitions ---- */

int machine_split(int threads, int parts, int index, int *first) {
    if (parts < 1) parts = 1;
    int per = threads / parts, extra = threads % parts;
    *first = index * per + RL_MIN(index, extra);
    return per + (index < extra);
}

int machine_partition_cpus(const int *cpus, int n_cpus, int threads, int parts, int index, int *out, int max) {
    int first, count = machine_split(threads, parts, index, &first);
    for (int j = 0; j < count && j < max; j++) out[j] = n_cpus > 0 ? cpus[(first + j) % n_cpus] : -1;
    return count;
}

/* ---- bandwidth ---- */

#define BW_MAX_THREADS 256
#define BW_PASSES 5

typedef struct bw_job {
    const uint64_t *buf;
    size_t per;                   /* words each task reads */
    uint64_t sum[BW_MAX_THREADS]; /* kept, so that the reads are not optimised away */
} bw_job;

/* Task t reads slice t with four independent sums. */
static void read_slice(void *ctx, int task, int thread) {
    bw_job *j = ctx;
    const uint64_t *p = j->buf + (size_t)task * j->per;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    size_t i = 0;
    for (; i + 4 <= j->per; i += 4) {
        a += p[i];
        b += p[i + 1];
        c += p[i + 2];
        d += p[i + 3];
    }
    for (; i < j->per; i++) a += p[i];
    j->sum[task] = a + b + c + d;
}

int machine_bandwidth(int threads, size_t bytes, double *gbs, rl_err *err) {
    threads = RL_MAX(1, RL_MIN(threads, BW_MAX_THREADS));
    size_t words = bytes / sizeof(uint64_t);
    if (words < (size_t)threads * 1024) return rl_fail(err, RL_ERR_INPUT, "bandwidth probe: buffer too small");
    bw_job *j = rl_calloc(1, sizeof *j, err);
    uint64_t *buf = j ? rl_aligned_alloc(words * sizeof *buf, err) : NULL;
    threadpool *tp = buf ? tp_new(threads, NULL, err) : NULL;
    if (!tp) {
        free(buf);
        free(j);
        return -1;
    }
    for (size_t i = 0; i < words; i++) buf[i] = i; /* touch every page */
    j->buf = buf;
    j->per = words / (size_t)threads;
    double best = 0, read = (double)((size_t)threads * j->per * sizeof(uint64_t));
    volatile uint64_t sink = 0;
    for (int pass = 0; pass < BW_PASSES; pass++) {
        double t0 = rl_now();
        tp_run(tp, read_slice, j, threads);
        double dt = rl_now() - t0;
        for (int t = 0; t < threads; t++) sink += j->sum[t];
        if (dt > 0 && read / dt / 1e9 > best) best = read / dt / 1e9;
    }
    (void)sink;
    tp_free(tp);
    free(buf);
    free(j);
    *gbs = best;
    return 0;
}
