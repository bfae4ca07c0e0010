/*
 * cmd_serve.c — `rackllm serve`: the OpenAI-compatible server.
 *
 * Loads the model, starts the scheduler (calibrating capacity unless it is
 * given), listens, and prints one line on stdout once it answers:
 *   rackllm serve: listening on http://HOST:PORT
 * (scripts wait for it; --port 0 picks a free port and this line says
 * which). SIGTERM or SIGINT drains it: no new connections, queued requests
 * get 503, running sessions finish (at most --drain-timeout seconds), then
 * it exits 0. With --agent-port it also answers HAProxy's agent check
 * (src/serve/agent.h), which says "drain" from the SIGTERM on. The
 * signals are taken by sigwait on the main thread, blocked everywhere
 * else, so no handler runs inside a library.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "serve/agent.h"
#include "serve/http/guard.h"
#include "serve/http/server.h"
#include "serve/scheduler.h"
#include "text/chat.h"

typedef struct serve_opts {
    const char *model_path, *host, *api_key, *api_key_file, *chat_template, *name, *allowed_hosts, *cors_origins;
    const char *served_names;
    int port, agent_port;
    double drain_timeout;
    server_params hp;
    sched_params sp;
} serve_opts;

static void usage(FILE *out) {
    fprintf(out,
            "usage: rackllm serve -m FILE [options]\n"
            "\n"
            "Serves the model over an OpenAI-compatible HTTP API (/v1/chat/completions,\n"
            "/v1/completions, /v1/models, /v1/stats, /health, /metrics) and web pages (a chat\n"
            "at /, a live dashboard at /dashboard, the rack planner's charts at /plan). It admits\n"
            "only as many sessions as it can keep at the floor speed, queues a few more, and\n"
            "answers 429 beyond.\n"
            "\n"
            "  -m, --model FILE        GGUF model (llama, qwen2 or qwen3 architecture)\n"
            "      --host ADDR         address to listen on (default 127.0.0.1); one beyond loopback\n"
            "                          needs --api-key or --insecure\n"
            "      --insecure          listen beyond loopback without an API key\n"
            "      --allowed-hosts L   without a key, Host names accepted besides IP addresses and\n"
            "                          localhost (comma-separated; DNS rebinding is refused)\n"
            "      --cors-origins L    web origins that may use the API, e.g. https://chat.example.com\n"
            "                          (comma-separated; * with a key only); others get 403\n"
            "      --port N            port (default 8080; 0: any free port, printed)\n"
            "      --name NAME         model name clients use (default: the file name without .gguf)\n"
            "      --served-model-name L\n"
            "                          names clients may use, comma-separated, instead of --name: the\n"
            "                          first is reported in answers, /v1/models lists all; others: 404\n"
            "      --max-tokens-default N\n"
            "                          max_tokens of a request that gives none (default 512; 0: until\n"
            "                          the context is full); admission reserves prompt + max_tokens\n"
            "      --max-tokens-max N  a request asking for more max_tokens gets 400 (default 0: no cap\n"
            "                          but the context)\n"
            "      --context-overflow P\n"
            "                          a chat longer than the context: refuse (default; 400\n"
            "                          context_length_exceeded) or drop-oldest (its oldest turns go, its\n"
            "                          system messages and last user message stay)\n"
            "      --floor TPS         tokens/s every session is promised (default 10)\n"
            "      --capacity N        sessions at the floor, e.g. from `rackllm bench` (default:\n"
            "                          measured at start-up)\n"
            "      --max-sessions N    caps the capacity\n"
            "      --partitions K      independent engines, each on its own cores (default 1)\n"
            "  -t, --threads T         compute threads of all partitions (default: all CPUs)\n"
            "  -c, --ctx N             context per session (default: the model's, at most 4096)\n"
            "      --queue N           requests that may wait for a slot (default 16; 0: none)\n"
            "      --queue-timeout S   seconds a request may wait (default 30)\n"
            "      --ttft-limit S      refuse at once (429) a request whose first token others would\n"
            "                          delay past S seconds: its wait for a slot, then its prompt\n"
            "                          behind the prompts not yet through (default: none)\n"
            "      --api-key-file F    require 'Authorization: Bearer KEY' on /v1, KEY the first line of F\n"
            "                          (or $RACKLLM_API_KEY; printable ASCII, no spaces, 1-512 bytes)\n"
            "      --api-key KEY       the same, KEY given here (other users can see it in ps until the\n"
            "                          server has started: prefer the file or the variable)\n"
            "      --protect-metrics   /metrics needs the key too (/health never does)\n"
            "      --special-in-content\n"
            "                          special tokens written in chat messages (<|eot_id|>...) become\n"
            "                          tokens, as in llama-server (default: text, so no user can forge a\n"
            "                          turn)\n"
            "      --chat-template N   llama3 | llama2 | llama2-sys | llama2-sys-bos | llama2-sys-strip |\n"
            "                          zephyr | chatml: a built-in (default: the model's own template,\n"
            "                          interpreted; ChatML if it has none)\n"
            "      --prefill-chunk N   most prompt tokens per step (default: measured, two floor\n"
            "                          periods' compute); a step takes what the running sessions'\n"
            "                          lead over the floor pays for\n"
            "      --ctx-cost US       microseconds a step spends per token of context its sessions\n"
            "                          hold (default: measured at start-up); admission reserves each\n"
            "                          request's prompt + max_tokens (or the whole context) by it\n"
            "      --mem-limit BYTES   memory all sessions' KV caches may take, each at the context it\n"
            "                          reserves (default: 90%% of what is available at start-up)\n"
            "      --prefix-cache MIB  memory for finished sessions' KV, so that a prompt that begins\n"
            "                          the same way (a chat's next turn, a shared system prompt) skips\n"
            "                          that part of its prefill (default: a tenth of the sessions'\n"
            "                          memory, at most 1024; 0: off)\n"
            "      --timeout S         seconds a connection may be idle while answered (default 30)\n"
            "      --header-timeout S  seconds for a request's head, from the connection's start or the\n"
            "                          end of the previous answer, however slowly it comes (default 10)\n"
            "      --body-timeout S    seconds for a request's body, from the end of its head (default 30)\n"
            "      --max-body BYTES    request body limit (default 1048576); a chunked body past it\n"
            "                          closes the connection at once\n"
            "      --max-connections N connections in all (default 512; beyond: refused at once)\n"
            "      --max-connections-per-ip N\n"
            "                          connections from one client address (default 64)\n"
            "      --http-threads N    threads serving every connection (default 2)\n"
            "      --prep-threads N    threads that parse and tokenize requests before admission, at the\n"
            "                          lowest CPU priority (default 1)\n"
            "      --abort-on-close    a client that half-closes its socket counts as gone (default: it\n"
            "                          is answered; use this only if no client ever half-closes)\n"
            "      --drain-timeout S   on SIGTERM, seconds running sessions may take to finish (default 30)\n"
            "      --agent-port N      answer HAProxy's agent check on this port: free sessions as\n"
            "                          the weight, maxconn, drain (0: any free port, printed)\n"
            "      --full-status N     the status of \"no room\": 429 (default) or 503 (behind a\n"
            "                          balancer that retries 5xx on another server; docs/rack.md)\n"
            "      --step-delay MS     pause after every step: simulates a slower machine (testing)\n"
            "      --no-web            no web pages (default: / chat, /dashboard, /plan in a browser)\n"
            "      --plan-bench FILE   a `rackllm bench --json` file /plan's charts are calibrated with\n"
            "  -h, --help              this help\n");
}

/* 0: run; CLI_HELP; -1 with err. */
static int parse(int argc, char **argv, serve_opts *o, rl_err *err) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8080;
    o->hp = (server_params){.timeout = 30, .max_connections = 512, .max_per_ip = 64, .header_timeout = 10,
                            .body_timeout = 30, .http_threads = 2, .prep_threads = 1, .max_tokens_default = 512};
    o->drain_timeout = 30;
    o->agent_port = -1;
    o->hp.full_status = 429;
    o->sp = sched_default_params();
    o->sp.queue_max = 16;
    int max_body = 1 << 20;
    double delay_ms = 0, ctx_cost_us = 0;
    int prefix_mib = -1;
    const cli_flag flags[] = {
        FLAG_STR("model", 'm', &o->model_path),
        FLAG_STR("host", 0, &o->host),
        FLAG_INT("port", 0, &o->port, 0, 65535),
        FLAG_STR("name", 0, &o->name),
        FLAG_STR("served-model-name", 0, &o->served_names),
        FLAG_INT("max-tokens-default", 0, &o->hp.max_tokens_default, 0, 1 << 24),
        FLAG_INT("max-tokens-max", 0, &o->hp.max_tokens_max, 0, 1 << 24),
        FLAG_STR("context-overflow", 0, &o->hp.context_overflow),
        FLAG_NUM("floor", 0, &o->sp.floor_tps, 0.001, 1e9),
        FLAG_INT("capacity", 0, &o->sp.capacity, 1, 100000),
        FLAG_INT("max-sessions", 0, &o->sp.max_sessions, 1, 100000),
        FLAG_INT("partitions", 0, &o->sp.partitions, 1, 4096),
        FLAG_INT("threads", 't', &o->sp.n_threads, 1, 100000),
        FLAG_INT("ctx", 'c', &o->sp.n_ctx, 8, 1 << 24),
        FLAG_INT("queue", 0, &o->sp.queue_max, 0, 1000000),
        FLAG_NUM("queue-timeout", 0, &o->sp.queue_timeout, 0.001, 1e6),
        FLAG_NUM("ttft-limit", 0, &o->sp.ttft_limit, 0.001, 1e6),
        FLAG_STR("api-key", 0, &o->api_key),
        FLAG_STR("api-key-file", 0, &o->api_key_file),
        FLAG_BOOL("protect-metrics", 0, &o->hp.protect_metrics),
        FLAG_BOOL("special-in-content", 0, &o->hp.content_special),
        FLAG_STR("chat-template", 0, &o->chat_template),
        FLAG_INT("prefill-chunk", 0, &o->sp.prefill_chunk, 1, 65536),
        FLAG_NUM("ctx-cost", 0, &ctx_cost_us, 1e-6, 1e9),
        FLAG_U64("mem-limit", 0, &o->sp.mem_limit, 1 << 20, 0),
        FLAG_INT("prefix-cache", 0, &prefix_mib, 0, 1 << 24),
        FLAG_INT("timeout", 0, &o->hp.timeout, 1, 1000000),
        FLAG_NUM("header-timeout", 0, &o->hp.header_timeout, 0.1, 1e6),
        FLAG_NUM("body-timeout", 0, &o->hp.body_timeout, 0.1, 1e6),
        FLAG_INT("max-body", 0, &max_body, 1024, 1 << 30),
        FLAG_INT("max-connections", 0, &o->hp.max_connections, 1, 1000000),
        FLAG_INT("max-connections-per-ip", 0, &o->hp.max_per_ip, 1, 1000000),
        FLAG_INT("http-threads", 0, &o->hp.http_threads, 1, 1024),
        FLAG_INT("prep-threads", 0, &o->hp.prep_threads, 1, 1024),
        FLAG_BOOL("abort-on-close", 0, &o->hp.abort_on_close),
        FLAG_BOOL("insecure", 0, &o->hp.insecure),
        FLAG_STR("allowed-hosts", 0, &o->allowed_hosts),
        FLAG_STR("cors-origins", 0, &o->cors_origins),
        FLAG_NUM("drain-timeout", 0, &o->drain_timeout, 0, 1e6),
        FLAG_NUM("step-delay", 0, &delay_ms, 0, 1e6),
        FLAG_BOOL("no-web", 0, &o->hp.no_web),
        FLAG_STR("plan-bench", 0, &o->hp.plan_bench),
        FLAG_INT("agent-port", 0, &o->agent_port, 0, 65535),
        FLAG_INT("full-status", 0, &o->hp.full_status, 429, 503),
    };
    int first, rc = cli_parse(argc, argv, flags, (int)RL_ARRAY_LEN(flags), usage, &first, err);
    o->hp.max_body = (size_t)max_body;
    o->sp.step_delay = delay_ms / 1000;
    o->sp.ctx_cost = ctx_cost_us * 1e-6;
    o->sp.prefix_cache_bytes = prefix_mib < 0 ? SCHED_PREFIX_AUTO : (uint64_t)prefix_mib << 20;
    if (rc) return rc;
    if (first < argc) return rl_fail(err, RL_ERR_INPUT, "unexpected argument '%s'", argv[first]);
    if (!o->model_path) return rl_fail(err, RL_ERR_INPUT, "-m FILE is required");
    if (o->name && o->served_names) return rl_fail(err, RL_ERR_INPUT, "give --name or --served-model-name, not both");
    if (o->hp.full_status != 429 && o->hp.full_status != 503)
        return rl_fail(err, RL_ERR_INPUT, "--full-status must be 429 or 503, not %d", o->hp.full_status);
    return 0;
}

/* Overwrites the key's bytes in argv, so that ps shows stars from now on. */
static void hide_in_argv(int argc, char **argv, const char *key) {
    for (int i = 1; i < argc; i++)
        if (key >= argv[i] && key < argv[i] + strlen(argv[i]) + 1) memset((char *)key, '*', strlen(key));
}

/* The API key (*owned, malloc'ed, NULL for none) from --api-key-file,
 * --api-key or $RACKLLM_API_KEY, at most one of them; an empty one is
 * refused wherever it comes from. */
static int find_key(const serve_opts *o, int argc, char **argv, char **owned, rl_err *err) {
    const char *env = getenv("RACKLLM_API_KEY");
    *owned = NULL;
    if (o->api_key && o->api_key_file) return rl_fail(err, RL_ERR_INPUT, "give --api-key or --api-key-file, not both");
    if (o->api_key_file) return guard_key_from_file(o->api_key_file, owned, err);
    const char *key = o->api_key ? o->api_key : env;
    if (!key) return 0;
    if (guard_key_check(key, o->api_key ? "--api-key" : "RACKLLM_API_KEY", err)) return -1;
    if (!(*owned = strdup(key))) return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    if (o->api_key) hide_in_argv(argc, argv, o->api_key);
    return 0;
}

/* The model's name for clients: the file name without directory and .gguf. */
static void model_name(const char *path, char *out, size_t cap) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".gguf") == 0) n -= 5;
    snprintf(out, cap, "%.*s", (int)n, base);
}

static int serve(serve_opts *o, const char *key);

int cmd_serve(int argc, char **argv) {
    serve_opts o;
    rl_err err = {0};
    int rc = parse(argc, argv, &o, &err);
    if (rc) return rc == CLI_HELP ? 0 : cli_fail(&err);
    char *key = NULL;
    if (find_key(&o, argc, argv, &key, &err)) return cli_fail(&err);
    rc = serve(&o, key);
    free(key);
    return rc;
}

/* The server's life, from the model's load to the end of its drain. */
static int serve(serve_opts *op, const char *key) {
    serve_opts o = *op;
    rl_err err = {0};
    int tmpl = -1;
    if (o.chat_template && (tmpl = chat_from_name(o.chat_template)) < 0)
        return cli_usage_error("unknown chat template '%s' (llama3, llama2, llama2-sys, llama2-sys-bos, "
                               "llama2-sys-strip, zephyr, chatml)", o.chat_template);
    /* Every thread started from here on inherits this mask: the signals
     * wait for sigwait below. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    model_load_params lp = {.progress = true, .prefault = true};
    model *m = model_load(o.model_path, &lp, &err);
    if (!m) return cli_fail(&err);
    /* The model's own template, interpreted; one it cannot render stops
     * the start (never a silent fallback): --chat-template picks a built-in. */
    chat_jinja *jinja = NULL;
    if (tmpl < 0) {
        tmpl = (int)chat_detect(m->chat_template);
        if (m->chat_template && !(jinja = chat_jinja_load(m->chat_template, &err))) {
            model_free(m);
            return cli_fail(&err);
        }
        if (!m->chat_template)
            fprintf(stderr, "rackllm serve: the model has no chat template; chat uses the default template (%s)\n", chat_name((chat_template)tmpl));
    }
    o.sp.log = stderr;
    sched *s = sched_new(m, &o.sp, &err);
    if (!s) {
        chat_jinja_free(jinja);
        model_free(m);
        return cli_fail(&err);
    }
    char name[256];
    if (o.name) snprintf(name, sizeof name, "%s", o.name);
    else model_name(o.model_path, name, sizeof name);
    server_params hp = o.hp;
    hp.host = o.host;
    hp.port = o.port;
    hp.api_key = key;
    hp.model_id = name;
    hp.served_names = o.served_names;
    hp.model_path = o.model_path;
    hp.tmpl = (chat_template)tmpl;
    hp.jinja = jinja;
    hp.allowed_hosts = o.allowed_hosts;
    hp.cors_origins = o.cors_origins;
    server *sv = server_start(m, s, &hp, &err);
    if (!sv) {
        sched_free(s);
        chat_jinja_free(jinja);
        model_free(m);
        return cli_fail(&err);
    }
    agent *ag = NULL;
    if (o.agent_port >= 0 && !(ag = agent_start(s, o.host, o.agent_port, &err))) {
        server_free(sv);
        sched_free(s);
        chat_jinja_free(jinja);
        model_free(m);
        return cli_fail(&err);
    }
    sched_stats st;
    sched_get_stats(s, &st);
    fprintf(stderr,
            "rackllm serve: model %s, %s chat template; capacity %d session%s at >= %g tok/s (%s), %d partition%s, "
            "queue %d (%g s), context %d, prefill chunk %d\n",
            o.served_names ? o.served_names : name, jinja ? "the model's own" : chat_name((chat_template)tmpl), st.capacity_base, st.capacity_base == 1 ? "" : "s", st.floor_tps,
            o.sp.capacity > 0 ? "given" : "calibrated", st.partitions, st.partitions == 1 ? "" : "s", st.queue_max,
            o.sp.queue_timeout, st.n_ctx, st.prefill_chunk);
    const char *shown = strchr(o.host, ':') ? "[%s]" : "%s";
    char host[300];
    snprintf(host, sizeof host, shown, o.host);
    if (ag) printf("rackllm serve: agent check on %s:%d\n", host, agent_port(ag));
    printf("rackllm serve: listening on http://%s:%d\n", host, server_port(sv));
    fflush(stdout);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    fprintf(stderr, "rackllm serve: %s: draining (at most %g s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
            o.drain_timeout);
    server_shutdown(sv, o.drain_timeout);
    server_free(sv);
    agent_stop(ag);
    sched_get_stats(s, &st);
    sched_free(s);
    chat_jinja_free(jinja);
    model_free(m);
    fprintf(stderr, "rackllm serve: stopped (%llu sessions served, %llu tokens generated)\n",
            (unsigned long long)st.admitted, (unsigned long long)st.completion_tokens);
    return 0;
}
