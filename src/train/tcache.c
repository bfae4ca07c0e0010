/*
 * tcache.c — the teacher cache (see tcache.h): its file checked and
 * indexed, and filled by running the teacher through the engine, many
 * sequences at once, one position per sequence per step.
 */
#include "tcache.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/progress.h"
#include "corpus.h"
#include "engine/engine.h"
#include "train.h"

#define MAGIC "RLTEACH"
#define VERSION 1
#define RECORD_MAGIC 0x52434b54u /* "TKCR" */

struct tcache {
    uint8_t *map;
    size_t size;
    tcache_key key;
    uint64_t *at; /* per sequence: offset of its record */
};

/* ---- the header ---- */

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void header_bytes(const tcache_key *k, uint8_t h[TCACHE_HEADER_BYTES]) {
    memset(h, 0, TCACHE_HEADER_BYTES);
    memcpy(h, MAGIC, 8);
    put32(h + 8, VERSION);
    put32(h + 12, k->n_vocab);
    put64(h + 16, k->teacher_id);
    put64(h + 24, k->tokens_hash);
    put32(h + 32, k->seq_len);
    put32(h + 36, k->top_k);
    memcpy(h + 40, &k->temperature, 4);
    put32(h + 44, k->n_seqs);
    put64(h + 56, corpus_fnv(CORPUS_FNV_START, h, 56));
}

/* The file's header against the one this run needs: which field differs. */
static int check_header(const char *path, const uint8_t *h, size_t size, const tcache_key *k, rl_err *err) {
    if (size < TCACHE_HEADER_BYTES || memcmp(h, MAGIC, 8) != 0)
        return rl_fail(err, RL_ERR_INPUT, "%s: not a rackllm teacher cache (no RLTEACH header)", path);
    if (rl_load_u64(h + 56) != corpus_fnv(CORPUS_FNV_START, h, 56) || rl_load_u32(h + 8) != VERSION)
        return rl_fail(err, RL_ERR_INPUT, "%s: damaged header or unknown version %u", path, rl_load_u32(h + 8));
    uint8_t want[TCACHE_HEADER_BYTES];
    header_bytes(k, want);
    static const struct { int at, len; const char *what; } fields[] = {
        {12, 4, "the vocabulary"}, {16, 8, "the teacher model"}, {24, 8, "the training text (its tokens)"},
        {32, 4, "the sequence length"}, {36, 4, "top-k"}, {40, 4, "the temperature"},
        {44, 4, "the number of sequences"}};
    for (size_t i = 0; i < RL_ARRAY_LEN(fields); i++)
        if (memcmp(h + fields[i].at, want + fields[i].at, (size_t)fields[i].len) != 0)
            return rl_fail(err, RL_ERR_INPUT, "%s was made for another run: %s differs (remove it, or name another "
                           "cache file)", path, fields[i].what);
    return 0;
}

static size_t payload_words(const tcache_key *k) { return (size_t)k->seq_len * TR_SOFT_WORDS(k->top_k); }
static size_t record_bytes(const tcache_key *k) { return TCACHE_RECORD_HEAD + payload_words(k) * 4; }

static uint32_t record_check(const uint8_t *rec, size_t payload_bytes) {
    uint64_t h = corpus_fnv(CORPUS_FNV_START, rec + 4, 8);
    return (uint32_t)corpus_fnv(h, rec + TCACHE_RECORD_HEAD, payload_bytes);
}

/* Walks the records after the header: at[i] = offset of sequence i's
 * first good record; *end = the end of the last good one (a torn or
 * damaged record ends the walk). */
static void scan(const uint8_t *map, size_t size, const tcache_key *k, uint64_t *at, size_t *end) {
    size_t rb = record_bytes(k), o = TCACHE_HEADER_BYTES;
    while (o + rb <= size) {
        const uint8_t *r = map + o;
        uint32_t i = rl_load_u32(r + 4);
        if (rl_load_u32(r) != RECORD_MAGIC || i >= k->n_seqs || rl_load_u32(r + 12) != record_check(r, rb - 16)) break;
        if (!at[i]) at[i] = o;
        o += rb;
    }
    *end = o;
}

/* ---- the teacher's identity ---- */

uint64_t tcache_teacher_id(const gguf_file *f) {
    uint64_t h = corpus_fnv(CORPUS_FNV_START, &f->size, sizeof f->size);
    h = corpus_fnv(h, f->map, (size_t)RL_MIN(f->header_size, f->size));
    uint64_t data = f->size - RL_MIN(f->data_offset, f->size);
    for (int i = 0; i < 64 && data > 0; i++) {
        uint64_t at = f->data_offset + data / 64 * (uint64_t)i;
        h = corpus_fnv(h, f->map + at, (size_t)RL_MIN(4096, f->size - at));
    }
    return h;
}

/* ---- one position's words ---- */

/* The k largest of n logits, largest first (ties: the lower id). */
static void top_k(const float *z, int64_t n, int k, uint32_t *ids, float *vals) {
    int have = 0;
    for (int64_t j = 0; j < n; j++) {
        if (have == k && !(z[j] > vals[k - 1])) continue;
        int at = have < k ? have++ : k - 1;
        while (at > 0 && z[j] > vals[at - 1]) {
            ids[at] = ids[at - 1];
            vals[at] = vals[at - 1];
            at--;
        }
        ids[at] = (uint32_t)j;
        vals[at] = z[j];
    }
}

/* Writes a position's words; returns the teacher's NLL of `target`. */
static double position_words(const float *z, int64_t n, int k, float tau, int32_t target, uint32_t *w) {
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) mx = fmaxf(mx, z[j]);
    double s1 = 0, st = 0;
    for (int64_t j = 0; j < n; j++) {
        s1 += exp((double)z[j] - mx);
        st += exp(((double)z[j] - mx) / tau);
    }
    float lse_t = (float)(mx / tau + log(st));
    memcpy(w, &lse_t, 4);
    top_k(z, n, k, w + 1, (float *)(void *)(w + 1 + k));
    return mx + log(s1) - z[target];
}

/* Every number of a record's payload sane (the trainer trusts them). */
static int check_payload(const char *path, const tcache_key *k, const uint32_t *w, uint8_t *mark, rl_err *err) {
    size_t words = TR_SOFT_WORDS(k->top_k);
    for (uint32_t p = 0; p < k->seq_len; p++, w += words) {
        float lse;
        memcpy(&lse, w, 4);
        bool ok = isfinite(lse);
        for (uint32_t i = 0; ok && i < k->top_k; i++) {
            float z;
            memcpy(&z, w + 1 + k->top_k + i, 4);
            ok = w[1 + i] < k->n_vocab && !mark[w[1 + i]] && isfinite(z) && z / k->temperature <= lse + 1e-3f;
            if (ok) mark[w[1 + i]] = 1;
        }
        for (uint32_t i = 0; i < k->top_k; i++)
            if (w[1 + i] < k->n_vocab) mark[w[1 + i]] = 0;
        if (!ok) return rl_fail(err, RL_ERR_INPUT, "%s: a record has impossible teacher numbers", path);
    }
    return 0;
}

/* ---- building ---- */

typedef struct slot {
    engine_seq *s;
    int64_t seq;
    int pos;
    double nll;
    uint8_t *rec;
} slot;

typedef struct builder {
    const char *path;
    int fd;
    const tcache_key *k;
    tcache_seq_fn seq;
    void *ctx;
    const tcache_build_params *p;
    uint64_t *at;
    int64_t next;
    engine *e;
    tcache_stats *st;
} builder;

static int write_all(builder *B, const uint8_t *b, size_t n, rl_err *err) {
    while (n > 0) {
        ssize_t w = write(B->fd, b, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return rl_fail(err, RL_ERR_INTERNAL, "writing %s: %s", B->path, w < 0 ? strerror(errno) : "short write");
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Opens (or creates) the file, keeps its good records, cuts a torn tail. */
static int open_for_append(builder *B, rl_err *err) {
    B->fd = open(B->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (B->fd < 0) return rl_fail(err, RL_ERR_INPUT, "%s: cannot open: %s", B->path, strerror(errno));
    struct stat st;
    if (fstat(B->fd, &st) != 0) return rl_fail(err, RL_ERR_INTERNAL, "%s: %s", B->path, strerror(errno));
    if (st.st_size == 0) {
        uint8_t h[TCACHE_HEADER_BYTES];
        header_bytes(B->k, h);
        return write_all(B, h, sizeof h, err);
    }
    uint8_t *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, B->fd, 0);
    if (map == MAP_FAILED) return rl_fail(err, RL_ERR_INTERNAL, "%s: cannot map: %s", B->path, strerror(errno));
    size_t end = 0;
    int rc = check_header(B->path, map, (size_t)st.st_size, B->k, err);
    if (!rc) scan(map, (size_t)st.st_size, B->k, B->at, &end);
    munmap(map, (size_t)st.st_size);
    if (rc) return -1;
    if ((end < (size_t)st.st_size && ftruncate(B->fd, (off_t)end) != 0) || lseek(B->fd, (off_t)end, SEEK_SET) < 0)
        return rl_fail(err, RL_ERR_INTERNAL, "%s: cannot cut the torn record: %s", B->path, strerror(errno));
    return 0;
}

static bool wanted(const builder *B, int64_t i) {
    int n = B->p->n_shards > 1 ? B->p->n_shards : 1;
    return !B->at[i] && i % n == (n > 1 ? B->p->shard : 0);
}

/* Puts the next wanted sequence into slot sl: 1, or 0 when none is left. */
static int start_seq(builder *B, slot *sl, rl_err *err) {
    while (B->next < B->k->n_seqs && !wanted(B, B->next)) B->next++;
    if (B->next >= B->k->n_seqs) return 0;
    sl->s = engine_seq_add(B->e, B->seq(B->ctx, B->next), 1, NULL, err);
    if (!sl->s) return -1;
    sl->seq = B->next++;
    sl->pos = 0;
    sl->nll = 0;
    return 1;
}

/* The slot's logits arrived: its position's words; the next token, or
 * the record written. */
static int after_step(builder *B, slot *sl, rl_err *err) {
    const tcache_key *k = B->k;
    const int32_t *tok = B->seq(B->ctx, sl->seq);
    uint32_t *w = (uint32_t *)(void *)(sl->rec + TCACHE_RECORD_HEAD) + (size_t)sl->pos * TR_SOFT_WORDS(k->top_k);
    sl->nll += position_words(engine_seq_logits(sl->s), k->n_vocab, (int)k->top_k, k->temperature,
                              tok[sl->pos + 1], w);
    if (++sl->pos < (int)k->seq_len) return engine_seq_feed(sl->s, &tok[sl->pos], 1, err);
    float nll = (float)sl->nll;
    put32(sl->rec, RECORD_MAGIC);
    put32(sl->rec + 4, (uint32_t)sl->seq);
    memcpy(sl->rec + 8, &nll, 4);
    put32(sl->rec + 12, record_check(sl->rec, payload_words(k) * 4));
    engine_seq_remove(B->e, sl->s);
    sl->s = NULL;
    B->st->computed++;
    return write_all(B, sl->rec, record_bytes(k), err);
}

static int run_engine(builder *B, slot *slots, int n_slots, rl_err *err) {
    progress pr;
    int64_t todo = 0;
    for (int64_t i = 0; i < B->k->n_seqs; i++) todo += wanted(B, i);
    progress_start(&pr, "teacher", (uint64_t)todo * B->k->seq_len);
    pr.enabled = pr.enabled && B->p->progress;
    uint64_t positions = 0;
    bool more = true;
    for (;;) {
        for (int i = 0; i < n_slots && more; i++) {
            int r = slots[i].s ? 1 : start_seq(B, &slots[i], err);
            if (r < 0) return -1;
            more = r > 0;
        }
        int active = 0;
        for (int i = 0; i < n_slots; i++) active += slots[i].s != NULL;
        if (active == 0) break;
        if (engine_step(B->e, err) < 0) return -1;
        for (int i = 0; i < n_slots; i++)
            if (slots[i].s && after_step(B, &slots[i], err)) return -1;
        positions += (uint64_t)active;
        progress_update(&pr, positions);
        if (B->p->stop && *B->p->stop) break;
    }
    progress_done(&pr);
    return 0;
}

int tcache_build(const char *path, const model *teacher, const tcache_key *key, tcache_seq_fn seq, void *ctx,
                 const tcache_build_params *p, tcache_stats *st, rl_err *err) {
    memset(st, 0, sizeof *st);
    if (teacher->shape.n_vocab != key->n_vocab || key->top_k < 1 || key->top_k > key->n_vocab || !key->seq_len)
        return rl_fail(err, RL_ERR_INPUT, "teacher cache: vocabulary %u, top-k %u, sequence length %u do not fit "
                       "the teacher's vocabulary of %u", key->n_vocab, key->top_k, key->seq_len,
                       teacher->shape.n_vocab);
    builder B = {.path = path, .fd = -1, .k = key, .seq = seq, .ctx = ctx, .p = p, .st = st};
    int n_slots = p->max_seqs > 0 ? p->max_seqs : 16;
    B.at = rl_calloc(RL_MAX(key->n_seqs, 1), sizeof *B.at, err);
    slot *slots = B.at ? rl_calloc((size_t)n_slots, sizeof *slots, err) : NULL;
    int rc = slots ? open_for_append(&B, err) : -1;
    for (int64_t i = 0; i < key->n_seqs; i++) st->had += B.at[i] != 0;
    engine_params ep = engine_default_params();
    ep.n_threads = p->n_threads;
    ep.max_seqs = ep.max_batch = n_slots;
    ep.n_ctx = (int)key->seq_len;
    B.e = rc ? NULL : engine_open(teacher, &ep, err);
    for (int i = 0; B.e && i < n_slots && rc == 0; i++)
        if (!(slots[i].rec = malloc(record_bytes(key)))) rc = rl_fail(err, RL_ERR_INTERNAL, "out of memory");
    double t0 = rl_now();
    if (B.e && rc == 0) rc = run_engine(&B, slots, n_slots, err);
    else if (!B.e) rc = -1;
    st->seconds = rl_now() - t0;
    if (rc == 0 && fsync(B.fd) != 0) rc = rl_fail(err, RL_ERR_INTERNAL, "writing %s: %s", path, strerror(errno));
    for (int i = 0; slots && i < n_slots; i++) free(slots[i].rec);
    engine_close(B.e);
    if (B.fd >= 0) close(B.fd);
    st->missing = 0;
    for (int64_t i = 0; rc == 0 && i < key->n_seqs; i++) st->missing += wanted(&B, i);
    st->missing -= st->computed;
    free(slots);
    free(B.at);
    return rc;
}

/* ---- reading ---- */

tcache *tcache_open(const char *path, const tcache_key *key, rl_err *err) {
    tcache *c = rl_calloc(1, sizeof *c, err);
    if (!c) return NULL;
    c->key = *key;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        rl_fail(err, RL_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
        goto fail;
    }
    c->size = (size_t)st.st_size;
    c->map = c->size ? mmap(NULL, c->size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    if (c->map == MAP_FAILED) {
        c->map = NULL;
        rl_fail(err, RL_ERR_INPUT, "%s: empty or cannot be mapped", path);
        goto fail;
    }
    c->at = rl_calloc(RL_MAX(key->n_seqs, 1), sizeof *c->at, err);
    uint8_t *mark = c->at ? rl_calloc(key->n_vocab, 1, err) : NULL;
    if (!mark || check_header(path, c->map, c->size, key, err)) {
        free(mark);
        goto fail;
    }
    size_t end;
    scan(c->map, c->size, key, c->at, &end);
    int64_t missing = 0;
    for (int64_t i = 0; i < key->n_seqs; i++) missing += !c->at[i];
    int rc = missing ? rl_fail(err, RL_ERR_INPUT, "%s: %lld of %u sequences are missing (an unfinished teacher "
                               "pass: run again to finish it)", path, (long long)missing, key->n_seqs) : 0;
    for (int64_t i = 0; rc == 0 && i < key->n_seqs; i++) rc = check_payload(path, key, tcache_soft(c, i), mark, err);
    free(mark);
    if (rc) goto fail;
    close(fd);
    return c;
fail:
    if (fd >= 0) close(fd);
    tcache_close(c);
    return NULL;
}

void tcache_close(tcache *c) {
    if (!c) return;
    if (c->map) munmap(c->map, c->size);
    free(c->at);
    free(c);
}

const uint32_t *tcache_soft(const tcache *c, int64_t i) {
    return (const uint32_t *)(const void *)(c->map + c->at[i] + TCACHE_RECORD_HEAD);
}

double tcache_nll(const tcache *c, int64_t i) { return rl_load_f32(c->map + c->at[i] + 8); }
