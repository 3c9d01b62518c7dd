// Runtime CPU feature detection for kernel dispatch (GCC/Clang __builtin_cpu_supports).
#define _GNU_SOURCE 1
#include "CAlignKitKernels.h"

int ak_cpu_features(void) {
    int features = 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) features |= AK_CPU_AVX2_FMA;
    if (__builtin_cpu_supports("avx512f")) features |= AK_CPU_AVX512F;
    if (__builtin_cpu_supports("avx512bf16")) features |= AK_CPU_AVX512_BF16;
    if (__builtin_cpu_supports("amx-bf16")) features |= AK_CPU_AMX_BF16;
#endif
    return features;
}

#if defined(__linux__)
#include <sched.h>
int ak_pin_current_thread(int core) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core, &set);
    return sched_setaffinity(0, sizeof(set), &set);
}
#else
int ak_pin_current_thread(int core) { (void)core; return -1; }
#endif
