/*
 * avxvnni_kernels.c — the VNNI kernels (vnni_body.h) with 256-bit vectors and
 * panels of 8 weight rows, for CPUs with AVX-VNNI but no AVX-512 (Intel
 * Alder Lake and later clients, Sierra Forest E-core Xeons); compiler flags
 * in CMakeLists.txt. Exports kern_impl_avxvnni.
 */
#define VNNI_BITS 256
#define IMPL_NAME kern_impl_avxvnni
#define IMPL_LABEL "avxvnni"
#include "vnni_body.h"
