/*
 * pool2d.c: window geometry of pool2d.h (PyTorch's pooling_output_shape).
 */
#include "pool2d.h"

#include "check.h"

static int s_out(int in, int k, int s, int pad, bool ceil_mode)
{
    // floor or ceil of (in + 2*pad - k) / s, plus 1
    const int span = in + 2 * pad - k;
    int out = (span + (ceil_mode ? s - 1 : 0)) / s + 1;
    // with ceil_mode the last window must start inside the image or left padding
    if (ceil_mode && (out - 1) * s >= in + pad) out--;
    return out;
}

int pool2d_out_h(const pool2d_params_t *p) { return s_out(p->h, p->kh, p->stride, p->pad, p->ceil_mode); }
int pool2d_out_w(const pool2d_params_t *p) { return s_out(p->w, p->kw, p->stride, p->pad, p->ceil_mode); }

size_t pool2d_x_count(const pool2d_params_t *p)
{
    return (size_t)p->n * (size_t)p->h * (size_t)p->w * (size_t)p->c;
}

size_t pool2d_y_count(const pool2d_params_t *p)
{
    return (size_t)p->n * (size_t)pool2d_out_h(p) * (size_t)pool2d_out_w(p) * (size_t)p->c;
}

void pool2d_check_params(const pool2d_params_t *p)
{
    NF_CHECK(p->n > 0 && p->h > 0 && p->w > 0 && p->c > 0, "pool2d: bad shape %dx%dx%dx%d",
             p->n, p->h, p->w, p->c);
    NF_CHECK(p->kh > 0 && p->kw > 0 && p->stride >= 1, "pool2d: bad window %dx%d stride %d",
             p->kh, p->kw, p->stride);
    NF_CHECK(p->pad >= 0 && 2 * p->pad <= p->kh && 2 * p->pad <= p->kw,
             "pool2d: pad %d must be at most half the window %dx%d", p->pad, p->kh, p->kw);
    NF_CHECK(p->h + 2 * p->pad >= p->kh && p->w + 2 * p->pad >= p->kw,
             "pool2d: window %dx%d larger than padded input", p->kh, p->kw);
    NF_CHECK(pool2d_out_h(p) > 0 && pool2d_out_w(p) > 0, "pool2d: empty output");
    NF_CHECK(p->dtype == KDTYPE_F32 || p->dtype == KDTYPE_BF16, "pool2d: bad dtype %d",
             (int)p->dtype);
}

void pool2d_cover(int i, int k, int stride, int pad, int out, int *lo, int *hi)
{
    // o*s - pad <= i < o*s - pad + k   <=>   (i + pad - k)/s < o <= (i + pad)/s
    const int t = i + pad - k;
    *lo = t < 0 ? 0 : t / stride + 1;
    *hi = (i + pad) / stride;
    if (*hi > out - 1) *hi = out - 1;
}
