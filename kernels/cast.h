/*
 * cast.h: array conversions between fp32 and bf16 (round to nearest even;
 * NaN stays NaN), e.g. bf16 weight gradients into Adam's fp32 gradient
 * buffer, or an fp32 batch into bf16 storage. Host element rules: kdtype.h.
 */
#ifndef NF_CAST_H
#define NF_CAST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    size_t count;  // number of elements
} cast_params_t;

void cast_f32_to_bf16_cpu(uint16_t *y,     // (count)
                          const float *x,  // (count)
                          const cast_params_t *p);
void cast_bf16_to_f32_cpu(float *y,           // (count)
                          const uint16_t *x,  // (count)
                          const cast_params_t *p);

// CUDA twin: the same shapes as the CPU function(s) above, device pointers
// (data tensors of `dtype`, the rest as documented there).
#ifdef HAVE_CUDA
typedef struct cuda_ctx_t cuda_ctx_t;
void cast_f32_to_bf16_cuda(uint16_t *y, const float *x, const cast_params_t *p,
                           cuda_ctx_t *ctx);
void cast_bf16_to_f32_cuda(float *y, const uint16_t *x, const cast_params_t *p,
                           cuda_ctx_t *ctx);
#endif

#ifdef __cplusplus
}
#endif

#endif
