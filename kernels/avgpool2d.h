/*
 * avgpool2d.h: average pooling, NHWC (geometry and divisor rule: pool2d.h).
 *
 *   window rows [hs, he) with hs = oh*stride - pad, he = min(hs + KH, H + pad);
 *   pool_size = (he - hs) * (we - ws)          (clipped to the padded input)
 *   then clipped to the image: hs = max(hs, 0), he = min(he, H);
 *   divisor = count_include_pad ? pool_size : (he - hs) * (we - ws)
 *   y = (sum of x over the clipped window) / divisor
 * This is PyTorch's AvgPool2d. For the ResNet-D shortcut, AvgPool2d(2, 2, 0,
 * ceil_mode=True), pad is 0, so the partial edge window of an odd size is
 * divided by its in-bounds element count (1 or 2), as fastai gets it.
 *   backward: dx[ih, iw] = sum over windows covering (ih, iw) of dy / divisor
 *             (a gather: deterministic; dx overwritten).
 */
#ifndef NF_AVGPOOL2D_H
#define NF_AVGPOOL2D_H

#include "pool2d.h"

#ifdef __cplusplus
extern "C" {
#endif

void avgpool2d_forward_cpu(float *y,        // (N, OH, OW, C)
                           const float *x,  // (N, H, W, C)
                           const pool2d_params_t *p);
void avgpool2d_backward_cpu(float *dx,        // (N, H, W, C), overwritten
                            const float *dy,  // (N, OH, OW, C)
                            const pool2d_params_t *p);

// CUDA twin: the same shapes as the CPU function(s) above, device pointers
// (data tensors of `dtype`, the rest as documented there).
#ifdef HAVE_CUDA
typedef struct cuda_ctx_t cuda_ctx_t;
void avgpool2d_forward_cuda(void *y, const void *x, const pool2d_params_t *p, cuda_ctx_t *ctx);
void avgpool2d_backward_cuda(void *dx, const void *dy, const pool2d_params_t *p,
                             cuda_ctx_t *ctx);
#endif

#ifdef __cplusplus
}
#endif

#endif
