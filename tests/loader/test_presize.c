/*
 * test_presize.c: fastai's presize against PIL, byte for byte.
 *
 * - Crop geometry: fastai's int() truncations (short side 117 at S=460 gives
 *   116), random positions only along the long side, centre offsets truncated.
 * - Golden: tests/reference/make_presize_fixture.py recorded, for real
 *   Imagenette files, PIL's full decode and fastai's crop + Pillow BILINEAR
 *   resize (down- and up-sampling, square and non-square sources). Our
 *   TurboJPEG decode must equal PIL's decode and our presize must equal PIL's
 *   output exactly (no tolerance).
 * - The whole path (loader_decoder_presize, exact) equals decode + crop + resample.
 * - The DCT-scaled path (target <= half the crop) stays close to the exact one.
 * - Crop randomness is a function of (seed, epoch word, index) only.
 */
#include "decode.h"
#include "fsutil.h"
#include "resample.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t s_fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001B3ull;
    }
    return h;
}

static void test_geometry(void)
{
    uint32_t c[4];
    loader_presize_crop(500, 375, 460, 0.5, 0.5, c);  // common ImageNet size
    T_CHECK(c[2] == 375 && c[3] == 375 && c[0] == 62 && c[1] == 0, "500x375 centre: %u,%u %u",
            c[0], c[1], c[2]);
    loader_presize_crop(500, 117, 460, 0.5, 0.5, c);  // float truncation: 117 -> 116
    T_CHECK(c[2] == 116, "short side 117 at S=460 crops %u (fastai: 116)", c[2]);
    T_CHECK(c[1] == 0, "y0 = int(0.5*(117-116)) = 0, got %u", c[1]);
    loader_presize_crop(333, 500, 460, 0.999, 0.999, c);  // portrait: slides along y only
    T_CHECK(c[0] == 0 && c[2] == 333 && c[1] == (uint32_t)(0.999 * 167), "portrait %u %u", c[0], c[1]);
    loader_presize_crop(224, 224, 160, 0.7, 0.2, c);
    T_CHECK(c[0] == 0 && c[1] == 0 && c[2] == 224, "square source: the whole image");

    double px1, py1, px2, py2;
    loader_presize_fracs(true, 42, loader_epoch_word(3, 0), 1234, &px1, &py1);
    loader_presize_fracs(true, 42, loader_epoch_word(3, 0), 1234, &px2, &py2);
    T_CHECK(px1 == px2 && py1 == py2, "same (seed, epoch, index), same draw");
    T_CHECK(px1 >= 0 && px1 < 1 && py1 >= 0 && py1 < 1 && px1 != py1, "two uniform draws");
    loader_presize_fracs(true, 42, loader_epoch_word(4, 0), 1234, &px2, &py2);
    T_CHECK(px1 != px2, "another epoch, another draw");
    loader_presize_fracs(true, 42, loader_epoch_word(3, 1), 1234, &px2, &py2);
    T_CHECK(px1 != px2, "another TTA pass, another draw");
    loader_presize_fracs(false, 42, 3, 1234, &px2, &py2);
    T_CHECK(px2 == 0.5 && py2 == 0.5, "valid: centre");
}

typedef struct {
    const uint8_t *p, *end;
} s_reader_t;

static bool s_take(s_reader_t *r, void *dst, size_t n)
{
    if ((size_t)(r->end - r->p) < n) return false;
    memcpy(dst, r->p, n);
    r->p += n;
    return true;
}

static void test_golden(const char *data)
{
    size_t len = 0;
    uint8_t *fx = nf_read_file(NF_PRESIZE_FIXTURE, 1 << 24, &len);
    T_CHECK(fx != NULL, "fixture %s missing", NF_PRESIZE_FIXTURE);
    if (!fx) return;
    s_reader_t r = {fx, fx + len};
    char magic[4];
    uint32_t version = 0, n_cases = 0;
    T_CHECK(s_take(&r, magic, 4) && memcmp(magic, "NFPS", 4) == 0, "fixture magic");
    T_CHECK(s_take(&r, &version, 4) && version == 1, "fixture version %u", version);
    T_CHECK(s_take(&r, &n_cases, 4) && n_cases > 0, "fixture cases");
    loader_decoder_t *dec = loader_decoder_new();
    NF_CHECK(dec != NULL, "decoder");
    uint8_t *file = NULL, *out = NULL, *ws = NULL, *whole = NULL;
    size_t file_cap = 0;
    char path[1024], prev[1024] = "";
    const uint8_t *rgb = NULL;
    loader_decode_info_t info;
    int exact_cases = 0, full_decodes = 0;
    for (uint32_t k = 0; k < n_cases; k++) {
        uint16_t plen = 0;
        char rel[512];
        uint32_t rect[4], size;
        double px, py;
        uint64_t want_hash, want_full;
        uint8_t has_whole;
        bool ok = s_take(&r, &plen, 2) && plen < sizeof rel && s_take(&r, rel, plen);
        rel[ok ? plen : 0] = 0;
        ok = ok && s_take(&r, rect, 16) && s_take(&r, &px, 8) && s_take(&r, &py, 8) &&
             s_take(&r, &size, 4) && s_take(&r, &want_hash, 8) && s_take(&r, &want_full, 8) &&
             s_take(&r, &has_whole, 1);
        T_CHECK(ok, "fixture truncated at case %u", k);
        if (!ok) break;
        free(whole);
        whole = NULL;
        if (has_whole) {
            whole = nf_xmalloc((size_t)size * size * 3);
            T_CHECK(s_take(&r, whole, (size_t)size * size * 3), "fixture pixels");
        }
        snprintf(path, sizeof path, "%s/%s", data, rel);
        loader_bad_t bad;
        char detail[128];
        long n = loader_read_file(path, &file, &file_cap, &bad, detail, sizeof detail);
        T_CHECK(n > 0, "read %s: %s", path, detail);
        if (n <= 0) continue;
        if (strcmp(prev, rel) != 0) {
            snprintf(prev, sizeof prev, "%s", rel);
            full_decodes++;
        }
        rgb = loader_decoder_full(dec, file, (size_t)n, false, 0, &info);
        T_CHECK(rgb != NULL, "decode %s: %s", rel, info.detail);
        if (!rgb) continue;
        uint64_t full_hash = s_fnv1a(rgb, (size_t)info.width * info.height * 3);
        T_CHECK(full_hash == want_full, "%s: TurboJPEG decode differs from PIL's", rel);

        // the sub-rectangle is the source image; fastai crop + Pillow resize on it
        uint32_t crop[4];
        loader_presize_crop(rect[2], rect[3], size, px, py, crop);
        loader_resample_params_t rp = {.in_w = crop[2], .in_h = crop[3], .out_w = size, .out_h = size};
        rp.box[2] = (float)crop[2];
        rp.box[3] = (float)crop[3];
        size_t stride = (size_t)info.width * 3;
        const uint8_t *src = rgb + (size_t)(rect[1] + crop[1]) * stride + (size_t)(rect[0] + crop[0]) * 3;
        free(ws);
        ws = nf_xmalloc(loader_resample_workspace_bytes(&rp));
        free(out);
        out = nf_xmalloc((size_t)size * size * 3);
        loader_resample_rgb(&rp, src, stride, out, ws);
        uint64_t got = s_fnv1a(out, (size_t)size * size * 3);
        bool same = got == want_hash;
        T_CHECK(same, "%s rect %u,%u,%ux%u (%.3f,%.3f) S=%u differs from PIL", rel, rect[0],
                rect[1], rect[2], rect[3], px, py, size);
        if (!same && whole) {
            size_t diffs = 0;
            int maxd = 0;
            for (size_t i = 0; i < (size_t)size * size * 3; i++) {
                int d = abs((int)out[i] - (int)whole[i]);
                diffs += d != 0;
                maxd = d > maxd ? d : maxd;
            }
            fprintf(stderr, "  %zu bytes differ, max %d\n", diffs, maxd);
        }
        exact_cases += same;

        // the whole-file path equals the pieces when the rect is the whole image
        if (rect[0] == 0 && rect[1] == 0 && rect[2] == info.width && rect[3] == info.height) {
            loader_presize_params_t pp = {.size = size, .random_crop = false, .exact = true};
            uint8_t *out2 = nf_xmalloc((size_t)size * size * 3);
            loader_decode_info_t info2;
            int rc = loader_decoder_presize(dec, &pp, file, (size_t)n, out2, &info2);
            T_CHECK(rc == 0 && s_fnv1a(out2, (size_t)size * size * 3) == want_hash,
                    "%s: loader_decoder_presize differs from PIL", rel);
            free(out2);
        }
    }
    fprintf(stderr, "golden: %d of %u presize cases bit-exact vs PIL, %d files decoded\n",
            exact_cases, n_cases, full_decodes);
    free(whole);
    free(ws);
    free(out);
    free(file);
    free(fx);
    loader_decoder_destroy(&dec);
}

// DCT-scaled decode (target <= half the crop) against the exact path: close, not equal.
static void test_dct_scaled(const char *data)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/val/n03888257/ILSVRC2012_val_00001440.JPEG", data);
    uint8_t *file = NULL;
    size_t cap = 0;
    loader_bad_t bad;
    char detail[128];
    long n = loader_read_file(path, &file, &cap, &bad, detail, sizeof detail);
    T_CHECK(n > 0, "read: %s", detail);
    if (n <= 0) return;
    loader_decoder_t *dec = loader_decoder_new();
    const uint32_t S = 96;
    uint8_t *a = nf_xmalloc(S * S * 3), *b = nf_xmalloc(S * S * 3);
    loader_presize_params_t p = {.size = S, .random_crop = true, .seed = 9, .index = 17, .exact = true};
    loader_decode_info_t ia, ib;
    T_CHECK(loader_decoder_presize(dec, &p, file, (size_t)n, a, &ia) == 0, "exact");
    p.exact = false;
    T_CHECK(loader_decoder_presize(dec, &p, file, (size_t)n, b, &ib) == 0, "scaled");
    T_CHECK(ia.scale_num == 1 && ia.scale_den == 1, "exact path decodes full size");
    T_CHECK(ib.scale_num * 2 <= ib.scale_den, "224 -> 96 uses a DCT scale (%u/%u)", ib.scale_num,
            ib.scale_den);
    double sum = 0;
    for (uint32_t i = 0; i < S * S * 3; i++) sum += abs((int)a[i] - (int)b[i]);
    double mean = sum / (S * S * 3);
    fprintf(stderr, "DCT-scaled %u/%u vs exact at S=%u: mean abs diff %.3f\n", ib.scale_num,
            ib.scale_den, S, mean);
    T_CHECK(mean < 3.0, "scaled decode far from the exact one: mean abs diff %.3f", mean);
    free(a);
    free(b);
    free(file);
    loader_decoder_destroy(&dec);
}

int main(void)
{
    test_geometry();
    const char *data = t_data_dir_or_skip();
    test_golden(data);
    test_dct_scaled(data);
    return t_done();
}
