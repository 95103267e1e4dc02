/*
 * fill.c: the reference of fill.h (sequential Philox draws).
 */
#include "fill.h"

#include "check.h"
#include "rng.h"

void fill_uniform_cpu(float *y, const fill_params_t *p)
{
    NF_CHECK(p->dtype == KDTYPE_F32, "fill CPU op is fp32 only (dtype %s)", kdtype_name(p->dtype));
    nf_rng_t r = nf_rng_make(p->seed, NF_RNG_STREAM_TEST, 0, 0);
    for (size_t i = 0; i < p->count; i++) y[i] = p->lo + (p->hi - p->lo) * nf_rng_uniform(&r);
}
