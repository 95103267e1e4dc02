/*
 * add.cu: the CUDA twin of add.h (grid-stride, fp32 arithmetic).
 */
#include "add.h"
#include "cuda_util.cuh"

template <typename T> static __global__ void s_add(T *y, const T *a, const T *b, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = nf_store<T>(nf_f32(a[i]) + nf_f32(b[i]));
}

void add_forward_cuda(void *y, const void *a, const void *b, const add_params_t *p,
                      cuda_ctx_t *ctx)
{
    if (!p->count) return;
    NF_DISPATCH(p->dtype, T, s_add<T><<<nf_blocks(p->count, 256), 256, 0, ctx->stream>>>(
                                 (T *)y, (const T *)a, (const T *)b, p->count));
    CUDA_LAUNCH_CHECK(ctx);
}
