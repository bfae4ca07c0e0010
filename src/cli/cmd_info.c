/*
 * cmd_info.c — `rackllm info FILE`: what a GGUF file holds and what it costs.
 *
 * Everything is gathered once into a `report` (file facts, the model's shape
 * if it is a llama file, tokenizer, parameter count, size class, RAM for one
 * session at a context length) and then written either as text for a person
 * or, with --json, as one JSON object built with cJSON. Metadata values are
 * listed too, each shortened: long strings are cut and long arrays show their
 * first items and their length, so the vocabulary does not flood the screen.
 *
 * A file the reader rejects ends the command with the reader's one-line
 * message ("rackllm info: FILE: offset N: what is wrong") and exit code 2.
 * A valid GGUF of another architecture is still described: its generic
 * facts are printed and the architecture is reported as unsupported.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/types.h"
#include "commands.h"
#include "gguf/gguf.h"
#include "model/shape.h"

#define DEFAULT_CTX_CAP 4096 /* default context: the model's, but at most this */
#define SHORT_STRING 64      /* bytes of a metadata string shown before cutting */
#define SHORT_ARRAY 8        /* items of a metadata array shown before summarising */

typedef struct kv_type {
    const char *name;
    double bytes; /* per element, blocks included */
} kv_type;

static const kv_type KV_TYPES[] = {{"f16", 2.0}, {"f32", 4.0}, {"q8_0", 34.0 / 32.0}};

/* Everything the command reports, computed before anything is printed. */
typedef struct report {
    const gguf_file *f;
    gguf_str arch;          /* general.architecture ("" if absent) */
    bool has_shape;         /* a llama file whose hyper-parameters hold together */
    rl_shape shape;
    char unsupported[512];  /* why has_shape is false */
    gguf_str tok_model;     /* tokenizer.ggml.model ("" if absent) */
    uint64_t n_tokens;      /* length of tokenizer.ggml.tokens */
    bool has_bos, has_eos;
    uint64_t bos, eos;
    uint64_t n_params;      /* elements of all tensors (or implied by the shape) */
    bool params_implied;    /* no tensors: n_params is the shape's count */
    uint64_t weight_bytes;  /* bytes of all tensors */
    int size_class;
    uint32_t ctx;
    char ctx_source[128];   /* how ctx was chosen, in words */
    const kv_type *kv;
    uint64_t kv_bytes;      /* KV cache of one session at ctx */
    uint64_t session_bytes; /* weights + KV cache */
} report;

static void usage(FILE *out) {
    fprintf(out,
            "usage: rackllm info FILE [--ctx N] [--kv-type f16|f32|q8_0] [--json]\n"
            "\n"
            "Describes a GGUF model: architecture, hyper-parameters, tokenizer, tensors,\n"
            "parameter count, file size, size class, metadata, and the RAM one session\n"
            "needs (weights + KV cache) at a context length.\n"
            "\n"
            "  --ctx N       context length for the KV cache (default: the model's context\n"
            "                length, capped at %d)\n"
            "  --kv-type T   KV cache element type: f16 (default), f32 or q8_0\n"
            "  --json        print one JSON object instead of text\n"
            "  -h, --help    this help\n"
            "\n"
            "Exit status: 0 described, 1 internal failure, 2 bad arguments or a bad file.\n",
            DEFAULT_CTX_CAP);
}

/* ---- gathering ---- */

static void gather_tokenizer(report *r) {
    const gguf_file *f = r->f;
    r->tok_model = (gguf_str){"", 0};
    gguf_get_str(f, "tokenizer.ggml.model", &r->tok_model);
    const gguf_value *tokens = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_VTYPE_COUNT);
    r->n_tokens = tokens ? tokens->arr.n : 0;
    r->has_bos = gguf_get_u64(f, "tokenizer.ggml.bos_token_id", &r->bos);
    r->has_eos = gguf_get_u64(f, "tokenizer.ggml.eos_token_id", &r->eos);
}

/* The context for the KV estimate: --ctx, else the model's capped. */
static void choose_ctx(report *r, uint64_t ctx_flag) {
    char *why = r->ctx_source;
    size_t cap = sizeof r->ctx_source;
    if (ctx_flag) {
        r->ctx = (uint32_t)ctx_flag;
        snprintf(why, cap, "--ctx");
    } else if (r->has_shape && r->shape.n_ctx_train > 0 && r->shape.n_ctx_train <= DEFAULT_CTX_CAP) {
        r->ctx = r->shape.n_ctx_train;
        snprintf(why, cap, "the model's context length");
    } else if (r->has_shape && r->shape.n_ctx_train > 0) {
        r->ctx = DEFAULT_CTX_CAP;
        snprintf(why, cap, "the model's context length %u, capped at %d", r->shape.n_ctx_train, DEFAULT_CTX_CAP);
    } else {
        r->ctx = DEFAULT_CTX_CAP;
        snprintf(why, cap, "default: the model states no context length");
    }
}

static void gather(report *r, const gguf_file *f, uint64_t ctx_flag, const kv_type *kv) {
    memset(r, 0, sizeof *r);
    r->f = f;
    r->kv = kv;
    r->arch = (gguf_str){"", 0};
    gguf_get_str(f, "general.architecture", &r->arch);
    rl_err err = {0};
    r->has_shape = shape_from_gguf(f, &r->shape, &err) == 0;
    if (!r->has_shape) {
        /* the shape's messages start with the path, which we print anyway */
        size_t n = strlen(f->path);
        bool prefixed = strncmp(err.msg, f->path, n) == 0 && err.msg[n] == ':' && err.msg[n + 1] == ' ';
        const char *msg = prefixed ? err.msg + n + 2 : err.msg;
        snprintf(r->unsupported, sizeof r->unsupported, "%s", msg);
    }
    gather_tokenizer(r);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        /* both sums are bounded by the file's size (elements: by 8x it) */
        r->n_params += gguf_tensor_nelements(&f->tensors[i]);
        r->weight_bytes += f->tensors[i].size;
    }
    if (f->n_tensors == 0 && r->has_shape) { /* a vocabulary-only file: the model it describes */
        r->n_params = shape_param_count(&r->shape);
        r->params_implied = true;
    }
    r->size_class = shape_size_class(r->n_params);
    choose_ctx(r, ctx_flag);
    if (r->has_shape && rl_mul_overflow(shape_kv_bytes_per_token(&r->shape, kv->bytes), r->ctx, &r->kv_bytes))
        r->kv_bytes = UINT64_MAX; /* only for absurd shapes; printed as is */
    if (rl_add_overflow(r->weight_bytes, r->kv_bytes, &r->session_bytes)) r->session_bytes = UINT64_MAX;
}

/* ---- small formatting helpers ---- */

static const char *human_bytes(uint64_t n, char *buf, size_t cap) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u == 0) snprintf(buf, cap, "%" PRIu64 " B", n);
    else snprintf(buf, cap, "%.2f %s", v, units[u]);
    return buf;
}

static const char *human_count(uint64_t n, char *buf, size_t cap) {
    if (n >= 1000000000ull) snprintf(buf, cap, "%.2fB", n / 1e9);
    else if (n >= 1000000) snprintf(buf, cap, "%.2fM", n / 1e6);
    else if (n >= 1000) snprintf(buf, cap, "%.1fK", n / 1e3);
    else snprintf(buf, cap, "%" PRIu64, n);
    return buf;
}

static const char *tokenizer_kind(gguf_str model) {
    if (gguf_str_eq(model, "llama")) return "SentencePiece";
    if (gguf_str_eq(model, "gpt2")) return "byte-level BPE";
    if (model.len == 0) return "no tokenizer";
    return "unsupported tokenizer";
}

static const char *rope_scaling_name(int s) {
    return s == RL_ROPE_SCALING_LINEAR ? "linear" : s == RL_ROPE_SCALING_LLAMA3 ? "llama3" : "none";
}

/* Length of the well-formed UTF-8 sequence at p (n bytes there), or 0 for
 * a byte that does not start one (stray continuation, overlong, surrogate,
 * beyond U+10FFFF, cut short). NUL counts as not well-formed: it would end
 * a C string. */
static int utf8_seq(const unsigned char *p, uint64_t n) {
    unsigned char c = p[0];
    int len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (len == 0 || (uint64_t)len > n || c == 0) return 0;
    for (int k = 1; k < len; k++)
        if ((p[k] & 0xc0) != 0x80) return 0;
    if (len == 2 && c < 0xc2) return 0;
    if (len == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))) return 0;
    if (len == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90) || c > 0xf4)) return 0;
    return len;
}

/* A string from the file as well-formed UTF-8 without NUL bytes, for cJSON
 * (which escapes control characters itself): at most `max` bytes, cut at a
 * character boundary with "..." appended; bad bytes become U+FFFD. */
static char *clean_utf8(gguf_str s, uint64_t max) {
    char *out = malloc(RL_MIN(s.len, max) * 3 + 4); /* each input byte yields at most 3 */
    if (!out) return NULL;
    const unsigned char *p = (const unsigned char *)s.ptr;
    size_t o = 0;
    uint64_t i = 0;
    while (i < s.len) {
        int len = utf8_seq(p + i, s.len - i);
        if (i + (uint64_t)(len ? len : 1) > max) break;
        if (len) {
            memcpy(out + o, p + i, (size_t)len);
            o += (size_t)len;
            i += (uint64_t)len;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    if (i < s.len) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = 0;
    return out;
}

/* Prints a string from the file for a terminal: control characters (C0,
 * DEL and C1, which could drive the terminal) and bad bytes escaped, the rest
 * as is; at most `max` bytes, then "... (N bytes)". Quoted: in double quotes
 * with " and \ escaped, like JSON. */
static void put_text(FILE *out, gguf_str s, uint64_t max, bool quoted) {
    const unsigned char *p = (const unsigned char *)s.ptr;
    uint64_t i = 0;
    if (quoted) fputc('"', out);
    while (i < s.len && i < max) {
        unsigned char c = p[i];
        int len = utf8_seq(p + i, s.len - i);
        if (quoted && (c == '"' || c == '\\')) fprintf(out, "\\%c", c);
        else if (c == '\n') fputs("\\n", out);
        else if (c == '\t') fputs("\\t", out);
        else if (c == '\r') fputs("\\r", out);
        else if (len == 0 || c < 0x20 || c == 0x7f) fprintf(out, "\\x%02x", c);
        else if (len == 2 && c == 0xc2 && p[i + 1] < 0xa0) fprintf(out, "\\u%04x", p[i + 1]);
        else fwrite(p + i, 1, (size_t)len, out);
        i += len > 1 ? (uint64_t)len : 1;
    }
    if (quoted) fputc('"', out);
    if (i < s.len) fprintf(out, "... (%" PRIu64 " bytes)", s.len);
}

static gguf_str cstr(const char *s) { return (gguf_str){s, strlen(s)}; }

/* put_text into buf (for columns that printf pads). */
static const char *render(gguf_str s, uint64_t max, char *buf, size_t cap) {
    FILE *m = fmemopen(buf, cap, "w");
    buf[0] = 0;
    if (!m) return buf;
    put_text(m, s, max, false);
    fclose(m); /* writes the terminating NUL (the text is cut if buf is short) */
    buf[cap - 1] = 0;
    return buf;
}

/* ---- text ---- */

/* One metadata value, shortened: strings cut, arrays summarised (the
 * outermost with its length and element type). */
static void print_short(FILE *out, const gguf_value *v, bool outer) {
    if (v->type == GGUF_STRING) {
        put_text(out, v->str, SHORT_STRING, true);
        return;
    }
    if (v->type != GGUF_ARRAY) {
        gguf_value_print_json(out, v, 0);
        return;
    }
    uint64_t shown = RL_MIN(v->arr.n, SHORT_ARRAY);
    fputc('[', out);
    for (uint64_t i = 0; i < shown; i++) {
        gguf_value item;
        if (i) fputs(", ", out);
        if (gguf_arr_get(v, i, &item)) print_short(out, &item, false);
        else fputs("?", out);
    }
    if (shown < v->arr.n) fputs(", ...", out);
    fputc(']', out);
    if (outer) fprintf(out, " (%" PRIu64 " x %s)", v->arr.n, gguf_vtype_name(v->arr.type));
}

static void print_shape_text(const report *r) {
    const rl_shape *s = &r->shape;
    printf("hyper-parameters\n");
    printf("  vocabulary        %u\n", s->n_vocab);
    printf("  embedding         %u\n", s->n_embd);
    printf("  layers            %u\n", s->n_layer);
    printf("  attention heads   %u (%u KV heads, head size %u)\n", s->n_head, s->n_head_kv, s->head_dim);
    printf("  feed-forward      %u\n", s->n_ff);
    printf("  context length    %u\n", s->n_ctx_train);
    printf("  rope base         %g\n", s->rope_base);
    printf("  rope scaling      %s", rope_scaling_name(s->rope_scaling));
    if (s->rope_scaling == RL_ROPE_SCALING_LINEAR) printf(" (factor %g)", s->rope_factor);
    if (s->rope_scaling == RL_ROPE_SCALING_LLAMA3) printf(" (rope_freqs.weight)");
    printf("\n  rms epsilon       %g\n", s->rms_eps);
    printf("  output embedding  %s\n", s->tied_embeddings ? "tied to token_embd" : "separate output.weight");
}

static void print_tensors_text(const gguf_file *f) {
    char b[32];
    printf("tensors (%" PRIu64 ")\n", f->n_tensors);
    if (!f->n_tensors) return;
    printf("  %-32s %-8s %-26s %14s\n", "name", "type", "shape", "bytes");
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        char shape[128];
        int o = 0;
        for (uint32_t d = 0; d < t->n_dims; d++)
            o += snprintf(shape + o, sizeof shape - (size_t)o, "%s%" PRIu64, d ? " x " : "", t->ne[d]);
        char name[512];
        printf("  %-32s %-8s %-26s %14" PRIu64 "  (%s)\n", render(t->name, 96, name, sizeof name),
               rl_type_name(t->type), shape, t->size, human_bytes(t->size, b, sizeof b));
    }
}

static void print_metadata_text(const gguf_file *f) {
    printf("metadata (%" PRIu64 " keys)\n", f->n_kv);
    for (uint64_t i = 0; i < f->n_kv; i++) {
        char key[512];
        printf("  %-40s %-8s ", render(f->kv[i].key, 96, key, sizeof key), gguf_vtype_name(f->kv[i].val.type));
        print_short(stdout, &f->kv[i].val, true);
        putchar('\n');
    }
}

static void print_text(const report *r) {
    const gguf_file *f = r->f;
    char b1[32], b2[32], b3[32], b4[32];
    char arch[512], tok[512], why[1024];
    gguf_str name;
    printf("file              %s\n", f->path);
    printf("file size         %" PRIu64 " bytes (%s)\n", f->size, human_bytes(f->size, b1, sizeof b1));
    printf("gguf              version %u, alignment %" PRIu64 ", %" PRIu64 " metadata keys, %" PRIu64
           " tensors, data at offset %" PRIu64 "\n",
           f->version, f->alignment, f->n_kv, f->n_tensors, f->data_offset);
    printf("architecture      %s", r->arch.len ? render(r->arch, 64, arch, sizeof arch) : "(none)");
    if (!r->has_shape) printf(" (unsupported: %s)", render(cstr(r->unsupported), sizeof r->unsupported, why, sizeof why));
    putchar('\n');
    if (gguf_get_str(f, "general.name", &name)) {
        printf("name              ");
        put_text(stdout, name, 96, false);
        putchar('\n');
    }
    if (r->has_shape) print_shape_text(r);
    printf("tokenizer         %s", tokenizer_kind(r->tok_model));
    if (r->tok_model.len) printf(" (%s), %" PRIu64 " tokens", render(r->tok_model, 64, tok, sizeof tok), r->n_tokens);
    if (r->has_bos) printf(", bos %" PRIu64, r->bos);
    if (r->has_eos) printf(", eos %" PRIu64, r->eos);
    putchar('\n');
    printf("parameters        %" PRIu64 " (%s)", r->n_params, human_count(r->n_params, b1, sizeof b1));
    if (r->params_implied) printf(", implied by the hyper-parameters: the file has no tensors");
    else if (r->has_shape && shape_param_count(&r->shape) != r->n_params)
        printf(", although the hyper-parameters imply %" PRIu64, shape_param_count(&r->shape));
    putchar('\n');
    printf("size class        %d: %s\n", r->size_class, shape_size_class_label(r->size_class));
    if (r->has_shape) {
        printf("RAM per session   %s = weights %s + KV cache %s (%s, context %u: %s)\n",
               human_bytes(r->session_bytes, b1, sizeof b1), human_bytes(r->weight_bytes, b2, sizeof b2),
               human_bytes(r->kv_bytes, b3, sizeof b3), r->kv->name, r->ctx, r->ctx_source);
        if (r->shape.n_ctx_train && r->ctx > r->shape.n_ctx_train)
            printf("                  note: context %u is beyond the model's trained %u\n", r->ctx,
                   r->shape.n_ctx_train);
    } else {
        printf("RAM per session   weights %s; KV cache unknown (architecture unsupported)\n",
               human_bytes(r->weight_bytes, b4, sizeof b4));
    }
    print_tensors_text(f);
    print_metadata_text(f);
}

/* ---- JSON ---- */

static cJSON *json_string(gguf_str s, uint64_t max) {
    char *c = clean_utf8(s, max);
    cJSON *j = cJSON_CreateString(c ? c : "");
    free(c);
    return j;
}

/* A metadata value; long strings and arrays as summary objects. */
static cJSON *json_value(const gguf_value *v) {
    switch (v->type) {
    case GGUF_UINT8: case GGUF_UINT16: case GGUF_UINT32: case GGUF_UINT64:
        return cJSON_CreateNumber((double)v->u64);
    case GGUF_INT8: case GGUF_INT16: case GGUF_INT32: case GGUF_INT64:
        return cJSON_CreateNumber((double)v->i64);
    case GGUF_FLOAT32: case GGUF_FLOAT64:
        return cJSON_CreateNumber(v->f64); /* cJSON writes NaN and infinities as null */
    case GGUF_BOOL:
        return cJSON_CreateBool(v->b);
    case GGUF_STRING: {
        if (v->str.len <= SHORT_STRING * 4) return json_string(v->str, v->str.len);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "string_bytes", (double)v->str.len);
        cJSON_AddItemToObject(o, "head", json_string(v->str, SHORT_STRING));
        return o;
    }
    case GGUF_ARRAY: {
        uint64_t shown = RL_MIN(v->arr.n, SHORT_ARRAY);
        cJSON *items = cJSON_CreateArray();
        for (uint64_t i = 0; i < shown; i++) {
            gguf_value item;
            cJSON_AddItemToArray(items, gguf_arr_get(v, i, &item) ? json_value(&item) : cJSON_CreateNull());
        }
        if (v->arr.n <= SHORT_ARRAY) return items;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "array_of", gguf_vtype_name(v->arr.type));
        cJSON_AddNumberToObject(o, "length", (double)v->arr.n);
        cJSON_AddItemToObject(o, "head", items);
        return o;
    }
    default:
        return cJSON_CreateNull();
    }
}

static cJSON *json_shape(const rl_shape *s) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n_vocab", s->n_vocab);
    cJSON_AddNumberToObject(o, "n_embd", s->n_embd);
    cJSON_AddNumberToObject(o, "n_layer", s->n_layer);
    cJSON_AddNumberToObject(o, "n_head", s->n_head);
    cJSON_AddNumberToObject(o, "n_head_kv", s->n_head_kv);
    cJSON_AddNumberToObject(o, "head_dim", s->head_dim);
    cJSON_AddNumberToObject(o, "n_ff", s->n_ff);
    cJSON_AddNumberToObject(o, "n_ctx_train", s->n_ctx_train);
    cJSON_AddNumberToObject(o, "rope_base", s->rope_base);
    cJSON_AddStringToObject(o, "rope_scaling", rope_scaling_name(s->rope_scaling));
    if (s->rope_scaling == RL_ROPE_SCALING_LINEAR) cJSON_AddNumberToObject(o, "rope_factor", s->rope_factor);
    cJSON_AddNumberToObject(o, "rms_eps", s->rms_eps);
    cJSON_AddBoolToObject(o, "tied_embeddings", s->tied_embeddings);
    return o;
}

static cJSON *json_tensors(const gguf_file *f) {
    cJSON *arr = cJSON_CreateArray();
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        cJSON *o = cJSON_CreateObject(), *shape = cJSON_CreateArray();
        cJSON_AddItemToObject(o, "name", json_string(t->name, t->name.len));
        cJSON_AddStringToObject(o, "type", rl_type_name(t->type));
        for (uint32_t d = 0; d < t->n_dims; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->ne[d]));
        cJSON_AddItemToObject(o, "shape", shape);
        cJSON_AddNumberToObject(o, "bytes", (double)t->size);
        cJSON_AddNumberToObject(o, "offset", (double)(f->data_offset + t->offset));
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static cJSON *json_report(const report *r) {
    const gguf_file *f = r->f;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", f->path);
    cJSON_AddNumberToObject(o, "file_size", (double)f->size);
    cJSON_AddNumberToObject(o, "gguf_version", f->version);
    cJSON_AddNumberToObject(o, "alignment", (double)f->alignment);
    cJSON_AddNumberToObject(o, "data_offset", (double)f->data_offset);
    cJSON_AddItemToObject(o, "architecture", r->arch.len ? json_string(r->arch, r->arch.len) : cJSON_CreateNull());
    cJSON_AddBoolToObject(o, "supported", r->has_shape);
    gguf_str name;
    if (gguf_get_str(f, "general.name", &name)) cJSON_AddItemToObject(o, "name", json_string(name, name.len));
    if (r->has_shape) cJSON_AddItemToObject(o, "hyper_parameters", json_shape(&r->shape));
    else cJSON_AddItemToObject(o, "unsupported_reason", json_string(cstr(r->unsupported), sizeof r->unsupported));
    cJSON *tok = cJSON_AddObjectToObject(o, "tokenizer");
    cJSON_AddItemToObject(tok, "model", r->tok_model.len ? json_string(r->tok_model, 64) : cJSON_CreateNull());
    cJSON_AddStringToObject(tok, "kind", tokenizer_kind(r->tok_model));
    cJSON_AddNumberToObject(tok, "n_tokens", (double)r->n_tokens);
    cJSON_AddItemToObject(tok, "bos_token_id", r->has_bos ? cJSON_CreateNumber((double)r->bos) : cJSON_CreateNull());
    cJSON_AddItemToObject(tok, "eos_token_id", r->has_eos ? cJSON_CreateNumber((double)r->eos) : cJSON_CreateNull());
    cJSON_AddNumberToObject(o, "n_tensors", (double)f->n_tensors);
    cJSON_AddNumberToObject(o, "parameters", (double)r->n_params);
    cJSON_AddBoolToObject(o, "parameters_implied_by_shape", r->params_implied);
    cJSON_AddNumberToObject(o, "size_class", r->size_class);
    cJSON_AddStringToObject(o, "size_class_label", shape_size_class_label(r->size_class));
    cJSON *mem = cJSON_AddObjectToObject(o, "ram");
    cJSON_AddNumberToObject(mem, "weights_bytes", (double)r->weight_bytes);
    if (r->has_shape) {
        cJSON_AddNumberToObject(mem, "ctx", r->ctx);
        cJSON_AddStringToObject(mem, "ctx_source", r->ctx_source);
        cJSON_AddStringToObject(mem, "kv_type", r->kv->name);
        cJSON_AddNumberToObject(mem, "kv_cache_bytes", (double)r->kv_bytes);
        cJSON_AddNumberToObject(mem, "session_bytes", (double)r->session_bytes);
    }
    cJSON_AddItemToObject(o, "tensors", json_tensors(f));
    cJSON *meta = cJSON_AddObjectToObject(o, "metadata");
    for (uint64_t i = 0; i < f->n_kv; i++) {
        char *key = clean_utf8(f->kv[i].key, f->kv[i].key.len);
        cJSON_AddItemToObject(meta, key ? key : "?", json_value(&f->kv[i].val));
        free(key);
    }
    return o;
}

static int print_json(const report *r) {
    cJSON *o = json_report(r);
    char *text = o ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    if (!text) {
        rl_err err;
        rl_fail(&err, RL_ERR_INTERNAL, "out of memory building the JSON report");
        return cli_fail(&err);
    }
    puts(text);
    free(text);
    return 0;
}

/* ---- the command ---- */

/* --kv-type: one of KV_TYPES. */
static int read_kv_type(void *dest, const char *value, rl_err *err) {
    const kv_type **kv = dest;
    for (size_t i = 0; i < RL_ARRAY_LEN(KV_TYPES); i++)
        if (strcmp(value, KV_TYPES[i].name) == 0) {
            *kv = &KV_TYPES[i];
            return 0;
        }
    return rl_fail(err, RL_ERR_INPUT, "--kv-type must be f16, f32 or q8_0, not '%s'", value);
}

int cmd_info(int argc, char **argv) {
    uint64_t ctx = 0;
    bool json = false;
    const kv_type *kv = &KV_TYPES[0];
    const cli_flag flags[] = {
        FLAG_U64("ctx", 0, &ctx, 1, UINT32_MAX),
        FLAG_FN("kv-type", 0, &kv, read_kv_type),
        FLAG_BOOL("json", 0, &json),
    };
    rl_err err = {0};
    int first, rc = cli_parse(argc, argv, flags, (int)RL_ARRAY_LEN(flags), usage, &first, &err);
    if (rc) return rc == CLI_HELP ? 0 : cli_fail(&err);
    if (first != argc - 1) return cli_usage_error("expected one FILE (see rackllm info --help)");
    gguf_file *f = gguf_open(argv[first], &err);
    if (!f) return cli_fail(&err);
    report r;
    gather(&r, f, ctx, kv);
    if (json) rc = print_json(&r);
    else print_text(&r);
    gguf_close(f);
    return rc;
}
