/*
 * imgdir.h: the augment tool's own tiny image source: lists an
 * Imagenette-style folder (<root>/<split>/<class>/<file>.JPEG, classes in
 * sorted order = label), decodes a JPEG with TurboJPEG and presizes it
 * (centre square crop, antialiased triangle-filter resize).
 *
 * Local to the tools and tests of the augment stage: the product's decode
 * and presize path is the loader's (TurboJPEG DCT scaling, fastai's random
 * presize crop, Pillow-exact resampling); this only feeds real pictures to
 * show-batch, the benchmark and the Imagenette statistics test.
 */
#ifndef NF_AUGMENT_IMGDIR_H
#define NF_AUGMENT_IMGDIR_H

#include <stdint.h>

#define IMGDIR_MAX_CLASSES 1000

typedef struct {
    int n;                  // files
    char **paths;           // (n) full paths, sorted by class then name
    int32_t *labels;        // (n) class index
    int n_classes;
    char **classes;         // (n_classes) folder names (wnids), sorted
} imgdir_t;

// Lists root/split. Returns NULL with one logged line when the folder is
// missing or holds no JPEG.
imgdir_t *imgdir_open(const char *root, const char *split);
void imgdir_destroy(imgdir_t **self_p);

// Decodes path (any JPEG TurboJPEG reads; grey becomes RGB) and writes its
// centred square, resized to presize x presize, into out (presize, presize, 3).
// Returns 0, or -1 with one logged line (unreadable, not a JPEG, ...).
int imgdir_load(const char *path, int presize, uint8_t *out);

// The human name of an Imagenette class folder ("n01440764" -> "tench");
// other names are returned unchanged.
const char *imgdir_class_name(const char *wnid);

#endif
