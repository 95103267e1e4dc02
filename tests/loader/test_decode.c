/*
 * test_decode.c: the decoder on every kind of input.
 *   - good files made at test time: baseline RGB, grayscale (-> R=G=B),
 *     CMYK (Pillow's inverted-Adobe reading), progressive: all close to the
 *     pattern they encode, presized without error;
 *   - bad files: zero-byte, text, PNG, header cut, oversized header (rejected
 *     before any pixel memory), lossless SOF3 (unsupported), truncated and
 *     corrupt entropy data (kept with a warning, or bad under --strict-jpeg),
 *     a missing file (io), the pixel limit;
 *   - an independent decoder (stb_image, when built with it) agrees with our
 *     TurboJPEG decode of real Imagenette files to within IDCT rounding.
 */
#include "decode.h"
#include "jpegfix.h"
#include "testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#ifdef NF_HAVE_STB
#include <stb_image.h>
#endif

static double s_mean_abs(const uint8_t *a, const uint8_t *b, size_t n, int *maxd)
{
    double s = 0;
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        s += d;
        m = d > m ? d : m;
    }
    if (maxd) *maxd = m;
    return s / (double)n;
}

static void test_good_kinds(loader_decoder_t *dec)
{
    const uint32_t w = 120, h = 90;
    uint8_t *want = nf_xmalloc(w * h * 3);
    jf_pattern(w, h, 4, want);
    static const char *names[] = {"rgb", "gray", "cmyk", "progressive"};
    for (int k = JF_RGB; k <= JF_PROGRESSIVE; k++) {
        size_t len;
        uint8_t *j = jf_jpeg(w, h, 4, (jf_kind_t)k, &len);
        loader_decode_info_t info;
        const uint8_t *rgb = loader_decoder_full(dec, j, len, true, 0, &info);
        T_CHECK(rgb != NULL, "%s: %s", names[k], info.detail);
        if (!rgb) {
            free(j);
            continue;
        }
        T_CHECK(info.width == w && info.height == h && !info.warning, "%s: header", names[k]);
        if (k == JF_GRAY) {
            bool equal = true;
            uint8_t *gray = nf_xmalloc(w * h * 3);
            for (size_t i = 0; i < (size_t)w * h; i++) {
                equal &= rgb[3 * i] == rgb[3 * i + 1] && rgb[3 * i] == rgb[3 * i + 2];
                // Pillow's L from RGB: (299 R + 587 G + 114 B) / 1000, as JPEG's Y
                int y = (299 * want[3 * i] + 587 * want[3 * i + 1] + 114 * want[3 * i + 2] + 500) / 1000;
                gray[3 * i] = gray[3 * i + 1] = gray[3 * i + 2] = (uint8_t)y;
            }
            T_CHECK(equal, "gray decodes to R=G=B");
            double d = s_mean_abs(rgb, gray, (size_t)w * h * 3, NULL);
            T_CHECK(d < 3.0, "gray: mean abs diff %.2f", d);
            free(gray);
        } else {
            double d = s_mean_abs(rgb, want, (size_t)w * h * 3, NULL);
            T_CHECK(d < (k == JF_CMYK ? 4.0 : 3.0), "%s: mean abs diff from the pattern %.2f",
                    names[k], d);
        }
        T_CHECK((k == JF_CMYK) == (info.colorspace == TJCS_YCCK || info.colorspace == TJCS_CMYK),
                "%s: colour space %d", names[k], info.colorspace);
        uint8_t out[64 * 64 * 3];
        loader_presize_params_t p = {.size = 64, .random_crop = true, .seed = 3, .index = 9};
        T_CHECK(loader_decoder_presize(dec, &p, j, len, out, &info) == 0, "%s presize", names[k]);
        T_CHECK(info.crop[2] == 90 && info.crop[1] == 0, "%s: crop %u at y %u", names[k], info.crop[2],
                info.crop[1]);
        free(j);
    }
    free(want);
}

static void test_bad_kinds(loader_decoder_t *dec)
{
    static const struct {
        jf_bad_t kind;
        loader_bad_t lenient, strict;  // expected reason, LOADER_BAD_NONE = decoded
        bool warning;
    } cases[] = {
        {JF_BAD_EMPTY, LOADER_BAD_EMPTY, LOADER_BAD_EMPTY, false},
        {JF_BAD_TEXT, LOADER_BAD_NOT_JPEG, LOADER_BAD_NOT_JPEG, false},
        {JF_BAD_PNG, LOADER_BAD_NOT_JPEG, LOADER_BAD_NOT_JPEG, false},
        {JF_BAD_HEADER_CUT, LOADER_BAD_HEADER, LOADER_BAD_HEADER, false},
        {JF_BAD_TRUNCATED, LOADER_BAD_NONE, LOADER_BAD_TRUNCATED, true},
        {JF_BAD_CORRUPT, LOADER_BAD_NONE, LOADER_BAD_TRUNCATED, true},
        {JF_BAD_OVERSIZED, LOADER_BAD_TOO_LARGE, LOADER_BAD_TOO_LARGE, false},
        {JF_BAD_LOSSLESS, LOADER_BAD_UNSUPPORTED, LOADER_BAD_UNSUPPORTED, false},
    };
    uint8_t out[32 * 32 * 3];
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (size_t c = 0; c < NF_ARRAY_LEN(cases); c++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/bad/%zu.jpg", t_tmpdir(), c);
        jf_write_bad(path, cases[c].kind);
        loader_bad_t why = LOADER_BAD_NONE;
        char detail[128];
        long len = loader_read_file(path, &buf, &cap, &why, detail, sizeof detail);
        T_CHECK(len >= 0, "read %s: %s", path, detail);
        for (int strict = 0; strict < 2; strict++) {
            loader_presize_params_t p = {.size = 32, .strict = strict};
            loader_decode_info_t info;
            int rc = loader_decoder_presize(dec, &p, buf, (size_t)len, out, &info);
            loader_bad_t want = strict ? cases[c].strict : cases[c].lenient;
            T_CHECK((rc == 0) == (want == LOADER_BAD_NONE) && info.bad == want,
                    "case %zu strict %d: got %s (%s), want %s", c, strict, loader_bad_name(info.bad),
                    info.detail, loader_bad_name(want));
            if (!strict) T_CHECK(info.warning == cases[c].warning, "case %zu warning flag", c);
            if (cases[c].kind == JF_BAD_OVERSIZED)
                T_CHECK(info.width == 60000 && info.height == 60000, "oversized header read");
            // a bad file never spoils the decoder for the next good one
            size_t glen;
            uint8_t *good = jf_jpeg(50, 40, 2, JF_RGB, &glen);
            T_CHECK(loader_decoder_presize(dec, &p, good, glen, out, &info) == 0,
                    "good file after case %zu: %s", c, info.detail);
            free(good);
        }
    }
    // the pixel limit is a parameter: a 96x80 image is too large under 5000 pixels
    size_t len;
    uint8_t *j = jf_jpeg(96, 80, 1, JF_RGB, &len);
    loader_presize_params_t p = {.size = 32, .max_pixels = 5000};
    loader_decode_info_t info;
    int rc = loader_decoder_presize(dec, &p, j, len, out, &info);
    T_CHECK(rc == -1 && info.bad == LOADER_BAD_TOO_LARGE, "pixel limit: rc %d %s (%s)", rc,
            loader_bad_name(info.bad), info.detail);
    free(j);
    loader_bad_t why;
    char detail[128];
    T_CHECK(loader_read_file("/nonexistent/x.jpg", &buf, &cap, &why, detail, sizeof detail) == -1 &&
                why == LOADER_BAD_IO,
            "missing file: io");
    T_CHECK(strcmp(loader_bad_name(LOADER_BAD_NOT_JPEG), "not_jpeg") == 0, "names");
    free(buf);
}

static void test_independent_decoder(loader_decoder_t *dec)
{
#ifdef NF_HAVE_STB
    const char *data = getenv("NF_DATA_DIR");
    char list[1024];
    snprintf(list, sizeof list, "%s/val/n03028079", data ? data : "");
    FILE *ls = NULL;
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls '%s' 2>/dev/null | head -200", list);
    ls = data ? popen(cmd, "r") : NULL;
    if (!ls) {
        fprintf(stderr, "SKIP (part): no Imagenette for the independent decode\n");
        return;
    }
    char name[512], path[1800];
    int files = 0, worst = 0;
    double sum = 0;
    uint8_t *buf = NULL;
    size_t cap = 0;
    while (fgets(name, sizeof name, ls)) {
        name[strcspn(name, "\n")] = 0;
        snprintf(path, sizeof path, "%s/%s", list, name);
        loader_bad_t why;
        char detail[128];
        long len = loader_read_file(path, &buf, &cap, &why, detail, sizeof detail);
        if (len <= 0) continue;
        loader_decode_info_t info;
        const uint8_t *ours = loader_decoder_full(dec, buf, (size_t)len, true, 0, &info);
        int w, h, comp;
        uint8_t *theirs = stbi_load_from_memory(buf, (int)len, &w, &h, &comp, 3);
        T_CHECK(ours && theirs, "%s decodes with both: ours %s, stb %s", name, ours ? "ok" : info.detail, theirs ? "ok" : stbi_failure_reason());
        if (ours && theirs) {
            T_CHECK((uint32_t)w == info.width && (uint32_t)h == info.height, "%s size", name);
            int maxd;
            double d = s_mean_abs(ours, theirs, (size_t)w * h * 3, &maxd);
            T_CHECK(d < 0.5, "%s: mean abs diff from stb_image %.3f", name, d);
            sum += d;
            worst = maxd > worst ? maxd : worst;
            files++;
        }
        stbi_image_free(theirs);
    }
    pclose(ls);
    free(buf);
    if (files == 0) {
        fprintf(stderr, "SKIP (part): no Imagenette files at %s\n", list);
        return;
    }
    fprintf(stderr, "independent decode (stb_image) of %d files: mean abs diff %.3f, worst pixel %d\n",
            files, sum / files, worst);
    // measured: mean 0.07, worst 3 (IDCT and upsampling rounding differ)
    T_CHECK(sum / files < 0.3, "mean abs diff %.3f over %d files", sum / files, files);
    T_CHECK(worst <= 8, "a pixel differs by %d", worst);
#else
    (void)dec;
    fprintf(stderr, "SKIP (part): built without stb_image (libstb-dev)\n");
#endif
}

int main(void)
{
    loader_decoder_t *dec = loader_decoder_new();
    NF_CHECK(dec != NULL, "decoder");
    test_good_kinds(dec);
    test_bad_kinds(dec);
    test_independent_decoder(dec);
    loader_decoder_destroy(&dec);
    T_CHECK(dec == NULL, "destroy nulls");
    return t_done();
}
