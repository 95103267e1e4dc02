/*
 * cuda_util.cuh: device helpers shared by the CUDA files of kernels/ (included
 * only by them): fp32/bf16 load and store, the dtype dispatch of the
 * launchers, and a capped grid size for grid-stride loops.
 * Everything here is inline; nothing has external linkage.
 */
#ifndef NF_CUDA_UTIL_CUH
#define NF_CUDA_UTIL_CUH

#include "cuda_check.h"
#include "cuda_ctx.h"
#include "kdtype.h"

#include <cuda_bf16.h>
#include <stddef.h>

__device__ __forceinline__ float nf_f32(float v) { return v; }
__device__ __forceinline__ float nf_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T nf_store(float v);
template <> __device__ __forceinline__ float nf_store<float>(float v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 nf_store<__nv_bfloat16>(float v)
{
    return __float2bfloat16_rn(v);
}

// Blocks for a grid-stride loop over n elements (at least 1, at most 65536).
static inline unsigned nf_blocks(size_t n, unsigned threads)
{
    size_t b = (n + threads - 1) / threads;
    if (b < 1) b = 1;
    if (b > 65536) b = 65536;
    return (unsigned)b;
}

// Runs BODY with T = float or __nv_bfloat16 according to a kdtype_t.
#define NF_DISPATCH(dtype, T, ...)                                                            \
    do {                                                                                      \
        if ((dtype) == KDTYPE_F32) {                                                          \
            typedef float T;                                                                  \
            __VA_ARGS__;                                                                      \
        } else {                                                                              \
            NF_CHECK((dtype) == KDTYPE_BF16, "bad dtype %d", (int)(dtype));                   \
            typedef __nv_bfloat16 T;                                                          \
            __VA_ARGS__;                                                                      \
        }                                                                                     \
    } while (0)

#endif
