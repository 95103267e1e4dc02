/*
 * decode.c: see decode.h. TurboJPEG 2.1 decode, fastai's crop geometry,
 * Pillow's CMYK conversion, and the hand-over to the Pillow resampler.
 */
#include "decode.h"

#include "check.h"
#include "log.h"
#include "resample.h"
#include "rng.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

struct loader_decoder_t {
    tjhandle tj;
    uint8_t *pix;    // decoded image, RGB or CMYK
    size_t pix_cap;
    uint8_t *rgb;    // CMYK converted to RGB
    size_t rgb_cap;
    uint8_t *work;   // resampler workspace
    size_t work_cap;
    tjscalingfactor scales[8];  // DCT scaling factors <= 1/2, ascending
    int n_scales;
};

static const char *s_bad_names[LOADER_BAD_N] = {
    "empty", "not_jpeg", "too_large", "header", "decode", "truncated", "unsupported", "io",
};

const char *loader_bad_name(loader_bad_t why)
{
    return why >= 0 && why < LOADER_BAD_N ? s_bad_names[why] : "ok";
}

// Grows a scratch buffer (64-byte aligned). Returns false when the memory is
// not there: the image is then a bad file (too large for this worker), not a
// reason to abort, which would make every worker that draws it die in turn.
static bool s_grow(uint8_t **buf, size_t *cap, size_t need)
{
    if (*cap >= need) return true;
    free(*buf);
    *buf = NULL;
    *cap = 0;
    void *p = NULL;
    if (posix_memalign(&p, 64, need ? need : 1) != 0) return false;
    *buf = p;
    *cap = need;
    return true;
}

static bool s_grow_or_fail(uint8_t **buf, size_t *cap, size_t need, loader_decode_info_t *info)
{
    if (s_grow(buf, cap, need)) return true;
    info->bad = LOADER_BAD_TOO_LARGE;
    snprintf(info->detail, sizeof info->detail, "cannot allocate %zu bytes for %ux%u pixels",
             need, info->width, info->height);
    return false;
}

// After a failed call TurboJPEG 2.1 can leave the handle unusable (the next
// header read fails with the old error), so a decoder replaces its handle after
// every failure. Bad files are rare; a handle costs microseconds.
static void s_renew_handle(loader_decoder_t *self)
{
    tjhandle tj = tjInitDecompress();
    if (!tj) {
        nf_log_warn("tjInitDecompress: %s (keeping the old handle)", tjGetErrorStr2(NULL));
        return;
    }
    if (tjDestroy(self->tj) != 0) nf_log_warn("tjDestroy: %s", tjGetErrorStr2(self->tj));
    self->tj = tj;
}

static int s_cmp_scale(const void *a, const void *b)
{
    const tjscalingfactor *x = a, *y = b;
    long l = (long)x->num * y->denom, r = (long)y->num * x->denom;
    return (l > r) - (l < r);
}

loader_decoder_t *loader_decoder_new(void)
{
    tjhandle tj = tjInitDecompress();
    if (!tj) {
        nf_log_error("tjInitDecompress: %s", tjGetErrorStr2(NULL));
        return NULL;
    }
    loader_decoder_t *self = nf_xcalloc(1, sizeof *self);
    self->tj = tj;
    int n = 0;
    tjscalingfactor *sf = tjGetScalingFactors(&n);
    for (int i = 0; sf && i < n && self->n_scales < (int)NF_ARRAY_LEN(self->scales); i++)
        if (sf[i].num * 2 <= sf[i].denom) self->scales[self->n_scales++] = sf[i];
    qsort(self->scales, (size_t)self->n_scales, sizeof self->scales[0], s_cmp_scale);
    return self;
}

void loader_decoder_destroy(loader_decoder_t **self_p)
{
    if (!self_p || !*self_p) return;
    loader_decoder_t *self = *self_p;
    if (tjDestroy(self->tj) != 0) nf_log_warn("tjDestroy: %s", tjGetErrorStr2(self->tj));
    free(self->pix);
    free(self->rgb);
    free(self->work);
    free(self);
    *self_p = NULL;
}

// ---------------------------------------------------------------------------
// geometry and randomness

uint32_t loader_epoch_word(uint32_t epoch, uint32_t pass)
{
    NF_CHECK(epoch < (1u << 24) && pass < 256u, "epoch %u pass %u", epoch, pass);
    return epoch | pass << 24;
}

void loader_presize_fracs(bool random_crop, uint64_t seed, uint32_t epoch_word, uint32_t index,
                          double *px, double *py)
{
    if (!random_crop) {
        *px = *py = 0.5;
        return;
    }
    nf_rng_t r = nf_rng_make(seed, NF_RNG_STREAM_PRESIZE, epoch_word, index);
    *px = nf_rng_uniform_f64(&r);
    *py = nf_rng_uniform_f64(&r);
}

void loader_presize_crop(uint32_t w, uint32_t h, uint32_t size, double px, double py,
                         uint32_t crop[4])
{
    // fastai Resize.encodes, method crop, in Python float arithmetic:
    //   m = w/S if w/S < h/S else h/S;  cw = ch = int(m*S)
    //   x0 = int(px*(w-cw));  y0 = int(py*(h-ch))
    double sw = (double)w / size, sh = (double)h / size;
    double m = sw < sh ? sw : sh;
    uint32_t c = (uint32_t)(m * size);
    crop[0] = (uint32_t)(px * (double)(w - c));
    crop[1] = (uint32_t)(py * (double)(h - c));
    crop[2] = c;
    crop[3] = c;
}

// ---------------------------------------------------------------------------
// decode

static int s_fail(loader_decode_info_t *info, loader_bad_t why, const char *msg)
{
    info->bad = why;
    snprintf(info->detail, sizeof info->detail, "%s", msg);
    return -1;
}

// Pillow: every 4-component JPEG is read as inverted CMYK ("CMYK;I"), then
// cmyk2rgb: out = clip(nk - c*nk/255) with nk = 255 - k and Pillow's rounding
// of the product (MULDIV255).
static void s_cmyk_to_rgb(const uint8_t *in, uint8_t *out, size_t n_pixels)
{
    for (size_t i = 0; i < n_pixels; i++, in += 4, out += 3) {
        int nk = in[3];  // 255 - (255 - stored k)
        for (int ch = 0; ch < 3; ch++) {
            int c = 255 - in[ch];
            int t = c * nk + 128;
            int v = nk - (((t >> 8) + t) >> 8);
            out[ch] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
    }
}

// Header checks shared by both entry points. Fills width/height/colorspace.
static int s_header(loader_decoder_t *self, const uint8_t *jpeg, size_t len, uint64_t max_pixels,
                    loader_decode_info_t *info)
{
    memset(info, 0, sizeof *info);
    info->bad = LOADER_BAD_NONE;
    info->colorspace = -1;
    info->scale_num = info->scale_den = 1;
    if (len == 0) return s_fail(info, LOADER_BAD_EMPTY, "zero-byte file");
    if (len < 3 || jpeg[0] != 0xFF || jpeg[1] != 0xD8 || jpeg[2] != 0xFF) {
        static const uint8_t png[4] = {0x89, 'P', 'N', 'G'};
        const char *what = len >= 4 && memcmp(jpeg, png, 4) == 0 ? "PNG data, not JPEG"
                                                                  : "no JPEG SOI marker";
        return s_fail(info, LOADER_BAD_NOT_JPEG, what);
    }
    if (len > (size_t)0x7fffffff) return s_fail(info, LOADER_BAD_TOO_LARGE, "file over 2 GiB");
    int w = 0, h = 0, subsamp = 0, cs = 0;
    if (tjDecompressHeader3(self->tj, jpeg, (unsigned long)len, &w, &h, &subsamp, &cs) != 0) {
        int rc = s_fail(info, strstr(tjGetErrorStr2(self->tj), "nsupported") ? LOADER_BAD_UNSUPPORTED
                                                                             : LOADER_BAD_HEADER,
                        tjGetErrorStr2(self->tj));
        s_renew_handle(self);
        return rc;
    }
    info->width = (uint32_t)w;
    info->height = (uint32_t)h;
    info->colorspace = cs;
    if (w <= 0 || h <= 0) return s_fail(info, LOADER_BAD_HEADER, "zero image size");
    uint64_t limit = max_pixels ? max_pixels : LOADER_DEFAULT_MAX_PIXELS;
    if ((uint64_t)w * (uint64_t)h > limit) {
        char msg[96];
        snprintf(msg, sizeof msg, "%dx%d pixels is over the limit of %llu", w, h,
                 (unsigned long long)limit);
        return s_fail(info, LOADER_BAD_TOO_LARGE, msg);
    }
    if (cs != TJCS_RGB && cs != TJCS_YCbCr && cs != TJCS_GRAY && cs != TJCS_CMYK && cs != TJCS_YCCK)
        return s_fail(info, LOADER_BAD_UNSUPPORTED, "unknown colour space");
    return 0;
}

// Decodes at scale sf into RGB; returns the RGB pixels ((sh, sw, 3)) or NULL.
static const uint8_t *s_decode_rgb(loader_decoder_t *self, const uint8_t *jpeg, size_t len,
                                   tjscalingfactor sf, bool strict, uint32_t *sw_out,
                                   uint32_t *sh_out, loader_decode_info_t *info)
{
    int sw = TJSCALED((int)info->width, sf), sh = TJSCALED((int)info->height, sf);
    bool cmyk = info->colorspace == TJCS_CMYK || info->colorspace == TJCS_YCCK;
    int pf = cmyk ? TJPF_CMYK : TJPF_RGB;
    size_t bpp = cmyk ? 4 : 3;
    size_t n_pixels = (size_t)sw * (size_t)sh;
    if (!s_grow_or_fail(&self->pix, &self->pix_cap, n_pixels * bpp, info)) return NULL;
    int rc = tjDecompress2(self->tj, jpeg, (unsigned long)len, self->pix, sw, 0, sh, pf,
                           TJFLAG_LIMITSCANS);
    if (rc != 0) {
        bool warning = tjGetErrorCode(self->tj) == TJERR_WARNING;
        snprintf(info->detail, sizeof info->detail, "%s", tjGetErrorStr2(self->tj));
        s_renew_handle(self);
        if (!warning || strict) {
            info->bad = warning ? LOADER_BAD_TRUNCATED : LOADER_BAD_DECODE;
            return NULL;
        }
        info->warning = true;
    }
    info->scale_num = (uint32_t)sf.num;
    info->scale_den = (uint32_t)sf.denom;
    *sw_out = (uint32_t)sw;
    *sh_out = (uint32_t)sh;
    if (!cmyk) return self->pix;
    if (!s_grow_or_fail(&self->rgb, &self->rgb_cap, n_pixels * 3, info)) return NULL;
    s_cmyk_to_rgb(self->pix, self->rgb, n_pixels);
    return self->rgb;
}

const uint8_t *loader_decoder_full(loader_decoder_t *self, const uint8_t *jpeg, size_t len,
                                   bool strict, uint64_t max_pixels, loader_decode_info_t *info)
{
    if (s_header(self, jpeg, len, max_pixels, info) != 0) return NULL;
    uint32_t w, h;
    tjscalingfactor one = {1, 1};
    return s_decode_rgb(self, jpeg, len, one, strict, &w, &h, info);
}

int loader_decoder_presize(loader_decoder_t *self, const loader_presize_params_t *p,
                           const uint8_t *jpeg, size_t len, uint8_t *out,
                           loader_decode_info_t *info)
{
    NF_CHECK(p->size > 0, "presize 0");
    if (s_header(self, jpeg, len, p->max_pixels, info) != 0) return -1;
    double px, py;
    loader_presize_fracs(p->random_crop, p->seed, p->epoch_word, p->index, &px, &py);
    loader_presize_crop(info->width, info->height, p->size, px, py, info->crop);
    const uint32_t x0 = info->crop[0], y0 = info->crop[1], c = info->crop[2];
    if (c == 0) return s_fail(info, LOADER_BAD_UNSUPPORTED, "image too small to crop");

    // DCT-domain scaling: the smallest factor (<= 1/2) keeping the crop >= S wide.
    tjscalingfactor sf = {1, 1};
    if (!p->exact && 2 * (uint64_t)p->size <= c) {
        for (int i = 0; i < self->n_scales; i++) {
            if ((uint64_t)c * (uint64_t)self->scales[i].num >=
                (uint64_t)p->size * (uint64_t)self->scales[i].denom) {
                sf = self->scales[i];
                break;
            }
        }
    }
    uint32_t sw, sh;
    const uint8_t *rgb = s_decode_rgb(self, jpeg, len, sf, p->strict, &sw, &sh, info);
    if (!rgb) return -1;

    // The crop as a sub-image (Pillow crops first, so the filter is clamped at
    // the crop's edges), and the box inside it.
    loader_resample_params_t rp = {.out_w = p->size, .out_h = p->size};
    uint32_t sx0 = x0, sy0 = y0;
    if (sf.num == sf.denom) {
        rp.in_w = rp.in_h = c;
        rp.box[2] = rp.box[3] = (float)c;
    } else {
        double f = (double)sf.num / sf.denom;
        double bx0 = x0 * f, by0 = y0 * f, bx1 = (x0 + c) * f, by1 = (y0 + c) * f;
        sx0 = (uint32_t)bx0;
        sy0 = (uint32_t)by0;
        uint32_t sx1 = (uint32_t)(bx1 + 0.999999), sy1 = (uint32_t)(by1 + 0.999999);
        if (sx1 > sw) sx1 = sw;
        if (sy1 > sh) sy1 = sh;
        rp.in_w = sx1 - sx0;
        rp.in_h = sy1 - sy0;
        rp.box[0] = (float)(bx0 - sx0);
        rp.box[1] = (float)(by0 - sy0);
        rp.box[2] = (float)(bx1 - sx0) < (float)rp.in_w ? (float)(bx1 - sx0) : (float)rp.in_w;
        rp.box[3] = (float)(by1 - sy0) < (float)rp.in_h ? (float)(by1 - sy0) : (float)rp.in_h;
    }
    size_t stride = (size_t)sw * 3;
    if (!s_grow_or_fail(&self->work, &self->work_cap, loader_resample_workspace_bytes(&rp), info))
        return -1;
    loader_resample_rgb(&rp, rgb + (size_t)sy0 * stride + (size_t)sx0 * 3, stride, out, self->work);
    return 0;
}

// ---------------------------------------------------------------------------
// files

long loader_read_file(const char *path, uint8_t **buf, size_t *cap, loader_bad_t *bad,
                      char *detail, size_t detail_len)
{
    // O_NONBLOCK: opening a FIFO (or a device) must not wait for a writer; it is
    // refused just below as not a regular file, and reads of regular files ignore it
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        *bad = LOADER_BAD_IO;
        snprintf(detail, detail_len, "open: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    errno = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        *bad = LOADER_BAD_IO;
        snprintf(detail, detail_len, "%s", errno ? strerror(errno) : "not a regular file");
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > LOADER_MAX_FILE_BYTES) {
        *bad = LOADER_BAD_TOO_LARGE;
        snprintf(detail, detail_len, "file of %lld bytes is over the limit",
                 (long long)st.st_size);
        close(fd);
        return -1;
    }
    size_t want = (size_t)st.st_size;
    if (*cap < want + 1) {
        uint8_t *p = realloc(*buf, want + 1);
        NF_CHECK(p != NULL, "out of memory reading %zu bytes", want);
        *buf = p;
        *cap = want + 1;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t n = read(fd, *buf + got, want - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            *bad = LOADER_BAD_IO;
            snprintf(detail, detail_len, "read: %s", n < 0 ? strerror(errno) : "file shrank");
            close(fd);
            return -1;
        }
        got += (size_t)n;
    }
    if (close(fd) != 0) nf_log_warn("close %s: %s", path, strerror(errno));
    return (long)got;
}
