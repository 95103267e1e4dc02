/*
 * maxpool2d.h: max pooling, NHWC, with the argmax saved for the backward
 * pass (geometry: pool2d.h; the stem uses 3x3, stride 2, pad 1).
 *
 *   y[n, oh, ow, c] = max over the window (padding is -inf: never chosen)
 *   argmax[n, oh, ow, c] = ih * W + iw of the first maximum in row-major
 *                          window order (PyTorch's tie rule); a NaN wins
 *                          and propagates, as in PyTorch.
 *   backward: dx[n, ih, iw, c] = sum of dy over the windows whose argmax is
 *             (ih, iw). Computed as a gather over the windows covering each
 *             input element: deterministic, no atomics, dx overwritten.
 */
#ifndef NF_MAXPOOL2D_H
#define NF_MAXPOOL2D_H

#include "pool2d.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

void maxpool2d_forward_cpu(float *y,           // (N, OH, OW, C)
                           int32_t *argmax,    // (N, OH, OW, C) ih*W + iw
                           const float *x,     // (N, H, W, C)
                           const pool2d_params_t *p);
void maxpool2d_backward_cpu(float *dx,              // (N, H, W, C), overwritten
                            const float *dy,        // (N, OH, OW, C)
                            const int32_t *argmax,  // (N, OH, OW, C) from forward
                            const pool2d_params_t *p);

// CUDA twin: the same shapes as the CPU function(s) above, device pointers
// (data tensors of `dtype`, the rest as documented there).
#ifdef HAVE_CUDA
typedef struct cuda_ctx_t cuda_ctx_t;
void maxpool2d_forward_cuda(void *y, int32_t *argmax, const void *x, const pool2d_params_t *p,
                            cuda_ctx_t *ctx);
void maxpool2d_backward_cuda(void *dx, const void *dy, const int32_t *argmax,
                             const pool2d_params_t *p, cuda_ctx_t *ctx);
#endif

#ifdef __cplusplus
}
#endif

#endif
