/*
 * pages.c — the embedded web pages and their headers, and /plan's charts
 * drawn by `rackllm plan` in a child process (see pages.h).
 */
#include "pages.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* scripts/embed.cmake's table of web/ (built into rackllm_server). */
const unsigned char *rl_web_find(const char *name, size_t *size);

/* Only this server's own files; fetch() only to it; no frames, no forms,
 * no plugins. Images: its own, and the charts the plan page makes into
 * blob: URLs (fetched with the API key). */
static const char CSP[] = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
                          "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

#define CHART_MAX (4 << 20) /* bytes of SVG read at most */

struct pages {
    char *model_path, *bench_json;
    char floor[32], ctx[32];
    pthread_mutex_t lock; /* guards the charts and the drawing's state */
    char *matrix, *self;
    rl_err failed;        /* why drawing failed (code 0: it did not) */
    bool drawing, drawn;
    pthread_t drawer;
};

pages *pages_new(const char *model_path, const char *bench_json, double floor_tps, int ctx, rl_err *err) {
    pages *pg = rl_calloc(1, sizeof *pg, err);
    if (!pg) return NULL;
    snprintf(pg->floor, sizeof pg->floor, "%.17g", floor_tps);
    snprintf(pg->ctx, sizeof pg->ctx, "%d", ctx);
    if ((model_path && !(pg->model_path = strdup(model_path))) || (bench_json && !(pg->bench_json = strdup(bench_json)))) {
        free(pg->model_path);
        free(pg);
        rl_fail(err, RL_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&pg->lock, NULL);
    return pg;
}

void pages_free(pages *pg) {
    if (!pg) return;
    if (pg->drawing || pg->drawn) pthread_join(pg->drawer, NULL);
    pthread_mutex_destroy(&pg->lock);
    free(pg->model_path);
    free(pg->bench_json);
    free(pg->matrix);
    free(pg->self);
    free(pg);
}

/* ---- the embedded files ---- */

/* The embedded file a URL names: the pages by their paths, assets under
 * /web/. NULL: not a page. */
static const char *file_of(const char *url) {
    if (!strcmp(url, "/") || !strcmp(url, "/index.html")) return "index.html";
    if (!strcmp(url, "/dashboard")) return "dashboard.html";
    if (!strcmp(url, "/plan")) return "plan.html";
    if (!strcmp(url, "/favicon.ico")) return "favicon.svg";
    if (!strncmp(url, "/web/", 5) && url[5] && !strchr(url + 5, '/')) return url + 5;
    return NULL;
}

bool pages_has(const char *url) { return file_of(url) != NULL; }

static const char *content_type(const char *name) {
    const char *dot = strrchr(name, '.');
    if (!dot) return "application/octet-stream";
    if (!strcmp(dot, ".html")) return "text/html; charset=utf-8";
    if (!strcmp(dot, ".css")) return "text/css; charset=utf-8";
    if (!strcmp(dot, ".js")) return "text/javascript; charset=utf-8";
    if (!strcmp(dot, ".svg")) return "image/svg+xml";
    return "application/octet-stream";
}

struct MHD_Response *pages_response(const char *url, int *status) {
    const char *name = file_of(url);
    size_t size = 0;
    const unsigned char *data = name ? rl_web_find(name, &size) : NULL;
    static const char missing[] = "no such page\n";
    struct MHD_Response *resp =
        data ? MHD_create_response_from_buffer(size, (void *)data, MHD_RESPMEM_PERSISTENT)
             : MHD_create_response_from_buffer(sizeof missing - 1, (void *)missing, MHD_RESPMEM_PERSISTENT);
    if (!resp) return NULL;
    *status = data ? 200 : 404;
    MHD_add_response_header(resp, "Content-Type", data ? content_type(name) : "text/plain; charset=utf-8");
    MHD_add_response_header(resp, "Content-Security-Policy", CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    return resp;
}

/* ---- /plan's charts ---- */

bool pages_is_chart(const char *url) {
    return !strcmp(url, "/v1/plan/matrix.svg") || !strcmp(url, "/v1/plan/this.svg");
}

/* Reads a whole file of at most CHART_MAX bytes (malloc'ed, NUL-ended). */
static char *read_all(const char *path, rl_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return rl_fail(err, RL_ERR_INTERNAL, "plan wrote no chart: %s", strerror(errno)), NULL;
    char *buf = malloc(CHART_MAX + 1);
    size_t n = buf ? fread(buf, 1, CHART_MAX + 1, f) : 0;
    fclose(f);
    if (!buf || n == 0 || n > CHART_MAX) {
        free(buf);
        return rl_fail(err, RL_ERR_INTERNAL, "plan's chart is empty, too large or out of memory"), NULL;
    }
    buf[n] = 0;
    return buf;
}

/* The child's error line (its stderr, "rackllm plan: " dropped) into err. */
static void child_failed(const char *err_path, int status, rl_err *err) {
    char line[240] = "";
    FILE *f = fopen(err_path, "r");
    if (f) {
        if (!fgets(line, sizeof line, f)) line[0] = 0;
        fclose(f);
    }
    line[strcspn(line, "\n")] = 0;
    const char *why = strncmp(line, "rackllm plan: ", 14) == 0 ? line + 14 : line;
    rl_fail(err, RL_ERR_INTERNAL, "`rackllm plan` failed (exit status %d)%s%s", status, *why ? ": " : "", why);
}

/* Runs `<this executable> plan ARGS... --svg TMP` (stdout dropped, stderr
 * kept for the error, the stop signals unblocked in it) and returns the
 * SVG it wrote. */
static char *draw(char *const *args, int n_args, rl_err *err) {
    char exe[4096], tmp[] = "/tmp/rackllm-plan-XXXXXX", tmp_err[] = "/tmp/rackllm-plan-err-XXXXXX";
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k <= 0) return rl_fail(err, RL_ERR_INTERNAL, "cannot find this executable: %s", strerror(errno)), NULL;
    exe[k] = 0;
    int fd = mkstemp(tmp), fd_err = fd >= 0 ? mkstemp(tmp_err) : -1;
    if (fd >= 0) close(fd);
    if (fd_err < 0) {
        if (fd >= 0) unlink(tmp);
        return rl_fail(err, RL_ERR_INTERNAL, "cannot make a temporary file: %s", strerror(errno)), NULL;
    }
    close(fd_err);
    char *argv[16] = {exe, "plan"};
    int a = 2;
    for (int i = 0; i < n_args && a < 13; i++) argv[a++] = args[i]; /* 10 at most */
    argv[a++] = "--svg";
    argv[a++] = tmp;
    argv[a] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, tmp_err, O_WRONLY | O_TRUNC, 0);
    posix_spawnattr_t at;
    posix_spawnattr_init(&at);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int rc = posix_spawn(&pid, exe, &fa, &at, argv, environ), status = 0;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    char *svg = NULL;
    if (rc != 0) rl_fail(err, RL_ERR_INTERNAL, "cannot run `rackllm plan`: %s", strerror(rc));
    else if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        child_failed(tmp_err, WIFEXITED(status) ? WEXITSTATUS(status) : -1, err);
    else svg = read_all(tmp, err);
    unlink(tmp);
    unlink(tmp_err);
    return svg;
}

/* The drawing thread: both charts, one after the other. */
static void *draw_both(void *arg) {
    pages *pg = arg;
    rl_err err = {0};
    char *m_args[] = {"--matrix", "--floor", pg->floor, "--ctx", pg->ctx, "--calibrate", pg->bench_json};
    char *s_args[] = {"--model", pg->model_path, "--hardware", "this", "--floor", pg->floor, "--ctx", pg->ctx,
                      "--calibrate", pg->bench_json};
    int calibrated = pg->bench_json ? 2 : 0;
    char *self = pg->model_path ? draw(s_args, 8 + calibrated, &err) : NULL;
    if (!pg->model_path) rl_fail(&err, RL_ERR_INPUT, "no model file to plan for");
    char *matrix = err.code ? NULL : draw(m_args, 5 + calibrated, &err);
    pthread_mutex_lock(&pg->lock);
    pg->self = self;
    pg->matrix = matrix;
    pg->failed = err;
    pg->drawing = false;
    pg->drawn = true;
    pthread_mutex_unlock(&pg->lock);
    return NULL;
}

char *pages_chart(pages *pg, const char *url, bool *ready, rl_err *err) {
    bool matrix = !strcmp(url, "/v1/plan/matrix.svg");
    char *copy = NULL;
    pthread_mutex_lock(&pg->lock);
    *ready = pg->drawn;
    if (!pg->drawn && !pg->drawing) {
        pg->drawing = pthread_create(&pg->drawer, NULL, draw_both, pg) == 0;
        if (!pg->drawing) {
            *ready = true;
            rl_fail(err, RL_ERR_INTERNAL, "cannot start a thread to draw the charts");
        }
    } else if (pg->drawn && pg->failed.code) {
        *err = pg->failed;
    } else if (pg->drawn) {
        copy = strdup(matrix ? pg->matrix : pg->self);
        if (!copy) rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    }
    pthread_mutex_unlock(&pg->lock);
    return copy;
}
