/*
 * test_augment_props.c: properties of the augment transforms that hold
 * whatever fastai's numbers are (synthetic images, no data, no fixtures):
 *   - every random transform off -> a plain bilinear resize (both modes);
 *   - flip twice is the identity; rotate 0, zoom 1, warp 0 is the identity;
 *   - reflection padding as PyTorch defines it;
 *   - same seed -> identical batch; other seed/epoch -> another batch; the
 *     draws of a sample do not depend on its row; validation draws nothing;
 *     TTA passes differ and never mix;
 *   - the CPU result does not depend on the OpenMP thread count;
 *   - draw statistics: flip/affine/lighting coin rates, value ranges, the
 *     crop side range, Beta(alpha, alpha) against its CDF, permutations;
 *   - Mixup: the output is lerp(partner, x, lambda) of the unmixed batch and
 *     the carried labels, partner labels and weights are right;
 *   - bf16 output is the rounded f32 output;
 *   - fused and reference modes agree closely on smooth images;
 *   - the CPU transform (vectorized rows, materialized reference stages)
 *     equals pixel.h's per-pixel function (what the CUDA kernel runs) on
 *     random draws, in both modes;
 *   - malformed raw batches and bad configs are rejected without a crash.
 */
#include "augment.h"
#include "pixel.h"
#include "rng.h"
#include "testlib.h"
#include "transform.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// A smooth but non-trivial test picture: (n, h, w, 3) u8, different per image.
static uint8_t *s_images(int n, int h, int w, uint32_t salt)
{
    uint8_t *px = nf_xmalloc((size_t)n * h * w * 3);
    for (int i = 0; i < n; i++) {
        nf_rng_t r = nf_rng_make(salt, NF_RNG_STREAM_TEST, 0, (uint32_t)i);
        float fx[3], fy[3], ph[3];
        for (int c = 0; c < 3; c++) {
            fx[c] = nf_rng_range(&r, 0.5f, 4.0f);
            fy[c] = nf_rng_range(&r, 0.5f, 4.0f);
            ph[c] = nf_rng_range(&r, 0.0f, 6.28f);
        }
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int c = 0; c < 3; c++) {
                    float v = 0.5f + 0.45f * sinf(fx[c] * 6.2832f * x / w + ph[c]) *
                                         cosf(fy[c] * 6.2832f * y / h + 0.3f * c);
                    px[(((size_t)i * h + y) * w + x) * 3 + c] = (uint8_t)lrintf(v * 255.0f);
                }
    }
    return px;
}

static augment_config_t s_cfg(int presize, int size, int max_batch)
{
    augment_config_t cfg;
    augment_config_defaults(&cfg);
    cfg.presize = presize;
    cfg.size = size;
    cfg.max_batch = max_batch;
    cfg.threads = 2;
    return cfg;
}

static void s_all_off(augment_config_t *cfg)
{
    cfg->do_flip = false;
    cfg->max_rotate = 0.0f;
    cfg->min_zoom = cfg->max_zoom = 1.0f;
    cfg->max_warp = 0.0f;
    cfg->max_lighting = 0.0f;
    cfg->min_scale = 1.0f;
    cfg->normalize = false;
}

typedef struct {
    float *x;  // (n, size, size, 3) f32 (or bf16 bits when the config says so)
    int32_t labels[64], partners[64];
    float weights[64];
    augment_out_t out;
} s_batch_t;

// Runs one batch; indices are base + row unless idx is given.
static int s_run(const augment_config_t *cfg, const uint8_t *px, int n, int h, augment_mode_t mode,
                 uint32_t epoch, uint32_t seq, uint32_t pass, const uint32_t *idx, s_batch_t *b)
{
    augment_t *aug = augment_new(cfg);
    NF_CHECK(aug, "augment_new");
    uint32_t def_idx[64];
    int32_t labels[64];
    for (int i = 0; i < n; i++) {
        def_idx[i] = 1000u + (uint32_t)i;
        labels[i] = i % 10;
    }
    augment_raw_t raw = {.pixels = px, .n = n, .h = h, .w = h, .labels = labels,
                         .indices = idx ? idx : def_idx, .epoch = epoch, .seq = seq,
                         .pass = pass, .mode = mode};
    memset(b, 0, sizeof *b);
    b->x = nf_xmalloc(augment_out_bytes(aug, n));
    b->out.pixels = b->x;
    b->out.labels = b->labels;
    b->out.partner_labels = b->partners;
    b->out.weights = b->weights;
    int rc = augment_batch(aug, &b->out, &raw);
    augment_destroy(&aug);
    return rc;
}

static size_t s_elems(const augment_config_t *cfg, int n)
{
    return (size_t)n * cfg->size * cfg->size * 3;
}

static double s_mirror(double x, int n)
{
    if (x < 0) return -x;
    if (x > n - 1) return 2.0 * (n - 1) - x;
    return x;
}

// Plain align_corners=True bilinear resize, written independently of pixel.h,
// averaged over a k x k grid of sub-pixel positions (k = 1: plain bilinear).
static void s_plain_resize(const uint8_t *src, int h, int w, int S, int k, float *dst)
{
    for (int r = 0; r < S; r++)
        for (int c = 0; c < S; c++)
            for (int ch = 0; ch < 3; ch++) {
                double acc = 0;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) {
                        double y = s_mirror((r + (i + 0.5) / k - 0.5) * (h - 1) / (S - 1), h);
                        double x = s_mirror((c + (j + 0.5) / k - 0.5) * (w - 1) / (S - 1), w);
                        int y0 = (int)floor(y), x0 = (int)floor(x);
                        int y1 = y0 + 1 < h ? y0 + 1 : y0, x1 = x0 + 1 < w ? x0 + 1 : x0;
                        double fy = y - y0, fx = x - x0;
                        acc += (1 - fy) * ((1 - fx) * src[(y0 * w + x0) * 3 + ch] +
                                           fx * src[(y0 * w + x1) * 3 + ch]) +
                               fy * ((1 - fx) * src[(y1 * w + x0) * 3 + ch] +
                                     fx * src[(y1 * w + x1) * 3 + ch]);
                    }
                dst[(r * S + c) * 3 + ch] = (float)(acc / (k * k) / 255.0);
            }
}

static void test_plain_resize(void)
{
    const int n = 3;
    // (presize, size, fused supersampling): down 1.6x (k 2), up, same
    int cases[][3] = {{64, 40, 2}, {32, 48, 1}, {50, 50, 1}};
    for (size_t k = 0; k < NF_ARRAY_LEN(cases); k++) {
        int P = cases[k][0], S = cases[k][1];
        uint8_t *px = s_images(n, P, P, 7);
        size_t per = (size_t)S * S * 3;
        for (int m = 0; m < 2; m++) {
            int ss = m ? cases[k][2] : 1;
            float *want = nf_xmalloc(n * per * sizeof(float));
            for (int i = 0; i < n; i++)
                s_plain_resize(px + (size_t)i * P * P * 3, P, P, S, ss, want + i * per);
            augment_config_t cfg = s_cfg(P, S, n);
            s_all_off(&cfg);
            cfg.resample = m ? AUGMENT_RESAMPLE_FUSED : AUGMENT_RESAMPLE_REFERENCE;
            for (int mode = AUGMENT_MODE_TRAIN; mode <= AUGMENT_MODE_VALID; mode++) {
                s_batch_t b;
                T_CHECK(s_run(&cfg, px, n, P, (augment_mode_t)mode, 1, 2, 0, NULL, &b) == 0, "run");
                char name[96];
                snprintf(name, sizeof name, "all-off %s %s %d->%d (%dx%d)",
                         m ? "fused" : "reference", mode ? "valid" : "train", P, S, ss, ss);
                t_close_f32(name, b.x, want, s_elems(&cfg, n), 2e-5, 0);
                free(b.x);
            }
            free(want);
        }
        free(px);
    }
}

static void test_identities(void)
{
    const int n = 2, P = 37;
    uint8_t *px = s_images(n, P, P, 11);
    augment_config_t cfg = s_cfg(P, P, n);
    cfg.resample = AUGMENT_RESAMPLE_REFERENCE;
    cfg.normalize = false;
    cfg.max_lighting = 0.0f;
    cfg.min_scale = 1.0f;
    augment_raw_t raw = {.pixels = px, .n = n, .h = P, .w = P, .mode = AUGMENT_MODE_TRAIN};
    uint32_t idx[2] = {0, 1};
    raw.indices = idx;
    size_t elems = (size_t)n * P * P * 3;
    float *out = nf_xmalloc(elems * sizeof(float));

    // rotate 0, zoom 1, warp 0 (train mode, so the resample really runs)
    augment_image_params_t img[2];
    for (int i = 0; i < n; i++) augment_params_neutral(&img[i], i);
    augment_batch_params_t bp;
    augment_params_build(&cfg, &raw, NULL, &bp, img);
    T_CHECK(bp.warp_on && !bp.a_identity, "the affine+warp resample runs");
    augment_workspace_shape_t shape = {.max_n = n, .presize = P, .size = P, .threads = 2,
                                       .resample = AUGMENT_RESAMPLE_REFERENCE};
    size_t ws_bytes = augment_transform_workspace_bytes(AUGMENT_BACKEND_CPU, &shape);
    void *ws = nf_xaligned(ws_bytes);
    augment_transform_args_t a = {.batch = bp, .img = img, .src = px, .out = out,
                                  .dtype = AUGMENT_DTYPE_F32, .ws = ws, .ws_bytes = ws_bytes,
                                  .threads = 2};
    augment_transform_cpu(&a);
    float *src_f = nf_xmalloc(elems * sizeof(float));
    for (size_t e = 0; e < elems; e++) src_f[e] = px[e] / 255.0f;
    t_close_f32("rotate 0, zoom 1, warp 0 = identity", out, src_f, elems, 2e-5, 0);

    // flip once = mirror; flip the (u8-rounded) result again = the source
    for (int i = 0; i < n; i++) img[i].flip = -1.0f;
    augment_params_build(&cfg, &raw, NULL, &bp, img);
    a.batch = bp;
    augment_transform_cpu(&a);
    float *mirror = nf_xmalloc(elems * sizeof(float));
    uint8_t *once = nf_xmalloc(elems);
    for (int i = 0; i < n; i++)
        for (int y = 0; y < P; y++)
            for (int x = 0; x < P; x++)
                for (int c = 0; c < 3; c++) {
                    size_t e = (((size_t)i * P + y) * P + x) * 3 + c;
                    mirror[e] = src_f[(((size_t)i * P + y) * P + (P - 1 - x)) * 3 + c];
                    once[e] = (uint8_t)lrintf(out[e] * 255.0f);
                }
    t_close_f32("flip = mirror", out, mirror, elems, 2e-5, 0);
    a.src = once;
    augment_transform_cpu(&a);
    t_close_f32("flip twice = identity", out, src_f, elems, 2e-5, 0);
    free(ws);
    free(once);
    free(mirror);
    free(src_f);
    free(out);
    free(px);
}

static void test_reflect(void)
{
    T_NEAR(augment_px_reflect(2.5f, 5), 2.5f, 0);
    T_NEAR(augment_px_reflect(-1.0f, 5), 1.0f, 1e-6);
    T_NEAR(augment_px_reflect(5.5f, 5), 2.5f, 1e-6);  // span 4: 5.5 -> 4 - 1.5
    T_NEAR(augment_px_reflect(9.0f, 5), 1.0f, 1e-6);  // two flips
    T_NEAR(augment_px_reflect(-4.0f, 5), 4.0f, 1e-6);
    T_NEAR(augment_px_reflect(3.0f, 1), 0.0f, 0);
}

static bool s_same(const float *a, const float *b, size_t n)
{
    return memcmp(a, b, n * sizeof(float)) == 0;
}

static void test_determinism(void)
{
    const int n = 8, P = 48, S = 24;
    uint8_t *px = s_images(n, P, P, 3);
    augment_config_t cfg = s_cfg(P, S, n);
    cfg.mixup_alpha = 0.4f;
    cfg.seed = 42;
    size_t elems = s_elems(&cfg, n);
    s_batch_t a, b, c, d;
    T_CHECK(s_run(&cfg, px, n, P, AUGMENT_MODE_TRAIN, 3, 5, 0, NULL, &a) == 0, "run a");
    T_CHECK(s_run(&cfg, px, n, P, AUGMENT_MODE_TRAIN, 3, 5, 0, NULL, &b) == 0, "run b");
    T_CHECK(s_same(a.x, b.x, elems) && memcmp(a.weights, b.weights, n * sizeof(float)) == 0 &&
                memcmp(a.partners, b.partners, n * sizeof(int32_t)) == 0,
            "same seed, epoch, seq: identical batch and metadata");
    cfg.seed = 43;
    T_CHECK(s_run(&cfg, px, n, P, AUGMENT_MODE_TRAIN, 3, 5, 0, NULL, &c) == 0, "run c");
    T_CHECK(!s_same(a.x, c.x, elems), "another seed: another batch");
    cfg.seed = 42;
    T_CHECK(s_run(&cfg, px, n, P, AUGMENT_MODE_TRAIN, 4, 5, 0, NULL, &d) == 0, "run d");
    T_CHECK(!s_same(a.x, d.x, elems), "another epoch: another batch");
    free(a.x);
    free(b.x);
    free(c.x);
    free(d.x);

    // thread count independence (Mixup on, both modes): whole images per
    // thread (8 images, 3 threads) and rows of one image shared by the
    // threads (2 images, 3 threads) against one thread
    for (int m = 0; m < 2; m++)
        for (int nb = 2; nb <= n; nb += n - 2) {
            cfg.resample = m ? AUGMENT_RESAMPLE_REFERENCE : AUGMENT_RESAMPLE_FUSED;
            s_batch_t t1, t3;
            cfg.threads = 1;
            s_run(&cfg, px, nb, P, AUGMENT_MODE_TRAIN, 1, 1, 0, NULL, &t1);
            cfg.threads = 3;
            s_run(&cfg, px, nb, P, AUGMENT_MODE_TRAIN, 1, 1, 0, NULL, &t3);
            T_CHECK(s_same(t1.x, t3.x, s_elems(&cfg, nb)),
                    "%s, %d images: 1 and 3 OpenMP threads give identical bytes",
                    augment_resample_name(cfg.resample), nb);
            free(t1.x);
            free(t3.x);
        }
    cfg.threads = 2;
    cfg.resample = AUGMENT_RESAMPLE_FUSED;

    // a sample's draws depend on its index, not its row
    augment_raw_t raw = {
        .pixels = px, .n = 4, .h = P, .w = P, .mode = AUGMENT_MODE_TRAIN, .epoch = 2};
    uint32_t i1[4] = {10, 11, 12, 13}, i2[4] = {13, 12, 11, 10};
    augment_image_params_t p1[4], p2[4];
    augment_batch_params_t bp;
    raw.indices = i1;
    augment_params_draw(&cfg, &raw, &bp, p1);
    raw.indices = i2;
    augment_params_draw(&cfg, &raw, &bp, p2);
    for (int i = 0; i < 4; i++)
        T_CHECK(memcmp(p1[i].mat, p2[3 - i].mat, sizeof p1[i].mat) == 0 &&
                    p1[i].bright == p2[3 - i].bright && p1[i].contrast == p2[3 - i].contrast &&
                    p1[i].warp_a == p2[3 - i].warp_a,
                "sample %u: same draws in row %d and row %d", i1[i], i, 3 - i);

    // validation draws nothing: seed and epoch do not matter, no Mixup
    s_batch_t v1, v2;
    s_run(&cfg, px, n, P, AUGMENT_MODE_VALID, 0, 0, 0, NULL, &v1);
    cfg.seed = 7;
    s_run(&cfg, px, n, P, AUGMENT_MODE_VALID, 9, 3, 0, NULL, &v2);
    T_CHECK(s_same(v1.x, v2.x, elems), "validation is deterministic");
    for (int i = 0; i < n; i++)
        T_CHECK(v1.weights[i] == 1.0f && v1.partners[i] == v1.labels[i], "validation: no Mixup");

    // TTA: passes differ from each other and from validation, never mix
    s_batch_t t0, t1;
    s_run(&cfg, px, n, P, AUGMENT_MODE_TTA, 0, 0, 0, NULL, &t0);
    s_run(&cfg, px, n, P, AUGMENT_MODE_TTA, 0, 0, 1, NULL, &t1);
    T_CHECK(!s_same(t0.x, t1.x, elems) && !s_same(t0.x, v1.x, elems), "TTA passes differ");
    for (int i = 0; i < n; i++) T_CHECK(t0.weights[i] == 1.0f, "TTA: no Mixup");
    free(v1.x);
    free(v2.x);
    free(t0.x);
    free(t1.x);
    free(px);
}

// Regularized incomplete beta I_x(a, a) by Simpson integration of the
// density with the substitution t = u^(1/a) near 0 (the density is
// singular there for a < 1): I_x = B^-1 * int_0^x t^(a-1) (1-t)^(a-1) dt.
static double s_beta_cdf(double x, double a)
{
    // int_0^x t^(a-1) (1-t)^(a-1) dt = (1/a) int_0^(x^a) (1 - u^(1/a))^(a-1) du
    int m = 20000;
    double ub = pow(x, a), sum = 0;
    for (int i = 0; i <= m; i++) {
        double u = ub * i / m;
        double t = pow(u, 1.0 / a);
        double f = t >= 1.0 ? 0.0 : pow(1.0 - t, a - 1.0);
        sum += (i == 0 || i == m ? 1 : (i % 2 ? 4 : 2)) * f;
    }
    double part = sum * ub / (3.0 * m) / a;
    double B = exp(2 * lgamma(a) - lgamma(2 * a));
    return part / B;
}

static void test_draw_statistics(void)
{
    augment_config_t cfg = s_cfg(460, 224, 64);
    cfg.seed = 5;
    const int n = 64, batches = 160;  // 10240 images
    uint8_t dummy = 0;
    uint32_t idx[64];
    augment_image_params_t img[64];
    augment_batch_params_t bp;
    int flips = 0, rots = 0, zooms = 0, warps = 0, brights = 0, contrasts = 0, total = 0;
    int side_lo = 1 << 30, side_hi = 0, bad_box = 0, ss_lo = 99, ss_hi = 0;
    for (int b = 0; b < batches; b++) {
        for (int i = 0; i < n; i++) idx[i] = (uint32_t)(b * n + i);
        augment_raw_t raw = {.pixels = &dummy, .n = n, .h = 460, .w = 460, .indices = idx,
                             .epoch = 1, .seq = (uint32_t)b, .mode = AUGMENT_MODE_TRAIN};
        augment_params_draw(&cfg, &raw, &bp, img);
        T_CHECK(bp.crop_w == bp.crop_h, "square crop (ratio 1)");
        if (bp.crop_w < side_lo) side_lo = bp.crop_w;
        if (bp.crop_w > side_hi) side_hi = bp.crop_w;
        if (bp.crop_x0 < 0 || bp.crop_y0 < 0 || bp.crop_x0 + bp.crop_w > 460 ||
            bp.crop_y0 + bp.crop_h > 460)
            bad_box++;
        for (int i = 0; i < n; i++) {
            const augment_image_params_t *p = &img[i];
            total++;
            flips += p->flip < 0;
            rots += p->rotate_deg != 0.0f;
            zooms += p->zoom != 1.0f;
            warps += p->warp_a != 0.0f;
            brights += p->bright != 0.5f;
            contrasts += p->contrast != 1.0f;
            if (fabsf(p->rotate_deg) > 10.0f || p->zoom < 1.0f || p->zoom > 1.1f ||
                fabsf(p->warp_a) > 0.2f || fabsf(p->warp_b) > 0.2f || p->bright < 0.4f ||
                p->bright > 0.6f || p->contrast < 0.8f - 1e-6f || p->contrast > 1.25f + 1e-6f ||
                p->zoom_cx < 0 || p->zoom_cx >= 1)
                T_CHECK(0, "draw out of range: rot %g zoom %g warp %g %g b %g c %g", p->rotate_deg,
                        p->zoom, p->warp_a, p->warp_b, p->bright, p->contrast);
            if (p->ss < ss_lo) ss_lo = p->ss;
            if (p->ss > ss_hi) ss_hi = p->ss;
        }
    }
    double sd = sqrt(0.25 / total) * 5;  // five standard deviations of a rate
    T_NEAR((double)flips / total, 0.5, sd);
    T_NEAR((double)rots / total, 0.75, sd);
    T_NEAR((double)zooms / total, 0.75, sd);
    T_NEAR((double)warps / total, 0.75, sd);
    T_NEAR((double)brights / total, 0.75, sd);
    T_NEAR((double)contrasts / total, 0.75, sd);
    // sqrt(0.75 * 460^2) = 398.4 -> sides 398..460 (round half even)
    T_CHECK(side_lo >= 398 && side_lo <= 402 && side_hi >= 456 && side_hi <= 460,
            "crop sides %d..%d within 398..460", side_lo, side_hi);
    T_CHECK(bad_box == 0, "%d crop boxes leave the image", bad_box);
    T_CHECK(ss_lo == 2 && ss_hi == 2, "fused 460 -> 224 supersamples 2x2 (got %d..%d)", ss_lo,
            ss_hi);

    // Beta(0.4, 0.4) draws against the CDF; lambda = max(l, 1 - l) >= 0.5
    nf_rng_t r = nf_rng_make(9, NF_RNG_STREAM_TEST, 0, 0);
    const int m = 20000;
    double grid[] = {0.05, 0.2, 0.5, 0.8, 0.95};
    int below[5] = {0};
    for (int k = 0; k < m; k++) {
        double l = augment_beta_draw(&r, 0.4);
        T_CHECK(l >= 0.0 && l <= 1.0, "beta draw %g in [0, 1]", l);
        for (int g = 0; g < 5; g++) below[g] += l <= grid[g];
    }
    for (int g = 0; g < 5; g++)
        T_NEAR((double)below[g] / m, s_beta_cdf(grid[g], 0.4), 0.015);

    // Mixup draws: lambda in [0.5, 1], partners form a permutation
    cfg.mixup_alpha = 0.4f;
    for (int i = 0; i < n; i++) idx[i] = (uint32_t)i;
    augment_raw_t raw = {
        .pixels = &dummy, .n = n, .h = 460, .w = 460, .indices = idx, .mode = AUGMENT_MODE_TRAIN};
    augment_params_draw(&cfg, &raw, &bp, img);
    int seen[64] = {0}, moved = 0;
    for (int i = 0; i < n; i++) {
        T_CHECK(img[i].lambda >= 0.5f && img[i].lambda <= 1.0f, "lambda %g", img[i].lambda);
        seen[img[i].partner]++;
        moved += img[i].partner != i;
    }
    for (int i = 0; i < n; i++) T_CHECK(seen[i] == 1, "partner %d used %d times", i, seen[i]);
    T_CHECK(moved > n / 2 && bp.mix_on, "the permutation moves most rows (%d)", moved);
}

static void test_mixup_and_dtype(void)
{
    const int n = 6, P = 40, S = 20;
    uint8_t *px = s_images(n, P, P, 21);
    augment_config_t cfg = s_cfg(P, S, n);
    cfg.seed = 99;
    size_t elems = s_elems(&cfg, n), per = elems / n;
    s_batch_t plain, mixed;
    s_run(&cfg, px, n, P, AUGMENT_MODE_TRAIN, 2, 8, 0, NULL, &plain);
    cfg.mixup_alpha = 0.4f;
    s_run(&cfg, px, n, P, AUGMENT_MODE_TRAIN, 2, 8, 0, NULL, &mixed);
    float *want = nf_xmalloc(elems * sizeof(float));
    for (int j = 0; j < n; j++) {
        int p = mixed.partners[j];  // labels are the row numbers (row % 10, n < 10)
        T_CHECK(plain.weights[j] == 1.0f && plain.partners[j] == plain.labels[j],
                "no Mixup: weight 1, own label");
        T_CHECK(mixed.weights[j] >= 0.5f && mixed.weights[j] <= 1.0f, "weight in [0.5, 1]");
        T_CHECK(mixed.labels[j] == plain.labels[j], "labels untouched");
        for (size_t e = 0; e < per; e++)
            want[j * per + e] =
                augment_px_mix(plain.x[j * per + e], plain.x[p * per + e], mixed.weights[j]);
    }
    t_close_f32("mixup = lerp(partner, x, lambda)", mixed.x, want, elems, 1e-6, 0);
    free(want);

    cfg.dtype = AUGMENT_DTYPE_BF16;
    s_batch_t bf;
    s_run(&cfg, px, n, P, AUGMENT_MODE_TRAIN, 2, 8, 0, NULL, &bf);
    const uint16_t *h = (const uint16_t *)bf.x;
    size_t bad = 0;
    for (size_t e = 0; e < elems; e++) bad += h[e] != augment_px_bf16(mixed.x[e]);
    T_CHECK(bad == 0, "bf16 output is the rounded f32 output (%zu differ)", bad);
    T_CHECK(augment_px_bf16(1.0f) == 0x3f80 && augment_px_bf16(-2.0f) == 0xc000,
            "bf16 of exact values");
    T_CHECK(augment_px_from_bf16(augment_px_bf16(3.14159f)) == 3.140625f, "bf16 rounds to nearest");
    free(bf.x);
    free(plain.x);
    free(mixed.x);
    free(px);
}

static void test_modes_agree(void)
{
    const int n = 4, P = 96, S = 48;
    uint8_t *px = s_images(n, P, P, 33);
    augment_config_t cfg = s_cfg(P, S, n);
    cfg.normalize = false;
    s_batch_t f, r;
    cfg.resample = AUGMENT_RESAMPLE_FUSED;
    s_run(&cfg, px, n, P, AUGMENT_MODE_TRAIN, 1, 1, 0, NULL, &f);
    cfg.resample = AUGMENT_RESAMPLE_REFERENCE;
    s_run(&cfg, px, n, P, AUGMENT_MODE_TRAIN, 1, 1, 0, NULL, &r);
    size_t elems = s_elems(&cfg, n);
    double sum = 0, mx = 0;
    for (size_t e = 0; e < elems; e++) {
        double d = fabs((double)f.x[e] - r.x[e]);
        sum += d;
        if (d > mx) mx = d;
    }
    T_CHECK(sum / elems < 0.01 && mx < 0.1,
            "fused and reference agree on smooth images (mean %.4f max %.4f)", sum / elems, mx);
    free(f.x);
    free(r.x);
    free(px);
}

// The CPU transform (vectorized rows, materialized reference stages) against
// pixel.h's per-pixel function, which is what the CUDA kernel runs, on random
// draws: both modes, zoom-out and strong warps whose coordinates leave the
// image (reflection), upsampling, the pre-shrinks, validation and TTA.
static void test_cpu_matches_pixel_h(void)
{
    const int n = 6, P = 72;
    uint8_t *px = s_images(n, P, P, 41);
    struct {
        int size;
        float min_scale, min_zoom, max_warp;
        augment_mode_t mode;
    } cases[] = {{32, 0.75f, 1.0f, 0.2f, AUGMENT_MODE_TRAIN},  // the recipe; reference pre-shrinks
                 {40, 0.75f, 0.6f, 0.5f, AUGMENT_MODE_TRAIN},  // zoom out, strong warp
                 {96, 1.0f, 0.8f, 0.3f, AUGMENT_MODE_TRAIN},   // upsampling, no crop stage
                 {20, 1.0f, 1.0f, 0.2f, AUGMENT_MODE_TRAIN},   // no crop stage, source pre-shrink
                 {20, 0.5f, 1.0f, 0.2f, AUGMENT_MODE_TTA},     // 3x3..4x4 supersampling
                 {32, 0.75f, 1.0f, 0.2f, AUGMENT_MODE_VALID}};
    for (int m = 0; m < 2; m++)
        for (size_t k = 0; k < NF_ARRAY_LEN(cases); k++) {
            augment_config_t cfg = s_cfg(P, cases[k].size, n);
            cfg.resample = m ? AUGMENT_RESAMPLE_REFERENCE : AUGMENT_RESAMPLE_FUSED;
            cfg.min_scale = cases[k].min_scale;
            cfg.min_zoom = cases[k].min_zoom;
            cfg.max_warp = cases[k].max_warp;
            cfg.seed = 3 + (uint64_t)k;
            s_batch_t b;
            T_CHECK(s_run(&cfg, px, n, P, cases[k].mode, 1, 4, 1, NULL, &b) == 0, "run");
            // the same draws, evaluated per pixel by pixel.h
            augment_raw_t raw = {.pixels = px, .n = n, .h = P, .w = P, .epoch = 1, .seq = 4,
                                 .pass = 1, .mode = cases[k].mode};
            uint32_t idx[64];
            for (int i = 0; i < n; i++) idx[i] = 1000u + (uint32_t)i;
            raw.indices = idx;
            augment_batch_params_t bp;
            augment_image_params_t img[64];
            augment_params_draw(&cfg, &raw, &bp, img);
            size_t per = (size_t)cfg.size * cfg.size * 3;
            float *want = nf_xmalloc(n * per * sizeof(float));
            int ss_max = 0;
            for (int j = 0; j < n; j++) {
                if (img[j].ss > ss_max) ss_max = img[j].ss;
                for (int r = 0; r < cfg.size; r++)
                    for (int c = 0; c < cfg.size; c++)
                        augment_px_value(&bp, &img[j], px + (size_t)j * P * P * 3, r, c,
                                         want + j * per + ((size_t)r * cfg.size + c) * 3);
            }
            char name[128];
            snprintf(name, sizeof name,
                     "cpu vs pixel.h: %s case %zu (%dx%d samples, pre-shrink %d/%d)",
                     m ? "reference" : "fused", k, ss_max, ss_max, bp.crop_shrink, bp.src_shrink);
            t_close_f32(name, b.x, want, n * per, 1e-4, 0);  // float rounding (FMA) of the maps
            free(want);
            free(b.x);
        }
    free(px);
}

static void test_rejects(void)
{
    augment_config_t cfg = s_cfg(32, 16, 4);
    augment_t *aug = augment_new(&cfg);
    uint8_t *px = s_images(4, 32, 32, 1);
    uint32_t idx[4] = {0, 1, 2, 3};
    float out[4 * 16 * 16 * 3];
    augment_out_t o = {.pixels = out};
    augment_raw_t good = {
        .pixels = px, .n = 4, .h = 32, .w = 32, .indices = idx, .mode = AUGMENT_MODE_TRAIN};
    T_CHECK(augment_batch(aug, &o, &good) == 0, "a good batch");
    augment_raw_t bad[6];
    for (int i = 0; i < 6; i++) bad[i] = good;
    bad[0].n = 0;
    bad[1].n = 5;
    bad[2].h = 33;
    bad[3].pixels = NULL;
    bad[4].mode = (augment_mode_t)7;
    bad[5].indices = NULL;
    for (int i = 0; i < 6; i++)
        T_CHECK(augment_batch(aug, &o, &bad[i]) == -1, "bad batch %d rejected", i);
    T_CHECK(augment_bad_batches(aug) == 6, "bad batches counted");
    bad[5].mode = AUGMENT_MODE_VALID;  // validation needs no indices
    T_CHECK(augment_batch(aug, &o, &bad[5]) == 0, "validation without indices");
    augment_destroy(&aug);
    T_CHECK(aug == NULL, "destroy nulls");
    augment_destroy(&aug);

    augment_config_t c = cfg;
    c.min_scale = 0.0f;
    T_CHECK(augment_new(&c) == NULL, "min_scale 0 rejected");
    c = cfg;
    c.std[1] = 0.0f;
    T_CHECK(augment_new(&c) == NULL, "std 0 rejected");
    c = cfg;
    c.max_zoom = 0.5f;
    T_CHECK(augment_new(&c) == NULL, "max_zoom < min_zoom rejected");
    c = cfg;
    c.p_affine = 1.5f;
    T_CHECK(augment_new(&c) == NULL, "probability > 1 rejected");
    c = cfg;
    c.size = 1;
    T_CHECK(augment_new(&c) == NULL, "size 1 rejected");

    // the crop fallback: a box that cannot fit keeps the clamped centred box
    augment_config_t rc = cfg;
    rc.ratio_lo = 2.0f;
    rc.ratio_hi = 3.0f;
    int x0, y0, w, h;
    augment_crop_box(&rc, 40, 30, NULL, &x0, &y0, &w, &h);
    T_CHECK(w == 30 && h == 15 && x0 == 0 && y0 == 12, "clamped centred box %d,%d %dx%d", x0, y0, w,
            h);
    free(px);
}

int main(void)
{
    test_reflect();
    test_plain_resize();
    test_identities();
    test_determinism();
    test_draw_statistics();
    test_mixup_and_dtype();
    test_modes_agree();
    test_cpu_matches_pixel_h();
    test_rejects();
    return t_done();
}
