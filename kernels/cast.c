/*
 * cast.c: the CPU conversions of cast.h, through kdtype.h's element rules.
 */
#include "cast.h"

#include "kdtype.h"

void cast_f32_to_bf16_cpu(uint16_t *y, const float *x, const cast_params_t *p)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < p->count; i++) y[i] = kdtype_f32_to_bf16(x[i]);
}

void cast_bf16_to_f32_cpu(float *y, const uint16_t *x, const cast_params_t *p)
{
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < p->count; i++) y[i] = kdtype_bf16_to_f32(x[i]);
}
