// bf16 GEMM on AMX (Intel Advanced Matrix Extensions): C (fp32) = op(A) op(B) with both operands rounded
// to bf16 (round to nearest even) while packing, products accumulated in fp32 by TDPBF16PS.
//
// Tiles: 16 rows of 64 bytes. An A tile is 16 rows x 32 bf16 (k); a B tile is 16 k-pairs x 16 columns,
// each entry the pair (k even, k odd) ("VNNI" layout); a C tile is 16 x 16 fp32. The micro-kernel keeps
// a 32 x 32 block of C in four tiles and, per 32-deep k step, loads two A and two B tiles.
// Packed A: tile (row tile r, k block q) at a + (r * kblocks + q) * 512; packed B: tile (column tile s,
// k block q) at b + (s * kblocks + q) * 512; rows, columns and k are zero-padded to whole tiles.
#include "CAlignKitKernels.h"
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#include "transpose16.h"
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

int ak_amx_request(void) {
#if defined(__linux__)
    // arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA): Linux hands out AMX state on request only.
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0 ? 0 : -1;
#else
    return -1;
#endif
}

#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512bf16")))

typedef struct {
    uint8_t palette, start_row, reserved[14];
    uint16_t bytes_per_row[16];
    uint8_t rows[16];
} tile_config;

AMX_TARGET static void configure(void) {
    tile_config config;
    memset(&config, 0, sizeof config);
    config.palette = 1;
    for (int t = 0; t < 8; t++) { config.rows[t] = 16; config.bytes_per_row[t] = 64; }
    _tile_loadconfig(&config);
}

// 16 floats (the first n) → 16 bf16, round to nearest even.
AMX_TARGET static inline __m256i bf16x16(const float *x, int64_t n) {
    __mmask16 mask = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
    return (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(mask, x));
}

static inline int64_t clamp16(int64_t n) { return n < 0 ? 0 : (n > 16 ? 16 : n); }

// (r0 | r1) → r0[0], r1[0], r0[1], r1[1], ...: 16-bit element j of the result is element order[j], so
// 32-bit element i is the pair (r0[i], r1[i]).
static const uint16_t pair_order[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                        8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};

AMX_TARGET static inline __m512 pairs_of(__m512i order, __m256i r0, __m256i r1) {
    return _mm512_castsi512_ps(_mm512_permutexvar_epi16(order, _mm512_inserti64x4(_mm512_castsi256_si512(r0), r1, 1)));
}

AMX_TARGET void ak_pack_bf16_a(const float *a, int64_t lda, int transposed, int64_t m, int64_t k, int64_t row0, int64_t rows,
                                uint16_t *dst) {
    int64_t kblocks = (k + 31) / 32;
    if (transposed) {
        // op(A)(i, p) = a[p * lda + i]. For each 32-deep k block, every row tile reads 16 values from each
        // of the block's 32 rows of a (consecutive row tiles continue along the same rows, so a is read
        // row by row), pairs rows 2t and 2t + 1 into 32-bit (k even, k odd) values, and one 16 x 16
        // transpose turns the 16 pair-rows into the tile's 16 rows of 32 bf16. Every tile is written
        // whole (zeros past m and k). The scalar scatter this replaces, walking one tile's 16 columns down
        // all of k, was 12% of a bf16 DPO step (dpo-small).
        __m512i order = _mm512_loadu_si512(pair_order);
        for (int64_t q = 0; q < kblocks; q++) {
            for (int64_t r = row0; r < row0 + rows; r += 16) {
                int64_t valid = clamp16(m - r);
                __m512 v[16];
                for (int t = 0; t < 16; t++) {
                    int64_t p = q * 32 + 2 * t;
                    __m256i r0 = p < k ? bf16x16(a + p * lda + r, valid) : _mm256_setzero_si256();
                    __m256i r1 = p + 1 < k ? bf16x16(a + (p + 1) * lda + r, valid) : _mm256_setzero_si256();
                    v[t] = pairs_of(order, r0, r1);
                }
                transpose16(v);
                uint16_t *tile = dst + (r / 16) * kblocks * 512 + q * 512;
                for (int i = 0; i < 16; i++) _mm512_storeu_ps((float *)(tile + i * 32), v[i]);
            }
        }
        return;
    }
    for (int64_t r = row0; r < row0 + rows; r += 16) {          // one row tile; op(A)(i, p) = a[i * lda + p]
        // Rows are written whole (the masked loads give zeros past k), so only rows past m need zeroing:
        // a memset of every tile first was 1.2% of a bf16 DPO step (dpo-small).
        uint16_t *tiles = dst + (r / 16) * kblocks * 512;
        int64_t valid = clamp16(m - r);
        if (valid < 16) {
            for (int64_t q = 0; q < kblocks; q++) memset(tiles + q * 512 + valid * 32, 0, (size_t)(16 - valid) * 64);
        }
        for (int64_t i = 0; i < valid; i++) {
            const float *row = a + (r + i) * lda;
            for (int64_t q = 0; q < kblocks; q++) {
                __m256i lo = bf16x16(row + q * 32, clamp16(k - q * 32)), hi = bf16x16(row + q * 32 + 16, clamp16(k - q * 32 - 16));
                uint16_t *out = tiles + q * 512 + i * 32;
                _mm256_storeu_si256((__m256i *)out, lo);
                _mm256_storeu_si256((__m256i *)(out + 16), hi);
            }
        }
    }
}

AMX_TARGET void ak_pack_bf16_b(const float *b, int64_t ldb, int transposed, int64_t k, int64_t n, int64_t column0, int64_t columns,
                                uint16_t *dst) {
    int64_t kblocks = (k + 31) / 32;
    __m512i order = _mm512_loadu_si512(pair_order);
    if (!transposed) {
        // op(B)(p, j) = b[p * ldb + j]: rows 2t and 2t + 1 paired column by column. Pairs of rows outer, so
        // that b is read row by row across all the column tiles (one tile's 16 columns walked down all of k
        // touched a new line of b at every step: 7% of a bf16 DPO step, dpo-small); every tile is written
        // whole, zeros past n and k.
        for (int64_t p = 0; p < kblocks * 32; p += 2) {
            for (int64_t s = column0; s < column0 + columns; s += 16) {
                int64_t valid = clamp16(n - s);
                __m256i r0 = p < k ? bf16x16(b + p * ldb + s, valid) : _mm256_setzero_si256();
                __m256i r1 = p + 1 < k ? bf16x16(b + (p + 1) * ldb + s, valid) : _mm256_setzero_si256();
                _mm512_storeu_ps((float *)(dst + (s / 16) * kblocks * 512 + (p / 32) * 512 + (p % 32) / 2 * 32), pairs_of(order, r0, r1));
            }
        }
        return;
    }
    // op(B)(p, j) = b[j * ldb + p]: 32 consecutive k values of a column are already its 16 pairs in order;
    // one 16 x 16 transpose of 32-bit pairs (columns x pairs) gives a tile's 16 pair-rows, each tile written
    // whole (zeros past n and k), instead of 16 scalar stores per column and block.
    for (int64_t s = column0; s < column0 + columns; s += 16) {   // one column tile
        uint16_t *tiles = dst + (s / 16) * kblocks * 512;
        int64_t valid = clamp16(n - s);
        for (int64_t q = 0; q < kblocks; q++) {
            __m512 v[16];
            for (int64_t j = 0; j < 16; j++) {
                const float *column = b + (s + j) * ldb + q * 32;
                v[j] = j < valid ? _mm512_castsi512_ps(_mm512_inserti64x4(
                           _mm512_castsi256_si512(bf16x16(column, clamp16(k - q * 32))), bf16x16(column + 16, clamp16(k - q * 32 - 16)), 1))
                       : _mm512_setzero_ps();
            }
            transpose16(v);
            for (int e = 0; e < 16; e++) _mm512_storeu_ps((float *)(tiles + q * 512 + e * 32), v[e]);
        }
    }
}

AMX_TARGET void ak_sgemm_amx_block(int64_t kblocks, const uint16_t *a, int64_t rowPairs, const uint16_t *b, int64_t columnPairs,
                                    float *c, int64_t ldc, int64_t m, int64_t n, int beta) {
    configure();
    float edge[32 * 32];
    // Rows outer: a row pair's A tiles stay in L1 while the column pairs' B tiles stream past.
    for (int64_t ip = 0; ip < rowPairs; ip++) {
        const uint16_t *a0 = a + 2 * ip * kblocks * 512, *a1 = a0 + kblocks * 512;
        for (int64_t jp = 0; jp < columnPairs; jp++) {
            const uint16_t *b0 = b + 2 * jp * kblocks * 512, *b1 = b0 + kblocks * 512;
            float *cb = c + 32 * ip * ldc + 32 * jp;
            int64_t mv = m - 32 * ip, nv = n - 32 * jp;
            int full = mv >= 32 && nv >= 32;
            if (full && beta) {
                _tile_loadd(0, cb, ldc * 4); _tile_loadd(1, cb + 16, ldc * 4);
                _tile_loadd(2, cb + 16 * ldc, ldc * 4); _tile_loadd(3, cb + 16 * ldc + 16, ldc * 4);
            } else {
                _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
            }
            for (int64_t q = 0; q < kblocks; q++) {
                // Tile loads that miss L1 stall: fetch the next step's four tiles into L1 now (2.5x
                // measured on a 32-row x 256-column block; a prefetch past the end is harmless).
                const char *next[4] = {(const char *)(a0 + (q + 1) * 512), (const char *)(a1 + (q + 1) * 512),
                                       (const char *)(b0 + (q + 1) * 512), (const char *)(b1 + (q + 1) * 512)};
                for (int line = 0; line < 1024; line += 64) {
                    _mm_prefetch(next[0] + line, _MM_HINT_T0); _mm_prefetch(next[1] + line, _MM_HINT_T0);
                    _mm_prefetch(next[2] + line, _MM_HINT_T0); _mm_prefetch(next[3] + line, _MM_HINT_T0);
                }
                _tile_loadd(4, a0 + q * 512, 64);
                _tile_loadd(6, b0 + q * 512, 64);
                _tile_loadd(5, a1 + q * 512, 64);
                _tile_loadd(7, b1 + q * 512, 64);
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
            if (full) {
                _tile_stored(0, cb, ldc * 4); _tile_stored(1, cb + 16, ldc * 4);
                _tile_stored(2, cb + 16 * ldc, ldc * 4); _tile_stored(3, cb + 16 * ldc + 16, ldc * 4);
                continue;
            }
            _tile_stored(0, edge, 128); _tile_stored(1, edge + 16, 128);
            _tile_stored(2, edge + 512, 128); _tile_stored(3, edge + 528, 128);
            int64_t rows = mv < 32 ? mv : 32, cols = nv < 32 ? nv : 32;
            for (int64_t i = 0; i < rows; i++) {
                for (int64_t j = 0; j < cols; j++) cb[i * ldc + j] = (beta ? cb[i * ldc + j] : 0.0f) + edge[i * 32 + j];
            }
        }
    }
    _tile_release();
}

#else
int ak_amx_request(void) { return -1; }
void ak_pack_bf16_a(const float *a, int64_t lda, int transposed, int64_t m, int64_t k, int64_t row0, int64_t rows, uint16_t *dst) {}
void ak_pack_bf16_b(const float *b, int64_t ldb, int transposed, int64_t k, int64_t n, int64_t column0, int64_t columns, uint16_t *dst) {}
void ak_sgemm_amx_block(int64_t kblocks, const uint16_t *a, int64_t rowPairs, const uint16_t *b, int64_t columnPairs,
                        float *c, int64_t ldc, int64_t m, int64_t n, int beta) {}
#endif

void ak_round_bf16(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, &x[i], 4);
        if ((bits & 0x7F800000u) == 0x7F800000u && (bits & 0x7FFFFFu)) continue;   // NaN stays NaN
        bits = (bits + 0x7FFFu + ((bits >> 16) & 1u)) & 0xFFFF0000u;
        memcpy(&x[i], &bits, 4);
    }
}
