/*
 * test_augment_cuda.c: CUDA vs CPU parity of the whole batch transform (label
 * gpu). For each configuration (fused and reference resampling; train, valid
 * and TTA; crop stage on and off; f32 and bf16; Mixup on and off; a partial
 * batch) the same raw batch goes through a CPU and a CUDA context: the
 * outputs must agree to float rounding (the drawn parameters are identical by
 * construction, the per-pixel code is shared) and the carried labels, partner
 * labels and weights must be identical, and the kernel must have been timed.
 * The output buffer is pre-filled with NaNs so a pixel the kernel misses
 * fails the comparison.
 *
 * Exits 77 (skipped) with a message when no CUDA device is usable.
 */
#include "augment.h"
#include "pixel.h"
#include "rng.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXB 16

static uint8_t *s_images(int n, int h, int w, uint32_t salt)
{
    uint8_t *px = nf_xmalloc((size_t)n * h * w * 3);
    for (int i = 0; i < n; i++) {
        nf_rng_t r = nf_rng_make(salt, NF_RNG_STREAM_TEST, 1, (uint32_t)i);
        float f[6];
        for (int k = 0; k < 6; k++) f[k] = nf_rng_range(&r, 0.5f, 6.0f);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++) {
                    float wave = sinf(f[c] * 6.2832f * x / w) * cosf(f[c + 3] * 6.2832f * y / h);
                    float grain = (float)((x * 7 + y * 13 + c) % 17) / 17.0f;
                    float v = 0.5f + 0.3f * wave + 0.15f * grain;
                    v = v < 0 ? 0 : v > 1 ? 1 : v;
                    px[(((size_t)i * h + y) * w + x) * 3 + c] = (uint8_t)(v * 255.0f);
                }
    }
    return px;
}

typedef struct {
    const char *name;
    augment_resample_t resample;
    augment_mode_t mode;
    float min_scale;
    augment_dtype_t dtype;
    float mixup;
    int size, presize, n;
} s_case_t;

static void s_compare(const s_case_t *c, const uint8_t *px)
{
    augment_config_t cfg;
    augment_config_defaults(&cfg);
    cfg.size = c->size;
    cfg.presize = c->presize;
    cfg.max_batch = MAXB;
    cfg.resample = c->resample;
    cfg.min_scale = c->min_scale;
    cfg.dtype = c->dtype;
    cfg.mixup_alpha = c->mixup;
    cfg.seed = 1234;
    augment_t *cpu = augment_new(&cfg);
    cfg.backend = AUGMENT_BACKEND_CUDA;
    augment_t *gpu = augment_new(&cfg);
    T_CHECK(cpu && gpu, "%s: contexts", c->name);
    if (!cpu || !gpu) return;

    uint32_t idx[MAXB];
    int32_t labels[MAXB];
    for (int i = 0; i < MAXB; i++) {
        idx[i] = 500u + 3u * (uint32_t)i;
        labels[i] = i;
    }
    augment_raw_t raw = {.pixels = px, .n = c->n, .h = c->presize, .w = c->presize,
                         .labels = labels, .indices = idx, .epoch = 3, .seq = 11, .pass = 2,
                         .mode = c->mode};
    size_t bytes = augment_out_bytes(cpu, c->n), elems = (size_t)c->n * c->size * c->size * 3;
    augment_out_t oc = {.pixels = nf_xmalloc(bytes), .labels = nf_xmalloc(MAXB * 4),
                        .partner_labels = nf_xmalloc(MAXB * 4), .weights = nf_xmalloc(MAXB * 4)};
    augment_out_t og = {.pixels = nf_xmalloc(bytes), .labels = nf_xmalloc(MAXB * 4),
                        .partner_labels = nf_xmalloc(MAXB * 4), .weights = nf_xmalloc(MAXB * 4)};
    memset(og.pixels, 0xff, bytes);  // NaN pattern: every value must be written
    T_CHECK(augment_batch(cpu, &oc, &raw) == 0 && augment_batch(gpu, &og, &raw) == 0, "%s: run",
            c->name);
    float *a = nf_xmalloc(elems * sizeof(float)), *b = nf_xmalloc(elems * sizeof(float));
    for (size_t e = 0; e < elems; e++) {
        if (c->dtype == AUGMENT_DTYPE_F32) {
            a[e] = ((float *)oc.pixels)[e];
            b[e] = ((float *)og.pixels)[e];
        } else {
            a[e] = augment_px_from_bf16(((uint16_t *)oc.pixels)[e]);
            b[e] = augment_px_from_bf16(((uint16_t *)og.pixels)[e]);
        }
    }
    // f32: float rounding of the same formulas (FMA contraction, expf/logf
    // ulps); bf16: one rounding step of a value that can sit on a tie
    double atol = c->dtype == AUGMENT_DTYPE_F32 ? 2e-4 : 2e-3;
    double rtol = c->dtype == AUGMENT_DTYPE_F32 ? 0 : 1.0 / 128;
    char name[128];
    snprintf(name, sizeof name, "cuda vs cpu: %s", c->name);
    t_close_f32(name, b, a, elems, atol, rtol);
    T_CHECK(memcmp(oc.labels, og.labels, (size_t)c->n * 4) == 0 &&
                memcmp(oc.partner_labels, og.partner_labels, (size_t)c->n * 4) == 0 &&
                memcmp(oc.weights, og.weights, (size_t)c->n * 4) == 0,
            "%s: identical labels, partners and weights", c->name);
    T_CHECK(augment_last_kernel_ms(gpu) > 0.0, "%s: kernel timed (%.3f ms)", c->name,
            augment_last_kernel_ms(gpu));
    free(a);
    free(b);
    free(oc.pixels);
    free(oc.labels);
    free(oc.partner_labels);
    free(oc.weights);
    free(og.pixels);
    free(og.labels);
    free(og.partner_labels);
    free(og.weights);
    augment_destroy(&cpu);
    augment_destroy(&gpu);
}

int main(void)
{
    int devices = augment_cuda_devices();
    if (devices < 1) t_skip("no usable CUDA device (cudaGetDeviceCount gave 0 or failed)");
    printf("CUDA devices: %d\n", devices);

    const int P = 96;
    uint8_t *px = s_images(MAXB, P, P, 77);
    // name, resample, mode, min_scale, dtype, mixup alpha, size, presize, n
    const s_case_t cases[] = {
        {"fused train crop f32", AUGMENT_RESAMPLE_FUSED, AUGMENT_MODE_TRAIN, 0.75f,
         AUGMENT_DTYPE_F32, 0, 40, P, MAXB},
        {"fused train crop f32 mixup", AUGMENT_RESAMPLE_FUSED, AUGMENT_MODE_TRAIN, 0.75f,
         AUGMENT_DTYPE_F32, 0.4f, 40, P, MAXB},
        {"fused train crop bf16 mixup", AUGMENT_RESAMPLE_FUSED, AUGMENT_MODE_TRAIN, 0.75f,
         AUGMENT_DTYPE_BF16, 0.4f, 40, P, MAXB},
        {"fused valid", AUGMENT_RESAMPLE_FUSED, AUGMENT_MODE_VALID, 0.75f,
         AUGMENT_DTYPE_F32, 0.4f, 40, P, MAXB},
        {"fused tta partial batch", AUGMENT_RESAMPLE_FUSED, AUGMENT_MODE_TTA, 0.75f,
         AUGMENT_DTYPE_F32, 0.4f, 40, P, 5},
        {"fused train no crop (min_scale 1)", AUGMENT_RESAMPLE_FUSED, AUGMENT_MODE_TRAIN, 1.0f,
         AUGMENT_DTYPE_F32, 0, 24, P, MAXB},
        {"fused upsampling 96->128", AUGMENT_RESAMPLE_FUSED, AUGMENT_MODE_TRAIN, 0.75f,
         AUGMENT_DTYPE_F32, 0, 128, P, 4},
        {"reference train crop (pre-shrink)", AUGMENT_RESAMPLE_REFERENCE, AUGMENT_MODE_TRAIN, 0.75f,
         AUGMENT_DTYPE_F32, 0, 24, P, MAXB},
        {"reference train crop mixup", AUGMENT_RESAMPLE_REFERENCE, AUGMENT_MODE_TRAIN, 0.75f,
         AUGMENT_DTYPE_F32, 0.4f, 56, P, MAXB},
        {"reference valid bf16", AUGMENT_RESAMPLE_REFERENCE, AUGMENT_MODE_VALID, 0.75f,
         AUGMENT_DTYPE_BF16, 0, 40, P, MAXB},
        {"reference tta", AUGMENT_RESAMPLE_REFERENCE, AUGMENT_MODE_TTA, 0.75f,
         AUGMENT_DTYPE_F32, 0, 40, P, MAXB},
        {"reference no crop (source pre-shrink)", AUGMENT_RESAMPLE_REFERENCE, AUGMENT_MODE_TRAIN,
         1.0f, AUGMENT_DTYPE_F32, 0.4f, 24, P, MAXB},
    };
    for (size_t k = 0; k < NF_ARRAY_LEN(cases); k++) s_compare(&cases[k], px);
    free(px);
    return t_done();
}
