/*
 * avx512_kernels.c — the VNNI kernels (vnni_body.h) with 512-bit vectors and
 * panels of 16 weight rows, for CPUs with AVX-512 F/BW/VL/DQ + VNNI (Intel
 * Ice Lake / Sapphire Rapids and later servers, AMD Zen 4 and Zen 5);
 * compiler flags in CMakeLists.txt. Exports kern_impl_avx512.
 */
#define VNNI_BITS 512
#define IMPL_NAME kern_impl_avx512
#define IMPL_LABEL "avx512"
#include "vnni_body.h"
