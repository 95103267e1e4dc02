/*
 * test_image.c: common/image: clipped drawing, bitmap text, and PNG files that
 * read back (through libpng) with exactly the pixels written; bad paths and
 * bad files give an error, never a crash.
 */
#include "image.h"
#include "testlib.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const nf_rgb_t s_black = {0, 0, 0}, s_white = {255, 255, 255}, s_red = {255, 0, 0},
                      s_green = {0, 200, 0}, s_blue = {10, 20, 250};

static int s_is(const nf_image_t *im, int x, int y, nf_rgb_t c)
{
    const uint8_t *p = im->px + ((size_t)y * (size_t)im->w + (size_t)x) * 3;
    return p[0] == c.r && p[1] == c.g && p[2] == c.b;
}

static void test_drawing(void)
{
    nf_image_t *im = nf_image_new(40, 30, s_white);
    T_CHECK(s_is(im, 0, 0, s_white) && s_is(im, 39, 29, s_white), "filled with background");

    nf_image_rect(im, -5, -5, 10, 8, s_red);  // clipped to [0,5) x [0,3)
    T_CHECK(s_is(im, 0, 0, s_red) && s_is(im, 4, 2, s_red), "rect drawn inside");
    T_CHECK(s_is(im, 5, 2, s_white) && s_is(im, 4, 3, s_white), "rect stops at its edge");

    nf_image_line(im, 10, 10, 20, 10, s_green);
    for (int x = 10; x <= 20; x++) T_CHECK(s_is(im, x, 10, s_green), "horizontal line x=%d", x);
    T_CHECK(s_is(im, 21, 10, s_white) && s_is(im, 9, 10, s_white), "line endpoints inclusive only");
    nf_image_line(im, 0, 29, 39, -10, s_blue);  // partly off-canvas diagonal: clipped
    T_CHECK(s_is(im, 0, 29, s_blue), "diagonal starts at its first point");
    nf_image_line(im, -1000000, -1000000, 1000000, 1000000, s_blue);  // far outside: no crash
    T_CHECK(s_is(im, 25, 25, s_blue), "long diagonal passes through the canvas");

    nf_image_rect_outline(im, 30, 20, 5, 4, s_red);
    T_CHECK(s_is(im, 30, 20, s_red) && s_is(im, 34, 23, s_red), "outline corners");
    T_CHECK(s_is(im, 32, 21, s_white), "outline leaves the inside");

    uint8_t src[2 * 2 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    nf_image_blit(im, 36, 26, src, 2, 2, 3);  // 6x6 block, clipped at 40x30
    nf_rgb_t c00 = {1, 2, 3}, c01 = {4, 5, 6}, c10 = {7, 8, 9};
    T_CHECK(s_is(im, 36, 26, c00) && s_is(im, 38, 28, c00), "scaled blit top-left block");
    T_CHECK(s_is(im, 39, 26, c01) && s_is(im, 36, 29, c10), "scaled blit neighbours");
    nf_image_destroy(&im);
    T_CHECK(im == NULL, "destroy nulls the pointer");
    nf_image_destroy(&im);
    nf_image_destroy(NULL);
}

static void test_text(void)
{
    nf_image_t *im = nf_image_new(64, 24, s_black);
    int w = nf_image_text(im, 0, 0, "A1", s_white, 1);
    T_CHECK(w == 2 * NF_FONT_ADVANCE, "width of two glyphs: %d", w);
    // 'A' top row is .###. ; second row #...#
    T_CHECK(!s_is(im, 0, 0, s_white) && s_is(im, 1, 0, s_white) && s_is(im, 3, 0, s_white) &&
                !s_is(im, 4, 0, s_white),
            "glyph A row 0");
    T_CHECK(s_is(im, 0, 1, s_white) && s_is(im, 4, 1, s_white) && !s_is(im, 2, 1, s_white),
            "glyph A row 1");
    T_CHECK(s_is(im, 0, 4, s_white) && s_is(im, 2, 4, s_white) && s_is(im, 4, 4, s_white),
            "glyph A crossbar");
    // '1' bottom row ###. at columns 1..3 of the second cell
    T_CHECK(s_is(im, 7, 6, s_white) && s_is(im, 9, 6, s_white) && !s_is(im, 10, 6, s_white),
            "glyph 1 foot");
    T_CHECK(nf_image_text_width("ab\ncde", 2) == 3 * NF_FONT_ADVANCE * 2, "widest line wins");
    T_CHECK(nf_image_text_width("", 1) == 0, "empty text");
    // scale 2: each font pixel is a 2x2 block; non-ASCII draws '?'; clipped text does not crash
    nf_image_fill(im, s_black);
    nf_image_text(im, 0, 0, "A", s_white, 2);
    T_CHECK(s_is(im, 2, 0, s_white) && s_is(im, 3, 1, s_white) && !s_is(im, 1, 0, s_white),
            "scaled glyph");
    nf_image_text(im, 60, 20, "\xff overflow", s_white, 3);
    nf_image_destroy(&im);
}

static void test_png_roundtrip(void)
{
    const char *dir = t_tmpdir();
    char path[512];
    snprintf(path, sizeof path, "%s/a.png", dir);

    nf_image_t *im = nf_image_new(37, 19, s_black);
    for (int y = 0; y < im->h; y++)
        for (int x = 0; x < im->w; x++) {
            nf_rgb_t c = {(uint8_t)(x * 7), (uint8_t)(y * 13), (uint8_t)(x * y)};
            nf_image_set(im, x, y, c);
        }
    nf_image_text(im, 1, 1, "png", s_white, 1);
    T_CHECK(nf_image_write_png(im, path) == 0, "write %s", path);
    nf_image_t *back = nf_image_read_png(path);
    T_CHECK(back != NULL, "read back");
    if (back) {
        T_CHECK(back->w == im->w && back->h == im->h, "size %dx%d", back->w, back->h);
        T_CHECK(back->w == im->w && back->h == im->h &&
                    memcmp(back->px, im->px, (size_t)im->w * (size_t)im->h * 3) == 0,
                "pixels identical after the round trip");
    }
    nf_image_destroy(&back);

    // rewriting replaces atomically; a missing directory fails cleanly
    nf_image_fill(im, s_green);
    T_CHECK(nf_image_write_png(im, path) == 0, "rewrite");
    back = nf_image_read_png(path);
    T_CHECK(back && s_is(back, 36, 18, s_green), "rewritten content");
    nf_image_destroy(&back);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.png", dir);
    T_CHECK(nf_image_write_png(im, bad) == -1, "write into a missing directory fails");

    // not a PNG, truncated PNG, missing file: NULL, no crash
    char txt[512];
    snprintf(txt, sizeof txt, "%s/not.png", dir);
    FILE *f = fopen(txt, "wb");
    T_CHECK(f != NULL, "create %s", txt);
    if (f) {
        fputs("this is not a png file at all", f);
        fclose(f);
    }
    T_CHECK(nf_image_read_png(txt) == NULL, "text file rejected");
    snprintf(txt, sizeof txt, "%s/trunc.png", dir);
    nf_image_t *big = nf_image_new(64, 64, s_blue);
    for (int i = 0; i < 64; i++) nf_image_line(big, i, 0, 63 - i, 63, s_red);
    T_CHECK(nf_image_write_png(big, txt) == 0, "write big");
    f = fopen(txt, "r+b");
    T_CHECK(f != NULL, "open for truncation");
    if (f) {
        T_CHECK(fseek(f, 0, SEEK_END) == 0, "seek");
        long len = ftell(f);
        T_CHECK(ftruncate(fileno(f), len / 2) == 0, "truncate");
        fclose(f);
    }
    T_CHECK(nf_image_read_png(txt) == NULL, "truncated PNG rejected");
    snprintf(txt, sizeof txt, "%s/missing.png", dir);
    T_CHECK(nf_image_read_png(txt) == NULL, "missing file rejected");
    nf_image_destroy(&big);
    nf_image_destroy(&im);
}

int main(void)
{
    test_drawing();
    test_text();
    test_png_roundtrip();
    return t_done();
}
