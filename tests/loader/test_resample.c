/*
 * test_resample.c: the resampler's fast paths against its plain-C reference,
 * byte for byte, on random images over many geometries: downscales (up to
 * 10x, wide filters), upscales, identity, odd sizes, fractional boxes, sources
 * narrower than the filter, rows with padding; and the workspace bound.
 * (The plain-C path itself is checked against PIL in test_presize.c.)
 */
#include "resample.h"
#include "rng.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_case(uint32_t in_w, uint32_t in_h, const float box[4], uint32_t out_w, uint32_t out_h,
                   uint32_t seed, int *failed)
{
    size_t stride = (size_t)in_w * 3 + (seed % 3) * 7;  // sometimes padded rows
    uint8_t *in = nf_xmalloc(stride * in_h);
    nf_rng_t r = nf_rng_make(seed, NF_RNG_STREAM_TEST, 0, 0);
    for (size_t i = 0; i < stride * in_h; i++) in[i] = (uint8_t)nf_rng_u32(&r);
    loader_resample_params_t p = {.in_w = in_w, .in_h = in_h, .out_w = out_w, .out_h = out_h};
    memcpy(p.box, box, sizeof p.box);
    size_t ws_bytes = loader_resample_workspace_bytes(&p);
    void *ws = nf_xmalloc(ws_bytes);
    uint8_t *fast = nf_xmalloc((size_t)out_w * out_h * 3), *ref = nf_xmalloc((size_t)out_w * out_h * 3);
    loader_resample_rgb(&p, in, stride, fast, ws);
    p.scalar = true;
    loader_resample_rgb(&p, in, stride, ref, ws);
    if (memcmp(fast, ref, (size_t)out_w * out_h * 3) != 0) {
        (*failed)++;
        T_CHECK(0, "%ux%u box %g,%g,%g,%g -> %ux%u: fast path differs from the reference", in_w,
                in_h, box[0], box[1], box[2], box[3], out_w, out_h);
    }
    free(in);
    free(ws);
    free(fast);
    free(ref);
}

int main(void)
{
    static const uint32_t sizes[][4] = {
        {224, 224, 160, 160}, {224, 224, 460, 460}, {224, 224, 224, 224}, {224, 224, 112, 112},
        {500, 375, 460, 460}, {375, 500, 128, 128}, {1000, 40, 100, 7},   {7, 9, 3, 2},
        {3, 3, 50, 50},       {640, 480, 64, 64},   {33, 17, 32, 16},     {2, 2, 1, 1},
        {97, 211, 96, 211},   {211, 97, 211, 40},
    };
    int failed = 0;
    uint32_t seed = 1;
    for (size_t i = 0; i < NF_ARRAY_LEN(sizes); i++) {
        const uint32_t *s = sizes[i];
        float whole[4] = {0, 0, (float)s[0], (float)s[1]};
        s_case(s[0], s[1], whole, s[2], s[3], seed++, &failed);
        // a fractional box inside the image (the DCT-scaled decode's kind)
        float box[4] = {0.25f * s[0] * 0.1f, 0.3f, (float)s[0] - 0.6f, (float)s[1] * 0.9f};
        if (box[2] > box[0] + 1 && box[3] > box[1] + 1) s_case(s[0], s[1], box, s[2], s[3], seed++, &failed);
    }
    nf_rng_t r = nf_rng_make(5, NF_RNG_STREAM_TEST, 1, 0);
    for (int i = 0; i < 60; i++) {
        uint32_t iw = 1 + nf_rng_below(&r, 400), ih = 1 + nf_rng_below(&r, 300);
        uint32_t ow = 1 + nf_rng_below(&r, 300), oh = 1 + nf_rng_below(&r, 300);
        float whole[4] = {0, 0, (float)iw, (float)ih};
        s_case(iw, ih, whole, ow, oh, seed++, &failed);
    }
    T_CHECK(failed == 0, "%d resample geometries differ between the fast path and the reference", failed);
    loader_resample_params_t p = {.in_w = 224, .in_h = 224, .box = {0, 0, 224, 224}, .out_w = 460, .out_h = 460};
    size_t ws = loader_resample_workspace_bytes(&p);
    T_CHECK(ws > 0 && ws < (size_t)460 * 224 * 3 + (1 << 20), "workspace %zu bytes", ws);
    return t_done();
}
