/*
 * accuracy.cu: the CUDA twin of accuracy.h: one block, a thread per row
 * (strided), the count reduced in shared memory. Same argmax rule (first
 * maximum, NaN largest) as the CPU.
 */
#include "accuracy.h"
#include "cuda_util.cuh"

enum { S_THREADS = 256 };

template <typename T>
static __global__ void s_acc(int32_t *correct, const T *logits, const int32_t *t, int n, int c)
{
    __shared__ int part[S_THREADS];
    int cnt = 0;
    for (int j = threadIdx.x; j < n; j += S_THREADS) {
        const T *r = logits + (size_t)j * c;
        int best = 0;
        for (int k = 1; k < c; k++) {
            const float b = nf_f32(r[best]), v = nf_f32(r[k]);
            if (isnan(b)) break;
            if (isnan(v) || v > b) best = k;
        }
        cnt += best == t[j];
    }
    part[threadIdx.x] = cnt;
    __syncthreads();
    for (int s = S_THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) *correct = part[0];
}

void accuracy_cuda(int32_t *correct, const void *logits, const int32_t *target,
                   const accuracy_params_t *p, cuda_ctx_t *ctx)
{
    NF_CHECK(p->n > 0 && p->c > 0, "accuracy: bad shape n=%d c=%d", p->n, p->c);
    NF_DISPATCH(p->dtype, T, s_acc<T><<<1, S_THREADS, 0, ctx->stream>>>(
                                 correct, (const T *)logits, target, p->n, p->c));
    CUDA_LAUNCH_CHECK(ctx);
}
