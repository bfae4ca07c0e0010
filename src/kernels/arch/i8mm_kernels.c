/*
 * i8mm_kernels.c — the aarch64 kernels (neon_body.h) built for the i8mm level
 * (compiler flags in CMakeLists.txt); exports kern_impl_i8mm.
 */
#define ARM_LEVEL 2
#define IMPL_NAME kern_impl_i8mm
#define IMPL_LABEL "i8mm"
#include "neon_body.h"
