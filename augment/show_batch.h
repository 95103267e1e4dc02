/*
 * show_batch.h: fastai's show_batch for the augment stage: a PNG grid of an
 * augmented (and Mixup'd) batch, de-normalized for display, each picture
 * captioned with its class and Mixup weight ("tench 0.83" over
 * "+ church 0.17"), so a user can see what the model sees.
 */
#ifndef NF_AUGMENT_SHOW_BATCH_H
#define NF_AUGMENT_SHOW_BATCH_H

#include "augment.h"

typedef struct {
    const char *const *class_names;  // label -> caption text; NULL: the label number
    int n_classes;
    int cols;                        // pictures per row; 0 = ceil(sqrt(n))
    int max_images;                  // 0 = all of the batch
    bool normalized;                 // pixels are (x - mean) / std: undo it for display
    float mean[3], std[3];
    const char *title;               // one line above the grid, or NULL
} show_batch_config_t;

// Renders out (host memory, f32 or bf16) and writes the PNG atomically.
// Returns 0, or -1 (logged) when the file cannot be written.
int augment_show_batch(const augment_out_t *out, const show_batch_config_t *cfg, const char *path);

#endif
