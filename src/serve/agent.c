/*
 * agent.c — HAProxy's agent check, answered (see agent.h): one thread
 * polls the listening socket and a stop pipe; each connection gets the
 * line for the scheduler's figures at that moment, then the agent shuts
 * its side, reads whatever HAProxy sent (agent-send) for at most
 * AGENT_LINGER_MS in all, so that closing does not reset the connection
 * before the line is read, and closes. Checks come a few times a second per balancer:
 * one thread answering them in turn is enough.
 */
#include "agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define AGENT_LINGER_MS 200

struct agent {
    sched *s;
    int fd, port;
    int stop[2]; /* a pipe: written once to stop the thread */
    pthread_t thread;
};

size_t agent_line(const sched_stats *st, char *buf, size_t cap) {
    int n;
    if (st->draining || st->capacity <= 0)
        n = snprintf(buf, cap, "drain maxconn:%d\n", RL_MAX(1, st->active));
    else
        n = snprintf(buf, cap, "up ready %d%% maxconn:%d\n", RL_MAX(1, st->free_sessions),
                     RL_MAX(1, st->active + st->free_sessions));
    return n < 0 ? 0 : RL_MIN((size_t)n, cap ? cap - 1 : 0);
}

static void answer(agent *a, int c) {
    sched_stats st;
    sched_get_stats(a->s, &st);
    char line[128];
    size_t n = agent_line(&st, line, sizeof line);
    (void)!send(c, line, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    shutdown(c, SHUT_WR);
    /* at most AGENT_LINGER_MS in all, however the peer trickles */
    char sink[256];
    struct pollfd pfd = {.fd = c, .events = POLLIN};
    double end = rl_now() + AGENT_LINGER_MS / 1000.0;
    int left;
    while ((left = (int)((end - rl_now()) * 1000)) > 0 && poll(&pfd, 1, left) > 0 &&
           recv(c, sink, sizeof sink, MSG_DONTWAIT) > 0) {
    }
    close(c);
}

static void *agent_main(void *arg) {
    agent *a = arg;
    struct pollfd pfd[2] = {{.fd = a->fd, .events = POLLIN}, {.fd = a->stop[0], .events = POLLIN}};
    for (;;) {
        if (poll(pfd, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (pfd[1].revents) break;
        if (!(pfd[0].revents & POLLIN)) continue;
        int c = accept(a->fd, NULL, NULL);
        if (c >= 0) answer(a, c);
    }
    return NULL;
}

/* A listening socket on host:port, or -1 with err. */
static int listen_on(const char *host, int port, int *bound, rl_err *err) {
    struct sockaddr_storage ss = {0};
    socklen_t len;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        len = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        len = sizeof *a6;
    } else {
        return rl_fail(err, RL_ERR_INPUT, "--host '%s' is not an IP address (or localhost)", host);
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 64) != 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        return rl_fail(err, RL_ERR_INPUT, "agent: cannot listen on %s port %d: %s", host, port, strerror(e));
    }
    len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *bound = ntohs(ss.ss_family == AF_INET ? a4->sin_port : a6->sin6_port);
    return fd;
}

agent *agent_start(sched *s, const char *host, int port, rl_err *err) {
    agent *a = rl_calloc(1, sizeof *a, err);
    if (!a) return NULL;
    a->s = s;
    a->stop[0] = a->stop[1] = -1;
    a->fd = listen_on(host ? host : "127.0.0.1", port, &a->port, err);
    if (a->fd < 0) {
        free(a);
        return NULL;
    }
    if (pipe2(a->stop, O_CLOEXEC) != 0 || pthread_create(&a->thread, NULL, agent_main, a) != 0) {
        rl_fail(err, RL_ERR_INTERNAL, "agent: cannot start its thread");
        if (a->stop[0] >= 0) close(a->stop[0]), close(a->stop[1]);
        close(a->fd);
        free(a);
        return NULL;
    }
    return a;
}

int agent_port(const agent *a) { return a->port; }

void agent_stop(agent *a) {
    if (!a) return;
    (void)!write(a->stop[1], "x", 1);
    pthread_join(a->thread, NULL);
    close(a->stop[0]);
    close(a->stop[1]);
    close(a->fd);
    free(a);
}
