/*
 * avgpool2d.c: the fp32 reference of avgpool2d.h, with PyTorch's divisor
 * rule. Backward gathers dy / divisor over the windows covering each input
 * element, in (oh, ow) order: deterministic.
 */
#include "avgpool2d.h"

#include "check.h"

static void s_check_cpu(const pool2d_params_t *p)
{
    pool2d_check_params(p);
    NF_CHECK(p->dtype == KDTYPE_F32, "avgpool2d CPU ops are fp32 only (dtype %s)",
             kdtype_name(p->dtype));
}

// Window of output (oh, ow) clipped to the image, and its divisor.
typedef struct {
    int h0, h1, w0, w1;  // [h0, h1) x [w0, w1)
    int divisor;
} s_win_t;

static s_win_t s_window(const pool2d_params_t *p, int oh, int ow)
{
    s_win_t r;
    int hs = oh * p->stride - p->pad, ws = ow * p->stride - p->pad;
    int he = hs + p->kh, we = ws + p->kw;
    // clip to the padded input first: that is the count_include_pad size
    if (he > p->h + p->pad) he = p->h + p->pad;
    if (we > p->w + p->pad) we = p->w + p->pad;
    const int pool_size = (he - hs) * (we - ws);
    // then to the image
    r.h0 = hs < 0 ? 0 : hs;
    r.w0 = ws < 0 ? 0 : ws;
    r.h1 = he > p->h ? p->h : he;
    r.w1 = we > p->w ? p->w : we;
    r.divisor = p->count_include_pad ? pool_size : (r.h1 - r.h0) * (r.w1 - r.w0);
    return r;
}

void avgpool2d_forward_cpu(float *y, const float *x, const pool2d_params_t *p)
{
    s_check_cpu(p);
    const int H = p->h, W = p->w, C = p->c, OH = pool2d_out_h(p), OW = pool2d_out_w(p);
#pragma omp parallel for collapse(2) schedule(static)
    for (int n = 0; n < p->n; n++) {
        for (int oh = 0; oh < OH; oh++) {
            for (int ow = 0; ow < OW; ow++) {
                const s_win_t r = s_window(p, oh, ow);
                for (int c = 0; c < C; c++) {
                    float sum = 0.0f;
                    for (int ih = r.h0; ih < r.h1; ih++)
                        for (int iw = r.w0; iw < r.w1; iw++)
                            sum += x[(((size_t)n * H + ih) * W + iw) * C + c];
                    y[(((size_t)n * OH + oh) * OW + ow) * C + c] = sum / (float)r.divisor;
                }
            }
        }
    }
}

void avgpool2d_backward_cpu(float *dx, const float *dy, const pool2d_params_t *p)
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
                float *dxp = dx + (((size_t)n * H + ih) * W + iw) * C;
                for (int c = 0; c < C; c++) dxp[c] = 0.0f;
                // every output window that covers (ih, iw) sends dy / divisor
                for (int oh = oh0; oh <= oh1; oh++) {
                    for (int ow = ow0; ow <= ow1; ow++) {
                        const s_win_t r = s_window(p, oh, ow);
                        const float *dyp = dy + (((size_t)n * OH + oh) * OW + ow) * C;
                        for (int c = 0; c < C; c++) dxp[c] += dyp[c] / (float)r.divisor;
                    }
                }
            }
        }
    }
}
