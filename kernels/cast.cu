/*
 * cast.cu: the CUDA twin of cast.h (__float2bfloat16_rn: nearest even, NaN kept).
 */
#include "cast.h"
#include "cuda_util.cuh"

static __global__ void s_to_bf16(__nv_bfloat16 *y, const float *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = __float2bfloat16_rn(x[i]);
}

static __global__ void s_to_f32(float *y, const __nv_bfloat16 *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = __bfloat162float(x[i]);
}

void cast_f32_to_bf16_cuda(uint16_t *y, const float *x, const cast_params_t *p, cuda_ctx_t *ctx)
{
    if (!p->count) return;
    s_to_bf16<<<nf_blocks(p->count, 256), 256, 0, ctx->stream>>>((__nv_bfloat16 *)y, x, p->count);
    CUDA_LAUNCH_CHECK(ctx);
}

void cast_bf16_to_f32_cuda(float *y, const uint16_t *x, const cast_params_t *p, cuda_ctx_t *ctx)
{
    if (!p->count) return;
    s_to_f32<<<nf_blocks(p->count, 256), 256, 0, ctx->stream>>>(y, (const __nv_bfloat16 *)x, p->count);
    CUDA_LAUNCH_CHECK(ctx);
}
