/*
 * student.h — a trained model's weights in and out of files:
 *
 *  - the GGUF a student is delivered as: the `llama` architecture, weight
 *    matrices in F32 or F16 (norm vectors in F32), the teacher's tokenizer
 *    and chat template (every tokenizer.* key copied), a few
 *    rackllm.distill.* keys saying how it was made. rackllm, `rackllm
 *    quantize` and llama.cpp read it like any converted model;
 *  - checkpoints of a training run: a GGUF too (so `rackllm info` reads
 *    one), holding the weights under their own names, AdamW's moments as
 *    adam_m.NAME and adam_v.NAME, the step, the seed, the run's settings
 *    as one line (a resume with other settings is refused, naming the
 *    first that differs) and the loss curve so far;
 *  - a student's first weights taken from its teacher: the embeddings,
 *    the output and a chosen subset of the teacher's layers, dequantized.
 *
 * Every file is written to NAME.tmp and renamed: a failed write (a full
 * disk) leaves no partial file under the name.
 */
#ifndef RACKLLM_STUDENT_H
#define RACKLLM_STUDENT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/common.h"
#include "gguf/gguf.h"
#include "model/model.h"
#include "train.h"

/* One point of a training run's loss curve. */
typedef struct curve_point {
    int32_t step;      /* steps done */
    float loss;        /* the objective on the last batch */
    float ce, kl;      /* its parts: next-token cross-entropy, KL to the teacher */
    float held;        /* held-out next-token loss (nats), NaN when not measured at this step */
    float lr, grad_norm;
    double seconds;    /* training time so far */
} curve_point;

typedef struct student_export {
    const gguf_file *teacher; /* tokenizer.* keys come from it */
    const char *name;         /* general.name */
    bool f16;                 /* matrices in F16 (else F32) */
    int32_t steps;
    uint64_t seed, tokens;    /* tokens trained on */
    float alpha, temperature;
} student_export;

int student_write(const char *path, const tr_layout *L, const float *w, const student_export *x, rl_err *err);

typedef struct student_ckpt {
    int32_t step;        /* steps done */
    uint64_t seed;
    const char *config;  /* the run's settings, one line (written; compared on reading) */
    curve_point *curve;  /* written from; read into a new allocation (free it) */
    int n_curve;
    double seconds;      /* training time so far */
} student_ckpt;

int student_ckpt_write(const char *path, trainer *t, const student_ckpt *c, rl_err *err);
/* Loads weights and moments into t (same layout) and fills c, after
 * checking c->config against the file's. */
int student_ckpt_read(const char *path, trainer *t, student_ckpt *c, rl_err *err);

/* Copies the teacher's embeddings, output norm, output matrix (or its
 * embeddings, for a tied student) and layers `layers[0..n)` into w, laid
 * out by L, whose shape must be the teacher's with n layers. */
int student_from_teacher(const model *teacher, const int *layers, int n, const tr_layout *L, float *w, rl_err *err);

#endif
