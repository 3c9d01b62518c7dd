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

// R rows of A against 32 columns of B; inlined with R constant for a full block of 8 rows (the
// accumulators stay in registers) and with R variable for the last rows.
static inline __attribute__((always_inline, target("avx512f")))
void skinny_nn_rows(int64_t R, int64_t k, const float *a, int64_t rsa, int64_t csa, const float *b, int64_t ldb,
                    float *c, int64_t ldc, int beta, __mmask16 m0, __mmask16 m1) {
    __m512 acc[SKINNY_ROWS][2];
    for (int r = 0; r < SKINNY_ROWS; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = _mm512_setzero_ps(); }
    for (int64_t p = 0; p < k; p++, b += ldb) {
        __m512 b0 = _mm512_maskz_loadu_ps(m0, b), b1 = _mm512_maskz_loadu_ps(m1, b + 16);
        for (int r = 0; r < R; r++) {
            __m512 x = _mm512_set1_ps(a[r * rsa + p * csa]);
            acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
        }
    }
    for (int r = 0; r < R; r++) {
        float *cr = c + r * ldc;
        if (beta) {
            acc[r][0] = _mm512_add_ps(acc[r][0], _mm512_maskz_loadu_ps(m0, cr));
            acc[r][1] = _mm512_add_ps(acc[r][1], _mm512_maskz_loadu_ps(m1, cr + 16));
        }
        _mm512_mask_storeu_ps(cr, m0, acc[r][0]);
        _mm512_mask_storeu_ps(cr + 16, m1, acc[r][1]);
    }
}

__attribute__((target("avx512f")))
void ak_sgemm_skinny_nn_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                               const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    for (int64_t i0 = 0; i0 < m; i0 += SKINNY_ROWS) {
        int64_t rows = m - i0 < SKINNY_ROWS ? m - i0 : SKINNY_ROWS;
        for (int64_t j0 = 0; j0 < n; j0 += 32) {
            int64_t w = n - j0;
            __mmask16 m0 = w >= 16 ? 0xFFFF : (__mmask16)((1u << w) - 1);
            __mmask16 m1 = w >= 32 ? 0xFFFF : (w > 16 ? (__mmask16)((1u << (w - 16)) - 1) : 0);
            const float *ai = a + i0 * rsa;
            float *cij = c + i0 * ldc + j0;
            if (rows == SKINNY_ROWS) skinny_nn_rows(SKINNY_ROWS, k, ai, rsa, csa, b + j0, ldb, cij, ldc, beta, m0, m1);
            else skinny_nn_rows(rows, k, ai, rsa, csa, b + j0, ldb, cij, ldc, beta, m0, m1);
        }
    }
}

__attribute__((target("avx512f")))
void ak_sgemm_skinny_nt_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                               const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    if (csa != 1) { ak_sgemm_skinny_nt_portable(m, n, k, a, rsa, csa, b, ldb, c, ldc, beta); return; }
    for (int64_t i0 = 0; i0 < m; i0 += SKINNY_ROWS) {
        int64_t rows = m - i0 < SKINNY_ROWS ? m - i0 : SKINNY_ROWS;
        const float *ai = a + i0 * rsa;
        int64_t j = 0;
        for (; j + 2 <= n; j += 2) {
            const float *b0 = b + j * ldb, *b1 = b0 + ldb;
            __m512 acc[SKINNY_ROWS][2];
            for (int r = 0; r < SKINNY_ROWS; r++) { acc[r][0] = _mm512_setzero_ps(); acc[r][1] = _mm512_setzero_ps(); }
            for (int64_t p = 0; p < k; p += 16) {
                __mmask16 mk = k - p >= 16 ? 0xFFFF : (__mmask16)((1u << (k - p)) - 1);
                __m512 v0 = _mm512_maskz_loadu_ps(mk, b0 + p), v1 = _mm512_maskz_loadu_ps(mk, b1 + p);
                for (int r = 0; r < rows; r++) {
                    __m512 x = _mm512_maskz_loadu_ps(mk, ai + r * rsa + p);
                    acc[r][0] = _mm512_fmadd_ps(x, v0, acc[r][0]);
                    acc[r][1] = _mm512_fmadd_ps(x, v1, acc[r][1]);
                }
            }
            for (int r = 0; r < rows; r++) {
                float *cr = c + (i0 + r) * ldc + j;
                float s0 = _mm512_reduce_add_ps(acc[r][0]), s1 = _mm512_reduce_add_ps(acc[r][1]);
                cr[0] = beta ? cr[0] + s0 : s0;
                cr[1] = beta ? cr[1] + s1 : s1;
            }
        }
        if (j < n) ak_sgemm_skinny_nt_portable(rows, n - j, k, ai, rsa, 1, b + j * ldb, ldb, c + i0 * ldc + j, ldc, beta);
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
