/*
 * test_agent.c — what a server tells its load balancer: the agent-check
 * lines for given figures (exact bytes), free_sessions by admission's rule
 * (count and context) on a tiny synthetic model's scheduler, and the agent
 * answering over TCP, then saying "drain" once the scheduler drains.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serve/agent.h"
#include "serve/scheduler.h"
#include "test.h"
#include "tiny_shape.h"

static model *M;
static int32_t PROMPT[64];
static int N_PROMPT;

static void test_lines(void) {
    char line[128];
    sched_stats st = {.capacity = 4, .active = 1, .free_sessions = 3};
    agent_line(&st, line, sizeof line);
    CHECK_STR(line, "up ready 3% maxconn:4\n");
    st = (sched_stats){.capacity = 2, .active = 2, .free_sessions = 0}; /* full: keeps its place */
    agent_line(&st, line, sizeof line);
    CHECK_STR(line, "up ready 1% maxconn:2\n");
    st = (sched_stats){.capacity = 4, .active = 0, .free_sessions = 0}; /* full by context, idle */
    agent_line(&st, line, sizeof line);
    CHECK_STR(line, "up ready 1% maxconn:1\n");
    st = (sched_stats){.capacity = 4, .active = 2, .draining = true};
    agent_line(&st, line, sizeof line);
    CHECK_STR(line, "drain maxconn:2\n");
    st = (sched_stats){.capacity = 0};
    agent_line(&st, line, sizeof line);
    CHECK_STR(line, "drain maxconn:1\n");
    CHECK_EQ_INT((int)agent_line(&st, line, 6), 5); /* cut to the buffer, terminated */
    CHECK_STR(line, "drain");
}

static sched_params params(double ctx_cost) {
    sched_params p = sched_default_params();
    p.capacity = 4;
    p.queue_max = 0;
    p.n_threads = 1;
    p.prefill_chunk = 16;
    p.n_ctx = 256;
    p.floor_tps = 1;
    p.ctx_cost = ctx_cost;
    p.step_delay = 0.002; /* sessions run while the test looks */
    return p;
}

static sched_request request(void) {
    sched_request r = {.prompt = PROMPT, .n_prompt = N_PROMPT, .max_tokens = 0, .ignore_eos = true};
    r.sp = sampler_default_params();
    r.sp.temperature = 0;
    return r;
}

static int free_now(sched *s) {
    sched_stats st;
    sched_get_stats(s, &st);
    return st.free_sessions;
}

/* Capacity 4, but each session reserves the whole context (no max_tokens)
 * and a token of context costs 2 ms a step: two fit the floor's period
 * (test_scheduler's test_context), so free_sessions is 2, 1, then 0 while
 * the count alone would say 2 more. Context free: the count decides. */
static void test_free_sessions(void) {
    rl_err err = {0};
    sched_params p = params(2e-3);
    sched *s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    CHECK_EQ_INT(free_now(s), 4); /* nothing admitted yet: no reservation known */
    sched_request r = request();
    sched_session *a = NULL, *b = NULL, *c = NULL;
    CHECK_EQ_INT(sched_submit(s, &r, &a, &err), SCHED_RUN);
    CHECK_EQ_INT(free_now(s), 1);
    CHECK_EQ_INT(sched_submit(s, &r, &b, &err), SCHED_RUN);
    CHECK_EQ_INT(free_now(s), 0);
    CHECK_EQ_INT(sched_submit(s, &r, &c, &err), SCHED_REJECT_FULL); /* the figure was right */
    sched_release(s, a);
    sched_release(s, b);
    CHECK(sched_wait_idle(s, 30));
    CHECK_EQ_INT(free_now(s), 2);
    sched_drain(s);
    CHECK_EQ_INT(free_now(s), 0);
    sched_free(s);

    p = params(1e-12);
    s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    CHECK_EQ_INT(sched_submit(s, &r, &a, &err), SCHED_RUN);
    CHECK_EQ_INT(free_now(s), 3);
    sched_release(s, a);
    sched_free(s);
}

/* One agent check: connect, read to the end. */
static void check_once(int port, char *out, size_t cap) {
    out[0] = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < cap && (k = recv(fd, out + n, cap - 1 - n, 0)) > 0) n += (size_t)k;
    out[n] = 0;
    close(fd);
}

static void test_live(void) {
    rl_err err = {0};
    sched_params p = params(1e-12);
    sched *s = sched_new(M, &p, &err);
    CHECKF(s != NULL, "%s", err.msg);
    if (!s) return;
    agent *ag = agent_start(s, "127.0.0.1", 0, &err);
    CHECKF(ag != NULL, "%s", err.msg);
    if (ag) {
        char line[128];
        CHECK(agent_port(ag) > 0);
        check_once(agent_port(ag), line, sizeof line);
        CHECK_STR(line, "up ready 4% maxconn:4\n");
        sched_drain(s);
        check_once(agent_port(ag), line, sizeof line);
        CHECK_STR(line, "drain maxconn:1\n");
        agent_stop(ag);
    }
    CHECK(agent_start(s, "not-an-address", 0, &err) == NULL);
    CHECK(strstr(err.msg, "not-an-address") != NULL);
    sched_free(s);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    RUN(test_lines);
    rl_err err = {0};
    void *data = NULL;
    M = tiny_model("q8_0", 1, &data);
    CHECK(M != NULL);
    if (!M) return test_report("test_agent");
    const char *text = "Once upon a time, there was a little dog";
    N_PROMPT = tok_encode(M->tok, text, strlen(text), true, false, PROMPT, 64, &err);
    CHECK(N_PROMPT > 5 && N_PROMPT < 64);
    RUN(test_free_sessions);
    RUN(test_live);
    model_free(M);
    free(data);
    return test_report("test_agent");
}
