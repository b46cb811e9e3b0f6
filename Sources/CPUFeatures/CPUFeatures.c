#include "CPUFeatures.h"

int charlm_cpu_vector_bits(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return 512;
    if (__builtin_cpu_supports("avx2")) return 256;
    return 128;
#else
    return 128;
#endif
}
