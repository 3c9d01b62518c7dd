// AVX2 GEMM packing: the interleave (a transpose into panels, B's when it is stored transposed: the weight
// products of a backward pass, the head's logits, attention's Q Kᵀ) as 8 x 8 in-register transposes.
// The compiled loop of pack.c moved one float at a time (a load and a store each, with its row pointers
// spilled to the stack): about 2 cycles a float on an AMD Zen 3.
#include "CAlignKitKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

// r[q] becomes column q of the 8 x 8 block whose rows were r[0..7]: unpack ps, shuffle, then 128-bit halves.
__attribute__((target("avx2")))
static inline void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 4; i++) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int g = 0; g < 2; g++) {
        u[4 * g] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
        u[4 * g + 1] = _mm256_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
        u[4 * g + 2] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
        u[4 * g + 3] = _mm256_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
    }
    // u[j] (rows 0-3) and u[4 + j] (rows 4-7) hold columns j and 4 + j, one in each 128-bit half.
    for (int j = 0; j < 4; j++) {
        r[j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x20);
        r[4 + j] = _mm256_permute2f128_ps(u[j], u[4 + j], 0x31);
    }
}

__attribute__((target("avx2")))
void ak_pack_interleave_avx2(const float *src, int64_t ld, int64_t rows, int64_t count, int64_t width, float *dst) {
    int64_t p = 0;
    for (; p + 8 <= count; p += 8) {
        for (int64_t base = 0; base < width; base += 8) {
            int64_t group = width - base < 8 ? width - base : 8;
            __m256 r[8];
            for (int64_t i = 0; i < 8; i++) {
                int64_t row = base + i;
                r[i] = (i < group && row < rows) ? _mm256_loadu_ps(src + row * ld + p) : _mm256_setzero_ps();
                // The same line of the next panel's row (callers pack panel after panel): a panel's rows are
                // runs of KC floats, too short for the hardware's prefetcher to follow. For the last panel the
                // address lies past the matrix, which a prefetch reads nothing from and does not fault on.
                if ((p & 15) == 0 && i < group && row < rows) __builtin_prefetch(src + (row + width) * ld + p, 0, 3);
            }
            transpose8(r);
            if (group == 8) {
                for (int q = 0; q < 8; q++) _mm256_storeu_ps(dst + (p + q) * width + base, r[q]);
            } else {
                __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)group), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
                for (int q = 0; q < 8; q++) _mm256_maskstore_ps(dst + (p + q) * width + base, mask, r[q]);
            }
        }
    }
    // The last few columns (fewer than a transpose's worth): the portable interleave.
    if (p < count) ak_pack_interleave(src + p, ld, rows, count - p, width, dst + p * width);
}
#else
void ak_pack_interleave_avx2(const float *src, int64_t ld, int64_t rows, int64_t count, int64_t width, float *dst) {
    ak_pack_interleave(src, ld, rows, count, width, dst);
}
#endif
