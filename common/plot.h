/*
 * plot.h: line charts as PNG files (on common/image.h), for the pictures a
 * run writes: training/validation loss, learning rate and momentum, the
 * lr_find curve with its suggestion.
 *
 * What it draws: a frame, "nice" ticks with labels on both axes (powers of
 * ten on a log x axis), one polyline (or dots) per series in its colour, a
 * legend, a title and axis labels, and optionally a vertical marker.
 * Non-finite points are skipped (a gap in the line). What it does not do:
 * anti-aliasing, several y axes, log y.
 */
#ifndef NF_PLOT_H
#define NF_PLOT_H

#include "image.h"

#include <stdbool.h>

typedef struct {
    const double *x;    // (n)
    const double *y;    // (n)
    int n;
    nf_rgb_t color;
    const char *label;  // legend text, or NULL
    bool dots;          // points instead of a line
} nf_plot_series_t;

typedef struct {
    int w, h;                        // pixels; 0 = 720 x 440
    const char *title;
    const char *xlabel, *ylabel;
    bool log_x;                      // x > 0 only (others skipped)
    const nf_plot_series_t *series;
    int n_series;
    double mark_x;                   // vertical marker at this x (NaN = none)
    const char *mark_label;
} nf_plot_t;

// Renders the chart and writes it as a PNG (atomically). Returns 0, or -1
// (logged) when nothing can be plotted or the file cannot be written.
int nf_plot_png(const nf_plot_t *p, const char *path);

#endif
