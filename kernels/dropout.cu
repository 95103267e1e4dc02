/*
 * dropout.cu: the CUDA twin of dropout.h. Element i takes word i % 4 of the
 * Philox block with counter i / 4 of the (seed, stream, index) generator:
 * the same word the CPU's sequential draws give it.
 */
#include "cuda_util.cuh"
#include "dropout.h"
#include "rng.h"

template <typename T>
static __global__ void s_fwd(T *y, uint8_t *keep, const T *x, const uint64_t *index,
                             uint64_t seed, float p, float scale, size_t n)
{
    const uint64_t idx = *index;
    nf_rng_t r = nf_rng_make(seed, NF_RNG_STREAM_DROPOUT, (uint32_t)(idx >> 32), (uint32_t)idx);
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int k = 1;
        if (p > 0.0f) {
            uint32_t ctr[4] = {(uint32_t)(i / 4), r.ctr[1], r.ctr[2], r.ctr[3]}, out[4];
            nf_philox4x32_10(ctr, r.key, out);
            const float u = (float)(out[i % 4] >> 8) * (1.0f / 16777216.0f);
            k = !(u < p);
        }
        keep[i] = (uint8_t)k;
        y[i] = nf_store<T>(k ? nf_f32(x[i]) * scale : 0.0f);
    }
}

template <typename T>
static __global__ void s_bwd(T *dx, const T *dy, const uint8_t *keep, float scale, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dx[i] = nf_store<T>(keep[i] ? nf_f32(dy[i]) * scale : 0.0f);
}

void dropout_forward_cuda(void *y, uint8_t *keep, const void *x, const uint64_t *index,
                          const dropout_params_t *p, cuda_ctx_t *ctx)
{
    NF_CHECK(p->p >= 0.0f && p->p < 1.0f, "dropout: p %g", (double)p->p);
    if (!p->count) return;
    const float scale = 1.0f / (1.0f - p->p);
    NF_DISPATCH(p->dtype, T, s_fwd<T><<<nf_blocks(p->count, 256), 256, 0, ctx->stream>>>(
                                 (T *)y, keep, (const T *)x, index, p->seed, p->p, scale, p->count));
    CUDA_LAUNCH_CHECK(ctx);
}

void dropout_backward_cuda(void *dx, const void *dy, const uint8_t *keep,
                           const dropout_params_t *p, cuda_ctx_t *ctx)
{
    NF_CHECK(p->p >= 0.0f && p->p < 1.0f, "dropout: p %g", (double)p->p);
    if (!p->count) return;
    const float scale = 1.0f / (1.0f - p->p);
    NF_DISPATCH(p->dtype, T, s_bwd<T><<<nf_blocks(p->count, 256), 256, 0, ctx->stream>>>(
                                 (T *)dx, (const T *)dy, keep, scale, p->count));
    CUDA_LAUNCH_CHECK(ctx);
}
