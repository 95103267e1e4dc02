/*
 * jpegfix.h: test images made at test time with TurboJPEG's compressor (no
 * binary test data is committed): good JPEGs of every colour kind, every kind
 * of bad file the loader must survive, and small ImageFolder datasets of them.
 */
#ifndef NF_TEST_JPEGFIX_H
#define NF_TEST_JPEGFIX_H

#include <stddef.h>
#include <stdint.h>

typedef enum { JF_RGB = 0, JF_GRAY, JF_CMYK, JF_PROGRESSIVE } jf_kind_t;

typedef enum {
    JF_BAD_EMPTY = 0,     // zero bytes
    JF_BAD_TEXT,          // a text file named .jpg
    JF_BAD_PNG,           // PNG signature and junk
    JF_BAD_HEADER_CUT,    // a JPEG cut inside its header
    JF_BAD_TRUNCATED,     // a JPEG cut inside its entropy-coded data (libjpeg warning)
    JF_BAD_CORRUPT,       // a JPEG whose entropy-coded data holds a stray marker (warning)
    JF_BAD_OVERSIZED,     // a JPEG whose SOF claims 60000 x 60000 pixels
    JF_BAD_LOSSLESS,      // SOF3 (lossless), which libjpeg-turbo 2.1 does not decode
    JF_BAD_N
} jf_bad_t;

// The RGB test pattern (smooth gradients, different per seed), (h, w, 3).
void jf_pattern(uint32_t w, uint32_t h, uint32_t seed, uint8_t *rgb);
// Compresses the pattern; returns a malloc'ed JPEG and its size.
uint8_t *jf_jpeg(uint32_t w, uint32_t h, uint32_t seed, jf_kind_t kind, size_t *len);
// Writes a good JPEG / a bad file to path (folders created). Aborts on I/O errors.
void jf_write_good(const char *path, uint32_t w, uint32_t h, uint32_t seed, jf_kind_t kind);
void jf_write_bad(const char *path, jf_bad_t kind);

#endif
