/*
 * relu.cu: the CUDA twin of relu.h: grid-stride elementwise kernels, fp32
 * arithmetic on f32 or bf16 storage. Same NaN and derivative-at-0 rules as
 * the CPU reference.
 */
#include "cuda_util.cuh"
#include "relu.h"

__device__ __forceinline__ float s_relu(float v) { return isnan(v) ? v : (v > 0.0f ? v : 0.0f); }

template <typename T> static __global__ void s_relu_fwd(T *y, const T *x, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = nf_store<T>(s_relu(nf_f32(x[i])));
}

template <typename T> static __global__ void s_relu_add_fwd(T *y, const T *a, const T *b, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = nf_store<T>(s_relu(nf_f32(a[i]) + nf_f32(b[i])));
}

template <typename T> static __global__ void s_relu_bwd(T *dx, const T *dy, const T *y, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        dx[i] = nf_f32(y[i]) > 0.0f ? dy[i] : nf_store<T>(0.0f);
}

void relu_forward_cuda(void *y, const void *x, const relu_params_t *p, cuda_ctx_t *ctx)
{
    if (!p->count) return;
    NF_DISPATCH(p->dtype, T, s_relu_fwd<T><<<nf_blocks(p->count, 256), 256, 0, ctx->stream>>>(
                                 (T *)y, (const T *)x, p->count));
    CUDA_LAUNCH_CHECK(ctx);
}

void relu_add_forward_cuda(void *y, const void *a, const void *b, const relu_params_t *p,
                           cuda_ctx_t *ctx)
{
    if (!p->count) return;
    NF_DISPATCH(p->dtype, T, s_relu_add_fwd<T><<<nf_blocks(p->count, 256), 256, 0, ctx->stream>>>(
                                 (T *)y, (const T *)a, (const T *)b, p->count));
    CUDA_LAUNCH_CHECK(ctx);
}

void relu_backward_cuda(void *dx, const void *dy, const void *y, const relu_params_t *p,
                        cuda_ctx_t *ctx)
{
    if (!p->count) return;
    NF_DISPATCH(p->dtype, T, s_relu_bwd<T><<<nf_blocks(p->count, 256), 256, 0, ctx->stream>>>(
                                 (T *)dx, (const T *)dy, (const T *)y, p->count));
    CUDA_LAUNCH_CHECK(ctx);
}
