/*
 * test.h — the tiny assertion layer every C test uses. CTest runs each test
 * executable; a test fails when any CHECK fails (exit status 1), and prints
 * what was expected. Nothing is skipped silently: a test that cannot find
 * its data fails and says where it looked.
 *
 * Cases. A test's main calls test_init(argc, argv), runs each case through
 * RUN(test_foo) (or RUN_WITH(test_foo, args...), or `if (test_selected(
 * name))` for cases named at run time, such as a model), and returns
 * test_report. Then one case can be run alone, by name, without its
 * "test_" prefix:
 *
 *   build/test_engine full_context          only that case
 *   build/test_golden stories260K           (several names: each of them)
 *   build/test_engine --list                the names of the cases
 *
 * A name that matches no case fails the run, so a typo never passes.
 */
#ifndef RACKLLM_TEST_H
#define RACKLLM_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                             \
    do {                                                                        \
        test_checks++;                                                          \
        if (!(cond)) {                                                          \
            test_failures++;                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                       \
    } while (0)

#define CHECKF(cond, ...)                                                       \
    do {                                                                        \
        test_checks++;                                                          \
        if (!(cond)) {                                                          \
            test_failures++;                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                      \
    do {                                                                        \
        long long a_ = (long long)(a), b_ = (long long)(b);                     \
        CHECKF(a_ == b_, "%s = %lld, expected %lld", #a, a_, b_);               \
    } while (0)

#define CHECK_STR(a, b)                                                         \
    do {                                                                        \
        const char *a_ = (a), *b_ = (b);                                        \
        CHECKF(a_ && b_ && strcmp(a_, b_) == 0, "got \"%s\", expected \"%s\"", a_ ? a_ : "(null)", b_ ? b_ : "(null)"); \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                   \
    do {                                                                        \
        double a_ = (a), b_ = (b);                                              \
        CHECKF(fabs(a_ - b_) <= (tol), "%s = %.9g, expected %.9g (tol %g)", #a, a_, b_, (double)(tol)); \
    } while (0)

/* Path of a file under ../shared (or $RACKLLM_SHARED); static buffer. */
static inline const char *shared_path(const char *rel) {
    static char buf[4096];
    const char *dir = getenv("RACKLLM_SHARED");
    snprintf(buf, sizeof buf, "%s/%s", dir && *dir ? dir : "../shared", rel);
    return buf;
}

/* ---- cases by name ---- */

#define TCASE_MAX 32

static int tcase_n;                    /* cases asked for (0: all) */
static const char *tcase_names[TCASE_MAX];
static int tcase_hits[TCASE_MAX];      /* how often each was run */
static int tcase_listing;              /* --list: print the names, run nothing */

static inline void test_init(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--list") == 0) tcase_listing = 1;
        else if (tcase_n < TCASE_MAX) tcase_names[tcase_n++] = argv[i];
    }
}

/* Whether the case `name` ("test_" dropped) is to run (false when listing:
 * it is printed instead). */
static inline int test_selected(const char *name) {
    if (strncmp(name, "test_", 5) == 0) name += 5;
    if (tcase_listing) {
        printf("%s\n", name);
        return 0;
    }
    int hit = tcase_n == 0;
    for (int i = 0; i < tcase_n; i++)
        if (strcmp(tcase_names[i], name) == 0) hit = ++tcase_hits[i];
    return hit;
}

#define RUN(fn)                                                                 \
    do {                                                                        \
        if (test_selected(#fn)) fn();                                           \
    } while (0)
#define RUN_WITH(fn, ...)                                                       \
    do {                                                                        \
        if (test_selected(#fn)) fn(__VA_ARGS__);                                \
    } while (0)

static inline int test_report(const char *name) {
    if (tcase_listing) return 0;
    for (int i = 0; i < tcase_n; i++, test_checks++)
        if (!tcase_hits[i]) {
            test_failures++;
            fprintf(stderr, "%s: no case named '%s' (--list shows them)\n", name, tcase_names[i]);
        }
    if (test_failures) {
        fprintf(stderr, "%s: %d of %d checks failed\n", name, test_failures, test_checks);
        return 1;
    }
    printf("%s: all %d checks passed\n", name, test_checks);
    return 0;
}

#endif
