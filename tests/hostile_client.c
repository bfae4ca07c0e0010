/*
 * hostile_client.c — clients that misbehave on purpose, for the server's
 * adversarial tests (tests/test_server_hostile.sh) and for
 * bench/hostile-load.sh. Not a test itself: it opens connections the way an
 * attacker would, from a chosen loopback source address, and reports what
 * the server did to them, as one line of key=value pairs.
 *
 *   hostile_client MODE --to HOST:PORT [--from ADDR] [--n N] [--every S]
 *                  [--for S] [--bytes N] [--body FILE]
 *
 *   slow-head   N connections send half a request head, then one byte of
 *               a header every S seconds
 *   slow-body   N connections send a whole head announcing a body of
 *               --bytes, then one byte of it every S seconds
 *   big-chunked N connections send a chunked body of 1 KiB chunks without
 *               end, one chunk every S seconds
 *   flood       N connections each send the request in --body (a POST to
 *               /v1/completions), read the answer, and again, for --for
 *               seconds; the answers are counted by status
 *   half-close  one connection sends the request in --body, shuts down
 *               its sending side, and prints the answer it then reads
 *
 * Everything stops by itself after --for seconds (default 20). For the
 * slow modes it reports how many connections the server closed within a
 * second (refused at accept), how many later (cut: `cut_min_s`/`cut_max_s`
 * say when) and how many were still open at the end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct opts {
    const char *mode, *to, *from, *body_file;
    int n;
    double every, duration;
    long bytes;
    char *body;
    size_t body_len;
} opts;

typedef struct conn {
    int fd;
    double opened, closed; /* closed < 0: open */
    double next_send;
    long sent;
    int status; /* flood: the answer's status, 0 before */
    char head[64];
    size_t head_len;
} conn;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void die(const char *what) {
    fprintf(stderr, "hostile_client: %s: %s\n", what, strerror(errno));
    exit(2);
}

static int parse_opts(int argc, char **argv, opts *o) {
    *o = (opts){.n = 1, .every = 1, .duration = 20, .bytes = 100000, .from = "127.0.0.1"};
    if (argc < 2) return -1;
    o->mode = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--to")) o->to = v;
        else if (!strcmp(k, "--from")) o->from = v;
        else if (!strcmp(k, "--n")) o->n = atoi(v);
        else if (!strcmp(k, "--every")) o->every = atof(v);
        else if (!strcmp(k, "--for")) o->duration = atof(v);
        else if (!strcmp(k, "--bytes")) o->bytes = atol(v);
        else if (!strcmp(k, "--body")) o->body_file = v;
        else return -1;
    }
    return o->to && o->n > 0 && o->n <= 4096 ? 0 : -1;
}

static void read_body(opts *o) {
    FILE *f = fopen(o->body_file, "rb");
    if (!f) die(o->body_file);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    o->body = malloc((size_t)n + 1);
    if (!o->body || fread(o->body, 1, (size_t)n, f) != (size_t)n) die("read --body");
    o->body_len = (size_t)n;
    fclose(f);
}

/* A connection from --from to --to; -1 if the connect itself fails. */
static int dial(const opts *o) {
    char host[64];
    const char *colon = strrchr(o->to, ':');
    if (!colon || colon - o->to >= (long)sizeof host) return -1;
    snprintf(host, sizeof host, "%.*s", (int)(colon - o->to), o->to);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    struct sockaddr_in from = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, host, &to.sin_addr) != 1 || inet_pton(AF_INET, o->from, &from.sin_addr) != 1) return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (bind(fd, (struct sockaddr *)&from, sizeof from) || connect(fd, (struct sockaddr *)&to, sizeof to)) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static bool send_all(int fd, const char *s, size_t n) {
    while (n > 0) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, 1000);
            continue;
        }
        if (k <= 0) return false;
        s += k;
        n -= (size_t)k;
    }
    return true;
}

/* What a slow connection sends first, and then a byte (or chunk) at a time. */
static void opening(const opts *o, char *out, size_t cap) {
    const char *m = o->mode;
    if (!strcmp(m, "slow-head"))
        snprintf(out, cap, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ");
    else if (!strcmp(m, "slow-body"))
        snprintf(out, cap,
                 "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 "Content-Length: %ld\r\n\r\n{\"prompt\":\"",
                 o->bytes);
    else
        snprintf(out, cap,
                 "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n");
}

static bool trickle(const opts *o, conn *c) {
    static char chunk[1024 + 16];
    if (!strcmp(o->mode, "big-chunked")) {
        size_t n = (size_t)snprintf(chunk, sizeof chunk, "400\r\n");
        memset(chunk + n, 'a', 1024);
        memcpy(chunk + n + 1024, "\r\n", 2);
        c->sent += 1024;
        return send_all(c->fd, chunk, n + 1026);
    }
    c->sent++;
    return send_all(c->fd, "a", 1);
}

/* Notes a connection the server closed (EOF or reset); drains what it sent. */
static void check_closed(conn *c, double t) {
    char buf[4096];
    for (;;) {
        ssize_t k = recv(c->fd, buf, sizeof buf, 0);
        if (k > 0) continue;
        if (k < 0 && (errno == EAGAIN || errno == EINTR)) return;
        c->closed = t;
        close(c->fd);
        c->fd = -1;
        return;
    }
}

static int run_slow(const opts *o) {
    conn *cs = calloc((size_t)o->n, sizeof *cs);
    double t0 = now(), end = t0 + o->duration;
    char first[256];
    opening(o, first, sizeof first);
    int failed = 0;
    for (int i = 0; i < o->n; i++) {
        cs[i] = (conn){.fd = dial(o), .opened = now(), .closed = -1, .next_send = now() + o->every};
        if (cs[i].fd < 0 || !send_all(cs[i].fd, first, strlen(first))) {
            if (cs[i].fd >= 0) close(cs[i].fd);
            cs[i].fd = -1, cs[i].closed = now(), failed++;
        }
    }
    struct pollfd *ps = calloc((size_t)o->n, sizeof *ps);
    for (double t = now(); t < end; t = now()) {
        int open = 0;
        for (int i = 0; i < o->n; i++) {
            ps[i] = (struct pollfd){.fd = cs[i].fd, .events = POLLIN | POLLRDHUP};
            open += cs[i].fd >= 0;
            if (cs[i].fd >= 0 && t >= cs[i].next_send) {
                if (!trickle(o, &cs[i])) check_closed(&cs[i], t);
                cs[i].next_send = t + o->every;
            }
        }
        if (!open) break;
        poll(ps, (nfds_t)o->n, o->every < 0.05 ? (int)(o->every * 1000) + 1 : 50);
        for (int i = 0; i < o->n; i++)
            if (cs[i].fd >= 0 && ps[i].revents) check_closed(&cs[i], now());
    }
    int refused = 0, cut = 0, still = 0;
    double cut_min = INFINITY, cut_max = 0;
    for (int i = 0; i < o->n; i++) {
        if (cs[i].fd >= 0) {
            still++;
            close(cs[i].fd);
        } else if (cs[i].closed - cs[i].opened < 1.0) {
            refused++;
        } else {
            cut++;
            cut_min = fmin(cut_min, cs[i].closed - t0);
            cut_max = fmax(cut_max, cs[i].closed - t0);
        }
    }
    printf("mode=%s n=%d refused=%d cut=%d open=%d connect_failed=%d cut_min_s=%.2f cut_max_s=%.2f\n", o->mode, o->n,
           refused, cut, still, failed, cut ? cut_min : 0, cut ? cut_max : 0);
    free(ps);
    free(cs);
    return 0;
}

/* A whole request for the flood and half-close modes. */
static char *request_text(const opts *o, size_t *len) {
    size_t cap = o->body_len + 256;
    char *s = malloc(cap);
    int n = snprintf(s, cap,
                     "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                     o->body_len);
    memcpy(s + n, o->body, o->body_len);
    *len = (size_t)n + o->body_len;
    return s;
}

/* Reads until the server closes (Connection: close); the status code. */
static int read_answer(int fd, FILE *echo, double deadline) {
    char buf[8192];
    int status = 0;
    bool first = true;
    while (now() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0) continue;
        ssize_t k = recv(fd, buf, sizeof buf, 0);
        if (k < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        if (k <= 0) break;
        if (first && k > 12 && !strncmp(buf, "HTTP/1.", 7)) status = atoi(buf + 9);
        first = false;
        if (echo) fwrite(buf, 1, (size_t)k, echo);
    }
    return status;
}

static int run_half_close(const opts *o) {
    size_t len;
    char *req = request_text(o, &len);
    int fd = dial(o);
    if (fd < 0 || !send_all(fd, req, len)) die("connect/send");
    shutdown(fd, SHUT_WR); /* half-close: still reading */
    int status = read_answer(fd, stdout, now() + o->duration);
    close(fd);
    free(req);
    fprintf(stderr, "hostile_client: half-close: status %d\n", status);
    return status == 200 ? 0 : 1;
}

static int run_flood(const opts *o) {
    size_t len;
    char *req = request_text(o, &len);
    double end = now() + o->duration;
    long by_class[6] = {0}, sent = 0;
    while (now() < end) { /* N at once, then the next N */
        int *fds = calloc((size_t)o->n, sizeof *fds);
        for (int i = 0; i < o->n; i++) {
            fds[i] = dial(o);
            if (fds[i] >= 0 && !send_all(fds[i], req, len)) close(fds[i]), fds[i] = -1;
            sent += fds[i] >= 0;
        }
        for (int i = 0; i < o->n; i++) {
            if (fds[i] < 0) {
                by_class[0]++;
                continue;
            }
            int status = read_answer(fds[i], NULL, end + 30);
            by_class[status >= 100 && status < 600 ? status / 100 : 0]++;
            close(fds[i]);
        }
        free(fds);
    }
    printf("mode=flood n=%d sent=%ld answered_2xx=%ld answered_4xx=%ld answered_5xx=%ld no_answer=%ld\n", o->n, sent,
           by_class[2], by_class[4], by_class[5], by_class[0] + by_class[1] + by_class[3]);
    free(req);
    return 0;
}

int main(int argc, char **argv) {
    opts o;
    if (parse_opts(argc, argv, &o)) {
        fprintf(stderr, "usage: hostile_client slow-head|slow-body|big-chunked|flood|half-close --to HOST:PORT "
                        "[--from ADDR] [--n N] [--every S] [--for S] [--bytes N] [--body FILE]\n");
        return 2;
    }
    if (!strcmp(o.mode, "flood") || !strcmp(o.mode, "half-close")) {
        if (!o.body_file) return fprintf(stderr, "hostile_client: %s needs --body\n", o.mode), 2;
        read_body(&o);
        int rc = !strcmp(o.mode, "flood") ? run_flood(&o) : run_half_close(&o);
        free(o.body);
        return rc;
    }
    if (strcmp(o.mode, "slow-head") && strcmp(o.mode, "slow-body") && strcmp(o.mode, "big-chunked"))
        return fprintf(stderr, "hostile_client: unknown mode %s\n", o.mode), 2;
    return run_slow(&o);
}
