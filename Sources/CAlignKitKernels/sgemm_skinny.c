// Skinny products (a few rows of A against a large B, as in sampling one token at a time): no
// packing. The packed GEMM copies all of B into panels on every call, which for M ≤ 8 costs more
// than the product; these kernels stream B once, straight from memory.
//
//   nn: C[i, j] = Σ_p A(i, p) B[p, j]   B row-major K × N: each B vector is loaded once and used by
//       every row of A (A(i, p) broadcast), 32 or 64 columns at a time.
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
#define NN_BLOCK 16

// C[0..R, 0..16V) += Σ_q<d A(r, q) B[q, 0..16V): R x V accumulators in registers over d rows of B (a
// strip of 16V columns), masked columns read as zero and not stored.
static inline __attribute__((always_inline, target("avx512f")))
void nn_strip(const int R, const int V, int64_t d, const float *a, int64_t rsa, int64_t csa,
              const float *b, int64_t ldb, float *c, int64_t ldc, const __mmask16 *masks) {
    __m512 acc[SKINNY_ROWS][4];
    for (int r = 0; r < R; r++) for (int v = 0; v < V; v++) acc[r][v] = _mm512_maskz_loadu_ps(masks[v], c + r * ldc + 16 * v);
    for (int64_t q = 0; q < d; q++) {
        __m512 bv[4];
        for (int v = 0; v < V; v++) bv[v] = _mm512_maskz_loadu_ps(masks[v], b + q * ldb + 16 * v);
        for (int r = 0; r < R; r++) {
            __m512 x = _mm512_set1_ps(a[r * rsa + q * csa]);
            for (int v = 0; v < V; v++) acc[r][v] = _mm512_fmadd_ps(x, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < R; r++) for (int v = 0; v < V; v++) _mm512_mask_storeu_ps(c + r * ldc + 16 * v, masks[v], acc[r][v]);
}

// nn for R rows of A (R constant after inlining): a tile of C (R x width, at most 32 KB) stays in L1 while
// B goes by in blocks of NN_BLOCK rows; within a block, each strip of 16V columns runs down the block's
// rows with its R x V accumulators in registers (1 broadcast of A per row and step serves V vectors), and
// prefetches the same strip of the next block into L2. An earlier kernel that accumulated in the C tile
// itself (a load and a store of C for every 8 multiply-adds) reached 50-70 GFLOP/s at 8 rows on 2 threads
// against 75-90 for this one (8 x 384 x 1536 and 8 x 1536 x 384, weights cycling from memory); at one
// row both stream B at the same rate. Walking a strip down all of K instead touched a new page at every
// step and left the hardware prefetchers behind (17 GFLOP/s at 8 rows).
static inline __attribute__((always_inline, target("avx512f")))
void nn_rows(const int R, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
             const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    const int V = R <= 3 ? 4 : 2;
    const int64_t strip = 16 * V;
    int64_t width = (8192 / R) / strip * strip;
    for (int64_t j0 = 0; j0 < n; j0 += width) {
        int64_t w = n - j0 < width ? n - j0 : width;
        if (!beta) for (int r = 0; r < R; r++) memset(c + r * ldc + j0, 0, (size_t)w * sizeof(float));
        for (int64_t p = 0; p < k; p += NN_BLOCK) {
            int64_t d = k - p < NN_BLOCK ? k - p : NN_BLOCK;
            int64_t dn = k - p - d < NN_BLOCK ? k - p - d : NN_BLOCK;  // rows in the next block
            const float *bp = b + p * ldb + j0;
            for (int64_t j = 0; j < w; j += strip) {
                __mmask16 masks[4];
                for (int v = 0; v < V; v++) {
                    int64_t left = w - j - 16 * v;
                    masks[v] = left >= 16 ? (__mmask16)0xFFFF : (left <= 0 ? 0 : (__mmask16)((1u << left) - 1u));
                }
                for (int64_t q = 0; q < dn; q++)
                    for (int v = 0; v < V; v++)
                        if (masks[v]) _mm_prefetch((const char *)(bp + (NN_BLOCK + q) * ldb + j + 16 * v), _MM_HINT_T1);
                nn_strip(R, V, d, a + p * csa, rsa, csa, bp + j, ldb, c + j0 + j, ldc, masks);
            }
        }
    }
}

__attribute__((target("avx512f")))
void ak_sgemm_skinny_nn_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                               const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    for (int64_t i0 = 0; i0 < m; i0 += SKINNY_ROWS) {
        const float *ai = a + i0 * rsa;
        float *ci = c + i0 * ldc;
        switch (m - i0 < SKINNY_ROWS ? m - i0 : SKINNY_ROWS) {
        case 1: nn_rows(1, n, k, ai, rsa, csa, b, ldb, ci, ldc, beta); break;
        case 2: nn_rows(2, n, k, ai, rsa, csa, b, ldb, ci, ldc, beta); break;
        case 3: nn_rows(3, n, k, ai, rsa, csa, b, ldb, ci, ldc, beta); break;
        case 4: nn_rows(4, n, k, ai, rsa, csa, b, ldb, ci, ldc, beta); break;
        case 5: nn_rows(5, n, k, ai, rsa, csa, b, ldb, ci, ldc, beta); break;
        case 6: nn_rows(6, n, k, ai, rsa, csa, b, ldb, ci, ldc, beta); break;
        case 7: nn_rows(7, n, k, ai, rsa, csa, b, ldb, ci, ldc, beta); break;
        default: nn_rows(8, n, k, ai, rsa, csa, b, ldb, ci, ldc, beta); break;
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
