/*
 * progress.h: a live progress bar on stderr, as tqdm/fastprogress draw it:
 *
 *   epoch 3/10 |███████▌        |  91/147 [00:35<00:21, 165.3 img/s]
 *
 * drawn only when stderr is a terminal (never into logs or pipes), redrawn
 * at most ten times a second, erased before the caller prints a table row
 * on stdout (progress_clear), so the table stays clean.
 */
#ifndef NF_TRAINER_PROGRESS_H
#define NF_TRAINER_PROGRESS_H

#include <stdbool.h>

typedef struct {
    bool enabled;      // stderr is a terminal
    bool drawn;        // a bar is on the screen
    char desc[64];
    int total, done;
    double images;     // processed in this bar
    double t0, last;   // start, last redraw
} progress_t;

// enabled = isatty(stderr), unless NF_NO_BAR is set.
void progress_init(progress_t *p);
void progress_begin(progress_t *p, const char *desc, int total);
// done items of total; images processed so far in this bar.
void progress_update(progress_t *p, int done, double images);
// Erases the bar (the next update draws it again).
void progress_clear(progress_t *p);

#endif
