/*
 * pixel.h: the per-pixel math of the batch transform: the specification of
 * what one output pixel is. The CUDA kernel (transform.cu) evaluates it
 * verbatim; the CPU transform (transform.c) computes the same function
 * reorganised into vectorized row loops and is tested against it; a few
 * helpers (reflection, taps, area windows, Mixup, bf16) are shared directly.
 * The functions are inline and compile as __host__ __device__ under nvcc, as
 * common/rng.h does.
 *
 * Given an output pixel (r, c) of image j it computes, without intermediate
 * images, what fastai's batch pipeline computes there:
 *   reference mode: stage A (affine + perspective, bilinear, reflection
 *     padding, align_corners=True) evaluated at the integer A-grid pixels that
 *     stage B needs; stage B = the batch's crop, optionally area-pre-shrunk
 *     (adaptive average pooling windows), bilinearly resized with an identity
 *     grid. Without a crop stage (min_scale == 1), stage A samples the
 *     source, or its area pre-shrink, directly at the output grid.
 *   fused mode: the output point mapped through crop, affine and warp to the
 *     source in one step and sampled bilinearly, averaged over a k x k
 *     supersampling pattern when shrinking (k = augment_image_params_t.ss).
 * then /255, lighting in logit space, Normalize. Mixup and the store are the
 * callers' (they need two images).
 *
 * Values are carried in 0..255 units through the geometry (bilinear and area
 * filters are linear, so scaling at the end is the same function).
 */
#ifndef NF_AUGMENT_PIXEL_H
#define NF_AUGMENT_PIXEL_H

#include "params.h"
#include "rng.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

// Every helper is inlined into the per-pixel loop (CPU) or kernel (CUDA).
#ifdef __CUDACC__
#define AUGMENT_PX __host__ __device__ __forceinline__
#else
#define AUGMENT_PX static inline __attribute__((always_inline))
#endif

// Reflection padding then clipping, for align_corners=True over n samples
// (PyTorch's reflect_coordinates + clip_coordinates).
AUGMENT_PX float augment_px_reflect(float x, int n)
{
    float span = (float)(n - 1);
    if (x >= 0.0f && x <= span) return x;
    if (n <= 1) return 0.0f;
    x = fabsf(x);
    float extra = fmodf(x, span);
    int flips = (int)floorf(x / span);
    x = (flips & 1) ? span - extra : extra;
    return x < 0.0f ? 0.0f : x > span ? span : x;
}

// Bilinear setup: top-left tap, right/bottom tap (clamped; its weight is 0
// when clamped), fractions.
typedef struct {
    int x0, y0, x1, y1;
    float fx, fy;
} augment_px_taps_t;

AUGMENT_PX augment_px_taps_t augment_px_taps(float ix, float iy, int h, int w)
{
    augment_px_taps_t t;
    float flx = floorf(ix), fly = floorf(iy);
    t.x0 = (int)flx;
    t.y0 = (int)fly;
    t.fx = ix - flx;
    t.fy = iy - fly;
    t.x1 = t.x0 + 1 < w ? t.x0 + 1 : t.x0;
    t.y1 = t.y0 + 1 < h ? t.y0 + 1 : t.y0;
    return t;
}

// Adds w * pixel (y, x) of an (h, w, 3) u8 image, in 0..255 units.
AUGMENT_PX void augment_px_add_u8(const uint8_t *img, int w_img, int y, int x, float w,
                                  float acc[3])
{
    const uint8_t *p = img + ((size_t)y * (size_t)w_img + (size_t)x) * 3;
    acc[0] += w * (float)p[0];
    acc[1] += w * (float)p[1];
    acc[2] += w * (float)p[2];
}

// Adaptive-average-pool window of output index o (n_in -> n_out):
// [floor(o * n_in / n_out), ceil((o + 1) * n_in / n_out)).
AUGMENT_PX void augment_px_window(int o, int n_in, int n_out, int *lo, int *hi)
{
    *lo = (o * n_in) / n_out;
    *hi = ((o + 1) * n_in + n_out - 1) / n_out;
}

// Pixel (y, x) of what stage A samples: the source, or (reference mode with
// no crop stage) its area pre-shrink to s_h x s_w. (3) floats, 0..255 units.
AUGMENT_PX void augment_px_src_tap(const augment_batch_params_t *bp, const uint8_t *src, int y,
                                   int x, float rgb[3])
{
    rgb[0] = rgb[1] = rgb[2] = 0.0f;
    if (!bp->src_shrink) {
        augment_px_add_u8(src, bp->src_w, y, x, 1.0f, rgb);
        return;
    }
    int ylo, yhi, xlo, xhi;
    augment_px_window(y, bp->src_h, bp->s_h, &ylo, &yhi);
    augment_px_window(x, bp->src_w, bp->s_w, &xlo, &xhi);
    for (int yy = ylo; yy < yhi; yy++)
        for (int xx = xlo; xx < xhi; xx++) augment_px_add_u8(src, bp->src_w, yy, xx, 1.0f, rgb);
    float inv = 1.0f / (float)((yhi - ylo) * (xhi - xlo));
    rgb[0] *= inv;
    rgb[1] *= inv;
    rgb[2] *= inv;
}

// Adds w * augment_px_src_tap(y, x) (skipped when w is 0).
AUGMENT_PX void augment_px_add_src_tap(const augment_batch_params_t *bp, const uint8_t *src, int y,
                                       int x, float w, float rgb[3])
{
    if (w == 0.0f) return;
    float tap[3];
    augment_px_src_tap(bp, src, y, x, tap);
    rgb[0] += w * tap[0];
    rgb[1] += w * tap[1];
    rgb[2] += w * tap[2];
}

// Maps an A-grid position (ax, ay) (pixels of the a_h x a_w grid, possibly
// fractional) through the image's affine matrix and perspective warp to
// normalized source coordinates (u, v) in [-1, 1] (outside = reflected).
AUGMENT_PX void augment_px_map(const augment_batch_params_t *bp, const augment_image_params_t *ip,
                               float ax, float ay, float *u_out, float *v_out)
{
    float xo = ax * bp->a_step_x - 1.0f;
    float yo = ay * bp->a_step_y - 1.0f;
    const float *m = ip->mat;
    float u = m[0] * xo + m[1] * yo + m[2];
    float v = m[3] * xo + m[4] * yo + m[5];
    if (bp->warp_on) {
        const float *c = ip->warp;
        float rden = 1.0f / (c[6] * u + c[7] * v + 1.0f);
        float uw = (c[0] * u + c[1] * v + c[2]) * rden;
        float vw = (c[3] * u + c[4] * v + c[5]) * rden;
        u = uw;
        v = vw;
    }
    *u_out = u;
    *v_out = v;
}

// Stage A at A-grid position (ax, ay): map, unnormalize onto the sampled
// image (s_h x s_w), reflect, bilinear.
AUGMENT_PX void augment_px_sample_a(const augment_batch_params_t *bp,
                                    const augment_image_params_t *ip, const uint8_t *src, float ax,
                                    float ay, float rgb[3])
{
    float u, v;
    augment_px_map(bp, ip, ax, ay, &u, &v);
    float ix = augment_px_reflect((u + 1.0f) * bp->s_half_w, bp->s_w);
    float iy = augment_px_reflect((v + 1.0f) * bp->s_half_h, bp->s_h);
    augment_px_taps_t t = augment_px_taps(ix, iy, bp->s_h, bp->s_w);
    float w00 = (1.0f - t.fx) * (1.0f - t.fy), w01 = t.fx * (1.0f - t.fy);
    float w10 = (1.0f - t.fx) * t.fy, w11 = t.fx * t.fy;
    rgb[0] = rgb[1] = rgb[2] = 0.0f;
    if (!bp->src_shrink) {
        augment_px_add_u8(src, bp->src_w, t.y0, t.x0, w00, rgb);
        augment_px_add_u8(src, bp->src_w, t.y0, t.x1, w01, rgb);
        augment_px_add_u8(src, bp->src_w, t.y1, t.x0, w10, rgb);
        augment_px_add_u8(src, bp->src_w, t.y1, t.x1, w11, rgb);
        return;
    }
    augment_px_add_src_tap(bp, src, t.y0, t.x0, w00, rgb);
    augment_px_add_src_tap(bp, src, t.y0, t.x1, w01, rgb);
    augment_px_add_src_tap(bp, src, t.y1, t.x0, w10, rgb);
    augment_px_add_src_tap(bp, src, t.y1, t.x1, w11, rgb);
}

// Stage A at the integer A-grid pixel (ay, ax) (reference mode). Validation
// with a crop stage maps the identity onto the same grid: a plain copy.
AUGMENT_PX void augment_px_a_pixel(const augment_batch_params_t *bp,
                                   const augment_image_params_t *ip, const uint8_t *src, int ay,
                                   int ax, float rgb[3])
{
    if (bp->a_identity) {
        rgb[0] = rgb[1] = rgb[2] = 0.0f;
        augment_px_add_u8(src, bp->src_w, ay, ax, 1.0f, rgb);
        return;
    }
    augment_px_sample_a(bp, ip, src, (float)ax, (float)ay, rgb);
}

// Pixel (y, x) of the batch's crop of stage A, or of its area pre-shrink to
// cs_h x cs_w (reference mode).
AUGMENT_PX void augment_px_crop_tap(const augment_batch_params_t *bp,
                                    const augment_image_params_t *ip, const uint8_t *src, int y,
                                    int x, float rgb[3])
{
    if (!bp->crop_shrink) {
        augment_px_a_pixel(bp, ip, src, bp->crop_y0 + y, bp->crop_x0 + x, rgb);
        return;
    }
    int ylo, yhi, xlo, xhi;
    augment_px_window(y, bp->crop_h, bp->cs_h, &ylo, &yhi);
    augment_px_window(x, bp->crop_w, bp->cs_w, &xlo, &xhi);
    float a[3];
    rgb[0] = rgb[1] = rgb[2] = 0.0f;
    for (int yy = ylo; yy < yhi; yy++)
        for (int xx = xlo; xx < xhi; xx++) {
            augment_px_a_pixel(bp, ip, src, bp->crop_y0 + yy, bp->crop_x0 + xx, a);
            rgb[0] += a[0];
            rgb[1] += a[1];
            rgb[2] += a[2];
        }
    float inv = 1.0f / (float)((yhi - ylo) * (xhi - xlo));
    rgb[0] *= inv;
    rgb[1] *= inv;
    rgb[2] *= inv;
}

// Adds w * augment_px_crop_tap(y, x) (skipped when w is 0).
AUGMENT_PX void augment_px_add_crop_tap(const augment_batch_params_t *bp,
                                        const augment_image_params_t *ip, const uint8_t *src, int y,
                                        int x, float w, float rgb[3])
{
    if (w == 0.0f) return;
    float tap[3];
    augment_px_crop_tap(bp, ip, src, y, x, tap);
    rgb[0] += w * tap[0];
    rgb[1] += w * tap[1];
    rgb[2] += w * tap[2];
}

// The resampled value of output pixel (r, c), 0..255 units.
AUGMENT_PX void augment_px_geometry(const augment_batch_params_t *bp,
                                    const augment_image_params_t *ip, const uint8_t *src, int r,
                                    int c, float rgb[3])
{
    if (bp->resample == AUGMENT_RESAMPLE_FUSED) {
        // output -> A grid: through the crop box when there is a crop stage
        const float sx = bp->f_scale_x, sy = bp->f_scale_y, ox = bp->f_off_x, oy = bp->f_off_y;
        int k = ip->ss;
        float step = 1.0f / (float)k, first = 0.5f * step - 0.5f, s[3];
        rgb[0] = rgb[1] = rgb[2] = 0.0f;
        for (int i = 0; i < k; i++) {
            float ay = oy + ((float)r + first + (float)i * step) * sy;
            for (int j = 0; j < k; j++) {
                float ax = ox + ((float)c + first + (float)j * step) * sx;
                augment_px_sample_a(bp, ip, src, ax, ay, s);
                rgb[0] += s[0];
                rgb[1] += s[1];
                rgb[2] += s[2];
            }
        }
        float inv = 1.0f / (float)(k * k);
        rgb[0] *= inv;
        rgb[1] *= inv;
        rgb[2] *= inv;
        return;
    }
    if (!bp->crop_on) {  // reference without crop stage: the A grid is the output grid
        augment_px_sample_a(bp, ip, src, (float)c, (float)r, rgb);
        return;
    }
    // reference stage B: identity grid over the (shrunk) crop, bilinear over its pixels
    float xo = (float)c * bp->o_step_x - 1.0f;
    float yo = (float)r * bp->o_step_y - 1.0f;
    float ix = augment_px_reflect((xo + 1.0f) * bp->cs_half_w, bp->cs_w);
    float iy = augment_px_reflect((yo + 1.0f) * bp->cs_half_h, bp->cs_h);
    augment_px_taps_t t = augment_px_taps(ix, iy, bp->cs_h, bp->cs_w);
    rgb[0] = rgb[1] = rgb[2] = 0.0f;
    augment_px_add_crop_tap(bp, ip, src, t.y0, t.x0, (1.0f - t.fx) * (1.0f - t.fy), rgb);
    augment_px_add_crop_tap(bp, ip, src, t.y0, t.x1, t.fx * (1.0f - t.fy), rgb);
    augment_px_add_crop_tap(bp, ip, src, t.y1, t.x0, (1.0f - t.fx) * t.fy, rgb);
    augment_px_add_crop_tap(bp, ip, src, t.y1, t.x1, t.fx * t.fy, rgb);
}

// fastai's lighting on x in [0, 1]: sigmoid(c * (logit(x) + logit(b))) with
// x clamped to [1e-7, 1 - 1e-7], computed as 1 / (1 + q^-c) with
// q = x / (1 - x) * b / (1 - b) (one log and one exp; none when c == 1).
AUGMENT_PX float augment_px_lighting(float x, float bright_odds, float contrast)
{
    x = x < 1e-7f ? 1e-7f : x > 1.0f - 1e-7f ? 1.0f - 1e-7f : x;
    float q = x / (1.0f - x) * bright_odds;
    if (contrast == 1.0f) return q / (1.0f + q);
    return 1.0f / (1.0f + expf(-contrast * logf(q)));
}

// Output pixel (r, c) of one image before Mixup: geometry, /255, lighting,
// Normalize. (3) floats.
AUGMENT_PX void augment_px_value(const augment_batch_params_t *bp, const augment_image_params_t *ip,
                                 const uint8_t *src, int r, int c, float out[3])
{
    augment_px_geometry(bp, ip, src, r, c, out);
    for (int ch = 0; ch < 3; ch++) {
        float x = out[ch] * (1.0f / 255.0f);
        if (bp->light_on) x = augment_px_lighting(x, ip->bright_odds, ip->contrast);
        if (bp->norm_on) x = (x - bp->mean[ch]) * bp->inv_std[ch];
        out[ch] = x;
    }
}

// fastai MixUp: torch.lerp(partner, x, lambda).
AUGMENT_PX float augment_px_mix(float x, float partner, float lambda)
{
    return partner + lambda * (x - partner);
}

// float -> bfloat16, round to nearest even (NaN stays NaN).
AUGMENT_PX uint16_t augment_px_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

AUGMENT_PX float augment_px_from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#endif
