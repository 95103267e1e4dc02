/*
 * accuracy.h: how many rows of logits have their argmax at the target
 * (fastai's `accuracy` metric before the division by N).
 *
 *   correct = #{ j : argmax_k logits[j, k] == target[j] }
 * argmax takes the first maximum and treats NaN as larger than any number,
 * as torch.argmax does. The evaluator divides by N (and sums over batches).
 */
#ifndef NF_ACCURACY_H
#define NF_ACCURACY_H

#include "kdtype.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n, c;        // logits (N, C)
    kdtype_t dtype;  // storage of logits (CPU: F32 only)
} accuracy_params_t;

void accuracy_cpu(int32_t *correct,       // (1)
                  const float *logits,    // (N, C)
                  const int32_t *target,  // (N)
                  const accuracy_params_t *p);

// CUDA twin: the same shapes as the CPU function(s) above, device pointers
// (data tensors of `dtype`, the rest as documented there).
#ifdef HAVE_CUDA
typedef struct cuda_ctx_t cuda_ctx_t;
// correct is a device pointer.
void accuracy_cuda(int32_t *correct, const void *logits, const int32_t *target,
                   const accuracy_params_t *p, cuda_ctx_t *ctx);
#endif

#ifdef __cplusplus
}
#endif

#endif
