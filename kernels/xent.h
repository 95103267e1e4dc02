/*
 * xent.h: softmax cross-entropy losses over logits (N, C), reduced with the
 * mean as fastai does: plain cross-entropy (CrossEntropyLossFlat), label
 * smoothing (LabelSmoothingCrossEntropy, fastai-spec.md section 9) and the
 * Mixup loss of either (section 8.1), plus the softmax for predictions.
 *
 * With lp = log_softmax(logits[j]), eps = smoothing, c = C:
 *   l(j, y) = (eps / c) * (-sum_k lp[k]) + (1 - eps) * (-lp[y])
 *             (eps = 0 is plain cross-entropy)
 *   Mixup, per-sample weight lam[j] in [0, 1] and partner target y2[j]:
 *   L_j = lam[j] * l(j, y[j]) + (1 - lam[j]) * l(j, y2[j])
 *       = (eps/c)(-sum_k lp[k]) + (1 - eps)(-lam lp[y] - (1 - lam) lp[y2])
 *   loss = (1/N) sum_j L_j
 * Gradient of the mean loss: dlogits[j, k] = (softmax[j, k] - q[j, k]) / N
 *   with q[j, k] = eps/c + (1 - eps) * (lam[j] [k = y] + (1 - lam[j]) [k = y2]).
 * Pass target_mix = NULL and lam = NULL for the plain (not Mixup) loss.
 *
 * Logits and dlogits follow `dtype`; the loss, per-sample losses, lam and
 * probabilities are fp32. Targets must be in [0, C): the CPU ops abort on
 * a bad target (callers validate labels where they enter the process);
 * the CUDA ops write NaN losses for it.
 */
#ifndef NF_XENT_H
#define NF_XENT_H

#include "kdtype.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n, c;         // logits (N, C)
    float smoothing;  // label-smoothing eps: 0 = cross-entropy, 0.1 = fastai's default
    kdtype_t dtype;   // storage of logits and dlogits (CPU: F32 only)
} xent_params_t;

// ---------------------------------------------------------------------------
// CPU reference (log-sum-exp with the max subtracted; sums in double)

// Mean loss, and optionally each sample's L_j.
void xent_forward_cpu(float *loss,                // (1) mean over the batch
                      float *loss_per_sample,     // (N) or NULL
                      const float *logits,        // (N, C)
                      const int32_t *target,      // (N)
                      const int32_t *target_mix,  // (N) Mixup partner targets, or NULL
                      const float *lam,           // (N) Mixup weights of `target`, or NULL
                      const xent_params_t *p);

// d(mean loss)/d(logits), overwritten.
void xent_backward_cpu(float *dlogits,             // (N, C)
                       const float *logits,        // (N, C)
                       const int32_t *target,      // (N)
                       const int32_t *target_mix,  // (N) or NULL
                       const float *lam,           // (N) or NULL
                       const xent_params_t *p);

// probs = softmax(logits) per row (predictions, TTA). fp32 output.
void xent_softmax_cpu(float *probs,         // (N, C) fp32
                      const float *logits,  // (N, C)
                      const xent_params_t *p);

// ---------------------------------------------------------------------------
// CUDA twin (own kernels; the mean is reduced in a fixed order, so it is
// deterministic). Same shapes as above; device pointers, logits/dlogits of
// `dtype`, the rest fp32 / int32.
#ifdef HAVE_CUDA
typedef struct cuda_ctx_t cuda_ctx_t;
void xent_forward_cuda(float *loss, float *loss_per_sample, const void *logits,
                       const int32_t *target, const int32_t *target_mix, const float *lam,
                       const xent_params_t *p, cuda_ctx_t *ctx);
void xent_backward_cuda(void *dlogits, const void *logits, const int32_t *target,
                        const int32_t *target_mix, const float *lam, const xent_params_t *p,
                        cuda_ctx_t *ctx);
void xent_softmax_cuda(float *probs, const void *logits, const xent_params_t *p,
                       cuda_ctx_t *ctx);
#endif

#ifdef __cplusplus
}
#endif

#endif
