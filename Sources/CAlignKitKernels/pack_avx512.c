// AVX-512 GEMM packing: the interleave (a transpose into panels) as 16 x 16 in-register
// transposes (transpose16.h).
#include "CAlignKitKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include "transpose16.h"

__attribute__((target("avx512f")))
void ak_pack_interleave_avx512(const float *src, int64_t ld, int64_t rows, int64_t count, int64_t width, float *dst) {
    int64_t p = 0;
    for (; p + 16 <= count; p += 16) {
        for (int64_t base = 0; base < width; base += 16) {
            int64_t group = width - base < 16 ? width - base : 16;
            __m512 r[16];
            for (int64_t i = 0; i < 16; i++) {
                int64_t row = base + i;
                r[i] = (i < group && row < rows) ? _mm512_loadu_ps(src + row * ld + p) : _mm512_setzero_ps();
            }
            transpose16(r);
            __mmask16 mask = (__mmask16)((1u << group) - 1u);
            for (int q = 0; q < 16; q++) _mm512_mask_storeu_ps(dst + (p + q) * width + base, mask, r[q]);
        }
    }
    // The last few columns (fewer than a transpose's worth): the portable interleave.
    if (p < count) ak_pack_interleave(src + p, ld, rows, count - p, width, dst + p * width);
}
// ak_pack_copy_panels for panels up to 32 wide (B's 32-column panels, A's 14-row panels when op(A) is
// transposed): each row's piece is one or two masked moves, not a loop of variable length.
__attribute__((target("avx512f")))
void ak_pack_copy_panels_avx512(const float *src, int64_t ld, int64_t columns, int64_t count, int64_t width, float *dst) {
    if (width > 32) { ak_pack_copy_panels(src, ld, columns, count, width, dst); return; }
    int64_t panels = (columns + width - 1) / width;
    __mmask16 store0 = width >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << width) - 1u);
    __mmask16 store1 = width >= 32 ? (__mmask16)0xFFFF : (width > 16 ? (__mmask16)((1u << (width - 16)) - 1u) : 0);
    for (int64_t p = 0; p < count; p++) {
        const float *row = src + p * ld;
        for (int64_t s = 0; s < panels; s++) {
            int64_t rest = columns - s * width;
            __mmask16 load0 = store0, load1 = store1;
            if (rest < width) {  // the last panel: zeros past the block's columns
                load0 = rest >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rest) - 1u);
                load1 = rest > 16 ? (__mmask16)((1u << (rest - 16)) - 1u) : 0;
            }
            float *out = dst + s * count * width + p * width;
            const float *in = row + s * width;
            _mm512_mask_storeu_ps(out, store0, _mm512_maskz_loadu_ps(load0, in));
            if (store1) _mm512_mask_storeu_ps(out + 16, store1, _mm512_maskz_loadu_ps(load1, in + 16));
        }
    }
}
#else
void ak_pack_copy_panels_avx512(const float *src, int64_t ld, int64_t columns, int64_t count, int64_t width, float *dst) {
    ak_pack_copy_panels(src, ld, columns, count, width, dst);
}
void ak_pack_interleave_avx512(const float *src, int64_t ld, int64_t rows, int64_t count, int64_t width, float *dst) {
    ak_pack_interleave(src, ld, rows, count, width, dst);
}
#endif
