/*
 * cmd_run.c — `rackllm run`: generate text from a prompt, or chat.
 *
 * The engine runs a batch of one. Generated text streams to stdout as whole
 * UTF-8 characters; the speeds go to stderr at the end. With --chat, lines
 * read from stdin are the user's turns, rendered with the model's chat
 * template; the conversation stays in the KV cache, and each turn feeds only
 * the tokens that are new.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "engine/engine.h"
#include "text/chat.h"

#define MAX_STOPS 8

typedef struct run_opts {
    const char *model_path, *prompt, *system, *chat_template;
    int n_predict, n_threads, n_ctx, max_batch;
    bool ignore_eos, chat, no_bos, show_special;
    sampler_params sp;
    const char *stops[MAX_STOPS];
    int n_stops;
} run_opts;

static void usage(FILE *out) {
    fprintf(out,
            "usage: rackllm run -m FILE (-p PROMPT | --chat) [options]\n"
            "\n"
            "Generates text with a GGUF model and streams it to stdout (speeds on stderr).\n"
            "\n"
            "  -m, --model FILE        GGUF model (llama, qwen2 or qwen3 architecture)\n"
            "  -p, --prompt TEXT       the prompt (generated text follows it; the prompt is not echoed)\n"
            "  -n, --n-predict N       tokens to generate (default -1: until end of text or context)\n"
            "  -t, --threads N         compute threads (default: all CPUs)\n"
            "  -c, --ctx N             context length (default: the model's, at most 4096)\n"
            "      --temp T            temperature (default 0.8; 0 = greedy)\n"
            "      --top-k K           (default 40; 0 = off)\n"
            "      --top-p P           (default 0.95; 1 = off)\n"
            "      --min-p P           (default 0.05; 0 = off)\n"
            "      --repeat-penalty R  (default 1 = off)\n"
            "      --repeat-last-n N   tokens the penalty looks back (default 64)\n"
            "      --seed S            random seed (default: from the clock; same seed, same text)\n"
            "      --stop TEXT         stop when TEXT is generated (repeatable, up to %d)\n"
            "      --ignore-eos        keep going past end-of-text tokens\n"
            "      --no-bos            do not add the BOS token to the prompt\n"
            "      --chat              interactive chat on stdin with the model's chat template\n"
            "      --chat-template N   llama3 | llama2 | zephyr | chatml (default: from the model)\n"
            "      --system TEXT       system message for --chat\n"
            "      --special           print control tokens' text too\n"
            "  -h, --help              this help\n",
            MAX_STOPS);
}

/* --stop, repeatable. */
static int add_stop(void *dest, const char *value, rl_err *err) {
    run_opts *o = dest;
    if (o->n_stops == MAX_STOPS) return rl_fail(err, RL_ERR_INPUT, "at most %d --stop strings", MAX_STOPS);
    o->stops[o->n_stops++] = value;
    return 0;
}

/* 0: run; CLI_HELP; -1 with err. */
static int parse(int argc, char **argv, run_opts *o, rl_err *err) {
    memset(o, 0, sizeof *o);
    o->n_predict = -1;
    o->sp = sampler_default_params();
    o->sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    const cli_flag flags[] = {
        FLAG_STR("model", 'm', &o->model_path),
        FLAG_STR("prompt", 'p', &o->prompt),
        FLAG_INT("n-predict", 'n', &o->n_predict, -1, 1e9),
        FLAG_INT("threads", 't', &o->n_threads, 0, 4096),
        FLAG_INT("ctx", 'c', &o->n_ctx, 0, 1 << 24),
        FLAG_INT("batch", 0, &o->max_batch, 0, 1 << 16),
        FLAG_FLOAT("temp", 0, &o->sp.temperature, 0, 1e9),
        FLAG_INT("top-k", 0, &o->sp.top_k, 0, INT32_MAX),
        FLAG_FLOAT("top-p", 0, &o->sp.top_p, 0, 1),
        FLAG_FLOAT("min-p", 0, &o->sp.min_p, 0, 1),
        FLAG_FLOAT("repeat-penalty", 0, &o->sp.repeat_penalty, 0, 1e9),
        FLAG_INT("repeat-last-n", 0, &o->sp.penalty_last_n, 0, SAMPLER_MAX_LAST_N),
        FLAG_U64("seed", 0, &o->sp.seed, 0, 0),
        FLAG_FN("stop", 0, o, add_stop),
        FLAG_BOOL("ignore-eos", 0, &o->ignore_eos),
        FLAG_BOOL("no-bos", 0, &o->no_bos),
        FLAG_BOOL("chat", 0, &o->chat),
        FLAG_STR("chat-template", 0, &o->chat_template),
        FLAG_STR("system", 0, &o->system),
        FLAG_BOOL("special", 0, &o->show_special),
    };
    int first, rc = cli_parse(argc, argv, flags, (int)RL_ARRAY_LEN(flags), usage, &first, err);
    if (rc) return rc;
    if (first < argc) return rl_fail(err, RL_ERR_INPUT, "unexpected argument '%s'", argv[first]);
    if (!o->model_path) return rl_fail(err, RL_ERR_INPUT, "-m FILE is required");
    if (!o->prompt && !o->chat) return rl_fail(err, RL_ERR_INPUT, "give a prompt (-p) or --chat");
    return 0;
}

/* A growing list of token ids: what a sequence holds. */
typedef struct ids {
    int32_t *v;
    int n, cap;
} ids;

static int ids_push(ids *l, const int32_t *t, int n) {
    if (l->n + n > l->cap) {
        int cap = RL_MAX(l->cap * 2, l->n + n + 64);
        int32_t *v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    memcpy(l->v + l->n, t, (size_t)n * sizeof *t);
    l->n += n;
    return 0;
}

/* A growing byte string: the reply of a chat turn. */
typedef struct text {
    char *s;
    size_t n, cap;
} text;

static void text_add(text *t, const char *s, size_t n) {
    if (t->n + n + 1 > t->cap) {
        size_t cap = RL_MAX(t->cap * 2, t->n + n + 256);
        char *p = realloc(t->s, cap);
        if (!p) return;
        t->s = p;
        t->cap = cap;
    }
    memcpy(t->s + t->n, s, n);
    t->n += n;
    t->s[t->n] = 0;
}

/* Generation state shared by one-shot and chat modes. */
typedef struct gen {
    engine *e;
    const model *m;
    engine_seq *seq;
    const run_opts *o;
    ids held;               /* tokens the sequence holds (or will, once processed) */
    double prompt_time, gen_time;
    int prompt_tokens, gen_tokens;
} gen;

static void emit(text *reply, const char *s, size_t n) {
    if (!n) return;
    fwrite(s, 1, n, stdout);
    fflush(stdout);
    if (reply) text_add(reply, s, n);
}

/* Runs the sequence until its end: EOG, -n, a stop string or a full
 * context. The text goes to stdout (and to `reply` if given). Returns 0, or
 * the exit code of an error. */
static int generate(gen *g, const char *const *extra_stops, text *reply) {
    rl_err err = {0};
    const tokenizer *tok = g->m->tok;
    tok_stream ts = {0};
    size_t cap = tok_stream_bound(tok);
    char *piece = malloc((size_t)cap), *out = malloc((size_t)cap + STOP_MAX_LEN);
    if (!piece || !out) {
        free(piece);
        free(out);
        return cli_fail(&(rl_err){RL_ERR_INTERNAL, "out of memory"});
    }
    const char *stops[MAX_STOPS + 8];
    int n_stops = 0;
    for (int i = 0; i < g->o->n_stops; i++) stops[n_stops++] = g->o->stops[i];
    for (int i = 0; extra_stops && extra_stops[i] && n_stops < (int)RL_ARRAY_LEN(stops); i++)
        stops[n_stops++] = extra_stops[i];
    stop_matcher *sm = n_stops ? stop_new(stops, n_stops, &err) : NULL;
    int produced = 0;
    bool first = true, stopped = false;
    double t0 = rl_now();
    while (!stopped && (g->o->n_predict < 0 || produced < g->o->n_predict)) {
        int n = engine_step(g->e, &err);
        if (n < 0) {
            stop_free(sm);
            free(piece);
            free(out);
            return cli_fail(&err);
        }
        int32_t t;
        if (!engine_seq_take(g->seq, &t)) {
            if (n == 0) break;
            continue; /* a prefill chunk */
        }
        if (first) { /* time to first token counts as prompt time */
            double t1 = rl_now();
            g->prompt_time += t1 - t0;
            t0 = t1;
            first = false;
        } else {
            g->gen_tokens++;
        }
        produced++;
        if (engine_seq_get_state(g->seq) != SEQ_FULL) ids_push(&g->held, &t, 1);
        if (!g->o->ignore_eos && tok_is_eog(tok, t)) break;
        int len = g->o->show_special || !tok_is_control(tok, t) ? tok_stream_push(tok, &ts, t, piece, cap) : 0;
        if (len > 0) {
            size_t k = sm ? stop_push(sm, piece, (size_t)len, out, &stopped) : (size_t)len;
            emit(reply, sm ? out : piece, k);
        }
        if (engine_seq_get_state(g->seq) == SEQ_FULL) {
            fprintf(stderr, "\nrackllm run: context full (%d tokens); use --ctx for more\n", engine_n_ctx(g->e));
            break;
        }
    }
    if (!first) g->gen_time += rl_now() - t0;
    int len = tok_stream_flush(&ts, piece, cap);
    if (!stopped) {
        size_t k = len > 0 && sm ? stop_push(sm, piece, (size_t)len, out, &stopped) : (size_t)len;
        emit(reply, sm ? out : piece, k);
        if (sm && !stopped) emit(reply, out, stop_flush(sm, out));
    }
    stop_free(sm);
    free(piece);
    free(out);
    return 0;
}

static int tokenize_all(const model *m, const char *s, bool bos, bool special, ids *out, rl_err *err) {
    size_t len = strlen(s);
    int n = tok_encode(m->tok, s, len, bos, special, NULL, 0, err);
    if (n < 0) return -1;
    if (n > out->cap) {
        int32_t *v = realloc(out->v, (size_t)n * sizeof *v);
        if (!v) return rl_fail(err, RL_ERR_INTERNAL, "out of memory");
        out->v = v;
        out->cap = n;
    }
    out->n = tok_encode(m->tok, s, len, bos, special, out->v, out->cap, err);
    return out->n;
}

static void report_speed(const gen *g) {
    fprintf(stderr, "\nprompt: %d tokens, %.2f s, %.1f tok/s | generation: %d tokens, %.2f s, %.1f tok/s\n",
            g->prompt_tokens, g->prompt_time, g->prompt_time > 0 ? g->prompt_tokens / g->prompt_time : 0,
            g->gen_tokens, g->gen_time, g->gen_time > 0 ? g->gen_tokens / g->gen_time : 0);
}

static int run_once(gen *g) {
    rl_err err = {0};
    ids prompt = {0};
    bool bos = !g->o->no_bos && tok_add_bos(g->m->tok);
    int n = tokenize_all(g->m, g->o->prompt, bos, false, &prompt, &err);
    if (n < 0) return cli_fail(&err);
    g->seq = engine_seq_add(g->e, prompt.v, n, &g->o->sp, &err);
    free(prompt.v);
    if (!g->seq) return cli_fail(&err);
    g->prompt_tokens = n;
    int rc = generate(g, NULL, NULL);
    report_speed(g);
    return rc;
}

/* Brings the sequence to hold exactly `want`: feeds the new tail when what
 * it holds is a prefix, starts it again otherwise. */
static int sync_sequence(gen *g, const ids *want, rl_err *err) {
    int common = 0;
    while (common < g->held.n && common < want->n && g->held.v[common] == want->v[common]) common++;
    if (!g->seq || common < g->held.n || common == want->n) {
        engine_seq_remove(g->e, g->seq);
        g->seq = engine_seq_add(g->e, want->v, want->n, &g->o->sp, err);
        if (!g->seq) return -1;
        common = 0;
    } else if (engine_seq_feed(g->seq, want->v + common, want->n - common, err)) {
        return -1;
    }
    g->prompt_tokens += want->n - common;
    g->held.n = 0;
    return ids_push(&g->held, want->v, want->n);
}

/* --chat: one line per user turn. */
static int run_chat(gen *g) {
    rl_err err = {0};
    const model *m = g->m;
    int tmpl = g->o->chat_template ? chat_from_name(g->o->chat_template) : (int)chat_detect(m->chat_template);
    if (tmpl < 0) return cli_usage_error("unknown chat template '%s' (llama3, llama2, zephyr, chatml)", g->o->chat_template);
    /* The model's own template, interpreted, unless a built-in is named;
     * one that cannot be rendered is an error, as in serve. */
    chat_jinja *jinja = NULL;
    if (!g->o->chat_template && m->chat_template && !(jinja = chat_jinja_load(m->chat_template, &err)))
        return cli_fail(&err);
    bool template_stops = !jinja || chat_recognise(m->chat_template) >= 0;
    char bos[64] = "", eos[64] = "";
    size_t n;
    const char *p;
    if (tok_bos(m->tok) >= 0 && (p = tok_piece(m->tok, tok_bos(m->tok), &n)))
        snprintf(bos, sizeof bos, "%.*s", (int)n, p);
    if (tok_eos(m->tok) >= 0 && (p = tok_piece(m->tok, tok_eos(m->tok), &n)))
        snprintf(eos, sizeof eos, "%.*s", (int)n, p);
    bool tty = isatty(STDIN_FILENO);
    if (tty)
        fprintf(stderr, "chat with %s (template %s); end with Ctrl-D\n", m->shape.name,
                jinja ? "the model's own" : chat_name((chat_template)tmpl));
    enum { MAX_MSGS = 512 };
    chat_msg msgs[MAX_MSGS];
    char *owned[MAX_MSGS];
    size_t n_msgs = 0, n_owned = 0;
    if (g->o->system) msgs[n_msgs++] = (chat_msg){"system", g->o->system};
    ids want = {0};
    char line[8192];
    int rc = 0;
    while (n_msgs + 2 < MAX_MSGS) {
        if (tty) fprintf(stderr, "> ");
        if (!fgets(line, sizeof line, stdin)) break;
        line[strcspn(line, "\n")] = 0;
        if (!*line) continue;
        msgs[n_msgs++] = (chat_msg){"user", owned[n_owned++] = strdup(line)};
        /* tokenized without BOS below: the template's own BOS text stays */
        char *prompt = jinja ? chat_jinja_render(jinja, msgs, n_msgs, true, bos, eos, false, &err)
                             : chat_render((chat_template)tmpl, msgs, n_msgs, true, bos, eos, &err);
        int n_ids = prompt ? tokenize_all(m, prompt, false, true, &want, &err) : -1;
        free(prompt);
        if (n_ids < 0 || sync_sequence(g, &want, &err)) {
            rc = cli_fail(&err);
            break;
        }
        text reply = {0};
        static const char *const no_stops[] = {NULL};
        rc = generate(g, template_stops ? chat_stop_strings((chat_template)tmpl) : no_stops, &reply);
        printf("\n");
        msgs[n_msgs++] = (chat_msg){"assistant", owned[n_owned++] = reply.s ? reply.s : strdup("")};
        if (rc) break;
    }
    free(want.v);
    for (size_t i = 0; i < n_owned; i++) free(owned[i]);
    chat_jinja_free(jinja);
    if (g->seq) report_speed(g);
    return rc;
}

int cmd_run(int argc, char **argv) {
    run_opts o;
    rl_err err = {0};
    int rc = parse(argc, argv, &o, &err);
    if (rc) return rc == CLI_HELP ? 0 : cli_fail(&err);
    model_load_params lp = {.progress = true, .prefault = true};
    model *m = model_load(o.model_path, &lp, &err);
    if (!m) return cli_fail(&err);
    engine_params ep = engine_default_params();
    ep.n_threads = o.n_threads;
    ep.n_ctx = o.n_ctx;
    if (o.max_batch > 0) ep.max_batch = o.max_batch;
    engine *e = engine_open(m, &ep, &err);
    if (!e) {
        model_free(m);
        return cli_fail(&err);
    }
    gen g = {.e = e, .m = m, .o = &o};
    rc = o.chat ? run_chat(&g) : run_once(&g);
    free(g.held.v);
    engine_close(e);
    model_free(m);
    return rc;
}
