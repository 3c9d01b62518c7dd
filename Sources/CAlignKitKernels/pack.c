// GEMM packing: copies a block of a matrix into the panel layout the micro-kernels read
// (for each k step, `width` consecutive values), zero-padding the last partial panel.
#include "CAlignKitKernels.h"
#include <stdint.h>
#include "clones.h"

// Interleave: dst[p * W + r] = src[r * ld + p] for r < rows, else 0 (a transpose into panels).
#define INTERLEAVE(W) \
static inline __attribute__((always_inline)) void interleave_##W(const float *src, int64_t ld, int64_t rows, int64_t count, float *dst) { \
    if (rows == W) { \
        const float *row[W]; \
        for (int r = 0; r < W; r++) row[r] = src + r * ld; \
        int64_t p = 0; \
        for (; p + 4 <= count; p += 4) { \
            for (int q = 0; q < 4; q++) { \
                _Pragma("clang loop unroll(full)") \
                for (int r = 0; r < W; r++) dst[(p + q) * W + r] = row[r][p + q]; \
            } \
        } \
        for (; p < count; p++) { \
            _Pragma("clang loop unroll(full)") \
            for (int r = 0; r < W; r++) dst[p * W + r] = row[r][p]; \
        } \
        return; \
    } \
    for (int64_t p = 0; p < count; p++) { \
        for (int64_t r = 0; r < rows; r++) dst[p * W + r] = src[r * ld + p]; \
        for (int64_t r = rows; r < W; r++) dst[p * W + r] = 0.0f; \
    } \
}
INTERLEAVE(4) INTERLEAVE(6) INTERLEAVE(12) INTERLEAVE(14) INTERLEAVE(16) INTERLEAVE(32)

static inline __attribute__((always_inline)) void interleave_any(const float *src, int64_t ld, int64_t rows, int64_t count, int64_t width, float *dst) {
    for (int64_t p = 0; p < count; p++) {
        for (int64_t r = 0; r < rows; r++) dst[p * width + r] = src[r * ld + p];
        for (int64_t r = rows; r < width; r++) dst[p * width + r] = 0.0f;
    }
}

AK_CLONES void ak_pack_interleave(const float *src, int64_t ld, int64_t rows, int64_t count, int64_t width, float *dst) {
    switch (width) {
    case 4: interleave_4(src, ld, rows, count, dst); break;
    case 6: interleave_6(src, ld, rows, count, dst); break;
    case 12: interleave_12(src, ld, rows, count, dst); break;
    case 14: interleave_14(src, ld, rows, count, dst); break;
    case 16: interleave_16(src, ld, rows, count, dst); break;
    case 32: interleave_32(src, ld, rows, count, dst); break;
    default: interleave_any(src, ld, rows, count, width, dst); break;
    }
}

// Copy into many panels at once: row p of the block is read contiguously and its `width`-wide pieces go to
// their panels: dst[(j / width) * count * width + p * width + j % width]. A block's rows are short (a
// transposed A's: 100-200 floats) and far apart, and the copy asks for row p + 8 while it copies row p: on
// an AMD Zen 3 (in-process per-call A/B over pretrain-small, 2 threads) that made the TN products (weight
// gradients, whose A blocks and B are copied here) 3-5% faster; 4 rows ahead did the same, 2 and 16 less.
#define COPY_PREFETCH_ROWS 8
// Inlined with the kernels' widths as constants, so that each piece is a few whole-vector moves (with a
// run-time width the copy was a loop with its own trip count and alias checks for every 16 floats; with
// a constant width but no `restrict`, 16 scalar moves).
// With `sums`, also sums[j] = the column's values (a bias gradient, while its rows are in L1 anyway), added
// four rows at a time in order: ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + ...).
static inline __attribute__((always_inline))
void copy_panels(const float *restrict src, int64_t ld, int64_t columns, int64_t count, int64_t width, float *restrict dst,
                 float *restrict sums) {
    int64_t panels = (columns + width - 1) / width;
    int64_t full = columns / width;
    if (sums) for (int64_t j = 0; j < columns; j++) sums[j] = 0.0f;
    for (int64_t p = 0; p < count; p++) {
        const float *row = src + p * ld;
        if (p + COPY_PREFETCH_ROWS < count) {
            const float *ahead = row + COPY_PREFETCH_ROWS * ld;
            for (const char *line = (const char *)((uintptr_t)ahead & ~(uintptr_t)63); line < (const char *)(ahead + columns); line += 64)
                __builtin_prefetch(line, 0, 3);
        }
        // Four rows at a time (while they are in L1), so that `sums` is read and written once per four rows.
        if (sums && (p % 4 == 3 || p == count - 1)) {
            const float *first = src + (p - p % 4) * ld;
            switch (p % 4) {
            case 3: for (int64_t j = 0; j < columns; j++) sums[j] += (first[j] + first[ld + j]) + (first[2 * ld + j] + first[3 * ld + j]); break;
            case 2: for (int64_t j = 0; j < columns; j++) sums[j] += (first[j] + first[ld + j]) + first[2 * ld + j]; break;
            case 1: for (int64_t j = 0; j < columns; j++) sums[j] += first[j] + first[ld + j]; break;
            default: for (int64_t j = 0; j < columns; j++) sums[j] += first[j]; break;
            }
        }
        for (int64_t s = 0; s < full; s++) {
            float *out = dst + s * count * width + p * width;
            const float *in = row + s * width;
            for (int64_t j = 0; j < width; j++) out[j] = in[j];
        }
        if (full < panels) {
            float *out = dst + full * count * width + p * width;
            int64_t rest = columns - full * width;
            for (int64_t j = 0; j < rest; j++) out[j] = row[full * width + j];
            for (int64_t j = rest; j < width; j++) out[j] = 0.0f;
        }
    }
}

AK_CLONES void ak_pack_copy_panels(const float *src, int64_t ld, int64_t columns, int64_t count, int64_t width, float *dst) {
    switch (width) {
    case 6: copy_panels(src, ld, columns, count, 6, dst, 0); break;
    case 16: copy_panels(src, ld, columns, count, 16, dst, 0); break;
    default: copy_panels(src, ld, columns, count, width, dst, 0); break;
    }
}

AK_CLONES void ak_pack_copy_panels_summing(const float *src, int64_t ld, int64_t columns, int64_t count, int64_t width,
                                           float *dst, float *sums) {
    switch (width) {
    case 16: copy_panels(src, ld, columns, count, 16, dst, sums); break;
    case 32: copy_panels(src, ld, columns, count, 32, dst, sums); break;
    default: copy_panels(src, ld, columns, count, width, dst, sums); break;
    }
}
