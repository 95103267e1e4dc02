/*
 * resample_simd.h: the vectorised horizontal pass of resample.c, chosen at run
 * time. Not a public API: resample.c is its only caller.
 *
 * Exactness with 16-bit multiplies: Pillow's 22-bit weights are split as
 * w = hi * 2^11 + lo (0 <= lo < 2^11, 0 <= hi <= 2^11), so
 *   sum(p * w) = 2^11 * sum(p * hi) + sum(p * lo),
 * each sum computed with pmaddwd on (pixel, pixel) x (weight, weight) pairs of
 * 16-bit values, exactly: the result is the same integer Pillow computes.
 */
#ifndef LOADER_RESAMPLE_SIMD_H
#define LOADER_RESAMPLE_SIMD_H

#include <stdint.h>

typedef struct {
    int simd_w;               // outputs [0, simd_w) are done by the kernel (even)
    int kpairs;               // tap pairs per output (taps padded to even with 0 weights)
    const int32_t *bounds;    // (out_w, 2): first source pixel, taps
    // (simd_w / 2, kpairs, 2, 8): for each pair of outputs and tap pair, the hi
    // then the lo halves as two 256-bit rows: 4 x (w[2p+1] << 16 | w[2p]) of
    // the first output, then 4 x the same of the second
    const int32_t *w;
} loader_hpass_t;

// One source row -> outputs [0, simd_w) of one output row (RGB). Reads at most
// 8 bytes from each tap pair's first byte; simd_w guarantees that stays in the row.
// The weights need no particular alignment.
typedef void (*loader_hrow_fn)(const loader_hpass_t *h, const uint8_t *in_row, uint8_t *out_row);

// The best kernel this CPU runs, or NULL (then resample.c stays scalar).
loader_hrow_fn loader_resample_simd_hrow(void);

#endif
