/*
 * show_batch.c: see show_batch.h. Each cell is the picture at its own size
 * (pictures under 128 px are drawn 2x) with one or two caption lines under
 * it, on a white sheet; captions are cut to the cell width.
 */
#include "show_batch.h"

#include "check.h"
#include "image.h"
#include "pixel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const nf_rgb_t s_white = {255, 255, 255}, s_black = {0, 0, 0}, s_grey = {90, 90, 90},
                      s_blue = {20, 60, 170};

static void s_label(const show_batch_config_t *cfg, int32_t label, char *buf, size_t len)
{
    if (cfg->class_names && label >= 0 && label < cfg->n_classes)
        snprintf(buf, len, "%s", cfg->class_names[label]);
    else
        snprintf(buf, len, "%d", (int)label);
}

// Draws text cut to max_w pixels.
static void s_caption(nf_image_t *im, int x, int y, const char *text, int max_w, nf_rgb_t c, int ts)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", text);
    size_t fit = (size_t)(max_w / (NF_FONT_ADVANCE * ts));
    if (strlen(buf) > fit && fit < sizeof buf) buf[fit] = 0;
    nf_image_text(im, x, y, buf, c, ts);
}

int augment_show_batch(const augment_out_t *out, const show_batch_config_t *cfg, const char *path)
{
    int n = out->n;
    if (cfg->max_images > 0 && cfg->max_images < n) n = cfg->max_images;
    NF_CHECK(n >= 1 && out->c == 3 && out->h > 0 && out->w > 0, "show_batch of an empty batch");
    int cols = cfg->cols > 0 ? cfg->cols : (int)ceil(sqrt((double)n));
    if (cols > n) cols = n;
    int rows = (n + cols - 1) / cols;
    int zoom = out->w < 128 ? 2 : 1, ts = out->w * zoom >= 160 ? 2 : 1;
    int pad = 8, line = NF_FONT_LINE * ts;
    int cell_w = out->w * zoom, cell_h = out->h * zoom + 2 * line + 4;
    int top = cfg->title ? line + pad : 0;
    int W = pad + cols * (cell_w + pad), H = pad + top + rows * (cell_h + pad);
    nf_image_t *im = nf_image_new(W, H, s_white);
    if (cfg->title) s_caption(im, pad, pad, cfg->title, W - 2 * pad, s_black, ts);

    size_t per = (size_t)out->h * out->w * 3;
    uint8_t *rgb = nf_xmalloc(per);
    for (int i = 0; i < n; i++) {
        // de-normalize (x * std + mean), then fastai's decode: clamp to [0, 1] * 255
        for (size_t e = 0; e < per; e++) {
            size_t k = (size_t)i * per + e;
            float v = out->dtype == AUGMENT_DTYPE_F32
                          ? ((const float *)out->pixels)[k]
                          : augment_px_from_bf16(((const uint16_t *)out->pixels)[k]);
            int c = (int)(e % 3);
            if (cfg->normalized) v = v * cfg->std[c] + cfg->mean[c];
            v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            rgb[e] = (uint8_t)(v * 255.0f);
        }
        int x = pad + (i % cols) * (cell_w + pad), y = pad + top + (i / cols) * (cell_h + pad);
        nf_image_blit(im, x, y, rgb, out->w, out->h, zoom);
        char name[96], text[128];
        s_label(cfg, out->labels ? out->labels[i] : -1, name, sizeof name);
        float w = out->weights ? out->weights[i] : 1.0f;
        int ty = y + out->h * zoom + 2;
        if (w < 1.0f && out->partner_labels) {
            snprintf(text, sizeof text, "%s %.2f", name, (double)w);
            s_caption(im, x, ty, text, cell_w, s_black, ts);
            s_label(cfg, out->partner_labels[i], name, sizeof name);
            snprintf(text, sizeof text, "+ %s %.2f", name, (double)(1.0f - w));
            s_caption(im, x, ty + line, text, cell_w, s_blue, ts);
        } else {
            s_caption(im, x, ty, name, cell_w, s_black, ts);
        }
    }
    nf_image_rect_outline(im, 0, 0, W, H, s_grey);
    free(rgb);
    int rc = nf_image_write_png(im, path);
    nf_image_destroy(&im);
    return rc;
}
