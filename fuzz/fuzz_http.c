/*
 * fuzz_http.c — libFuzzer target for the part of the HTTP request path
 * that is ours rather than libmicrohttpd's: the checks on a request's
 * Host, Origin, Content-Type and Authorization headers and on the flags
 * that configure them (src/serve/http/guard.h). Any bytes must give an
 * answer, never a crash, a hang or a leak, and the answers must agree with
 * what each check promises:
 *  - a comma-separated list parses into as many non-empty, trimmed entries
 *    as it has commas plus one, or is refused;
 *  - "Bearer KEY" is accepted for every key guard_key_check accepts, and
 *    nothing is accepted for an empty key or a header of another key;
 *  - an accepted Content-Type starts (after blanks) with application/json;
 *  - a loopback listening address is also a Host accepted without a list
 *    (a literal or "localhost").
 *
 * The input is split at its first two NUL bytes into a header value, a
 * second value (a key, or a list) and the rest.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "serve/http/guard.h"

static void check_list(const char *csv) {
    guard_list l;
    rl_err err = {0};
    if (guard_list_parse(csv, "fuzz", &l, &err)) return;
    size_t commas = 0;
    for (const char *c = csv; *c; c++) commas += *c == ',';
    if (l.n != commas + 1) abort();
    for (size_t i = 0; i < l.n; i++) {
        size_t n = strlen(l.items[i]);
        if (n == 0 || isspace((unsigned char)l.items[i][0]) || isspace((unsigned char)l.items[i][n - 1])) abort();
        if (!guard_list_has(&l, l.items[i], false)) abort();
    }
    guard_origins_check(&l, &err);
    guard_list_free(&l);
}

static void check_bearer(const char *header, const char *key) {
    rl_err err = {0};
    if (guard_bearer_ok(header, "")) abort();
    if (guard_key_check(key, "fuzz", &err) == 0) {
        size_t n = strlen(key);
        char *h = malloc(n + 8);
        if (!h) return;
        memcpy(h, "Bearer ", 7);
        memcpy(h + 7, key, n + 1);
        if (!guard_bearer_ok(h, key)) abort();
        if (guard_bearer_ok(header, key) && strcmp(header + strlen(header) - n, key) != 0) abort();
        free(h);
    }
}

static void check_headers(const char *value, const char *list) {
    guard_list l = {0};
    rl_err err = {0};
    if (guard_list_parse(list, "fuzz", &l, &err)) l = (guard_list){0};
    guard_host_ok(value, &l);
    guard_origin_ok(value, &l);
    if (guard_json_type(value)) {
        const char *v = value;
        while (*v == ' ' || *v == '\t') v++;
        if (strncasecmp(v, "application/json", 16) != 0) abort();
    }
    if (guard_is_loopback(value) && strlen(value) < 200 && !strchr(value, ':') && !guard_host_ok(value, NULL))
        abort();
    guard_list_free(&l);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 3);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = s[size + 1] = s[size + 2] = 0;
    const char *a = s;
    const char *b = a + strlen(a) + 1;
    if (b > s + size) b = s + size + 1;
    check_list(a);
    check_list(b);
    check_bearer(a, b);
    check_headers(a, b);
    free(s);
    return 0;
}
