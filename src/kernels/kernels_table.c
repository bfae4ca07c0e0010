/*
 * kernels_table.c — which SIMD tables this build has. CMake defines
 * RACKLLM_HAVE_<LEVEL> when src/kernels/arch/ has that level's files for the target.
 */
#include "kernels_impl.h"

#ifdef RACKLLM_HAVE_AVX2
extern const kern_impl kern_impl_avx2;
#endif
#ifdef RACKLLM_HAVE_AVXVNNI
extern const kern_impl kern_impl_avxvnni;
#endif
#ifdef RACKLLM_HAVE_AVX512
extern const kern_impl kern_impl_avx512;
#endif
#ifdef RACKLLM_HAVE_NEON
extern const kern_impl kern_impl_neon;
#endif
#ifdef RACKLLM_HAVE_DOTPROD
extern const kern_impl kern_impl_dotprod;
#endif
#ifdef RACKLLM_HAVE_I8MM
extern const kern_impl kern_impl_i8mm;
#endif

const kern_impl *kern_impl_for(kern_level level) {
    switch (level) {
#ifdef RACKLLM_HAVE_AVX2
    case KERN_AVX2: return &kern_impl_avx2;
#endif
#ifdef RACKLLM_HAVE_AVXVNNI
    case KERN_AVXVNNI: return &kern_impl_avxvnni;
#endif
#ifdef RACKLLM_HAVE_AVX512
    case KERN_AVX512: return &kern_impl_avx512;
#endif
#ifdef RACKLLM_HAVE_NEON
    case KERN_NEON: return &kern_impl_neon;
#endif
#ifdef RACKLLM_HAVE_DOTPROD
    case KERN_DOTPROD: return &kern_impl_dotprod;
#endif
#ifdef RACKLLM_HAVE_I8MM
    case KERN_I8MM: return &kern_impl_i8mm;
#endif
    default: return NULL;
    }
}
