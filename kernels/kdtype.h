/*
 * kdtype.h: the storage dtypes of the compute kernels, and bf16 on the host.
 *
 * Every op's parameter struct carries a `dtype`. It names how the op's
 * activation-like tensors are stored (inputs, outputs, their gradients, and
 * conv/linear weights and weight gradients):
 *   - the CPU ops (`_cpu`) accept KDTYPE_F32 only (NF_CHECK otherwise);
 *   - the CUDA ops (`_cuda`) accept KDTYPE_F32 (tight parity tests) and
 *     KDTYPE_BF16 (training storage). Accumulation is always fp32.
 * Tensors that are fp32 whatever `dtype` says: BatchNorm gamma/beta, running
 * and saved statistics and their gradients, linear bias and its gradient,
 * losses, per-sample loss weights, Adam's master weights, moments and grads.
 * Header documentation marks a pointer "(dtype)" when it follows `dtype`.
 *
 * The host bf16 helpers round to nearest even and keep NaN a (quiet) NaN, as
 * PyTorch's and CUDA's __float2bfloat16_rn do. This file does not convert
 * arrays: see cast.h.
 */
#ifndef NF_KDTYPE_H
#define NF_KDTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    KDTYPE_F32 = 0,  // IEEE binary32 (the default: a zeroed params struct is f32)
    KDTYPE_BF16 = 1  // bfloat16 stored as uint16_t, top 16 bits of the binary32
} kdtype_t;

// Bytes per element of a dtype.
static inline size_t kdtype_size(kdtype_t t) { return t == KDTYPE_BF16 ? 2 : 4; }

// Name for messages ("f32", "bf16").
static inline const char *kdtype_name(kdtype_t t) { return t == KDTYPE_BF16 ? "bf16" : "f32"; }

// f32 -> bf16, round to nearest, ties to even; NaN stays NaN.
static inline uint16_t kdtype_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

// bf16 -> f32 (exact).
static inline float kdtype_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

#ifdef __cplusplus
}
#endif

#endif
