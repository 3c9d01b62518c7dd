// Portable SGEMM micro-kernel, 4 x 16, plain C that any compiler can vectorize for its baseline ISA.
#include "CAlignKitKernels.h"

#define MR 4
#define NR 16

void ak_sgemm_kernel_portable_4x16(int64_t kc, const float *a, const float *b, float *c,
                                   int64_t ldc, int64_t mr, int64_t nr, int beta) {
    float acc[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = 0.0f;
    for (int64_t p = 0; p < kc; p++) {
        for (int i = 0; i < MR; i++) {
            float ai = a[i];
            for (int j = 0; j < NR; j++) acc[i][j] += ai * b[j];
        }
        a += MR;
        b += NR;
    }
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++)
            c[i * ldc + j] = (beta ? c[i * ldc + j] : 0.0f) + acc[i][j];
}
