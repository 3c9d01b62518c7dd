// AVX-512 SGEMM micro-kernel, 14 x 32: 28 zmm accumulators, two B vectors and an embedded
// broadcast of A per row and k step (Goto & van de Geijn, "Anatomy of High-Performance GEMM").
// Accumulators are named variables (not an array) so that they stay in registers.
#include "CAlignKitKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define MR 14
#define NR 32

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#define DECLARE(i) __m512 c##i##a = _mm512_setzero_ps(), c##i##b = _mm512_setzero_ps();
#define STEP(i) { __m512 ai = _mm512_set1_ps(a[i]); \
    c##i##a = _mm512_fmadd_ps(ai, b0, c##i##a); c##i##b = _mm512_fmadd_ps(ai, b1, c##i##b); }
#define STORE_FULL(i) { float *ci = c + (i) * ldc; \
    if (beta) { c##i##a = _mm512_add_ps(_mm512_loadu_ps(ci), c##i##a); \
                c##i##b = _mm512_add_ps(_mm512_loadu_ps(ci + 16), c##i##b); } \
    _mm512_storeu_ps(ci, c##i##a); _mm512_storeu_ps(ci + 16, c##i##b); }
#define STORE_EDGE(i) if ((i) < mr) { float *ci = c + (i) * ldc; \
    if (beta) { c##i##a = _mm512_add_ps(_mm512_maskz_loadu_ps(m0, ci), c##i##a); \
                c##i##b = _mm512_add_ps(_mm512_maskz_loadu_ps(m1, ci + 16), c##i##b); } \
    _mm512_mask_storeu_ps(ci, m0, c##i##a); _mm512_mask_storeu_ps(ci + 16, m1, c##i##b); }
#define PREFETCH_C(i) _mm_prefetch((const char *)(c + (i) * ldc), _MM_HINT_T0); \
    _mm_prefetch((const char *)(c + (i) * ldc + 16), _MM_HINT_T0);

__attribute__((target("avx512f"), always_inline))
static inline void kernel(int64_t kc, const float *a, const float *b, float *c,
                          int64_t ldc, int64_t mr, int64_t nr, int beta, const ak_prefetch_lines *ahead) {
    ROWS(DECLARE)
    if (mr == MR) { ROWS(PREFETCH_C) }
    // The prefetch walk: this call's share of the block's lines, numbered row by row (perRow per row, one
    // more than a row's span needs when aligned, skipped when the row ends before it), from (row, inRow).
    int64_t left = 0, perRow = 1, row = 0, inRow = 0, each = 1;
    if (ahead && ahead->rows > 0 && ahead->count > 0 && ahead->parts > 0) {
        perRow = (ahead->count * (int64_t)sizeof(float) + 63) / 64 + 1;
        int64_t total = ahead->rows * perRow;
        int64_t first = total * ahead->part / ahead->parts;
        left = total * (ahead->part + 1) / ahead->parts - first;
        row = first / perRow;
        inRow = first % perRow;
        int64_t slots = kc / 4 > 0 ? kc / 4 : 1;
        each = (left + slots - 1) / slots;
    }
    int64_t p = 0;
    for (; p + 4 <= kc; p += 4) {
        for (int u = 0; u < 4; u++) {
            __m512 b0 = _mm512_loadu_ps(b);
            __m512 b1 = _mm512_loadu_ps(b + 16);
            _mm_prefetch((const char *)(b + 4 * NR), _MM_HINT_T0);
            ROWS(STEP)
            a += MR;
            b += NR;
        }
        for (int64_t e = 0; e < each && left > 0; e++, left--) {
            const float *start = ahead->src + row * ahead->ld;
            const char *line = (const char *)((uintptr_t)start & ~(uintptr_t)63) + 64 * inRow;
            if (line < (const char *)(start + ahead->count)) _mm_prefetch(line, _MM_HINT_T1);
            if (++inRow == perRow) { inRow = 0; row++; }
        }
    }
    for (; p < kc; p++) {
        __m512 b0 = _mm512_loadu_ps(b);
        __m512 b1 = _mm512_loadu_ps(b + 16);
        ROWS(STEP)
        a += MR;
        b += NR;
    }
    if (mr == MR && nr == NR) {
        ROWS(STORE_FULL)
        return;
    }
    // Edge tile: masked stores for the last columns, only the first mr rows.
    __mmask16 m0 = nr >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nr) - 1u);
    __mmask16 m1 = nr >= 32 ? (__mmask16)0xFFFF : (nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1u));
    ROWS(STORE_EDGE)
}

__attribute__((target("avx512f")))
void ak_sgemm_kernel_avx512_14x32(int64_t kc, const float *a, const float *b, float *c,
                                  int64_t ldc, int64_t mr, int64_t nr, int beta) {
    kernel(kc, a, b, c, ldc, mr, nr, beta, NULL);
}

__attribute__((target("avx512f")))
void ak_sgemm_kernel_avx512_14x32_prefetching(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                                              int64_t mr, int64_t nr, int beta, const ak_prefetch_lines *ahead) {
    kernel(kc, a, b, c, ldc, mr, nr, beta, ahead);
}

#else
void ak_sgemm_kernel_avx512_14x32(int64_t kc, const float *a, const float *b, float *c,
                                  int64_t ldc, int64_t mr, int64_t nr, int beta) {
    (void)kc; (void)a; (void)b; (void)c; (void)ldc; (void)mr; (void)nr; (void)beta;
}
void ak_sgemm_kernel_avx512_14x32_prefetching(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                                              int64_t mr, int64_t nr, int beta, const ak_prefetch_lines *ahead) {
    (void)kc; (void)a; (void)b; (void)c; (void)ldc; (void)mr; (void)nr; (void)beta; (void)ahead;
}
#endif
