/*
 * adaptive_avgpool.c: the fp32 reference of adaptive_avgpool.h. The mean of
 * each (n, c) plane is summed in (h, w) order in double: deterministic.
 */
#include "adaptive_avgpool.h"

#include "check.h"

#include <stddef.h>

static void s_check_cpu(const adaptive_avgpool_params_t *p)
{
    NF_CHECK(p->n > 0 && p->h > 0 && p->w > 0 && p->c > 0, "adaptive_avgpool: bad shape");
    NF_CHECK(p->dtype == KDTYPE_F32, "adaptive_avgpool CPU ops are fp32 only (dtype %s)",
             kdtype_name(p->dtype));
}

void adaptive_avgpool_forward_cpu(float *y, const float *x, const adaptive_avgpool_params_t *p)
{
    s_check_cpu(p);
    const size_t HW = (size_t)p->h * (size_t)p->w;
    const int C = p->c;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < p->n; n++) {
        const float *xn = x + (size_t)n * HW * C;
        for (int c = 0; c < C; c++) {
            // y[n, c] = (1/HW) sum_{h,w} x[n, h, w, c]
            double s = 0;
            for (size_t i = 0; i < HW; i++) s += xn[i * C + c];
            y[(size_t)n * C + c] = (float)(s / (double)HW);
        }
    }
}

void adaptive_avgpool_backward_cpu(float *dx, const float *dy, const adaptive_avgpool_params_t *p)
{
    s_check_cpu(p);
    const size_t HW = (size_t)p->h * (size_t)p->w;
    const int C = p->c;
    const float inv = (float)(1.0 / (double)HW);
#pragma omp parallel for schedule(static)
    for (int n = 0; n < p->n; n++) {
        // every input position gets dy / HW
        for (size_t i = 0; i < HW; i++)
            for (int c = 0; c < C; c++)
                dx[((size_t)n * HW + i) * C + c] = dy[(size_t)n * C + c] * inv;
    }
}
