/*
 * resample_avx2.c: the AVX2 horizontal pass (see resample_simd.h), built on
 * x86-64 only and used when the CPU reports AVX2. Two output pixels per
 * 256-bit register (one per 128-bit lane); per tap pair one 8-byte load per
 * output, one byte shuffle to (R,R',G,G',B,B',0,0) int16 pairs, and one
 * pmaddwd for each weight half, with the weights laid out ahead per lane; and
 * a row-block kernel for eight rows at once (the main path: the per-output
 * work is shared by 8 rows), used for all but the last rows % 8.
 */
#include "resample_simd.h"

#include <immintrin.h>
#include <string.h>

#define S_PRECISION_BITS 22

__attribute__((target("avx2"))) static void s_hrow_avx2(const loader_hpass_t *h,
                                                         const uint8_t *in, uint8_t *out)
{
    // bytes (R0 R1 G0 G1 B0 B1) of taps 2p, 2p+1 as int16; 0x80 = zero
    const __m256i mask = _mm256_setr_epi8(0, -128, 3, -128, 1, -128, 4, -128, 2, -128, 5, -128,
                                          -128, -128, -128, -128, 0, -128, 3, -128, 1, -128, 4,
                                          -128, 2, -128, 5, -128, -128, -128, -128, -128);
    const __m256i half = _mm256_set1_epi32(1 << (S_PRECISION_BITS - 1));
    const int kp = h->kpairs;
    const __m256i *w = (const __m256i *)h->w;
    for (int xx = 0; xx + 1 < h->simd_w; xx += 2, w += 2 * kp) {
        const uint8_t *s0 = in + (size_t)h->bounds[2 * xx] * 3;
        const uint8_t *s1 = in + (size_t)h->bounds[2 * xx + 2] * 3;
        __m256i ahi = _mm256_setzero_si256(), alo = _mm256_setzero_si256();
        for (int p = 0; p < kp; p++) {
            __m128i v0 = _mm_loadl_epi64((const __m128i *)(s0 + 6 * p));
            __m128i v1 = _mm_loadl_epi64((const __m128i *)(s1 + 6 * p));
            __m256i v = _mm256_shuffle_epi8(_mm256_set_m128i(v1, v0), mask);
            ahi = _mm256_add_epi32(ahi, _mm256_madd_epi16(v, _mm256_loadu_si256(w + 2 * p)));
            alo = _mm256_add_epi32(alo, _mm256_madd_epi16(v, _mm256_loadu_si256(w + 2 * p + 1)));
        }
        __m256i t = _mm256_add_epi32(_mm256_slli_epi32(ahi, 11), _mm256_add_epi32(alo, half));
        t = _mm256_srai_epi32(t, S_PRECISION_BITS);
        t = _mm256_packs_epi32(t, t);
        t = _mm256_packus_epi16(t, t);
        uint32_t a = (uint32_t)_mm256_extract_epi32(t, 0), b = (uint32_t)_mm256_extract_epi32(t, 4);
        memcpy(out + 3 * xx, &a, 3);
        memcpy(out + 3 * xx + 3, &b, 3);
    }
}

__attribute__((target("avx2"))) static void s_hblock_avx2(const loader_hpass_t *h,
                                                           const uint8_t *in, size_t in_stride,
                                                           uint8_t *out, size_t out_stride)
{
    // 1. transpose: T[x] = 24 bytes (row 0 RGB, row 1 RGB, ... row 7 RGB), 32 apart.
    // 4-byte copies spill one byte into the next row's slot, rewritten just after
    // (row 7 spills into the padding); the last pixel of a row is copied exactly.
    uint8_t *T = h->scratch;
    const int in_w = h->in_w;
    for (int r = 0; r < 8; r++) {
        const uint8_t *p = in + (size_t)r * in_stride;
        uint8_t *t = T + 3 * r;
        int x = 0;
        for (; x < in_w - 1; x++) {
            uint32_t v;
            memcpy(&v, p + 3 * x, 4);
            memcpy(t + 32 * (size_t)x, &v, 4);
        }
        memcpy(t + 32 * (size_t)x, p + 3 * x, 3);
    }
    // 2. each output: sum over taps of weight x column, 24 int32 lanes, exact
    const __m256i half = _mm256_set1_epi32(1 << (S_PRECISION_BITS - 1));
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const int ks = h->ksize;
    uint8_t buf[32];
    for (int xx = 0; xx < h->out_w; xx++) {
        const int32_t *k = h->k + (size_t)xx * ks;
        const uint8_t *t = T + 32 * (size_t)h->bounds[2 * xx];
        const int n = h->bounds[2 * xx + 1];
        __m256i a0 = half, a1 = half, a2 = half;
        for (int j = 0; j < n; j++, t += 32) {
            const __m256i w = _mm256_set1_epi32(k[j]);
            a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(
                                          _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)t)), w));
            a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(
                                          _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(t + 8))), w));
            a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(
                                          _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(t + 16))), w));
        }
        a0 = _mm256_srai_epi32(a0, S_PRECISION_BITS);
        a1 = _mm256_srai_epi32(a1, S_PRECISION_BITS);
        a2 = _mm256_srai_epi32(a2, S_PRECISION_BITS);
        // saturate to bytes; dwords come out as a0[0-3] a1[0-3] a2[0-3] . | a0[4-7] a1[4-7] a2[4-7] .
        __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(a0, a1), _mm256_packs_epi32(a2, a2));
        b = _mm256_permutevar8x32_epi32(b, order);
        _mm256_storeu_si256((__m256i *)buf, b);
        // 3. back to the 8 output rows (4-byte stores spill into the next pixel,
        // written at the next xx; the last pixel is stored exactly)
        uint8_t *o = out + 3 * (size_t)xx;
        if (xx + 1 < h->out_w) {
            for (int r = 0; r < 8; r++) memcpy(o + (size_t)r * out_stride, buf + 3 * r, 4);
        } else {
            for (int r = 0; r < 8; r++) memcpy(o + (size_t)r * out_stride, buf + 3 * r, 3);
        }
    }
}

loader_hrow_fn loader_resample_simd_hrow(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? s_hrow_avx2 : NULL;
}

loader_hblock_fn loader_resample_simd_hblock(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? s_hblock_avx2 : NULL;
}
