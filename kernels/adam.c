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

adam_scalars_t adam_scalars(const adam_params_t *p)
{
    NF_CHECK(p->step >= 1, "adam: step %lld must be >= 1", (long long)p->step);
    NF_CHECK(p->mom >= 0 && p->mom < 1 && p->sqr_mom >= 0 && p->sqr_mom < 1,
             "adam: mom %g sqr_mom %g", p->mom, p->sqr_mom);
    // Scalar factors in double, as fastai computes them in Python, rounded once.
    adam_scalars_t s = {0};
    s.decay = (float)(1.0 - p->lr * p->wd);  // weight_decay: p *= 1 - lr*wd
    s.mom = (float)p->mom;                   // average_grad, dampened
    s.damp1 = (float)(1.0 - p->mom);
    s.sqr_mom = (float)p->sqr_mom;
    s.damp2 = (float)(1.0 - p->sqr_mom);
    s.debias2 = (float)(1.0 - pow(p->sqr_mom, (double)p->step));
    s.step_size = (float)(-p->lr / (1.0 - pow(p->mom, (double)p->step)));  // addcdiv_ value
    s.eps = (float)p->eps;
    s.wd_on = p->wd != 0.0;
    return s;
}

// One element: decoupled decay, moments, update (no FMA contraction: ISO C).
static inline float s_update(float w, float g, float *m_io, float *v_io, int decay,
                             const adam_scalars_t *s)
{
    if (decay) w = w * s->decay;
    const float m = *m_io * s->mom + s->damp1 * g;
    const float v = *v_io * s->sqr_mom + s->damp2 * g * g;
    // p = p + step_size * m / (sqrt(v / debias2) + eps)
    w = w + s->step_size * m / (sqrtf(v / s->debias2) + s->eps);
    *m_io = m;
    *v_io = v;
    return w;
}

void adam_step_cpu(float *param, float *grad_avg, float *sqr_avg, uint16_t *param_bf16,
                   const float *grad, const uint8_t *do_wd, const adam_params_t *p)
{
    const adam_scalars_t s = adam_scalars(p);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < p->count; i++) {
        const float w = s_update(param[i], grad[i], &grad_avg[i], &sqr_avg[i],
                                 s.wd_on && (!do_wd || do_wd[i]), &s);
        param[i] = w;
        if (param_bf16) param_bf16[i] = kdtype_f32_to_bf16(w);
    }
}

void adam_flat_step_cpu(float *param, float *grad_avg, float *sqr_avg, uint16_t *param_bf16,
                        const float *grad, const uint16_t *grad_bf16, const uint8_t *flags,
                        const adam_scalars_t *s, size_t count)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; i++) {
        const float g = flags[i] & ADAM_FLAG_GRAD_BF16 ? kdtype_bf16_to_f32(grad_bf16[i]) : grad[i];
        const float w = s_update(param[i], g, &grad_avg[i], &sqr_avg[i],
                                 s->wd_on && (flags[i] & ADAM_FLAG_WD), s);
        param[i] = w;
        if (param_bf16) param_bf16[i] = kdtype_f32_to_bf16(w);
    }
}
