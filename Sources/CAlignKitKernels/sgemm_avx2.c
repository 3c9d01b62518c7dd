// AVX2 + FMA SGEMM micro-kernel, 6 x 16: 12 ymm accumulators (the classic Haswell shape).
//
// Two ways to read A: from a packed panel (for each k step, 6 consecutive values), or, for a row-major A,
// straight from its rows (`_rows`): the kernel broadcasts each A value from memory either way, and a
// few panels' rows stay in L2 while each B panel (in L1) meets them in turn, so packing A is a copy that
// buys nothing here. Reading a transposed A in place instead (6 values from a new cache line at every k step)
// was 10-13% slower than packing it.
#include "CAlignKitKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define MR 6
#define NR 16

// C (mr x nr of the tile) = beta·C + the accumulators, then + bias[j] in each column j when `bias` is not null:
// the same two roundings as adding the bias to the stored tile afterwards, without reading the tile back.
static inline __attribute__((always_inline, target("avx2,fma")))
void store_tile(const __m256 *c0, const __m256 *c1, float *c, int64_t ldc, int64_t mr, int64_t nr, int beta,
                const float *bias) {
    if (mr == MR && nr == NR) {
        __m256 bias0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
        __m256 bias1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
        for (int i = 0; i < MR; i++) {
            float *ci = c + i * ldc;
            __m256 v0 = c0[i], v1 = c1[i];
            if (beta) { v0 = _mm256_add_ps(_mm256_loadu_ps(ci), v0); v1 = _mm256_add_ps(_mm256_loadu_ps(ci + 8), v1); }
            if (bias) { v0 = _mm256_add_ps(v0, bias0); v1 = _mm256_add_ps(v1, bias1); }
            _mm256_storeu_ps(ci, v0);
            _mm256_storeu_ps(ci + 8, v1);
        }
        return;
    }
    // Edge tile: spill to a scratch tile, then copy the valid part.
    float tile[MR * NR];
    for (int i = 0; i < MR; i++) { _mm256_storeu_ps(tile + i * NR, c0[i]); _mm256_storeu_ps(tile + i * NR + 8, c1[i]); }
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++) {
            float v = (beta ? c[i * ldc + j] : 0.0f) + tile[i * NR + j];
            c[i * ldc + j] = bias ? v + bias[j] : v;
        }
}

// The tile of C comes toward L1 while the k loop runs: its rows are read (beta 1) or written at the end, and a
// row of C is often in no cache by then (an L3 or DRAM miss per row, after every KC-deep slice).
static inline __attribute__((always_inline)) void prefetch_tile(const float *c, int64_t ldc, int64_t mr) {
    for (int64_t i = 0; i < mr; i++) {
        __builtin_prefetch(c + i * ldc, 1, 3);
        __builtin_prefetch(c + i * ldc + NR - 1, 1, 3);
    }
}

static inline __attribute__((always_inline, target("avx2,fma")))
void kernel_packed(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int64_t mr, int64_t nr, int beta,
                   const float *bias) {
    __m256 c0[MR], c1[MR];
    for (int i = 0; i < MR; i++) { c0[i] = _mm256_setzero_ps(); c1[i] = _mm256_setzero_ps(); }
    prefetch_tile(c, ldc, mr);
    for (int64_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b);
        __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
        }
        a += MR;
        b += NR;
    }
    store_tile(c0, c1, c, ldc, mr, nr, beta, bias);
}

static inline __attribute__((always_inline, target("avx2,fma")))
void kernel_rows(int64_t kc, const float *a, int64_t lda, const float *b, float *c, int64_t ldc, int64_t mr, int64_t nr, int beta,
                 const float *bias) {
    __m256 c0[MR], c1[MR];
    for (int i = 0; i < MR; i++) { c0[i] = _mm256_setzero_ps(); c1[i] = _mm256_setzero_ps(); }
    prefetch_tile(c, ldc, mr);
    // Six sequential streams; rows past mr repeat the last one (their sums are dropped).
    const float *row[MR];
    for (int i = 0; i < MR; i++) row[i] = a + (i < mr ? i : mr - 1) * lda;
    for (int64_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_loadu_ps(b);
        __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma clang loop unroll(full)
        for (int i = 0; i < MR; i++) {
            __m256 ai = _mm256_broadcast_ss(row[i] + p);
            c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
            c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
        }
        b += NR;
    }
    store_tile(c0, c1, c, ldc, mr, nr, beta, bias);
}

__attribute__((target("avx2,fma")))
void ak_sgemm_kernel_avx2_6x16(int64_t kc, const float *a, const float *b, float *c,
                               int64_t ldc, int64_t mr, int64_t nr, int beta) {
    kernel_packed(kc, a, b, c, ldc, mr, nr, beta, 0);
}

__attribute__((target("avx2,fma")))
void ak_sgemm_kernel_avx2_6x16_rows(int64_t kc, const float *a, int64_t lda, const float *b,
                                    float *c, int64_t ldc, int64_t mr, int64_t nr, int beta) {
    kernel_rows(kc, a, lda, b, c, ldc, mr, nr, beta, 0);
}

__attribute__((target("avx2,fma")))
void ak_sgemm_avx2_6x16_rows_column(int64_t kc, const float *a, int64_t lda, const float *b, float *c, int64_t ldc,
                                    int64_t rows, int64_t nr, int beta, const float *bias) {
    for (int64_t i = 0; i < rows; i += MR) {
        int64_t mr = rows - i < MR ? rows - i : MR;
        kernel_rows(kc, a + i * lda, lda, b, c + i * ldc, ldc, mr, nr, beta, bias);
    }
}

__attribute__((target("avx2,fma")))
void ak_sgemm_avx2_6x16_column(int64_t kc, const float *a, int64_t panelStride, const float *b, float *c, int64_t ldc,
                               int64_t rows, int64_t nr, int beta, const float *bias) {
    for (int64_t i = 0; i < rows; i += MR) {
        int64_t mr = rows - i < MR ? rows - i : MR;
        kernel_packed(kc, a + i / MR * panelStride, b, c + i * ldc, ldc, mr, nr, beta, bias);
    }
}

#else
void ak_sgemm_kernel_avx2_6x16(int64_t kc, const float *a, const float *b, float *c,
                               int64_t ldc, int64_t mr, int64_t nr, int beta) {
    (void)kc; (void)a; (void)b; (void)c; (void)ldc; (void)mr; (void)nr; (void)beta;
}
void ak_sgemm_kernel_avx2_6x16_rows(int64_t kc, const float *a, int64_t lda, const float *b,
                                    float *c, int64_t ldc, int64_t mr, int64_t nr, int beta) {
    (void)kc; (void)a; (void)lda; (void)b; (void)c; (void)ldc; (void)mr; (void)nr; (void)beta;
}
void ak_sgemm_avx2_6x16_rows_column(int64_t kc, const float *a, int64_t lda, const float *b, float *c, int64_t ldc,
                                    int64_t rows, int64_t nr, int beta, const float *bias) {
    (void)kc; (void)a; (void)lda; (void)b; (void)c; (void)ldc; (void)rows; (void)nr; (void)beta; (void)bias;
}
void ak_sgemm_avx2_6x16_column(int64_t kc, const float *a, int64_t panelStride, const float *b, float *c, int64_t ldc,
                               int64_t rows, int64_t nr, int beta, const float *bias) {
    (void)kc; (void)a; (void)panelStride; (void)b; (void)c; (void)ldc; (void)rows; (void)nr; (void)beta; (void)bias;
}
#endif
