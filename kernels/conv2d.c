/*
 * conv2d.c: the plain-loop fp32 reference of conv2d.h, the oracle for the
 * oneDNN and CUDA paths. Direct convolution, no im2col buffer (kernels never
 * allocate). Each output element is produced by exactly one thread with a
 * fixed summation order, so results do not depend on the OpenMP thread count.
 */
#include "conv2d.h"

#include "check.h"

#include <string.h>

int conv2d_out_h(const conv2d_params_t *p) { return (p->h + 2 * p->pad - p->kh) / p->stride + 1; }
int conv2d_out_w(const conv2d_params_t *p) { return (p->w + 2 * p->pad - p->kw) / p->stride + 1; }

size_t conv2d_x_count(const conv2d_params_t *p)
{
    return (size_t)p->n * (size_t)p->h * (size_t)p->w * (size_t)p->c_in;
}

size_t conv2d_y_count(const conv2d_params_t *p)
{
    return (size_t)p->n * (size_t)conv2d_out_h(p) * (size_t)conv2d_out_w(p) * (size_t)p->c_out;
}

size_t conv2d_w_count(const conv2d_params_t *p)
{
    return (size_t)p->c_out * (size_t)p->kh * (size_t)p->kw * (size_t)p->c_in;
}

void conv2d_check_params(const conv2d_params_t *p)
{
    NF_CHECK(p->n > 0 && p->h > 0 && p->w > 0 && p->c_in > 0 && p->c_out > 0,
             "conv2d: bad sizes n=%d h=%d w=%d c_in=%d c_out=%d", p->n, p->h, p->w, p->c_in,
             p->c_out);
    NF_CHECK(p->kh > 0 && p->kw > 0 && p->stride >= 1 && p->pad >= 0,
             "conv2d: bad kernel %dx%d stride %d pad %d", p->kh, p->kw, p->stride, p->pad);
    NF_CHECK(p->h + 2 * p->pad >= p->kh && p->w + 2 * p->pad >= p->kw,
             "conv2d: kernel %dx%d larger than padded input %dx%d", p->kh, p->kw,
             p->h + 2 * p->pad, p->w + 2 * p->pad);
    NF_CHECK(p->dtype == KDTYPE_F32 || p->dtype == KDTYPE_BF16, "conv2d: bad dtype %d",
             (int)p->dtype);
}

static void s_check_cpu(const conv2d_params_t *p)
{
    conv2d_check_params(p);
    NF_CHECK(p->dtype == KDTYPE_F32, "conv2d CPU ops are fp32 only (dtype %s)",
             kdtype_name(p->dtype));
}

void conv2d_forward_cpu(float *y, const float *x, const float *w, const conv2d_params_t *p)
{
    s_check_cpu(p);
    const int OH = conv2d_out_h(p), OW = conv2d_out_w(p);
    const int H = p->h, W = p->w, CI = p->c_in, CO = p->c_out, KH = p->kh, KW = p->kw;
    const int S = p->stride, P = p->pad;
    // One output pixel (all C_out channels) per iteration; rows are independent.
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < p->n; n++) {
        for (int oh = 0; oh < OH; oh++) {
            for (int ow = 0; ow < OW; ow++) {
                float *yp = y + (((size_t)n * OH + oh) * OW + ow) * CO;
                for (int co = 0; co < CO; co++) {
                    // y = sum over the in-bounds taps (i, j) of dot(x[ih, iw, :], w[co, i, j, :])
                    float acc = 0.0f;
                    for (int i = 0; i < KH; i++) {
                        const int ih = oh * S - P + i;
                        if (ih < 0 || ih >= H) continue;
                        for (int j = 0; j < KW; j++) {
                            const int iw = ow * S - P + j;
                            if (iw < 0 || iw >= W) continue;
                            const float *xp = x + (((size_t)n * H + ih) * W + iw) * CI;
                            const float *wp = w + (((size_t)co * KH + i) * KW + j) * CI;
                            float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                            for (int ci = 0; ci < CI; ci++) dot += xp[ci] * wp[ci];
                            acc += dot;
                        }
                    }
                    yp[co] = acc;
                }
            }
        }
    }
}

void conv2d_backward_data_cpu(float *dx, const float *dy, const float *w, const conv2d_params_t *p)
{
    s_check_cpu(p);
    const int OH = conv2d_out_h(p), OW = conv2d_out_w(p);
    const int H = p->h, W = p->w, CI = p->c_in, CO = p->c_out, KH = p->kh, KW = p->kw;
    const int S = p->stride, P = p->pad;
    // Gather form: input pixel (ih, iw) received dy[oh, ow, co] * w[co, i, j, :]
    // from every output with ih = oh*S - P + i and iw = ow*S - P + j.
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < p->n; n++) {
        for (int ih = 0; ih < H; ih++) {
            for (int iw = 0; iw < W; iw++) {
                float *dxp = dx + (((size_t)n * H + ih) * W + iw) * CI;
                if (!p->accumulate) memset(dxp, 0, (size_t)CI * sizeof *dxp);
                for (int i = 0; i < KH; i++) {
                    const int t = ih + P - i;  // = oh * S
                    if (t < 0 || t % S) continue;
                    const int oh = t / S;
                    if (oh >= OH) continue;
                    for (int j = 0; j < KW; j++) {
                        const int u = iw + P - j;  // = ow * S
                        if (u < 0 || u % S) continue;
                        const int ow = u / S;
                        if (ow >= OW) continue;
                        const float *dyp = dy + (((size_t)n * OH + oh) * OW + ow) * CO;
                        for (int co = 0; co < CO; co++) {
                            const float g = dyp[co];
                            const float *wp = w + (((size_t)co * KH + i) * KW + j) * CI;
#pragma omp simd
                            for (int ci = 0; ci < CI; ci++) dxp[ci] += g * wp[ci];
                        }
                    }
                }
            }
        }
    }
}

void conv2d_backward_weights_cpu(float *dw, const float *dy, const float *x,
                                 const conv2d_params_t *p)
{
    s_check_cpu(p);
    const int OH = conv2d_out_h(p), OW = conv2d_out_w(p);
    const int H = p->h, W = p->w, CI = p->c_in, CO = p->c_out, KH = p->kh, KW = p->kw;
    const int S = p->stride, P = p->pad;
    // dw[co, i, j, :] = sum over (n, oh, ow) of dy[n, oh, ow, co] * x[n, oh*S-P+i, ow*S-P+j, :].
    // Each thread owns whole output channels, so the sum order is fixed.
#pragma omp parallel for schedule(static)
    for (int co = 0; co < CO; co++) {
        float *dwc = dw + (size_t)co * KH * KW * CI;
        memset(dwc, 0, (size_t)KH * KW * CI * sizeof *dwc);
        for (int n = 0; n < p->n; n++) {
            for (int oh = 0; oh < OH; oh++) {
                for (int ow = 0; ow < OW; ow++) {
                    const float g = dy[(((size_t)n * OH + oh) * OW + ow) * CO + co];
                    for (int i = 0; i < KH; i++) {
                        const int ih = oh * S - P + i;
                        if (ih < 0 || ih >= H) continue;
                        for (int j = 0; j < KW; j++) {
                            const int iw = ow * S - P + j;
                            if (iw < 0 || iw >= W) continue;
                            const float *xp = x + (((size_t)n * H + ih) * W + iw) * CI;
                            float *dwp = dwc + ((size_t)i * KW + j) * CI;
#pragma omp simd
                            for (int ci = 0; ci < CI; ci++) dwp[ci] += g * xp[ci];
                        }
                    }
                }
            }
        }
    }
}
