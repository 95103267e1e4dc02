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

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int simd_w;               // outputs [0, simd_w) are done by the kernel (even)
    int kpairs;               // tap pairs per output (taps padded to even with 0 weights)
    const int32_t *bounds;    // (out_w, 2): first source pixel, taps
    // (simd_w / 2, kpairs, 2, 8): for each pair of outputs and tap pair, the hi
    // then the lo halves as two 256-bit rows: 4 x (w[2p+1] << 16 | w[2p]) of
    // the first output, then 4 x the same of the second
    const int32_t *w;
    // for the row-block kernel: every output, plain 22-bit weights
    int out_w, in_w, ksize;
    const int32_t *k;         // (out_w, ksize)
    uint8_t *scratch;         // (in_w, 32) bytes: 8 rows of each source column
} loader_hpass_t;

// One source row -> outputs [0, simd_w) of one output row (RGB). Reads at most
// 8 bytes from each tap pair's first byte; simd_w guarantees that stays in the row.
// The weights need no particular alignment.
typedef void (*loader_hrow_fn)(const loader_hpass_t *h, const uint8_t *in_row, uint8_t *out_row);

// Eight source rows (in_stride bytes apart) -> all outputs of eight output rows
// (out_stride apart). The rows are transposed into scratch so that each output
// is a weighted sum of whole 24-byte columns (8 rows x RGB), like the vertical
// pass: the per-output work is shared by 8 rows. Reads exactly the row bytes.
typedef void (*loader_hblock_fn)(const loader_hpass_t *h, const uint8_t *in, size_t in_stride,
                                 uint8_t *out, size_t out_stride);

// The best kernels this CPU runs, or NULL (then resample.c stays scalar).
loader_hrow_fn loader_resample_simd_hrow(void);
loader_hblock_fn loader_resample_simd_hblock(void);

#endif
