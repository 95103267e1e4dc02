/*
 * imgdir.c: see imgdir.h.
 */
#include "imgdir.h"

#include "check.h"
#include "fsutil.h"
#include "log.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <turbojpeg.h>

// "a/b" in a new allocation.
static char *s_join(const char *a, const char *b)
{
    size_t len = strlen(a) + strlen(b) + 2;
    char *p = nf_xmalloc(len);
    snprintf(p, len, "%s/%s", a, b);
    return p;
}

static int s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

// Sorted entries of dir whose name passes keep(); NULL when unreadable.
static char **s_list(const char *dir, int (*keep)(const char *dir, const char *name), int *count)
{
    DIR *d = opendir(dir);
    if (!d) return NULL;
    int n = 0, cap = 64;
    char **v = nf_xmalloc((size_t)cap * sizeof *v);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !keep(dir, e->d_name)) continue;
        if (n == cap) v = nf_xrealloc(v, (size_t)(cap *= 2) * sizeof *v);
        v[n++] = nf_xstrdup(e->d_name);
    }
    closedir(d);
    qsort(v, (size_t)n, sizeof *v, s_cmp_str);
    *count = n;
    return v;
}

static int s_is_subdir(const char *dir, const char *name)
{
    char *p = s_join(dir, name);
    int yes = nf_is_dir(p);
    free(p);
    return yes;
}

static int s_is_jpeg(const char *dir, const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpeg") == 0 || strcasecmp(dot, ".jpg") == 0) &&
           !s_is_subdir(dir, name);
}

imgdir_t *imgdir_open(const char *root, const char *split)
{
    char *dir = s_join(root, split);
    int nc = 0;
    char **classes = s_list(dir, s_is_subdir, &nc);
    if (!classes) {
        nf_log_error("augment: cannot read image folder %s", dir);
        free(dir);
        return NULL;
    }
    imgdir_t *self = nf_xcalloc(1, sizeof *self);
    self->classes = classes;
    self->n_classes = nc;
    int cap = 1024;
    self->paths = nf_xmalloc((size_t)cap * sizeof *self->paths);
    self->labels = nf_xmalloc((size_t)cap * sizeof *self->labels);
    for (int c = 0; c < nc && c < IMGDIR_MAX_CLASSES; c++) {
        char *cdir = s_join(dir, classes[c]);
        int nf = 0;
        char **files = s_list(cdir, s_is_jpeg, &nf);
        for (int i = 0; files && i < nf; i++) {
            if (self->n == cap) {
                cap *= 2;
                self->paths = nf_xrealloc(self->paths, (size_t)cap * sizeof *self->paths);
                self->labels = nf_xrealloc(self->labels, (size_t)cap * sizeof *self->labels);
            }
            self->paths[self->n] = s_join(cdir, files[i]);
            self->labels[self->n++] = c;
            free(files[i]);
        }
        free(files);
        free(cdir);
    }
    if (self->n == 0) {
        nf_log_error("augment: no JPEG files under %s/<class>/", dir);
        imgdir_destroy(&self);
    }
    free(dir);
    return self;
}

void imgdir_destroy(imgdir_t **self_p)
{
    if (!self_p || !*self_p) return;
    imgdir_t *self = *self_p;
    for (int i = 0; i < self->n; i++) free(self->paths[i]);
    for (int c = 0; c < self->n_classes; c++) free(self->classes[c]);
    free(self->paths);
    free(self->labels);
    free(self->classes);
    free(self);
    *self_p = NULL;
}

// Resizes each of `lines` lines of n_in RGB float pixels to n_out pixels
// with a triangle filter whose support widens by the shrink factor (so a
// shrink is antialiased, as Pillow's bilinear): in (lines, n_in, 3) ->
// out (lines, n_out, 3).
static void s_resize_rows(const float *in, int n_in, int lines, int n_out, float *out)
{
    double scale = (double)n_in / n_out, fs = scale > 1 ? scale : 1, support = fs;
    double *w = nf_xmalloc(((size_t)(2 * support) + 3) * sizeof *w);
    for (int o = 0; o < n_out; o++) {
        double center = (o + 0.5) * scale, wsum = 0;
        int lo = (int)floor(center - support + 0.5), hi = (int)floor(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > n_in) hi = n_in;
        for (int k = 0; k < hi - lo; k++) {
            double t = fabs((lo + k - center + 0.5) / fs);
            w[k] = t < 1 ? 1 - t : 0;
            wsum += w[k];
        }
        for (int l = 0; l < lines; l++)
            for (int c = 0; c < 3; c++) {
                double acc = 0;
                for (int k = 0; k < hi - lo; k++)
                    acc += w[k] * in[((size_t)l * n_in + lo + k) * 3 + c];
                out[((size_t)l * n_out + o) * 3 + c] = (float)(wsum > 0 ? acc / wsum : 0);
            }
    }
    free(w);
}

// Transposes an (h, w, 3) float image into (w, h, 3).
static void s_transpose(const float *in, int h, int w, float *out)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            memcpy(out + ((size_t)x * h + y) * 3, in + ((size_t)y * w + x) * 3, 3 * sizeof(float));
}

int imgdir_load(const char *path, int presize, uint8_t *out)
{
    size_t len = 0;
    unsigned char *jpg = nf_read_file(path, 64u << 20, &len);
    if (!jpg) {
        nf_log_error("augment: cannot read %s", path);
        return -1;
    }
    tjhandle tj = tjInitDecompress();
    NF_CHECK(tj, "tjInitDecompress failed");
    int w = 0, h = 0, sub = 0, cs = 0, rc = -1;
    uint8_t *rgb = NULL;
    unsigned long jlen = (unsigned long)len;
    if (tjDecompressHeader3(tj, jpg, jlen, &w, &h, &sub, &cs) != 0 || w < 1 || h < 1 || w > 16384 ||
        h > 16384) {
        nf_log_error("augment: %s: not a readable JPEG (%s)", path, tjGetErrorStr2(tj));
        goto done;
    }
    rgb = nf_xmalloc((size_t)w * h * 3);
    // a warning (corrupt but decodable data) keeps the picture; a fatal error does not
    if (tjDecompress2(tj, jpg, jlen, rgb, w, 0, h, TJPF_RGB, TJFLAG_ACCURATEDCT) != 0 &&
        tjGetErrorCode(tj) == TJERR_FATAL) {
        nf_log_error("augment: %s: decode failed (%s)", path, tjGetErrorStr2(tj));
        goto done;
    }
    {
        // centre square, then rows then columns (through a transpose)
        int side = w < h ? w : h, x0 = (w - side) / 2, y0 = (h - side) / 2;
        float *sq = nf_xmalloc((size_t)side * side * 3 * sizeof(float));
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side * 3; x++)
                sq[(size_t)y * side * 3 + x] = rgb[((size_t)(y0 + y) * w + x0) * 3 + x];
        size_t big = (size_t)(side > presize ? side : presize) * presize * 3 * sizeof(float);
        float *a = nf_xmalloc(big), *b = nf_xmalloc(big);
        float *c = nf_xmalloc((size_t)presize * presize * 3 * sizeof(float));
        s_resize_rows(sq, side, side, presize, a);  // (side, presize)
        s_transpose(a, side, presize, b);           // (presize, side)
        s_resize_rows(b, side, presize, presize, c);  // (presize, presize), transposed
        s_transpose(c, presize, presize, a);
        for (size_t i = 0; i < (size_t)presize * presize * 3; i++) {
            float v = a[i] + 0.5f;
            out[i] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
        free(sq);
        free(a);
        free(b);
        free(c);
        rc = 0;
    }
done:
    free(rgb);
    free(jpg);
    NF_CHECK(tjDestroy(tj) == 0, "tjDestroy failed");
    return rc;
}

const char *imgdir_class_name(const char *wnid)
{
    static const char *const s_names[][2] = {
        {"n01440764", "tench"},         {"n02102040", "English springer"},
        {"n02979186", "cassette player"}, {"n03000684", "chain saw"},
        {"n03028079", "church"},        {"n03394916", "French horn"},
        {"n03417042", "garbage truck"}, {"n03425413", "gas pump"},
        {"n03445777", "golf ball"},     {"n03888257", "parachute"},
    };
    for (size_t i = 0; i < NF_ARRAY_LEN(s_names); i++)
        if (strcmp(wnid, s_names[i][0]) == 0) return s_names[i][1];
    return wnid;
}
