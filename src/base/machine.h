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

/* The CPUs this process may run on (its affinity mask), in increasing
 * order: at most max into cpus; returns how many (at least 1: CPU 0 when
 * the mask cannot be read). Their count is tp_available_cpus(). */
int machine_cpus(int *cpus, int max);

/* CPUs online in the machine, whatever this process may use (>= 1). */
int machine_online_cpus(void);

/* Physical memory in bytes (0 if unknown). */
uint64_t machine_memory_bytes(void);

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
