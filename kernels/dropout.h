/*
 * dropout.h: inverted dropout with a counter-based mask (the head's
 * Dropout(p) of xresnet, active in training only).
 *
 *   keep[i] = !(u_i < p),  u_i = draw i of Philox(seed, NF_RNG_STREAM_DROPOUT,
 *             epoch = index >> 32, sample = (uint32_t)index), 24-bit uniforms
 *   y[i]    = keep[i] ? x[i] * (1 / (1 - p)) : 0        (scale rounded to fp32)
 *   dx[i]   = keep[i] ? dy[i] * (1 / (1 - p)) : 0
 * `index` is the training step: the mask is a pure function of (seed, step,
 * element), identical on every backend, thread count and device (the CPU
 * executors draw the same sequence, trainer/exec_cpu.h). It is passed by
 * pointer so that a captured CUDA graph reads each step's value: a host
 * pointer for the CPU op, a device pointer for the CUDA twin.
 *
 * x, y, dx, dy follow `dtype`; keep is one byte per element. p = 0 keeps
 * everything (y = x). Nothing here allocates.
 */
#ifndef NF_DROPOUT_H
#define NF_DROPOUT_H

#include "kdtype.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    size_t count;    // elements
    float p;         // drop probability in [0, 1)
    uint64_t seed;   // run seed
    kdtype_t dtype;  // storage of x, y, dx, dy (CPU: F32 only)
} dropout_params_t;

void dropout_forward_cpu(float *y,               // (count)
                         uint8_t *keep,          // (count) 1 kept, 0 dropped
                         const float *x,         // (count)
                         const uint64_t *index,  // (1) the step number
                         const dropout_params_t *p);
void dropout_backward_cpu(float *dx,            // (count)
                          const float *dy,      // (count)
                          const uint8_t *keep,  // (count)
                          const dropout_params_t *p);

#ifdef HAVE_CUDA
typedef struct cuda_ctx_t cuda_ctx_t;
void dropout_forward_cuda(void *y, uint8_t *keep, const void *x, const uint64_t *index,
                          const dropout_params_t *p, cuda_ctx_t *ctx);
void dropout_backward_cuda(void *dx, const void *dy, const uint8_t *keep,
                           const dropout_params_t *p, cuda_ctx_t *ctx);
#endif

#ifdef __cplusplus
}
#endif

#endif
