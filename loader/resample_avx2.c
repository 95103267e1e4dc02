/*
 * resample_avx2.c: the AVX2 horizontal pass (see resample_simd.h), built on
 * x86-64 only and used when the CPU reports AVX2. Two output pixels per
 * 256-bit register (one per 128-bit lane); per tap pair one 8-byte load per
 * output, one byte shuffle to (R,R',G,G',B,B',0,0) int16 pairs, and one
 * pmaddwd for each weight half, with the weights laid out ahead per lane.
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

loader_hrow_fn loader_resample_simd_hrow(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? s_hrow_avx2 : NULL;
}
