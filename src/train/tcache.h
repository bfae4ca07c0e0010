/*
 * tcache.h — the teacher cache: what a teacher model predicts at every
 * position of the training text, computed once through rackllm's engine
 * and kept in a file, so the student's epochs never run the teacher again
 * and a stopped job picks up where it stopped.
 *
 * Per position the file keeps the teacher's top-k logits (ids and values)
 * and the log-sum-exp of all its logits at the distillation temperature:
 * exactly the words the trainer's loss reads (TR_SOFT_WORDS, train.h).
 *
 * The file (little-endian):
 *
 *   header, 64 bytes
 *     0  "RLTEACH\0"         8  u32 version (1)     12 u32 vocabulary
 *    16  u64 teacher id     24  u64 hash of the tokens
 *    32  u32 seq_len        36  u32 k               40 f32 temperature
 *    44  u32 sequences      48  u64 0               56 u64 FNV-1a of bytes 0..55
 *   then records, one per sequence, in any order:
 *     0  u32 "TKCR"          4  u32 sequence index  8  f32 the teacher's NLL
 *                                                      summed over the sequence
 *    12  u32 check: FNV-1a (low 32 bits) of bytes 4..11 and the payload
 *    16  payload: seq_len positions of 1 + 2k words (lse/tau, k ids, k logits)
 *
 * Everything is checked on reading: the header against what this run
 * needs (a mismatch names the field), each record's check, every id
 * below the vocabulary and distinct within its position, every number
 * finite. A torn last record (a killed job) is cut off and recomputed.
 * Because records carry their sequence index, shards computed on
 * different servers (`shard` of `n_shards`: the sequences whose index
 * modulo n_shards is shard) merge by concatenating their records behind
 * one header; a sequence present twice keeps its first record.
 */
#ifndef RACKLLM_TCACHE_H
#define RACKLLM_TCACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/common.h"
#include "gguf/gguf.h"
#include "model/model.h"

#define TCACHE_HEADER_BYTES 64
#define TCACHE_RECORD_HEAD 16

typedef struct tcache_key {
    uint64_t teacher_id;   /* tcache_teacher_id */
    uint64_t tokens_hash;  /* corpus_hash */
    uint32_t n_vocab, seq_len, top_k, n_seqs;
    float temperature;
} tcache_key;

/* A teacher file's identity: its size, its metadata and tensor table, and
 * 64 samples of 4 KiB spread over its tensor data (FNV-1a). */
uint64_t tcache_teacher_id(const gguf_file *f);

/* The seq_len + 1 tokens of sequence i (inputs and their next tokens). */
typedef const int32_t *(*tcache_seq_fn)(void *ctx, int64_t i);

typedef struct tcache_build_params {
    int n_threads;         /* 0: all CPUs */
    int max_seqs;          /* sequences in the engine at once (default 16) */
    int shard, n_shards;   /* n_shards 0 or 1: every sequence */
    const volatile int *stop; /* set (e.g. by Ctrl-C): stop after the current step */
    bool progress;         /* a progress line on a terminal */
} tcache_build_params;

typedef struct tcache_stats {
    int64_t had, computed, missing; /* sequences found in the file, computed now, still missing */
    double seconds;                 /* computing */
} tcache_stats;

/* Computes the sequences `path` lacks (creating it if absent) with the
 * teacher's engine, appending a record per sequence. Returns 0 (the file
 * holds every sequence of this shard, or stop was set: st->missing > 0),
 * -1 with err on a mismatching or unreadable file or a write error. */
int tcache_build(const char *path, const model *teacher, const tcache_key *key, tcache_seq_fn seq, void *ctx,
                 const tcache_build_params *p, tcache_stats *st, rl_err *err);

typedef struct tcache tcache;

/* Opens a complete cache for reading (mapped), every record checked. */
tcache *tcache_open(const char *path, const tcache_key *key, rl_err *err);
void tcache_close(tcache *c);
/* seq_len positions of TR_SOFT_WORDS(k) words for sequence i. */
const uint32_t *tcache_soft(const tcache *c, int64_t i);
/* The teacher's next-token NLL summed over sequence i's positions. */
double tcache_nll(const tcache *c, int64_t i);

#endif
