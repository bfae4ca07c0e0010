/*
 * test_loadgen.c — the load generator's pieces (bench/loadgen.h), without
 * a server: the loopback rule, prompts and request bodies, the SSE reader
 * fed in awkward chunks, the accounting of every way a request ends, the
 * percentiles; and a run against a port where nothing listens, which must
 * count failures and stop on time. tests/test_server_loadgen.sh drives it
 * against a real server.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "bench/loadgen.h"
#include "test.h"

static void expect_base(const char *url, const char *want) {
    char base[256] = "";
    int rc = loadgen_base_url(url, base, sizeof base);
    if (want) CHECKF(rc == 0 && strcmp(base, want) == 0, "%s -> rc %d, '%s', expected '%s'", url, rc, base, want);
    else CHECKF(rc == -1, "%s accepted as '%s'", url, base);
}

static void test_loopback(void) {
    expect_base("http://127.0.0.1:8080", "http://127.0.0.1:8080");
    expect_base("http://127.0.0.1:8080/", "http://127.0.0.1:8080");
    expect_base("http://localhost:1/v1/", "http://localhost:1");
    expect_base("http://127.9.8.7", "http://127.9.8.7");
    expect_base("http://[::1]:8080/v1", "http://[::1]:8080");
    expect_base("http://10.1.2.3:8080", NULL);
    expect_base("http://192.168.0.1", NULL);
    expect_base("http://example.com", NULL);
    expect_base("https://127.0.0.1:1", NULL);
    expect_base("http://127.0.0.1.evil.com", NULL);
    expect_base("http://127.0.0.256", NULL);
    expect_base("http://[::2]:80", NULL);
    expect_base("ftp://127.0.0.1", NULL);
    expect_base("not a url", NULL);
}

static int count_words(const char *s) {
    const char *colon = strchr(s, ':');
    int n = 0;
    for (const char *p = colon ? colon : s; *p; p++) n += *p == ' ';
    return n;
}

static void test_prompts(void) {
    char *a = loadgen_prompt(12, 7), *b = loadgen_prompt(12, 7), *c = loadgen_prompt(12, 8);
    CHECK(a && b && c);
    if (a && b && c) {
        CHECK_STR(a, b); /* the same salt, the same text */
        CHECK(strcmp(a, c) != 0);
        CHECK(strncmp(a, "Tell a story (7):", 17) == 0);
        CHECK_EQ_INT(count_words(a), 12);
    }
    free(a);
    free(b);
    free(c);
}

static void test_bodies(void) {
    loadgen_params p = loadgen_default_params();
    p.prompt_len = 5;
    p.max_tokens = 9;
    char *s = loadgen_request_body(&p, "m1", 3);
    cJSON *j = s ? cJSON_Parse(s) : NULL;
    CHECK(j != NULL);
    char *prompt = loadgen_prompt(5, 3);
    const cJSON *msg = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "messages"), 0);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "model")), "m1");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(msg, "role")), "user");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(msg, "content")), prompt);
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "max_tokens")), 9);
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "seed")), 3);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "stream")));
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "stream_options"), "include_usage")));
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "ignore_eos"))); /* every answer max_tokens long */
    cJSON_Delete(j);
    free(s);
    p.completions = true;
    p.allow_eos = true;
    s = loadgen_request_body(&p, "m1", 3);
    j = s ? cJSON_Parse(s) : NULL;
    CHECK(j != NULL);
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "prompt")), prompt);
    CHECK(!cJSON_GetObjectItem(j, "messages") && !cJSON_GetObjectItem(j, "ignore_eos"));
    cJSON_Delete(j);
    free(s);
    free(prompt);
}

static void feed(loadgen_stream *s, const char *text, double now, loadgen_samples *itl) {
    loadgen_stream_feed(s, text, strlen(text), now, itl);
}

#define EV(content) "data: {\"choices\":[{\"delta\":{\"content\":\"" content "\"}}]}\n\n"

static void test_stream(void) {
    loadgen_stream s = {.keep_content = true};
    loadgen_samples itl = {0};
    loadgen_stream_reset(&s);
    feed(&s, "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n", 0.5, &itl); /* no content */
    feed(&s, "data: {\"choices\":[{\"del", 1.0, &itl);                                   /* split mid-line */
    feed(&s, "ta\":{\"content\":\"Once\"}}]}\n\n" EV(""), 1.0, &itl);                    /* "" is no content */
    feed(&s, EV(" upon"), 1.1, &itl);
    feed(&s, EV(" a") "data: {\"choices\":[],\"usage\":{\"completion_tokens\":3}}\n", 1.3, &itl);
    CHECK_EQ_INT(s.n_content, 3);
    CHECK_NEAR(s.t_first, 1.0, 0);
    CHECK_NEAR(s.t_last, 1.3, 0);
    CHECK_EQ_INT(s.completion_tokens, 3);
    CHECK_STR(s.content, "Once upon a");
    CHECK(!s.done_seen && !s.error_seen);
    feed(&s, "\ndata: [DONE]\n\n" EV(" late"), 2.0, &itl); /* nothing counts after [DONE] */
    CHECK(s.done_seen);
    CHECK_EQ_INT(s.n_content, 3);
    CHECK_EQ_INT(itl.n, 2);
    if (itl.n == 2) {
        CHECK_NEAR(itl.v[0], 0.1, 1e-12);
        CHECK_NEAR(itl.v[1], 0.2, 1e-12);
    }
    /* a text completion's "text"; an error event; a plain JSON error body */
    loadgen_stream_reset(&s);
    feed(&s, "data: {\"choices\":[{\"text\":\"hi\"}]}\n", 3.0, NULL);
    CHECK_EQ_INT(s.n_content, 1);
    feed(&s, "data: {\"error\":{\"message\":\"context full\"}}\n", 3.1, NULL);
    CHECK(s.error_seen);
    CHECK_STR(s.error, "context full");
    loadgen_stream_reset(&s);
    CHECK(!s.error_seen && s.n_content == 0 && s.error[0] == 0);
    feed(&s, "{\"error\":{\"message\":\"bad request\"}}\n", 4.0, NULL);
    CHECK(s.error_seen);
    CHECK_STR(s.error, "bad request");
    /* what is not an event: not JSON, a field of the wrong type, a line
     * longer than the reader keeps (cut, never overrun), and bytes that
     * never end their line */
    loadgen_stream_reset(&s);
    feed(&s, "data: {not json\ndata: {\"choices\":[{\"delta\":{\"content\":7}}]}\n: comment\n", 5.0, NULL);
    size_t big = 3 * sizeof s.line;
    char *junk = malloc(big + 1);
    memset(junk, 'x', big);
    memcpy(junk, "data: ", 6);
    junk[big - 1] = '\n';
    loadgen_stream_feed(&s, junk, big, 5.0, NULL);
    loadgen_stream_feed(&s, junk, big - 1, 5.0, NULL); /* no newline: held, cut at the buffer */
    CHECK(s.line_len < sizeof s.line);
    CHECK(s.n_content == 0 && !s.done_seen && !s.error_seen);
    free(junk);
    free(itl.v);
    loadgen_stream_free(&s);
}

/* A stream that ran well: 5 tokens, content from t = 10 to 12, [DONE]. */
static loadgen_stream good_stream(void) {
    loadgen_stream s = {0};
    loadgen_stream_reset(&s);
    s.n_content = 5;
    s.completion_tokens = 5;
    s.t_first = 10;
    s.t_last = 12;
    s.done_seen = true;
    return s;
}

/* usage's prompt tokens and their cached part, and a conversation's
 * requests: the history grows by each answer, a refused request is asked
 * again as it was, and after `turns` answers a new conversation begins. */
static void test_chat(void) {
    loadgen_stream s = {0};
    loadgen_stream_reset(&s);
    feed(&s, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":90,\"completion_tokens\":4,"
             "\"prompt_tokens_details\":{\"cached_tokens\":60}}}\n", 1.0, NULL);
    CHECK_EQ_INT(s.prompt_tokens, 90);
    CHECK_EQ_INT(s.cached_tokens, 60);
    CHECK(s.content == NULL); /* not kept unless asked */
    loadgen_stream_free(&s);

    loadgen_params p = loadgen_default_params();
    p.turns = 2;
    p.system_len = 5;
    p.prompt_len = 3;
    loadgen_chat *c = loadgen_chat_new(&p);
    const char *roles1[] = {"system", "user"}, *roles2[] = {"system", "user", "assistant", "user"};
    for (int round = 0; round < 2; round++) {
        char *b1 = loadgen_chat_request(c, "m", 7), *again = loadgen_chat_request(c, "m", 8);
        cJSON *ja = cJSON_Parse(again), *jb = cJSON_Parse(b1);
        char *ma = cJSON_PrintUnformatted(cJSON_GetObjectItem(ja, "messages"));
        char *mb = cJSON_PrintUnformatted(cJSON_GetObjectItem(jb, "messages"));
        CHECK_STR(ma, mb); /* asked again, not a new message */
        free(ma), free(mb);
        cJSON_Delete(ja), cJSON_Delete(jb);
        CHECK_EQ_INT(loadgen_chat_answer(c, "Sure thing", 10), 0);
        char *b2 = loadgen_chat_request(c, "m", 9);
        cJSON *j1 = cJSON_Parse(b1), *j2 = cJSON_Parse(b2);
        const cJSON *m1 = cJSON_GetObjectItem(j1, "messages"), *m2 = cJSON_GetObjectItem(j2, "messages");
        CHECK_EQ_INT(cJSON_GetArraySize(m1), 2);
        CHECK_EQ_INT(cJSON_GetArraySize(m2), 4);
        for (int i = 0; i < cJSON_GetArraySize(m2); i++) {
            const cJSON *role = cJSON_GetObjectItem(cJSON_GetArrayItem(m2, i), "role");
            CHECK_STR(role->valuestring, roles2[i]);
            if (i < 2) CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(m1, i), "role")->valuestring, roles1[i]);
        }
        CHECK_STR(cJSON_GetObjectItem(cJSON_GetArrayItem(m2, 2), "content")->valuestring, "Sure thing");
        CHECK(strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(m2, 1), "content")->valuestring,
                     cJSON_GetObjectItem(cJSON_GetArrayItem(m2, 3), "content")->valuestring) != 0);
        CHECK_EQ_INT(loadgen_chat_answer(c, "ok", 2), 1); /* the second turn: then it starts again */
        CHECK_EQ_INT(loadgen_chat_turn(c), 0);
        cJSON_Delete(j1), cJSON_Delete(j2);
        free(b1), free(again), free(b2);
    }
    loadgen_chat_free(c);
}

static void test_accounting(void) {
    loadgen_result r;
    memset(&r, 0, sizeof r);
    loadgen_stream s = good_stream();
    CHECK_NEAR(loadgen_account(&r, &s, LOADGEN_OK, NULL, 200, 0, 9.5), 0, 0);
    CHECK_EQ_INT(r.completed, 1);
    CHECK_EQ_INT(r.tokens, 5);
    CHECK(r.ttft.n == 1 && r.tps.n == 1);
    if (r.ttft.n == 1 && r.tps.n == 1) {
        CHECK_NEAR(r.ttft.v[0], 0.5, 1e-12); /* first token at 10, sent at 9.5 */
        CHECK_NEAR(r.tps.v[0], 2.0, 1e-12);  /* 4 tokens after the first in 2 s */
    }
    /* 429: Retry-After, 1 s without one, never more than the cap */
    CHECK_NEAR(loadgen_account(&r, &s, LOADGEN_OK, NULL, 429, 1.5, 0), 1.5, 0);
    CHECK_NEAR(loadgen_account(&r, &s, LOADGEN_OK, NULL, 429, 0, 0), 1.0, 0);
    CHECK_NEAR(loadgen_account(&r, &s, LOADGEN_OK, NULL, 429, 30, 0), LOADGEN_RETRY_CAP, 0);
    CHECK_EQ_INT(r.rejected, 3);
    /* cut at the end of the grace period */
    CHECK_NEAR(loadgen_account(&r, &s, LOADGEN_TIMED_OUT, "Timeout", 200, 0, 0), 0, 0);
    CHECK_EQ_INT(r.cut, 1);
    /* failures: the first reason is kept; each waits half a second */
    CHECK_NEAR(loadgen_account(&r, &s, LOADGEN_FAILED, "Couldn't connect", 0, 0, 0), 0.5, 0);
    CHECK_STR(r.first_error, "Couldn't connect");
    loadgen_account(&r, &s, LOADGEN_OK, NULL, 500, 0, 0);
    CHECK_STR(r.first_error, "Couldn't connect");
    r.first_error[0] = 0;
    loadgen_account(&r, &s, LOADGEN_OK, NULL, 500, 0, 0);
    CHECK_STR(r.first_error, "HTTP error or no [DONE]");
    loadgen_stream bad = good_stream();
    bad.done_seen = false;
    r.first_error[0] = 0;
    loadgen_account(&r, &bad, LOADGEN_OK, NULL, 200, 0, 0);
    CHECK_STR(r.first_error, "HTTP error or no [DONE]");
    bad = good_stream();
    bad.error_seen = true;
    snprintf(bad.error, sizeof bad.error, "engine failed");
    r.first_error[0] = 0;
    loadgen_account(&r, &bad, LOADGEN_OK, NULL, 200, 0, 0);
    CHECK_STR(r.first_error, "engine failed");
    CHECK_EQ_INT(r.errors, 5);
    CHECK_EQ_INT(r.completed, 1); /* none of those counted as completed */
    CHECK_EQ_INT(r.tokens, 5);
    loadgen_result_free(&r);
}

static void test_percentiles(void) {
    loadgen_samples s = {0};
    CHECK_NEAR(loadgen_percentile(&s, 50), 0, 0);
    CHECK_NEAR(loadgen_mean(&s), 0, 0);
    for (int i = 1; i <= 10; i++) loadgen_sample_add(&s, i);
    CHECK_NEAR(loadgen_percentile(&s, 50), 5, 0); /* nearest rank: the 5th of 10 */
    CHECK_NEAR(loadgen_percentile(&s, 99), 10, 0);
    CHECK_NEAR(loadgen_percentile(&s, 0), 1, 0);
    CHECK_NEAR(loadgen_mean(&s), 5.5, 1e-12);
    for (int i = 0; i < 1000; i++) loadgen_sample_add(&s, 0); /* grows */
    CHECK_EQ_INT(s.n, 1010);
    free(s.v);
}

static void test_runs(void) {
    loadgen_params p = loadgen_default_params();
    p.url = "http://10.0.0.1:8080";
    p.sessions = 2;
    p.duration = 0.3;
    p.model = "m";
    loadgen_result r;
    rl_err err = {0};
    CHECK(loadgen_run(&p, &r, &err) == -1 && err.code == RL_ERR_INPUT && strstr(err.msg, "loopback"));
    loadgen_result_free(&r);
    /* nothing listens on port 1: every request fails, each slot retries
     * after half a second, and the run ends after its duration */
    p.url = "http://127.0.0.1:1";
    double t0 = rl_now();
    CHECKF(loadgen_run(&p, &r, &err) == 0, "%s", err.msg);
    double took = rl_now() - t0;
    CHECK(r.errors >= 2 && r.completed == 0 && r.rejected == 0);
    CHECK(r.first_error[0] != 0);
    CHECK_STR(r.model, "m");
    CHECK_STR(r.base, "http://127.0.0.1:1");
    CHECKF(took >= 0.3 && took < 10, "took %.2f s", took);
    loadgen_result_free(&r);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(test_loopback);
    RUN(test_prompts);
    RUN(test_bodies);
    RUN(test_stream);
    RUN(test_chat);
    RUN(test_accounting);
    RUN(test_percentiles);
    RUN(test_runs);
    return test_report("test_loadgen");
}
