/*
 * image.c: see image.h. RGB canvas, clipped drawing, bitmap text, PNG I/O.
 *
 * The font is hand-written here (5x7 glyphs for printable ASCII) because no
 * light Debian library renders text into a raw pixel buffer: FreeType or Cairo
 * would pull in fonts, fontconfig and a second drawing model for a few labels.
 *
 * PNG writing uses libpng's classic API with setjmp error handling so every
 * libpng failure becomes one logged line and a -1 (never an abort); reading
 * uses libpng's simplified API, which converts every PNG colour type and bit
 * depth to 8-bit RGB in one call.
 */
#include "image.h"

#include "check.h"
#include "fsutil.h"
#include "log.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_SIDE 32768

// ---------------------------------------------------------------------------
// font: printable ASCII 32..126, 7 rows per glyph, 5 columns per row
// (bit 4 = leftmost column).

static const uint8_t s_font[95][7] = {
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00},  // ' '
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04},  // '!'
    {0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00, 0x00},  // '"'
    {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A},  // '#'
    {0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04},  // '$'
    {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03},  // '%'
    {0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D},  // '&'
    {0x04, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00},  // '''
    {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02},  // '('
    {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08},  // ')'
    {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00},  // '*'
    {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00},  // '+'
    {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08},  // ','
    {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00},  // '-'
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C},  // '.'
    {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00},  // '/'
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E},  // '0'
    {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E},  // '1'
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F},  // '2'
    {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E},  // '3'
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02},  // '4'
    {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E},  // '5'
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E},  // '6'
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},  // '7'
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E},  // '8'
    {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C},  // '9'
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00},  // ':'
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08},  // ';'
    {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02},  // '<'
    {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00},  // '='
    {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08},  // '>'
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04},  // '?'
    {0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E},  // '@'
    {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11},  // 'A'
    {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E},  // 'B'
    {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E},  // 'C'
    {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C},  // 'D'
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F},  // 'E'
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10},  // 'F'
    {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F},  // 'G'
    {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11},  // 'H'
    {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E},  // 'I'
    {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C},  // 'J'
    {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11},  // 'K'
    {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F},  // 'L'
    {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11},  // 'M'
    {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11},  // 'N'
    {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},  // 'O'
    {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10},  // 'P'
    {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D},  // 'Q'
    {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11},  // 'R'
    {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E},  // 'S'
    {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},  // 'T'
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E},  // 'U'
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04},  // 'V'
    {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A},  // 'W'
    {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11},  // 'X'
    {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04},  // 'Y'
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F},  // 'Z'
    {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E},  // '['
    {0x00, 0x10, 0x08, 0x04, 0x02, 0x01, 0x00},  // '\'
    {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E},  // ']'
    {0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00},  // '^'
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F},  // '_'
    {0x08, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00},  // '`'
    {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F},  // 'a'
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E},  // 'b'
    {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E},  // 'c'
    {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F},  // 'd'
    {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E},  // 'e'
    {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08},  // 'f'
    {0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E},  // 'g'
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11},  // 'h'
    {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E},  // 'i'
    {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C},  // 'j'
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12},  // 'k'
    {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E},  // 'l'
    {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11},  // 'm'
    {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11},  // 'n'
    {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E},  // 'o'
    {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10},  // 'p'
    {0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01},  // 'q'
    {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10},  // 'r'
    {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E},  // 's'
    {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06},  // 't'
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D},  // 'u'
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04},  // 'v'
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A},  // 'w'
    {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11},  // 'x'
    {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E},  // 'y'
    {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F},  // 'z'
    {0x02, 0x04, 0x04, 0x08, 0x04, 0x04, 0x02},  // '{'
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},  // '|'
    {0x08, 0x04, 0x04, 0x02, 0x04, 0x04, 0x08},  // '}'
    {0x00, 0x00, 0x08, 0x15, 0x02, 0x00, 0x00},  // '~'
};

// ---------------------------------------------------------------------------
// canvas and drawing

nf_image_t *nf_image_new(int w, int h, nf_rgb_t bg)
{
    NF_CHECK(w > 0 && h > 0 && w <= S_MAX_SIDE && h <= S_MAX_SIDE, "bad image size %dx%d", w, h);
    nf_image_t *im = nf_xmalloc(sizeof *im);
    im->w = w;
    im->h = h;
    im->px = nf_xmalloc((size_t)w * (size_t)h * 3);
    nf_image_fill(im, bg);
    return im;
}

void nf_image_destroy(nf_image_t **self_p)
{
    if (!self_p || !*self_p) return;
    free((*self_p)->px);
    free(*self_p);
    *self_p = NULL;
}

void nf_image_fill(nf_image_t *im, nf_rgb_t c)
{
    nf_image_rect(im, 0, 0, im->w, im->h, c);
}

void nf_image_set(nf_image_t *im, int x, int y, nf_rgb_t c)
{
    if (x < 0 || y < 0 || x >= im->w || y >= im->h) return;
    uint8_t *p = im->px + ((size_t)y * (size_t)im->w + (size_t)x) * 3;
    p[0] = c.r;
    p[1] = c.g;
    p[2] = c.b;
}

void nf_image_rect(nf_image_t *im, int x, int y, int w, int h, nf_rgb_t c)
{
    int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    // widen to 64 bits so x + w cannot overflow for extreme arguments
    int64_t x1 = (int64_t)x + w, y1 = (int64_t)y + h;
    if (x1 > im->w) x1 = im->w;
    if (y1 > im->h) y1 = im->h;
    for (int yy = y0; yy < y1; yy++) {
        uint8_t *p = im->px + ((size_t)yy * (size_t)im->w + (size_t)x0) * 3;
        for (int xx = x0; xx < x1; xx++, p += 3) {
            p[0] = c.r;
            p[1] = c.g;
            p[2] = c.b;
        }
    }
}

void nf_image_rect_outline(nf_image_t *im, int x, int y, int w, int h, nf_rgb_t c)
{
    if (w <= 0 || h <= 0) return;
    nf_image_rect(im, x, y, w, 1, c);
    nf_image_rect(im, x, y + h - 1, w, 1, c);
    nf_image_rect(im, x, y, 1, h, c);
    nf_image_rect(im, x + w - 1, y, 1, h, c);
}

void nf_image_line(nf_image_t *im, int x0, int y0, int x1, int y1, nf_rgb_t c)
{
    // Bresenham in 64-bit arithmetic; off-canvas points are skipped by set().
    int64_t dx = x1 > x0 ? (int64_t)x1 - x0 : (int64_t)x0 - x1;
    int64_t dy = y1 > y0 ? (int64_t)y0 - y1 : (int64_t)y1 - y0;  // -|dy|
    int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int64_t err = dx + dy;
    int64_t x = x0, y = y0;
    for (;;) {
        if (x >= 0 && y >= 0 && x < im->w && y < im->h) nf_image_set(im, (int)x, (int)y, c);
        if (x == x1 && y == y1) break;
        int64_t e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y += sy;
        }
    }
}

void nf_image_blit(nf_image_t *im, int x, int y, const uint8_t *src, int sw, int sh, int scale)
{
    NF_CHECK(scale >= 1 && sw >= 0 && sh >= 0, "bad blit %dx%d scale %d", sw, sh, scale);
    for (int sy = 0; sy < sh; sy++) {
        for (int sx = 0; sx < sw; sx++) {
            const uint8_t *p = src + ((size_t)sy * (size_t)sw + (size_t)sx) * 3;
            nf_rgb_t c = {p[0], p[1], p[2]};
            if (scale == 1)
                nf_image_set(im, x + sx, y + sy, c);
            else
                nf_image_rect(im, x + sx * scale, y + sy * scale, scale, scale, c);
        }
    }
}

// ---------------------------------------------------------------------------
// text

static void s_glyph(nf_image_t *im, int x, int y, unsigned char ch, nf_rgb_t c, int scale)
{
    if (ch < 32 || ch > 126) ch = '?';
    const uint8_t *g = s_font[ch - 32];
    for (int row = 0; row < 7; row++)
        for (int col = 0; col < 5; col++)
            if (g[row] & (0x10 >> col)) nf_image_rect(im, x + col * scale, y + row * scale, scale, scale, c);
}

int nf_image_text(nf_image_t *im, int x, int y, const char *s, nf_rgb_t c, int scale)
{
    NF_CHECK(scale >= 1, "bad text scale %d", scale);
    int cx = x, cy = y, widest = 0;
    for (const char *p = s; *p; p++) {
        if (*p == '\n') {
            cx = x;
            cy += NF_FONT_LINE * scale;
            continue;
        }
        s_glyph(im, cx, cy, (unsigned char)*p, c, scale);
        cx += NF_FONT_ADVANCE * scale;
        if (cx - x > widest) widest = cx - x;
    }
    return widest;
}

int nf_image_text_width(const char *s, int scale)
{
    int line = 0, widest = 0;
    for (const char *p = s; *p; p++) {
        line = *p == '\n' ? 0 : line + NF_FONT_ADVANCE * scale;
        if (line > widest) widest = line;
    }
    return widest;
}

// ---------------------------------------------------------------------------
// PNG

static void s_png_error(png_structp png, png_const_charp msg)
{
    nf_log_error("png %s: %s", (const char *)png_get_error_ptr(png), msg);
    png_longjmp(png, 1);
}

static void s_png_warning(png_structp png, png_const_charp msg)
{
    nf_log_warn("png %s: %s", (const char *)png_get_error_ptr(png), msg);
}

// Writes im to fp. png and info are set before setjmp and never modified
// after it, so they need not be volatile.
static int s_png_write(const nf_image_t *im, FILE *fp, const char *path)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, (png_voidp)path,
                                              s_png_error, s_png_warning);
    if (!png) {
        nf_log_error("png %s: png_create_write_struct failed", path);
        return -1;
    }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        nf_log_error("png %s: png_create_info_struct failed", path);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)im->w, (png_uint_32)im->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < im->h; y++) png_write_row(png, im->px + (size_t)y * (size_t)im->w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int nf_image_write_png(const nf_image_t *im, const char *path)
{
    nf_afile_t *f = nf_afile_open(path);
    if (!f) return -1;
    if (s_png_write(im, nf_afile_stream(f), path) != 0) {
        nf_afile_abort(&f);
        return -1;
    }
    return nf_afile_commit(&f);
}

nf_image_t *nf_image_read_png(const char *path)
{
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) {
        nf_log_error("png %s: %s", path, img.message);
        return NULL;
    }
    if (img.width == 0 || img.height == 0 || img.width > S_MAX_SIDE || img.height > S_MAX_SIDE) {
        nf_log_error("png %s: size %ux%u out of range", path, img.width, img.height);
        png_image_free(&img);
        return NULL;
    }
    img.format = PNG_FORMAT_RGB;
    nf_rgb_t black = {0, 0, 0};
    nf_image_t *im = nf_image_new((int)img.width, (int)img.height, black);
    if (!png_image_finish_read(&img, NULL, im->px, (png_int_32)(img.width * 3), NULL)) {
        nf_log_error("png %s: %s", path, img.message);
        png_image_free(&img);
        nf_image_destroy(&im);
        return NULL;
    }
    return im;
}
