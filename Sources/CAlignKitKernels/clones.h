// AK_CLONES: compile a function for AVX-512, for AVX2 + FMA and for the baseline, and pick one when the
// program loads (target_clones: an ifunc whose resolver reads the CPU's features).
//
// The middle clone must name a feature level, not a CPU: "arch=haswell" is resolved by asking whether
// the CPU *is* a Haswell-family Intel part, so an AMD Zen (which has every Haswell feature) fell through
// to the SSE2 baseline. "arch=x86-64-v3" (AVX2, FMA, BMI1/2, F16C, MOVBE) is resolved by features.
#ifndef AK_CLONES_H
#define AK_CLONES_H

#if defined(__x86_64__) && defined(__linux__) && defined(__clang__)
#define AK_CLONES __attribute__((target_clones("avx512f", "arch=x86-64-v3", "default")))
#else
#define AK_CLONES
#endif

#endif
