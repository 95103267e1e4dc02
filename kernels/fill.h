/*
 * fill.h: fills a tensor with reproducible uniform values,
 *   y[i] = lo + (hi - lo) * u_i,  u_i = draw i of Philox(seed, NF_RNG_STREAM_TEST, 0, 0)
 * (24-bit uniforms, element order; rounded to `dtype`). Used to give
 * scratch and activation buffers realistic contents before timing or
 * autotuning kernels on them (zeros can run faster than real data and hide
 * unwritten outputs), and by tests.
 */
#ifndef NF_FILL_H
#define NF_FILL_H

#include "kdtype.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    size_t count;
    float lo, hi;
    uint64_t seed;
    kdtype_t dtype;  // storage of y (CPU: F32 only)
} fill_params_t;

void fill_uniform_cpu(float *y,  // (count)
                      const fill_params_t *p);

#ifdef HAVE_CUDA
typedef struct cuda_ctx_t cuda_ctx_t;
void fill_uniform_cuda(void *y, const fill_params_t *p, cuda_ctx_t *ctx);
#endif

#ifdef __cplusplus
}
#endif

#endif
