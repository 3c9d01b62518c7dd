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

// B's values are fp32, or bf16 (BF = 1: a bf16 copy of a weight matrix, see ak_sgemm_skinny_nn_bf16_avx512).
// BF is a constant after inlining. A bf16 load reads 16 values (32 bytes) whatever the mask, so a bf16
// matrix needs padding after its end (nn reads up to 63 values past the last row's end: a strip's vectors
// past the tile's width are fully masked but still read); masked-off lanes come out zero.
static inline __attribute__((always_inline, target("avx512f")))
__m512 load_b(const int BF, const void *b, int64_t index, __mmask16 mask) {
    if (BF) {
        __m256i h = _mm256_loadu_si256((const __m256i *)((const uint16_t *)b + index));
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_maskz_cvtepu16_epi32(mask, h), 16));
    }
    return _mm512_maskz_loadu_ps(mask, (const float *)b + index);
}

static inline __attribute__((always_inline))
const char *b_address(const int BF, const void *b, int64_t index) {
    return BF ? (const char *)((const uint16_t *)b + index) : (const char *)((const float *)b + index);
}

// C[0..R, 0..16V) += Σ_q<d A(r, q) B[q, 0..16V): R x V accumulators in registers over d rows of B (a
// strip of 16V columns), masked columns read as zero and not stored. b points at the strip's first value.
static inline __attribute__((always_inline, target("avx512f")))
void nn_strip(const int R, const int V, const int BF, int64_t d, const float *a, int64_t rsa, int64_t csa,
              const void *b, int64_t ldb, float *c, int64_t ldc, const __mmask16 *masks) {
    __m512 acc[SKINNY_ROWS][4];
    for (int r = 0; r < R; r++) for (int v = 0; v < V; v++) acc[r][v] = _mm512_maskz_loadu_ps(masks[v], c + r * ldc + 16 * v);
    for (int64_t q = 0; q < d; q++) {
        __m512 bv[4];
        for (int v = 0; v < V; v++) bv[v] = load_b(BF, b, q * ldb + 16 * v, masks[v]);
        for (int r = 0; r < R; r++) {
            __m512 x = _mm512_set1_ps(a[r * rsa + q * csa]);
            for (int v = 0; v < V; v++) acc[r][v] = _mm512_fmadd_ps(x, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < R; r++) for (int v = 0; v < V; v++) _mm512_mask_storeu_ps(c + r * ldc + 16 * v, masks[v], acc[r][v]);
}

// nn for R rows of A (R constant after inlining): a tile of C (R x width, 8 KB) stays in L1 while
// B goes by in blocks of NN_BLOCK rows; within a block, each strip of 16V columns runs down the block's
// rows with its R x V accumulators in registers (1 broadcast of A per row and step serves V vectors), and
// prefetches the same strip of the next block into L2. An earlier kernel that accumulated in the C tile
// itself (a load and a store of C for every 8 multiply-adds) reached 50-70 GFLOP/s at 8 rows on 2 threads
// against 75-90 for this one (8 x 384 x 1536 and 8 x 1536 x 384, weights cycling from memory); at one
// row both stream B at the same rate. Walking a strip down all of K instead touched a new page at every
// step and left the hardware prefetchers behind (17 GFLOP/s at 8 rows). A 32 KB tile of C was slower than
// 8 KB (8 x 1536 x 384: 56-60 against 65-72 GFLOP/s; bf16 B at one row: 17-21 against 21-27).
static inline __attribute__((always_inline, target("avx512f")))
void nn_rows(const int R, const int BF, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
             const void *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    const int V = R <= 3 ? 4 : 2;
    const int64_t strip = 16 * V;
    int64_t width = (2048 / R) / strip * strip;
    for (int64_t j0 = 0; j0 < n; j0 += width) {
        int64_t w = n - j0 < width ? n - j0 : width;
        if (!beta) for (int r = 0; r < R; r++) memset(c + r * ldc + j0, 0, (size_t)w * sizeof(float));
        for (int64_t p = 0; p < k; p += NN_BLOCK) {
            int64_t d = k - p < NN_BLOCK ? k - p : NN_BLOCK;
            int64_t dn = k - p - d < NN_BLOCK ? k - p - d : NN_BLOCK;  // rows in the next block
            int64_t block = p * ldb + j0;                              // index of the block's first value
            for (int64_t j = 0; j < w; j += strip) {
                __mmask16 masks[4];
                for (int v = 0; v < V; v++) {
                    int64_t left = w - j - 16 * v;
                    masks[v] = left >= 16 ? (__mmask16)0xFFFF : (left <= 0 ? 0 : (__mmask16)((1u << left) - 1u));
                }
                for (int64_t q = 0; q < dn; q++)
                    for (int v = 0; v < V; v++)
                        if (masks[v]) _mm_prefetch(b_address(BF, b, block + (NN_BLOCK + q) * ldb + j + 16 * v), _MM_HINT_T1);
                nn_strip(R, V, BF, d, a + p * csa, rsa, csa, b_address(BF, b, block + j), ldb, c + j0 + j, ldc, masks);
            }
        }
    }
}

// nt for R rows of A (R constant after inlining, so the R x J accumulators stay in registers): J rows of
// B (each a contiguous run along k) at a time, dot products reduced at the end.
static inline __attribute__((always_inline, target("avx512f")))
void nt_rows(const int R, const int BF, int64_t n, int64_t k, const float *a, int64_t rsa, const void *b, int64_t ldb,
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
            for (int q = 0; q < columns; q++) v[q] = load_b(BF, b, (j + (q < cols ? q : 0)) * ldb + p, q < cols ? mk : 0);
            // The rows four groups ahead, into L1: the hardware prefetcher alone left the loop waiting on
            // memory (m = 8, k = 384, n = 8192 from memory: 25 -> 47 GFLOP/s; m = 1: 10.6 -> 13 GB/s).
            if (j + 5 * columns <= n)
                for (int q = 0; q < columns; q++) _mm_prefetch(b_address(BF, b, (j + 4 * columns + q) * ldb + p), _MM_HINT_T0);
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

// One case per row count (at most SKINNY_ROWS), so that R is a constant in each inlined copy.
#define EACH_ROW_COUNT(rows, CALL) switch (rows) { \
    case 1: CALL(1); break; case 2: CALL(2); break; case 3: CALL(3); break; case 4: CALL(4); break; \
    case 5: CALL(5); break; case 6: CALL(6); break; case 7: CALL(7); break; default: CALL(8); break; }

// The exported kernels: rows of A in groups of at most SKINNY_ROWS (GEMM calls them with m ≤ 8: one group).
#define EACH_ROW_GROUP(CALL) for (int64_t i0 = 0; i0 < m; i0 += SKINNY_ROWS) { \
    const float *ai = a + i0 * rsa; float *ci = c + i0 * ldc; EACH_ROW_COUNT(m - i0, CALL) }

// One row of A in fp32: B's rows streamed in order into a piece of C's row held in L1 (see
// nn_row1_piece_avx2 below, where this order was measured first). On a Sapphire Rapids-class Xeon
// (2 threads pinned), against nn_rows at one row: 1 x 384 x 1536 31-36 -> 44-64 GFLOP/s, 1 x 1536 x 384
// 29-33 -> 53-65, 1 x 4096 x 4096 15-20 -> 19-23.
#define NN_ROW1_PIECE 4096

static inline __attribute__((always_inline, target("avx512f")))
void nn_row1_piece_avx512(int64_t n, int64_t k, const float *a, int64_t csa, const float *b, int64_t ldb,
                          float *c, int beta) {
    if (!beta) memset(c, 0, (size_t)n * sizeof(float));
    // Every vector goes through a mask (all ones but at the end), as in nn_strip: a full mask costs the
    // same as an unmasked load or store on AVX-512.
    int64_t p = 0;
    for (; p + 4 <= k; p += 4) {
        const float *b0 = b + p * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
        __m512 x0 = _mm512_set1_ps(a[p * csa]), x1 = _mm512_set1_ps(a[(p + 1) * csa]);
        __m512 x2 = _mm512_set1_ps(a[(p + 2) * csa]), x3 = _mm512_set1_ps(a[(p + 3) * csa]);
        for (int64_t j = 0; j < n; j += 16) {  // two chains of two, then one add
            __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1u);
            __m512 s = _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(m, b0 + j), _mm512_maskz_loadu_ps(m, c + j));
            __m512 t = _mm512_mul_ps(x1, _mm512_maskz_loadu_ps(m, b1 + j));
            s = _mm512_fmadd_ps(x2, _mm512_maskz_loadu_ps(m, b2 + j), s);
            t = _mm512_fmadd_ps(x3, _mm512_maskz_loadu_ps(m, b3 + j), t);
            _mm512_mask_storeu_ps(c + j, m, _mm512_add_ps(s, t));
        }
    }
    for (; p < k; p++) {
        const float *b0 = b + p * ldb;
        __m512 x0 = _mm512_set1_ps(a[p * csa]);
        for (int64_t j = 0; j < n; j += 16) {
            __mmask16 m = n - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - j)) - 1u);
            _mm512_mask_storeu_ps(c + j, m, _mm512_fmadd_ps(x0, _mm512_maskz_loadu_ps(m, b0 + j), _mm512_maskz_loadu_ps(m, c + j)));
        }
    }
}

static inline __attribute__((always_inline, target("avx512f")))
void nn_row1_avx512(int64_t n, int64_t k, const float *a, int64_t csa, const float *b, int64_t ldb, float *c, int beta) {
    for (int64_t j0 = 0; j0 < n; j0 += NN_ROW1_PIECE)
        nn_row1_piece_avx512(n - j0 < NN_ROW1_PIECE ? n - j0 : NN_ROW1_PIECE, k, a, csa, b + j0, ldb, c + j0, beta);
}

#define NN_ROW_0(R) (R == 1 ? nn_row1_avx512(n, k, ai, csa, b, ldb, ci, beta) : nn_rows(R, 0, n, k, ai, rsa, csa, b, ldb, ci, ldc, beta))
#define NN_ROW_1(R) nn_rows(R, 1, n, k, ai, rsa, csa, b, ldb, ci, ldc, beta)
#define NT_ROW_0(R) nt_rows(R, 0, n, k, ai, rsa, b, ldb, ci, ldc, beta)
#define NT_ROW_1(R) nt_rows(R, 1, n, k, ai, rsa, b, ldb, ci, ldc, beta)

__attribute__((target("avx512f")))
void ak_sgemm_skinny_nn_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                               const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    EACH_ROW_GROUP(NN_ROW_0)
}

__attribute__((target("avx512f")))
void ak_sgemm_skinny_nn_bf16_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                                    const uint16_t *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    EACH_ROW_GROUP(NN_ROW_1)
}

__attribute__((target("avx512f")))
void ak_sgemm_skinny_nt_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                               const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    if (csa != 1) { ak_sgemm_skinny_nt_portable(m, n, k, a, rsa, csa, b, ldb, c, ldc, beta); return; }
    EACH_ROW_GROUP(NT_ROW_0)
}

__attribute__((target("avx512f")))
void ak_sgemm_skinny_nt_bf16_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa,
                                    const uint16_t *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    EACH_ROW_GROUP(NT_ROW_1)
}

// The same kernels for AVX2 + FMA (16 ymm registers of 8 floats, no mask registers: partial vectors
// load and store through an integer mask, zeros where masked off). fp32 only: bf16 copies of weights are
// made only on the AVX-512 path. These replaced the portable loops on AVX2 machines, whose nt form is a
// scalar dot product (the compiler cannot reassociate its sum).
static const int32_t mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

// Lanes 0..<left on (left clamped to 0...8).
static inline __attribute__((always_inline, target("avx2,fma")))
__m256i lanes_mask(int64_t left) {
    int64_t on = left < 0 ? 0 : (left > 8 ? 8 : left);
    return _mm256_loadu_si256((const __m256i *)(mask_table + 8 - on));
}

// nn_strip with 8-wide vectors: R x V accumulators (R * V ≤ 12, leaving registers for B and A).
static inline __attribute__((always_inline, target("avx2,fma")))
void nn_strip_avx2(const int R, const int V, int64_t d, const float *a, int64_t rsa, int64_t csa,
                   const float *b, int64_t ldb, float *c, int64_t ldc, const __m256i *masks) {
    __m256 acc[SKINNY_ROWS][4];
    for (int r = 0; r < R; r++) for (int v = 0; v < V; v++) acc[r][v] = _mm256_maskload_ps(c + r * ldc + 8 * v, masks[v]);
    for (int64_t q = 0; q < d; q++) {
        __m256 bv[4];
        for (int v = 0; v < V; v++) bv[v] = _mm256_maskload_ps(b + q * ldb + 8 * v, masks[v]);
        for (int r = 0; r < R; r++) {
            __m256 x = _mm256_broadcast_ss(a + r * rsa + q * csa);
            for (int v = 0; v < V; v++) acc[r][v] = _mm256_fmadd_ps(x, bv[v], acc[r][v]);
        }
    }
    for (int r = 0; r < R; r++) for (int v = 0; v < V; v++) _mm256_maskstore_ps(c + r * ldc + 8 * v, masks[v], acc[r][v]);
}

// nn_rows' blocking (an 8 KB tile of C in L1, B in blocks of NN_BLOCK rows, the next block's strip
// prefetched into L2) with strips of 8V columns.
static inline __attribute__((always_inline, target("avx2,fma")))
void nn_rows_avx2(const int R, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                  const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    const int V = R <= 3 ? 4 : (R <= 6 ? 2 : 1);
    const int64_t strip = 8 * V;
    int64_t width = (2048 / R) / strip * strip;
    for (int64_t j0 = 0; j0 < n; j0 += width) {
        int64_t w = n - j0 < width ? n - j0 : width;
        if (!beta) for (int r = 0; r < R; r++) memset(c + r * ldc + j0, 0, (size_t)w * sizeof(float));
        for (int64_t p = 0; p < k; p += NN_BLOCK) {
            int64_t d = k - p < NN_BLOCK ? k - p : NN_BLOCK;
            int64_t dn = k - p - d < NN_BLOCK ? k - p - d : NN_BLOCK;
            int64_t block = p * ldb + j0;
            for (int64_t j = 0; j < w; j += strip) {
                __m256i masks[4];
                for (int v = 0; v < V; v++) masks[v] = lanes_mask(w - j - 8 * v);
                for (int64_t q = 0; q < dn; q++)
                    for (int v = 0; v < V; v += 2)  // one prefetch per 64-byte line
                        if (w - j - 8 * v > 0) _mm_prefetch((const char *)(b + block + (NN_BLOCK + q) * ldb + j + 8 * v), _MM_HINT_T1);
                nn_strip_avx2(R, V, d, a + p * csa, rsa, csa, b + block + j, ldb, c + j0 + j, ldc, masks);
            }
        }
    }
}

static inline __attribute__((always_inline, target("avx2,fma")))
float sum_lanes_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// nt_rows with 8-wide vectors: R x J accumulators (R * J ≤ 8), J rows of B at a time.
static inline __attribute__((always_inline, target("avx2,fma")))
void nt_rows_avx2(const int R, int64_t n, int64_t k, const float *a, int64_t rsa, const float *b, int64_t ldb,
                  float *c, int64_t ldc, int beta) {
    enum { J = 4 };
    const int columns = R <= 2 ? J : (R <= 4 ? 2 : 1);
    for (int64_t j = 0; j < n; j += columns) {
        const int cols = n - j < columns ? (int)(n - j) : columns;
        __m256 acc[SKINNY_ROWS][J];
        for (int r = 0; r < R; r++) for (int q = 0; q < J; q++) acc[r][q] = _mm256_setzero_ps();
        int64_t p = 0;
        for (; p < k; p += 8) {
            __m256i mk = lanes_mask(k - p);
            __m256 v[J];
            for (int q = 0; q < columns; q++)
                v[q] = q < cols ? _mm256_maskload_ps(b + (j + q) * ldb + p, mk) : _mm256_setzero_ps();
            if ((p & 15) == 0 && j + 5 * columns <= n)  // rows four groups ahead into L1, one line per 16 floats
                for (int q = 0; q < columns; q++) _mm_prefetch((const char *)(b + (j + 4 * columns + q) * ldb + p), _MM_HINT_T0);
            for (int r = 0; r < R; r++) {
                __m256 x = _mm256_maskload_ps(a + r * rsa + p, mk);
                for (int q = 0; q < columns; q++) acc[r][q] = _mm256_fmadd_ps(x, v[q], acc[r][q]);
            }
        }
        for (int r = 0; r < R; r++) {
            float *cr = c + r * ldc + j;
            for (int q = 0; q < cols; q++) {
                float s = sum_lanes_avx2(acc[r][q]);
                cr[q] = beta ? cr[q] + s : s;
            }
        }
    }
}

// One row of A (decoding one sequence): B's rows are read whole, four at a time and in order, into a
// piece of C's row (at most NN_ROW1_PIECE values, 16 KB) that stays in L1, so memory sees one
// sequential run per thread (B's rows, or a thread's share of them, are contiguous when n = ldb). The
// strip-and-block order above keeps 16 rows of B in flight at once; at one row it streamed half as fast
// on an AMD Zen 3 (1 x 4096 x 4096 on 2 threads: 14.5 against 22-25 GFLOP/s; 1 x 384 x 1536: 31-33
// against 58-59; sample-b1: 0.56-0.66 against 0.47-0.59 s per 256 tokens).
static inline __attribute__((always_inline, target("avx2,fma")))
void nn_row1_piece_avx2(int64_t n, int64_t k, const float *a, int64_t csa, const float *b, int64_t ldb,
                        float *c, int beta) {
    if (!beta) memset(c, 0, (size_t)n * sizeof(float));
    int64_t full = n / 8 * 8;
    __m256i tail = lanes_mask(n - full);
    int64_t p = 0;
    for (; p + 4 <= k; p += 4) {
        const float *b0 = b + p * ldb, *b1 = b0 + ldb, *b2 = b1 + ldb, *b3 = b2 + ldb;
        __m256 x0 = _mm256_broadcast_ss(a + p * csa), x1 = _mm256_broadcast_ss(a + (p + 1) * csa);
        __m256 x2 = _mm256_broadcast_ss(a + (p + 2) * csa), x3 = _mm256_broadcast_ss(a + (p + 3) * csa);
        int64_t j = 0;
        for (; j < full; j += 8) {  // two chains of two, then one add: C gains the four rows' terms at once
            __m256 s = _mm256_fmadd_ps(x0, _mm256_loadu_ps(b0 + j), _mm256_loadu_ps(c + j));
            __m256 t = _mm256_mul_ps(x1, _mm256_loadu_ps(b1 + j));
            s = _mm256_fmadd_ps(x2, _mm256_loadu_ps(b2 + j), s);
            t = _mm256_fmadd_ps(x3, _mm256_loadu_ps(b3 + j), t);
            _mm256_storeu_ps(c + j, _mm256_add_ps(s, t));
        }
        if (j < n) {
            __m256 s = _mm256_fmadd_ps(x0, _mm256_maskload_ps(b0 + j, tail), _mm256_maskload_ps(c + j, tail));
            __m256 t = _mm256_mul_ps(x1, _mm256_maskload_ps(b1 + j, tail));
            s = _mm256_fmadd_ps(x2, _mm256_maskload_ps(b2 + j, tail), s);
            t = _mm256_fmadd_ps(x3, _mm256_maskload_ps(b3 + j, tail), t);
            _mm256_maskstore_ps(c + j, tail, _mm256_add_ps(s, t));
        }
    }
    for (; p < k; p++) {
        const float *b0 = b + p * ldb;
        __m256 x0 = _mm256_broadcast_ss(a + p * csa);
        int64_t j = 0;
        for (; j < full; j += 8) _mm256_storeu_ps(c + j, _mm256_fmadd_ps(x0, _mm256_loadu_ps(b0 + j), _mm256_loadu_ps(c + j)));
        if (j < n) _mm256_maskstore_ps(c + j, tail, _mm256_fmadd_ps(x0, _mm256_maskload_ps(b0 + j, tail), _mm256_maskload_ps(c + j, tail)));
    }
}

static inline __attribute__((always_inline, target("avx2,fma")))
void nn_row1_avx2(int64_t n, int64_t k, const float *a, int64_t csa, const float *b, int64_t ldb, float *c, int beta) {
    for (int64_t j0 = 0; j0 < n; j0 += NN_ROW1_PIECE)
        nn_row1_piece_avx2(n - j0 < NN_ROW1_PIECE ? n - j0 : NN_ROW1_PIECE, k, a, csa, b + j0, ldb, c + j0, beta);
}

#define NN_ROW_AVX2(R) (R == 1 ? nn_row1_avx2(n, k, ai, csa, b, ldb, ci, beta) : nn_rows_avx2(R, n, k, ai, rsa, csa, b, ldb, ci, ldc, beta))
#define NT_ROW_AVX2(R) nt_rows_avx2(R, n, k, ai, rsa, b, ldb, ci, ldc, beta)

__attribute__((target("avx2,fma")))
void ak_sgemm_skinny_nn_avx2(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                             const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    EACH_ROW_GROUP(NN_ROW_AVX2)
}

__attribute__((target("avx2,fma")))
void ak_sgemm_skinny_nt_avx2(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                             const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    if (csa != 1) { ak_sgemm_skinny_nt_portable(m, n, k, a, rsa, csa, b, ldb, c, ldc, beta); return; }
    EACH_ROW_GROUP(NT_ROW_AVX2)
}

__attribute__((target("avx512f")))
void ak_convert_bf16(const float *x, uint16_t *y, int64_t n) {
    const __m512i half = _mm512_set1_epi32(0x7FFF), one = _mm512_set1_epi32(1);
    int64_t i = 0;
    for (; i < n; i += 16) {
        __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        __m512i bits = _mm512_castps_si512(_mm512_maskz_loadu_ps(mask, x + i));
        // Nearest even: add 0x7FFF plus the lowest kept bit, keep the high half; NaN keeps its high half
        // with the quiet bit set (rounding could carry a NaN's payload into infinity).
        __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(half, _mm512_and_si512(_mm512_srli_epi32(bits, 16), one))), 16);
        __mmask16 nan = _mm512_cmp_ps_mask(_mm512_castsi512_ps(bits), _mm512_castsi512_ps(bits), _CMP_UNORD_Q);
        rounded = _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40)));
        __m256i packed = _mm512_cvtepi32_epi16(rounded);
        if (mask == 0xFFFF) { _mm256_storeu_si256((__m256i *)(y + i), packed); continue; }
        uint16_t last[16];
        _mm256_storeu_si256((__m256i *)last, packed);
        memcpy(y + i, last, (size_t)(n - i) * sizeof(uint16_t));
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
// Without AVX-512 the bf16 copies are not used (GEMM.withBF16Copies keeps fp32 there).
void ak_sgemm_skinny_nn_bf16_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                                    const uint16_t *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    (void)m; (void)n; (void)k; (void)a; (void)rsa; (void)csa; (void)b; (void)ldb; (void)c; (void)ldc; (void)beta;
}
void ak_sgemm_skinny_nt_bf16_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa,
                                    const uint16_t *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    (void)m; (void)n; (void)k; (void)a; (void)rsa; (void)b; (void)ldb; (void)c; (void)ldc; (void)beta;
}
void ak_convert_bf16(const float *x, uint16_t *y, int64_t n) { (void)x; (void)y; (void)n; }
void ak_sgemm_skinny_nn_avx2(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                             const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    ak_sgemm_skinny_nn_portable(m, n, k, a, rsa, csa, b, ldb, c, ldc, beta);
}
void ak_sgemm_skinny_nt_avx2(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                             const float *b, int64_t ldb, float *c, int64_t ldc, int beta) {
    ak_sgemm_skinny_nt_portable(m, n, k, a, rsa, csa, b, ldb, c, ldc, beta);
}
#endif
