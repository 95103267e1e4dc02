/*
 * pool2d.h: the window geometry shared by maxpool2d.h and avgpool2d.h,
 * computed exactly as PyTorch's pooling_output_shape does.
 *
 *   OH = floor_or_ceil((H + 2*pad - KH) / stride) + 1
 *   with ceil_mode, a last window that would start in the right padding (or
 *   beyond) is dropped: if (OH - 1) * stride >= H + pad then OH -= 1.
 *   Window of output oh: rows [oh*stride - pad, oh*stride - pad + KH).
 *
 * The chapter uses: the stem MaxPool2d(3, 2, 1) and the ResNet-D shortcut
 * AvgPool2d(2, 2, 0, ceil_mode=True), whose last window is partial for odd
 * sizes. Not here: dilation, non-square windows' separate strides.
 */
#ifndef NF_POOL2D_H
#define NF_POOL2D_H

#include "kdtype.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int n, h, w, c;          // input (N, H, W, C)
    int kh, kw;              // window
    int stride;              // both axes (>= 1)
    int pad;                 // both axes, both sides (0 <= pad <= k/2, as PyTorch requires)
    bool ceil_mode;          // PyTorch ceil_mode
    bool count_include_pad;  // avg pool only: divide by the window clipped to the padded
                             // input (PyTorch default true) instead of the in-bounds part
    kdtype_t dtype;          // storage of x, y, dx, dy (CPU: F32 only)
} pool2d_params_t;

int pool2d_out_h(const pool2d_params_t *p);
int pool2d_out_w(const pool2d_params_t *p);
size_t pool2d_x_count(const pool2d_params_t *p);  // N*H*W*C
size_t pool2d_y_count(const pool2d_params_t *p);  // N*OH*OW*C
// Aborts (NF_CHECK) on invalid geometry (as PyTorch would reject it).
void pool2d_check_params(const pool2d_params_t *p);
// Along one axis: the outputs [*lo, *hi] whose window [o*stride - pad,
// o*stride - pad + k) contains input index i (empty when *lo > *hi), for
// `out` outputs. Backward passes use it to gather instead of scatter.
void pool2d_cover(int i, int k, int stride, int pad, int out, int *lo, int *hi);

#ifdef __cplusplus
}
#endif

#endif
