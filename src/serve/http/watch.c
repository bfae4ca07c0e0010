/*
 * watch.c — requests that wait without a thread, and the watcher.
 *
 * Parking. A request that has to wait suspends its connection
 * (libmicrohttpd then neither reads it nor times it out) and goes on the
 * server's parked list; whoever has news for it wakes it, which resumes
 * the connection, and libmicrohttpd calls its handler or content reader
 * again on one of its threads. News that comes between a request's last
 * look and its parking is not lost: waking a request that is not parked
 * marks it, and its next watch_park declines so that it looks again.
 *
 * The watcher, one thread, every WATCH_SLICE seconds or at once when told:
 *  - cuts connections past their absolute deadlines (a request head within
 *    --header-timeout of the connection's start or of the previous answer;
 *    a body within --body-timeout of its head), however slowly their bytes
 *    trickle: it shuts the socket down, and libmicrohttpd closes it;
 *  - lets the scheduler expire queued requests whose wait ran out (their
 *    news wakes them);
 *  - wakes a parked stream that has been silent for KEEPALIVE_SECONDS (it
 *    writes an SSE comment);
 *  - polls the parked connections for a client that hung up (reset, or
 *    both directions closed), and wakes those. A client that only
 *    half-closes (shuts down its sending side after its request) is still
 *    there to read its answer and is served, unless --abort-on-close says
 *    that the clients never do that (then it counts as gone at once).
 *
 * A connection's record lives from libmicrohttpd's "started" notification
 * to its "closed" one, which comes before the socket is closed: the
 * watcher shuts sockets down only under sv->lock, which that notification
 * takes too, so it never touches a socket number that was reused.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http_internal.h"

/* ---- parking ---- */

bool watch_park(request *r) {
    server *sv = r->sv;
    pthread_mutex_lock(&sv->lock);
    bool park = !r->wake_pending && !atomic_load(&sv->stopping);
    r->wake_pending = false;
    if (park) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        r->fd = ci ? ci->connect_fd : -1;
        r->parked = true;
        r->park_prev = NULL;
        r->park_next = sv->parked;
        if (sv->parked) sv->parked->park_prev = r;
        sv->parked = r;
        sv->n_parked++;
        MHD_suspend_connection(r->conn);
    }
    pthread_mutex_unlock(&sv->lock);
    return park;
}

static void wake_locked(request *r) {
    server *sv = r->sv;
    if (!r->parked) {
        r->wake_pending = true;
        return;
    }
    r->parked = false;
    if (r->park_prev) r->park_prev->park_next = r->park_next;
    else sv->parked = r->park_next;
    if (r->park_next) r->park_next->park_prev = r->park_prev;
    r->park_prev = r->park_next = NULL;
    sv->n_parked--;
    MHD_resume_connection(r->conn);
}

void watch_wake(request *r) {
    pthread_mutex_lock(&r->sv->lock);
    wake_locked(r);
    pthread_mutex_unlock(&r->sv->lock);
}

void watch_wake_all(server *sv) {
    pthread_mutex_lock(&sv->lock);
    while (sv->parked) wake_locked(sv->parked);
    pthread_mutex_unlock(&sv->lock);
}

void watch_news(void *ctx, sched_news what) {
    request *r = ctx;
    pthread_mutex_lock(&r->sv->lock);
    if (r->wants & (int)what) wake_locked(r);
    pthread_mutex_unlock(&r->sv->lock);
}

/* ---- connection records ---- */

void watch_connection(server *sv, struct MHD_Connection *c, void **socket_context, bool started) {
    conn_rec *cr = *socket_context;
    pthread_mutex_lock(&sv->lock);
    if (started && !cr) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        cr = calloc(1, sizeof *cr); /* out of memory: the connection just has no deadlines */
        if (cr) {
            *cr = (conn_rec){.fd = ci ? ci->connect_fd : -1, .stage = STAGE_HEADERS, .since = rl_now(),
                             .next = sv->conns};
            if (sv->conns) sv->conns->prev = cr;
            sv->conns = cr;
            *socket_context = cr;
            if (++sv->n_conns > sv->n_conns_peak) sv->n_conns_peak = sv->n_conns;
        }
    } else if (!started && cr) {
        if (cr->prev) cr->prev->next = cr->next;
        else sv->conns = cr->next;
        if (cr->next) cr->next->prev = cr->prev;
        free(cr);
        sv->n_conns--;
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&sv->lock);
}

void watch_stage(server *sv, conn_rec *cr, conn_stage stage) {
    if (!cr) return;
    pthread_mutex_lock(&sv->lock);
    if (cr->stage != stage) {
        cr->stage = stage;
        cr->since = rl_now();
    }
    pthread_mutex_unlock(&sv->lock);
}

/* ---- the watcher ---- */

/* Shuts down the connections past their deadline (sv->lock held). */
static void cut_late_locked(server *sv, double now) {
    for (conn_rec *cr = sv->conns; cr; cr = cr->next) {
        if (cr->cut || cr->fd < 0) continue;
        double limit = cr->stage == STAGE_HEADERS ? sv->p.header_timeout
                       : cr->stage == STAGE_BODY  ? sv->p.body_timeout
                                                  : 0;
        if (limit <= 0 || now - cr->since < limit) continue;
        shutdown(cr->fd, SHUT_RDWR); /* libmicrohttpd sees the end and closes it */
        cr->cut = true;
        metrics_cut(&sv->metrics, cr->stage == STAGE_HEADERS);
    }
}

typedef struct watch_set {
    struct pollfd *fds;
    request **reqs;
    size_t n, cap;
} watch_set;

/* The parked requests to poll for a hang-up, after waking the streams
 * that owe their client a keep-alive (sv->lock held). */
static void gather_locked(server *sv, watch_set *w, double now) {
    w->n = 1; /* fds[0]: the watcher's eventfd */
    for (request *r = sv->parked, *next; r; r = next) {
        next = r->park_next;
        if (r->state == RQ_STREAM && now - r->last_write >= KEEPALIVE_SECONDS) {
            wake_locked(r);
            continue;
        }
        if (r->fd < 0) continue;
        if (w->n == w->cap) {
            size_t cap = w->cap * 2;
            struct pollfd *f = realloc(w->fds, cap * sizeof *f);
            if (f) w->fds = f;
            request **q = realloc(w->reqs, cap * sizeof *q);
            if (q) w->reqs = q;
            if (!f || !q) break; /* out of memory: poll the ones so far */
            w->cap = cap;
        }
        w->fds[w->n] = (struct pollfd){.fd = r->fd, .events = sv->p.abort_on_close ? POLLRDHUP : 0};
        w->reqs[w->n++] = r;
    }
}

/* Wakes the parked requests whose client is gone (sv->lock held). A
 * request found in prep stays parked: its prep job sees `gone`. */
static void wake_gone_locked(server *sv, watch_set *w) {
    for (size_t i = 1; i < w->n; i++) {
        if (!(w->fds[i].revents & (POLLHUP | POLLERR | POLLNVAL | POLLRDHUP))) continue;
        for (request *r = sv->parked; r; r = r->park_next) {
            if (r != w->reqs[i] || r->fd != w->fds[i].fd) continue;
            r->gone = true;
            if (r->state != RQ_PREP) wake_locked(r);
            break;
        }
    }
}

static void *watch_main(void *arg) {
    server *sv = arg;
    watch_set w = {.cap = 64};
    w.fds = malloc(w.cap * sizeof *w.fds);
    w.reqs = malloc(w.cap * sizeof *w.reqs);
    for (;;) {
        pthread_mutex_lock(&sv->lock);
        if (sv->watch_stop || !w.fds || !w.reqs) {
            pthread_mutex_unlock(&sv->lock);
            break;
        }
        double now = rl_now();
        cut_late_locked(sv, now);
        gather_locked(sv, &w, now);
        pthread_mutex_unlock(&sv->lock);
        sched_expire_queue(sv->s);
        w.fds[0] = (struct pollfd){.fd = sv->watch_fd, .events = POLLIN};
        int n = poll(w.fds, (nfds_t)w.n, (int)(WATCH_SLICE * 1000));
        if (n > 0 && (w.fds[0].revents & POLLIN)) {
            uint64_t v;
            ssize_t got = read(sv->watch_fd, &v, sizeof v);
            (void)got;
        }
        pthread_mutex_lock(&sv->lock);
        if (n > 0) wake_gone_locked(sv, &w);
        pthread_mutex_unlock(&sv->lock);
    }
    free(w.fds);
    free(w.reqs);
    return NULL;
}

int watch_start(server *sv, rl_err *err) {
    sv->watch_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (sv->watch_fd < 0) return rl_fail(err, RL_ERR_INTERNAL, "eventfd: %s", strerror(errno));
    if (pthread_create(&sv->watcher, NULL, watch_main, sv) != 0) {
        close(sv->watch_fd);
        sv->watch_fd = -1;
        return rl_fail(err, RL_ERR_INTERNAL, "cannot start the HTTP watcher thread");
    }
    sv->watching = true;
    return 0;
}

void watch_stop(server *sv) {
    if (!sv->watching) return;
    pthread_mutex_lock(&sv->lock);
    sv->watch_stop = true;
    pthread_mutex_unlock(&sv->lock);
    uint64_t one = 1;
    ssize_t put = write(sv->watch_fd, &one, sizeof one);
    (void)put;
    pthread_join(sv->watcher, NULL);
    close(sv->watch_fd);
    sv->watching = false;
}
