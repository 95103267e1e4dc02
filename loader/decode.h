/*
 * decode.h: one image file -> fastai's presized uint8 RGB square.
 *
 * loader_decoder_presize() does, for one JPEG in memory:
 *   1. cheap checks before the decoder sees the bytes: zero-byte -> EMPTY,
 *      no SOI marker (FF D8 FF) -> NOT_JPEG (PNG, text, ...);
 *   2. tjDecompressHeader3 (-> HEADER on failure), then the pixel limit from the
 *      header, before any pixel memory is touched (-> TOO_LARGE);
 *   3. fastai's Resize(S, method='crop') geometry (fastai-spec.md §2, with its
 *      int() truncations): random position (train) or centre (valid), the
 *      fractions drawn from common/rng.h, stream NF_RNG_STREAM_PRESIZE, at
 *      (seed, epoch word, sample index);
 *   4. decode with TurboJPEG (one tjhandle per decoder; one decoder per
 *      thread): grayscale -> RGB by libjpeg, CMYK/YCCK -> decoded as CMYK and
 *      converted as Pillow does (Pillow treats every 4-component JPEG as
 *      inverted Adobe CMYK, then cmyk2rgb), progressive files with
 *      TJFLAG_LIMITSCANS. A decode warning (truncated or corrupt entropy data)
 *      keeps the image and is reported (warning = true) unless strict, where it
 *      is TRUNCATED; a fatal error is DECODE;
 *   5. when the crop is at least twice the output side and exact is false, the
 *      DCT-domain scaled decode (1/2, 3/8, 1/4 or 1/8: the smallest factor that
 *      keeps the scaled crop at least S wide) replaces the full decode, and the
 *      crop box is scaled to the smaller image (a float box, as Pillow's
 *      resize(box=) accepts); pixels then differ slightly from fastai's,
 *      because libjpeg's scaled IDCT is not Pillow's filter;
 *   6. Pillow's BILINEAR resize of the crop to S x S (resample.h), bit-exact.
 *
 * A decoder owns its TurboJPEG handle and scratch buffers (grown to the
 * largest image seen, bounded by the pixel limit; when the memory is not there
 * the file is TOO_LARGE, never an abort); it is not thread-safe.
 * It does not read files (see loader_read_file) or know about batches.
 */
#ifndef LOADER_DECODE_H
#define LOADER_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Why a file was skipped. Same numbers as nf.BadReason in netteflow.proto.
typedef enum {
    LOADER_BAD_NONE = -1,
    LOADER_BAD_EMPTY = 0,
    LOADER_BAD_NOT_JPEG = 1,
    LOADER_BAD_TOO_LARGE = 2,
    LOADER_BAD_HEADER = 3,
    LOADER_BAD_DECODE = 4,
    LOADER_BAD_TRUNCATED = 5,
    LOADER_BAD_UNSUPPORTED = 6,
    LOADER_BAD_IO = 7,
    LOADER_BAD_N = 8
} loader_bad_t;

const char *loader_bad_name(loader_bad_t why);  // "empty", "not_jpeg", ...

// Pillow's MAX_IMAGE_PIXELS * 2 (its DecompressionBombError threshold).
#define LOADER_DEFAULT_MAX_PIXELS ((uint64_t)178956970)
// Files larger than this are not read (TOO_LARGE).
#define LOADER_MAX_FILE_BYTES ((size_t)256 << 20)

typedef struct loader_decoder_t loader_decoder_t;

// NULL (logged) when TurboJPEG cannot create a handle.
loader_decoder_t *loader_decoder_new(void);
void loader_decoder_destroy(loader_decoder_t **self_p);

typedef struct {
    uint32_t size;          // output side S (square)
    bool random_crop;       // train: random position; valid: centre
    uint64_t seed;          // crop randomness: (seed, epoch_word, index)
    uint32_t epoch_word;    // loader_epoch_word(epoch, pass)
    uint32_t index;         // sample index
    bool exact;             // never use DCT-scaled decode
    bool strict;            // decode warnings make the file bad
    uint64_t max_pixels;    // 0 = LOADER_DEFAULT_MAX_PIXELS
} loader_presize_params_t;

typedef struct {
    loader_bad_t bad;       // LOADER_BAD_NONE when out holds the image
    char detail[128];       // decoder message or what was wrong
    bool warning;           // decoded despite a libjpeg warning (kept)
    uint32_t width, height; // JPEG header size (0 when unknown)
    int colorspace;         // TJCS_* of the file (-1 when unknown)
    uint32_t scale_num, scale_den;  // DCT scaling used (1/1 = full decode)
    uint32_t crop[4];       // crop x0, y0, w, h in full-size pixels
} loader_decode_info_t;

// Decodes and presizes one JPEG into out. Returns 0, or -1 with info->bad set.
int loader_decoder_presize(loader_decoder_t *self, const loader_presize_params_t *p,
                           const uint8_t *jpeg, size_t len,
                           uint8_t *out,  // (size, size, 3)
                           loader_decode_info_t *info);

// Decodes a whole JPEG to RGB (no crop, no scaling); the pixels stay valid until
// the next call. Returns a pointer to (height, width, 3) bytes, or NULL with
// info->bad set. Used by `loader verify` and tests.
const uint8_t *loader_decoder_full(loader_decoder_t *self, const uint8_t *jpeg, size_t len,
                                   bool strict, uint64_t max_pixels, loader_decode_info_t *info);

// fastai Resize(size, method='crop') geometry for a w x h image and position
// fractions (px, py): crop[4] = x0, y0, cw, ch.
void loader_presize_crop(uint32_t w, uint32_t h, uint32_t size, double px, double py,
                         uint32_t crop[4]);
// The position fractions: (0.5, 0.5) for a centre crop, else two uniform
// doubles in [0, 1) from (seed, NF_RNG_STREAM_PRESIZE, epoch_word, index).
void loader_presize_fracs(bool random_crop, uint64_t seed, uint32_t epoch_word, uint32_t index,
                          double *px, double *py);
// The RNG epoch word for an epoch and a TTA pass: epoch | pass << 24.
uint32_t loader_epoch_word(uint32_t epoch, uint32_t pass);

// Reads a whole file into *buf (grown with realloc, *cap its size). Returns the
// length, or -1 with *bad = IO (open/read error) or TOO_LARGE (over
// LOADER_MAX_FILE_BYTES) and a message in detail.
long loader_read_file(const char *path, uint8_t **buf, size_t *cap, loader_bad_t *bad,
                      char *detail, size_t detail_len);

#endif
