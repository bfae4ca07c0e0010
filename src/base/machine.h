/*
 * machine.h — what rackllm knows about the machine it runs on, in one
 * place: the CPU as /proc/cpuinfo describes it, the CPUs this process may
 * use, how threads are split into partitions, the physical memory, and the
 * memory bandwidth a streaming read reaches.
 *
 * The bench reports these facts, the server pins its partitions by them and
 * the planner's `this` machine is built from them, so each is computed
 * here once: in particular machine_partition_cpus is the one rule by which
 * both the bench's partitioned sweep and the server's partitions take their
 * cores (with 5 threads and 2 partitions: 3 + 2, the first partitions
 * taking the extra threads).
 */
#ifndef RACKLLM_MACHINE_H
#define RACKLLM_MACHINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* The CPU, as the kernel's /proc/cpuinfo lists it (its first processor). */
typedef struct machine_cpu {
    char model[128];   /* "model name" (x86), else "Hardware", else "Arm
                          implementer X part Y"; "" if none */
    char vendor[64];   /* "vendor_id" ("GenuineIntel", "AuthenticAMD"), "" on Arm */
    char flags[8192];  /* "flags" (x86) or "Features" (Arm): space-separated */
    int family;        /* x86 "cpu family" (AMD Zen 4: 25, Zen 5: 26); 0 if none */
    double ghz;        /* the largest "cpu MHz", else cpufreq's maximum; 0 if unknown */
} machine_cpu;

/* Fills c from /proc/cpuinfo text (tests pass their own); c->ghz from the
 * text alone. */
void machine_cpu_parse(const char *cpuinfo, machine_cpu *c);
/* This machine's CPU (/proc/cpuinfo, and cpufreq for a clock the text
 * lacks). Fields stay empty where the system says nothing. */
void machine_cpu_describe(machine_cpu *c);

/* Whether a space-separated flag list holds `flag` as a whole word. */
bool machine_has_flag(const char *flags, const char *flag);

/* Of the instruction-set features the kernels or the planner's peak
 * estimate care about (avx2, avx512_vnni, asimddp, i8mm, ...), those in
 * `flags`, space-separated, into out. */
void machine_features(const char *flags, char *out, size_t size);

/* The best kernel level c's flags allow, named as kern_level_name names
 * it: "avx512" (AVX-512 F/BW/VL/DQ + VNNI), "avxvnni", "avx2" (+ FMA,
 * F16C), "i8mm", "dotprod", "neon", else "ref". The same rule as
 * kern_level_supported, from the flags instead of cpuid, so that the
 * planner can describe CPUs it does not run on (test_kernels checks that
 * the two agree on the machine running it). */
const char *machine_best_kernels(const machine_cpu *c);

/* Peak int8 operations (a multiply-add is 2) and 16-bit float FLOPs per
 * cycle of one core of CPU c running kernels of level `kernels` (NULL or
 * "": machine_best_kernels(c)): two SIMD pipes, each doing one dot-product
 * instruction of that level's width per cycle (docs/planner.md). AVX-512:
 * 256 int8 ops, but 128 on AMD Zen 4 (family 25), whose 512-bit
 * instructions take two 256-bit passes; AVX2 and AVX-VNNI 128; Arm i8mm
 * 128, dotprod 64, plain NEON 16; the scalar reference 2. The bench prints
 * what its kernels reach of this and the planner's `this` machine uses it:
 * one figure for both. */
void machine_peak_per_cycle(const machine_cpu *c, const char *kernels, double *int8_ops, double *f16_flops);

/* The CPUs this process may run on (its affinity mask), in increasing
 * order: at most max into cpus; returns how many (at least 1: CPU 0 when
 * the mask cannot be read). Their count is tp_available_cpus(). */
int machine_cpus(int *cpus, int max);

/* CPUs online in the machine, whatever this process may use (>= 1). */
int machine_online_cpus(void);

/* Physical memory in bytes (0 if unknown). */
uint64_t machine_memory_bytes(void);

/* Memory this process could still take without swapping or an OOM kill:
 * the kernel's MemAvailable (/proc/meminfo), or less if the process's
 * memory cgroup (v2 memory.max, v1 memory.limit_in_bytes) leaves less room
 * above what the cgroup uses now. 0 if unknown. */
uint64_t machine_available_bytes(void);

/* Partition `index` of `parts` over `threads` threads: its first thread
 * (*first) and how many it has (returned). Partitions are contiguous and
 * the first threads % parts of them have one thread more. */
int machine_split(int threads, int parts, int index, int *first);

/* The CPUs partition `index` pins its threads to: thread j of it goes to
 * cpus[(first + j) % n_cpus] (more threads than CPUs wrap around). At most
 * max into out; returns the partition's thread count. */
int machine_partition_cpus(const int *cpus, int n_cpus, int threads, int parts, int index, int *out, int max);

/* A streaming read of a `bytes` buffer on `threads` threads (the thread
 * pool's), best of 5 passes: the memory bandwidth in GB/s. */
int machine_bandwidth(int threads, size_t bytes, double *gbs, rl_err *err);

#endif
