/*
 * synth.c: see synth.h. Each picture: two colours with enough contrast, a
 * class shape in local coordinates (random centre, scale, small rotation,
 * frequency and phase), per-pixel noise, TurboJPEG at the given quality.
 */
#include "synth.h"

#include "check.h"
#include "fsutil.h"
#include "rng.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

// Shapes that a horizontal flip and a small rotation (the training
// augmentations) keep apart: no pair of classes is the mirror of another.
static const char *const s_names[] = {
    "stripes-horizontal", "stripes-vertical", "disc",   "ring",    "checkerboard", "plus",
    "x-cross",            "triangle",         "dots",   "square",  "diamond",      "target",
};
enum { S_KINDS = (int)NF_ARRAY_LEN(s_names) };

const char *loader_synth_class_name(uint32_t k) { return k < S_KINDS ? s_names[k] : "?"; }

typedef struct {
    float cx, cy, r, freq, phase, cos_a, sin_a;
} s_geom_t;

// 1 where the shape of class k covers local point (u, v), else 0.
static int s_inside(int k, const s_geom_t *g, float u, float v)
{
    float ru = g->cos_a * u - g->sin_a * v, rv = g->sin_a * u + g->cos_a * v;
    float d = sqrtf(ru * ru + rv * rv), r = g->r, w = 0.28f * r;
    float tau = 2.0f * (float)M_PI;
    switch (k) {
    case 0: return sinf(tau * g->freq * rv + g->phase) > 0.0f;
    case 1: return sinf(tau * g->freq * ru + g->phase) > 0.0f;
    case 2: return d < r;
    case 3: return d < r && d > 0.6f * r;
    case 4: return sinf(tau * g->freq * ru + g->phase) * sinf(tau * g->freq * rv + g->phase) > 0.0f;
    case 5: return (fabsf(ru) < w && fabsf(rv) < r) || (fabsf(rv) < w && fabsf(ru) < r);
    case 6: {
        float a = (ru + rv) * 0.70710678f, b = (ru - rv) * 0.70710678f;
        return (fabsf(a) < w && fabsf(b) < r) || (fabsf(b) < w && fabsf(a) < r);
    }
    case 7: return rv > -r && rv < r && fabsf(ru) < 0.5f * (rv + r);
    case 8: {
        float fu = ru * g->freq + g->phase, fv = rv * g->freq + g->phase;
        float du = fu - floorf(fu) - 0.5f, dv = fv - floorf(fv) - 0.5f;
        return du * du + dv * dv < 0.09f;
    }
    case 9: {
        float m = fmaxf(fabsf(ru), fabsf(rv));
        return m < r && m > 0.62f * r;
    }
    case 10: return fabsf(ru) + fabsf(rv) < r;
    default: return sinf(tau * g->freq * d + g->phase) > 0.0f;
    }
}

static float s_luma(const uint8_t c[3]) { return 0.299f * c[0] + 0.587f * c[1] + 0.114f * c[2]; }

// Renders picture `index` of class k into rgb (h, w, 3).
static void s_render(uint64_t seed, uint32_t split, uint32_t index, int k, uint32_t w, uint32_t h,
                     uint8_t *rgb)
{
    // stream TEST, epoch word 0x5917 + split: generated data only
    nf_rng_t g = nf_rng_make(seed, NF_RNG_STREAM_TEST, 0x5917u + split, index);
    uint8_t bg[3], fg[3];
    for (int c = 0; c < 3; c++) bg[c] = (uint8_t)nf_rng_below(&g, 256);
    do {
        for (int c = 0; c < 3; c++) fg[c] = (uint8_t)nf_rng_below(&g, 256);
    } while (fabsf(s_luma(fg) - s_luma(bg)) < 70.0f);
    float angle = nf_rng_range(&g, -0.25f, 0.25f);
    s_geom_t geo = {.cx = nf_rng_range(&g, -0.2f, 0.2f), .cy = nf_rng_range(&g, -0.2f, 0.2f),
                    .r = nf_rng_range(&g, 0.5f, 0.85f), .freq = nf_rng_range(&g, 2.0f, 3.5f),
                    .phase = nf_rng_range(&g, 0.0f, 6.2831853f), .cos_a = cosf(angle),
                    .sin_a = sinf(angle)};
    float half = 0.5f * (float)(w < h ? w : h);
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            float u = ((float)x + 0.5f - 0.5f * (float)w) / half - geo.cx;
            float v = ((float)y + 0.5f - 0.5f * (float)h) / half - geo.cy;
            const uint8_t *c = s_inside(k, &geo, u, v) ? fg : bg;
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            for (int ch = 0; ch < 3; ch++) {
                int val = (int)c[ch] + (int)nf_rng_below(&g, 41) - 20;
                p[ch] = (uint8_t)(val < 0 ? 0 : val > 255 ? 255 : val);
            }
        }
}

// Plain write (no fsync per file: a generated dataset is rebuilt, not recovered).
static int s_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = fwrite(data, 1, len, f);
    int rc = n == len ? 0 : -1;
    if (fclose(f) != 0) rc = -1;
    if (rc != 0) (void)remove(path);
    return rc;
}

static bool s_dir_empty_or_missing(const char *path)
{
    DIR *d = opendir(path);
    if (!d) return errno == ENOENT;
    bool empty = true;
    for (struct dirent *e; empty && (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) empty = false;
    closedir(d);
    return empty;
}

int loader_synth_generate(const loader_synth_config_t *cfg, char *err, size_t errlen)
{
    uint32_t classes = cfg->classes ? cfg->classes : 10;
    uint32_t n_train = cfg->train_per_class ? cfg->train_per_class : 100;
    uint32_t n_valid = cfg->valid_per_class ? cfg->valid_per_class : 30;
    uint32_t lo = cfg->min_side ? cfg->min_side : 72, hi = cfg->max_side ? cfg->max_side : 112;
    int quality = cfg->quality ? cfg->quality : 90;
    uint64_t seed = cfg->seed ? cfg->seed : 42;
    if (!cfg->out || !cfg->out[0]) {
        snprintf(err, errlen, "no output folder given");
        return -1;
    }
    if (classes < 2 || classes > S_KINDS || lo < 8 || hi < lo || hi > 4096 || quality < 1 ||
        quality > 100 || n_train > 100000 || n_valid > 100000) {
        snprintf(err, errlen, "bad settings: 2..%d classes, 8 <= min side <= max side <= 4096, "
                 "quality 1..100", S_KINDS);
        return -1;
    }
    if (!s_dir_empty_or_missing(cfg->out)) {
        snprintf(err, errlen, "%s exists and is not empty", cfg->out);
        return -1;
    }
    tjhandle tj = tjInitCompress();
    if (!tj) {
        snprintf(err, errlen, "tjInitCompress: %s", tjGetErrorStr2(NULL));
        return -1;
    }
    uint8_t *rgb = nf_xmalloc((size_t)hi * hi * 3);
    char path[4096];
    int rc = 0;
    for (uint32_t split = 0; split < 2 && rc == 0; split++) {
        uint32_t per = split == 0 ? n_train : n_valid;
        for (uint32_t k = 0; k < classes && rc == 0; k++) {
            snprintf(path, sizeof path, "%s/%s/%s", cfg->out, split == 0 ? "train" : "val",
                     s_names[k]);
            if (nf_mkdir_p(path) != 0) {
                snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
                rc = -1;
                break;
            }
            for (uint32_t i = 0; i < per && rc == 0; i++) {
                uint32_t index = k * per + i;
                nf_rng_t sz = nf_rng_make(seed, NF_RNG_STREAM_TEST, 0x5A00u + split, index);
                uint32_t w = lo + nf_rng_below(&sz, hi - lo + 1);
                uint32_t h = lo + nf_rng_below(&sz, hi - lo + 1);
                s_render(seed, split, index, (int)k, w, h, rgb);
                unsigned char *jpeg = NULL;
                unsigned long size = 0;
                if (tjCompress2(tj, rgb, (int)w, 0, (int)h, TJPF_RGB, &jpeg, &size, TJSAMP_420,
                                quality, 0) != 0) {
                    snprintf(err, errlen, "tjCompress2: %s", tjGetErrorStr2(tj));
                    rc = -1;
                    break;
                }
                snprintf(path, sizeof path, "%s/%s/%s/%05u.jpg", cfg->out,
                         split == 0 ? "train" : "val", s_names[k], i);
                if (s_write(path, jpeg, size) != 0) {
                    snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
                    rc = -1;
                }
                tjFree(jpeg);
            }
        }
    }
    free(rgb);
    tjDestroy(tj);
    return rc;
}
