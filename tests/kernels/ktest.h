/*
 * ktest.h: small helpers shared by the kernel tests: aligned buffers and
 * reproducible random fills (common/rng.h, stream NF_RNG_STREAM_TEST).
 */
#ifndef NF_KTEST_H
#define NF_KTEST_H

#include <stddef.h>
#include <stdint.h>

// Zeroed, 64-byte aligned fp32 / int32 buffers (free with free()).
float *kt_f32(size_t n);
int32_t *kt_i32(size_t n);
// x[i] ~ U[lo, hi) from the test stream, draw set `index`.
void kt_fill(float *x, size_t n, float lo, float hi, uint32_t index);
// x[i] ~ U{0..below-1}.
void kt_fill_int(int32_t *x, size_t n, uint32_t below, uint32_t index);
// x[i] ~ U[lo, hi) with a random sign and |x| >= lo: values kept away from
// 0, the kink of ReLU, for finite differences.
void kt_fill_away_from_zero(float *x, size_t n, float lo, float hi, uint32_t index);

#endif
