/*
 * relu.h: ReLU, and the fused residual join y = relu(a + b), elementwise over
 * any tensor (the layout does not matter; count = number of elements).
 *
 *   relu_forward:      y = max(x, 0)
 *   relu_add_forward:  y = max(a + b, 0)        (ResBlock output: branch + shortcut)
 *   relu_backward:     dx = dy * [y > 0]        (uses the forward OUTPUT y)
 * The backward of relu_add_forward is relu_backward on its output y: the
 * result is the gradient of both a and b (the add passes it through).
 * ReLU's derivative at 0 is taken as 0, as PyTorch does (threshold_backward).
 * NaN inputs propagate through forward (max(NaN, 0) = NaN as torch.relu).
 *
 * In place is allowed: y may equal x (or a or b); dx may equal dy.
 * Not here: the plain add (add.h); other activations (the chapter uses ReLU).
 */
#ifndef NF_RELU_H
#define NF_RELU_H

#include "kdtype.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    size_t count;    // number of elements
    kdtype_t dtype;  // storage of every tensor here (CPU: F32 only)
} relu_params_t;

// ---------------------------------------------------------------------------
// CPU reference
void relu_forward_cpu(float *y,        // (count)
                      const float *x,  // (count)
                      const relu_params_t *p);
void relu_add_forward_cpu(float *y,        // (count)
                          const float *a,  // (count)
                          const float *b,  // (count)
                          const relu_params_t *p);
void relu_backward_cpu(float *dx,        // (count), overwritten
                       const float *dy,  // (count)
                       const float *y,   // (count) the forward output
                       const relu_params_t *p);

// ---------------------------------------------------------------------------
// CUDA twin: same shapes as above; device pointers of `dtype`; own grid-stride kernels
#ifdef HAVE_CUDA
typedef struct cuda_ctx_t cuda_ctx_t;
void relu_forward_cuda(void *y, const void *x, const relu_params_t *p, cuda_ctx_t *ctx);
void relu_add_forward_cuda(void *y, const void *a, const void *b, const relu_params_t *p,
                           cuda_ctx_t *ctx);
void relu_backward_cuda(void *dx, const void *dy, const void *y, const relu_params_t *p,
                        cuda_ctx_t *ctx);
#endif

#ifdef __cplusplus
}
#endif

#endif
