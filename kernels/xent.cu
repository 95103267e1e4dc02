/*
 * xent.cu: the CUDA twin of xent.h. Each row's log-sum-exp is computed by
 * one thread (C is the number of classes: 10 here); the batch mean is one
 * block summing per-thread partials in a fixed tree order, so the loss is
 * deterministic. A target outside [0, C) makes that sample's loss NaN (and
 * so the mean), and its dlogits row NaN, instead of reading out of bounds.
 */
#include "cuda_util.cuh"
#include "xent.h"

enum { S_THREADS = 256 };

// max and log(sum exp(o - max)) of one row, in fp32
template <typename T> __device__ void s_lse(const T *o, int c, float *mx, float *log_z)
{
    float m = nf_f32(o[0]);
    for (int k = 1; k < c; k++) m = fmaxf(m, nf_f32(o[k]));
    float z = 0.0f;
    for (int k = 0; k < c; k++) z += expf(nf_f32(o[k]) - m);
    *mx = m;
    *log_z = logf(z);
}

template <typename T>
static __global__ void s_fwd(float *loss, float *per, const T *logits, const int32_t *t,
                             const int32_t *t2, const float *lam, int n, int c, float eps)
{
    __shared__ float part[S_THREADS];
    float acc = 0.0f;
    for (int j = threadIdx.x; j < n; j += S_THREADS) {
        const T *o = logits + (size_t)j * c;
        float mx, log_z, sum_o = 0.0f;
        s_lse(o, c, &mx, &log_z);
        for (int k = 0; k < c; k++) sum_o += nf_f32(o[k]);
        float lj;
        const int y = t[j], y2 = t2 ? t2[j] : 0;
        if (y < 0 || y >= c || y2 < 0 || y2 >= c) {
            lj = __int_as_float(0x7fc00000);  // NaN: bad target
        } else {
            const float l = lam ? lam[j] : 1.0f;
            float nll = l * (mx + log_z - nf_f32(o[y]));
            if (t2) nll += (1.0f - l) * (mx + log_z - nf_f32(o[y2]));
            lj = eps / c * ((float)c * (mx + log_z) - sum_o) + (1.0f - eps) * nll;
        }
        if (per) per[j] = lj;
        acc += lj;
    }
    part[threadIdx.x] = acc;
    __syncthreads();
    for (int s = S_THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) part[threadIdx.x] += part[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) *loss = part[0] / (float)n;
}

template <typename T>
static __global__ void s_bwd(T *dlogits, const T *logits, const int32_t *t, const int32_t *t2,
                             const float *lam, int n, int c, float eps)
{
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += gridDim.x * blockDim.x) {
        const T *o = logits + (size_t)j * c;
        T *d = dlogits + (size_t)j * c;
        float mx, log_z;
        s_lse(o, c, &mx, &log_z);
        const int y = t[j], y2 = t2 ? t2[j] : 0;
        const bool bad = y < 0 || y >= c || y2 < 0 || y2 >= c;
        const float l = lam ? lam[j] : 1.0f;
        for (int k = 0; k < c; k++) {
            float q = eps / c;
            if (k == y) q += (1.0f - eps) * l;
            if (t2 && k == y2) q += (1.0f - eps) * (1.0f - l);
            const float g = (expf(nf_f32(o[k]) - mx - log_z) - q) / (float)n;
            d[k] = nf_store<T>(bad ? __int_as_float(0x7fc00000) : g);
        }
    }
}

template <typename T> static __global__ void s_softmax(float *probs, const T *logits, int n, int c)
{
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += gridDim.x * blockDim.x) {
        const T *o = logits + (size_t)j * c;
        float mx, log_z;
        s_lse(o, c, &mx, &log_z);
        for (int k = 0; k < c; k++) probs[(size_t)j * c + k] = expf(nf_f32(o[k]) - mx - log_z);
    }
}

static void s_check(const xent_params_t *p, const int32_t *t2, const float *lam)
{
    NF_CHECK(p->n > 0 && p->c > 0, "xent: bad shape n=%d c=%d", p->n, p->c);
    NF_CHECK(p->smoothing >= 0 && p->smoothing <= 1, "xent: smoothing %g", (double)p->smoothing);
    NF_CHECK((t2 == NULL) == (lam == NULL), "xent: Mixup needs both target_mix and lam");
}

void xent_forward_cuda(float *loss, float *loss_per_sample, const void *logits,
                       const int32_t *target, const int32_t *target_mix, const float *lam,
                       const xent_params_t *p, cuda_ctx_t *ctx)
{
    s_check(p, target_mix, lam);
    NF_DISPATCH(p->dtype, T, s_fwd<T><<<1, S_THREADS, 0, ctx->stream>>>(
                                 loss, loss_per_sample, (const T *)logits, target, target_mix, lam,
                                 p->n, p->c, p->smoothing));
    CUDA_LAUNCH_CHECK(ctx);
}

void xent_backward_cuda(void *dlogits, const void *logits, const int32_t *target,
                        const int32_t *target_mix, const float *lam, const xent_params_t *p,
                        cuda_ctx_t *ctx)
{
    s_check(p, target_mix, lam);
    NF_DISPATCH(p->dtype, T, s_bwd<T><<<nf_blocks((size_t)p->n, 128), 128, 0, ctx->stream>>>(
                                 (T *)dlogits, (const T *)logits, target, target_mix, lam, p->n,
                                 p->c, p->smoothing));
    CUDA_LAUNCH_CHECK(ctx);
}

void xent_softmax_cuda(float *probs, const void *logits, const xent_params_t *p, cuda_ctx_t *ctx)
{
    s_check(p, NULL, NULL);
    NF_DISPATCH(p->dtype, T, s_softmax<T><<<nf_blocks((size_t)p->n, 128), 128, 0, ctx->stream>>>(
                                 probs, (const T *)logits, p->n, p->c));
    CUDA_LAUNCH_CHECK(ctx);
}
