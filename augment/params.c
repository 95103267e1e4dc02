/*
 * params.c: see params.h. Config defaults and checks, raw-batch checks, and
 * the host-side draw of every random parameter of a batch, following
 * fastai-spec.md 3.3-3.5 and 8.1 (and fastai 2.7/2.8 vision/augment.py).
 *
 * Nothing here touches pixels.
 */
#include "params.h"

#include "check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

void augment_config_defaults(augment_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->do_flip = true;
    cfg->max_rotate = 10.0f;
    cfg->min_zoom = 1.0f;
    cfg->max_zoom = 1.1f;
    cfg->max_lighting = 0.2f;
    cfg->max_warp = 0.2f;
    cfg->p_affine = 0.75f;
    cfg->p_lighting = 0.75f;
    cfg->min_scale = 0.75f;
    cfg->max_scale = 1.0f;
    cfg->ratio_lo = 1.0f;
    cfg->ratio_hi = 1.0f;
    cfg->size = 224;
    cfg->presize = 460;
    cfg->max_batch = 64;
    cfg->resample = AUGMENT_RESAMPLE_FUSED;
    cfg->normalize = true;
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    memcpy(cfg->mean, mean, sizeof mean);
    memcpy(cfg->std, std, sizeof std);
    cfg->mixup_alpha = 0.0f;
    cfg->dtype = AUGMENT_DTYPE_F32;
    cfg->seed = 0;
    cfg->backend = AUGMENT_BACKEND_CPU;
    cfg->threads = 0;
    cfg->device = 0;
}

static bool s_prob(float p) { return p >= 0.0f && p <= 1.0f; }

int augment_config_check(const augment_config_t *cfg, char *err, size_t errlen)
{
#define S_BAD(...)                                                                            \
    do {                                                                                      \
        snprintf(err, errlen, __VA_ARGS__);                                                   \
        return -1;                                                                            \
    } while (0)
    if (cfg->size < 2 || cfg->size > 4096) S_BAD("size %d out of range [2, 4096]", cfg->size);
    if (cfg->presize < 2 || cfg->presize > 8192)
        S_BAD("presize %d out of range [2, 8192]", cfg->presize);
    if (cfg->max_batch < 1 || cfg->max_batch > 4096)
        S_BAD("max_batch %d out of range [1, 4096]", cfg->max_batch);
    if (!(cfg->max_rotate >= 0.0f && cfg->max_rotate <= 180.0f))
        S_BAD("max_rotate %g out of range [0, 180]", cfg->max_rotate);
    if (!(cfg->min_zoom > 0.0f && cfg->min_zoom <= cfg->max_zoom && cfg->max_zoom <= 100.0f))
        S_BAD("zoom range [%g, %g] invalid (need 0 < min_zoom <= max_zoom)", cfg->min_zoom,
              cfg->max_zoom);
    if (!(cfg->max_lighting >= 0.0f && cfg->max_lighting < 1.0f))
        S_BAD("max_lighting %g out of range [0, 1)", cfg->max_lighting);
    if (!(cfg->max_warp >= 0.0f && cfg->max_warp <= 0.5f))
        S_BAD("max_warp %g out of range [0, 0.5]", cfg->max_warp);
    if (!s_prob(cfg->p_affine) || !s_prob(cfg->p_lighting))
        S_BAD("probabilities must be in [0, 1] (p_affine %g, p_lighting %g)", cfg->p_affine,
              cfg->p_lighting);
    if (!(cfg->min_scale > 0.0f && cfg->min_scale <= cfg->max_scale && cfg->max_scale <= 1.0f))
        S_BAD("crop scale range [%g, %g] invalid (need 0 < min_scale <= max_scale <= 1)",
              cfg->min_scale, cfg->max_scale);
    if (!(cfg->ratio_lo > 0.0f && cfg->ratio_lo <= cfg->ratio_hi && cfg->ratio_hi < 100.0f))
        S_BAD("crop ratio range [%g, %g] invalid", cfg->ratio_lo, cfg->ratio_hi);
    if (cfg->resample != AUGMENT_RESAMPLE_FUSED && cfg->resample != AUGMENT_RESAMPLE_REFERENCE)
        S_BAD("unknown resample mode %d", (int)cfg->resample);
    for (int c = 0; c < 3; c++)
        if (!(cfg->std[c] > 0.0f) || !isfinite(cfg->mean[c]) || !isfinite(cfg->std[c]))
            S_BAD("normalize stats invalid (channel %d: mean %g std %g)", c, cfg->mean[c],
                  cfg->std[c]);
    if (!(cfg->mixup_alpha >= 0.0f && cfg->mixup_alpha <= 1000.0f))
        S_BAD("mixup_alpha %g out of range [0, 1000]", cfg->mixup_alpha);
    if (cfg->dtype != AUGMENT_DTYPE_F32 && cfg->dtype != AUGMENT_DTYPE_BF16)
        S_BAD("unknown dtype %d", (int)cfg->dtype);
    if (cfg->backend != AUGMENT_BACKEND_CPU && cfg->backend != AUGMENT_BACKEND_CUDA)
        S_BAD("unknown backend %d", (int)cfg->backend);
    if (cfg->threads < 0 || cfg->threads > 1024) S_BAD("threads %d out of range", cfg->threads);
    if (cfg->device < 0) S_BAD("device %d invalid", cfg->device);
#undef S_BAD
    return 0;
}

int augment_raw_check(const augment_config_t *cfg, const augment_raw_t *raw, char *err,
                      size_t errlen)
{
    if (!raw->pixels) {
        snprintf(err, errlen, "raw batch without pixels");
        return -1;
    }
    if (raw->n < 1 || raw->n > cfg->max_batch) {
        snprintf(err, errlen, "batch of %d images (accepted: 1..%d)", raw->n, cfg->max_batch);
        return -1;
    }
    if (raw->h < 2 || raw->w < 2 || raw->h > cfg->presize || raw->w > cfg->presize) {
        snprintf(err, errlen, "images of %dx%d (accepted: 2..%d per side)", raw->w, raw->h,
                 cfg->presize);
        return -1;
    }
    if (raw->mode != AUGMENT_MODE_TRAIN && raw->mode != AUGMENT_MODE_VALID &&
        raw->mode != AUGMENT_MODE_TTA) {
        snprintf(err, errlen, "unknown mode %d", (int)raw->mode);
        return -1;
    }
    if (raw->mode != AUGMENT_MODE_VALID && !raw->indices) {
        snprintf(err, errlen, "random modes need sample indices");
        return -1;
    }
    return 0;
}

// ---------------------------------------------------------------------------
// deterministic pieces

void augment_affine_matrix(float flip, float rotate_deg, float zoom, float zoom_cx, float zoom_cy,
                           int in_h, int in_w, float mat[6])
{
    // float32 throughout, in fastai's order: F @ R @ Z, then the aspect fix.
    float th = rotate_deg * (float)(M_PI / 180.0);
    float co = cosf(th), si = sinf(th);
    float s = 1.0f / zoom;
    float tx = (1.0f - s) * (2.0f * zoom_cx - 1.0f);
    float ty = (1.0f - s) * (2.0f * zoom_cy - 1.0f);
    // F @ R = [[f co, f si, 0], [-si, co, 0], [0, 0, 1]]
    // times Z = [[s, 0, tx], [0, s, ty], [0, 0, 1]]
    float fc = flip * co, fs = flip * si;
    mat[0] = fc * s;
    mat[1] = fs * s;
    mat[2] = fc * tx + fs * ty;
    mat[3] = -si * s;
    mat[4] = co * s;
    mat[5] = -si * tx + co * ty;
    mat[1] *= (float)((double)in_h / (double)in_w);
    mat[3] *= (float)((double)in_w / (double)in_h);
}

void augment_warp_coeffs(float warp_a, float warp_b, float coeffs[8])
{
    // Reference corners p1 and moved corners p2, (x, y), in fastai's order.
    const double a = warp_a, b = warp_b;
    const double p1[4][2] = {{-1, -1}, {-1, 1}, {1, -1}, {1, 1}};
    const double p2[4][2] = {{-1 - b, -1 - a}, {-1 + b, 1 + a}, {1 + b, -1 + a}, {1 - b, 1 - a}};
    // find_coeffs: rows [x2, y2, 1, 0, 0, 0, -x1 x2, -x1 y2 | x1] and
    //                   [0, 0, 0, x2, y2, 1, -y1 x2, -y1 y2 | y1]
    double m[8][9];
    for (int i = 0; i < 4; i++) {
        double x1 = p1[i][0], y1 = p1[i][1], x2 = p2[i][0], y2 = p2[i][1];
        double r0[9] = {x2, y2, 1, 0, 0, 0, -x1 * x2, -x1 * y2, x1};
        double r1[9] = {0, 0, 0, x2, y2, 1, -y1 * x2, -y1 * y2, y1};
        memcpy(m[2 * i], r0, sizeof r0);
        memcpy(m[2 * i + 1], r1, sizeof r1);
    }
    // Gaussian elimination with partial pivoting.
    for (int col = 0; col < 8; col++) {
        int piv = col;
        for (int r = col + 1; r < 8; r++)
            if (fabs(m[r][col]) > fabs(m[piv][col])) piv = r;
        NF_CHECK(fabs(m[piv][col]) > 1e-12, "singular warp system (a=%g b=%g)", a, b);
        if (piv != col)
            for (int k = 0; k < 9; k++) {
                double t = m[col][k];
                m[col][k] = m[piv][k];
                m[piv][k] = t;
            }
        for (int r = 0; r < 8; r++) {
            if (r == col) continue;
            double f = m[r][col] / m[col][col];
            for (int k = col; k < 9; k++) m[r][k] -= f * m[col][k];
        }
    }
    for (int i = 0; i < 8; i++) coeffs[i] = (float)(m[i][8] / m[i][i]);
}

int augment_preshrink_size(int in_h, int in_w, int out_h, int out_w, double z, int *sh, int *sw)
{
    // fastai's _grid_sample: d = min(x.shape[-2] / coords.shape[-2],
    // x.shape[-1] / coords.shape[-1]) / 2 with coords of shape (N, H, W, 2),
    // i.e. min(in_h / out_w, in_w / 2) / 2 (the same as in_h / out_h / 2 for
    // the square grids it builds). Then interpolate(scale_factor=1/d, 'area',
    // recompute_scale_factor=True): sizes int(side * (1/d)) in double.
    (void)out_h;
    double d = fmin((double)in_h / (double)out_w, (double)in_w / 2.0) / 2.0;
    if (!(d > 1.0 && d > z)) return 0;
    double scale = 1.0 / d;
    *sh = (int)((double)in_h * scale);
    *sw = (int)((double)in_w * scale);
    return 1;
}

void augment_crop_box(const augment_config_t *cfg, int h, int w, nf_rng_t *rng, int *x0, int *y0,
                      int *cw, int *ch)
{
    double lr0 = log((double)cfg->ratio_lo), lr1 = log((double)cfg->ratio_hi);
    if (rng) {
        for (int attempt = 0; attempt < 10; attempt++) {
            double u = nf_rng_uniform_f64(rng);
            double area = ((double)cfg->min_scale + ((double)cfg->max_scale - cfg->min_scale) * u) *
                          (double)w * (double)h;
            double ratio = exp(lr0 + (lr1 - lr0) * nf_rng_uniform_f64(rng));
            // Python's round() is round-half-even: nearbyint in the default mode
            int nw = (int)nearbyint(sqrt(area * ratio));
            int nh = (int)nearbyint(sqrt(area / ratio));
            if (nw >= 1 && nh >= 1 && nw <= w && nh <= h) {
                *y0 = (int)nf_rng_below(rng, (uint32_t)(h - nh + 1));
                *x0 = (int)nf_rng_below(rng, (uint32_t)(w - nw + 1));
                *cw = nw;
                *ch = nh;
                return;
            }
        }
    }
    // validation, or no attempt fitted: the centred box with its aspect clamped
    double r = (double)w / (double)h;
    int nh = h, nw = w;
    if (r < (double)cfg->ratio_lo)
        nh = (int)((double)w / (double)cfg->ratio_lo);
    else if (r > (double)cfg->ratio_hi)
        nw = (int)((double)h * (double)cfg->ratio_hi);
    *cw = nw;
    *ch = nh;
    *y0 = (h - nh) / 2;
    *x0 = (w - nw) / 2;
}

int augment_supersample_factor(double scale)
{
    int k = (int)ceil(scale - 0.25);
    return k < 1 ? 1 : k > 4 ? 4 : k;
}

// Standard normal by Box-Muller from two uniforms.
static double s_normal(nf_rng_t *rng)
{
    double u1 = 1.0 - nf_rng_uniform_f64(rng);  // (0, 1]
    double u2 = nf_rng_uniform_f64(rng);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

// log of one Gamma(a, 1) draw: Marsaglia and Tsang (2000), with the
// U^(1/a) boost for a < 1 done in log space so tiny draws cannot underflow.
static double s_log_gamma_draw(nf_rng_t *rng, double a)
{
    double boost = 0.0;
    if (a < 1.0) {
        boost = log(1.0 - nf_rng_uniform_f64(rng)) / a;
        a += 1.0;
    }
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x, v;
        do {
            x = s_normal(rng);
            v = 1.0 + c * x;
        } while (v <= 0.0);
        v = v * v * v;
        double u = 1.0 - nf_rng_uniform_f64(rng);
        if (u < 1.0 - 0.0331 * x * x * x * x || log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
            return log(d * v) + boost;
    }
}

double augment_beta_draw(nf_rng_t *rng, double alpha)
{
    double lx = s_log_gamma_draw(rng, alpha), ly = s_log_gamma_draw(rng, alpha);
    return 1.0 / (1.0 + exp(ly - lx));  // X / (X + Y)
}

// ---------------------------------------------------------------------------
// the draw

// One image's random draws, always consuming the same words whatever the
// config (so turning one transform off leaves the others' draws unchanged).
// Each value is drawn, then kept with its probability or set neutral
// (fastai's _draw_mask rule).
static void s_draw_image(const augment_config_t *cfg, nf_rng_t *r, augment_image_params_t *p)
{
    int flip = nf_rng_bernoulli(r, 0.5f);
    float wa = nf_rng_range(r, -cfg->max_warp, cfg->max_warp);
    int wa_keep = nf_rng_bernoulli(r, cfg->p_affine);
    float wb = nf_rng_range(r, -cfg->max_warp, cfg->max_warp);
    int wb_keep = nf_rng_bernoulli(r, cfg->p_affine);
    float rot = nf_rng_range(r, -cfg->max_rotate, cfg->max_rotate);
    int rot_keep = nf_rng_bernoulli(r, cfg->p_affine);
    float zoom = nf_rng_range(r, cfg->min_zoom, cfg->max_zoom);
    int zoom_keep = nf_rng_bernoulli(r, cfg->p_affine);
    float cx = nf_rng_uniform(r), cy = nf_rng_uniform(r);
    float L = cfg->max_lighting;
    float b = nf_rng_range(r, 0.5f * (1.0f - L), 0.5f * (1.0f + L));
    int b_keep = nf_rng_bernoulli(r, cfg->p_lighting);
    float lc = logf(1.0f - L);
    float c = expf(nf_rng_range(r, lc, -lc));
    int c_keep = nf_rng_bernoulli(r, cfg->p_lighting);

    bool zoom_on = cfg->min_zoom < 1.0f || cfg->max_zoom > 1.0f;
    p->flip = cfg->do_flip && flip ? -1.0f : 1.0f;
    p->warp_a = cfg->max_warp != 0.0f && wa_keep ? wa : 0.0f;
    p->warp_b = cfg->max_warp != 0.0f && wb_keep ? wb : 0.0f;
    p->rotate_deg = cfg->max_rotate != 0.0f && rot_keep ? rot : 0.0f;
    p->zoom = zoom_on && zoom_keep ? zoom : 1.0f;
    p->zoom_cx = cx;
    p->zoom_cy = cy;
    p->bright = L != 0.0f && b_keep ? b : 0.5f;
    p->contrast = L != 0.0f && c_keep ? c : 1.0f;
}

// The image of the A grid's corner (sx, sy) in {-1, 1}^2 under mat (and the
// warp when on), and the warp denominator there.
static void s_corner(const augment_image_params_t *p, int warp, float sx, float sy, float *u,
                     float *v, float *den)
{
    const float *m = p->mat, *c = p->warp;
    float a = m[0] * sx + m[1] * sy + m[2], b = m[3] * sx + m[4] * sy + m[5];
    *den = c[6] * a + c[7] * b + 1.0f;
    if (warp) {
        *u = (c[0] * a + c[1] * b + c[2]) / *den;
        *v = (c[3] * a + c[4] * b + c[5]) / *den;
    } else {
        *u = a;
        *v = b;
    }
}

void augment_params_build(const augment_config_t *cfg, const augment_raw_t *raw,
                          const augment_crop_t *crop, augment_batch_params_t *bp,
                          augment_image_params_t *img)
{
    const int n = raw->n;
    const bool random = raw->mode != AUGMENT_MODE_VALID;
    const bool fused = cfg->resample == AUGMENT_RESAMPLE_FUSED;
    const bool crop_stage = cfg->min_scale != 1.0f;  // aug_transforms adds RandomResizedCropGPU

    memset(bp, 0, sizeof *bp);
    bp->n = n;
    bp->resample = cfg->resample;
    bp->src_h = raw->h;
    bp->src_w = raw->w;
    bp->out_h = bp->out_w = cfg->size;
    bp->a_h = crop_stage ? raw->h : cfg->size;
    bp->a_w = crop_stage ? raw->w : cfg->size;
    bp->s_h = raw->h;
    bp->s_w = raw->w;

    // per image: affine matrix, warp coefficients, brightness odds
    for (int i = 0; i < n; i++) {
        augment_image_params_t *p = &img[i];
        augment_affine_matrix(p->flip, p->rotate_deg, p->zoom, p->zoom_cx, p->zoom_cy, raw->h,
                              raw->w, p->mat);
        if (p->warp_a != 0.0f || p->warp_b != 0.0f) {
            augment_warp_coeffs(p->warp_a, p->warp_b, p->warp);
        } else {
            const float id[8] = {1, 0, 0, 0, 1, 0, 0, 0};
            memcpy(p->warp, id, sizeof id);
        }
        float b = fminf(fmaxf(p->bright, 1e-7f), 1.0f - 1e-7f);
        p->bright_odds = b / (1.0f - b);
        p->ss = 1;
        NF_CHECK(p->partner >= 0 && p->partner < n, "Mixup partner %d of row %d", p->partner, i);
        if (p->partner != i) bp->mix_on = 1;
    }

    // fastai skips the warp for the whole batch when a denominator is exactly 0
    // somewhere on the grid; the denominator is affine in the corner images, so
    // checking the corners for <= 0 is the practical equivalent.
    bp->warp_on = random && cfg->max_warp != 0.0f;
    for (int i = 0; i < n && bp->warp_on; i++)
        for (int k = 0; k < 4; k++) {
            float u, v, den;
            s_corner(&img[i], 0, k & 1 ? 1.0f : -1.0f, k & 2 ? 1.0f : -1.0f, &u, &v, &den);
            if (!(den > 0.0f)) bp->warp_on = 0;
        }

    if (crop_stage) {
        NF_CHECK(crop->w >= 1 && crop->h >= 1 && crop->x0 >= 0 && crop->y0 >= 0 &&
                     crop->x0 + crop->w <= bp->a_w && crop->y0 + crop->h <= bp->a_h,
                 "crop box %d,%d %dx%d outside %dx%d", crop->x0, crop->y0, crop->w, crop->h,
                 bp->a_w, bp->a_h);
        bp->crop_on = 1;
        bp->a_identity = !random;
        bp->crop_x0 = crop->x0;
        bp->crop_y0 = crop->y0;
        bp->crop_w = crop->w;
        bp->crop_h = crop->h;
        bp->cs_h = bp->crop_h;
        bp->cs_w = bp->crop_w;
        // the identity grid of the crop resize spans [-1, 1]: z = 1
        if (!fused)
            bp->crop_shrink = augment_preshrink_size(bp->crop_h, bp->crop_w, bp->out_h, bp->out_w,
                                                     1.0, &bp->cs_h, &bp->cs_w);
    } else {
        bp->crop_w = bp->a_w;
        bp->crop_h = bp->a_h;
        if (!fused) {
            // z over the whole batch's sampling grid: its extremes are corner images
            float mn = INFINITY, mx = -INFINITY;
            for (int i = 0; i < n; i++)
                for (int k = 0; k < 4; k++) {
                    float u, v, den;
                    s_corner(&img[i], bp->warp_on, k & 1 ? 1.0f : -1.0f, k & 2 ? 1.0f : -1.0f, &u,
                             &v, &den);
                    mn = fminf(mn, fminf(u, v));
                    mx = fmaxf(mx, fmaxf(u, v));
                }
            double z = 1.0 / (double)(mx - mn) * 2.0;
            bp->src_shrink = augment_preshrink_size(raw->h, raw->w, bp->out_h, bp->out_w, z,
                                                    &bp->s_h, &bp->s_w);
        }
    }

    // fused: supersample by the local scale (source pixels per output pixel)
    if (fused) {
        double sx = (double)(bp->crop_w - 1) / (double)(bp->out_w - 1) * (double)(raw->w - 1) /
                    (double)(bp->a_w - 1);
        double sy = (double)(bp->crop_h - 1) / (double)(bp->out_h - 1) * (double)(raw->h - 1) /
                    (double)(bp->a_h - 1);
        for (int i = 0; i < n; i++)
            img[i].ss = augment_supersample_factor(fmax(sx, sy) / (double)img[i].zoom);
    }

    bp->a_step_x = 2.0f / (float)(bp->a_w - 1);
    bp->a_step_y = 2.0f / (float)(bp->a_h - 1);
    bp->s_half_w = 0.5f * (float)(bp->s_w - 1);
    bp->s_half_h = 0.5f * (float)(bp->s_h - 1);
    bp->o_step_x = 2.0f / (float)(bp->out_w - 1);
    bp->o_step_y = 2.0f / (float)(bp->out_h - 1);
    bp->cs_half_w = 0.5f * (float)(bp->cs_w - 1);
    bp->cs_half_h = 0.5f * (float)(bp->cs_h - 1);
    bp->f_scale_x = bp->f_scale_y = 1.0f;
    if (bp->crop_on) {
        bp->f_scale_x = (float)(bp->crop_w - 1) / (float)(bp->out_w - 1);
        bp->f_scale_y = (float)(bp->crop_h - 1) / (float)(bp->out_h - 1);
        bp->f_off_x = (float)bp->crop_x0;
        bp->f_off_y = (float)bp->crop_y0;
    }

    bp->light_on = random && cfg->max_lighting != 0.0f;
    bp->norm_on = cfg->normalize;
    for (int c = 0; c < 3; c++) {
        bp->mean[c] = cfg->normalize ? cfg->mean[c] : 0.0f;
        bp->inv_std[c] = cfg->normalize ? 1.0f / cfg->std[c] : 1.0f;
    }
}

void augment_params_neutral(augment_image_params_t *p, int row)
{
    memset(p, 0, sizeof *p);
    p->flip = 1.0f;
    p->zoom = 1.0f;
    p->zoom_cx = p->zoom_cy = 0.5f;
    p->bright = 0.5f;
    p->contrast = 1.0f;
    p->lambda = 1.0f;
    p->partner = row;
}

void augment_params_draw(const augment_config_t *cfg, const augment_raw_t *raw,
                         augment_batch_params_t *bp, augment_image_params_t *img)
{
    const int n = raw->n;
    const bool tta = raw->mode == AUGMENT_MODE_TTA;
    const bool random = raw->mode != AUGMENT_MODE_VALID;

    for (int i = 0; i < n; i++) {
        augment_params_neutral(&img[i], i);
        if (!random) continue;
        nf_rng_t r =
            tta ? nf_rng_make(cfg->seed, NF_RNG_STREAM_TTA, 2 * raw->pass, raw->indices[i])
                : nf_rng_make(cfg->seed, NF_RNG_STREAM_AUGMENT, raw->epoch, raw->indices[i]);
        s_draw_image(cfg, &r, &img[i]);
    }

    // RandomResizedCropGPU: one box per batch (the centred full box on valid)
    augment_crop_t crop = {0, 0, raw->w, raw->h};
    if (cfg->min_scale != 1.0f) {
        nf_rng_t r = tta ? nf_rng_make(cfg->seed, NF_RNG_STREAM_TTA, 2 * raw->pass + 1, raw->seq)
                         : nf_rng_make(cfg->seed, NF_RNG_STREAM_CROP, raw->epoch, raw->seq);
        augment_crop_box(cfg, raw->h, raw->w, random ? &r : NULL, &crop.x0, &crop.y0, &crop.w,
                         &crop.h);
    }

    // Mixup: per-sample lambda ~ Beta(alpha, alpha), max(l, 1 - l); partner
    // from a uniform permutation (fixed points allowed, as torch.randperm)
    if (raw->mode == AUGMENT_MODE_TRAIN && cfg->mixup_alpha > 0.0f) {
        nf_rng_t r = nf_rng_make(cfg->seed, NF_RNG_STREAM_MIXUP, raw->epoch, raw->seq);
        for (int i = 0; i < n; i++) {
            float l = (float)augment_beta_draw(&r, cfg->mixup_alpha);
            img[i].lambda = fmaxf(l, 1.0f - l);
        }
        for (int i = n - 1; i > 0; i--) {
            int j = (int)nf_rng_below(&r, (uint32_t)(i + 1));
            int32_t t = img[i].partner;
            img[i].partner = img[j].partner;
            img[j].partner = t;
        }
    }
    augment_params_build(cfg, raw, &crop, bp, img);
}
