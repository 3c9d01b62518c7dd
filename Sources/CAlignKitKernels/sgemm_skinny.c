// Skinny products (a few rows of A against a large B, as in sampling one token at a time): no
// packing. The packed GEMM copies all of B into panels on every call, which for M ≤ 8 costs more
// than the product; these kernels stream B once, straight from memory.
//
//   nn: C[i, j] = Σ_p A(i, p) B[p, j]   B row-major K × N: each B row is loaded once and used by
//       every row of A (A(i, p) broadcast), 32 columns (two zmm) at a time.
//   nt: C[i, j] = Σ_p A[i, p] B[j, p]   B row-major N × K (a tied embedding as the head): dot
//       products along K, two columns of C at a time, reduced at the end.
// A(i, p) is read at a[i * rsa + p * csa]; C = beta · C + A B with beta 0 (C not read) or 1.
#include "CAlignKitKernels.h"
#include <string.h>

void ak_sgemm_skinny_nn_portable(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                                 const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    for (int64_t j0 = 0; j0 < n; j0 += 64) {
        int64_t w = n - j0 < 64 ? n - j0 : 64;
        for (int64_t i = 0; i < m; i++) {
            float acc[64];
            for (int64_t j = 0; j < w; j++) acc[j] = beta ? c[i * ldc + j0 + j] : 0.0f;
            for (int64_t p = 0; p < k; p++) {
                float x = a[i * rsa + p * csa];
                const float *row = b + p * ldb + j0;
                for (int64_t j = 0; j < w; j++) acc[j] += x * row[j];
            }
            for (int64_t j = 0; j < w; j++) c[i * ldc + j0 + j] = acc[j];
        }
    }
}

void ak_sgemm_skinny_nt_portable(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                                 const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    for (int64_t j = 0; j < n; j++) {
        const float *row = b + j * ldb;
        for (int64_t i = 0; i < m; i++) {
            float s = 0.0f;
            for (int64_t p = 0; p < k; p++) s += a[i * rsa + p * csa] * row[p];
            c[i * ldc + j] = beta ? c[i * ldc + j] + s : s;
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

#define SKINNY_ROWS 8
#define NN_DEPTH 8

// C tile (rows i, columns j..j+16 under mask) += Σ_q x[q] · B[q, j..], q < NN_DEPTH, B rows ldb apart;
// two partial sums halve the dependency chain.
static inline __attribute__((always_inline, target("avx512f")))
void nn_update(const __m512 x[NN_DEPTH], const float *b, int64_t ldb, float *c, __mmask16 mask) {
    __m512 s = _mm512_maskz_loadu_ps(mask, c), t = _mm512_setzero_ps();
    for (int q = 0; q < NN_DEPTH; q += 2) {
        s = _mm512_fmadd_ps(x[q], _mm512_maskz_loadu_ps(mask, b + q * ldb), s);
        t = _mm512_fmadd_ps(x[q + 1], _mm512_maskz_loadu_ps(mask, b + (q + 1) * ldb), t);
    }
    _mm512_mask_storeu_ps(c, mask, _mm512_add_ps(s, t));
}

// nn: a tile of C (all m rows, up to 16 KB) stays in L1 and accumulates in place while B streams
// through in blocks of NN_DEPTH rows, each row read as one contiguous run. Walking B down a 32-column
// strip instead (accumulators in registers) touched a new page at every k step, which left the
// hardware prefetchers and the TLB behind: 17 GFLOP/s at m = 8.
__attribute__((target("avx512f")))
void ak_sgemm_skinny_nn_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                               const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    int64_t width = (4096 / m) / 16 * 16;
    if (width > 2048) width = 2048;
    for (int64_t j0 = 0; j0 < n; j0 += width) {
        int64_t w = n - j0 < width ? n - j0 : width;
        int64_t full = w / 16 * 16;
        __mmask16 tail = (__mmask16)((1u << (w - full)) - 1u);
        if (!beta) for (int64_t i = 0; i < m; i++) memset(c + i * ldc + j0, 0, (size_t)w * sizeof(float));
        int64_t p = 0;
        for (; p + NN_DEPTH <= k; p += NN_DEPTH) {
            const float *bp = b + p * ldb + j0;
            // While row i works, it prefetches its share of the next block's B rows into L2, so that
            // memory keeps streaming while the other rows compute from L1. Below 4 rows there is little
            // compute to hide behind (one row would issue all 8 rows' prefetches); it was not faster at
            // batch 1 in my runs, so it is off there.
            const float *next = m >= 4 && p + 2 * NN_DEPTH <= k ? bp + NN_DEPTH * ldb : NULL;
            for (int64_t i = 0; i < m; i++) {
                __m512 x[NN_DEPTH];
                for (int q = 0; q < NN_DEPTH; q++) x[q] = _mm512_set1_ps(a[i * rsa + (p + q) * csa]);
                float *ci = c + i * ldc + j0;
                int64_t q0 = i * NN_DEPTH / m, q1 = (i + 1) * NN_DEPTH / m;
                for (int64_t j = 0; j < full; j += 16) {
                    nn_update(x, bp + j, ldb, ci + j, 0xFFFF);
                    if (next) for (int64_t q = q0; q < q1; q++) _mm_prefetch((const char *)(next + q * ldb + j), _MM_HINT_T1);
                }
                if (tail) nn_update(x, bp + full, ldb, ci + full, tail);
            }
        }
        for (; p < k; p++) {
            const float *bp = b + p * ldb + j0;
            for (int64_t i = 0; i < m; i++) {
                __m512 x = _mm512_set1_ps(a[i * rsa + p * csa]);
                float *ci = c + i * ldc + j0;
                for (int64_t j = 0; j < w; j += 16) {
                    __mmask16 mask = w - j >= 16 ? (__mmask16)0xFFFF : tail;
                    _mm512_mask_storeu_ps(ci + j, mask, _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(mask, bp + j),
                                                                        _mm512_maskz_loadu_ps(mask, ci + j)));
                }
            }
        }
    }
}

// nt for R rows of A (R constant after inlining, so the R x J accumulators stay in registers): J rows of
// B (each a contiguous run along k) at a time, dot products reduced at the end.
static inline __attribute__((always_inline, target("avx512f")))
void nt_rows(const int R, int64_t n, int64_t k, const float *a, int64_t rsa, const float *b, int64_t ldb,
             float *c, int64_t ldc, int beta) {
    enum { J = 4 };
    const int columns = R <= 4 ? J : 2;
    int64_t j = 0;
    for (; j < n; j += columns) {
        const int cols = n - j < columns ? (int)(n - j) : columns;
        __m512 acc[SKINNY_ROWS][J];
        for (int r = 0; r < R; r++) for (int q = 0; q < J; q++) acc[r][q] = _mm512_setzero_ps();
        for (int64_t p = 0; p < k; p += 16) {
            __mmask16 mk = k - p >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (k - p)) - 1u);
            __m512 v[J];
            for (int q = 0; q < columns; q++) v[q] = _mm512_maskz_loadu_ps(q < cols ? mk : 0, b + (j + (q < cols ? q : 0)) * ldb + p);
            // The rows four groups ahead, into L1: the hardware prefetcher alone left the loop waiting on
            // memory (m = 8, k = 384, n = 8192 from memory: 25 -> 47 GFLOP/s; m = 1: 10.6 -> 13 GB/s).
            if (j + 5 * columns <= n)
                for (int q = 0; q < columns; q++) _mm_prefetch((const char *)(b + (j + 4 * columns + q) * ldb + p), _MM_HINT_T0);
            for (int r = 0; r < R; r++) {
                __m512 x = _mm512_maskz_loadu_ps(mk, a + r * rsa + p);
                for (int q = 0; q < columns; q++) acc[r][q] = _mm512_fmadd_ps(x, v[q], acc[r][q]);
            }
        }
        for (int r = 0; r < R; r++) {
            float *cr = c + r * ldc + j;
            for (int q = 0; q < cols; q++) {
                float s = _mm512_reduce_add_ps(acc[r][q]);
                cr[q] = beta ? cr[q] + s : s;
            }
        }
    }
}

__attribute__((target("avx512f")))
void ak_sgemm_skinny_nt_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                               const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    if (csa != 1) { ak_sgemm_skinny_nt_portable(m, n, k, a, rsa, csa, b, ldb, c, ldc, beta); return; }
    for (int64_t i0 = 0; i0 < m; i0 += SKINNY_ROWS) {
        const float *ai = a + i0 * rsa;
        float *ci = c + i0 * ldc;
        switch (m - i0 < SKINNY_ROWS ? m - i0 : SKINNY_ROWS) {
        case 1: nt_rows(1, n, k, ai, rsa, b, ldb, ci, ldc, beta); break;
        case 2: nt_rows(2, n, k, ai, rsa, b, ldb, ci, ldc, beta); break;
        case 3: nt_rows(3, n, k, ai, rsa, b, ldb, ci, ldc, beta); break;
        case 4: nt_rows(4, n, k, ai, rsa, b, ldb, ci, ldc, beta); break;
        case 5: nt_rows(5, n, k, ai, rsa, b, ldb, ci, ldc, beta); break;
        case 6: nt_rows(6, n, k, ai, rsa, b, ldb, ci, ldc, beta); break;
        case 7: nt_rows(7, n, k, ai, rsa, b, ldb, ci, ldc, beta); break;
        default: nt_rows(8, n, k, ai, rsa, b, ldb, ci, ldc, beta); break;
        }
    }
}
#else
void ak_sgemm_skinny_nn_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                               const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    ak_sgemm_skinny_nn_portable(m, n, k, a, rsa, csa, b, ldb, c, ldc, beta);
}
void ak_sgemm_skinny_nt_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                               const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    ak_sgemm_skinny_nt_portable(m, n, k, a, rsa, csa, b, ldb, c, ldc, beta);
}
#endif
