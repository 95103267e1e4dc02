/*
 * dropout.c: the fp32 reference of dropout.h: the Philox sequence drawn in
 * element order (one 32-bit word per element).
 */
#include "dropout.h"

#include "check.h"
#include "rng.h"

static void s_check_cpu(const dropout_params_t *p)
{
    NF_CHECK(p->p >= 0.0f && p->p < 1.0f, "dropout: p %g", (double)p->p);
    NF_CHECK(p->dtype == KDTYPE_F32, "dropout CPU ops are fp32 only (dtype %s)",
             kdtype_name(p->dtype));
}

void dropout_forward_cpu(float *y, uint8_t *keep, const float *x, const uint64_t *index,
                         const dropout_params_t *p)
{
    s_check_cpu(p);
    const float scale = 1.0f / (1.0f - p->p);
    nf_rng_t r = nf_rng_make(p->seed, NF_RNG_STREAM_DROPOUT, (uint32_t)(*index >> 32),
                             (uint32_t)*index);
    for (size_t i = 0; i < p->count; i++) {
        const int k = p->p > 0.0f ? !(nf_rng_uniform(&r) < p->p) : 1;
        keep[i] = (uint8_t)k;
        y[i] = k ? x[i] * scale : 0.0f;
    }
}

void dropout_backward_cpu(float *dx, const float *dy, const uint8_t *keep,
                          const dropout_params_t *p)
{
    s_check_cpu(p);
    const float scale = 1.0f / (1.0f - p->p);
    for (size_t i = 0; i < p->count; i++) dx[i] = keep[i] ? dy[i] * scale : 0.0f;
}
