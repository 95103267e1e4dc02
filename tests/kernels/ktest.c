/*
 * ktest.c: see ktest.h.
 */
#include "ktest.h"

#include "check.h"
#include "rng.h"

#include <string.h>

float *kt_f32(size_t n)
{
    float *p = nf_xaligned((n ? n : 1) * sizeof *p);
    memset(p, 0, (n ? n : 1) * sizeof *p);
    return p;
}

int32_t *kt_i32(size_t n)
{
    int32_t *p = nf_xaligned((n ? n : 1) * sizeof *p);
    memset(p, 0, (n ? n : 1) * sizeof *p);
    return p;
}

void kt_fill(float *x, size_t n, float lo, float hi, uint32_t index)
{
    nf_rng_t r = nf_rng_make(1234, NF_RNG_STREAM_TEST, 0, index);
    for (size_t i = 0; i < n; i++) x[i] = nf_rng_range(&r, lo, hi);
}

void kt_fill_int(int32_t *x, size_t n, uint32_t below, uint32_t index)
{
    nf_rng_t r = nf_rng_make(1234, NF_RNG_STREAM_TEST, 1, index);
    for (size_t i = 0; i < n; i++) x[i] = (int32_t)nf_rng_below(&r, below);
}

void kt_fill_away_from_zero(float *x, size_t n, float lo, float hi, uint32_t index)
{
    nf_rng_t r = nf_rng_make(1234, NF_RNG_STREAM_TEST, 2, index);
    for (size_t i = 0; i < n; i++) {
        const float v = nf_rng_range(&r, lo, hi);
        x[i] = nf_rng_bernoulli(&r, 0.5f) ? v : -v;
    }
}
