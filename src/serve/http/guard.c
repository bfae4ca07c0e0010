/*
 * guard.c — the checks on who may talk to the server (see guard.h):
 * header values against allow-lists, the API key and where it comes from.
 */
#include "guard.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define KEY_MAX 512

/* ---- lists ---- */

int guard_list_parse(const char *csv, const char *flag, guard_list *out, rl_err *err) {
    out->items = NULL;
    out->n = 0;
    if (!csv) return 0;
    for (const char *p = csv;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && isspace((unsigned char)*p)) p++, len--;
        while (len && isspace((unsigned char)p[len - 1])) len--;
        if (len == 0) {
            guard_list_free(out);
            return rl_fail(err, RL_ERR_INPUT, "--%s '%s': an empty entry", flag, csv);
        }
        char **items = realloc(out->items, (out->n + 1) * sizeof *items);
        char *item = items ? strndup(p, len) : NULL;
        if (items) out->items = items;
        if (!item) {
            guard_list_free(out);
            return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
        }
        out->items[out->n++] = item;
        if (!end) return 0;
        p = end + 1;
    }
}

void guard_list_free(guard_list *l) {
    for (size_t i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

bool guard_list_has(const guard_list *l, const char *s, bool ignore_case) {
    for (size_t i = 0; l && i < l->n; i++)
        if (ignore_case ? !strcasecmp(l->items[i], s) : !strcmp(l->items[i], s)) return true;
    return false;
}

/* ---- Origin ---- */

/* "http(s)://host[:port]" exactly. */
static bool origin_form(const char *o) {
    const char *rest = !strncmp(o, "http://", 7) ? o + 7 : !strncmp(o, "https://", 8) ? o + 8 : NULL;
    if (!rest || !*rest) return false;
    for (const char *c = rest; *c; c++)
        if (!(isalnum((unsigned char)*c) || strchr(".-:[]", *c))) return false;
    return true;
}

int guard_origins_check(const guard_list *origins, rl_err *err) {
    for (size_t i = 0; i < origins->n; i++)
        if (strcmp(origins->items[i], "*") != 0 && !origin_form(origins->items[i]))
            return rl_fail(err, RL_ERR_INPUT,
                           "--cors-origins: '%s' is not an origin (scheme://host[:port], as in "
                           "https://chat.example.com, no path) or *",
                           origins->items[i]);
    return 0;
}

bool guard_origin_ok(const char *origin, const guard_list *origins) {
    return guard_list_has(origins, "*", false) || guard_list_has(origins, origin, false);
}

/* ---- Host ---- */

/* The host part of a Host value into out (the port and the brackets of an
 * IPv6 literal dropped); false if it is malformed. */
static bool host_name(const char *host, char *out, size_t cap) {
    size_t len;
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        if (!close || (close[1] && close[1] != ':')) return false;
        host++;
        len = (size_t)(close - host);
    } else {
        const char *colon = strchr(host, ':');
        len = colon ? (size_t)(colon - host) : strlen(host);
        if (colon && strchr(colon + 1, ':')) return false;
    }
    if (len == 0 || len >= cap) return false;
    memcpy(out, host, len);
    out[len] = 0;
    if (len > 1 && out[len - 1] == '.') out[len - 1] = 0; /* "localhost." is localhost */
    return true;
}

static bool ip_literal(const char *name) {
    unsigned char buf[16];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

bool guard_host_ok(const char *host, const guard_list *allowed) {
    char name[256];
    if (!host || !host_name(host, name, sizeof name)) return false;
    return ip_literal(name) || !strcasecmp(name, "localhost") || guard_list_has(allowed, name, true);
}

bool guard_is_loopback(const char *host) {
    if (!strcasecmp(host, "localhost")) return true;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1) return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* ---- Content-Type, Authorization ---- */

bool guard_json_type(const char *ct) {
    if (!ct) return false;
    while (*ct == ' ' || *ct == '\t') ct++;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n) != 0) return false;
    ct += n;
    while (*ct == ' ' || *ct == '\t') ct++;
    return *ct == 0 || *ct == ';';
}

bool guard_bearer_ok(const char *h, const char *key) {
    if (!h || !key || strncasecmp(h, "Bearer ", 7) != 0) return false;
    h += 7;
    while (*h == ' ') h++;
    size_t a = strlen(h), b = strlen(key);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < a; i++) diff |= (unsigned)(h[i] ^ key[i % (b ? b : 1)]); /* constant time */
    return diff == 0 && b > 0;
}

/* ---- the key ---- */

int guard_key_check(const char *key, const char *source, rl_err *err) {
    size_t n = strlen(key);
    if (n == 0) return rl_fail(err, RL_ERR_INPUT, "%s: the API key is empty", source);
    if (n > KEY_MAX) return rl_fail(err, RL_ERR_INPUT, "%s: the API key is longer than %d bytes", source, KEY_MAX);
    for (size_t i = 0; i < n; i++)
        if (key[i] <= ' ' || key[i] > '~')
            return rl_fail(err, RL_ERR_INPUT, "%s: the API key has a space, a control or a non-ASCII byte at byte %zu",
                           source, i);
    return 0;
}

int guard_key_from_file(const char *path, char **key, rl_err *err) {
    FILE *f = fopen(path, "r");
    if (!f) return rl_fail(err, RL_ERR_INPUT, "--api-key-file %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
        fprintf(stderr, "rackllm serve: warning: %s can be read by others than its owner (chmod 600 it)\n", path);
    char line[KEY_MAX + 4];
    bool got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    if (!got) line[0] = 0;
    line[strcspn(line, "\r\n")] = 0;
    char source[300];
    snprintf(source, sizeof source, "--api-key-file %s", path);
    if (guard_key_check(line, source, err)) return -1;
    if (!(*key = strdup(line))) return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    return 0;
}
