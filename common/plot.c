/*
 * plot.c: see plot.h. Data ranges -> nice ticks -> pixels; lines with
 * nf_image_line, text with the built-in font.
 */
#include "plot.h"

#include "log.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const nf_rgb_t S_BG = {255, 255, 255}, S_FG = {40, 40, 40}, S_GRID = {228, 228, 228};

typedef struct {
    double lo, hi;  // data range shown (log10 units on a log axis)
    bool log;
    int p0, p1;     // pixel range
} s_axis_t;

static double s_val(const s_axis_t *a, double v) { return a->log ? log10(v) : v; }

static int s_px(const s_axis_t *a, double v)
{
    double t = (s_val(a, v) - a->lo) / (a->hi - a->lo);
    return a->p0 + (int)lround(t * (a->p1 - a->p0));
}

// A "nice" tick step (1, 2 or 5 times a power of ten) for about `want` ticks.
static double s_step(double span, int want)
{
    double raw = span / want, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1.0 : f < 3.5 ? 2.0 : f < 7.5 ? 5.0 : 10.0) * mag;
}

static void s_fmt(double v, double step, char *buf, size_t len)
{
    if (fabs(v) < step * 1e-6) v = 0.0;
    if (step >= 1.0 && fabs(v) < 1e6) snprintf(buf, len, "%.0f", v);
    else if (step >= 0.01 && fabs(v) < 1e6) snprintf(buf, len, "%.*f", step >= 0.1 ? 1 : 2, v);
    else snprintf(buf, len, "%.0e", v);
}

static bool s_ok(const s_axis_t *a, double v) { return isfinite(v) && (!a->log || v > 0.0); }

int nf_plot_png(const nf_plot_t *p, const char *path)
{
    int w = p->w ? p->w : 720, h = p->h ? p->h : 440;
    s_axis_t ax = {.lo = INFINITY, .hi = -INFINITY, .log = p->log_x};
    s_axis_t ay = {.lo = INFINITY, .hi = -INFINITY};
    for (int s = 0; s < p->n_series; s++)
        for (int i = 0; i < p->series[s].n; i++) {
            double x = p->series[s].x[i], y = p->series[s].y[i];
            if (!s_ok(&ax, x) || !isfinite(y)) continue;
            ax.lo = fmin(ax.lo, s_val(&ax, x));
            ax.hi = fmax(ax.hi, s_val(&ax, x));
            ay.lo = fmin(ay.lo, y);
            ay.hi = fmax(ay.hi, y);
        }
    if (!(ax.lo <= ax.hi) || !(ay.lo <= ay.hi)) {
        nf_log_warn("plot %s: no finite points to draw", path);
        return -1;
    }
    if (ax.hi - ax.lo < 1e-12) ax.hi = ax.lo + 1.0;
    if (ay.hi - ay.lo < 1e-12) {
        ay.lo -= 0.5;
        ay.hi += 0.5;
    }
    double pad = 0.05 * (ay.hi - ay.lo);
    ay.lo -= pad;
    ay.hi += pad;
    const int left = 70, right = 20, top = 34, bottom = 48;
    ax.p0 = left;
    ax.p1 = w - right;
    ay.p0 = h - bottom;
    ay.p1 = top;
    nf_image_t *im = nf_image_new(w, h, S_BG);
    char buf[64];

    // grid and tick labels
    double ys = s_step(ay.hi - ay.lo, 6);
    for (double v = ceil(ay.lo / ys) * ys; v <= ay.hi; v += ys) {
        int y = s_px(&ay, v);
        nf_image_line(im, left, y, w - right, y, S_GRID);
        s_fmt(v, ys, buf, sizeof buf);
        nf_image_text(im, left - 6 - nf_image_text_width(buf, 1), y - 4, buf, S_FG, 1);
    }
    if (ax.log) {
        for (double e = ceil(ax.lo); e <= floor(ax.hi); e += 1.0) {
            int x = s_px(&ax, pow(10.0, e));
            nf_image_line(im, x, top, x, h - bottom, S_GRID);
            snprintf(buf, sizeof buf, "1e%+03d", (int)e);
            nf_image_text(im, x - nf_image_text_width(buf, 1) / 2, h - bottom + 6, buf, S_FG, 1);
        }
    } else {
        double xs = s_step(ax.hi - ax.lo, 8);
        for (double v = ceil(ax.lo / xs) * xs; v <= ax.hi; v += xs) {
            int x = s_px(&ax, v);
            nf_image_line(im, x, top, x, h - bottom, S_GRID);
            s_fmt(v, xs, buf, sizeof buf);
            nf_image_text(im, x - nf_image_text_width(buf, 1) / 2, h - bottom + 6, buf, S_FG, 1);
        }
    }
    nf_image_rect_outline(im, left, top, w - left - right + 1, h - top - bottom + 1, S_FG);

    // marker
    if (isfinite(p->mark_x) && s_ok(&ax, p->mark_x)) {
        int x = s_px(&ax, p->mark_x);
        const nf_rgb_t red = {200, 30, 30};
        for (int y = top; y < h - bottom; y += 6) nf_image_line(im, x, y, x, y + 3, red);
        if (p->mark_label) nf_image_text(im, x + 4, top + 4, p->mark_label, red, 1);
    }

    // series
    for (int s = 0; s < p->n_series; s++) {
        const nf_plot_series_t *se = &p->series[s];
        int px = 0, py = 0;
        bool have = false;
        for (int i = 0; i < se->n; i++) {
            if (!s_ok(&ax, se->x[i]) || !isfinite(se->y[i])) {
                have = false;
                continue;
            }
            int x = s_px(&ax, se->x[i]), y = s_px(&ay, se->y[i]);
            if (se->dots) nf_image_rect(im, x - 2, y - 2, 5, 5, se->color);
            else if (have) {
                nf_image_line(im, px, py, x, y, se->color);
                nf_image_line(im, px, py + 1, x, y + 1, se->color);
            }
            px = x;
            py = y;
            have = true;
        }
    }

    // legend, title, labels
    int ly = top + 6;
    for (int s = 0; s < p->n_series; s++) {
        if (!p->series[s].label) continue;
        int tw = nf_image_text_width(p->series[s].label, 1);
        int x = w - right - tw - 26;
        nf_image_rect(im, x, ly + 2, 14, 4, p->series[s].color);
        nf_image_text(im, x + 18, ly, p->series[s].label, S_FG, 1);
        ly += NF_FONT_LINE + 4;
    }
    if (p->title) nf_image_text(im, left, 8, p->title, S_FG, 2);
    if (p->xlabel)
        nf_image_text(im, left + (w - left - right - nf_image_text_width(p->xlabel, 1)) / 2,
                      h - bottom + 24, p->xlabel, S_FG, 1);
    if (p->ylabel) nf_image_text(im, 4, top - 12, p->ylabel, S_FG, 1);
    int rc = nf_image_write_png(im, path);
    nf_image_destroy(&im);
    return rc;
}
