/*
 * cmd_distill.c — `rackllm distill --teacher T.gguf --data DIR|FILE
 * --student-shape SHAPE -o S.gguf`: a small student trained in C on a
 * corpus, against a teacher's predictions (see src/train/distill.h). Ctrl-C
 * stops at the end of the step and writes a checkpoint; --resume goes on
 * from it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "train/distill.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: rackllm distill --teacher T.gguf --data DIR|FILE (--student-shape S | --init-from-teacher L) -o S.gguf\n"
            "\n"
            "Trains a small student model on UTF-8 text against a teacher's top-k predictions\n"
            "(knowledge distillation), and writes it as a llama GGUF with the teacher's tokenizer.\n"
            "\n"
            "the student:\n"
            "      --student-shape S      a catalog id, or dim=64,layers=2,heads=8,kv=4,ff=172[,head_dim=8][,tied|untied]\n"
            "      --init-from-teacher L  start from the teacher's layers L (e.g. 0,2,4) and its embeddings\n"
            "      --f16                  write the student's matrices as F16 (default F32)\n"
            "the text:\n"
            "      --holdout F            fraction of documents held out (default 0.05)\n"
            "      --eval FILE            held-out text from FILE instead\n"
            "training:\n"
            "      --steps N              batches (default 1000)\n"
            "      --batch N              sequences per batch (default 16)\n"
            "      --seq-len N            tokens per sequence (default 128)\n"
            "      --lr X                 peak learning rate (default 0.001), --warmup N steps (default 20),\n"
            "      --min-lr-frac X        cosine floor as a fraction of it (default 0.1)\n"
            "      --weight-decay X       AdamW weight decay of the matrices (default 0.1), --clip X (default 1)\n"
            "      --alpha X              weight of the KL to the teacher, 0 = plain training (default 0.5)\n"
            "      --temperature X        distillation temperature (default 2), --top-k K teacher logits kept (default 32)\n"
            "      --seed N               weights and batch order (default 1)\n"
            "  -t, --threads N            threads (default: all CPUs)\n"
            "bookkeeping:\n"
            "      --eval-every N         held-out loss every N steps (default 100), --eval-seqs N of them (default 64)\n"
            "      --checkpoint-every N   steps (default 500); --checkpoint FILE (default OUT.ckpt)\n"
            "      --resume               go on from the checkpoint (same flags)\n"
            "      --cache FILE           the teacher's predictions (default OUT.teacher; reused when it matches)\n"
            "      --teacher-seqs N       sequences the teacher runs at once (default 32)\n"
            "      --teacher-shard I/N    only the teacher's pass over every N-th sequence from the I-th,\n"
            "                             into --cache, then stop: one shard per server; merge them with\n"
            "                             cp shard0 all; tail -c +65 shardK >> all (docs/distill.md)\n"
            "      --json FILE            settings, figures and the whole loss curve\n"
            "      --svg FILE             the loss curve as a chart\n"
            "  -h, --help                 this help\n");
}

static volatile int stop_flag;

static void on_interrupt(int sig) {
    (void)sig;
    stop_flag = 1;
    signal(SIGINT, SIG_DFL); /* a second Ctrl-C ends at once */
}

typedef struct cli {
    distill_params p;
    const char *init, *json, *svg, *shard;
    int layers[1024];
} cli;

static int parse(int argc, char **argv, cli *c, int *first, rl_err *err) {
    distill_params *p = &c->p;
    tr_config *t = &p->train;
    const cli_flag flags[] = {
        FLAG_STR("teacher", 0, &p->teacher_path), FLAG_STR("data", 0, &p->data_path),
        FLAG_STR("output", 'o', &p->out_path), FLAG_STR("student-shape", 0, &p->shape),
        FLAG_STR("init-from-teacher", 0, &c->init), FLAG_BOOL("f16", 0, &p->f16),
        FLAG_NUM("holdout", 0, &p->holdout, 0, 0.9), FLAG_STR("eval", 0, &p->eval_path),
        FLAG_INT("steps", 0, &p->steps, 1, 100000000), FLAG_INT("batch", 0, &t->n_seq, 1, 65536),
        FLAG_INT("seq-len", 0, &t->seq_len, 2, 1 << 20), FLAG_FLOAT("lr", 0, &t->lr, 0, 10),
        FLAG_INT("warmup", 0, &t->warmup, 0, 100000000), FLAG_FLOAT("min-lr-frac", 0, &t->min_lr_frac, 0, 1),
        FLAG_FLOAT("weight-decay", 0, &t->weight_decay, 0, 10), FLAG_FLOAT("clip", 0, &t->clip, 0, 1e6),
        FLAG_FLOAT("alpha", 0, &t->alpha, 0, 1), FLAG_FLOAT("temperature", 0, &t->temperature, 0.05, 100),
        FLAG_INT("top-k", 0, &t->top_k, 1, 4096), FLAG_U64("seed", 0, &p->seed, 0, 0),
        FLAG_INT("threads", 't', &t->n_threads, 1, 1024), FLAG_INT("eval-every", 0, &p->eval_every, 0, 100000000),
        FLAG_INT("eval-seqs", 0, &p->eval_seqs, 1, 100000000),
        FLAG_INT("checkpoint-every", 0, &p->ckpt_every, 0, 100000000), FLAG_STR("checkpoint", 0, &p->ckpt_path),
        FLAG_BOOL("resume", 0, &p->resume), FLAG_STR("cache", 0, &p->cache_path),
        FLAG_INT("teacher-seqs", 0, &p->teacher_seqs, 1, 4096), FLAG_STR("teacher-shard", 0, &c->shard),
        FLAG_STR("json", 0, &c->json),
        FLAG_STR("svg", 0, &c->svg),
    };
    int rc = cli_parse(argc, argv, flags, (int)RL_ARRAY_LEN(flags), usage, first, err);
    if (rc) return rc;
    if (*first != argc) return rl_fail(err, RL_ERR_INPUT, "unexpected argument '%s'", argv[*first]);
    if (!p->teacher_path || !p->data_path || !p->out_path)
        return rl_fail(err, RL_ERR_INPUT, "--teacher, --data and -o are required (see rackllm distill --help)");
    if (c->shard && distill_parse_shard(c->shard, &p->shard, &p->n_shards, err)) return -1;
    if (c->init) {
        p->n_init_layers = distill_parse_layers(c->init, c->layers, (int)RL_ARRAY_LEN(c->layers), err);
        if (p->n_init_layers < 0) return -1;
        p->init_layers = c->layers;
    }
    return 0;
}

int cmd_distill(int argc, char **argv) {
    cli c = {.p = distill_default_params()};
    rl_err err = {0};
    int first, rc = parse(argc, argv, &c, &first, &err);
    if (rc) return rc == CLI_HELP ? 0 : cli_fail(&err);
    c.p.stop = &stop_flag;
    c.p.progress = true;
    c.p.log = stderr;
    signal(SIGINT, on_interrupt);
    distill_result r;
    rc = distill_run(&c.p, &r, &err);
    signal(SIGINT, SIG_DFL);
    if (rc == 0) rc = distill_save_reports(c.json, c.svg, &c.p, &r, &err);
    if (rc) {
        distill_result_free(&r);
        return cli_fail(&err);
    }
    if (r.interrupted)
        fprintf(stderr, "rackllm distill: interrupted at step %d; run the same command with --resume to go on\n",
                r.steps_done);
    else if (c.p.n_shards > 1)
        fprintf(stderr, "rackllm distill: teacher shard %d/%d in %s (%lld sequences computed)\n", c.p.shard,
                c.p.n_shards, r.cache_path, (long long)r.cache_computed);
    else
        fprintf(stderr, "rackllm distill: %d steps, %.0f tok/s; held-out %.4f nats/token (teacher %.4f)\n",
                r.steps_done, r.tok_per_s, r.student_held, r.teacher_held);
    distill_result_free(&r);
    return r.interrupted ? 130 : 0;
}
