/*
 * adam.h: one step of fastai's Adam (really AdamW) over a flat fp32
 * parameter buffer (fastai-spec.md section 6.2). For each element i, in
 * this order, with the CURRENT (scheduled) hyper-parameters:
 *
 *   if do_wd[i] and wd != 0:  p = p * (1 - lr*wd)          decoupled decay first
 *   m = mom * m + (1 - mom) * g                             dampened first moment
 *   v = sqr_mom * v + (1 - sqr_mom) * g * g
 *   p = p - (lr / debias1) * m / (sqrt(v / debias2) + eps)  eps OUTSIDE the sqrt
 *   debias1 = 1 - mom^step, debias2 = 1 - sqr_mom^step     (current mom)
 *
 * `step` is the step count after this update's increment (1 on the first
 * update); m and v start at 0. The scalar factors (1 - lr*wd, lr/debias1,
 * debias2) are computed in double, as fastai computes them in Python, and
 * rounded to fp32 once; the per-element arithmetic is fp32.
 * fastai defaults: mom 0.9 (scheduled 0.95 -> 0.85 -> 0.95 by one-cycle),
 * sqr_mom 0.99, eps 1e-5, wd 0.01; no decay on BatchNorm parameters and
 * biases (wd_bn_bias=False): the caller's do_wd mask says which elements.
 *
 * The engine owns parameter groups, the step counter and the schedules; it
 * zeroes gradients. Nothing here allocates.
 */
#ifndef NF_ADAM_H
#define NF_ADAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    size_t count;    // number of parameters
    double lr;       // learning rate
    double mom;      // beta1 (fastai's mom)
    double sqr_mom;  // beta2 (fastai: 0.99)
    double eps;      // added outside the sqrt (fastai: 1e-5)
    double wd;       // decoupled weight decay (fastai: 0.01)
    int64_t step;    // >= 1: number of updates including this one
} adam_params_t;

// fastai's defaults (lr 1e-3, mom 0.9, sqr_mom 0.99, eps 1e-5, wd 0.01) for
// count parameters at step 1; the caller sets lr, mom and step each update.
adam_params_t adam_default_params(size_t count);

// All fp32 except param_bf16 (a bf16 copy of the updated parameters for
// bf16 forward passes; NULL to skip) and do_wd (1 = decay this element;
// NULL = decay every element).
void adam_step_cpu(float *param,          // (count) in/out master weights
                   float *grad_avg,       // (count) in/out m
                   float *sqr_avg,        // (count) in/out v
                   uint16_t *param_bf16,  // (count) out, or NULL
                   const float *grad,     // (count)
                   const uint8_t *do_wd,  // (count), or NULL (all)
                   const adam_params_t *p);

// ---------------------------------------------------------------------------
// The flat step of a GPU training step (what a captured CUDA graph replays).
// The scalar factors of one update, computed on the host from adam_params_t
// (double, rounded once: exactly what adam_step uses) and read by the step
// through a pointer, so that a graph captured once reads each step's lr, mom
// and bias corrections from memory the host refreshes before launching it.
typedef struct {
    float decay;      // 1 - lr*wd
    float mom;        // beta1
    float damp1;      // 1 - mom
    float sqr_mom;    // beta2
    float damp2;      // 1 - sqr_mom
    float debias2;    // 1 - sqr_mom^step
    float step_size;  // -lr / (1 - mom^step)
    float eps;
    int32_t wd_on;    // wd != 0
    int32_t pad_;
} adam_scalars_t;

adam_scalars_t adam_scalars(const adam_params_t *p);

// Per-element flags of the flat step.
#define ADAM_FLAG_WD 1u         // decay this element (conv and linear weights)
#define ADAM_FLAG_GRAD_BF16 2u  // its gradient is in grad_bf16 (bf16 conv/linear weight grads)

// adam_step over count elements, the gradient of element i taken from
// grad_bf16[i] when flags[i] has ADAM_FLAG_GRAD_BF16, else from grad[i]
// (the layers write bf16 weight gradients straight into the flat bf16
// buffer: no cast pass). Same arithmetic as adam_step_cpu: with no bf16
// flag the results are bitwise equal. s points to host memory for the CPU
// op, to device memory for the CUDA twin.
void adam_flat_step_cpu(float *param,              // (count) in/out
                        float *grad_avg,           // (count) in/out
                        float *sqr_avg,            // (count) in/out
                        uint16_t *param_bf16,      // (count) out, or NULL
                        const float *grad,         // (count)
                        const uint16_t *grad_bf16, // (count) or NULL when no flag asks for it
                        const uint8_t *flags,      // (count) ADAM_FLAG_*
                        const adam_scalars_t *s, size_t count);

// CUDA twin: the same shapes as the CPU function(s) above, device pointers
// (data tensors of `dtype`, the rest as documented there).
#ifdef HAVE_CUDA
typedef struct cuda_ctx_t cuda_ctx_t;
void adam_step_cuda(float *param, float *grad_avg, float *sqr_avg, uint16_t *param_bf16,
                    const float *grad, const uint8_t *do_wd, const adam_params_t *p,
                    cuda_ctx_t *ctx);
void adam_flat_step_cuda(float *param, float *grad_avg, float *sqr_avg, uint16_t *param_bf16,
                         const float *grad, const uint16_t *grad_bf16, const uint8_t *flags,
                         const adam_scalars_t *s, size_t count, cuda_ctx_t *ctx);
#endif

#ifdef __cplusplus
}
#endif

#endif
