/*
 * resample.h: Pillow's Image.resize(size, BILINEAR, box) for 8-bit RGB, bit-exact.
 *
 * fastai's presize (Resize(S, method='crop')) crops with Pillow and resizes with
 * Pillow's bilinear filter, which is not a 4-tap bilinear: it is a separable
 * two-pass convolution (horizontal pass first, into a uint8 temporary holding
 * only the rows the vertical pass needs, then the vertical pass) with a
 * triangle filter widened by the scale when shrinking (antialiased), weights
 * normalised per output pixel and rounded to 22-bit fixed point, and the sum
 * rounded by adding 2^21 and shifting (fastai-spec.md Appendix A.1). This file
 * computes the same integers, so the output equals PIL's byte for byte; a
 * golden test (tests/loader/test_presize.c) checks it against PIL fixtures.
 *
 * Written by hand rather than taken from a library because no Debian library
 * reproduces Pillow's integer arithmetic, and because speed matters here: the
 * vertical pass is laid out so the compiler vectorises it (-O3), and the
 * horizontal pass has an AVX2 kernel (resample_avx2.c, chosen at run time,
 * exact by splitting each weight into two 11-bit halves); the plain-C pass is
 * the reference the tests compare it with.
 *
 * CPU only, by design: loader workers are CPU processes. It never allocates:
 * the caller sizes a workspace with loader_resample_workspace_bytes().
 */
#ifndef LOADER_RESAMPLE_H
#define LOADER_RESAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t in_w, in_h;    // source image size
    float box[4];           // source region x0, y0, x1, y1 (Pillow's box, float like Pillow)
    uint32_t out_w, out_h;  // output size
    bool scalar;            // force the plain-C reference path (tests compare the two)
} loader_resample_params_t;

// Workspace bytes for these parameters (coefficients, bounds, temporary rows).
size_t loader_resample_workspace_bytes(const loader_resample_params_t *p);

// out = Pillow resize of the box of in to out_w x out_h, BILINEAR.
// in_stride: bytes between source rows (>= in_w*3).
void loader_resample_rgb(const loader_resample_params_t *p,
                         const uint8_t *in,  // (in_h, in_w, 3), rows in_stride bytes apart
                         size_t in_stride,
                         uint8_t *out,       // (out_h, out_w, 3)
                         void *workspace);   // loader_resample_workspace_bytes(p) bytes

#endif
