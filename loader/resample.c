/*
 * resample.c: see resample.h. Pillow's 8-bit two-pass BILINEAR resize, with the
 * same double-precision coefficients, the same rounding to 22-bit fixed point
 * and the same accumulation, laid out for vectorisation.
 */
#include "resample.h"

#include "check.h"
#include "resample_simd.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#define S_PRECISION_BITS (32 - 8 - 2)
#define S_HALF (1 << (S_PRECISION_BITS - 1))

typedef struct {
    int ksize;
    int32_t *bounds;  // (out, 2): first source index, number of taps
    int32_t *k;       // (out, ksize) fixed-point weights
} s_coeffs_t;

static double s_triangle(double x)
{
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static int s_ksize(float in0, float in1, uint32_t out_size)
{
    double scale = (double)(in1 - in0) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    return (int)ceil(1.0 * filterscale) * 2 + 1;
}

// Pillow precompute_coeffs + normalize_coeffs_8bpc for one axis. tmp holds ksize doubles.
static void s_coeffs(int in_size, float in0, float in1, int out_size, s_coeffs_t *c, double *tmp)
{
    double scale = (double)(in1 - in0) / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    double ss = 1.0 / filterscale;
    for (int xx = 0; xx < out_size; xx++) {
        double center = in0 + (xx + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            double w = s_triangle((x + xmin - center + 0.5) * ss);
            tmp[x] = w;
            ww += w;
        }
        int32_t *k = &c->k[(size_t)xx * c->ksize];
        for (int x = 0; x < c->ksize; x++) {
            double w = 0.0;
            if (x < xmax) w = ww != 0.0 ? tmp[x] / ww : tmp[x];
            k[x] = w < 0 ? (int32_t)(-0.5 + w * (1 << S_PRECISION_BITS))
                         : (int32_t)(0.5 + w * (1 << S_PRECISION_BITS));
        }
        c->bounds[2 * xx] = xmin;
        c->bounds[2 * xx + 1] = xmax;
    }
}

static inline uint8_t s_clip8(int32_t v)
{
    v >>= S_PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

// ---------------------------------------------------------------------------
// workspace layout

typedef struct {
    s_coeffs_t h, v;
    int kpairs;       // horizontal taps padded to pairs (an upper bound for the layout)
    int32_t *wsimd;   // (out_w / 2, kpairs, 2, 8) weights of the SIMD row pass
    uint8_t *block;   // (in_w, 32) the SIMD row-block pass's transposed rows
    double *tmp;      // (max ksize)
    uint8_t *rows;    // (n_rows, out_w, 3) horizontal pass output
    int32_t *acc;     // (out_w * 3) vertical accumulators
    size_t bytes;
} s_layout_t;

static size_t s_align(size_t n) { return (n + 63) & ~(size_t)63; }

static void s_layout(const loader_resample_params_t *p, uint8_t *base, s_layout_t *l)
{
    l->h.ksize = s_ksize(p->box[0], p->box[2], p->out_w);
    l->v.ksize = s_ksize(p->box[1], p->box[3], p->out_h);
    int kmax = l->h.ksize > l->v.ksize ? l->h.ksize : l->v.ksize;
    l->kpairs = (l->h.ksize + 1) / 2;
    size_t off = 0;
#define S_TAKE(ptr, type, count)                                                             \
    do {                                                                                     \
        (ptr) = (type *)(base ? base + off : NULL);                                          \
        off += s_align((size_t)(count) * sizeof(type));                                      \
    } while (0)
    S_TAKE(l->h.bounds, int32_t, 2 * (size_t)p->out_w);
    S_TAKE(l->h.k, int32_t, (size_t)p->out_w * l->h.ksize);
    S_TAKE(l->v.bounds, int32_t, 2 * (size_t)p->out_h);
    S_TAKE(l->v.k, int32_t, (size_t)p->out_h * l->v.ksize);
    S_TAKE(l->wsimd, int32_t, ((size_t)p->out_w / 2 + 1) * l->kpairs * 16);
    S_TAKE(l->block, uint8_t, (size_t)p->in_w * 32);
    S_TAKE(l->tmp, double, kmax);
    S_TAKE(l->rows, uint8_t, (size_t)p->in_h * p->out_w * 3);
    S_TAKE(l->acc, int32_t, (size_t)p->out_w * 3);
#undef S_TAKE
    l->bytes = off;
}

size_t loader_resample_workspace_bytes(const loader_resample_params_t *p)
{
    s_layout_t l;
    s_layout(p, NULL, &l);
    return l.bytes;
}

// ---------------------------------------------------------------------------
// passes

// One row, horizontal: out[xx] = sum_k in[xmin+k] * w_k, per channel, for
// outputs [from, out_w).
static void s_horizontal_row(const s_coeffs_t *c, int from, int out_w, const uint8_t *in,
                             uint8_t *out)
{
    const int ks = c->ksize;
    for (int xx = from; xx < out_w; xx++) {
        const int32_t *k = &c->k[(size_t)xx * ks];
        const uint8_t *src = in + (size_t)c->bounds[2 * xx] * 3;
        const int n = c->bounds[2 * xx + 1];
        int32_t s0 = S_HALF, s1 = S_HALF, s2 = S_HALF;
        for (int x = 0; x < n; x++) {
            s0 += src[3 * x + 0] * k[x];
            s1 += src[3 * x + 1] * k[x];
            s2 += src[3 * x + 2] * k[x];
        }
        out[3 * xx + 0] = s_clip8(s0);
        out[3 * xx + 1] = s_clip8(s1);
        out[3 * xx + 2] = s_clip8(s2);
    }
}

// The SIMD pass's weights (resample_simd.h): w = hi << 11 | lo, packed in
// int16 pairs per tap pair, laid out per pair of outputs; and how many leading
// outputs it can do without reading past the row.
static void s_simd_setup(const s_layout_t *l, int in_w, int out_w, loader_hpass_t *hp)
{
    const int ks = l->h.ksize;
    int max_taps = 1, simd_w = 0;
    for (int xx = 0; xx < out_w; xx++)
        if (l->h.bounds[2 * xx + 1] > max_taps) max_taps = l->h.bounds[2 * xx + 1];
    const int kp = (max_taps + 1) / 2;
    NF_CHECK(kp <= l->kpairs, "%d tap pairs, room for %d", kp, l->kpairs);
    while (simd_w + 2 <= out_w && l->h.bounds[2 * (simd_w + 1)] + 2 * kp <= in_w - 1) simd_w += 2;
    int32_t *w = l->wsimd;
    for (int xx = 0; xx < simd_w; xx += 2) {
        for (int p = 0; p < kp; p++, w += 16) {
            for (int lane = 0; lane < 2; lane++) {
                const int32_t *k = &l->h.k[(size_t)(xx + lane) * ks];
                int32_t w0 = 2 * p < ks ? k[2 * p] : 0, w1 = 2 * p + 1 < ks ? k[2 * p + 1] : 0;
                uint32_t hi = (uint32_t)(w1 >> 11) << 16 | (uint32_t)(w0 >> 11);
                uint32_t lo = (uint32_t)(w1 & 0x7FF) << 16 | (uint32_t)(w0 & 0x7FF);
                for (int i = 0; i < 4; i++) {
                    w[4 * lane + i] = (int32_t)hi;
                    w[8 + 4 * lane + i] = (int32_t)lo;
                }
            }
        }
    }
    *hp = (loader_hpass_t){.simd_w = simd_w, .kpairs = kp, .bounds = l->h.bounds, .w = l->wsimd,
                           .out_w = out_w, .in_w = in_w, .ksize = ks, .k = l->h.k,
                           .scratch = l->block};
}

// One output row, vertical: acc[i] = sum_k rows[ymin+k][i] * w_k over all
// out_w*3 bytes; the inner loop is a plain multiply-add over a row, which the
// compiler vectorises.
static void s_vertical_row(const int32_t *k, int ymin, int n, const uint8_t *rows,
                           size_t row_stride, size_t width, int32_t *acc, uint8_t *out)
{
    for (size_t i = 0; i < width; i++) acc[i] = S_HALF;
    for (int y = 0; y < n; y++) {
        const uint8_t *r = rows + (size_t)(ymin + y) * row_stride;
        const int32_t w = k[y];
        for (size_t i = 0; i < width; i++) acc[i] += r[i] * w;
    }
    for (size_t i = 0; i < width; i++) out[i] = s_clip8(acc[i]);
}

void loader_resample_rgb(const loader_resample_params_t *p, const uint8_t *in, size_t in_stride,
                         uint8_t *out, void *workspace)
{
    NF_CHECK(p->in_w > 0 && p->in_h > 0 && p->out_w > 0 && p->out_h > 0, "empty image");
    NF_CHECK(p->box[0] >= 0 && p->box[1] >= 0 && p->box[2] <= (float)p->in_w &&
                 p->box[3] <= (float)p->in_h && p->box[0] < p->box[2] && p->box[1] < p->box[3],
             "box %g,%g,%g,%g outside %ux%u", p->box[0], p->box[1], p->box[2], p->box[3],
             p->in_w, p->in_h);
    NF_CHECK(in_stride >= (size_t)p->in_w * 3, "stride %zu", in_stride);
    s_layout_t l;
    s_layout(p, workspace, &l);
    const int out_w = (int)p->out_w, out_h = (int)p->out_h;
    const size_t width = (size_t)out_w * 3;

    bool need_h = p->out_w != p->in_w || p->box[0] != 0 || p->box[2] != (float)p->out_w;
    bool need_v = p->out_h != p->in_h || p->box[1] != 0 || p->box[3] != (float)p->out_h;
    s_coeffs(p->in_h, p->box[1], p->box[3], out_h, &l.v, l.tmp);
    int y_first = l.v.bounds[0];
    int y_last = l.v.bounds[2 * out_h - 2] + l.v.bounds[2 * out_h - 1];

    const uint8_t *src = in;
    size_t src_stride = in_stride;
    int row0 = 0;  // the vertical bounds are relative to this source row
    if (need_h) {
        s_coeffs(p->in_w, p->box[0], p->box[2], out_w, &l.h, l.tmp);
        uint8_t *dst = need_v ? l.rows : out;
        loader_hrow_fn simd = p->scalar ? NULL : loader_resample_simd_hrow();
        loader_hblock_fn block = simd ? loader_resample_simd_hblock() : NULL;
        loader_hpass_t hp;
        int done = 0;
        if (simd) {
            s_simd_setup(&l, (int)p->in_w, out_w, &hp);
            done = hp.simd_w;
        }
        int y = y_first;
        for (; block && y + 8 <= y_last; y += 8)
            block(&hp, in + (size_t)y * in_stride, in_stride, dst + (size_t)(y - y_first) * width,
                  width);
        for (; y < y_last; y++) {
            const uint8_t *row = in + (size_t)y * in_stride;
            uint8_t *o = dst + (size_t)(y - y_first) * width;
            if (done) simd(&hp, row, o);
            s_horizontal_row(&l.h, done, out_w, row, o);
        }
        if (!need_v) return;
        src = l.rows;
        src_stride = width;
        row0 = y_first;
    }
    if (need_v) {
        for (int yy = 0; yy < out_h; yy++)
            s_vertical_row(&l.v.k[(size_t)yy * l.v.ksize], l.v.bounds[2 * yy] - row0,
                           l.v.bounds[2 * yy + 1], src, src_stride, width, l.acc,
                           out + (size_t)yy * width);
        return;
    }
    for (int y = 0; y < out_h; y++) memcpy(out + (size_t)y * width, in + (size_t)y * in_stride, width);
}
