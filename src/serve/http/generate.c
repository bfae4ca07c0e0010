/*
 * generate.c — a generation request from its body to its last byte.
 *
 * Prep (a prep thread, prep.h): the body is parsed and checked
 * (api_parse_request), the chat template rendered, the prompt tokenized —
 * stopping as soon as it is longer than the context, which refuses it
 * anyway — and the scheduler asked for a slot. Meanwhile the request is
 * parked; the prep job's end wakes it.
 *
 * Then, on an HTTP thread, each time the request is woken (gen_continue):
 * a refusal is answered; a queued request parks until the scheduler's news
 * (admitted, or rejected: 429 / 503); an admitted one either streams — its
 * content reader turns the session's text into SSE events and parks
 * whenever there is none yet — or parks until its session ends and answers
 * the whole text as one JSON object. A client found gone at any of these
 * points is let go: its session is cancelled and the connection closed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_internal.h"
#include "text/tokenizer.h"

enum { SSE_ROLE, SSE_TEXT, SSE_END };

/* ---- prep ---- */

/* A chat through a built-in template, and where each message's content
 * lies in the text (to be tokenized as plain text). */
static char *render_builtin(server *sv, const api_request *q, tok_range **plain, size_t *n_plain, rl_err *err) {
    chat_msg *msgs = calloc((size_t)q->n_messages, sizeof *msgs);
    if (!msgs) {
        rl_fail(err, RL_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    for (int i = 0; i < q->n_messages; i++) msgs[i] = (chat_msg){q->messages[i].role, q->messages[i].content};
    char *text = chat_render_marked(sv->p.tmpl, msgs, (size_t)q->n_messages, true, sv->bos, sv->eos, plain, n_plain,
                                    err);
    free(msgs);
    return text;
}

/* A chat through the model's own template. The template may move or
 * rewrite a message's content, so its place in the output is not known:
 * instead, unless --special-in-content, control-token strings written in a
 * message are broken (tok_break_special) before rendering, so that they
 * stay text when the whole output is tokenized with special tokens. */
static char *render_own(server *sv, const api_request *q, rl_err *err) {
    size_t n = (size_t)q->n_messages;
    chat_msg *msgs = calloc(n, sizeof *msgs);
    char **broken = calloc(n, sizeof *broken);
    char *text = NULL;
    if (!msgs || !broken) {
        rl_fail(err, RL_ERR_INTERNAL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const char *content = q->messages[i].content;
        if (!sv->p.content_special && content) {
            err->code = RL_ERR_NONE;
            broken[i] = tok_break_special(sv->m->tok, content, err);
            if (!broken[i] && err->code != RL_ERR_NONE) goto done;
        }
        msgs[i] = (chat_msg){q->messages[i].role, broken[i] ? broken[i] : content};
    }
    text = chat_jinja_render(sv->p.jinja, msgs, n, true, sv->bos, sv->eos, tok_add_bos(sv->m->tok), err);
done:
    for (size_t i = 0; broken && i < n; i++) free(broken[i]);
    free(broken);
    free(msgs);
    return text;
}

/* The prompt's tokens, at most cap - 1 (room for one more): the chat
 * template rendered — its markers become special tokens, the messages'
 * content stays text unless --special-in-content — or the completion
 * prompt as plain text. */
static int prompt_tokens(server *sv, const api_request *q, int32_t *ids, int cap, int *n, api_error *e) {
    char *text = NULL;
    const char *src = q->prompt;
    const char *param = q->kind == API_CHAT ? "messages" : "prompt";
    rl_err err = {0};
    tok_range *plain = NULL;
    size_t n_plain = 0;
    if (q->kind == API_CHAT) {
        text = sv->p.jinja ? render_own(sv, q, &err) : render_builtin(sv, q, &plain, &n_plain, &err);
        if (!text)
            return api_fail(e, err.code == RL_ERR_INPUT ? 400 : 500,
                            err.code == RL_ERR_INPUT ? "invalid_request_error" : "server_error", param, NULL, "%s",
                            err.msg);
        src = text;
    }
    tok_encode_opts o = {.add_bos = tok_add_bos(sv->m->tok), .parse_special = q->kind == API_CHAT,
                         .plain = sv->p.content_special ? NULL : plain, .n_plain = sv->p.content_special ? 0 : n_plain,
                         .max_ids = cap - 1};
    *n = tok_encode_with(sv->m->tok, src, strlen(src), &o, ids, cap, &err);
    free(text);
    free(plain);
    if (*n < 0) return api_fail(e, 400, "invalid_request_error", param, NULL, "%s", err.msg);
    if (*n == 0) return api_fail(e, 400, "invalid_request_error", param, NULL, "the prompt is empty");
    if (*n >= cap)
        return api_fail(e, 400, "invalid_request_error", param, "context_length_exceeded",
                        "the prompt has more than %d tokens; this server's context holds %d, with room for at "
                        "least one more", cap - 1, cap);
    return 0;
}

/* A chat that does not fit, with --context-overflow drop-oldest: the
 * prompt of the chat without its k oldest turns (messages other than
 * system ones, before the last user message, messages[last_user]; an
 * assistant message left first after them goes too, so that the chat
 * still begins with a user turn). The system messages and the last user
 * message always stay. */
static int prompt_without(server *sv, const api_request *q, int last_user, int k, api_message *kept, int32_t *ids,
                          int cap, int *n, api_error *e) {
    int m = 0;
    bool leading = k > 0; /* turns were dropped and no other kept yet */
    for (int i = 0; i < q->n_messages; i++) {
        const api_message *msg = &q->messages[i];
        bool system = !strcmp(msg->role, "system"), droppable = i < last_user && !system;
        if (droppable && k > 0) {
            k--;
            continue;
        }
        if (droppable && leading && !strcmp(msg->role, "assistant")) continue;
        kept[m++] = *msg;
        if (!system) leading = false;
    }
    api_request v = *q;
    v.messages = kept;
    v.n_messages = m;
    return prompt_tokens(sv, &v, ids, cap, n, e);
}

/* Whether a prompt of n tokens leaves room for max_tokens (all of the
 * context's rest when 0: then one token is enough). */
static bool fits(int n, int max_tokens, int cap) { return n + (max_tokens > 0 ? max_tokens : 1) <= cap; }

/* The prompt's tokens, with a chat that is too long for the context (or
 * for it less max_tokens) cut by its oldest turns when the server is told
 * so: the fewest turns that make it fit, found by bisection (a dozen
 * renderings for the longest chat). Where none does, what is left runs if
 * the prompt alone fits (it ends when the context is full), else 400. */
static int prompt_fit(server *sv, const api_request *q, int32_t *ids, int cap, int *n, api_error *e) {
    int rc = prompt_tokens(sv, q, ids, cap, n, e);
    bool overflow = rc ? e->code && !strcmp(e->code, "context_length_exceeded") : !fits(*n, q->max_tokens, cap);
    if (q->kind != API_CHAT || !sv->drop_oldest || !overflow) return rc;
    int droppable = 0, last_user = -1;
    for (int i = 0; i < q->n_messages; i++)
        if (!strcmp(q->messages[i].role, "user")) last_user = i;
    for (int i = 0; i < last_user; i++) droppable += strcmp(q->messages[i].role, "system") != 0;
    api_message *kept = malloc((size_t)q->n_messages * sizeof *kept);
    if (!kept) return api_fail(e, 500, "server_error", NULL, NULL, "out of memory");
    int lo = 1, hi = droppable; /* the fewest turns to drop lies in [lo, hi] */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        rc = prompt_without(sv, q, last_user, mid, kept, ids, cap, n, e);
        if (rc == 0 && fits(*n, q->max_tokens, cap)) hi = mid;
        else if (rc == 0 || (e->code && !strcmp(e->code, "context_length_exceeded"))) lo = mid + 1;
        else break; /* another error (a template's own) */
    }
    if (lo >= hi) rc = prompt_without(sv, q, last_user, hi, kept, ids, cap, n, e);
    free(kept);
    return rc;
}

static int check_model(server *sv, const api_request *q, api_error *e) {
    if (guard_list_has(&sv->names, q->model, false)) return 0;
    char shown[80];
    size_t k = 0;
    for (const char *c = q->model; *c && k < 64; c++) shown[k++] = (*c >= 32 && *c < 127) ? *c : '?';
    shown[k] = 0;
    return api_fail(e, 404, "invalid_request_error", "model", "model_not_found",
                    "The model '%s' does not exist; this server serves '%s'", shown, sv->p.model_id);
}

/* max_tokens: the server's default where the request gives none, and
 * its cap (400 naming the field the request used). */
static int limit_max_tokens(server *sv, api_request *q, api_error *e) {
    if (q->max_tokens == 0) {
        q->max_tokens = sv->p.max_tokens_default;
        return 0;
    }
    if (sv->p.max_tokens_max > 0 && q->max_tokens > sv->p.max_tokens_max)
        return api_fail(e, 400, "invalid_request_error", q->max_tokens_field, NULL,
                        "'%s' is %d; this server allows at most %d", q->max_tokens_field, q->max_tokens,
                        sv->p.max_tokens_max);
    return 0;
}

/* Asks the scheduler for a slot for the parsed request (its news will
 * wake r). -1 with r->err if it cannot run at all. */
static int submit(request *r, const api_request *q, const int32_t *ids, int n, int n_ctx) {
    server *sv = r->sv;
    const char *stops[API_MAX_STOPS + 8];
    int n_stops = 0;
    for (int i = 0; i < q->n_stops; i++) stops[n_stops++] = q->stops[i];
    /* The template's turn markers as text; a model's own template adds them
     * only when its family is recognised (server.h). */
    bool template_stops = q->kind == API_CHAT && (!sv->p.jinja || chat_recognise(sv->m->chat_template) >= 0);
    for (const char *const *s = template_stops ? chat_stop_strings(sv->p.tmpl) : NULL;
         s && *s && n_stops < (int)RL_ARRAY_LEN(stops); s++)
        stops[n_stops++] = *s;
    sched_request sr = {.prompt = ids, .n_prompt = n, .sp = q->sp, .max_tokens = q->max_tokens, .stops = stops,
                        .n_stops = n_stops, .ignore_eos = q->ignore_eos, .logprobs = q->logprobs,
                        .top_logprobs = q->top_logprobs, .notify = watch_news, .notify_ctx = r,
                        .expected_ttft = &r->ttft_expected};
    uint64_t serial = atomic_fetch_add(&sv->next_id, 1);
    if (!q->has_seed) sr.sp.seed = http_mix64(sv->nonce ^ serial);
    if (q->penalties) sr.sp.penalty_last_n = q->repeat_last_n < 0 ? n_ctx : RL_MIN(q->repeat_last_n, n_ctx);
    snprintf(r->id, sizeof r->id, "%s-%llx%04llx", q->kind == API_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)serial, (unsigned long long)(sv->nonce & 0xffff));
    pthread_mutex_lock(&sv->lock);
    r->wants = SCHED_NEWS_ADMISSION | SCHED_NEWS_END | (q->stream ? SCHED_NEWS_TEXT : 0);
    pthread_mutex_unlock(&sv->lock);
    rl_err err = {0};
    r->how = sched_submit(sv->s, &sr, &r->ss, &err);
    if (r->how >= 0) return 0;
    bool input = err.code == RL_ERR_INPUT;
    return api_fail(&r->err, input ? 400 : 500, input ? "invalid_request_error" : "server_error", NULL, NULL, "%s",
                    err.msg);
}

/* Room for every log-probability record the answer may carry. */
static int logprobs_room(request *r, const api_request *q, int n_ctx) {
    r->logprobs = q->logprobs;
    r->text_offset = q->kind == API_COMPLETION ? strlen(q->prompt) : 0;
    if (!q->logprobs) return 0;
    r->lp_cap = (q->max_tokens > 0 ? RL_MIN(q->max_tokens, n_ctx) : n_ctx) + 1;
    if (!(r->lp = malloc((size_t)r->lp_cap * sizeof *r->lp)))
        return api_fail(&r->err, 500, "server_error", NULL, NULL, "out of memory");
    return 0;
}

/* Everything before admission, for a request whose client is still there. */
static void prepare(request *r) {
    server *sv = r->sv;
    api_request q;
    r->how = -1;
    if (api_parse_request(r->kind, r->body ? r->body : "", r->len, &q, &r->err)) return;
    sched_stats st;
    sched_get_stats(sv->s, &st);
    int32_t *ids = malloc((size_t)st.n_ctx * sizeof *ids);
    int n = 0;
    if (!ids) api_fail(&r->err, 500, "server_error", NULL, NULL, "out of memory");
    else if (!check_model(sv, &q, &r->err) && !limit_max_tokens(sv, &q, &r->err) &&
             !logprobs_room(r, &q, st.n_ctx) && !prompt_fit(sv, &q, ids, st.n_ctx, &n, &r->err))
        submit(r, &q, ids, n, st.n_ctx);
    r->n_prompt = n;
    r->max_tokens = q.max_tokens;
    r->stream = q.stream;
    r->include_usage = q.stream && q.include_usage;
    free(ids);
    api_request_free(&q);
}

void gen_prep(void *job) {
    request *r = job;
    server *sv = r->sv;
    pthread_mutex_lock(&sv->lock);
    bool gone = r->gone;
    pthread_mutex_unlock(&sv->lock);
    if (gone || atomic_load(&sv->stopping)) r->how = -1; /* nobody to answer */
    else prepare(r);
    free(r->body); /* the body has served its purpose */
    r->body = NULL;
    pthread_mutex_lock(&sv->lock);
    r->prep_done = true;
    pthread_mutex_unlock(&sv->lock);
    watch_wake(r);
}

/* ---- answers ---- */

static bool is_gone(request *r) {
    pthread_mutex_lock(&r->sv->lock);
    bool gone = r->gone;
    pthread_mutex_unlock(&r->sv->lock);
    return gone || atomic_load(&r->sv->stopping) || http_client_gone(r);
}

static const char *finish_name(sched_finish f) { return f == SCHED_FINISH_STOP ? "stop" : "length"; }

/* The log-probabilities read so far (none unless asked for). */
static api_logprobs read_logprobs(request *r) {
    if (r->logprobs) r->n_lp += sched_read_logprobs(r->ss, r->lp + r->n_lp, r->lp_cap - r->n_lp);
    return (api_logprobs){r->sv->m->tok, r->lp, r->n_lp, r->text_offset};
}

/* A chunk of the stream into r->ev, with the log-probabilities of the
 * tokens read since the last one (the buffer grows to hold them): its
 * length, 0 when out of memory. */
static size_t chunk(request *r, const char *text, size_t len, bool role, const char *finish) {
    api_logprobs lp = read_logprobs(r);
    size_t n = api_chunk_lp(&r->st, r->ev, r->ev_cap, text, len, role, finish, &lp);
    if (n >= r->ev_cap) {
        char *ev = realloc(r->ev, n + 4096); /* and room for the usage chunk and [DONE] */
        if (!ev) return 0;
        r->ev = ev;
        r->ev_cap = n + 4096;
        n = api_chunk_lp(&r->st, r->ev, r->ev_cap, text, len, role, finish, &lp);
    }
    r->text_offset += api_logprobs_bytes(&lp);
    r->n_lp = 0;
    return n;
}

/* The last events of a stream: the finish (and usage) and [DONE], or an
 * error event if the session did not end normally. */
static void final_events(request *r, const sched_progress *pr) {
    size_t n = 0;
    if (pr->finish == SCHED_FINISH_STOP || pr->finish == SCHED_FINISH_LENGTH) {
        n += chunk(r, "", 0, false, finish_name(pr->finish));
        if (r->st.include_usage)
            n += api_usage_chunk(&r->st, r->ev + n, r->ev_cap - n, (api_usage){pr->n_prompt, pr->n_generated, pr->n_cached});
        n += (size_t)snprintf(r->ev + n, r->ev_cap - n, "data: [DONE]\n\n");
    } else {
        const char *msg = pr->finish == SCHED_FINISH_ABORTED ? "the server is shutting down: generation stopped"
                          : pr->error && *pr->error          ? pr->error
                                                              : "generation failed";
        n = api_error_chunk(r->ev, r->ev_cap, "server_error", msg);
    }
    r->ev_len = n;
    r->ev_pos = 0;
}

/* The next event of the stream into r->ev: true if there is one, false
 * if there is nothing to send yet. */
static bool next_event(request *r) {
    r->ev_len = r->ev_pos = 0;
    if (r->phase == SSE_ROLE) {
        r->ev_len = api_chunk(&r->st, r->ev, r->ev_cap, "", 0, true, NULL);
        r->phase = SSE_TEXT;
        return true;
    }
    sched_progress pr;
    size_t n = sched_read(r->ss, r->text, TEXT_MAX, 0, &pr);
    if (n > 0) {
        r->ev_len = chunk(r, r->text, n, false, NULL);
    } else if (pr.done) {
        final_events(r, &pr);
        r->phase = SSE_END;
    } else if (rl_now() - r->last_write >= KEEPALIVE_SECONDS) {
        r->ev_len = (size_t)snprintf(r->ev, r->ev_cap, ": keep-alive\n\n");
    }
    return r->ev_len > 0;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    request *r = cls;
    for (;;) {
        if (r->ev_pos < r->ev_len) {
            size_t n = RL_MIN(max, r->ev_len - r->ev_pos);
            memcpy(buf, r->ev + r->ev_pos, n);
            r->ev_pos += n;
            r->last_write = rl_now();
            return (ssize_t)n;
        }
        if (r->phase == SSE_END) return MHD_CONTENT_READER_END_OF_STREAM;
        if (is_gone(r)) {
            sched_cancel(r->sv->s, r->ss);
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (!next_event(r) && watch_park(r)) return 0; /* woken by the next news, or the watcher */
    }
}

static enum MHD_Result start_stream(request *r) {
    r->ev_cap = api_chunk_bound(TEXT_MAX) + 4096;
    r->ev = malloc(r->ev_cap);
    r->text = malloc(TEXT_MAX);
    if (!r->ev || !r->text) return MHD_NO;
    r->phase = r->st.kind == API_CHAT ? SSE_ROLE : SSE_TEXT;
    r->last_write = rl_now();
    r->state = RQ_STREAM;
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_reader, r, NULL);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    http_cors_headers(r, resp);
    enum MHD_Result rc = MHD_queue_response(r->conn, 200, resp);
    MHD_destroy_response(resp);
    metrics_count(&r->sv->metrics, r->ep, 200);
    r->answered = true;
    return rc;
}

static enum MHD_Result whole_answer(request *r, const sched_progress *pr) {
    server *sv = r->sv;
    if (pr->finish == SCHED_FINISH_STOP || pr->finish == SCHED_FINISH_LENGTH) {
        api_logprobs lp = read_logprobs(r);
        char *json = api_completion_json(r->st.kind, r->id, r->st.created, sv->p.model_id, r->text, r->text_len,
                                         finish_name(pr->finish), (api_usage){pr->n_prompt, pr->n_generated, pr->n_cached},
                                         &lp);
        return json ? http_answer(r, 200, "application/json", json, NULL, NULL) : MHD_NO;
    }
    if (pr->finish == SCHED_FINISH_ABORTED)
        return http_fail(r, 503, "server_error", NULL, NULL, "the server is shutting down: generation stopped");
    return http_fail(r, 500, "server_error", NULL, NULL, pr->error && *pr->error ? pr->error : "generation failed");
}

/* Collects the session's text; answers once it has ended. */
static enum MHD_Result whole_step(request *r) {
    for (;;) {
        if (is_gone(r)) {
            sched_cancel(r->sv->s, r->ss);
            return MHD_NO;
        }
        if (r->text_cap - r->text_len < TEXT_MAX) {
            size_t cap = r->text_cap ? 2 * r->text_cap : 4096;
            char *t = realloc(r->text, cap);
            if (!t) return http_fail(r, 500, "server_error", NULL, NULL, "out of memory");
            r->text = t;
            r->text_cap = cap;
        }
        sched_progress pr;
        size_t n = sched_read(r->ss, r->text + r->text_len, r->text_cap - r->text_len, 0, &pr);
        r->text_len += n;
        if (pr.done) return whole_answer(r, &pr);
        if (n == 0 && watch_park(r)) return MHD_YES; /* until the session's end wakes it */
    }
}

/* --ttft-limit: the first token would come too late; retry when the
 * expected wait has come down to the limit. */
static enum MHD_Result too_slow(request *r, const sched_stats *st) {
    double wait = r->ttft_expected;
    api_error e;
    api_fail(&e, 429, "rate_limit_error", NULL, "ttft_limit_exceeded",
             "the first token would come in about %.1f s (%d sessions running, %d prompt tokens ahead going in at "
             "%.0f tokens/s), later than this server's limit of %.1f s; retry later or elsewhere",
             wait, st->active, st->prefill_backlog, st->prefill_rate, st->ttft_limit);
    e.status = r->sv->p.full_status;
    return http_answer_error(r, &e, (int)RL_MIN(60.0, RL_MAX(1.0, ceil(wait - st->ttft_limit))));
}

static enum MHD_Result overloaded(request *r, sched_admit how) {
    sched_stats st;
    sched_get_stats(r->sv->s, &st);
    api_error e;
    r->refused = how == SCHED_REJECT_DRAINING ? "draining" : "full";
    if (how == SCHED_REJECT_DRAINING) {
        api_fail(&e, 503, "server_error", NULL, "server_shutting_down", "the server is shutting down; retry elsewhere");
        return http_answer_error(r, &e, sched_retry_after(r->sv->s));
    }
    if (how == SCHED_REJECT_TTFT) return too_slow(r, &st);
    const char *code = how == SCHED_REJECT_TIMEOUT ? "queue_timeout" : "rate_limit_exceeded";
    const char *why = how == SCHED_REJECT_TIMEOUT ? "the wait in the queue ran out" : "the queue is full";
    sched_limit limit = sched_blocking_limit(r->sv->s, r->n_prompt, r->max_tokens);
    if (limit == SCHED_LIMIT_CONTEXT)
        api_fail(&e, 429, "rate_limit_error", NULL, code,
                 "the %d running sessions reserve all the context this server serves at %.0f tokens/s (%.0f "
                 "tokens) and %s; retry later, or ask for fewer max_tokens",
                 st.active, st.floor_tps, st.ctx_reserved, why);
    else if (limit == SCHED_LIMIT_MEMORY)
        api_fail(&e, 429, "rate_limit_error", NULL, code,
                 "the %d running sessions hold all the memory this server has for sessions (%.0f of %.0f MiB) and "
                 "%s; retry later, or ask for fewer max_tokens",
                 st.active, (double)st.mem_reserved / 1048576.0, (double)st.mem_budget / 1048576.0, why);
    else
        api_fail(&e, 429, "rate_limit_error", NULL, code,
                 "all %d sessions this server holds at %.0f tokens/s are taken and %s; retry later", st.capacity,
                 st.floor_tps, why);
    e.status = r->sv->p.full_status; /* 429, or 503 for a balancer that retries 5xx only */
    return http_answer_error(r, &e, sched_retry_after(r->sv->s));
}

/* The request has a slot: stream, or wait for the whole text. */
static enum MHD_Result begin(request *r) {
    r->st = (api_stream){.kind = r->kind, .id = r->id, .model = r->sv->p.model_id, .created = (long)time(NULL),
                         .include_usage = r->include_usage};
    if (r->stream) return start_stream(r);
    r->state = RQ_WHOLE;
    return whole_step(r);
}

/* The prep job has finished with r: its outcome. */
static enum MHD_Result after_prep(request *r) {
    if (r->how < 0) return r->err.status ? http_answer_error(r, &r->err, r->retry_after) : MHD_NO;
    if (r->how == SCHED_QUEUED) {
        r->state = RQ_QUEUED;
        return gen_continue(r);
    }
    return r->how == SCHED_RUN ? begin(r) : overloaded(r, (sched_admit)r->how);
}

enum MHD_Result gen_continue(request *r) {
    server *sv = r->sv;
    for (;;) {
        if (atomic_load(&sv->stopping)) return MHD_NO; /* on_completed releases the session */
        switch (r->state) {
        case RQ_BODY:
            r->state = RQ_PREP;
            if (!prep_submit(sv->prep, r)) return http_fail(r, 500, "server_error", NULL, NULL, "out of memory");
            break;
        case RQ_PREP: {
            pthread_mutex_lock(&sv->lock);
            bool done = r->prep_done;
            pthread_mutex_unlock(&sv->lock);
            if (done) return after_prep(r);
            break;
        }
        case RQ_QUEUED: {
            if (is_gone(r)) {
                sched_cancel(sv->s, r->ss);
                return MHD_NO;
            }
            sched_admit how = sched_wait_admission(sv->s, r->ss, 0);
            if (how == SCHED_RUN) return begin(r);
            if (how != SCHED_QUEUED) return overloaded(r, how);
            break;
        }
        case RQ_WHOLE: return whole_step(r);
        case RQ_STREAM: return MHD_YES; /* its content reader runs it */
        }
        if (watch_park(r)) return MHD_YES;
    }
}
