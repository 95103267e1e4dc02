/*
 * add.c: the fp32 reference of add.h.
 */
#include "add.h"

#include "check.h"

void add_forward_cpu(float *y, const float *a, const float *b, const add_params_t *p)
{
    NF_CHECK(p->dtype == KDTYPE_F32, "add CPU op is fp32 only (dtype %s)", kdtype_name(p->dtype));
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < p->count; i++) y[i] = a[i] + b[i];
}
