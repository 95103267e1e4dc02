/*
 * image.h: an 8-bit RGB canvas with PNG output, lines, rectangles and a small
 * built-in bitmap font, for pictures a run writes: show_batch grids, loss and
 * learning-rate curves, confusion tables.
 *
 * What it is: plain drawing into a raw (h, w, 3) uint8 buffer, every drawing
 * call clipped to the canvas (nothing draws outside it, coordinates may be
 * negative or past the edge), PNG written atomically through libpng and read
 * back through libpng.
 * What it is not: an image-processing library. No resampling beyond integer
 * nearest-neighbour blits, no anti-aliasing, no alpha, ASCII text only (other
 * bytes draw as '?').
 */
#ifndef NF_IMAGE_H
#define NF_IMAGE_H

#include <stdint.h>

typedef struct {
    uint8_t r, g, b;
} nf_rgb_t;

typedef struct {
    int w, h;
    uint8_t *px;  // (h, w, 3), row-major, owned by the image
} nf_image_t;

// Glyph cell of the built-in font at scale 1: 5x7 glyphs (plus a descender
// row) in a 6x10 cell.
#define NF_FONT_ADVANCE 6
#define NF_FONT_LINE 10

// A w x h canvas filled with `bg`. Aborts on a non-positive or absurd size
// (an internal error: callers compute sizes) or out of memory.
nf_image_t *nf_image_new(int w, int h, nf_rgb_t bg);
// Frees the image and nulls *self_p. Accepts NULL and *self_p == NULL.
void nf_image_destroy(nf_image_t **self_p);

void nf_image_fill(nf_image_t *im, nf_rgb_t c);
// One pixel; ignored outside the canvas.
void nf_image_set(nf_image_t *im, int x, int y, nf_rgb_t c);
// Filled rectangle with top-left (x, y), size w x h (clipped).
void nf_image_rect(nf_image_t *im, int x, int y, int w, int h, nf_rgb_t c);
// One-pixel rectangle outline.
void nf_image_rect_outline(nf_image_t *im, int x, int y, int w, int h, nf_rgb_t c);
// Straight line from (x0, y0) to (x1, y1) inclusive (Bresenham), clipped.
void nf_image_line(nf_image_t *im, int x0, int y0, int x1, int y1, nf_rgb_t c);
// Copies an RGB picture src (sh, sw, 3) with its top-left at (x, y), each
// source pixel drawn as a scale x scale block (scale >= 1); clipped.
void nf_image_blit(nf_image_t *im, int x, int y, const uint8_t *src, int sw, int sh, int scale);

// Draws ASCII text with its top-left at (x, y); each font pixel is a
// scale x scale block. '\n' starts a new line. Returns the width in pixels of
// the widest line drawn.
int nf_image_text(nf_image_t *im, int x, int y, const char *s, nf_rgb_t c, int scale);
// Width in pixels nf_image_text would use for the widest line of s.
int nf_image_text_width(const char *s, int scale);

// Writes an 8-bit RGB PNG atomically (temp file, fsync, rename). Returns 0,
// or -1 with one logged line (bad path, full disk, libpng error); the target
// is then untouched.
int nf_image_write_png(const nf_image_t *im, const char *path);
// Reads any PNG (palette, grey, 16-bit and alpha are converted to 8-bit RGB;
// alpha is composited on black). Returns NULL with one logged line on error.
nf_image_t *nf_image_read_png(const char *path);

#endif
