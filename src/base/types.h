/*
 * types.h — the tensor element types a GGUF file can hold.
 *
 * GGUF numbers its tensor types the way ggml does; this table gives each
 * known number its name, block size (elements per block) and block bytes, so
 * the GGUF reader can check a tensor's size without knowing how to compute
 * with it. Whether rackllm can compute with a type is a separate question,
 * answered by the kernels (kernels.h): a file with an exotic type can still
 * be inspected with `rackllm info`.
 */
#ifndef RACKLLM_TYPES_H
#define RACKLLM_TYPES_H

#include <stdbool.h>
#include <stdint.h>

typedef enum rl_type {
    RL_TYPE_F32 = 0,
    RL_TYPE_F16 = 1,
    RL_TYPE_Q4_0 = 2,
    RL_TYPE_Q4_1 = 3,
    RL_TYPE_Q5_0 = 6,
    RL_TYPE_Q5_1 = 7,
    RL_TYPE_Q8_0 = 8,
    RL_TYPE_Q8_1 = 9,
    RL_TYPE_Q2_K = 10,
    RL_TYPE_Q3_K = 11,
    RL_TYPE_Q4_K = 12,
    RL_TYPE_Q5_K = 13,
    RL_TYPE_Q6_K = 14,
    RL_TYPE_Q8_K = 15,
    RL_TYPE_BF16 = 30,
    RL_TYPE_COUNT = 43, /* one past the largest number ggml has assigned */
} rl_type;

typedef struct rl_type_info {
    const char *name;  /* ggml's name, e.g. "q4_K"; NULL: number not in use */
    uint32_t block;    /* elements per block */
    uint32_t bytes;    /* bytes per block */
} rl_type_info;

/* NULL when the number is not a known type. */
const rl_type_info *rl_type_get(uint32_t type);

/* "q4_K" for a known type, "unknown" otherwise. */
const char *rl_type_name(uint32_t type);

/* Type by name, case-insensitive ("Q4_K", "q8_0", "bf16"); -1 if none. */
int rl_type_from_name(const char *name);

/* Bytes for n elements of a row; false if n is not a whole number of blocks
 * or the type is unknown. */
bool rl_type_row_bytes(uint32_t type, uint64_t n, uint64_t *bytes);

#endif
