/*
 * adaptive_avgpool.h: AdaptiveAvgPool2d(1), the head's global average pool,
 * NHWC in, (N, C) out (= (N, 1, 1, C), already "flattened").
 *
 *   y[n, c]         = (1 / (H*W)) * sum_{h, w} x[n, h, w, c]
 *   dx[n, h, w, c]  = dy[n, c] / (H*W)                      (overwritten)
 * Not here: other output sizes (xresnet's head only pools to 1x1).
 */
#ifndef NF_ADAPTIVE_AVGPOOL_H
#define NF_ADAPTIVE_AVGPOOL_H

#include "kdtype.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n, h, w, c;  // input (N, H, W, C)
    kdtype_t dtype;  // storage of x, y, dx, dy (CPU: F32 only)
} adaptive_avgpool_params_t;

void adaptive_avgpool_forward_cpu(float *y,        // (N, C)
                                  const float *x,  // (N, H, W, C)
                                  const adaptive_avgpool_params_t *p);
void adaptive_avgpool_backward_cpu(float *dx,        // (N, H, W, C), overwritten
                                   const float *dy,  // (N, C)
                                   const adaptive_avgpool_params_t *p);

// CUDA twin: the same shapes as the CPU function(s) above, device pointers
// (data tensors of `dtype`, the rest as documented there).
#ifdef HAVE_CUDA
typedef struct cuda_ctx_t cuda_ctx_t;
void adaptive_avgpool_forward_cuda(void *y, const void *x, const adaptive_avgpool_params_t *p,
                                   cuda_ctx_t *ctx);
void adaptive_avgpool_backward_cuda(void *dx, const void *dy, const adaptive_avgpool_params_t *p,
                                    cuda_ctx_t *ctx);
#endif

#ifdef __cplusplus
}
#endif

#endif
