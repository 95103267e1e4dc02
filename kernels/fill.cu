/*
 * fill.cu: the CUDA twin of fill.h: element i takes word i % 4 of Philox
 * block i / 4, the word the sequential CPU draws give it.
 */
#include "cuda_util.cuh"
#include "fill.h"
#include "rng.h"

template <typename T>
static __global__ void s_fill(T *y, uint64_t seed, float lo, float hi, size_t n)
{
    const nf_rng_t r = nf_rng_make(seed, NF_RNG_STREAM_TEST, 0, 0);
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        uint32_t ctr[4] = {(uint32_t)(i / 4), r.ctr[1], r.ctr[2], r.ctr[3]}, out[4];
        nf_philox4x32_10(ctr, r.key, out);
        const float u = (float)(out[i % 4] >> 8) * (1.0f / 16777216.0f);
        y[i] = nf_store<T>(__fadd_rn(lo, __fmul_rn(hi - lo, u)));  // no FMA: as the CPU
    }
}

void fill_uniform_cuda(void *y, const fill_params_t *p, cuda_ctx_t *ctx)
{
    if (!p->count) return;
    NF_DISPATCH(p->dtype, T, s_fill<T><<<nf_blocks(p->count, 256), 256, 0, ctx->stream>>>(
                                 (T *)y, p->seed, p->lo, p->hi, p->count));
    CUDA_LAUNCH_CHECK(ctx);
}
