/*
 * adaptive_avgpool.cu: the CUDA twin of adaptive_avgpool.h. Forward: one
 * thread per (n, c) summing its plane in (h, w) order (consecutive threads
 * read consecutive channels: coalesced); backward: one thread per element.
 */
#include "adaptive_avgpool.h"
#include "cuda_util.cuh"

template <typename T> static __global__ void s_fwd(T *y, const T *x, int n, int hw, int c)
{
    const size_t total = (size_t)n * c;
    for (size_t o = blockIdx.x * (size_t)blockDim.x + threadIdx.x; o < total; o += (size_t)gridDim.x * blockDim.x) {
        const size_t b = o / c, ch = o % c;
        const T *xp = x + b * (size_t)hw * c + ch;
        float s = 0.0f;
        for (int i = 0; i < hw; i++) s += nf_f32(xp[(size_t)i * c]);
        y[o] = nf_store<T>(s / (float)hw);
    }
}

template <typename T> static __global__ void s_bwd(T *dx, const T *dy, int n, int hw, int c)
{
    const size_t total = (size_t)n * hw * c;
    const float inv = 1.0f / (float)hw;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
        const size_t ch = e % c, b = e / ((size_t)hw * c);
        dx[e] = nf_store<T>(nf_f32(dy[b * c + ch]) * inv);
    }
}

static void s_check(const adaptive_avgpool_params_t *p)
{
    NF_CHECK(p->n > 0 && p->h > 0 && p->w > 0 && p->c > 0, "adaptive_avgpool: bad shape");
}

void adaptive_avgpool_forward_cuda(void *y, const void *x, const adaptive_avgpool_params_t *p,
                                   cuda_ctx_t *ctx)
{
    s_check(p);
    const size_t total = (size_t)p->n * p->c;
    NF_DISPATCH(p->dtype, T, s_fwd<T><<<nf_blocks(total, 256), 256, 0, ctx->stream>>>(
                                 (T *)y, (const T *)x, p->n, p->h * p->w, p->c));
    CUDA_LAUNCH_CHECK(ctx);
}

void adaptive_avgpool_backward_cuda(void *dx, const void *dy, const adaptive_avgpool_params_t *p,
                                    cuda_ctx_t *ctx)
{
    s_check(p);
    const size_t total = (size_t)p->n * p->h * p->w * p->c;
    NF_DISPATCH(p->dtype, T, s_bwd<T><<<nf_blocks(total, 256), 256, 0, ctx->stream>>>(
                                 (T *)dx, (const T *)dy, p->n, p->h * p->w, p->c));
    CUDA_LAUNCH_CHECK(ctx);
}
