/*
 * distill.h — a whole distillation run: from a teacher GGUF and a corpus to
 * a student GGUF (`rackllm distill`).
 *
 *   1. the teacher loads; the corpus is read, split (held-out documents)
 *      and tokenized with the teacher's tokenizer, cut into sequences;
 *   2. the teacher runs once over every training and held-out sequence
 *      through the engine, its top-k per position kept in the teacher
 *      cache (tcache.h; resumable; skipped when alpha is 0);
 *   3. the student (a shape of its own, or the teacher's with a subset of
 *      its layers and their weights) trains for `steps` batches: sequences
 *      drawn without replacement, a fresh seeded permutation each epoch;
 *      every eval_every steps its held-out loss is measured; every
 *      ckpt_every steps, and when `stop` is set, a checkpoint is written;
 *   4. the student is written as GGUF (student.h).
 *
 * The same seed gives the same student, whatever the thread count
 * (train.h), and a run resumed from a checkpoint ends with the same bits as
 * one that never stopped: the batch of step s is a function of (seed, s).
 *
 * Held-out loss here: the mean next-token NLL over the held-out sequences
 * (every position of sequences of seq_len tokens, as trained); `rackllm
 * eval` scores a text the way llama-perplexity does instead (eval.h).
 */
#ifndef RACKLLM_DISTILL_H
#define RACKLLM_DISTILL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/common.h"
#include "model/shape.h"
#include "student.h"
#include "train.h"

typedef struct distill_params {
    const char *teacher_path, *data_path, *eval_path, *out_path;
    const char *shape;       /* catalog id or "dim=64,layers=2,heads=8,kv=4,ff=172[,head_dim=8][,tied|untied]" */
    const int *init_layers;  /* start from these teacher layers (NULL: random init) */
    int n_init_layers;
    double holdout;          /* fraction of documents held out (no eval_path) */
    tr_config train;         /* n_seq, seq_len, lr, schedule, alpha, temperature, top_k, threads */
    int steps;
    uint64_t seed;
    int eval_every;          /* steps between held-out measurements (0: only at the end) */
    int eval_seqs;           /* held-out sequences measured (at most) */
    int ckpt_every;          /* steps between checkpoints (0: only at the end or on stop) */
    const char *ckpt_path;   /* NULL: OUT.ckpt */
    bool resume;             /* start from ckpt_path */
    const char *cache_path;  /* NULL: OUT.teacher */
    int teacher_seqs;        /* sequences in the teacher's engine at once */
    int shard, n_shards;     /* n_shards > 1: only the teacher's pass over the sequences whose
                              * index modulo n_shards is shard, into cache_path; no training */
    bool f16;                /* the student's matrices in F16 */
    const volatile int *stop;
    bool progress;           /* the progress line (on a terminal) */
    FILE *log;               /* one line per phase and per held-out measurement; NULL: quiet */
} distill_params;

distill_params distill_default_params(void);

typedef struct distill_result {
    rl_shape student;
    uint64_t student_params, teacher_params;
    int64_t train_seqs, held_seqs, train_tokens;
    int64_t cache_had, cache_computed;   /* teacher sequences found in the cache / computed */
    double teacher_seconds;              /* the teacher pass */
    double teacher_held;                 /* the teacher's held-out NLL per token (NaN: not measured) */
    double student_held;                 /* the student's, at the end (NaN: no held-out text) */
    curve_point *curve;                  /* every step */
    int n_curve;
    int steps_done, start_step;
    double train_seconds;                /* in training steps only */
    double tok_per_s;                    /* tokens trained / train_seconds (this process) */
    double flops_per_token;
    bool interrupted;                    /* stopped: a checkpoint was written, no student */
    char ckpt_path[1024], cache_path[1024];
} distill_result;

/* Runs the job. 0: done or interrupted (r->interrupted); -1 with err. */
int distill_run(const distill_params *p, distill_result *r, rl_err *err);
void distill_result_free(distill_result *r);

/* The student's shape from `spec` (see distill_params.shape) and the
 * teacher's shape (vocabulary, rope, epsilon, context come from it). A
 * catalog shape whose vocabulary is not the teacher's is refused: the
 * student speaks its teacher's tokenizer. */
int distill_parse_shape(const char *spec, const rl_shape *teacher, rl_shape *out, rl_err *err);

/* "I/N" -> *shard = I, *n_shards = N (0 <= I < N); 0 or -1 with err. */
int distill_parse_shard(const char *spec, int *shard, int *n_shards, rl_err *err);

/* "0,2,4" -> layers (at most max); returns the count or -1 with err. */
int distill_parse_layers(const char *spec, int *layers, int max, rl_err *err);

/* The run as JSON (params, result, the whole curve) and the curve as SVG. */
void distill_write_json(FILE *out, const distill_params *p, const distill_result *r);
void distill_write_svg(FILE *out, const distill_result *r, const char *title);
/* Both into files (either path may be NULL). */
int distill_save_reports(const char *json, const char *svg, const distill_params *p, const distill_result *r,
                         rl_err *err);

#endif
