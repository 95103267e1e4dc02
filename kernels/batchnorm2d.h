/*
 * batchnorm2d.h: BatchNorm2d over NHWC activations, as PyTorch computes it
 * (fastai-spec.md A.4): statistics per channel over (N, H, W).
 *
 * Train (batch statistics), with M = N*H*W:
 *   mean[c]   = (1/M) sum x[.., c]
 *   var_b[c]  = (1/M) sum (x - mean)^2            biased: used to normalise
 *   invstd[c] = 1 / sqrt(var_b[c] + eps)
 *   y         = gamma[c] * (x - mean[c]) * invstd[c] + beta[c]
 *   running_mean = (1 - momentum) * running_mean + momentum * mean
 *   running_var  = (1 - momentum) * running_var  + momentum * var_b * M/(M-1)
 *                                                  (UNBIASED, as PyTorch)
 *   The batch mean and invstd are saved for the backward pass.
 * Eval (running statistics):
 *   y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta
 * Backward (train mode; xhat = (x - mean) * invstd):
 *   dbeta[c]  = sum dy
 *   dgamma[c] = sum dy * xhat
 *   dx        = gamma * invstd / M * (M*dy - dbeta - xhat * dgamma)
 *
 * gamma, beta, running/saved statistics and dgamma/dbeta are fp32 always;
 * x, y, dx, dy follow `dtype`. PyTorch's defaults: eps 1e-5, momentum 0.1.
 * Outputs first, then in/out state, then inputs, then params. Nothing here
 * allocates. Not here: eval-mode backward (frozen BN is not used by the
 * chapter), fused BN+ReLU (the engine composes batchnorm2d and relu).
 */
#ifndef NF_BATCHNORM2D_H
#define NF_BATCHNORM2D_H

#include "kdtype.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n, h, w, c;  // activation (N, H, W, C)
    float eps;       // added to the variance (PyTorch default 1e-5)
    float momentum;  // running-stat update factor (PyTorch default 0.1)
    kdtype_t dtype;  // storage of x, y, dx, dy (CPU: F32 only)
} batchnorm2d_params_t;

// Fills eps = 1e-5, momentum = 0.1, dtype F32 for an (n, h, w, c) activation.
batchnorm2d_params_t batchnorm2d_default_params(int n, int h, int w, int c);

// ---------------------------------------------------------------------------
// CPU reference (fp32 data; per-channel sums accumulate in double in a fixed
// order, so results do not depend on the thread count).

void batchnorm2d_forward_train_cpu(float *y,             // (N, H, W, C)
                                   float *save_mean,     // (C) batch mean
                                   float *save_invstd,   // (C) 1/sqrt(biased var + eps)
                                   float *running_mean,  // (C) in/out
                                   float *running_var,   // (C) in/out
                                   const float *x,       // (N, H, W, C)
                                   const float *gamma,   // (C)
                                   const float *beta,    // (C)
                                   const batchnorm2d_params_t *p);

void batchnorm2d_forward_eval_cpu(float *y,                   // (N, H, W, C)
                                  const float *x,             // (N, H, W, C)
                                  const float *gamma,         // (C)
                                  const float *beta,          // (C)
                                  const float *running_mean,  // (C)
                                  const float *running_var,   // (C)
                                  const batchnorm2d_params_t *p);

// Gradients of a train-mode forward; all three outputs are overwritten.
void batchnorm2d_backward_cpu(float *dx,                 // (N, H, W, C)
                              float *dgamma,             // (C)
                              float *dbeta,              // (C)
                              const float *dy,           // (N, H, W, C)
                              const float *x,            // (N, H, W, C)
                              const float *gamma,        // (C)
                              const float *save_mean,    // (C) from forward_train
                              const float *save_invstd,  // (C) from forward_train
                              const batchnorm2d_params_t *p);

// ---------------------------------------------------------------------------
// CUDA twin: cuDNN 9 legacy BatchNorm (CUDNN_BATCHNORM_SPATIAL, NHWC
// descriptors; cuDNN updates the running variance with the unbiased batch
// variance and saves 1/sqrt(var + eps), the same contract as above).
// Same shapes as the CPU twins above. Data pointers are device pointers of
// `dtype`; the (C) vectors are fp32 device pointers.
#ifdef HAVE_CUDA
typedef struct cuda_ctx_t cuda_ctx_t;

void batchnorm2d_forward_train_cuda(void *y, float *save_mean, float *save_invstd,
                                    float *running_mean, float *running_var, const void *x,
                                    const float *gamma, const float *beta,
                                    const batchnorm2d_params_t *p, cuda_ctx_t *ctx);
void batchnorm2d_forward_eval_cuda(void *y, const void *x, const float *gamma, const float *beta,
                                   const float *running_mean, const float *running_var,
                                   const batchnorm2d_params_t *p, cuda_ctx_t *ctx);
void batchnorm2d_backward_cuda(void *dx, float *dgamma, float *dbeta, const void *dy,
                               const void *x, const float *gamma, const float *save_mean,
                               const float *save_invstd, const batchnorm2d_params_t *p,
                               cuda_ctx_t *ctx);
#endif

#ifdef __cplusplus
}
#endif

#endif
