/*
 * adam.c: the fp32 reference of adam.h (fastai's Adam, elementwise, so any
 * thread split gives identical results).
 */
#include "adam.h"

#include "check.h"
#include "kdtype.h"

#include <math.h>

adam_params_t adam_default_params(size_t count)
{
    adam_params_t p = {.count = count, .lr = 1e-3, .mom = 0.9, .sqr_mom = 0.99, .eps = 1e-5,
                       .wd = 0.01, .step = 1};
    return p;
}

void adam_step_cpu(float *param, float *grad_avg, float *sqr_avg, uint16_t *param_bf16,
                   const float *grad, const uint8_t *do_wd, const adam_params_t *p)
{
    NF_CHECK(p->step >= 1, "adam: step %lld must be >= 1", (long long)p->step);
    NF_CHECK(p->mom >= 0 && p->mom < 1 && p->sqr_mom >= 0 && p->sqr_mom < 1,
             "adam: mom %g sqr_mom %g", p->mom, p->sqr_mom);
    // Scalar factors in double, as fastai computes them in Python, rounded once.
    const float decay = (float)(1.0 - p->lr * p->wd);                // weight_decay: p *= 1 - lr*wd
    const float mom = (float)p->mom, damp1 = (float)(1.0 - p->mom);  // average_grad, dampened
    const float sqr_mom = (float)p->sqr_mom, damp2 = (float)(1.0 - p->sqr_mom);
    const double debias1 = 1.0 - pow(p->mom, (double)p->step);
    const float debias2 = (float)(1.0 - pow(p->sqr_mom, (double)p->step));
    const float step_size = (float)(-p->lr / debias1);  // addcdiv_ value = -lr / debias1
    const float eps = (float)p->eps;
    const int wd_on = p->wd != 0.0;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < p->count; i++) {
        float w = param[i];
        const float g = grad[i];
        if (wd_on && (!do_wd || do_wd[i])) w = w * decay;
        const float m = grad_avg[i] * mom + damp1 * g;
        const float v = sqr_avg[i] * sqr_mom + damp2 * g * g;
        // p = p + step_size * m / (sqrt(v / debias2) + eps)
        w = w + step_size * m / (sqrtf(v / debias2) + eps);
        grad_avg[i] = m;
        sqr_avg[i] = v;
        param[i] = w;
        if (param_bf16) param_bf16[i] = kdtype_f32_to_bf16(w);
    }
}
