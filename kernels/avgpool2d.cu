/*
 * avgpool2d.cu: the CUDA twin of avgpool2d.h, with the same window and
 * divisor rule (PyTorch's). Forward: a thread per output element; backward:
 * a thread per input element gathering dy / divisor (deterministic).
 */
#include "avgpool2d.h"
#include "cuda_util.cuh"

typedef struct {
    int n, h, w, c, kh, kw, stride, pad, oh, ow, include_pad;
} s_geo_t;

static s_geo_t s_geo(const pool2d_params_t *p)
{
    pool2d_check_params(p);
    s_geo_t g = {p->n, p->h, p->w, p->c, p->kh, p->kw, p->stride, p->pad, pool2d_out_h(p),
                 pool2d_out_w(p), p->count_include_pad ? 1 : 0};
    return g;
}

// Window of output (oh, ow) clipped to the image, and its divisor (avgpool2d.h).
__device__ __forceinline__ void s_window(const s_geo_t &g, int oh, int ow, int *h0, int *h1,
                                         int *w0, int *w1, int *div)
{
    const int hs = oh * g.stride - g.pad, ws = ow * g.stride - g.pad;
    int he = hs + g.kh, we = ws + g.kw;
    if (he > g.h + g.pad) he = g.h + g.pad;
    if (we > g.w + g.pad) we = g.w + g.pad;
    const int pool_size = (he - hs) * (we - ws);
    *h0 = hs < 0 ? 0 : hs;
    *w0 = ws < 0 ? 0 : ws;
    *h1 = he > g.h ? g.h : he;
    *w1 = we > g.w ? g.w : we;
    *div = g.include_pad ? pool_size : (*h1 - *h0) * (*w1 - *w0);
}

template <typename T> static __global__ void s_fwd(T *y, const T *x, s_geo_t g, size_t total)
{
    for (size_t o = blockIdx.x * (size_t)blockDim.x + threadIdx.x; o < total; o += (size_t)gridDim.x * blockDim.x) {
        const int c = (int)(o % g.c);
        size_t r = o / g.c;
        const int ow = (int)(r % g.ow);
        r /= g.ow;
        const int oh = (int)(r % g.oh);
        const int n = (int)(r / g.oh);
        int h0, h1, w0, w1, div;
        s_window(g, oh, ow, &h0, &h1, &w0, &w1, &div);
        float sum = 0.0f;
        for (int ih = h0; ih < h1; ih++)
            for (int iw = w0; iw < w1; iw++) sum += nf_f32(x[(((size_t)n * g.h + ih) * g.w + iw) * g.c + c]);
        y[o] = nf_store<T>(sum / (float)div);
    }
}

__device__ __forceinline__ void s_cover(int i, int k, int s, int pad, int out, int *lo, int *hi)
{
    const int t = i + pad - k;
    *lo = t < 0 ? 0 : t / s + 1;
    *hi = (i + pad) / s;
    if (*hi > out - 1) *hi = out - 1;
}

template <typename T> static __global__ void s_bwd(T *dx, const T *dy, s_geo_t g, size_t total)
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
        float sum = 0.0f;
        for (int oh = oh0; oh <= oh1; oh++)
            for (int ow = ow0; ow <= ow1; ow++) {
                int h0, h1, w0, w1, div;
                s_window(g, oh, ow, &h0, &h1, &w0, &w1, &div);
                sum += nf_f32(dy[(((size_t)n * g.oh + oh) * g.ow + ow) * g.c + c]) / (float)div;
            }
        dx[e] = nf_store<T>(sum);
    }
}

void avgpool2d_forward_cuda(void *y, const void *x, const pool2d_params_t *p, cuda_ctx_t *ctx)
{
    const s_geo_t g = s_geo(p);
    const size_t total = pool2d_y_count(p);
    NF_DISPATCH(p->dtype, T, s_fwd<T><<<nf_blocks(total, 256), 256, 0, ctx->stream>>>(
                                 (T *)y, (const T *)x, g, total));
    CUDA_LAUNCH_CHECK(ctx);
}

void avgpool2d_backward_cuda(void *dx, const void *dy, const pool2d_params_t *p, cuda_ctx_t *ctx)
{
    const s_geo_t g = s_geo(p);
    const size_t total = pool2d_x_count(p);
    NF_DISPATCH(p->dtype, T, s_bwd<T><<<nf_blocks(total, 256), 256, 0, ctx->stream>>>(
                                 (T *)dx, (const T *)dy, g, total));
    CUDA_LAUNCH_CHECK(ctx);
}
