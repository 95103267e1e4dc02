/*
 * jpegfix.c: see jpegfix.h. The pattern is smooth (gradients) so a decoded
 * image stays within a few levels of it despite chroma subsampling.
 */
#include "jpegfix.h"

#include "check.h"
#include "fsutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

void jf_pattern(uint32_t w, uint32_t h, uint32_t seed, uint8_t *rgb)
{
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++) {
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = (uint8_t)(x * 255 / (w > 1 ? w - 1 : 1));
            p[1] = (uint8_t)(y * 255 / (h > 1 ? h - 1 : 1));
            p[2] = (uint8_t)((x + 2 * y + 16 * seed) * 255 / (w + 2 * h + 16 * seed));
        }
}

uint8_t *jf_jpeg(uint32_t w, uint32_t h, uint32_t seed, jf_kind_t kind, size_t *len)
{
    // a fresh compressor each time: after a progressive encode, libjpeg-turbo
    // 2.1.5 leaves a handle that writes broken baseline files
    tjhandle tj = tjInitCompress();
    NF_CHECK(tj != NULL, "tjInitCompress");
    uint8_t *rgb = nf_xmalloc((size_t)w * h * 3);
    jf_pattern(w, h, seed, rgb);
    uint8_t *src = rgb;
    int pf = TJPF_RGB, samp = TJSAMP_420, flags = 0;
    if (kind == JF_GRAY) samp = TJSAMP_GRAY;
    if (kind == JF_PROGRESSIVE) flags = TJFLAG_PROGRESSIVE;
    if (kind == JF_CMYK) {
        // stored (r, g, b, 255): read as inverted (Adobe) CMYK this is ink
        // (255-r, 255-g, 255-b, 0), i.e. the RGB pattern again
        src = nf_xmalloc((size_t)w * h * 4);
        for (size_t i = 0; i < (size_t)w * h; i++) {
            memcpy(src + 4 * i, rgb + 3 * i, 3);
            src[4 * i + 3] = 255;
        }
        pf = TJPF_CMYK;
    }
    unsigned char *jpeg = NULL;
    unsigned long size = 0;
    NF_CHECK(tjCompress2(tj, src, (int)w, 0, (int)h, pf, &jpeg, &size, samp, 90, flags) == 0,
             "tjCompress2: %s", tjGetErrorStr2(tj));
    uint8_t *out = nf_xmalloc(size);
    memcpy(out, jpeg, size);
    tjFree(jpeg);
    if (src != rgb) free(src);
    free(rgb);
    tjDestroy(tj);
    *len = size;
    return out;
}

static void s_write(const char *path, const void *data, size_t len)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        NF_CHECK(nf_mkdir_p(dir) == 0, "mkdir %s", dir);
    }
    FILE *f = fopen(path, "wb");
    NF_CHECK(f != NULL, "open %s", path);
    NF_CHECK(len == 0 || fwrite(data, 1, len, f) == len, "write %s", path);
    NF_CHECK(fclose(f) == 0, "close %s", path);
}

void jf_write_good(const char *path, uint32_t w, uint32_t h, uint32_t seed, jf_kind_t kind)
{
    size_t len;
    uint8_t *j = jf_jpeg(w, h, seed, kind, &len);
    s_write(path, j, len);
    free(j);
}

// Offset of the first byte after the SOS segment (the entropy-coded data).
static size_t s_scan_start(const uint8_t *j, size_t len)
{
    size_t i = 2;
    while (i + 4 < len && j[i] == 0xFF) {
        uint8_t marker = j[i + 1];
        size_t seg = (size_t)j[i + 2] << 8 | j[i + 3];
        if (marker == 0xDA) return i + 2 + seg;
        i += 2 + seg;
    }
    NF_CHECK(0, "no SOS marker");
}

static size_t s_find_sof(const uint8_t *j, size_t len)
{
    for (size_t i = 2; i + 9 < len; i++)
        if (j[i] == 0xFF && (j[i + 1] == 0xC0 || j[i + 1] == 0xC2)) return i;
    NF_CHECK(0, "no SOF marker");
}

void jf_write_bad(const char *path, jf_bad_t kind)
{
    size_t len;
    uint8_t *j = jf_jpeg(96, 80, 1, JF_RGB, &len);
    switch (kind) {
    case JF_BAD_EMPTY: s_write(path, "", 0); break;
    case JF_BAD_TEXT: s_write(path, "this is not an image\n", 21); break;
    case JF_BAD_PNG: {
        static const uint8_t png[16] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n',
                                        0, 0, 0, 13, 'I', 'H', 'D', 'R'};
        s_write(path, png, sizeof png);
        break;
    }
    case JF_BAD_HEADER_CUT: s_write(path, j, 40); break;
    case JF_BAD_TRUNCATED: {
        size_t scan = s_scan_start(j, len);
        s_write(path, j, scan + (len - scan) / 2);
        break;
    }
    case JF_BAD_CORRUPT: {
        size_t scan = s_scan_start(j, len), mid = scan + (len - scan) / 2;
        j[mid] = 0xFF;
        j[mid + 1] = 0xD3;  // an RST marker where none belongs
        s_write(path, j, len);
        break;
    }
    case JF_BAD_OVERSIZED: {
        size_t sof = s_find_sof(j, len);
        j[sof + 5] = 0xEA;  // height 60000
        j[sof + 6] = 0x60;
        j[sof + 7] = 0xEA;  // width 60000
        j[sof + 8] = 0x60;
        s_write(path, j, len);
        break;
    }
    case JF_BAD_LOSSLESS: {
        size_t sof = s_find_sof(j, len);
        j[sof + 1] = 0xC3;
        s_write(path, j, len);
        break;
    }
    default: NF_CHECK(0, "bad kind %d", (int)kind);
    }
    free(j);
}
