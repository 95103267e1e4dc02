/*
 * maxpool2d.c: the fp32 reference of maxpool2d.h. Forward scans each window
 * in row-major order keeping the first maximum (NaN wins, as PyTorch's
 * `val > max || isnan(val)`); backward gathers, for each input element, the
 * dy of the windows that chose it, in (oh, ow) order: deterministic.
 */
#include "maxpool2d.h"

#include "check.h"

#include <math.h>

static void s_check_cpu(const pool2d_params_t *p)
{
    pool2d_check_params(p);
    NF_CHECK(p->dtype == KDTYPE_F32, "maxpool2d CPU ops are fp32 only (dtype %s)",
             kdtype_name(p->dtype));
}

void maxpool2d_forward_cpu(float *y, int32_t *argmax, const float *x, const pool2d_params_t *p)
{
    s_check_cpu(p);
    const int H = p->h, W = p->w, C = p->c, OH = pool2d_out_h(p), OW = pool2d_out_w(p);
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < p->n; n++) {
        for (int oh = 0; oh < OH; oh++) {
            const int hs = oh * p->stride - p->pad;
            for (int ow = 0; ow < OW; ow++) {
                const int ws = ow * p->stride - p->pad;
                for (int c = 0; c < C; c++) {
                    float best = -INFINITY;
                    int32_t at = -1;
                    for (int ih = hs < 0 ? 0 : hs; ih < hs + p->kh && ih < H; ih++) {
                        for (int iw = ws < 0 ? 0 : ws; iw < ws + p->kw && iw < W; iw++) {
                            const float v = x[(((size_t)n * H + ih) * W + iw) * C + c];
                            if (at < 0 || v > best || (isnan(v) && !isnan(best))) {
                                best = v;
                                at = ih * W + iw;
                            }
                        }
                    }
                    const size_t o = (((size_t)n * OH + oh) * OW + ow) * C + c;
                    y[o] = best;
                    argmax[o] = at;
                }
            }
        }
    }
}

void maxpool2d_backward_cpu(float *dx, const float *dy, const int32_t *argmax,
                            const pool2d_params_t *p)
{
    s_check_cpu(p);
    const int H = p->h, W = p->w, C = p->c, OH = pool2d_out_h(p), OW = pool2d_out_w(p);
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < p->n; n++) {
        for (int ih = 0; ih < H; ih++) {
            int oh0, oh1;
            pool2d_cover(ih, p->kh, p->stride, p->pad, OH, &oh0, &oh1);
            for (int iw = 0; iw < W; iw++) {
                int ow0, ow1;
                pool2d_cover(iw, p->kw, p->stride, p->pad, OW, &ow0, &ow1);
                const int32_t me = ih * W + iw;
                for (int c = 0; c < C; c++) {
                    float g = 0.0f;
                    for (int oh = oh0; oh <= oh1; oh++)
                        for (int ow = ow0; ow <= ow1; ow++) {
                            const size_t o = (((size_t)n * OH + oh) * OW + ow) * C + c;
                            if (argmax[o] == me) g += dy[o];
                        }
                    dx[(((size_t)n * H + ih) * W + iw) * C + c] = g;
                }
            }
        }
    }
}
