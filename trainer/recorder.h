/*
 * recorder.h: fastai's training-loss smoothing and its per-epoch table, as
 * the trainer process prints them (fastai-spec.md §6.4).
 *
 *  - recorder_smooth_t is fastai's AvgSmoothLoss (beta 0.98): an exponential
 *    moving average of batch losses, debiased, reset at the start of every
 *    fit call (not every epoch), in float32 like the torch tensor it is.
 *  - recorder_table_t formats the table the way fastprogress's console bar
 *    does: each header name padded to 8 characters and joined by two spaces;
 *    each cell left-aligned under its column with two spaces after it;
 *    floats "%.6f", times as mm:ss (nf_format_time).
 *
 *     epoch     train_loss  valid_loss  accuracy  time
 *     0         1.583403    2.064317    0.401792  01:03
 *
 * Not here: the live progress bar, metrics files (the trainer process).
 */
#ifndef NF_RECORDER_H
#define NF_RECORDER_H

#include <stddef.h>

typedef struct {
    double beta; // 0.98 (a Python float in fastai)
    float val;   // the biased average
    int count;   // batches since reset
} recorder_smooth_t;

// A fresh smoother (fastai's AvgSmoothLoss(beta)).
recorder_smooth_t recorder_smooth_make(double beta);
void recorder_smooth_reset(recorder_smooth_t *s);
// Adds one batch loss; returns the debiased value val / (1 - beta^count).
float recorder_smooth_add(recorder_smooth_t *s, float loss);
// The current debiased value (NaN before the first batch).
float recorder_smooth_value(const recorder_smooth_t *s);

#define RECORDER_MAX_COLS 12
#define RECORDER_MAX_NAME 32

typedef struct {
    int n_cols;
    char names[RECORDER_MAX_COLS][RECORDER_MAX_NAME];  // padded to 8 characters
} recorder_table_t;

// Columns, e.g. {"epoch", "train_loss", "valid_loss", "accuracy", "time"}.
// Returns 0, or -1 for too many columns or a name too long.
int recorder_table_init(recorder_table_t *t, const char *const *names, int n);
// The header line (no newline) into buf; returns its length (snprintf rule).
int recorder_table_header(const recorder_table_t *t, char *buf, size_t len);
// One row from n_cols preformatted cells (no newline); returns its length.
int recorder_table_row(const recorder_table_t *t, const char *const *cells, char *buf,
                       size_t len);
// Python's f"{v:.6f}" ("nan", "inf", "-inf" for non-finite values).
const char *recorder_format_float(double v, char buf[48]);

#endif
