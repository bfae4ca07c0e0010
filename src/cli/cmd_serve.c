/*
 * cmd_serve.c — `rackllm serve`: the OpenAI-compatible server.
 *
 * Loads the model, starts the scheduler (calibrating capacity unless it is
 * given), listens, and prints one line on stdout once it answers:
 *   rackllm serve: listening on http://HOST:PORT
 * (scripts wait for it; --port 0 picks a free port and this line says
 * which). SIGTERM or SIGINT drains it: no new connections, queued requests
 * get 503, running sessions finish (at most --drain-timeout seconds), then
 * it exits 0. The signals are taken by sigwait on the main thread, blocked
 * everywhere else, so no handler runs inside a library.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/chat.h"
#include "commands.h"
#include "serve/scheduler.h"
#include "serve/http/server.h"

typedef struct serve_opts {
    const char *model_path, *host, *api_key, *chat_template, *name;
    int port, timeout;
    double drain_timeout;
    long max_body;
    sched_params sp;
} serve_opts;

static void usage(FILE *out) {
    fprintf(out,
            "usage: rackllm serve -m FILE [options]\n"
            "\n"
            "Serves the model over an OpenAI-compatible HTTP API (/v1/chat/completions,\n"
            "/v1/completions, /v1/models, /health, /metrics). It admits only as many sessions\n"
            "as it can keep at the floor speed, queues a few more, and answers 429 beyond.\n"
            "\n"
            "  -m, --model FILE        GGUF model (llama architecture)\n"
            "      --host ADDR         address to listen on (default 127.0.0.1)\n"
            "      --port N            port (default 8080; 0: any free port, printed)\n"
            "      --name NAME         model name clients use (default: the file name without .gguf)\n"
            "      --floor TPS         tokens/s every session is promised (default 10)\n"
            "      --capacity N        sessions at the floor, e.g. from `rackllm bench` (default:\n"
            "                          measured at start-up)\n"
            "      --max-sessions N    caps the capacity\n"
            "      --partitions K      independent engines, each on its own cores (default 1)\n"
            "  -t, --threads T         compute threads of all partitions (default: all CPUs)\n"
            "  -c, --ctx N             context per session (default: the model's, at most 4096)\n"
            "      --queue N           requests that may wait for a slot (default 16; 0: none)\n"
            "      --queue-timeout S   seconds a request may wait (default 30)\n"
            "      --api-key KEY       require 'Authorization: Bearer KEY' on /v1 (or $RACKLLM_API_KEY)\n"
            "      --chat-template N   llama3 | llama2 | llama2-sys | llama2-sys-bos | llama2-sys-strip |\n"
            "                          zephyr | chatml (default: the model's; ChatML if unrecognised)\n"
            "      --prefill-chunk N   prompt tokens per step (default: measured, a quarter of a floor\n"
            "                          period's compute)\n"
            "      --ctx-cost US       microseconds a step spends per token of context its sessions\n"
            "                          hold (default: measured at start-up); admission reserves each\n"
            "                          request's prompt + max_tokens (or the whole context) by it\n"
            "      --timeout S         seconds a client may stall sending or reading (default 30)\n"
            "      --max-body BYTES    request body limit (default 1048576)\n"
            "      --drain-timeout S   on SIGTERM, seconds running sessions may take to finish (default 30)\n"
            "      --step-delay MS     pause after every step: simulates a slower machine (testing)\n"
            "  -h, --help              this help\n");
}

static bool parse_num(const char *s, double lo, double hi, double *out) {
    char *end = NULL;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

static int parse(int argc, char **argv, serve_opts *o) {
    enum { O_HOST = 256, O_PORT, O_FLOOR, O_MAXS, O_CAP, O_PART, O_QUEUE, O_QTIME, O_KEY, O_TMPL, O_CHUNK,
           O_TIMEOUT, O_BODY, O_DRAIN, O_DELAY, O_NAME, O_CTXCOST };
    static const struct option longs[] = {
        {"model", required_argument, 0, 'm'},          {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, O_PORT},        {"floor", required_argument, 0, O_FLOOR},
        {"max-sessions", required_argument, 0, O_MAXS}, {"capacity", required_argument, 0, O_CAP},
        {"partitions", required_argument, 0, O_PART},  {"threads", required_argument, 0, 't'},
        {"ctx", required_argument, 0, 'c'},            {"queue", required_argument, 0, O_QUEUE},
        {"queue-timeout", required_argument, 0, O_QTIME}, {"api-key", required_argument, 0, O_KEY},
        {"chat-template", required_argument, 0, O_TMPL}, {"prefill-chunk", required_argument, 0, O_CHUNK},
        {"timeout", required_argument, 0, O_TIMEOUT},  {"max-body", required_argument, 0, O_BODY},
        {"drain-timeout", required_argument, 0, O_DRAIN}, {"step-delay", required_argument, 0, O_DELAY},
        {"ctx-cost", required_argument, 0, O_CTXCOST},
        {"name", required_argument, 0, O_NAME},        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->port = 8080;
    o->timeout = 30;
    o->drain_timeout = 30;
    o->max_body = 1 << 20;
    o->sp = sched_default_params();
    o->sp.queue_max = 16;
    o->api_key = getenv("RACKLLM_API_KEY");
    if (o->api_key && !*o->api_key) o->api_key = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "m:t:c:h", longs, NULL)) != -1) {
        double v = 0;
        bool ok = true;
        switch (c) {
        case 'm': o->model_path = optarg; break;
        case O_HOST: o->host = optarg; break;
        case O_NAME: o->name = optarg; break;
        case O_KEY: o->api_key = optarg; break;
        case O_TMPL: o->chat_template = optarg; break;
        case O_PORT: ok = parse_num(optarg, 0, 65535, &v) && v == (int)v, o->port = (int)v; break;
        case O_FLOOR: ok = parse_num(optarg, 0.001, 1e9, &o->sp.floor_tps); break;
        case O_MAXS: ok = parse_num(optarg, 1, 100000, &v) && v == (int)v, o->sp.max_sessions = (int)v; break;
        case O_CAP: ok = parse_num(optarg, 1, 100000, &v) && v == (int)v, o->sp.capacity = (int)v; break;
        case O_PART: ok = parse_num(optarg, 1, 4096, &v) && v == (int)v, o->sp.partitions = (int)v; break;
        case 't': ok = parse_num(optarg, 1, 100000, &v) && v == (int)v, o->sp.n_threads = (int)v; break;
        case 'c': ok = parse_num(optarg, 8, 1 << 24, &v) && v == (int)v, o->sp.n_ctx = (int)v; break;
        case O_QUEUE: ok = parse_num(optarg, 0, 1e6, &v) && v == (int)v, o->sp.queue_max = (int)v; break;
        case O_QTIME: ok = parse_num(optarg, 0.001, 1e6, &o->sp.queue_timeout); break;
        case O_CHUNK: ok = parse_num(optarg, 1, 65536, &v) && v == (int)v, o->sp.prefill_chunk = (int)v; break;
        case O_TIMEOUT: ok = parse_num(optarg, 1, 1e6, &v) && v == (int)v, o->timeout = (int)v; break;
        case O_BODY: ok = parse_num(optarg, 1024, 1 << 30, &v) && v == (long)v, o->max_body = (long)v; break;
        case O_DRAIN: ok = parse_num(optarg, 0, 1e6, &o->drain_timeout); break;
        case O_DELAY: ok = parse_num(optarg, 0, 1e6, &v), o->sp.step_delay = v / 1000; break;
        case O_CTXCOST: ok = parse_num(optarg, 1e-6, 1e9, &v), o->sp.ctx_cost = v * 1e-6; break;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return 2;
        }
        if (!ok) {
            const char *flag = "?";
            for (const struct option *l = longs; l->name; l++)
                if (l->val == c) flag = l->name;
            fprintf(stderr, "rackllm serve: invalid value '%s' for --%s\n", optarg, flag);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rackllm serve: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o->model_path) {
        fprintf(stderr, "rackllm serve: -m FILE is required\n");
        return 2;
    }
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

int cmd_serve(int argc, char **argv) {
    serve_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    int tmpl = -1;
    if (o.chat_template && (tmpl = chat_from_name(o.chat_template)) < 0) {
        fprintf(stderr, "rackllm serve: unknown chat template '%s' (llama3, llama2, llama2-sys, llama2-sys-bos, "
                        "llama2-sys-strip, zephyr, chatml)\n", o.chat_template);
        return 2;
    }
    /* Every thread started from here on inherits this mask: the signals
     * wait for sigwait below. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    rl_err err = {0};
    model_load_params lp = {.progress = true, .prefault = true};
    model *m = model_load(o.model_path, &lp, &err);
    if (!m) return cli_fail(&err);
    if (tmpl < 0) {
        tmpl = (int)chat_detect(m->chat_template);
        if (chat_recognise(m->chat_template) < 0)
            fprintf(stderr, "rackllm serve: %s; chat uses the default template (%s)\n",
                    m->chat_template ? "the model's chat template is not one rackllm renders" : "the model has no chat template",
                    chat_name((chat_template)tmpl));
    }
    o.sp.log = stderr;
    sched *s = sched_new(m, &o.sp, &err);
    if (!s) {
        model_free(m);
        return cli_fail(&err);
    }
    char name[256];
    if (o.name) snprintf(name, sizeof name, "%s", o.name);
    else model_name(o.model_path, name, sizeof name);
    server_params hp = {.host = o.host, .port = o.port, .api_key = o.api_key, .model_id = name,
                        .tmpl = (chat_template)tmpl, .max_body = (size_t)o.max_body, .timeout = o.timeout};
    server *sv = server_start(m, s, &hp, &err);
    if (!sv) {
        sched_free(s);
        model_free(m);
        return cli_fail(&err);
    }
    sched_stats st;
    sched_get_stats(s, &st);
    fprintf(stderr,
            "rackllm serve: model %s, %s chat template; capacity %d session%s at >= %g tok/s (%s), %d partition%s, "
            "queue %d (%g s), context %d, prefill chunk %d\n",
            name, chat_name((chat_template)tmpl), st.capacity_base, st.capacity_base == 1 ? "" : "s", st.floor_tps,
            o.sp.capacity > 0 ? "given" : "calibrated", st.partitions, st.partitions == 1 ? "" : "s", st.queue_max,
            o.sp.queue_timeout, st.n_ctx, st.prefill_chunk);
    const char *shown = strchr(o.host, ':') ? "[%s]" : "%s";
    char host[300];
    snprintf(host, sizeof host, shown, o.host);
    printf("rackllm serve: listening on http://%s:%d\n", host, server_port(sv));
    fflush(stdout);

    int sig = 0;
    sigwait(&stop_signals, &sig);
    fprintf(stderr, "rackllm serve: %s: draining (at most %g s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
            o.drain_timeout);
    server_shutdown(sv, o.drain_timeout);
    server_free(sv);
    sched_get_stats(s, &st);
    sched_free(s);
    model_free(m);
    fprintf(stderr, "rackllm serve: stopped (%llu sessions served, %llu tokens generated)\n",
            (unsigned long long)st.admitted, (unsigned long long)st.completion_tokens);
    return 0;
}
