/*
 * embedded.h — the files of data/ compiled into the binary.
 *
 * Model shapes, the hardware catalog and the like are data, kept as files in
 * data/ where they can be read and reviewed; the build turns each into a byte
 * array (scripts/embed.cmake) so the binary needs nothing beside it.
 */
#ifndef RACKLLM_EMBEDDED_H
#define RACKLLM_EMBEDDED_H

#include <stddef.h>

/* The contents of data/NAME (NUL-terminated; size excludes the NUL), or NULL. */
const unsigned char *rl_embedded_find(const char *name, size_t *size);

#endif
