/*
 * test_augment_data.c: the augment stage on real Imagenette pictures (skips
 * without NF_DATA_DIR):
 *   - the chapter's own check: a training batch normalized with
 *     imagenet_stats has per-channel mean near 0 and std near 1, and the raw
 *     batch has the mean/std of natural images;
 *   - Normalize() with stats computed from that batch (fastai's setups) makes
 *     the same batch exactly mean 0 / std 1;
 *   - show_batch writes a PNG of the grid's size that reads back with real
 *     content (not blank), in both resample modes.
 */
#include "augment.h"
#include "image.h"
#include "imgdir.h"
#include "show_batch.h"
#include "testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BS 32
#define PRESIZE 192
#define SIZE 128

static void s_channel_stats(const float *x, size_t pixels, double mean[3], double std[3])
{
    double s[3] = {0}, ss[3] = {0};
    for (size_t i = 0; i < pixels; i++)
        for (int c = 0; c < 3; c++) {
            s[c] += x[i * 3 + c];
            ss[c] += (double)x[i * 3 + c] * x[i * 3 + c];
        }
    for (int c = 0; c < 3; c++) {
        mean[c] = s[c] / pixels;
        std[c] = sqrt((ss[c] - s[c] * s[c] / pixels) / (pixels - 1));
    }
}

int main(void)
{
    const char *data = t_data_dir_or_skip();
    imgdir_t *dir = imgdir_open(data, "train");
    if (!dir) t_skip("no readable train split under %s", data);

    // BS pictures spread over the classes
    uint8_t *px = nf_xmalloc((size_t)BS * PRESIZE * PRESIZE * 3);
    int32_t labels[BS];
    uint32_t idx[BS];
    int got = 0;
    for (int k = 0; k < dir->n && got < BS; k += dir->n / BS) {
        if (imgdir_load(dir->paths[k], PRESIZE, px + (size_t)got * PRESIZE * PRESIZE * 3) != 0)
            continue;
        labels[got] = dir->labels[k];
        idx[got++] = (uint32_t)k;
    }
    T_CHECK(got == BS, "decoded %d of %d pictures", got, BS);

    augment_config_t cfg;
    augment_config_defaults(&cfg);
    cfg.size = SIZE;
    cfg.presize = PRESIZE;
    cfg.max_batch = BS;
    cfg.seed = 2024;
    augment_raw_t raw = {.pixels = px, .n = BS, .h = PRESIZE, .w = PRESIZE, .labels = labels,
                         .indices = idx, .epoch = 0, .seq = 0, .mode = AUGMENT_MODE_TRAIN};
    size_t pixels = (size_t)BS * SIZE * SIZE;
    float *x = nf_xmalloc(pixels * 3 * sizeof(float));
    augment_out_t out = {.pixels = x};
    double mean[3], std[3];

    // raw [0, 1] batch: natural-image statistics (the chapter printed mean
    // 0.48 0.47 0.45, std 0.29 0.29 0.31 for its batch)
    cfg.normalize = false;
    augment_t *aug = augment_new(&cfg);
    T_CHECK(augment_batch(aug, &out, &raw) == 0, "raw batch");
    s_channel_stats(x, pixels, mean, std);
    for (int c = 0; c < 3; c++) {
        T_CHECK(mean[c] > 0.35 && mean[c] < 0.6, "raw mean[%d] = %.3f", c, mean[c]);
        T_CHECK(std[c] > 0.2 && std[c] < 0.38, "raw std[%d] = %.3f", c, std[c]);
    }
    augment_destroy(&aug);

    // Normalize(imagenet_stats): near 0 / 1
    cfg.normalize = true;
    aug = augment_new(&cfg);
    T_CHECK(augment_batch(aug, &out, &raw) == 0, "normalized batch");
    s_channel_stats(x, pixels, mean, std);
    printf("imagenet-normalized batch: mean %.3f %.3f %.3f, std %.3f %.3f %.3f\n", mean[0], mean[1],
           mean[2], std[0], std[1], std[2]);
    for (int c = 0; c < 3; c++) {
        T_CHECK(fabs(mean[c]) < 0.35, "normalized mean[%d] = %.3f near 0", c, mean[c]);
        T_CHECK(std[c] > 0.8 && std[c] < 1.45, "normalized std[%d] = %.3f near 1", c, std[c]);
    }

    // Normalize() from this very batch: exactly 0 / 1 on it
    float cm[3], cs[3];
    T_CHECK(augment_compute_stats(aug, &raw, cm, cs) == 0, "computed stats");
    augment_set_stats(aug, cm, cs);
    T_CHECK(augment_batch(aug, &out, &raw) == 0, "batch with computed stats");
    s_channel_stats(x, pixels, mean, std);
    for (int c = 0; c < 3; c++) {
        T_NEAR(mean[c], 0.0, 1e-4);
        T_NEAR(std[c], 1.0, 1e-3);
    }
    augment_destroy(&aug);

    // show_batch in both modes, with Mixup
    const char **names = nf_xmalloc((size_t)dir->n_classes * sizeof *names);
    for (int c = 0; c < dir->n_classes; c++) names[c] = imgdir_class_name(dir->classes[c]);
    for (int m = 0; m < 2; m++) {
        cfg.resample = m ? AUGMENT_RESAMPLE_REFERENCE : AUGMENT_RESAMPLE_FUSED;
        cfg.mixup_alpha = 0.4f;
        cfg.normalize = true;
        aug = augment_new(&cfg);
        int32_t lab[BS], part[BS];
        float w[BS];
        augment_out_t o = {.pixels = x, .labels = lab, .partner_labels = part, .weights = w};
        T_CHECK(augment_batch(aug, &o, &raw) == 0, "mixup batch");
        int mixed = 0;
        for (int i = 0; i < BS; i++) mixed += w[i] < 1.0f;
        T_CHECK(mixed > BS / 2, "most rows mixed (%d)", mixed);
        show_batch_config_t sc = {.class_names = names, .n_classes = dir->n_classes, .cols = 4,
                                  .max_images = 8, .normalized = true, .title = "test"};
        memcpy(sc.mean, cfg.mean, sizeof sc.mean);
        memcpy(sc.std, cfg.std, sizeof sc.std);
        char path[512];
        snprintf(path, sizeof path, "%s/batch_%d.png", t_tmpdir(), m);
        T_CHECK(augment_show_batch(&o, &sc, path) == 0, "show_batch %s", path);
        nf_image_t *im = nf_image_read_png(path);
        T_CHECK(im != NULL, "PNG reads back");
        if (im) {
            T_CHECK(im->w > 4 * SIZE && im->h > 2 * SIZE, "grid of 4 x 2 pictures (%dx%d)", im->w,
                    im->h);
            double s = 0, ss = 0;
            size_t n = (size_t)im->w * im->h * 3;
            for (size_t e = 0; e < n; e++) {
                s += im->px[e];
                ss += (double)im->px[e] * im->px[e];
            }
            double sd = sqrt(ss / n - (s / n) * (s / n));
            T_CHECK(sd > 30.0, "the grid has picture content (std %.1f)", sd);
        }
        nf_image_destroy(&im);
        augment_destroy(&aug);
    }
    free(names);
    free(x);
    free(px);
    imgdir_destroy(&dir);
    return t_done();
}
