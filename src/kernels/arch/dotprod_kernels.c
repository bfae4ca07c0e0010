/*
 * dotprod_kernels.c — the aarch64 kernels (neon_body.h) built for the dotprod level
 * (compiler flags in CMakeLists.txt); exports kern_impl_dotprod.
 */
#define ARM_LEVEL 1
#define IMPL_NAME kern_impl_dotprod
#define IMPL_LABEL "dotprod"
#include "neon_body.h"
