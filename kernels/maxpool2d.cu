/*
 * maxpool2d.cu: the CUDA twin of maxpool2d.h. Forward: one thread per
 * output element (channel fastest, so reads coalesce), the same scan order,
 * tie and NaN rules as the CPU. Backward: one thread per input element
 * gathering from the windows that cover it (no atomics: deterministic).
 */
#include "cuda_util.cuh"
#include "maxpool2d.h"

typedef struct {
    int n, h, w, c, kh, kw, stride, pad, oh, ow;
} s_geo_t;

static s_geo_t s_geo(const pool2d_params_t *p)
{
    pool2d_check_params(p);
    s_geo_t g = {p->n, p->h, p->w, p->c, p->kh, p->kw, p->stride, p->pad, pool2d_out_h(p),
                 pool2d_out_w(p)};
    return g;
}

template <typename T>
static __global__ void s_fwd(T *y, int32_t *argmax, const T *x, s_geo_t g, size_t total)
{
    for (size_t o = blockIdx.x * (size_t)blockDim.x + threadIdx.x; o < total; o += (size_t)gridDim.x * blockDim.x) {
        const int c = (int)(o % g.c);
        size_t r = o / g.c;
        const int ow = (int)(r % g.ow);
        r /= g.ow;
        const int oh = (int)(r % g.oh);
        const int n = (int)(r / g.oh);
        const int hs = oh * g.stride - g.pad, ws = ow * g.stride - g.pad;
        float best = -INFINITY;
        int32_t at = -1;
        for (int ih = hs < 0 ? 0 : hs; ih < hs + g.kh && ih < g.h; ih++)
            for (int iw = ws < 0 ? 0 : ws; iw < ws + g.kw && iw < g.w; iw++) {
                const float v = nf_f32(x[(((size_t)n * g.h + ih) * g.w + iw) * g.c + c]);
                if (at < 0 || v > best || (isnan(v) && !isnan(best))) {
                    best = v;
                    at = ih * g.w + iw;
                }
            }
        y[o] = nf_store<T>(best);
        argmax[o] = at;
    }
}

__device__ __forceinline__ void s_cover(int i, int k, int s, int pad, int out, int *lo, int *hi)
{
    const int t = i + pad - k;
    *lo = t < 0 ? 0 : t / s + 1;
    *hi = (i + pad) / s;
    if (*hi > out - 1) *hi = out - 1;
}

template <typename T>
static __global__ void s_bwd(T *dx, const T *dy, const int32_t *argmax, s_geo_t g, size_t total)
{
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < total; e += (size_t)gridDim.x * blockDim.x) {
        const int c = (int)(e % g.c);
        size_t r = e / g.c;
        const int iw = (int)(r % g.w);
        r /= g.w;
        const int ih = (int)(r % g.h);
        const int n = (int)(r / g.h);
        int oh0, oh1, ow0, ow1;
        s_cover(ih, g.kh, g.stride, g.pad, g.oh, &oh0, &oh1);
        s_cover(iw, g.kw, g.stride, g.pad, g.ow, &ow0, &ow1);
        const int32_t me = ih * g.w + iw;
        float sum = 0.0f;
        for (int oh = oh0; oh <= oh1; oh++)
            for (int ow = ow0; ow <= ow1; ow++) {
                const size_t o = (((size_t)n * g.oh + oh) * g.ow + ow) * g.c + c;
                if (argmax[o] == me) sum += nf_f32(dy[o]);
            }
        dx[e] = nf_store<T>(sum);
    }
}

void maxpool2d_forward_cuda(void *y, int32_t *argmax, const void *x, const pool2d_params_t *p,
                            cuda_ctx_t *ctx)
{
    const s_geo_t g = s_geo(p);
    const size_t total = pool2d_y_count(p);
    NF_DISPATCH(p->dtype, T, s_fwd<T><<<nf_blocks(total, 256), 256, 0, ctx->stream>>>(
                                 (T *)y, argmax, (const T *)x, g, total));
    CUDA_LAUNCH_CHECK(ctx);
}

void maxpool2d_backward_cuda(void *dx, const void *dy, const int32_t *argmax,
                             const pool2d_params_t *p, cuda_ctx_t *ctx)
{
    const s_geo_t g = s_geo(p);
    const size_t total = pool2d_x_count(p);
    NF_DISPATCH(p->dtype, T, s_bwd<T><<<nf_blocks(total, 256), 256, 0, ctx->stream>>>(
                                 (T *)dx, (const T *)dy, argmax, g, total));
    CUDA_LAUNCH_CHECK(ctx);
}
