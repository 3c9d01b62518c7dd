// Row reductions: LayerNorm and RMSNorm over rows, forward and backward; a row's maximum. Each row's
// sums run in 16 independent lanes (summed at the end), a form the compiler turns into one vector
// accumulator: a single running sum is a chain of dependent adds that cannot be vectorized without
// reassociating, and ran 4 cycles per value.
// Compiled for AVX-512, AVX2 and the baseline with target_clones (ifunc dispatch).
#include "CAlignKitKernels.h"
#include <math.h>

#include "clones.h"

#define LANES 16

static inline float lanes_total(const float *lanes) {
    float total = 0;
    for (int l = 0; l < LANES; l++) total += lanes[l];
    return total;
}

AK_CLONES
void ak_norm_rows(const float *x, int64_t rows, int64_t c, const float *w, const float *b, float epsilon, int centered,
                  float *h, float *y, float *inverse) {
    int64_t full = c / LANES * LANES;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * c;
        float *hr = h + r * c, *yr = y + r * c;
        float mean = 0;
        if (centered) {
            float lanes[LANES] = {0};
            for (int64_t j = 0; j < full; j += LANES)
                for (int l = 0; l < LANES; l++) lanes[l] += xr[j + l];
            for (int64_t j = full; j < c; j++) lanes[j - full] += xr[j];
            mean = lanes_total(lanes) / (float)c;
        }
        float lanes[LANES] = {0};
        for (int64_t j = 0; j < full; j += LANES)
            for (int l = 0; l < LANES; l++) { float d = xr[j + l] - mean; lanes[l] += d * d; }
        for (int64_t j = full; j < c; j++) { float d = xr[j] - mean; lanes[j - full] += d * d; }
        float ri = 1.0f / sqrtf(lanes_total(lanes) / (float)c + epsilon);
        inverse[r] = ri;
        if (b) {
            for (int64_t j = 0; j < c; j++) { float v = (xr[j] - mean) * ri; hr[j] = v; yr[j] = v * w[j] + b[j]; }
        } else {
            for (int64_t j = 0; j < c; j++) { float v = (xr[j] - mean) * ri; hr[j] = v; yr[j] = v * w[j]; }
        }
    }
}

AK_CLONES
void ak_norm_rows_backward(const float *h, const float *g, const float *w, const float *inverse, int64_t rows, int64_t c,
                           int centered, float *dx, float *sumW, float *sumB) {
    int64_t full = c / LANES * LANES;
    for (int64_t r = 0; r < rows; r++) {
        const float *hr = h + r * c, *gr = g + r * c;
        float gwLanes[LANES] = {0}, gwhLanes[LANES] = {0};
        for (int64_t j = 0; j < full; j += LANES)
            for (int l = 0; l < LANES; l++) {
                float gw = gr[j + l] * w[j + l];
                gwLanes[l] += gw;
                gwhLanes[l] += gw * hr[j + l];
            }
        for (int64_t j = full; j < c; j++) {
            float gw = gr[j] * w[j];
            gwLanes[j - full] += gw;
            gwhLanes[j - full] += gw * hr[j];
        }
        for (int64_t j = 0; j < c; j++) { sumW[j] += gr[j] * hr[j]; sumB[j] += gr[j]; }
        if (!dx) continue;
        float meanGW = centered ? lanes_total(gwLanes) / (float)c : 0.0f;
        float meanGWH = lanes_total(gwhLanes) / (float)c;
        float ri = inverse[r];
        float *d = dx + r * c;
        for (int64_t j = 0; j < c; j++) d[j] = ri * (gr[j] * w[j] - meanGW - hr[j] * meanGWH);
    }
}

AK_CLONES
float ak_row_max(const float *x, int64_t n) {
    float lanes[LANES];
    for (int l = 0; l < LANES; l++) lanes[l] = -__builtin_inff();
    int64_t full = n / LANES * LANES;
    for (int64_t j = 0; j < full; j += LANES)
        for (int l = 0; l < LANES; l++) lanes[l] = x[j + l] > lanes[l] ? x[j + l] : lanes[l];
    for (int64_t j = full; j < n; j++) lanes[j - full] = x[j] > lanes[j - full] ? x[j] : lanes[j - full];
    float m = lanes[0];
    for (int l = 1; l < LANES; l++) m = lanes[l] > m ? lanes[l] : m;
    return m;
}
