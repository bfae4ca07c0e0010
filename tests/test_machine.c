/*
 * test_machine.c — the machine's facts (base/machine.h).
 *
 *  - /proc/cpuinfo text of an x86 and an Arm machine parsed by hand-read
 *    answers; whole-word flags; the feature list;
 *  - the CPU list and the split of threads into partitions (5 threads, 2
 *    partitions: 3 + 2; more threads than CPUs wrap around);
 *  - the bandwidth probe on the thread pool: a plausible figure, a buffer
 *    too small refused;
 *  - bench and serve split cores the same way: a partitioned bench sweep
 *    and a scheduler of as many partitions, on a tiny synthetic model,
 *    report the same threads on the same CPUs.
 */
#include <stdlib.h>
#include <string.h>

#include "base/machine.h"
#include "base/threadpool.h"
#include "bench/bench.h"
#include "serve/scheduler.h"
#include "test.h"
#include "tiny_shape.h"

static const char X86[] =
    "processor\t: 0\n"
    "vendor_id\t: AuthenticAMD\n"
    "cpu family\t: 25\n"
    "model name\t: AMD EPYC 7B13\n"
    "cpu MHz\t\t: 2450.000\n"
    "flags\t\t: fpu sse4_1 sse4_2 avx avx2 fma f16c avx512fx\n"
    "\n"
    "processor\t: 1\n"
    "vendor_id\t: AuthenticAMD\n"
    "model name\t: AMD EPYC 7B13\n"
    "cpu MHz\t\t: 3100.500\n"
    "flags\t\t: fpu sse4_1 sse4_2 avx avx2 fma f16c avx512fx\n";

static const char ARM[] =
    "processor\t: 0\n"
    "BogoMIPS\t: 50.00\n"
    "Features\t: fp asimd evtstrm aes asimdhp asimddp i8mm\n"
    "CPU implementer\t: 0x41\n"
    "CPU part\t: 0xd0c\n";

static void test_cpuinfo(void) {
    machine_cpu c;
    machine_cpu_parse(X86, &c);
    CHECK_STR(c.model, "AMD EPYC 7B13");
    CHECK_STR(c.vendor, "AuthenticAMD");
    CHECK_EQ_INT(c.family, 25);
    CHECK_STR(c.flags, "fpu sse4_1 sse4_2 avx avx2 fma f16c avx512fx");
    CHECK_NEAR(c.ghz, 3.1005, 1e-9); /* the largest cpu MHz */
    machine_cpu_parse(ARM, &c);
    CHECK_STR(c.model, "Arm implementer 0x41 part 0xd0c");
    CHECK_STR(c.vendor, "");
    CHECK_STR(c.flags, "fp asimd evtstrm aes asimdhp asimddp i8mm");
    CHECK_NEAR(c.ghz, 0, 0);
    machine_cpu_parse("Hardware\t: BCM2835\nFeatures : fp asimd\n", &c);
    CHECK_STR(c.model, "BCM2835");
    CHECK_STR(c.flags, "fp asimd");
    machine_cpu_parse("", &c);
    CHECK(c.model[0] == 0 && c.flags[0] == 0);
    /* keys without a colon, a key that only starts like one, a value longer
     * than its field (cut), no newline at the end */
    machine_cpu_parse("model name\nmodel names : no\nvendor_id:AuthenticAMD", &c);
    CHECK_STR(c.model, "");
    CHECK_STR(c.vendor, "AuthenticAMD");
    size_t n = 3 * sizeof c.flags;
    char *text = malloc(n + 16);
    memcpy(text, "flags : ", 8);
    memset(text + 8, 'a', n - 8);
    text[n] = 0;
    machine_cpu_parse(text, &c);
    CHECK_EQ_INT(strlen(c.flags), sizeof c.flags - 1);
    free(text);
    /* this machine: whatever it is, the description is complete text */
    machine_cpu_describe(&c);
    CHECK(strlen(c.model) < sizeof c.model && strlen(c.flags) < sizeof c.flags);
}

static void test_flags(void) {
    CHECK(machine_has_flag("fpu avx2 fma", "avx2"));
    CHECK(machine_has_flag("fpu\tavx2\tfma", "fma"));
    CHECK(machine_has_flag("avx2", "avx2"));
    CHECK(!machine_has_flag("fpu avx512fx", "avx512f")); /* a whole word */
    CHECK(!machine_has_flag("fpu xavx2", "avx2"));
    CHECK(!machine_has_flag("fpu", ""));
    char f[256];
    machine_features("fpu sse4_2 avx avx2 fma f16c avx512fx", f, sizeof f);
    CHECK_STR(f, "sse4_2 avx avx2 fma f16c");
    machine_features("fp asimd asimdhp asimddp i8mm", f, sizeof f);
    CHECK_STR(f, "asimd asimdhp asimddp i8mm");
    machine_features("", f, sizeof f);
    CHECK_STR(f, "");
}

static void test_cpus_and_memory(void) {
    int cpus[4096];
    int n = machine_cpus(cpus, 4096);
    CHECK_EQ_INT(n, tp_available_cpus());
    for (int i = 1; i < n; i++) CHECK(cpus[i] > cpus[i - 1]);
    CHECK(machine_online_cpus() >= n);
    CHECK(machine_memory_bytes() > (1u << 20));
    uint64_t avail = machine_available_bytes();
    CHECKF(avail > (1u << 20) && avail <= machine_memory_bytes(), "available %llu of %llu",
           (unsigned long long)avail, (unsigned long long)machine_memory_bytes());
}

/* Partition i of k over t threads: first thread and count. */
static void expect_split(int t, int k, int i, int first, int count) {
    int f = -1;
    int c = machine_split(t, k, i, &f);
    CHECKF(f == first && c == count, "split %d threads into %d, partition %d: first %d count %d, expected %d %d", t, k,
           i, f, c, first, count);
}

static void test_split(void) {
    expect_split(5, 2, 0, 0, 3); /* the first partitions take the extra threads */
    expect_split(5, 2, 1, 3, 2);
    expect_split(7, 3, 0, 0, 3);
    expect_split(7, 3, 1, 3, 2);
    expect_split(7, 3, 2, 5, 2);
    expect_split(4, 4, 3, 3, 1);
    expect_split(8, 1, 0, 0, 8);
    /* every split covers the threads once, in order */
    for (int t = 1; t <= 12; t++)
        for (int k = 1; k <= t; k++) {
            int next = 0;
            for (int i = 0; i < k; i++) {
                int first, count = machine_split(t, k, i, &first);
                CHECK(first == next && count >= 1);
                next = first + count;
            }
            CHECK_EQ_INT(next, t);
        }
    /* more threads than CPUs: around the list again */
    int list[2] = {4, 6}, out[8];
    CHECK_EQ_INT(machine_partition_cpus(list, 2, 5, 2, 0, out, 8), 3);
    CHECK(out[0] == 4 && out[1] == 6 && out[2] == 4);
    CHECK_EQ_INT(machine_partition_cpus(list, 2, 5, 2, 1, out, 8), 2);
    CHECK(out[0] == 6 && out[1] == 4);
}

static void test_bandwidth(void) {
    double gbs = 0;
    rl_err err = {0};
    CHECKF(machine_bandwidth(2, 16u << 20, &gbs, &err) == 0, "%s", err.msg);
    CHECKF(gbs > 0.1 && gbs < 10000, "bandwidth %g GB/s", gbs);
    CHECK(machine_bandwidth(4, 1024, &gbs, &err) == -1 && err.code == RL_ERR_INPUT);
}

/* The bench's partitioned sweep and the server's partitions, 5 threads in
 * 2 partitions each: the same threads on the same CPUs. */
static void test_bench_and_serve_agree(const model *m) {
    enum { T = 5, K = 2 };
    bench_params p = bench_default_params();
    bench_make_quick(&p);
    p.n_threads = T;
    p.single = false;
    p.bw_bytes = 16u << 20;
    p.sessions[0] = 1;
    p.n_sessions = 1;
    p.partitions[0] = K;
    p.n_partitions = 1;
    p.prompt_len = 4;
    p.gen_len = 2;
    bench_result r;
    rl_err err = {0};
    int rc = bench_run(m, &p, &r, &err);
    CHECKF(rc == 0 && r.n_partitioned == 1, "%s", err.msg);
    sched_params sp = sched_default_params();
    sp.partitions = K;
    sp.n_threads = T;
    sp.capacity = K;
    sp.prefill_chunk = 8;
    sp.ctx_cost = 1e-6;
    sp.n_ctx = 64;
    sched *s = sched_new(m, &sp, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (rc == 0 && r.n_partitioned == 1 && s) {
        const bench_point_result *pt = &r.partitioned[0];
        int at = 0;
        for (int i = 0; i < K; i++) {
            int cpus[T];
            int n = sched_partition_cpus(s, i, cpus, T);
            CHECKF(n == pt->part_threads[i], "partition %d: serve %d threads, bench %d", i, n, pt->part_threads[i]);
            CHECK_EQ_INT(n, i == 0 ? 3 : 2);
            for (int j = 0; j < n && at + j < T; j++)
                CHECKF(cpus[j] == pt->part_cpus[at + j], "partition %d thread %d: serve CPU %d, bench CPU %d", i, j,
                       cpus[j], pt->part_cpus[at + j]);
            at += n;
        }
    }
    sched_free(s);
    bench_result_free(&r);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(test_cpuinfo);
    RUN(test_flags);
    RUN(test_cpus_and_memory);
    RUN(test_split);
    RUN(test_bandwidth);
    void *data = NULL;
    model *m = tiny_model("q8_0", 1, &data);
    CHECK(m != NULL);
    if (m) RUN_WITH(test_bench_and_serve_agree, m);
    model_free(m);
    free(data);
    return test_report("test_machine");
}
