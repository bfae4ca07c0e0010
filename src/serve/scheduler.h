/*
 * scheduler.h — many sessions on one model, each kept at or above a floor
 * of tokens per second: partitions, admission, queue, continuous batching.
 *
 * The scheduler owns K partitions. A partition is one engine (its own
 * threads, pinned to its own cores when K > 1; all engines share the
 * model's one read-only mapping) and one thread that drives it: before each
 * engine_step it starts the sessions admitted to it and drops the ones whose
 * client went away; after the step it turns each session's token into text
 * (whole UTF-8, stop strings held back) and hands that to the session's
 * reader; a session that ends (end of generation, a stop string, max_tokens,
 * a full context, cancellation) leaves the engine in that same step, and its
 * slot goes to the head of the queue at once. Prompts are prefilled in
 * chunks that ride along with the decode tokens of the running sessions
 * (the engine puts decoders first, then the oldest prompt): each step takes
 * as many prompt tokens as the running sessions' lead over the floor pays
 * for (sched_pace_budget), at most `prefill_chunk` (a pause of two floor
 * periods at most), so new prompts go in at the speed the floor leaves.
 *
 * Admission. Capacity is the largest number of sessions that all stay at or
 * above the floor: measured at start (a short calibration: N sessions per
 * partition decoding together, N doubled then bisected) or given, and capped
 * by max_sessions. Context counts too: every step reads each session's
 * whole KV cache, so a partition's step grows with the context its sessions
 * hold (sched_cost: the short-context step time plus a measured cost per
 * token of context). Each request reserves the context it may reach (its
 * prompt plus max_tokens, or the whole context without max_tokens), and a
 * partition takes one more session only if its step with all reservations
 * still keeps the floor (a partition with none running always takes one).
 * Memory counts as well: a session allocates its KV cache (and buffers)
 * for the context it reserves, and all sessions together stay within a
 * budget (mem_limit, or MEM_SHARE of the memory available at start, when
 * the weights are loaded and the engines open), so that long sessions at a
 * large context cannot run the machine out of memory; a request that needs
 * more than the whole budget is refused at submit.
 * A request is admitted when a partition has room in all three, waits in a
 * bounded FIFO queue otherwise (for at most queue_timeout seconds), and is
 * rejected beyond that (the server's 429).
 * Every partition measures its sessions' tok/s live (over their last
 * SCHED_RATE_WINDOW tokens); when some fall below the floor it lowers its
 * own capacity to one less than it runs (new requests queue while the
 * running ones finish), and raises it again one step at a time, up to the
 * calibrated value, after recover_seconds at or above the floor (or idle).
 *
 * Threads and locks. HTTP threads call sched_submit / sched_wait_admission /
 * sched_read / sched_release; partition threads do everything else. A
 * reader need not wait in a thread: a request may name a notify function,
 * which the scheduler calls when its session has news (left the queue,
 * text, its end), so an event-driven server resumes the connection then. Shared
 * state goes through exactly these locks (taken in this order, never the
 * reverse):
 *  - sched.lock: the admission queue, each partition's inbox and counts and
 *    capacity, the admission counters, each session's phase. Its condvar
 *    `cond` (broadcast) wakes requests waiting for admission and the
 *    start-up handshake; each partition's condvar `wake` wakes its idle
 *    thread when a session is assigned to it.
 *  - session.lock: the session's output queue (text not yet read, token
 *    counts, the end); its condvar wakes the one reader.
 *  - partition.stats_lock: that partition's token counters and histograms
 *    (taken per token by its thread, rarely by /metrics).
 * A session's `cancelled` flag is an atomic the reader sets and the
 * partition thread polls before each step.
 *
 * Per-token work allocates nothing: the text buffers are sized at submit
 * (and only grow if a reader falls far behind).
 *
 * The code, one job per file: scheduler.c (partitions, threads, start-up
 * and shutdown), sched_calibrate.c, sched_admit.c, sched_capacity.c,
 * sched_loop.c, sched_session.c, sched_stats.c (sched_internal.h says
 * what each holds).
 */
#ifndef RACKLLM_SCHEDULER_H
#define RACKLLM_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/common.h"
#include "engine/prefix_cache.h"
#include "engine/sampler.h"
#include "model/model.h"

#define SCHED_RATE_WINDOW 16        /* tokens a session's tok/s is measured over */
#define SCHED_RECOVER_SECONDS 3.0   /* default: at or above the floor this long, capacity + 1 */
#define SCHED_CALIBRATE_LIMIT 64    /* most sessions calibration tries without max_sessions */
#define SCHED_PREFIX_AUTO UINT64_MAX /* prefix_cache_bytes: sized from the memory budget */

typedef struct sched_params {
    double floor_tps;     /* the per-session promise (default 10) */
    int capacity;         /* sessions at the floor; 0: calibrate at start */
    int max_sessions;     /* caps capacity (0: no cap but SCHED_CALIBRATE_LIMIT for calibration) */
    int partitions;       /* engines (default 1) */
    int n_threads;        /* compute threads of all partitions (0: every available CPU) */
    int n_ctx;            /* context per session (0: the engine's default) */
    int queue_max;        /* requests that may wait (0: none; -1: default 16) */
    double queue_timeout; /* seconds a request may wait in the queue (<= 0: 30) */
    int prefill_chunk;    /* prompt tokens per step (0: measured at start) */
    double step_delay;    /* seconds to pause after each step (tests: a slower machine) */
    double recover_seconds; /* healthy this long before capacity + 1 (<= 0: SCHED_RECOVER_SECONDS) */
    double ctx_cost;      /* seconds a step spends per token of context (0: measured at start) */
    uint64_t mem_limit;   /* bytes all sessions may allocate (0: MEM_SHARE of what is available at start) */
    double ttft_limit;    /* refuse at once a request whose first token is expected
                           * later than this many seconds (sched_expected_ttft) because of
                           * others (alone, any prompt goes in); 0: never */
    uint64_t prefix_cache_bytes; /* finished sessions' KV kept for prompts that begin
                                  * the same way (0: no prefix cache; prefix_cache.h;
                                  * SCHED_PREFIX_AUTO: a tenth of the sessions' memory,
                                  * at most 1 GiB); taken from the sessions' memory */
    FILE *log;            /* start-up messages (calibration); NULL: none */
} sched_params;

sched_params sched_default_params(void);

typedef struct sched sched;
typedef struct sched_session sched_session;

/* News of a session for its reader (sched_request.notify). */
typedef enum sched_news {
    SCHED_NEWS_ADMISSION = 1, /* it left the queue: admitted, or rejected */
    SCHED_NEWS_TEXT = 2,      /* text to read */
    SCHED_NEWS_END = 4,       /* it ended */
} sched_news;

/* What a session should generate. Everything is copied at submit. */
typedef struct sched_request {
    const int32_t *prompt;
    int n_prompt;
    sampler_params sp;
    int max_tokens;            /* <= 0: until the context is full */
    const char *const *stops;  /* stop strings (none of their bytes are output) */
    int n_stops;
    bool ignore_eos;           /* keep going past end-of-generation tokens */
    bool logprobs;             /* each generated token's log-probability (sched_read_logprobs) */
    int top_logprobs;          /* with logprobs: the most likely tokens too, 0..SAMPLER_MAX_TOP_LOGPROBS */
    /* Called with news of the session (NULL: none), from the scheduler's
     * threads, under its locks (sched.lock, then session.lock): it may only
     * wake the reader, never call the scheduler. Never called again once
     * sched_release has returned. */
    void (*notify)(void *ctx, sched_news what);
    void *notify_ctx;
    double *expected_ttft;     /* on SCHED_REJECT_TTFT, the expected seconds that were too
                                * many go here (NULL: nowhere) */
} sched_request;

typedef enum sched_admit {
    SCHED_RUN = 0,          /* admitted: running (or already finished) */
    SCHED_QUEUED,           /* waiting for a slot */
    SCHED_REJECT_FULL,      /* capacity and queue are full */
    SCHED_REJECT_TIMEOUT,   /* waited queue_timeout without a slot */
    SCHED_REJECT_DRAINING,  /* shutting down */
    SCHED_REJECT_TTFT,      /* its first token is expected later than ttft_limit */
} sched_admit;

typedef enum sched_finish {
    SCHED_FINISH_NONE = 0,  /* still generating */
    SCHED_FINISH_STOP,      /* end-of-generation token or a stop string */
    SCHED_FINISH_LENGTH,    /* max_tokens or the context */
    SCHED_FINISH_CANCELLED, /* the client went away */
    SCHED_FINISH_ABORTED,   /* the drain time ran out */
    SCHED_FINISH_ERROR,     /* the engine failed (message in sched_progress.error) */
} sched_finish;

/* Opens the partitions' engines, calibrates (unless capacity is given),
 * and starts the partition threads. */
sched *sched_new(const model *m, const sched_params *p, rl_err *err);
/* Stops the threads and frees everything; sessions still running end as
 * aborted. Call after every reader has released its sessions. */
void sched_free(sched *s);

/* Submits a request. Returns its admission (SCHED_RUN, SCHED_QUEUED or a
 * rejection) and, unless rejected, the session in *out, which the caller
 * must sched_release. -1 with RL_ERR_INPUT if the request cannot run at all
 * (the prompt leaves no room in the context, a bad sampler parameter or
 * stop string). */
int sched_submit(sched *s, const sched_request *r, sched_session **out, rl_err *err);

/* Waits up to max_wait seconds for a queued session to be admitted.
 * Returns SCHED_RUN, SCHED_QUEUED (still waiting: call again), or
 * SCHED_REJECT_TIMEOUT / SCHED_REJECT_DRAINING (removed from the queue). */
sched_admit sched_wait_admission(sched *s, sched_session *ss, double max_wait);

/* What a reader knows about its session. */
typedef struct sched_progress {
    bool done;              /* no more text will come */
    sched_finish finish;
    int n_prompt, n_generated;
    int n_cached;           /* of n_prompt, taken from the prefix cache (known once running) */
    double ttft;            /* seconds from submit to the first token (0: none yet) */
    const char *error;      /* for SCHED_FINISH_ERROR */
} sched_progress;

/* Copies up to cap bytes of text not yet read into buf and returns how
 * many, cutting between UTF-8 characters, never inside one; if there is
 * none and the session is not done, first waits up to max_wait seconds for
 * some. *pr says where the session stands (done is set
 * only once all its text has been read). */
size_t sched_read(sched_session *ss, char *buf, size_t cap, double max_wait, sched_progress *pr);

/* With sched_request.logprobs: copies up to cap log-probability records
 * not yet read (one per generated token, end-of-generation tokens aside,
 * in order) into out and returns how many. A token's record is there
 * before its text is (call it after sched_read to have every record of
 * the text read so far). */
int sched_read_logprobs(sched_session *ss, sampler_logprob *out, int cap);

/* The client went away: the session leaves the queue now, or the engine
 * before the next step. */
void sched_cancel(sched *s, sched_session *ss);
/* The reader is done with the session (cancels it if it is not done). */
void sched_release(sched *s, sched_session *ss);

/* Rejects the queued requests whose wait ran out (queue_timeout) now; a
 * server whose readers do not wait in sched_wait_admission calls it every
 * fraction of a second. */
void sched_expire_queue(sched *s);

/* Shutdown, in two steps: stop admitting (queued requests are rejected as
 * draining), then, if running sessions do not finish in time, abort them. */
void sched_drain(sched *s);
void sched_abort_all(sched *s);
/* Waits up to max_wait seconds until no session runs; true if none does. */
bool sched_wait_idle(sched *s, double max_wait);

/* Seconds a rejected client should wait before retrying (>= 1). */
int sched_retry_after(sched *s);

/* Seconds until the first token of a request of n_prompt tokens submitted
 * now, by the rule ttft_limit applies: the wait for a slot if it would
 * queue, then its prompt behind the prompts not yet through, at the rate
 * prompts have been going in (sched_expected_ttft). */
double sched_expected_wait(sched *s, int n_prompt);

/* What keeps a request (n_prompt tokens, max_tokens as in sched_request)
 * out right now: the memory the admitted sessions hold, the context they
 * reserve, or every session taken (of the partitions' reasons, the first
 * of these); SCHED_LIMIT_NONE if a partition has room. */
typedef enum sched_limit {
    SCHED_LIMIT_NONE = 0,
    SCHED_LIMIT_SESSIONS,
    SCHED_LIMIT_CONTEXT,
    SCHED_LIMIT_MEMORY,
} sched_limit;
sched_limit sched_blocking_limit(sched *s, int n_prompt, int max_tokens);

/* Keeps `bytes` of the memory budget for the rest of the process (the
 * HTTP server's request buffers), once, before any request. */
void sched_reserve_memory(sched *s, uint64_t bytes);

/* ---- figures for /health and /metrics ---- */

#define SCHED_HIST_BUCKETS 12 /* finite upper bounds; +Inf is implicit */

typedef struct sched_hist {
    const double *bounds;               /* SCHED_HIST_BUCKETS upper bounds, seconds */
    uint64_t counts[SCHED_HIST_BUCKETS + 1]; /* per bucket (not cumulative); last: +Inf */
    uint64_t count;
    double sum;
} sched_hist;

typedef struct sched_stats {
    double floor_tps;
    int partitions, prefill_chunk, n_ctx;
    int capacity_base;      /* calibrated or given (after max_sessions) */
    double ctx_reserved;    /* tokens of context the admitted sessions may reach */
    double ctx_cost;        /* seconds a step spends per token of context */
    uint64_t mem_available; /* bytes available to the process at start (0: unknown) */
    uint64_t mem_budget;    /* bytes all sessions may allocate (0: no limit) */
    uint64_t mem_reserved;  /* what the admitted sessions may allocate */
    uint64_t mem_session;   /* what one session at the full context may allocate */
    uint64_t weights_bytes; /* the model's tensors */
    int capacity_memory;    /* sessions at the full context the budget holds */
    int capacity;           /* now: lowered while sessions fall below the floor */
    int active;             /* sessions admitted and not finished */
    int free_sessions;      /* more it would admit now: admission's rule (count and context), each
                             * new session reserving the mean context admitted ones did, less the
                             * queue; 0 while draining (what /health and the rack's agent say) */
    int active_peak;        /* most sessions ever in the engines at once */
    int queued, queue_max;
    bool draining;
    double tps_min, tps_mean; /* measured over sessions with a full window (0: none) */
    int tps_sessions;         /* how many sessions those figures cover */
    uint64_t admitted, rejected_full, rejected_timeout, rejected_draining, rejected_ttft;
    double ttft_limit;        /* as given (0: none) */
    int prefill_backlog;      /* prompt tokens admitted and not yet through */
    double prefill_rate;      /* prompt tokens/s going in while prompts wait (measured) */
    double expected_ttft;     /* sched_expected_wait for a prompt of the mean admitted length */
    uint64_t finished[SCHED_FINISH_ERROR + 1];
    uint64_t prompt_tokens, completion_tokens;
    uint64_t capacity_lowered; /* times a partition lowered its capacity */
    sched_hist ttft, itl;
    bool prefix_on;           /* a prefix cache is kept; its figures: */
    prefix_cache_stats prefix;
} sched_stats;

void sched_get_stats(sched *s, sched_stats *out);

/* One running session, as its partition saw it after its last step (the
 * dashboard's per-session speeds). */
typedef struct sched_session_info {
    int partition;
    int n_prompt, n_generated;
    bool prefilling;   /* its prompt is still going in */
    double tps;        /* over its last SCHED_RATE_WINDOW tokens, or since its
                          first with fewer (0: fewer than 2 tokens) */
    double ttft;       /* seconds from submit to its first token (0: none yet) */
    double age;        /* seconds since submit */
} sched_session_info;

/* The running sessions, at most max of them into out; returns how many run
 * (which may be more than max). */
int sched_get_sessions(sched *s, sched_session_info *out, int max);

/* How capacity was set: measured at start-up (true) or given. */
bool sched_capacity_measured(const sched *s);

/* Partition i's compute threads (returned) and, at most max of them into
 * cpus, the CPU each is pinned to (-1: not pinned, as with one partition).
 * The split is machine_partition_cpus's, the bench's too. */
int sched_partition_cpus(const sched *s, int i, int *cpus, int max);

/* ---- the capacity controller (one per partition), exposed for tests ---- */

typedef struct sched_ctl {
    int base;               /* the most it may be */
    int cap;                /* the capacity now, 1..base */
    double floor_tps;
    double recover_seconds;
    double healthy_since;   /* < 0: not healthy now */
    uint64_t lowered;       /* times it lowered cap */
} sched_ctl;

void sched_ctl_init(sched_ctl *c, int base, double floor_tps, double recover_seconds);
/* One observation at time `now`: `running` sessions, `measured` of them
 * with a full window, the slowest of those at `min_tps`. Below the floor:
 * cap drops to running - 1 (at least 1). At or above it (or nothing
 * measured) for recover_seconds: cap + 1, up to base. */
void sched_ctl_update(sched_ctl *c, double now, int running, int measured, double min_tps);

/* ---- the cost of context (one model per scheduler), exposed for tests ---- */

#define SCHED_COST_POINTS 24

/* A partition's step time as its sessions and their contexts grow: t(n)
 * at short contexts (the calibration's trials, each session holding
 * base_ctx tokens; with the capacity given, trials of one session and of
 * the capacity), plus per_token seconds for each token of context its
 * sessions hold beyond that (attention reads every session's whole KV
 * cache each step). */
typedef struct sched_cost {
    int n_points;
    int sessions[SCHED_COST_POINTS]; /* increasing */
    double step[SCHED_COST_POINTS];  /* seconds per step with that many sessions */
    double base_ctx;                 /* tokens of context a session held while t(n) was measured */
    double per_token;                /* seconds per step per token of context */
    double period;                   /* the longest step that keeps the promise */
} sched_cost;

/* Adds (or replaces) the point for n sessions. */
void sched_cost_add(sched_cost *c, int n, double step_seconds);
/* Step seconds for n sessions holding ctx tokens of context in all: t(n)
 * interpolated linearly between points (extrapolated from the last two
 * beyond them; the first point's below it; 0 with none), plus per_token x
 * what ctx exceeds n x base_ctx (never less than t(n)). */
double sched_cost_step(const sched_cost *c, int n, double ctx);
/* The scheduler's own: step times t(n) by sessions and the cost of
 * context that admission counts with (set at start-up). */
void sched_get_cost(sched *s, sched_cost *out);
/* Whether that step keeps the period. Always, with no period set, and when
 * t(n) alone does not keep it: the floor is out of reach at any context
 * (calibration warned at start), and the count of sessions decides. */
bool sched_cost_fits(const sched_cost *c, int n, double ctx);

/* ---- prefill pacing (one decision per step), exposed for tests ---- */

typedef struct sched_pace {
    double floor_tps;
    double margin;        /* keep sessions at floor / margin's schedule (0.95) */
    double t_decode;      /* the decoders' own step time, estimated (s) */
    double per_token;     /* cost of one prompt token in a step (s) */
    int chunk;            /* most prompt tokens a step may take */
    double starve;        /* s without prompt progress before 1 token is forced */
} sched_pace;

/* The expected time to first token of a request of n_prompt tokens: if
 * it would queue at position queue_pos (1 = next; 0: a slot is free), the
 * wait for a slot (sessions run mean_run seconds once admitted, and the
 * `running` ones end over that time: queue_pos x mean_run / running) and
 * its own prompt at `rate` tokens/s — but no sooner than every prompt
 * token ahead of it (backlog: the admitted ones' not yet through and the
 * queued ones') and its own have gone in at that rate. */
double sched_expected_ttft(int queue_pos, double mean_run, int running, double backlog, int n_prompt, double rate);

/* Prompt tokens the next step may take at time `now`, given the decoding
 * sessions (n_gen[i] tokens so far, the first at t_first[i]), whether a
 * prompt is waiting, and when a prompt token last went in. A session with
 * n tokens keeps the floor as its reader measures it ((n - 1) tokens since
 * the first) if the next step ends by t_first + n x margin / floor; that,
 * less now and t_decode, is its slack. The smallest slack in tokens, capped
 * at chunk, is the budget; -1 (no limit) with no decoder or nothing
 * waiting; at least 1 once a prompt has waited `starve` seconds. */
int sched_pace_budget(const sched_pace *pc, double now, const double *t_first, const int *n_gen, int n,
                      bool waiting, double t_prefilled);

#endif
