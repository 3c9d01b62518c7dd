// CAlignKitKernels: SIMD micro-kernels that Swift cannot express portably, chosen at run time.
// GEMM micro-kernels follow the Goto/BLIS formulation: C[mr x nr] (+)= A_panel[kc x MR] * B_panel[kc x NR].
#ifndef CALIGNKITKERNELS_H
#define CALIGNKITKERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// CPU feature bits reported by `ak_cpu_features`.
enum {
    AK_CPU_AVX2_FMA = 1,
    AK_CPU_AVX512F = 2,
    AK_CPU_AVX512_BF16 = 4,
    AK_CPU_AMX_BF16 = 8,
};

/// The features this CPU supports (a mask of AK_CPU_* bits); 0 on non-x86 machines.
int ak_cpu_features(void);

/// Restricts the calling thread to one core (Linux; elsewhere a no-op returning -1). Returns 0 on success.
/// Not SIMD, but the Swift Glibc module does not expose sched_setaffinity (it needs _GNU_SOURCE).
int ak_pin_current_thread(int core);

/// One GEMM micro-kernel: for a packed A panel (kc steps of MR floats, rows zero-padded) and a
/// packed B panel (kc steps of NR floats, columns zero-padded), computes the MR x NR product and
/// writes the first `mr` rows and `nr` columns to C (row stride ldc): C = beta * C + A * B,
/// where beta is 0 (overwrite; C is not read) or 1 (accumulate).
typedef void (*ak_sgemm_kernel_fn)(int64_t kc, const float *a, const float *b, float *c,
                                   int64_t ldc, int64_t mr, int64_t nr, int beta);

/// AVX-512 kernel, MR = 14, NR = 32. Call only when AK_CPU_AVX512F is set.
void ak_sgemm_kernel_avx512_14x32(int64_t kc, const float *a, const float *b, float *c,
                                  int64_t ldc, int64_t mr, int64_t nr, int beta);
/// Lines a micro-kernel call prefetches into L2 while it runs, one every four k steps: share `part` of
/// `parts` of the cache lines of the block of `rows` rows of `count` floats (row stride ld) at `src`. A GEMM
/// tile gives each call of its panel's loop a share of the next A panel it will pack, so that packing
/// finds it in L2 instead of waiting on memory, without a burst of prefetches that would fill the core's
/// miss buffers.
typedef struct { const float *src; int64_t ld, rows, count, part, parts; } ak_prefetch_lines;
/// ak_sgemm_kernel_avx512_14x32 that also prefetches `ahead` (may be NULL).
void ak_sgemm_kernel_avx512_14x32_prefetching(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                                              int64_t mr, int64_t nr, int beta, const ak_prefetch_lines *ahead);
/// AVX2 + FMA kernel, MR = 6, NR = 16. Call only when AK_CPU_AVX2_FMA is set.
void ak_sgemm_kernel_avx2_6x16(int64_t kc, const float *a, const float *b, float *c,
                               int64_t ldc, int64_t mr, int64_t nr, int beta);
/// The same reading a row-major A in place: A(i, p) = a[i * lda + p].
typedef void (*ak_sgemm_kernel_rows_fn)(int64_t kc, const float *a, int64_t lda, const float *b,
                                        float *c, int64_t ldc, int64_t mr, int64_t nr, int beta);
void ak_sgemm_kernel_avx2_6x16_rows(int64_t kc, const float *a, int64_t lda, const float *b,
                                    float *c, int64_t ldc, int64_t mr, int64_t nr, int beta);
/// A column of tiles against one B panel: `rows` rows of A, 6 at a time (the rows kernel: A(i, p) = a[i * lda + p];
/// the packed one: panel i / 6 at a + (i / 6) * panelStride) into C's rows; with `bias`, bias[j] is then added to
/// each tile's column j as it is stored (after beta·C joins it, as ak_add_row_vector on the stored tile would).
/// One call where a call per tile cost its loop and call.
typedef void (*ak_sgemm_column_fn)(int64_t kc, const float *a, int64_t stride, const float *b, float *c, int64_t ldc,
                                   int64_t rows, int64_t nr, int beta, const float *bias);
void ak_sgemm_avx2_6x16_rows_column(int64_t kc, const float *a, int64_t lda, const float *b, float *c, int64_t ldc,
                                    int64_t rows, int64_t nr, int beta, const float *bias);
void ak_sgemm_avx2_6x16_column(int64_t kc, const float *a, int64_t panelStride, const float *b, float *c, int64_t ldc,
                               int64_t rows, int64_t nr, int beta, const float *bias);
/// Portable C kernel, MR = 4, NR = 16, for any CPU.
void ak_sgemm_kernel_portable_4x16(int64_t kc, const float *a, const float *b, float *c,
                                   int64_t ldc, int64_t mr, int64_t nr, int beta);

/// Skinny products without packing (few rows of A, see sgemm_skinny.c): C = beta·C + op(A) op(B) for an
/// m × k op(A) read at a[i * rsa + p * csa]; nn: B is k × n row-major; nt: B is n × k row-major.
typedef void (*ak_sgemm_skinny_fn)(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                                   const float *b, int64_t ldb, float *c, int64_t ldc, int beta);
void ak_sgemm_skinny_nn_portable(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                                 const float *b, int64_t ldb, float *c, int64_t ldc, int beta);
void ak_sgemm_skinny_nt_portable(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                                 const float *b, int64_t ldb, float *c, int64_t ldc, int beta);
/// AVX-512 versions. Call only when AK_CPU_AVX512F is set.
void ak_sgemm_skinny_nn_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                               const float *b, int64_t ldb, float *c, int64_t ldc, int beta);
void ak_sgemm_skinny_nt_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                               const float *b, int64_t ldb, float *c, int64_t ldc, int beta);
/// AVX2 + FMA versions. Call only when AK_CPU_AVX2_FMA is set.
void ak_sgemm_skinny_nn_avx2(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                             const float *b, int64_t ldb, float *c, int64_t ldc, int beta);
void ak_sgemm_skinny_nt_avx2(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                             const float *b, int64_t ldb, float *c, int64_t ldc, int beta);
/// The same with B as bf16 values (a copy made by ak_convert_bf16, with 64 values of padding after its
/// end); nt needs A's rows contiguous (csa = 1). AVX-512 only.
void ak_sgemm_skinny_nn_bf16_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa, int64_t csa,
                                    const uint16_t *b, int64_t ldb, float *c, int64_t ldc, int beta);
void ak_sgemm_skinny_nt_bf16_avx512(int64_t m, int64_t n, int64_t k, const float *a, int64_t rsa,
                                    const uint16_t *b, int64_t ldb, float *c, int64_t ldc, int beta);
/// y[i] = x[i] rounded to bf16 (nearest even; NaN stays NaN), as bf16 bits. AVX-512 only.
void ak_convert_bf16(const float *x, uint16_t *y, int64_t n);

/// Packs `rows` (≤ width) rows of `count` contiguous values, row stride ld, into panel layout:
/// dst[p * width + r] = src[r * ld + p], zero for r ≥ rows.
void ak_pack_interleave(const float *src, int64_t ld, int64_t rows, int64_t count, int64_t width, float *dst);
/// The same as ak_pack_interleave with AVX-512 16 x 16 transposes. Call only when AK_CPU_AVX512F is set.
void ak_pack_interleave_avx512(const float *src, int64_t ld, int64_t rows, int64_t count, int64_t width, float *dst);
/// The same with AVX2 8 x 8 transposes. Call only when AK_CPU_AVX2_FMA is set.
void ak_pack_interleave_avx2(const float *src, int64_t ld, int64_t rows, int64_t count, int64_t width, float *dst);
/// The same as ak_pack_copy_panels with masked AVX-512 moves (width ≤ 32). Call only when AK_CPU_AVX512F is set.
void ak_pack_copy_panels_avx512(const float *src, int64_t ld, int64_t columns, int64_t count, int64_t width, float *dst);
/// Packs `count` rows of `columns` (any number) contiguous values into consecutive `width`-wide
/// panels, reading each row once: dst[(j / width) * count * width + p * width + j % width].
void ak_pack_copy_panels(const float *src, int64_t ld, int64_t columns, int64_t count, int64_t width, float *dst);
/// ak_pack_copy_panels that also writes sums[j] = the sum of column j's `count` values (j < columns), added four
/// rows at a time in order.
void ak_pack_copy_panels_summing(const float *src, int64_t ld, int64_t columns, int64_t count, int64_t width,
                                 float *dst, float *sums);
/// LayerNorm (centered ≠ 0) or RMSNorm over `rows` rows of `c` values: h = (x − mean)·inverse (mean 0 for
/// RMSNorm), inverse = 1/√(mean of (x − mean)² + epsilon), y = h·w (+ b when b is not NULL).
void ak_norm_rows(const float *x, int64_t rows, int64_t c, const float *w, const float *b, float epsilon, int centered,
                  float *h, float *y, float *inverse);
/// The backward pass of ak_norm_rows for upstream gradient g: sumW += g·h and sumB += g (over the rows), and
/// when dx is not NULL, dx = inverse·(g·w − mean(g·w) − h·mean(g·w·h)) (the first mean 0 for RMSNorm).
void ak_norm_rows_backward(const float *h, const float *g, const float *w, const float *inverse, int64_t rows, int64_t c,
                           int centered, float *dx, float *sumW, float *sumB);
/// The largest of x[0..<n] (−∞ when n is 0; NaNs are skipped).
float ak_row_max(const float *x, int64_t n);
/// c[r·ldc + j] += v[j] for r < rows, j < columns (a bias joining a finished tile of a product).
void ak_add_row_vector(float *c, int64_t ldc, int64_t rows, int64_t columns, const float *v);

/// Asks the OS for AMX tile state (Linux arch_prctl); 0 when granted. Call before any AMX function.
int ak_amx_request(void);
/// Packs rows row0..<row0+rows (a multiple of 16 from a multiple of 16) of op(A) (m x k; A is k x m when
/// `transposed`) into bf16 A tiles (see sgemm_amx.c): tile (r, q) at dst + (r * kblocks + q) * 512, r = row / 16.
/// Call only when AK_CPU_AMX_BF16 is set.
void ak_pack_bf16_a(const float *a, int64_t lda, int transposed, int64_t m, int64_t k, int64_t row0, int64_t rows, uint16_t *dst);
/// Packs columns column0..<column0+columns (multiples of 16) of op(B) (k x n; B is n x k when `transposed`)
/// into bf16 B tiles (pairs of k): tile (s, q) at dst + (s * kblocks + q) * 512, s = column / 16.
void ak_pack_bf16_b(const float *b, int64_t ldb, int transposed, int64_t k, int64_t n, int64_t column0, int64_t columns, uint16_t *dst);
/// C (+)= A B for packed tiles: rowPairs x columnPairs blocks of 32 x 32, of which the first m rows and n
/// columns are stored (c is the block's top-left). `a` starts at an even row tile, `b` at an even column tile.
void ak_sgemm_amx_block(int64_t kblocks, const uint16_t *a, int64_t rowPairs, const uint16_t *b, int64_t columnPairs,
                        float *c, int64_t ldc, int64_t m, int64_t n, int beta);
/// Rounds each value to bf16 precision (nearest even), in place; NaN stays NaN.
void ak_round_bf16(float *x, int64_t n);

/// a * b + c as computed by the clone of the vector-math functions that this CPU runs (see clones.h):
/// with one rounding (fused) in the AVX2 and AVX-512 clones, two in the baseline. For tests.
float ak_clone_multiply_add(float a, float b, float c);

/// y[i] = e^x[i] (Cephes polynomial; exact 0 below -87.34, inf above 88.38, NaN kept).
void ak_vexp(const float *x, float *y, int64_t n);
/// y[i] = ln x[i] (-inf at 0, NaN below 0, subnormals handled).
void ak_vlog(const float *x, float *y, int64_t n);
/// y[i] = tanh x[i].
void ak_vtanh(const float *x, float *y, int64_t n);
/// GELU (tanh form) and its backward pass (dx = g times the derivative at x), each one pass over n elements.
void ak_gelu_tanh(const float *x, float *y, int64_t n);
void ak_gelu_tanh_backward(const float *g, const float *x, float *dx, int64_t n);
/// One Adam(W) step in place: m = β₁m + (1−β₁)g, v = β₂v + (1−β₂)g², p = p·decayFactor − stepSize·m / (√(v·inverseC2) + ε).
void ak_adam_update(float *p, const float *g, float *m, float *v, int64_t n, float beta1, float beta2,
                    float decayFactor, float stepSize, float inverseC2, float epsilon);
/// out[j] = Σ over r < rows of x[r·ld + j] for j < columns, summed in row order (0 when rows is 0).
void ak_column_sums(const float *x, int64_t ld, int64_t rows, int64_t columns, float *out);
/// y[i] = a[i] + b[i].
void ak_vadd(const float *a, const float *b, float *y, int64_t n);
/// y[i] += x[i].
void ak_vadd_inplace(float *y, const float *x, int64_t n);
/// y[i] = 1 / (1 + e^-x[i]).
void ak_vsigmoid(const float *x, float *y, int64_t n);
/// y[i] = e^(x[i] - shift); returns Σ y[i].
float ak_vexp_shifted_sum(const float *x, float shift, float *y, int64_t n);
/// x = softmax(scale · x) for one row of n > 0 values, in place.
void ak_softmax_row(float *x, int64_t n, float scale);
/// Softmax's backward for one row, in place: ds = scale · p ⊙ (ds − Σ ds ⊙ p).
void ak_softmax_row_backward(const float *p, float *ds, int64_t n, float scale);

#ifdef __cplusplus
}
#endif

#endif
