/*
 * test_augment_golden.c: the augment transforms against fastai itself.
 *
 * tests/reference/gen_augment.py ran fastai's own transforms with fixed draws
 * on four real Imagenette images (40 px presize) and stored inputs and
 * results in tests/fixtures/augment/ (netteflow fixtures, tests/kernels/
 * fixture.h). Here the same draws are replayed through
 * augment_params_build() and the CPU transform in reference mode (the
 * fastai-exact two-resample pipeline), and every "out." tensor is compared
 * within its row of one tolerance table:
 *   - the merged flip/rotate/zoom matrices and the perspective coefficients;
 *   - the affine+warp resample at the presize (both modes: at scale 1 the
 *     fused mode is the same single bilinear resample);
 *   - the min_scale == 1 path at 16 and 24 px, including fastai's area
 *     pre-shrink decision (z against d) and size;
 *   - RandomResizedCropGPU for three boxes (pre-shrink or not, non-square);
 *   - lighting in logit space, Normalize, the full train pipeline;
 *   - the statistics Normalize() computes from a batch;
 *   - the validation pipeline (identity resample, 40 -> 32 -> 16 pre-shrink);
 *   - Mixup for given lambdas and permutation;
 *   - the pre-shrink size for every crop side 398..460 of a 460 presize;
 *   - the Mixup loss (kernels/xent, CrossEntropyLossFlat and
 *     LabelSmoothingCrossEntropyFlat) for given logits, labels, partner
 *     labels and lambdas: the metadata this stage carries.
 */
#include "augment.h"
#include "fixture.h"
#include "pixel.h"
#include "testlib.h"
#include "transform.h"
#include "xent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 4
#define P 40  // presize of the fixtures

// Values of images are in [0, 1] before Normalize, about [-2.2, 2.7] after;
// sizes are integers stored as floats (exact).
static const fixture_tol_t s_tol[] = {
    {"out.mat", 1e-6, 0},
    {"out.warp_coeffs", 2e-6, 1e-5},
    {"out.affine", 2e-5, 0},
    {"out.nocrop16", 2e-5, 0},
    {"out.nocrop24", 2e-5, 0},
    {"out.nocrop16z", 2e-5, 0},
    {"out.shrink_nocrop16", 0, 0},
    {"out.shrink_nocrop24", 0, 0},
    {"out.shrink_nocrop16z", 0, 0},
    {"out.crop24", 2e-5, 0},
    {"out.crop16", 2e-5, 0},
    {"out.crop16r", 2e-5, 0},
    {"out.shrink_crop24", 0, 0},
    {"out.shrink_crop16", 0, 0},
    {"out.shrink_crop16r", 0, 0},
    {"out.light_crop24", 2e-5, 1e-5},
    {"out.norm_crop24", 1e-4, 0},
    {"out.norm_crop16", 1e-4, 0},
    {"out.stats_mean", 2e-6, 1e-5},
    {"out.stats_std", 2e-6, 1e-5},
    {"out.valid16", 1e-4, 0},
    {"out.valid24", 1e-4, 0},
    {"out.shrink_valid16", 0, 0},
    {"out.shrink_valid24", 0, 0},
    {"out.mix", 1e-4, 0},
    {"out.shrink", 0, 0},
    {"out.loss_ce", 1e-6, 1e-6},
    {"out.loss_ls", 1e-6, 1e-6},
};

static bool s_expect(fixture_t *f, const char *name, const float *got, size_t n)
{
    return fixture_expect(f, s_tol, NF_ARRAY_LEN(s_tol), name, got, n);
}

// The uint8 source pictures (N, P, P, 3): the helper library reads f32/i32
// only, so this goes through common/safetensors directly.
static const uint8_t *s_src(fixture_t *f)
{
    const safetensors_tensor_t *t = safetensors_find(fixture_file(f), "in.src");
    NF_CHECK(t && t->dtype == SAFETENSORS_U8 && t->numel == (size_t)N * P * P * 3,
             "fixture in.src missing or not (%d, %d, %d, 3) U8", N, P, P);
    return t->data;
}

// Compares a pre-shrink decision with fastai's recorded interpolate size
// (0 x 0 when fastai did not pre-shrink).
static void s_expect_shrink(fixture_t *f, const char *name, int on, int h, int w)
{
    float got[2] = {on ? (float)h : 0.0f, on ? (float)w : 0.0f};
    s_expect(f, name, got, 2);
}

// The fixed draws of gen_augment.py, read back from affine.safetensors.
static bool s_draws(fixture_t *aff, augment_image_params_t img[N])
{
    const float *flip = fixture_f32(aff, "in.flip", N), *rot = fixture_f32(aff, "in.rotate", N),
                *zoom = fixture_f32(aff, "in.zoom", N), *cx = fixture_f32(aff, "in.zoom_cx", N),
                *cy = fixture_f32(aff, "in.zoom_cy", N), *wa = fixture_f32(aff, "in.warp_a", N),
                *wb = fixture_f32(aff, "in.warp_b", N);
    if (!flip || !rot || !zoom || !cx || !cy || !wa || !wb) return false;
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
    return true;
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
// parameters, built (when not NULL) the built image parameters.
static float *s_run(const augment_config_t *cfg, augment_mode_t mode, const uint8_t *src,
                    const augment_image_params_t draws[N], const augment_crop_t *crop,
                    augment_batch_params_t *bp_out, augment_image_params_t *built)
{
    static const uint32_t idx[N] = {0, 1, 2, 3};
    augment_raw_t raw = {.pixels = src, .n = N, .h = P, .w = P, .indices = idx, .mode = mode};
    augment_image_params_t img[N];
    memcpy(img, draws, sizeof img);
    augment_batch_params_t bp;
    augment_params_build(cfg, &raw, crop, &bp, img);
    size_t elems = (size_t)N * cfg->size * cfg->size * 3;
    float *out = nf_xmalloc(elems * sizeof(float));
    augment_workspace_shape_t shape = {.max_n = N, .presize = P, .size = cfg->size,
                                       .threads = cfg->threads, .mixup = bp.mix_on != 0,
                                       .resample = cfg->resample};
    size_t ws_bytes = augment_transform_workspace_bytes(AUGMENT_BACKEND_CPU, &shape);
    void *ws = nf_xaligned(ws_bytes);
    augment_transform_args_t a = {.batch = bp, .img = img, .src = src, .out = out,
                                  .dtype = AUGMENT_DTYPE_F32, .ws = ws, .ws_bytes = ws_bytes,
                                  .threads = cfg->threads};
    augment_transform_cpu(&a);
    free(ws);
    if (bp_out) *bp_out = bp;
    if (built) memcpy(built, img, sizeof img);
    return out;
}

static void test_affine(fixture_t *aff)
{
    augment_image_params_t img[N];
    if (!s_draws(aff, img)) return;
    const uint8_t *src = s_src(aff);

    // matrices and perspective coefficients
    float mat[N * 6], coeffs[N * 8];
    for (int i = 0; i < N; i++) {
        augment_affine_matrix(img[i].flip, img[i].rotate_deg, img[i].zoom, img[i].zoom_cx,
                              img[i].zoom_cy, P, P, mat + 6 * i);
        augment_warp_coeffs(img[i].warp_a, img[i].warp_b, coeffs + 8 * i);
    }
    s_expect(aff, "out.mat", mat, N * 6);
    s_expect(aff, "out.warp_coeffs", coeffs, N * 8);

    // the affine+warp resample at the presize: no crop stage, size = presize
    for (int mode = 0; mode < 2; mode++) {
        augment_config_t cfg = s_cfg(P, false);
        cfg.resample = mode ? AUGMENT_RESAMPLE_FUSED : AUGMENT_RESAMPLE_REFERENCE;
        augment_batch_params_t bp;
        float *out = s_run(&cfg, AUGMENT_MODE_TRAIN, src, img, NULL, &bp, NULL);
        T_CHECK(bp.warp_on && !bp.src_shrink && !bp.crop_on, "plain affine+warp at the presize");
        s_expect(aff, "out.affine", out, (size_t)N * P * P * 3);
        free(out);
    }

    // min_scale == 1: straight to the size, fastai's pre-shrink decided by z
    struct {
        const char *name, *shrink;
        int size;
        bool zoom_only;
    } cases[] = {{"out.nocrop16", "out.shrink_nocrop16", 16, false},
                 {"out.nocrop24", "out.shrink_nocrop24", 24, false},
                 {"out.nocrop16z", "out.shrink_nocrop16z", 16, true}};
    for (size_t k = 0; k < NF_ARRAY_LEN(cases); k++) {
        augment_image_params_t d[N];
        memcpy(d, img, sizeof d);
        if (cases[k].zoom_only)  // zoom 1.6 about the centre: z = 1.6 > d = 1.25, no pre-shrink
            for (int i = 0; i < N; i++) {
                d[i].zoom = 1.6f;
                d[i].rotate_deg = 0.0f;
                d[i].warp_a = d[i].warp_b = 0.0f;
                d[i].zoom_cx = d[i].zoom_cy = 0.5f;
            }
        augment_config_t cfg = s_cfg(cases[k].size, false);
        augment_batch_params_t bp;
        float *out = s_run(&cfg, AUGMENT_MODE_TRAIN, src, d, NULL, &bp, NULL);
        s_expect_shrink(aff, cases[k].shrink, bp.src_shrink, bp.s_h, bp.s_w);
        s_expect(aff, cases[k].name, out, (size_t)N * cases[k].size * cases[k].size * 3);
        free(out);
    }

    // a non-square input: the aspect correction scales the off-diagonal terms
    float m[6];
    augment_affine_matrix(1.0f, 30.0f, 1.0f, 0.5f, 0.5f, 100, 200, m);
    T_NEAR(m[1], 0.5f * 0.5f, 1e-6);   // sin(30) * h / w
    T_NEAR(m[3], -0.5f * 2.0f, 1e-6);  // -sin(30) * w / h
}

// The crop stage and the rest of the pipeline, on the draws of affine.safetensors.
static void test_crop_and_pipeline(fixture_t *aff)
{
    fixture_t *pipe = fixture_open("augment/pipeline.safetensors");
    augment_image_params_t img[N];
    const float *bright = pipe ? fixture_f32(pipe, "in.bright", N) : NULL;
    const float *contrast = pipe ? fixture_f32(pipe, "in.contrast", N) : NULL;
    if (!pipe || !s_draws(aff, img) || !bright || !contrast) goto done;
    for (int i = 0; i < N; i++) {
        img[i].bright = bright[i];
        img[i].contrast = contrast[i];
    }
    const uint8_t *src = s_src(pipe);
    const char *names[3] = {"crop24", "crop16", "crop16r"};
    const int sizes[3] = {24, 16, 16};
    for (int k = 0; k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "in.box_%s", names[k]);
        const int32_t *box = fixture_i32(pipe, name, 4);  // (y0, x0, h, w)
        if (!box) continue;
        augment_crop_t crop = {box[1], box[0], box[3], box[2]};
        int S = sizes[k];
        size_t n = (size_t)N * S * S * 3;

        // geometry only: affine+warp at the presize, then the crop stage
        augment_config_t cfg = s_cfg(S, true);
        augment_batch_params_t bp;
        augment_image_params_t built[N];
        float *out = s_run(&cfg, AUGMENT_MODE_TRAIN, src, img, &crop, &bp, built);
        snprintf(name, sizeof name, "out.shrink_%s", names[k]);
        s_expect_shrink(pipe, name, bp.crop_shrink, bp.cs_h, bp.cs_w);
        snprintf(name, sizeof name, "out.%s", names[k]);
        s_expect(pipe, name, out, n);
        free(out);
        if (k == 2) continue;

        if (k == 0) {
            // lighting alone, on fastai's own crop output
            const float *want_geom = fixture_f32(pipe, "out.crop24", n);
            float *lit = nf_xmalloc(n * sizeof(float));
            for (size_t e = 0; want_geom && e < n; e++) {
                const augment_image_params_t *ip = &built[e / ((size_t)S * S * 3)];
                lit[e] = augment_px_lighting(want_geom[e], ip->bright_odds, ip->contrast);
            }
            if (want_geom) s_expect(pipe, "out.light_crop24", lit, n);
            free(lit);
            // geometry + lighting, and the statistics Normalize() computes from it
            augment_config_t lcfg = cfg;
            lcfg.max_lighting = 0.2f;
            float *ours = s_run(&lcfg, AUGMENT_MODE_TRAIN, src, img, &crop, NULL, NULL);
            s_expect(pipe, "out.light_crop24", ours, n);
            float mean[3], std[3];
            augment_stats_f32(ours, n / 3, mean, std);
            s_expect(pipe, "out.stats_mean", mean, 3);
            s_expect(pipe, "out.stats_std", std, 3);
            free(ours);
        }
        // the whole train pipeline: + lighting + Normalize(imagenet)
        cfg.max_lighting = 0.2f;
        cfg.normalize = true;
        out = s_run(&cfg, AUGMENT_MODE_TRAIN, src, img, &crop, &bp, NULL);
        T_CHECK(bp.light_on && bp.norm_on, "lighting and Normalize on");
        snprintf(name, sizeof name, "out.norm_%s", names[k]);
        s_expect(pipe, name, out, n);
        free(out);
    }
done:
    fixture_close(&pipe);
}

static void test_valid_and_mixup(void)
{
    fixture_t *valid = fixture_open("augment/valid.safetensors");
    if (!valid) return;
    const uint8_t *src = s_src(valid);
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
        float *out = s_run(&cfg, AUGMENT_MODE_VALID, src, img, &crop, &bp, NULL);
        T_CHECK(!bp.light_on && !bp.warp_on && bp.a_identity, "validation: no lighting, no warp");
        char name[64];
        snprintf(name, sizeof name, "out.shrink_valid%d", S);
        s_expect_shrink(valid, name, bp.crop_shrink, bp.cs_h, bp.cs_w);
        snprintf(name, sizeof name, "out.valid%d", S);
        s_expect(valid, name, out, (size_t)N * S * S * 3);
        free(out);
    }

    // Mixup of the normalized validation batch at 24 px for fastai's lambdas
    // (already max(l, 1 - l)) and permutation
    const float *lam = fixture_f32(valid, "in.mix_lambda", N);
    const int32_t *perm = fixture_i32(valid, "in.mix_perm", N);
    if (lam && perm) {
        for (int i = 0; i < N; i++) {
            img[i].lambda = lam[i];
            img[i].partner = perm[i];
        }
        augment_config_t cfg = s_cfg(24, true);
        cfg.normalize = true;
        augment_crop_t crop = {0, 0, P, P};
        augment_batch_params_t bp;
        float *out = s_run(&cfg, AUGMENT_MODE_VALID, src, img, &crop, &bp, NULL);
        T_CHECK(bp.mix_on, "Mixup on for a non-identity permutation");
        s_expect(valid, "out.mix", out, (size_t)N * 24 * 24 * 3);
        free(out);
    }
    fixture_close(&valid);
}

static void test_preshrink_sizes(void)
{
    fixture_t *f = fixture_open("augment/sizes.safetensors");
    if (!f) return;
    const safetensors_tensor_t *t = safetensors_find(fixture_file(f), "in.sizes");
    const safetensors_tensor_t *u = safetensors_find(fixture_file(f), "in.sides");
    NF_CHECK(t && u, "sizes fixture without in.sizes / in.sides");
    int ns = (int)t->numel, nsides = (int)u->numel;
    const int32_t *sz = fixture_i32(f, "in.sizes", (size_t)ns);
    const int32_t *sides = fixture_i32(f, "in.sides", (size_t)nsides);
    if (sz && sides) {
        float *got = nf_xmalloc((size_t)ns * nsides * 2 * sizeof(float));
        int shrunk = 0;
        for (int i = 0; i < ns; i++)
            for (int k = 0; k < nsides; k++) {
                int sh = 0, sw = 0;
                int on = augment_preshrink_size(sides[k], sides[k], sz[i], sz[i], 1.0, &sh, &sw);
                got[((size_t)i * nsides + k) * 2] = on ? (float)sh : 0.0f;
                got[((size_t)i * nsides + k) * 2 + 1] = on ? (float)sw : 0.0f;
                shrunk += on;
            }
        s_expect(f, "out.shrink", got, (size_t)ns * nsides * 2);
        T_CHECK(shrunk > 0, "the table exercises the pre-shrink (%d cases)", shrunk);
        free(got);
    }
    fixture_close(&f);
}

static void test_mixup_loss(void)
{
    fixture_t *f = fixture_open("augment/mixup_loss.safetensors");
    if (!f) return;
    const safetensors_tensor_t *t = safetensors_find(fixture_file(f), "in.labels");
    NF_CHECK(t, "mixup_loss fixture without in.labels");
    int n = (int)t->numel, c = 10;
    const float *logits = fixture_f32(f, "in.logits", (size_t)n * c);
    const int32_t *y = fixture_i32(f, "in.labels", (size_t)n);
    const int32_t *y2 = fixture_i32(f, "in.partner_labels", (size_t)n);
    const float *lam = fixture_f32(f, "in.lambda", (size_t)n);
    if (logits && y && y2 && lam) {
        xent_params_t p = {.n = n, .c = c, .smoothing = 0.0f, .dtype = KDTYPE_F32};
        float loss;
        xent_forward_cpu(&loss, NULL, logits, y, y2, lam, &p);
        s_expect(f, "out.loss_ce", &loss, 1);
        p.smoothing = 0.1f;
        xent_forward_cpu(&loss, NULL, logits, y, y2, lam, &p);
        s_expect(f, "out.loss_ls", &loss, 1);
    }
    fixture_close(&f);
}

int main(void)
{
    fixture_t *aff = fixture_open("augment/affine.safetensors");
    if (aff) {
        test_affine(aff);
        test_crop_and_pipeline(aff);
    }
    fixture_close(&aff);
    test_valid_and_mixup();
    test_preshrink_sizes();
    test_mixup_loss();
    return t_done();
}
