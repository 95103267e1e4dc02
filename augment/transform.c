/*
 * transform.c: the CPU batch transform (see transform.h), OpenMP over output
 * rows. Every output value is a pure function of its parameters, so the
 * result does not depend on the thread count or the schedule.
 *
 * Reference mode evaluates pixel.h's per-pixel function. Fused mode, the
 * default and the hot path, has a row loop written for the vectorizer
 * (OpenMP simd over the pixels of a row): it computes the same function as
 * pixel.h's fused branch (same maps, same bilinear weights and summation
 * order, same lighting formula) up to float rounding, using
 *   - a padded RGBX copy of the source image (one extra column and row that
 *     repeat the last ones), so each bilinear tap is one 32-bit gather and
 *     the right/bottom taps never need clamping;
 *   - reflection without fmodf: |x| - floor(|x| / span) * span, which is
 *     exact inside the image and within a few ulps outside it;
 *   - vectorizable logf/expf (Cephes polynomials, about 1 ulp) for the
 *     lighting, written by hand because glibc's vector math is only used
 *     under -ffast-math, which this code must not depend on.
 * Tests hold the two together (test_augment_props: fused rows against
 * pixel.h on random parameters).
 */
#include "transform.h"

#include "check.h"
#include "pixel.h"

#include <omp.h>
#include <string.h>

// ---------------------------------------------------------------------------
// workspace: per thread [an RGBX copy of one source image][a row
// accumulator (3, W)][a row (W, 3)], then [Mixup rows], each 64-byte
// aligned, sized from the batch actually run.

static size_t s_align(size_t n) { return (n + 63) & ~(size_t)63; }

typedef struct {
    size_t rgbx, rows;   // offsets inside one thread's block
    size_t per_thread;   // bytes of one thread's block
    size_t mix, total;   // offset of the Mixup rows, and the end
} s_layout_t;

static s_layout_t s_layout(int src_h, int src_w, int out_h, int out_w, int n, int threads,
                           bool mixup)
{
    s_layout_t l;
    l.rgbx = 0;
    l.rows = s_align((size_t)(src_h + 1) * (size_t)(src_w + 1) * sizeof(uint32_t));
    l.per_thread = l.rows + s_align(6 * (size_t)out_w * sizeof(float));
    l.mix = (size_t)threads * l.per_thread;
    l.total = l.mix + (mixup ? s_align((size_t)n * out_h * out_w * 3 * sizeof(float)) : 0);
    return l;
}

size_t augment_transform_workspace_bytes(augment_backend_t backend,
                                         const augment_workspace_shape_t *s)
{
    if (backend != AUGMENT_BACKEND_CPU) return 0;
    return s_layout(s->presize, s->presize, s->size, s->size, s->max_n, s->threads, s->mixup).total;
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
// fused mode

// The source image (h, w, 3) as (h + 1, w + 1) RGBX words, the last column
// and row repeated; rows [r0, r1) of the padded image.
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

// Output row r of one image in fused mode: finished values (lighting,
// Normalize), interleaved, into out (W, 3). acc: 3 * W floats of scratch.
static void s_fused_row(const augment_batch_params_t *bp, const augment_image_params_t *ip,
                        const uint32_t *restrict rgbx, int r, float *restrict out,
                        float *restrict acc)
{
    const int W = bp->out_w, k = ip->ss, stride = bp->src_w + 1;
    float *restrict acc_r = acc, *restrict acc_g = acc + W, *restrict acc_b = acc + 2 * W;
    memset(acc, 0, 3 * (size_t)W * sizeof(float));
    static const float identity[8] = {1, 0, 0, 0, 1, 0, 0, 0};
    const float *m = ip->mat, *c = bp->warp_on ? ip->warp : identity;
    const float m0 = m[0], m3 = m[3], c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3], c4 = c[4],
                c5 = c[5], c6 = c[6], c7 = c[7];
    const float span_x = (float)(bp->src_w - 1), span_y = (float)(bp->src_h - 1);
    const float inv_x = 1.0f / span_x, inv_y = 1.0f / span_y;
    const float off_x = bp->f_off_x, scale_x = bp->f_scale_x, step_x = bp->a_step_x;
    const float half_w = bp->s_half_w, half_h = bp->s_half_h;
    const float step = 1.0f / (float)k, first = 0.5f * step - 0.5f;
    for (int i = 0; i < k; i++) {
        // the row's contribution to the affine map is constant along the row
        float ay = bp->f_off_y + ((float)r + first + (float)i * step) * bp->f_scale_y;
        float yo = ay * bp->a_step_y - 1.0f;
        const float ub = m[1] * yo + m[2], vb = m[4] * yo + m[5];
        for (int j = 0; j < k; j++) {
            const float cj = first + (float)j * step;
#pragma omp simd
            for (int col = 0; col < W; col++) {
                float ax = off_x + ((float)col + cj) * scale_x;
                float xo = ax * step_x - 1.0f;
                float u = m0 * xo + ub;
                float v = m3 * xo + vb;
                float rden = 1.0f / (c6 * u + c7 * v + 1.0f);
                float uw = (c0 * u + c1 * v + c2) * rden;
                float vw = (c3 * u + c4 * v + c5) * rden;
                float ix = s_reflect((uw + 1.0f) * half_w, span_x, inv_x);
                float iy = s_reflect((vw + 1.0f) * half_h, span_y, inv_y);
                float flx = __builtin_floorf(ix), fly = __builtin_floorf(iy);
                float fx = ix - flx, fy = iy - fly;
                int32_t o = (int32_t)fly * stride + (int32_t)flx;
                uint32_t p00 = rgbx[o], p01 = rgbx[o + 1], p10 = rgbx[o + stride],
                         p11 = rgbx[o + stride + 1];
                float w00 = (1.0f - fx) * (1.0f - fy), w01 = fx * (1.0f - fy);
                float w10 = (1.0f - fx) * fy, w11 = fx * fy;
                acc_r[col] += ((((w00 * (float)(p00 & 255u)) + w01 * (float)(p01 & 255u)) +
                                w10 * (float)(p10 & 255u)) + w11 * (float)(p11 & 255u));
                acc_g[col] += ((((w00 * (float)(p00 >> 8 & 255u)) + w01 * (float)(p01 >> 8 & 255u)) +
                                w10 * (float)(p10 >> 8 & 255u)) + w11 * (float)(p11 >> 8 & 255u));
                acc_b[col] += ((((w00 * (float)(p00 >> 16 & 255u)) + w01 * (float)(p01 >> 16 & 255u)) +
                                w10 * (float)(p10 >> 16 & 255u)) + w11 * (float)(p11 >> 16 & 255u));
            }
        }
    }
    // finish: average, /255, lighting, Normalize (mean 0 and 1/std 1 without
    // it); interleave. One branch-free loop per case.
    const float scale = 1.0f / (float)(k * k), odds = ip->bright_odds, con = ip->contrast;
    for (int ch = 0; ch < 3; ch++) {
        const float *a = acc + (size_t)ch * W;
        float *o = out + ch;
        const float mean = bp->mean[ch], istd = bp->inv_std[ch];
        if (!bp->light_on) {
#pragma omp simd
            for (int col = 0; col < W; col++) o[(size_t)col * 3] = ((a[col] * scale) * (1.0f / 255.0f) - mean) * istd;
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

// ---------------------------------------------------------------------------

static void s_store(void *out, augment_dtype_t dtype, size_t off, const float *v, size_t count)
{
    if (dtype == AUGMENT_DTYPE_F32) {
        memcpy((float *)out + off, v, count * sizeof(float));
        return;
    }
    uint16_t *o = (uint16_t *)out + off;
    for (size_t e = 0; e < count; e++) o[e] = augment_px_bf16(v[e]);
}

// One batch in flight: the arguments and where things live in the workspace.
typedef struct {
    const augment_transform_args_t *a;
    s_layout_t l;
    uint8_t *ws;
    float *mixbuf;                               // (n, H, W, 3) when mixing
    size_t src_stride, img_elems, row_elems;
    bool mix, fused;
} s_run_t;

// Output row r of image j into the Mixup rows or the output. block is the
// calling thread's workspace block; rgbx the packed image j (fused mode).
static void s_row(const s_run_t *R, int j, int r, uint8_t *block, const uint32_t *rgbx)
{
    const augment_transform_args_t *a = R->a;
    const augment_batch_params_t *bp = &a->batch;
    const augment_image_params_t *ip = &a->img[j];
    float *acc = (float *)(block + R->l.rows), *line = acc + 3 * (size_t)bp->out_w;
    size_t off = (size_t)j * R->img_elems + (size_t)r * R->row_elems;
    float *dst = R->mix ? R->mixbuf + off : line;
    if (R->fused) {
        s_fused_row(bp, ip, rgbx, r, dst, acc);
    } else {
        const uint8_t *src = a->src + (size_t)j * R->src_stride;
        for (int c = 0; c < bp->out_w; c++) augment_px_value(bp, ip, src, r, c, dst + (size_t)c * 3);
    }
    if (!R->mix) s_store(a->out, a->dtype, off, dst, R->row_elems);
}

void augment_transform_cpu(const augment_transform_args_t *a)
{
    const augment_batch_params_t *bp = &a->batch;
    const int n = bp->n, H = bp->out_h, threads = a->threads;
    NF_CHECK(threads >= 1, "threads %d", threads);
    s_run_t R = {.a = a,
                 .l = s_layout(bp->src_h, bp->src_w, H, bp->out_w, n, threads, bp->mix_on != 0),
                 .ws = a->ws,
                 .src_stride = (size_t)bp->src_h * (size_t)bp->src_w * 3,
                 .img_elems = (size_t)H * (size_t)bp->out_w * 3,
                 .row_elems = (size_t)bp->out_w * 3,
                 .mix = bp->mix_on != 0,
                 .fused = bp->resample == AUGMENT_RESAMPLE_FUSED};
    NF_CHECK(a->ws && R.l.total <= a->ws_bytes, "workspace of %zu bytes, %zu needed",
             a->ws_bytes, R.l.total);
    R.mixbuf = (float *)(R.ws + R.l.mix);

    // pass 1: every output row (to the Mixup rows when mixing). With at least
    // as many images as threads each thread takes whole images (no barrier
    // per image); otherwise the threads share the rows of one image at a time.
    if (n >= threads) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (int j = 0; j < n; j++) {
            uint8_t *block = R.ws + (size_t)omp_get_thread_num() * R.l.per_thread;
            uint32_t *rgbx = (uint32_t *)(block + R.l.rgbx);
            if (R.fused)
                s_pack_rows(a->src + (size_t)j * R.src_stride, bp->src_h, bp->src_w, rgbx, 0,
                            bp->src_h + 1);
            for (int r = 0; r < H; r++) s_row(&R, j, r, block, rgbx);
        }
    } else {
        uint32_t *rgbx = (uint32_t *)(R.ws + R.l.rgbx);  // thread 0's copy, shared
        for (int j = 0; j < n; j++) {
#pragma omp parallel num_threads(threads)
            {
                uint8_t *block = R.ws + (size_t)omp_get_thread_num() * R.l.per_thread;
                if (R.fused) {
#pragma omp for schedule(static)
                    for (int y = 0; y <= bp->src_h; y++)
                        s_pack_rows(a->src + (size_t)j * R.src_stride, bp->src_h, bp->src_w,
                                    rgbx, y, y + 1);
                }
#pragma omp for schedule(dynamic, 4)
                for (int r = 0; r < H; r++) s_row(&R, j, r, block, rgbx);
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
