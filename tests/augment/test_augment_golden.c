/*
 * test_augment_golden.c: the augment transforms against fastai itself.
 *
 * tests/reference/gen_augment.py ran fastai's own transforms with fixed draws
 * on four real Imagenette images (40 px presize) and stored the results in
 * tests/fixtures/augment/ (safetensors). Here the same draws are replayed
 * through augment_params_build() and the CPU transform (reference mode, the
 * fastai-exact two-resample pipeline), and every stage is compared within the
 * tolerances of one table:
 *   - the merged flip/rotate/zoom matrices and the perspective coefficients;
 *   - the affine+warp resample at the presize (both modes: at scale 1 the
 *     fused mode is the same single bilinear resample);
 *   - the min_scale == 1 path at 16 and 24 px, including fastai's area
 *     pre-shrink decision (z vs d) and size;
 *   - RandomResizedCropGPU for three boxes (pre-shrink or not, non-square);
 *   - lighting in logit space, Normalize, the full train pipeline;
 *   - the statistics Normalize() computes from a batch;
 *   - the validation pipeline (identity resample, 40 -> 32 -> 16 pre-shrink);
 *   - Mixup for given lambdas and permutation;
 *   - the pre-shrink size for every crop side 398..460 of a 460 presize.
 */
#include "augment.h"
#include "fixture.h"
#include "pixel.h"
#include "testlib.h"
#include "transform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 4
#define P 40  // presize of the fixtures

// One tolerance table for every compared tensor (values of images are in
// [0, 1] before Normalize, about [-2.2, 2.7] after it).
static const struct {
    const char *name;
    double atol, rtol;
} s_tol[] = {
    {"mat", 1e-6, 0},          {"warp_coeffs", 2e-6, 1e-5}, {"affine", 2e-5, 0},
    {"nocrop", 2e-5, 0},       {"crop", 2e-5, 0},           {"lighting", 2e-6, 1e-5},
    {"pipeline", 1e-4, 0},     {"stats", 2e-6, 1e-5},       {"valid", 1e-4, 0},
    {"mix", 1e-4, 0},
};

static void s_tolerance(const char *name, double *atol, double *rtol)
{
    for (size_t i = 0; i < NF_ARRAY_LEN(s_tol); i++)
        if (strcmp(s_tol[i].name, name) == 0) {
            *atol = s_tol[i].atol;
            *rtol = s_tol[i].rtol;
            return;
        }
    NF_CHECK(0, "no tolerance for %s", name);
}

static bool s_close(const char *kind, const char *label, const float *got, const float *want,
                    size_t n)
{
    double atol, rtol;
    s_tolerance(kind, &atol, &rtol);
    return t_close_f32(label, got, want, n, atol, rtol);
}

// The fixed draws of gen_augment.py, read back from affine.safetensors.
static void s_draws(fixture_t *aff, augment_image_params_t img[N])
{
    const float *flip = fixture_f32(aff, "flip", N), *rot = fixture_f32(aff, "rotate", N),
                *zoom = fixture_f32(aff, "zoom", N), *cx = fixture_f32(aff, "zoom_cx", N),
                *cy = fixture_f32(aff, "zoom_cy", N), *wa = fixture_f32(aff, "warp_a", N),
                *wb = fixture_f32(aff, "warp_b", N);
    for (int i = 0; i < N; i++) {
        augment_params_neutral(&img[i], i);
        img[i].flip = flip[i] != 0.0f ? -1.0f : 1.0f;  // fastai draw 1 = mirrored
        img[i].rotate_deg = rot[i];
        img[i].zoom = zoom[i];
        img[i].zoom_cx = cx[i];
        img[i].zoom_cy = cy[i];
        img[i].warp_a = wa[i];
        img[i].warp_b = wb[i];
    }
}

static void s_lighting_draws(fixture_t *pipe, augment_image_params_t img[N])
{
    const float *b = fixture_f32(pipe, "bright", N), *c = fixture_f32(pipe, "contrast", N);
    for (int i = 0; i < N; i++) {
        img[i].bright = b[i];
        img[i].contrast = c[i];
    }
}

// A config for one golden case: reference mode, no lighting, no Normalize,
// f32, crop stage on or off.
static augment_config_t s_cfg(int size, bool crop_stage)
{
    augment_config_t cfg;
    augment_config_defaults(&cfg);
    cfg.size = size;
    cfg.presize = P;
    cfg.max_batch = N;
    cfg.resample = AUGMENT_RESAMPLE_REFERENCE;
    cfg.min_scale = crop_stage ? 0.75f : 1.0f;
    cfg.max_lighting = 0.0f;
    cfg.normalize = false;
    cfg.threads = 2;
    return cfg;
}

// Builds the parameters from the given draws and runs the CPU transform.
// Returns a malloc'ed (N, size, size, 3) f32 batch; *bp_out gets the batch
// parameters.
static float *s_run(const augment_config_t *cfg, augment_mode_t mode, const uint8_t *src,
                    const augment_image_params_t draws[N], const augment_crop_t *crop,
                    augment_batch_params_t *bp_out)
{
    augment_raw_t raw = {.pixels = src, .n = N, .h = P, .w = P, .mode = mode};
    static const uint32_t idx[N] = {0, 1, 2, 3};
    raw.indices = idx;
    augment_image_params_t img[N];
    memcpy(img, draws, sizeof img);
    augment_batch_params_t bp;
    augment_params_build(cfg, &raw, crop, &bp, img);
    size_t elems = (size_t)N * cfg->size * cfg->size * 3;
    float *out = nf_xmalloc(elems * sizeof(float));
    size_t ws_bytes = augment_transform_workspace_bytes(AUGMENT_BACKEND_CPU, N, cfg->size,
                                                        cfg->size, bp.mix_on != 0);
    float *ws = ws_bytes ? nf_xmalloc(ws_bytes) : NULL;
    augment_transform_args_t a = {.batch = bp,
                                  .img = img,
                                  .src = src,
                                  .out = out,
                                  .dtype = AUGMENT_DTYPE_F32,
                                  .ws = ws,
                                  .threads = cfg->threads};
    augment_transform_cpu(&a);
    free(ws);
    if (bp_out) *bp_out = bp;
    return out;
}

static void test_matrices(fixture_t *aff)
{
    augment_image_params_t img[N];
    s_draws(aff, img);
    const float *mat = fixture_f32(aff, "mat", N * 6);
    const float *coeffs = fixture_f32(aff, "warp_coeffs", N * 8);
    float got_m[N * 6], got_c[N * 8];
    for (int i = 0; i < N; i++) {
        augment_affine_matrix(img[i].flip, img[i].rotate_deg, img[i].zoom, img[i].zoom_cx,
                              img[i].zoom_cy, P, P, got_m + 6 * i);
        augment_warp_coeffs(img[i].warp_a, img[i].warp_b, got_c + 8 * i);
    }
    s_close("mat", "affine matrices", got_m, mat, N * 6);
    s_close("warp_coeffs", "perspective coefficients", got_c, coeffs, N * 8);
    // a non-square input: the aspect correction scales the off-diagonal terms
    float m[6];
    augment_affine_matrix(1.0f, 30.0f, 1.0f, 0.5f, 0.5f, 100, 200, m);
    T_NEAR(m[1], 0.5f * 0.5f, 1e-6);   // sin(30) * h / w
    T_NEAR(m[3], -0.5f * 2.0f, 1e-6);  // -sin(30) * w / h
}

static void test_affine(fixture_t *aff)
{
    const uint8_t *src = fixture_u8(aff, "src", N * P * P * 3);
    augment_image_params_t img[N];
    s_draws(aff, img);
    // the affine+warp resample at the presize: no crop stage, size = presize
    for (int mode = 0; mode < 2; mode++) {
        augment_config_t cfg = s_cfg(P, false);
        cfg.resample = mode ? AUGMENT_RESAMPLE_FUSED : AUGMENT_RESAMPLE_REFERENCE;
        augment_batch_params_t bp;
        float *out = s_run(&cfg, AUGMENT_MODE_TRAIN, src, img, NULL, &bp);
        T_CHECK(bp.warp_on && !bp.src_shrink && !bp.crop_on, "plain affine+warp at the presize");
        s_close("affine", mode ? "affine+warp 40->40 (fused)" : "affine+warp 40->40 (reference)",
                out, fixture_f32(aff, "out_affine", N * P * P * 3), N * P * P * 3);
        free(out);
    }
    // min_scale == 1: straight to the size, fastai's pre-shrink decided by z
    struct {
        const char *name;
        int size;
        bool zoom_only;
    } cases[] = {{"nocrop16", 16, false}, {"nocrop24", 24, false}, {"nocrop16z", 16, true}};
    for (size_t k = 0; k < NF_ARRAY_LEN(cases); k++) {
        augment_image_params_t d[N];
        memcpy(d, img, sizeof d);
        if (cases[k].zoom_only)
            for (int i = 0; i < N; i++) {
                d[i].zoom = 1.6f;
                d[i].rotate_deg = 0.0f;
                d[i].warp_a = d[i].warp_b = 0.0f;
                d[i].zoom_cx = d[i].zoom_cy = 0.5f;
            }
        augment_config_t cfg = s_cfg(cases[k].size, false);
        augment_batch_params_t bp;
        float *out = s_run(&cfg, AUGMENT_MODE_TRAIN, src, d, NULL, &bp);
        char name[64];
        snprintf(name, sizeof name, "shrink_%s", cases[k].name);
        const int32_t *sh = fixture_i32(aff, name, 2);
        T_CHECK(bp.src_shrink == (sh[0] != 0), "%s: pre-shrink %d, fastai %d", cases[k].name,
                bp.src_shrink, sh[0] != 0);
        if (sh[0]) T_CHECK(bp.s_h == sh[0] && bp.s_w == sh[1], "%s: pre-shrink to %dx%d, fastai %dx%d",
                           cases[k].name, bp.s_h, bp.s_w, sh[0], sh[1]);
        snprintf(name, sizeof name, "out_%s", cases[k].name);
        size_t n = (size_t)N * cases[k].size * cases[k].size * 3;
        s_close("nocrop", name, out, fixture_f32(aff, name, n), n);
        free(out);
    }
}

static void test_crop_and_pipeline(fixture_t *aff, fixture_t *pipe)
{
    const uint8_t *src = fixture_u8(pipe, "src", N * P * P * 3);
    augment_image_params_t img[N];
    s_draws(aff, img);
    s_lighting_draws(pipe, img);
    const char *names[3] = {"crop24", "crop16", "crop16r"};
    const int sizes[3] = {24, 16, 16};
    for (int k = 0; k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "box_%s", names[k]);
        const int32_t *box = fixture_i32(pipe, name, 4);  // (y0, x0, h, w)
        augment_crop_t crop = {box[1], box[0], box[3], box[2]};
        int S = sizes[k];
        size_t n = (size_t)N * S * S * 3;

        // geometry only: affine+warp at the presize, then the crop stage
        augment_config_t cfg = s_cfg(S, true);
        augment_batch_params_t bp;
        float *out = s_run(&cfg, AUGMENT_MODE_TRAIN, src, img, &crop, &bp);
        snprintf(name, sizeof name, "shrink_%s", names[k]);
        const int32_t *sh = fixture_i32(pipe, name, 2);
        T_CHECK(bp.crop_shrink == (sh[0] != 0), "%s: pre-shrink %d, fastai %d", names[k],
                bp.crop_shrink, sh[0] != 0);
        if (sh[0]) T_CHECK(bp.cs_h == sh[0] && bp.cs_w == sh[1], "%s: pre-shrink %dx%d, fastai %dx%d",
                           names[k], bp.cs_h, bp.cs_w, sh[0], sh[1]);
        snprintf(name, sizeof name, "out_%s", names[k]);
        const float *want_geom = fixture_f32(pipe, name, n);
        s_close("crop", name, out, want_geom, n);
        free(out);
        if (k == 2) continue;

        if (k == 0) {
            // lighting alone, on fastai's own crop output
            augment_image_params_t built[N];
            memcpy(built, img, sizeof built);
            augment_raw_t raw = {.pixels = src, .n = N, .h = P, .w = P, .mode = AUGMENT_MODE_TRAIN};
            augment_batch_params_t bp_l;
            augment_params_build(&cfg, &raw, &crop, &bp_l, built);
            float *lit = nf_xmalloc(n * sizeof(float));
            for (size_t e = 0; e < n; e++) {
                const augment_image_params_t *ip = &built[e / ((size_t)S * S * 3)];
                lit[e] = augment_px_lighting(want_geom[e], ip->bright_odds, ip->contrast);
            }
            const float *want_lit = fixture_f32(pipe, "light_crop24", n);
            s_close("lighting", "lighting on fastai's crop", lit, want_lit, n);
            free(lit);
            // geometry + lighting, then the statistics Normalize() computes from it
            augment_config_t lcfg = cfg;
            lcfg.max_lighting = 0.2f;
            float *ours = s_run(&lcfg, AUGMENT_MODE_TRAIN, src, img, &crop, NULL);
            s_close("crop", "crop24 + lighting", ours, want_lit, n);
            float mean[3], std[3];
            augment_stats_f32(ours, n / 3, mean, std);
            s_close("stats", "computed mean", mean, fixture_f32(pipe, "stats_mean", 3), 3);
            s_close("stats", "computed std", std, fixture_f32(pipe, "stats_std", 3), 3);
            free(ours);
        }
        // the whole train pipeline: + lighting + Normalize(imagenet)
        cfg.max_lighting = 0.2f;
        cfg.normalize = true;
        out = s_run(&cfg, AUGMENT_MODE_TRAIN, src, img, &crop, &bp);
        T_CHECK(bp.light_on && bp.norm_on, "lighting and Normalize on");
        snprintf(name, sizeof name, "norm_%s", names[k]);
        s_close("pipeline", name, out, fixture_f32(pipe, name, n), n);
        free(out);
    }
}

static void test_valid_and_mixup(fixture_t *valid)
{
    const uint8_t *src = fixture_u8(valid, "src", N * P * P * 3);
    augment_image_params_t img[N];
    for (int i = 0; i < N; i++) augment_params_neutral(&img[i], i);
    for (int S = 16; S <= 24; S += 8) {
        augment_config_t cfg = s_cfg(S, true);
        cfg.max_lighting = 0.2f;  // configured, but validation has no lighting
        cfg.normalize = true;
        augment_crop_t crop;
        augment_crop_box(&cfg, P, P, NULL, &crop.x0, &crop.y0, &crop.w, &crop.h);
        T_CHECK(crop.x0 == 0 && crop.y0 == 0 && crop.w == P && crop.h == P,
                "validation crop = the full image");
        augment_batch_params_t bp;
        float *out = s_run(&cfg, AUGMENT_MODE_VALID, src, img, &crop, &bp);
        T_CHECK(!bp.light_on && !bp.warp_on && bp.a_identity, "validation: no lighting, no warp");
        char name[64];
        snprintf(name, sizeof name, "shrink_valid%d", S);
        const int32_t *sh = fixture_i32(valid, name, 2);
        T_CHECK(bp.crop_shrink == (sh[0] != 0) && (!sh[0] || (bp.cs_h == sh[0] && bp.cs_w == sh[1])),
                "valid %d: pre-shrink %d to %dx%d, fastai %dx%d", S, bp.crop_shrink, bp.cs_h,
                bp.cs_w, sh[0], sh[1]);
        snprintf(name, sizeof name, "valid%d", S);
        size_t n = (size_t)N * S * S * 3;
        s_close("valid", name, out, fixture_f32(valid, name, n), n);
        free(out);
    }

    // Mixup of the normalized validation batch at 24 px for fastai's lambdas
    // (already max(l, 1 - l)) and permutation
    const float *lam = fixture_f32(valid, "mix_lambda", N);
    const int32_t *perm = fixture_i32(valid, "mix_perm", N);
    for (int i = 0; i < N; i++) {
        img[i].lambda = lam[i];
        img[i].partner = perm[i];
    }
    augment_config_t cfg = s_cfg(24, true);
    cfg.normalize = true;
    augment_crop_t crop = {0, 0, P, P};
    augment_batch_params_t bp;
    float *out = s_run(&cfg, AUGMENT_MODE_VALID, src, img, &crop, &bp);
    T_CHECK(bp.mix_on, "Mixup on for a non-identity permutation");
    size_t n = (size_t)N * 24 * 24 * 3;
    s_close("mix", "mixup", out, fixture_f32(valid, "mix_out", n), n);
    free(out);
}

static void test_preshrink_sizes(fixture_t *sizes)
{
    int64_t dims[8];
    int nd = fixture_shape(sizes, "shrink", dims);
    T_CHECK(nd == 3 && dims[2] == 2, "shrink table shape");
    int ns = (int)dims[0], nsides = (int)dims[1];
    const int32_t *sz = fixture_i32(sizes, "sizes", (size_t)ns);
    const int32_t *sides = fixture_i32(sizes, "sides", (size_t)nsides);
    const int32_t *tab = fixture_i32(sizes, "shrink", (size_t)ns * nsides * 2);
    int bad = 0, shrunk = 0;
    for (int i = 0; i < ns; i++)
        for (int k = 0; k < nsides; k++) {
            int sh = 0, sw = 0;
            int on = augment_preshrink_size(sides[k], sides[k], sz[i], sz[i], 1.0, &sh, &sw);
            const int32_t *want = tab + ((size_t)i * nsides + k) * 2;
            if (!on) sh = sw = 0;
            shrunk += on;
            if (sh != want[0] || sw != want[1]) {
                if (bad++ < 5)
                    fprintf(stderr, "  side %d -> size %d: pre-shrink %dx%d, fastai %dx%d\n",
                            sides[k], sz[i], sh, sw, want[0], want[1]);
            }
        }
    T_CHECK(bad == 0, "%d of %d pre-shrink sizes differ from fastai", bad, ns * nsides);
    T_CHECK(shrunk > 0, "the table exercises the pre-shrink (%d cases)", shrunk);
}

int main(void)
{
    fixture_t *aff = fixture_load("affine.safetensors");
    fixture_t *pipe = fixture_load("pipeline.safetensors");
    test_matrices(aff);
    test_affine(aff);
    test_crop_and_pipeline(aff, pipe);
    fixture_t *valid = fixture_load("valid.safetensors");
    test_valid_and_mixup(valid);
    fixture_free(&valid);
    fixture_t *sizes = fixture_load("sizes.safetensors");
    test_preshrink_sizes(sizes);
    fixture_free(&sizes);
    fixture_free(&pipe);
    fixture_free(&aff);
    return t_done();
}
