/*
 * types.c — the table of tensor element types (see types.h). Block sizes and
 * byte counts are those of ggml's block structs, which GGUF files store.
 */
#include "types.h"

#include <stddef.h>
#include <strings.h>

static const rl_type_info TYPES[RL_TYPE_COUNT] = {
    [0] = {"f32", 1, 4},        [1] = {"f16", 1, 2},
    [2] = {"q4_0", 32, 18},     [3] = {"q4_1", 32, 20},
    [6] = {"q5_0", 32, 22},     [7] = {"q5_1", 32, 24},
    [8] = {"q8_0", 32, 34},     [9] = {"q8_1", 32, 36},
    [10] = {"q2_K", 256, 84},   [11] = {"q3_K", 256, 110},
    [12] = {"q4_K", 256, 144},  [13] = {"q5_K", 256, 176},
    [14] = {"q6_K", 256, 210},  [15] = {"q8_K", 256, 292},
    [16] = {"iq2_xxs", 256, 66}, [17] = {"iq2_xs", 256, 74},
    [18] = {"iq3_xxs", 256, 98}, [19] = {"iq1_s", 256, 50},
    [20] = {"iq4_nl", 32, 18},  [21] = {"iq3_s", 256, 110},
    [22] = {"iq2_s", 256, 82},  [23] = {"iq4_xs", 256, 136},
    [24] = {"i8", 1, 1},        [25] = {"i16", 1, 2},
    [26] = {"i32", 1, 4},       [27] = {"i64", 1, 8},
    [28] = {"f64", 1, 8},       [29] = {"iq1_m", 256, 56},
    [30] = {"bf16", 1, 2},      [34] = {"tq1_0", 256, 54},
    [35] = {"tq2_0", 256, 66},  [39] = {"mxfp4", 32, 17},
    [40] = {"nvfp4", 64, 36},   [41] = {"q1_0", 128, 18},
    [42] = {"q2_0", 64, 18},
};

const rl_type_info *rl_type_get(uint32_t type) {
    if (type >= RL_TYPE_COUNT || TYPES[type].name == NULL) return NULL;
    return &TYPES[type];
}

const char *rl_type_name(uint32_t type) {
    const rl_type_info *t = rl_type_get(type);
    return t ? t->name : "unknown";
}

int rl_type_from_name(const char *name) {
    for (int i = 0; i < RL_TYPE_COUNT; i++)
        if (TYPES[i].name && strcasecmp(TYPES[i].name, name) == 0) return i;
    return -1;
}

bool rl_type_row_bytes(uint32_t type, uint64_t n, uint64_t *bytes) {
    const rl_type_info *t = rl_type_get(type);
    if (!t || n % t->block != 0) return false;
    return !__builtin_mul_overflow(n / t->block, (uint64_t)t->bytes, bytes);
}
