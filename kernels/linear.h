/*
 * linear.h: the fully connected layer, as PyTorch's nn.Linear.
 *
 *   y[n, o]  = sum_i x[n, i] * w[o, i] + b[o]
 *   dx[n, i] = sum_o dy[n, o] * w[o, i]
 *   dw[o, i] = sum_n dy[n, o] * x[n, i]
 *   db[o]    = sum_n dy[n, o]
 * w is (OUT, IN) as PyTorch stores it. b and db are fp32 always and may be
 * NULL (no bias). In backward, dx may be NULL (the first layer needs none).
 * Backward outputs are overwritten. Nothing here allocates.
 */
#ifndef NF_LINEAR_H
#define NF_LINEAR_H

#include "kdtype.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n;           // batch rows
    int in, out;     // features in and out
    kdtype_t dtype;  // storage of x, y, w, dx, dy, dw (CPU: F32 only)
} linear_params_t;

// ---------------------------------------------------------------------------
// CPU reference (dot products in a fixed order; OpenMP over outputs only)
void linear_forward_cpu(float *y,        // (N, OUT)
                        const float *x,  // (N, IN)
                        const float *w,  // (OUT, IN)
                        const float *b,  // (OUT) fp32, or NULL
                        const linear_params_t *p);
void linear_backward_cpu(float *dx,        // (N, IN), or NULL
                         float *dw,        // (OUT, IN)
                         float *db,        // (OUT) fp32, or NULL
                         const float *dy,  // (N, OUT)
                         const float *x,   // (N, IN)
                         const float *w,   // (OUT, IN)
                         const linear_params_t *p);

// ---------------------------------------------------------------------------
// CUDA twin: cuBLAS cublasGemmEx (fp32 compute; f32 pedantic math, bf16
// tensor ops), own kernels for the bias and its gradient. Same shapes as
// above; device pointers, x/y/w/dx/dy/dw of `dtype`, b/db fp32.
#ifdef HAVE_CUDA
typedef struct cuda_ctx_t cuda_ctx_t;
void linear_forward_cuda(void *y, const void *x, const void *w, const float *b,
                         const linear_params_t *p, cuda_ctx_t *ctx);
void linear_backward_cuda(void *dx, void *dw, float *db, const void *dy, const void *x,
                          const void *w, const linear_params_t *p, cuda_ctx_t *ctx);
#endif

#ifdef __cplusplus
}
#endif

#endif
