/*
 * transform.c: the CPU batch transform (see transform.h). Every output value
 * is a pure function of its parameters, so the result does not depend on the
 * thread count or the schedule.
 *
 * It computes pixel.h's function (what the CUDA kernel evaluates per pixel),
 * reorganised for a CPU: per image, the intermediate images fastai's
 * reference mode defines are materialized once (the affine+warp image over
 * the crop box, the area pre-shrink) instead of being recomputed for every
 * output tap, and every row loop is written for the vectorizer (OpenMP simd
 * over the pixels of a row) with the same maps, bilinear weights, summation
 * order and lighting formula, up to float rounding. It uses
 *   - a padded RGBX copy of the source image (one extra column and row that
 *     repeat the last ones), so each bilinear tap is one 32-bit gather and
 *     the right/bottom taps never need clamping;
 *   - reflection without fmodf: |x| - floor(|x| / span) * span, exact inside
 *     the image and within a few ulps outside it;
 *   - vectorizable logf/expf (Cephes polynomials, about 1 ulp) for the
 *     lighting, written by hand because glibc's vector math is only used
 *     under -ffast-math, which this code must not depend on.
 * test_augment_props holds it to pixel.h on random draws in both modes.
 *
 * Parallelism: OpenMP over images (each thread its own workspace block), or,
 * for batches smaller than the thread count, over the rows of one image at a
 * time (thread 0's block shared, a barrier between stages).
 */
#include "transform.h"

#include "check.h"
#include "pixel.h"

#include <omp.h>
#include <string.h>

// ---------------------------------------------------------------------------
// workspace: one block per thread, then the Mixup rows (each 64-byte aligned;
// sized from the batch actually run, at most the shape's size):
//   rgbx  (src_h + 1, src_w + 1) u32   the padded RGBX source
//   a     (3, src_h, src_w) f32        reference: stage A over the crop box, or
//                                      the planar source before a pre-shrink
//   s     (3, src_h, src_w) f32        reference: the area pre-shrink
//   tmp   (src_w) f32                  area column sums
//   rows  (6, out_w) f32               a row accumulator (3, W) and a row (W, 3)

static size_t s_align(size_t n) { return (n + 63) & ~(size_t)63; }

typedef struct {
    size_t rgbx, a, s, tmp, rows;  // offsets inside one thread's block
    size_t per_thread;             // bytes of one block
    size_t mix, total;             // offset of the Mixup rows, and the end
} s_layout_t;

static s_layout_t s_layout(int src_h, int src_w, int out_h, int out_w, int n, int threads,
                           bool mixup, bool reference)
{
    size_t plane3 = reference ? s_align(3 * (size_t)src_h * (size_t)src_w * sizeof(float)) : 0;
    s_layout_t l;
    l.rgbx = 0;
    l.a = l.rgbx + s_align((size_t)(src_h + 1) * (size_t)(src_w + 1) * sizeof(uint32_t));
    l.s = l.a + plane3;
    l.tmp = l.s + plane3;
    l.rows = l.tmp + s_align((size_t)src_w * sizeof(float));
    l.per_thread = l.rows + s_align(6 * (size_t)out_w * sizeof(float));
    l.mix = (size_t)threads * l.per_thread;
    l.total = l.mix + (mixup ? s_align((size_t)n * out_h * out_w * 3 * sizeof(float)) : 0);
    return l;
}

size_t augment_transform_workspace_bytes(augment_backend_t backend,
                                         const augment_workspace_shape_t *s)
{
    if (backend != AUGMENT_BACKEND_CPU) return 0;
    return s_layout(s->presize, s->presize, s->size, s->size, s->max_n, s->threads, s->mixup,
                    s->resample == AUGMENT_RESAMPLE_REFERENCE)
        .total;
}

// ---------------------------------------------------------------------------
// vectorizable helpers (inlined into omp simd loops: no calls, no branches)

static inline float s_as_float(int32_t i)
{
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}

static inline int32_t s_as_int(float f)
{
    int32_t i;
    memcpy(&i, &f, sizeof i);
    return i;
}

// Natural log of x > 0 (normal): x = m * 2^e with m in [sqrt(1/2), sqrt(2)),
// log(m) by Cephes' logf polynomial in m - 1.
static inline float s_logf(float x)
{
    int32_t bits = s_as_int(x);
    int32_t e = ((bits >> 23) & 0xff) - 126;                 // x = m * 2^e, m in [0.5, 1)
    float m = s_as_float((bits & 0x007fffff) | 0x3f000000);
    int lo = m < 0.70710678f;
    e -= lo;
    float f = lo ? m + m - 1.0f : m - 1.0f;
    float z = f * f;
    float y = 7.0376836292e-2f;
    y = y * f - 1.1514610310e-1f;
    y = y * f + 1.1676998740e-1f;
    y = y * f - 1.2420140846e-1f;
    y = y * f + 1.4249322787e-1f;
    y = y * f - 1.6668057665e-1f;
    y = y * f + 2.0000714765e-1f;
    y = y * f - 2.4999993993e-1f;
    y = y * f + 3.3333331174e-1f;
    y = y * f * z;
    float fe = (float)e;
    y += -2.12194440e-4f * fe;
    y += -0.5f * z;
    return f + y + 0.693359375f * fe;
}

// e^x, Cephes' expf: x = n ln2 + r, e^r by a degree-6 polynomial, times 2^n.
static inline float s_expf(float x)
{
    x = x > 88.0f ? 88.0f : x < -87.0f ? -87.0f : x;
    float n = __builtin_floorf(1.44269504088896341f * x + 0.5f);
    x -= n * 0.693359375f;
    x -= n * -2.12194440e-4f;
    float z = x * x;
    float y = 1.9875691500e-4f;
    y = y * x + 1.3981999507e-3f;
    y = y * x + 8.3334519073e-3f;
    y = y * x + 4.1665795894e-2f;
    y = y * x + 1.6666665459e-1f;
    y = y * x + 5.0000001201e-1f;
    y = y * z + x + 1.0f;
    return y * s_as_float(((int32_t)n + 127) << 23);
}

// augment_px_reflect for span = n - 1 >= 1, branch-free.
static inline float s_reflect(float x, float span, float inv_span)
{
    x = x < 0.0f ? -x : x;
    float q = __builtin_floorf(x * inv_span);
    float extra = x - q * span;
    x = ((int32_t)q & 1) ? span - extra : extra;
    return x < 0.0f ? 0.0f : x > span ? span : x;
}

// ---------------------------------------------------------------------------
// row primitives

// The source rows [r0, r1) of the padded (h + 1, w + 1) RGBX copy of an
// (h, w, 3) image; row h and column w repeat the last ones.
static void s_pack_rows(const uint8_t *src, int h, int w, uint32_t *dst, int r0, int r1)
{
    for (int y = r0; y < r1; y++) {
        const uint8_t *s = src + (size_t)(y < h ? y : h - 1) * (size_t)w * 3;
        uint32_t *d = dst + (size_t)y * (size_t)(w + 1);
        for (int x = 0; x < w; x++)
            d[x] = (uint32_t)s[3 * x] | (uint32_t)s[3 * x + 1] << 8 | (uint32_t)s[3 * x + 2] << 16;
        d[w] = d[w - 1];
    }
}

// The affine map, the perspective warp and the sampled image's geometry of
// one image, unpacked for the row loops.
typedef struct {
    float m0, m1, m2, m3, m4, m5;          // affine, A-grid normalized -> source normalized
    float c0, c1, c2, c3, c4, c5, c6, c7;  // perspective (identity when off)
    float step_x, step_y;                  // A-grid pixel -> normalized
    float half_w, half_h;                  // normalized -> sampled-image pixel
    float span_x, span_y, inv_x, inv_y;    // sampled image: w - 1, h - 1, and inverses
} s_map_t;

static s_map_t s_map(const augment_batch_params_t *bp, const augment_image_params_t *ip)
{
    static const float identity[8] = {1, 0, 0, 0, 1, 0, 0, 0};
    const float *m = ip->mat, *c = bp->warp_on ? ip->warp : identity;
    s_map_t mp = {m[0], m[1], m[2], m[3], m[4], m[5], c[0], c[1], c[2], c[3], c[4], c[5], c[6],
                  c[7], bp->a_step_x, bp->a_step_y, bp->s_half_w, bp->s_half_h,
                  (float)(bp->s_w - 1), (float)(bp->s_h - 1), 0, 0};
    mp.inv_x = 1.0f / mp.span_x;
    mp.inv_y = 1.0f / mp.span_y;
    return mp;
}

// Adds to acc the bilinear samples of the sampled image at the images under
// the map of the A-grid points (off + (col + frac) * scale, ay), col in
// [0, count). Source: the padded RGBX copy (planes == NULL) or three float
// planes (h, w) in 0..255 units (the pre-shrunk source).
static void s_sample_row(const s_map_t *mp, const uint32_t *restrict rgbx,
                         const float *restrict planes, int h, int w, float ay, float off,
                         float frac, float scale, int count, float *restrict acc_r,
                         float *restrict acc_g, float *restrict acc_b)
{
    const s_map_t M = *mp;
    const float yo = ay * M.step_y - 1.0f;
    const float ub = M.m1 * yo + M.m2, vb = M.m4 * yo + M.m5;  // constant along the row
    const int stride = w + 1;
    const size_t plane = (size_t)h * (size_t)w;
#pragma omp simd
    for (int col = 0; col < count; col++) {
        float ax = off + ((float)col + frac) * scale;
        float xo = ax * M.step_x - 1.0f;
        float u = M.m0 * xo + ub;
        float v = M.m3 * xo + vb;
        float rden = 1.0f / (M.c6 * u + M.c7 * v + 1.0f);
        float uw = (M.c0 * u + M.c1 * v + M.c2) * rden;
        float vw = (M.c3 * u + M.c4 * v + M.c5) * rden;
        float ix = s_reflect((uw + 1.0f) * M.half_w, M.span_x, M.inv_x);
        float iy = s_reflect((vw + 1.0f) * M.half_h, M.span_y, M.inv_y);
        float flx = __builtin_floorf(ix), fly = __builtin_floorf(iy);
        float fx = ix - flx, fy = iy - fly;
        float w00 = (1.0f - fx) * (1.0f - fy), w01 = fx * (1.0f - fy);
        float w10 = (1.0f - fx) * fy, w11 = fx * fy;
        int32_t x0 = (int32_t)flx, y0 = (int32_t)fly;
        if (!planes) {
            int32_t o = y0 * stride + x0;
            uint32_t p00 = rgbx[o], p01 = rgbx[o + 1], p10 = rgbx[o + stride],
                     p11 = rgbx[o + stride + 1];
            acc_r[col] += ((((w00 * (float)(p00 & 255u)) + w01 * (float)(p01 & 255u)) +
                            w10 * (float)(p10 & 255u)) + w11 * (float)(p11 & 255u));
            acc_g[col] += ((((w00 * (float)(p00 >> 8 & 255u)) + w01 * (float)(p01 >> 8 & 255u)) +
                            w10 * (float)(p10 >> 8 & 255u)) + w11 * (float)(p11 >> 8 & 255u));
            acc_b[col] += ((((w00 * (float)(p00 >> 16 & 255u)) + w01 * (float)(p01 >> 16 & 255u)) +
                            w10 * (float)(p10 >> 16 & 255u)) + w11 * (float)(p11 >> 16 & 255u));
        } else {
            int32_t x1 = x0 + 1 < w ? x0 + 1 : x0, y1 = y0 + 1 < h ? y0 + 1 : y0;
            int32_t o00 = y0 * w + x0, o01 = y0 * w + x1, o10 = y1 * w + x0, o11 = y1 * w + x1;
            const float *pr = planes, *pg = planes + plane, *pb = planes + 2 * plane;
            acc_r[col] += (((w00 * pr[o00] + w01 * pr[o01]) + w10 * pr[o10]) + w11 * pr[o11]);
            acc_g[col] += (((w00 * pg[o00] + w01 * pg[o01]) + w10 * pg[o10]) + w11 * pg[o11]);
            acc_b[col] += (((w00 * pb[o00] + w01 * pb[o01]) + w10 * pb[o10]) + w11 * pb[o11]);
        }
    }
}

// Reference stage B, output row r: the identity grid over the (pre-shrunk)
// crop held in three planes (cs_h, cs_w), bilinear, into acc (set).
static void s_crop_row(const augment_batch_params_t *bp, const float *restrict planes, int r,
                       float *restrict acc_r, float *restrict acc_g, float *restrict acc_b)
{
    const int h = bp->cs_h, w = bp->cs_w, W = bp->out_w;
    const size_t plane = (size_t)h * (size_t)w;
    float yo = (float)r * bp->o_step_y - 1.0f;
    float iy = augment_px_reflect((yo + 1.0f) * bp->cs_half_h, h);
    augment_px_taps_t t = augment_px_taps(0.0f, iy, h, w);
    const float span = (float)(w - 1), inv = 1.0f / span, step = bp->o_step_x, half = bp->cs_half_w;
    const float fy = t.fy;
    const float *r0 = planes + (size_t)t.y0 * w, *r1 = planes + (size_t)t.y1 * w;
#pragma omp simd
    for (int col = 0; col < W; col++) {
        float xo = (float)col * step - 1.0f;
        float ix = s_reflect((xo + 1.0f) * half, span, inv);
        float flx = __builtin_floorf(ix), fx = ix - flx;
        int32_t x0 = (int32_t)flx, x1 = x0 + 1 < w ? x0 + 1 : x0;
        float w00 = (1.0f - fx) * (1.0f - fy), w01 = fx * (1.0f - fy);
        float w10 = (1.0f - fx) * fy, w11 = fx * fy;
        acc_r[col] = (((w00 * r0[x0] + w01 * r0[x1]) + w10 * r1[x0]) + w11 * r1[x1]);
        acc_g[col] = (((w00 * r0[plane + x0] + w01 * r0[plane + x1]) + w10 * r1[plane + x0]) +
                      w11 * r1[plane + x1]);
        acc_b[col] = (((w00 * r0[2 * plane + x0] + w01 * r0[2 * plane + x1]) +
                       w10 * r1[2 * plane + x0]) + w11 * r1[2 * plane + x1]);
    }
}

// Rows [y0, y1) of the area pre-shrink (adaptive average pooling) of three
// planes (ih, iw) to (oh, ow). tmp: iw floats.
static void s_area_rows(const float *restrict in, int ih, int iw, float *restrict out, int oh,
                        int ow, int y0, int y1, float *restrict tmp)
{
    for (int p = 0; p < 3; p++) {
        const float *ip = in + (size_t)p * ih * iw;
        float *op = out + (size_t)p * oh * ow;
        for (int ys = y0; ys < y1; ys++) {
            int ylo, yhi;
            augment_px_window(ys, ih, oh, &ylo, &yhi);
#pragma omp simd
            for (int x = 0; x < iw; x++) tmp[x] = ip[(size_t)ylo * iw + x];
            for (int yy = ylo + 1; yy < yhi; yy++)
#pragma omp simd
                for (int x = 0; x < iw; x++) tmp[x] += ip[(size_t)yy * iw + x];
            for (int xs = 0; xs < ow; xs++) {
                int xlo, xhi;
                augment_px_window(xs, iw, ow, &xlo, &xhi);
                float sum = 0.0f;
                for (int xx = xlo; xx < xhi; xx++) sum += tmp[xx];
                op[(size_t)ys * ow + xs] = sum * (1.0f / (float)((yhi - ylo) * (xhi - xlo)));
            }
        }
    }
}

// Rows [y0, y1) of an (h, w, 3) u8 image (columns [x0, x0 + cw)) as three
// float planes (h, cw), 0..255 units.
static void s_planar_rows(const uint8_t *src, int w, int x0, int cw, int y_off, int ph,
                          float *restrict planes, int y0, int y1)
{
    const size_t plane = (size_t)ph * (size_t)cw;
    for (int y = y0; y < y1; y++) {
        const uint8_t *s = src + ((size_t)(y_off + y) * (size_t)w + (size_t)x0) * 3;
        float *d = planes + (size_t)y * cw;
        for (int x = 0; x < cw; x++) {
            d[x] = (float)s[3 * x];
            d[plane + x] = (float)s[3 * x + 1];
            d[2 * plane + x] = (float)s[3 * x + 2];
        }
    }
}

// acc (3, W) -> out (W, 3): * scale, /255, lighting, Normalize (mean 0 and
// 1/std 1 without it). One branch-free loop per case.
static void s_finish(const augment_batch_params_t *bp, const augment_image_params_t *ip,
                     const float *restrict acc, float scale, float *restrict out)
{
    const int W = bp->out_w;
    const float odds = ip->bright_odds, con = ip->contrast;
    for (int ch = 0; ch < 3; ch++) {
        const float *a = acc + (size_t)ch * W;
        float *o = out + ch;
        const float mean = bp->mean[ch], istd = bp->inv_std[ch];
        if (!bp->light_on) {
#pragma omp simd
            for (int col = 0; col < W; col++)
                o[(size_t)col * 3] = ((a[col] * scale) * (1.0f / 255.0f) - mean) * istd;
        } else if (con == 1.0f) {
#pragma omp simd
            for (int col = 0; col < W; col++) {
                float x = (a[col] * scale) * (1.0f / 255.0f);
                x = x < 1e-7f ? 1e-7f : x > 1.0f - 1e-7f ? 1.0f - 1e-7f : x;
                float q = x / (1.0f - x) * odds;
                o[(size_t)col * 3] = (q / (1.0f + q) - mean) * istd;
            }
        } else {
#pragma omp simd
            for (int col = 0; col < W; col++) {
                float x = (a[col] * scale) * (1.0f / 255.0f);
                x = x < 1e-7f ? 1e-7f : x > 1.0f - 1e-7f ? 1.0f - 1e-7f : x;
                float q = x / (1.0f - x) * odds;
                o[(size_t)col * 3] = (1.0f / (1.0f + s_expf(-con * s_logf(q))) - mean) * istd;
            }
        }
    }
}

static void s_store(void *out, augment_dtype_t dtype, size_t off, const float *v, size_t count)
{
    if (dtype == AUGMENT_DTYPE_F32) {
        memcpy((float *)out + off, v, count * sizeof(float));
        return;
    }
    uint16_t *o = (uint16_t *)out + off;
    for (size_t e = 0; e < count; e++) o[e] = augment_px_bf16(v[e]);
}

// ---------------------------------------------------------------------------
// one image: preparation stages, then rows

// One batch in flight: the arguments and where things live in the workspace.
typedef struct {
    const augment_transform_args_t *a;
    const augment_batch_params_t *bp;
    s_layout_t l;
    uint8_t *ws;
    float *mixbuf;  // (n, H, W, 3) when mixing
    size_t src_stride, img_elems, row_elems;
    bool mix, fused;
} s_run_t;

// What an image needs before its output rows, in order; each stage is
// parallel over its rows and needs the previous one complete.
typedef enum {
    S_STAGE_SOURCE = 0,  // RGBX copy, or planar copy (validation crop, source pre-shrink)
    S_STAGE_A = 1,       // reference with a crop stage: affine+warp over the crop box
    S_STAGE_SHRINK = 2,  // reference: area pre-shrink of the crop or of the source
    S_STAGES = 3
} s_stage_t;

// Rows of stage st for image j (0 = nothing to do).
static int s_stage_rows(const s_run_t *R, int st)
{
    const augment_batch_params_t *bp = R->bp;
    if (R->fused) return st == S_STAGE_SOURCE ? bp->src_h + 1 : 0;
    if (bp->crop_on) {
        switch (st) {
        case S_STAGE_SOURCE: return bp->a_identity ? bp->crop_h : bp->src_h + 1;
        case S_STAGE_A: return bp->a_identity ? 0 : bp->crop_h;
        default: return bp->crop_shrink ? bp->cs_h : 0;
        }
    }
    switch (st) {
    case S_STAGE_SOURCE: return bp->src_shrink ? bp->src_h : bp->src_h + 1;
    case S_STAGE_A: return 0;
    default: return bp->src_shrink ? bp->s_h : 0;
    }
}

// Rows [y0, y1) of stage st of image j into block (the thread's own, or a
// shared one); tmp: the calling thread's column-sum scratch.
static void s_stage(const s_run_t *R, int j, int st, int y0, int y1, uint8_t *block, float *tmp)
{
    const augment_batch_params_t *bp = R->bp;
    const uint8_t *src = R->a->src + (size_t)j * R->src_stride;
    uint32_t *rgbx = (uint32_t *)(block + R->l.rgbx);
    float *pa = (float *)(block + R->l.a), *ps = (float *)(block + R->l.s);
    bool planar_src = !R->fused && (bp->crop_on ? bp->a_identity : bp->src_shrink);
    if (st == S_STAGE_SOURCE) {
        if (!planar_src)
            s_pack_rows(src, bp->src_h, bp->src_w, rgbx, y0, y1);
        else if (bp->crop_on)  // validation: stage A is the identity, a copy of the crop
            s_planar_rows(src, bp->src_w, bp->crop_x0, bp->crop_w, bp->crop_y0, bp->crop_h, pa, y0,
                          y1);
        else
            s_planar_rows(src, bp->src_w, 0, bp->src_w, 0, bp->src_h, pa, y0, y1);
    } else if (st == S_STAGE_A) {
        s_map_t mp = s_map(bp, &R->a->img[j]);
        size_t plane = (size_t)bp->crop_h * bp->crop_w;
        for (int y = y0; y < y1; y++) {
            float *r = pa + (size_t)y * bp->crop_w;
            memset(r, 0, (size_t)bp->crop_w * sizeof(float));
            memset(r + plane, 0, (size_t)bp->crop_w * sizeof(float));
            memset(r + 2 * plane, 0, (size_t)bp->crop_w * sizeof(float));
            s_sample_row(&mp, rgbx, NULL, bp->src_h, bp->src_w, (float)(bp->crop_y0 + y),
                         (float)bp->crop_x0, 0.0f, 1.0f, bp->crop_w, r, r + plane, r + 2 * plane);
        }
    } else if (bp->crop_on) {
        s_area_rows(pa, bp->crop_h, bp->crop_w, ps, bp->cs_h, bp->cs_w, y0, y1, tmp);
    } else {
        s_area_rows(pa, bp->src_h, bp->src_w, ps, bp->s_h, bp->s_w, y0, y1, tmp);
    }
}

// Output row r of image j into the Mixup rows or the output. shared: the
// block holding the image's prepared stages; own: the calling thread's block.
static void s_row(const s_run_t *R, int j, int r, const uint8_t *shared, uint8_t *own)
{
    const augment_transform_args_t *a = R->a;
    const augment_batch_params_t *bp = R->bp;
    const augment_image_params_t *ip = &a->img[j];
    const int W = bp->out_w;
    float *acc = (float *)(own + R->l.rows), *line = acc + 3 * (size_t)W;
    float *ar = acc, *ag = acc + W, *ab = acc + 2 * (size_t)W;
    size_t off = (size_t)j * R->img_elems + (size_t)r * R->row_elems;
    float *dst = R->mix ? R->mixbuf + off : line;
    const uint32_t *rgbx = (const uint32_t *)(shared + R->l.rgbx);
    const float *pa = (const float *)(shared + R->l.a), *ps = (const float *)(shared + R->l.s);
    float scale = 1.0f;
    if (R->fused) {
        // k x k samples through crop, affine and warp, averaged
        s_map_t mp = s_map(bp, ip);
        const int k = ip->ss;
        const float step = 1.0f / (float)k, first = 0.5f * step - 0.5f;
        memset(acc, 0, 3 * (size_t)W * sizeof(float));
        for (int i = 0; i < k; i++) {
            float ay = bp->f_off_y + ((float)r + first + (float)i * step) * bp->f_scale_y;
            for (int jj = 0; jj < k; jj++)
                s_sample_row(&mp, rgbx, NULL, bp->src_h, bp->src_w, ay, bp->f_off_x,
                             first + (float)jj * step, bp->f_scale_x, W, ar, ag, ab);
        }
        scale = 1.0f / (float)(k * k);
    } else if (bp->crop_on) {
        s_crop_row(bp, bp->crop_shrink ? ps : pa, r, ar, ag, ab);
    } else {
        // no crop stage: the A grid is the output grid
        s_map_t mp = s_map(bp, ip);
        memset(acc, 0, 3 * (size_t)W * sizeof(float));
        s_sample_row(&mp, rgbx, bp->src_shrink ? ps : NULL, bp->s_h, bp->s_w, (float)r, 0.0f,
                     0.0f, 1.0f, W, ar, ag, ab);
    }
    s_finish(bp, ip, acc, scale, dst);
    if (!R->mix) s_store(a->out, a->dtype, off, dst, R->row_elems);
}

void augment_transform_cpu(const augment_transform_args_t *a)
{
    const augment_batch_params_t *bp = &a->batch;
    const int n = bp->n, H = bp->out_h, threads = a->threads;
    NF_CHECK(threads >= 1, "threads %d", threads);
    NF_CHECK(bp->src_h >= 2 && bp->src_w >= 2 && bp->out_w >= 2, "sizes");
    const bool fused = bp->resample == AUGMENT_RESAMPLE_FUSED;
    s_run_t R = {.a = a,
                 .bp = bp,
                 .l = s_layout(bp->src_h, bp->src_w, H, bp->out_w, n, threads, bp->mix_on != 0,
                               !fused),
                 .ws = a->ws,
                 .src_stride = (size_t)bp->src_h * (size_t)bp->src_w * 3,
                 .img_elems = (size_t)H * (size_t)bp->out_w * 3,
                 .row_elems = (size_t)bp->out_w * 3,
                 .mix = bp->mix_on != 0,
                 .fused = fused};
    NF_CHECK(a->ws && R.l.total <= a->ws_bytes, "workspace of %zu bytes, %zu needed",
             a->ws_bytes, R.l.total);
    R.mixbuf = (float *)(R.ws + R.l.mix);

    // pass 1: every output row (to the Mixup rows when mixing)
    if (n >= threads) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (int j = 0; j < n; j++) {
            uint8_t *block = R.ws + (size_t)omp_get_thread_num() * R.l.per_thread;
            float *tmp = (float *)(block + R.l.tmp);
            for (int st = 0; st < S_STAGES; st++)
                s_stage(&R, j, st, 0, s_stage_rows(&R, st), block, tmp);
            for (int r = 0; r < H; r++) s_row(&R, j, r, block, block);
        }
    } else {
        uint8_t *shared = R.ws;  // thread 0's block holds the image's stages
        for (int j = 0; j < n; j++) {
#pragma omp parallel num_threads(threads)
            {
                uint8_t *own = R.ws + (size_t)omp_get_thread_num() * R.l.per_thread;
                float *tmp = (float *)(own + R.l.tmp);
                for (int st = 0; st < S_STAGES; st++) {
                    int rows = s_stage_rows(&R, st);
#pragma omp for schedule(static)
                    for (int y = 0; y < rows; y++) s_stage(&R, j, st, y, y + 1, shared, tmp);
                }
#pragma omp for schedule(dynamic, 4)
                for (int r = 0; r < H; r++) s_row(&R, j, r, shared, own);
            }
        }
    }
    if (!R.mix) return;

    // pass 2: Mixup, x_j = lerp(x_partner, x_j, lambda_j)
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int row = 0; row < n * H; row++) {
        int j = row / H, r = row % H;
        const augment_image_params_t *ip = &a->img[j];
        size_t off = (size_t)j * R.img_elems + (size_t)r * R.row_elems;
        size_t poff = (size_t)ip->partner * R.img_elems + (size_t)r * R.row_elems;
        float *line = (float *)(R.ws + (size_t)omp_get_thread_num() * R.l.per_thread + R.l.rows);
        for (size_t e = 0; e < R.row_elems; e++)
            line[e] = augment_px_mix(R.mixbuf[off + e], R.mixbuf[poff + e], ip->lambda);
        s_store(a->out, a->dtype, off, line, R.row_elems);
    }
}
