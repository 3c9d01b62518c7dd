// Vectorized transcendental functions over arrays: exp, log, tanh, sigmoid.
// Cephes-style (S. L. Moshier) range reduction and minimax polynomials, branch-free so that the
// loops vectorize; compiled for AVX-512, AVX2 and the baseline with target_clones (ifunc dispatch).
// Accuracy: within a few float ulps of the correctly rounded result (checked in tests).
#include "CAlignKitKernels.h"
#include <stdint.h>
#include <string.h>

#include "clones.h"

static inline float bits_to_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t float_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

// e^x: x = n ln2 + r, |r| ≤ ln2/2; e^r = 1 + r + r² P(r); 2^n from the exponent bits.
static inline float exp_core(float x) {
    float clamped = x < -87.33654f ? -87.33654f : (x > 88.37626f ? 88.37626f : x);
    float n = __builtin_rintf(clamped * 1.44269504088896341f);
    float r = clamped - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float z = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3333337680e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * z + r + 1.0f;
    float scale = bits_to_float((uint32_t)((int32_t)n + 127) << 23);
    float result = p * scale;
    result = x < -87.33654f ? 0.0f : result;               // underflow (and -inf) to 0
    result = x > 88.37626f ? __builtin_inff() : result;    // overflow to inf
    return x != x ? x : result;                            // NaN stays NaN
}

// ln x: x = m 2^e with m in [√½, √2); ln(1 + f) = f - f²/2 + f³ P(f).
static inline float log_core(float x) {
    float tiny = x < 1.17549435e-38f ? 1.0f : 0.0f;        // subnormal: scale into range
    float xs = tiny != 0.0f ? x * 8388608.0f : x;
    uint32_t bits = float_to_bits(xs);
    float e = (float)((int32_t)((bits >> 23) & 0xff) - 126) - 23.0f * tiny;
    float m = bits_to_float((bits & 0x007fffffu) | 0x3f000000u);  // [0.5, 1)
    float low = m < 0.707106781186547524f ? 1.0f : 0.0f;
    e = e - low;
    float f = (low != 0.0f ? m + m : m) - 1.0f;
    float z = f * f;
    float y = 7.0376836292e-2f;
    y = y * f - 1.1514610310e-1f;
    y = y * f + 1.1676998740e-1f;
    y = y * f - 1.2420140846e-1f;
    y = y * f + 1.4249322787e-1f;
    y = y * f - 1.6668057665e-1f;
    y = y * f + 2.0000714765e-1f;
    y = y * f - 2.4999993993e-1f;
    y = y * f + 3.3333331174e-1f;
    y = y * f * z;
    y = y + e * -2.12194440e-4f;
    y = y - 0.5f * z;
    float result = f + y + e * 0.693359375f;
    result = x == 0.0f ? -__builtin_inff() : result;
    result = x < 0.0f ? __builtin_nanf("") : result;
    result = x == __builtin_inff() ? x : result;
    return x != x ? x : result;
}

// tanh: |x| < 0.625: x + x z P(z), z = x²; otherwise sign(x) (1 - 2 / (e^{2|x|} + 1)).
static inline float tanh_core(float x) {
    float a = x < 0 ? -x : x;
    float z = x * x;
    float p = -5.70498872745e-3f;
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    float small = x + x * z * p;
    float big = 1.0f - 2.0f / (exp_core(a + a) + 1.0f);
    big = x < 0 ? -big : big;
    float result = a < 0.625f ? small : big;
    return x != x ? x : result;
}

// σ(x) = 1 / (1 + e^{-x}); exact 0 and 1 in the limits.
static inline float sigmoid_core(float x) { return 1.0f / (1.0f + exp_core(-x)); }

// a * b + c in the clone the loader picked: fused into one rounding by the AVX2 and AVX-512 clones (which
// have FMA), two roundings in the baseline. A test reads which clone runs from the result.
AK_CLONES float ak_clone_multiply_add(float a, float b, float c) {
#pragma clang fp contract(on)
    return a * b + c;
}

AK_CLONES void ak_vexp(const float *x, float *y, int64_t n) { for (int64_t i = 0; i < n; i++) y[i] = exp_core(x[i]); }
AK_CLONES void ak_vlog(const float *x, float *y, int64_t n) { for (int64_t i = 0; i < n; i++) y[i] = log_core(x[i]); }
AK_CLONES void ak_vtanh(const float *x, float *y, int64_t n) { for (int64_t i = 0; i < n; i++) y[i] = tanh_core(x[i]); }
AK_CLONES void ak_vsigmoid(const float *x, float *y, int64_t n) { for (int64_t i = 0; i < n; i++) y[i] = sigmoid_core(x[i]); }

// GELU, tanh form (GPT-2): y = x/2 (1 + tanh(u)), u = c (x + 0.044715 x³), c = √(2/π); one pass each way.
// ½(1 + tanh u) = σ(2u), so y = x σ(2u): one exp and one division, no cancellation for negative x (where
// 1 + tanh u loses the digits that σ keeps). The backward pass recomputes s = σ(2u):
// dx = g (s + 2 x s (1 - s) c (1 + 3·0.044715 x²)), since ½(1 - tanh² u) = 2 s (1 - s).
#define AK_GELU_C 0.7978845608028654f
static inline float gelu_gate(float v) {
    return 1.0f / (1.0f + exp_core(-2.0f * AK_GELU_C * (v + 0.044715f * v * v * v)));
}

// Four vectors per iteration: one element's chain (the cubic, exp's reduction and polynomial, the division) is
// some 70 cycles long, and with one vector per iteration too few iterations fit in the out-of-order window to
// hide it. The same operations on every element, so the same results. One core of an AMD Zen 3, in L1:
// forward 0.96 -> 0.78 ns a value, backward 1.35 -> 0.96.
AK_CLONES void ak_gelu_tanh(const float *x, float *y, int64_t n) {
#pragma clang loop interleave_count(4)
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * gelu_gate(x[i]);
}

AK_CLONES void ak_gelu_tanh_backward(const float *g, const float *x, float *dx, int64_t n) {
#pragma clang loop interleave_count(4)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i], s = gelu_gate(v);
        dx[i] = g[i] * (s + 2.0f * v * s * (1.0f - s) * AK_GELU_C * (1.0f + 3.0f * 0.044715f * v * v));
    }
}

// One Adam(W) step over n parameters, in place. The operations and their order are those of the formula as
// written (no fused multiply-adds), so the result is the same to the bit on every path. Four vectors per
// iteration (a square root and a division in each element's chain): one core of an AMD Zen 3, 8M parameters
// (from memory) 1.55-1.70 -> 1.15-1.25 ns a parameter, 131,072 (in L2) 0.45-0.51 -> 0.42.
AK_CLONES void ak_adam_update(float *p, const float *g, float *m, float *v, int64_t n, float beta1, float beta2,
                              float decayFactor, float stepSize, float inverseC2, float epsilon) {
#pragma clang fp contract(off)
    float c1 = 1.0f - beta1, c2 = 1.0f - beta2;
#pragma clang loop interleave_count(4)
    for (int64_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = m[i] * beta1 + gi * c1, vi = v[i] * beta2 + gi * gi * c2;
        m[i] = mi; v[i] = vi;
        p[i] = p[i] * decayFactor - stepSize * mi / (__builtin_elementwise_sqrt(vi * inverseC2) + epsilon);
    }
}

// Column sums of a rows x columns block (row stride ld): out = row 0 + row 1 + ... in that order, 16 lanes
// at a time (Swift's loop of the same adds stayed 4 SSE lanes wide).
AK_CLONES void ak_column_sums(const float *x, int64_t ld, int64_t rows, int64_t columns, float *out) {
    for (int64_t j = 0; j < columns; j++) out[j] = rows > 0 ? x[j] : 0.0f;
    for (int64_t r = 1; r < rows; r++) {
        const float *row = x + r * ld;
        for (int64_t j = 0; j < columns; j++) out[j] += row[j];
    }
}

// c[r * ldc + j] += v[j] for r < rows, j < columns (a bias joining a tile of a product).
AK_CLONES void ak_add_row_vector(float *c, int64_t ldc, int64_t rows, int64_t columns, const float *v) {
    for (int64_t r = 0; r < rows; r++) {
        float *row = c + r * ldc;
        for (int64_t j = 0; j < columns; j++) row[j] += v[j];
    }
}

// y = a + b and y += x, elementwise (the residual adds and gradient sums of every step): 16 lanes where
// Swift's loops stayed 4 SSE lanes wide. One addition per element, so the sums are Swift's exactly.
AK_CLONES void ak_vadd(const float *a, const float *b, float *y, int64_t n) { for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i]; }
AK_CLONES void ak_vadd_inplace(float *y, const float *x, int64_t n) { for (int64_t i = 0; i < n; i++) y[i] += x[i]; }

// e^(x - shift), returning the sum of the results (softmax's inner loop).
// Two passes, each of which vectorizes: the exponentials, then their sum in sixteen partial sums
// (a single running sum would need reassociation, which the compiler does not do for floats).
// In place (x == y: the log-softmax's backward writes the gradient over the logits) the loop runs on one
// pointer: with two, the vectorized loop sits behind a run-time overlap check, which exact aliasing fails,
// and the scalar fallback was 4.4% of a pretraining step on AVX2.
// Four vectors per iteration, as in the GELU above (exp's chain is some 45 cycles). One core of an AMD Zen 3,
// in L1, ns a value: rows of 8,192 0.64 -> 0.52, of 101 0.80 -> 0.63, of 64 0.65 -> 0.58; slower for rows of
// 18-42 (0.86 -> 0.97 at 42, 1.26 -> 1.76 at 18), a small part of attention's exponentials.
AK_CLONES static float vexp_shifted_sum_generic(const float *x, float shift, float *y, int64_t n) {
    if (x == y) {
#pragma clang loop interleave_count(4)
        for (int64_t i = 0; i < n; i++) y[i] = exp_core(y[i] - shift);
    } else {
        const float *restrict from = x;
        float *restrict to = y;
#pragma clang loop interleave_count(4)
        for (int64_t i = 0; i < n; i++) to[i] = exp_core(from[i] - shift);
    }
    float lanes[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int j = 0; j < 16; j++) lanes[j] += y[i + j];
    }
    float s = 0.0f;
    for (; i < n; i++) s += y[i];
    for (int j = 0; j < 16; j++) s += lanes[j];
    return s;
}

#if defined(__x86_64__)
#include <immintrin.h>

// exp_core on sixteen lanes (the same reduction and polynomial).
__attribute__((target("avx512f")))
static inline __m512 exp_avx512(__m512 x) {
    const __m512 low = _mm512_set1_ps(-87.33654f), high = _mm512_set1_ps(88.37626f);
    __m512 clamped = _mm512_min_ps(_mm512_max_ps(x, low), high);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(clamped, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), clamped);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
    __m512 z = _mm512_mul_ps(r, r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3333337680e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, z, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    __m512 result = _mm512_mul_ps(p, _mm512_castsi512_ps(e));
    result = _mm512_mask_mov_ps(result, _mm512_cmp_ps_mask(x, low, _CMP_LT_OQ), _mm512_setzero_ps());
    result = _mm512_mask_mov_ps(result, _mm512_cmp_ps_mask(x, high, _CMP_GT_OQ), _mm512_set1_ps(__builtin_inff()));
    return _mm512_mask_mov_ps(result, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

// One pass, the last partial vector under a mask: attention rows are short (tens of keys), where the
// compiled loop above spent most of its time in its scalar remainder.
__attribute__((target("avx512f")))
static float vexp_shifted_sum_avx512(const float *x, float shift, float *y, int64_t n) {
    __m512 s = _mm512_set1_ps(shift), sum = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + i), s));
        _mm512_mask_storeu_ps(y + i, mask, v);
        sum = _mm512_mask_add_ps(sum, mask, sum, v);
    }
    return _mm512_reduce_add_ps(sum);
}
#endif

// Softmax of one row in place, after scaling: x = softmax(scale · x). And its backward in place:
// ds = scale · p ⊙ (ds − Σ ds ⊙ p). Attention's rows are short (tens to hundreds of keys), where the
// compiled Swift loops ran scalar (the running maximum) or four lanes wide.
AK_CLONES static void softmax_row_generic(float *x, int64_t n, float scale) {
    float m = -__builtin_inff();
    for (int64_t i = 0; i < n; i++) { x[i] *= scale; m = x[i] > m ? x[i] : m; }
    float total = vexp_shifted_sum_generic(x, m, x, n), inverse = 1.0f / total;
    for (int64_t i = 0; i < n; i++) x[i] *= inverse;
}

AK_CLONES static void softmax_row_backward_generic(const float *p, float *ds, int64_t n, float scale) {
    float lanes[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int j = 0; j < 16; j++) lanes[j] += ds[i + j] * p[i + j];
    }
    float dot = 0.0f;
    for (; i < n; i++) dot += ds[i] * p[i];
    for (int j = 0; j < 16; j++) dot += lanes[j];
    for (i = 0; i < n; i++) ds[i] = scale * p[i] * (ds[i] - dot);
}

#if defined(__x86_64__)
__attribute__((target("avx512f")))
static void softmax_row_avx512(float *x, int64_t n, float scale) {
    __m512 sc = _mm512_set1_ps(scale), m = _mm512_set1_ps(-__builtin_inff());
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + i), sc);
        _mm512_mask_storeu_ps(x + i, mask, v);
        m = _mm512_mask_max_ps(m, mask, m, v);
    }
    float total = vexp_shifted_sum_avx512(x, _mm512_reduce_max_ps(m), x, n);
    __m512 inverse = _mm512_set1_ps(1.0f / total);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(x + i, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + i), inverse));
    }
}

__attribute__((target("avx512f")))
static void softmax_row_backward_avx512(const float *p, float *ds, int64_t n, float scale) {
    __m512 dot = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        dot = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, ds + i), _mm512_maskz_loadu_ps(mask, p + i), dot);
    }
    __m512 d = _mm512_set1_ps(_mm512_reduce_add_ps(dot)), sc = _mm512_set1_ps(scale);
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 mask = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        __m512 pv = _mm512_maskz_loadu_ps(mask, p + i);
        __m512 r = _mm512_mul_ps(_mm512_mul_ps(sc, pv), _mm512_sub_ps(_mm512_maskz_loadu_ps(mask, ds + i), d));
        _mm512_mask_storeu_ps(ds + i, mask, r);
    }
}
#endif

static int has_avx512(void) {
#if defined(__x86_64__)
    // ak_cpu_features, asked once (softmax calls this per row): -1 until the first call.
    static int features = -1;
    int known = __atomic_load_n(&features, __ATOMIC_RELAXED);
    if (known < 0) {
        known = ak_cpu_features();
        __atomic_store_n(&features, known, __ATOMIC_RELAXED);
    }
    return (known & AK_CPU_AVX512F) != 0;
#else
    return 0;
#endif
}

void ak_softmax_row(float *x, int64_t n, float scale) {
    if (n <= 0) return;
#if defined(__x86_64__)
    if (has_avx512()) { softmax_row_avx512(x, n, scale); return; }
#endif
    softmax_row_generic(x, n, scale);
}

void ak_softmax_row_backward(const float *p, float *ds, int64_t n, float scale) {
#if defined(__x86_64__)
    if (has_avx512()) { softmax_row_backward_avx512(p, ds, n, scale); return; }
#endif
    softmax_row_backward_generic(p, ds, n, scale);
}

float ak_vexp_shifted_sum(const float *x, float shift, float *y, int64_t n) {
#if defined(__x86_64__)
    if (has_avx512()) return vexp_shifted_sum_avx512(x, shift, y, n);
#endif
    return vexp_shifted_sum_generic(x, shift, y, n);
}
