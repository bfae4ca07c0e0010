/*
 * test.h — the tiny assertion layer every C test uses. CTest runs each test
 * executable; a test fails when any CHECK fails (exit status 1), and prints
 * what was expected. Nothing is skipped silently: a test that cannot find
 * its data fails and says where it looked.
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

static inline int test_report(const char *name) {
    if (test_failures) {
        fprintf(stderr, "%s: %d of %d checks failed\n", name, test_failures, test_checks);
        return 1;
    }
    printf("%s: all %d checks passed\n", name, test_checks);
    return 0;
}

#endif
