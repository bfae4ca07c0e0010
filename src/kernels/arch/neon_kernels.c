/*
 * neon_kernels.c — the aarch64 kernels (neon_body.h) built for the neon level
 * (compiler flags in CMakeLists.txt); exports kern_impl_neon.
 */
#define ARM_LEVEL 0
#define IMPL_NAME kern_impl_neon
#define IMPL_LABEL "neon"
#include "neon_body.h"
