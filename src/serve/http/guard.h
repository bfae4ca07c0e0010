/*
 * guard.h — who may talk to the server: the checks on a request's Host,
 * Origin, Content-Type and Authorization headers, and on the flags that
 * set them up (the API key, the CORS and Host allow-lists, whether an
 * address is this machine's). Pure functions of strings, nothing about
 * HTTP plumbing, so that the fuzzer (fuzz/fuzz_http.c) runs them directly.
 *
 * Why each exists (docs/server.md, "Hostile clients"):
 *  - Host. A server without a key answers whoever reaches it; a web page
 *    can reach one on loopback through DNS rebinding (its own name made to
 *    resolve to 127.0.0.1), but its requests then carry that name as Host.
 *    Without a key, Host must name this machine by an IP literal or
 *    "localhost", or be on --allowed-hosts.
 *  - Origin. A browser names the page that makes a cross-origin request;
 *    only the origins on --cors-origins may use the API (and get the CORS
 *    headers that let the page read the answer).
 *  - Content-Type. A page may POST text/plain or a form anywhere without
 *    asking first; only application/json is accepted, which a page cannot
 *    send cross-origin without a preflight that the allow-list answers.
 *  - Authorization. "Bearer KEY", compared in constant time.
 */
#ifndef RACKLLM_GUARD_H
#define RACKLLM_GUARD_H

#include <stdbool.h>
#include <stddef.h>

#include "base/common.h"

/* A list of strings from "a,b,c" (spaces around entries dropped). */
typedef struct guard_list {
    char **items;
    size_t n;
} guard_list;

/* Splits a comma-separated flag value. Empty entries are refused
 * (RL_ERR_INPUT naming `flag`). */
int guard_list_parse(const char *csv, const char *flag, guard_list *out, rl_err *err);
void guard_list_free(guard_list *l);
bool guard_list_has(const guard_list *l, const char *s, bool ignore_case);

/* Each entry of --cors-origins is "*" or an origin as browsers send it:
 * scheme "http" or "https", "://", a host, an optional ":port", nothing
 * else (no path, no trailing slash). */
int guard_origins_check(const guard_list *origins, rl_err *err);

/* Whether a Host header value (host, or host:port, or [v6]:port) names
 * this machine by an IP literal or "localhost", or a name on `allowed`
 * (without its port; case-insensitive). */
bool guard_host_ok(const char *host, const guard_list *allowed);

/* Whether an Origin header value is allowed: on the list, or the list
 * holds "*". */
bool guard_origin_ok(const char *origin, const guard_list *origins);

/* Whether a Content-Type header value is application/json (any case,
 * parameters such as "; charset=utf-8" allowed). */
bool guard_json_type(const char *content_type);

/* Whether an Authorization header value is "Bearer KEY" with this key
 * (the scheme in any case, spaces after it skipped), in time that does not
 * depend on where a wrong key differs. */
bool guard_bearer_ok(const char *authorization, const char *key);

/* Whether a listening address stays on this machine (127.0.0.0/8, ::1,
 * "localhost"). */
bool guard_is_loopback(const char *host);

/* An API key must be printable ASCII without spaces, 1 to 512 bytes
 * (`source` names where it came from, for the message). */
int guard_key_check(const char *key, const char *source, rl_err *err);

/* The key in a file: its first line, without the line end (a file that is
 * readable by others than its owner earns a warning on stderr). *key is
 * malloc'ed. */
int guard_key_from_file(const char *path, char **key, rl_err *err);

#endif
