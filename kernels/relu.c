/*
 * relu.c: the fp32 reference of relu.h (elementwise; trivially deterministic).
 */
#include "relu.h"

#include "check.h"

#include <math.h>

static void s_check_cpu(const relu_params_t *p)
{
    NF_CHECK(p->dtype == KDTYPE_F32, "relu CPU ops are fp32 only (dtype %s)",
             kdtype_name(p->dtype));
}

// max(v, 0) that keeps NaN, as torch.relu does.
static inline float s_relu(float v) { return isnan(v) ? v : v > 0.0f ? v : 0.0f; }

void relu_forward_cpu(float *y, const float *x, const relu_params_t *p)
{
    s_check_cpu(p);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < p->count; i++) y[i] = s_relu(x[i]);
}

void relu_add_forward_cpu(float *y, const float *a, const float *b, const relu_params_t *p)
{
    s_check_cpu(p);
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < p->count; i++) y[i] = s_relu(a[i] + b[i]);
}

void relu_backward_cpu(float *dx, const float *dy, const float *y, const relu_params_t *p)
{
    s_check_cpu(p);
    // dx = dy where the output was positive, else 0 (derivative at 0 taken as 0)
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < p->count; i++) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
