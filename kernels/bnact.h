/*
 * bnact.h: BatchNorm2d fused with what follows it in xresnet: an optional
 * residual add and an optional ReLU, over NHWC activations.
 *
 *   y = act(bn(x) [+ r])      act = ReLU when `relu`, identity otherwise
 *
 * bn is batchnorm2d.h's BatchNorm exactly (biased batch variance to
 * normalise, unbiased for the running variance, momentum, eps, saved mean and
 * 1/sqrt(var + eps)). The three cases the xresnet executors use:
 *   ConvLayer's BN + ReLU          relu, no residual
 *   the last BN of a ResBlock's    relu, residual = the shortcut:
 *   conv path + the join           y = ReLU(bn(x) + shortcut), bn(x) never stored
 *   the idpath BN (no ReLU)        neither
 *
 * Backward (train mode), with dz = dy * [y > 0] (dy when no ReLU):
 *   dbeta  = sum dz        dgamma = sum dz * xhat,   xhat = (x - mean) * invstd
 *   dx     = gamma * invstd / M * (M dz - dbeta - xhat * dgamma)
 *   dr     = dz            (the residual's gradient)
 * `accumulate_dx` / `accumulate_dr` add the gradient to what the buffer holds
 * instead of overwriting it: a value consumed twice (a block's input feeds
 * the conv path and the identity shortcut) gets its second contribution
 * without a temporary and an extra pass. dgamma and dbeta are overwritten.
 *
 * Why fused: the residual join and the ReLUs are memory-bound passes of their
 * own; folding them into BatchNorm's apply pass saves reading and writing one
 * activation per layer forward and the separate ReLU-backward pass. The CUDA
 * twin is our own kernels (not cuDNN's BatchNorm): deterministic fixed-order
 * reductions, 16-byte vector accesses, fp32 arithmetic on f32 or bf16 storage.
 *
 * Shapes: x, y, r, dx, dy, dr (N, H, W, C) in `dtype`; gamma, beta, running
 * and saved statistics, dgamma, dbeta (C) fp32. Outputs must not alias
 * inputs. Outputs first, then in/out state, then inputs, then params; the
 * CUDA twin adds the context and uses ctx->workspace (at least
 * bnact_workspace_bytes_cuda). Nothing here allocates.
 */
#ifndef NF_BNACT_H
#define NF_BNACT_H

#include "kdtype.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n, h, w, c;      // activation (N, H, W, C); N*H*W > 1 for training
    float eps;           // added to the variance (1e-5)
    float momentum;      // running-stat factor (0.1)
    bool relu;           // ReLU after the (optional) residual add
    bool residual;       // add r before the activation
    bool accumulate_dx;  // backward: dx += gradient
    bool accumulate_dr;  // backward: dr += gradient
    kdtype_t dtype;      // storage of x, y, r and their gradients (CPU: F32 only)
} bnact_params_t;

// eps 1e-5, momentum 0.1, no ReLU, no residual, overwrite, F32.
bnact_params_t bnact_default_params(int n, int h, int w, int c);

// ---------------------------------------------------------------------------
// CPU reference (fp32 data; per-channel sums in double, in (n, h, w) order,
// one channel per thread: independent of the thread count). Without ReLU and
// residual it computes exactly what batchnorm2d_*_cpu computes, bit for bit.

void bnact_forward_train_cpu(float *y,             // (N, H, W, C)
                             float *save_mean,     // (C)
                             float *save_invstd,   // (C)
                             float *running_mean,  // (C) in/out
                             float *running_var,   // (C) in/out
                             const float *x,       // (N, H, W, C)
                             const float *r,       // (N, H, W, C) residual, or NULL
                             const float *gamma,   // (C)
                             const float *beta,    // (C)
                             const bnact_params_t *p);

void bnact_forward_eval_cpu(float *y,                   // (N, H, W, C)
                            const float *x,             // (N, H, W, C)
                            const float *r,             // (N, H, W, C) or NULL
                            const float *gamma,         // (C)
                            const float *beta,          // (C)
                            const float *running_mean,  // (C)
                            const float *running_var,   // (C)
                            const bnact_params_t *p);

void bnact_backward_cpu(float *dx,                 // (N, H, W, C)
                        float *dr,                 // (N, H, W, C) when residual, else NULL
                        float *dgamma,             // (C) overwritten
                        float *dbeta,              // (C) overwritten
                        const float *dy,           // (N, H, W, C)
                        const float *y,            // (N, H, W, C) forward output (relu), or NULL
                        const float *x,            // (N, H, W, C)
                        const float *gamma,        // (C)
                        const float *save_mean,    // (C)
                        const float *save_invstd,  // (C)
                        const bnact_params_t *p);

// ---------------------------------------------------------------------------
// CUDA twin: same shapes, device pointers. Three launches per direction: a
// partial reduction over row chunks, a per-channel finalisation (double),
// and the elementwise apply pass. The chunking depends only on the shape, so
// results are reproducible run to run and device to device.
#ifdef HAVE_CUDA
typedef struct cuda_ctx_t cuda_ctx_t;

// Workspace (partial sums) the train forward and the backward need.
size_t bnact_workspace_bytes_cuda(const bnact_params_t *p);

void bnact_forward_train_cuda(void *y, float *save_mean, float *save_invstd,
                              float *running_mean, float *running_var, const void *x,
                              const void *r, const float *gamma, const float *beta,
                              const bnact_params_t *p, cuda_ctx_t *ctx);
void bnact_forward_eval_cuda(void *y, const void *x, const void *r, const float *gamma,
                             const float *beta, const float *running_mean,
                             const float *running_var, const bnact_params_t *p, cuda_ctx_t *ctx);
void bnact_backward_cuda(void *dx, void *dr, float *dgamma, float *dbeta, const void *dy,
                         const void *y, const void *x, const float *gamma, const float *save_mean,
                         const float *save_invstd, const bnact_params_t *p, cuda_ctx_t *ctx);
#endif

#ifdef __cplusplus
}
#endif

#endif
