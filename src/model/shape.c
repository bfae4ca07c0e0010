/*
 * shape.c — model shapes from GGUF metadata or from data/models.json, and
 * the arithmetic that follows from a shape (parameters, KV bytes, FLOPs,
 * size class). See shape.h.
 */
#include "shape.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/embedded.h"
#include "gguf/gguf.h"

/* ---- from a GGUF file ---- */

static int get_u32(const gguf_file *f, const char *key, uint32_t *out, bool required, rl_err *err) {
    const gguf_kv *kv = gguf_find(f, key);
    uint64_t v;
    if (!kv) {
        if (!required) return 0;
        return rl_fail(err, RL_ERR_INPUT, "%s: missing metadata key %s", f->path, key);
    }
    if (!gguf_value_u64(&kv->val, &v) || v > UINT32_MAX)
        return rl_fail(err, RL_ERR_INPUT, "%s: metadata %s must be a non-negative 32-bit integer", f->path, key);
    *out = (uint32_t)v;
    return 0;
}

static int get_f32(const gguf_file *f, const char *key, float *out, rl_err *err) {
    const gguf_kv *kv = gguf_find(f, key);
    double v;
    if (!kv) return 0;
    if (!gguf_value_f64(&kv->val, &v) || !isfinite(v))
        return rl_fail(err, RL_ERR_INPUT, "%s: metadata %s must be a finite number", f->path, key);
    *out = (float)v;
    return 0;
}

/* ---- architectures ---- */

static const rl_arch ARCHS[] = {
    {"llama", RL_ROPE_NORM, false, false}, /* Llama 2/3, Mistral, SmolLM2, TinyLlama */
    {"qwen2", RL_ROPE_NEOX, true, false},  /* Qwen2, Qwen2.5 */
    {"qwen3", RL_ROPE_NEOX, false, true},  /* Qwen3 (dense) */
};

const rl_arch *shape_arch_find(const char *name, size_t len) {
    for (size_t i = 0; i < RL_ARRAY_LEN(ARCHS); i++)
        if (strlen(ARCHS[i].name) == len && memcmp(ARCHS[i].name, name, len) == 0) return &ARCHS[i];
    return NULL;
}

const char *shape_arch_names(void) { return "llama, qwen2, qwen3"; }

int shape_set_arch(rl_shape *s, const char *arch, rl_err *err) {
    const rl_arch *a = shape_arch_find(arch, strlen(arch));
    if (!a)
        return rl_fail(err, RL_ERR_INPUT, "architecture '%s' is not supported (rackllm runs %s)", arch,
                       shape_arch_names());
    snprintf(s->arch, sizeof s->arch, "%s", a->name);
    s->rope_type = a->rope_type;
    s->qkv_bias = a->qkv_bias;
    s->qk_norm = a->qk_norm;
    return 0;
}

/* The architecture's key `suffix` ("qwen2." + "block_count"). */
static const char *key(const rl_shape *s, const char *suffix, char buf[96]) {
    snprintf(buf, 96, "%s.%s", s->arch, suffix);
    return buf;
}

/* The required and optional counts and norms, under the arch's prefix. */
static int read_hparams(const gguf_file *f, rl_shape *s, rl_err *err) {
    char k[96];
    s->rope_base = 10000.0f;
    s->rms_eps = 1e-5f;
    if (get_u32(f, key(s, "embedding_length", k), &s->n_embd, true, err) ||
        get_u32(f, key(s, "block_count", k), &s->n_layer, true, err) ||
        get_u32(f, key(s, "feed_forward_length", k), &s->n_ff, true, err) ||
        get_u32(f, key(s, "attention.head_count", k), &s->n_head, true, err) ||
        get_u32(f, key(s, "context_length", k), &s->n_ctx_train, true, err))
        return -1;
    s->n_head_kv = s->n_head;
    if (get_u32(f, key(s, "attention.head_count_kv", k), &s->n_head_kv, false, err) ||
        get_f32(f, key(s, "rope.freq_base", k), &s->rope_base, err) ||
        get_f32(f, key(s, "attention.layer_norm_rms_epsilon", k), &s->rms_eps, err))
        return -1;
    if (s->n_embd == 0 || s->n_embd > 65536 || s->n_layer == 0 || s->n_layer > 1024 || s->n_ff == 0 ||
        s->n_ff > 1 << 20 || s->n_head == 0 || s->n_head > 4096)
        return rl_fail(err, RL_ERR_INPUT, "%s: implausible hyper-parameters (embedding %u, layers %u, ffn %u, heads %u)",
                       f->path, s->n_embd, s->n_layer, s->n_ff, s->n_head);
    if (s->n_head_kv == 0 || s->n_head % s->n_head_kv != 0)
        return rl_fail(err, RL_ERR_INPUT, "%s: %s.attention.head_count_kv = %u must divide head_count = %u", f->path,
                       s->arch, s->n_head_kv, s->n_head);
    s->head_dim = s->n_embd / s->n_head;
    if (get_u32(f, key(s, "attention.key_length", k), &s->head_dim, false, err)) return -1;
    uint32_t vdim = s->head_dim, rope_dim = s->head_dim;
    if (get_u32(f, key(s, "attention.value_length", k), &vdim, false, err) ||
        get_u32(f, key(s, "rope.dimension_count", k), &rope_dim, false, err))
        return -1;
    if (s->head_dim == 0 || s->head_dim % 2 || s->head_dim > 1024 || vdim != s->head_dim || rope_dim != s->head_dim)
        return rl_fail(err, RL_ERR_INPUT, "%s: unsupported head size (key %u, value %u, rope %u; must be equal and even)",
                       f->path, s->head_dim, vdim, rope_dim);
    if (!(s->rms_eps > 0) || !(s->rope_base > 0))
        return rl_fail(err, RL_ERR_INPUT, "%s: rms epsilon and rope base must be positive", f->path);
    return 0;
}

/* Linear scaling from the keys; Llama 3.1's from the rope_freqs tensor.
 * Another kind (YaRN, ...) would change every position's rotation: refused
 * rather than run differently from the model's training. */
static int read_rope_scaling(const gguf_file *f, rl_shape *s, rl_err *err) {
    char k[96];
    gguf_str st;
    if (gguf_get_str(f, key(s, "rope.scaling.type", k), &st) && !gguf_str_eq(st, "none")) {
        float factor = 1.0f;
        if (get_f32(f, key(s, "rope.scaling.factor", k), &factor, err)) return -1;
        if (!gguf_str_eq(st, "linear") && !gguf_str_eq(st, "llama3") && factor != 1.0f)
            return rl_fail(err, RL_ERR_INPUT, "%s: rope scaling '%.*s' is not supported (rackllm does linear and llama3)",
                           f->path, (int)RL_MIN(st.len, 32), st.ptr);
        if (gguf_str_eq(st, "linear") && factor != 1.0f && factor > 0) {
            s->rope_scaling = RL_ROPE_SCALING_LINEAR;
            s->rope_factor = factor;
        }
    }
    if (gguf_find_tensor(f, "rope_freqs.weight")) s->rope_scaling = RL_ROPE_SCALING_LLAMA3;
    return 0;
}

int shape_from_gguf(const gguf_file *f, rl_shape *s, rl_err *err) {
    memset(s, 0, sizeof *s);
    gguf_str arch;
    if (!gguf_get_str(f, "general.architecture", &arch))
        return rl_fail(err, RL_ERR_INPUT, "%s: missing metadata key general.architecture", f->path);
    char arch_name[65];
    snprintf(arch_name, sizeof arch_name, "%.*s", (int)RL_MIN(arch.len, 64), arch.ptr);
    if (!shape_arch_find(arch.ptr, arch.len))
        return rl_fail(err, RL_ERR_INPUT, "%s: architecture '%s' is not supported (rackllm runs %s)", f->path,
                       arch_name, shape_arch_names());
    shape_set_arch(s, arch_name, err);
    gguf_str name;
    if (gguf_get_str(f, "general.name", &name))
        snprintf(s->name, sizeof s->name, "%.*s", (int)RL_MIN(name.len, sizeof s->name - 1), name.ptr);
    if (read_hparams(f, s, err)) return -1;

    char k[96];
    const gguf_value *tokens = gguf_get_arr(f, "tokenizer.ggml.tokens", GGUF_STRING);
    const gguf_tensor *embd = gguf_find_tensor(f, "token_embd.weight");
    if (get_u32(f, key(s, "vocab_size", k), &s->n_vocab, false, err)) return -1;
    if (s->n_vocab == 0 && embd) s->n_vocab = (uint32_t)RL_MIN(embd->ne[1], UINT32_MAX);
    if (s->n_vocab == 0 && tokens) s->n_vocab = (uint32_t)RL_MIN(tokens->arr.n, UINT32_MAX);
    s->tied_embeddings = gguf_find_tensor(f, "output.weight") == NULL;
    return read_rope_scaling(f, s, err);
}

void shape_write_gguf(gguf_writer *w, const rl_shape *s) {
    char k[96];
#define KEY(x) (snprintf(k, sizeof k, "%s." x, s->arch), k)
    gguf_writer_add_u32(w, KEY("vocab_size"), s->n_vocab);
    gguf_writer_add_u32(w, KEY("context_length"), s->n_ctx_train);
    gguf_writer_add_u32(w, KEY("embedding_length"), s->n_embd);
    gguf_writer_add_u32(w, KEY("block_count"), s->n_layer);
    gguf_writer_add_u32(w, KEY("feed_forward_length"), s->n_ff);
    gguf_writer_add_u32(w, KEY("rope.dimension_count"), s->head_dim);
    gguf_writer_add_u32(w, KEY("attention.head_count"), s->n_head);
    gguf_writer_add_u32(w, KEY("attention.head_count_kv"), s->n_head_kv);
    gguf_writer_add_u32(w, KEY("attention.key_length"), s->head_dim);
    gguf_writer_add_u32(w, KEY("attention.value_length"), s->head_dim);
    gguf_writer_add_f32(w, KEY("rope.freq_base"), s->rope_base);
    gguf_writer_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), s->rms_eps);
    if (s->rope_scaling == RL_ROPE_SCALING_LINEAR) {
        gguf_writer_add_str(w, KEY("rope.scaling.type"), "linear");
        gguf_writer_add_f32(w, KEY("rope.scaling.factor"), s->rope_factor);
    }
#undef KEY
}

/* ---- the catalog ---- */

static cJSON *catalog_models(rl_err *err) {
    size_t size;
    const unsigned char *text = rl_embedded_find("models.json", &size);
    if (!text) {
        rl_fail(err, RL_ERR_INTERNAL, "data/models.json is not embedded in this build");
        return NULL;
    }
    cJSON *root = cJSON_ParseWithLength((const char *)text, size);
    if (!root) rl_fail(err, RL_ERR_INTERNAL, "data/models.json does not parse");
    return root;
}

static double num(const cJSON *o, const char *key, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

static int from_json(const cJSON *m, rl_shape *s, rl_err *err) {
    memset(s, 0, sizeof *s);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, "id");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
    if (cJSON_IsString(id)) snprintf(s->id, sizeof s->id, "%s", id->valuestring);
    if (cJSON_IsString(name)) snprintf(s->name, sizeof s->name, "%s", name->valuestring);
    const cJSON *arch = cJSON_GetObjectItemCaseSensitive(m, "arch");
    if (shape_set_arch(s, cJSON_IsString(arch) ? arch->valuestring : "llama", err))
        return rl_fail_prefix(err, "data/models.json, %s", s->id);
    s->n_vocab = (uint32_t)num(m, "n_vocab", 0);
    s->n_embd = (uint32_t)num(m, "n_embd", 0);
    s->n_layer = (uint32_t)num(m, "n_layer", 0);
    s->n_head = (uint32_t)num(m, "n_head", 1);
    s->n_head_kv = (uint32_t)num(m, "n_head_kv", s->n_head);
    s->n_ff = (uint32_t)num(m, "n_ff", 0);
    s->head_dim = (uint32_t)num(m, "head_dim", s->n_head ? s->n_embd / s->n_head : 0);
    s->n_ctx_train = (uint32_t)num(m, "n_ctx_train", 4096);
    s->rope_base = (float)num(m, "rope_base", 10000);
    s->rms_eps = (float)num(m, "rms_eps", 1e-5);
    s->tied_embeddings = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "tied_embeddings"));
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(m, "rope_scaling");
    if (cJSON_IsObject(rs)) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(rs, "type");
        bool llama3 = cJSON_IsString(type) && strcmp(type->valuestring, "llama3") == 0;
        s->rope_scaling = llama3 ? RL_ROPE_SCALING_LLAMA3 : RL_ROPE_SCALING_LINEAR;
        s->rope_factor = (float)num(rs, "factor", 1);
        s->rope_low_freq_factor = (float)num(rs, "low_freq_factor", 1);
        s->rope_high_freq_factor = (float)num(rs, "high_freq_factor", 4);
        s->rope_orig_ctx = (uint32_t)num(rs, "original_context", 8192);
    }
    return 0;
}

int shape_catalog_count(void) {
    cJSON *root = catalog_models(NULL);
    int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(root, "models"));
    cJSON_Delete(root);
    return n;
}

int shape_catalog_get(int i, rl_shape *s, rl_err *err) {
    cJSON *root = catalog_models(err);
    if (!root) return -1;
    const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(root, "models"), i);
    int rc = m ? from_json(m, s, err) : rl_fail(err, RL_ERR_INPUT, "no model shape number %d", i);
    cJSON_Delete(root);
    return rc;
}

int shape_catalog_find(const char *id, rl_shape *s, rl_err *err) {
    cJSON *root = catalog_models(err);
    if (!root) return -1;
    const cJSON *m;
    int rc = 1;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(root, "models")) {
        const cJSON *mid = cJSON_GetObjectItemCaseSensitive(m, "id");
        if (cJSON_IsString(mid) && strcmp(mid->valuestring, id) == 0) {
            rc = from_json(m, s, err);
            break;
        }
    }
    cJSON_Delete(root);
    if (rc > 0) return rl_fail(err, RL_ERR_INPUT, "unknown model shape '%s' (see `rackllm plan --list`)", id);
    return rc;
}

/* ---- arithmetic ---- */

uint64_t shape_param_count(const rl_shape *s) {
    uint64_t d = s->n_embd, q = (uint64_t)s->n_head * s->head_dim, kv = (uint64_t)s->n_head_kv * s->head_dim;
    uint64_t layer = d /* attn_norm */ + d * q + 2 * d * kv + q * d + d /* ffn_norm */ + 3 * d * s->n_ff;
    if (s->qkv_bias) layer += q + 2 * kv;
    if (s->qk_norm) layer += 2 * (uint64_t)s->head_dim;
    uint64_t n = (uint64_t)s->n_vocab * d + s->n_layer * layer + d;
    if (!s->tied_embeddings) n += (uint64_t)s->n_vocab * d;
    if (s->rope_scaling == RL_ROPE_SCALING_LLAMA3) n += s->head_dim / 2;
    return n;
}

uint64_t shape_kv_bytes_per_token(const rl_shape *s, double elem_bytes) {
    return (uint64_t)(2.0 * s->n_layer * s->n_head_kv * s->head_dim * elem_bytes);
}

double shape_attention_flops(const rl_shape *s, uint32_t pos) {
    double q = (double)s->n_head * s->head_dim;
    return 2.0 * s->n_layer * 2.0 * q * pos; /* q.k and p.v for every earlier position */
}

double shape_flops_per_token(const rl_shape *s, uint32_t pos) {
    double d = s->n_embd, q = (double)s->n_head * s->head_dim, kv = (double)s->n_head_kv * s->head_dim;
    double weights = s->n_layer * (d * q + 2 * d * kv + q * d + 3 * d * s->n_ff) + (double)s->n_vocab * d;
    return 2.0 * weights + shape_attention_flops(s, pos);
}

int shape_size_class(uint64_t n_params) {
    if (n_params < 4000000000ull) return 0;
    if (n_params <= 20000000000ull) return 1;
    if (n_params <= 200000000000ull) return 2;
    return 3;
}

const char *shape_size_class_label(int c) {
    static const char *const labels[] = {"class 0 (< 4B)", "class 1 (4B-20B)", "class 2 (20B-200B)",
                                         "class 3 (> 200B)"};
    return c >= 0 && c < 4 ? labels[c] : "unknown";
}

bool shape_llama3_rope_freqs(const rl_shape *s, float *factors) {
    if (s->rope_scaling != RL_ROPE_SCALING_LLAMA3) return false;
    double low_wavelen = s->rope_orig_ctx / s->rope_low_freq_factor;
    double high_wavelen = s->rope_orig_ctx / s->rope_high_freq_factor;
    for (uint32_t i = 0; i < s->head_dim / 2; i++) {
        /* as the converter does it: freq in float32, the rest in double */
        float freq = 1.0f / powf(s->rope_base, (float)(2 * i) / (float)s->head_dim);
        double wavelen = 2 * M_PI / freq;
        if (wavelen < high_wavelen) factors[i] = 1.0f;
        else if (wavelen > low_wavelen) factors[i] = s->rope_factor;
        else {
            double smooth = (s->rope_orig_ctx / wavelen - s->rope_low_freq_factor) /
                            (s->rope_high_freq_factor - s->rope_low_freq_factor);
            factors[i] = (float)(1.0 / ((1 - smooth) / s->rope_factor + smooth));
        }
    }
    return true;
}
