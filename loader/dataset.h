/*
 * dataset.h: the dataset index: which image files exist, their class, their split.
 *
 * Follows fastai's get_image_files + parent_label + splitter + Categorize
 * (fastai-spec.md §1.2-1.5):
 *   - files are found by walking the folders recursively (following symlinks),
 *     skipping every file or folder whose name starts with '.', keeping a file
 *     when the lower-cased text after its last dot is one of fastai's image
 *     extensions (Python 3.11's mimetypes image/ list: .jpg .jpeg .png .bmp ...;
 *     only JPEG files decode, the others are reported as bad files later);
 *   - paths are sorted (bytewise) for determinism, where fastai keeps os.walk order;
 *   - the label is the parent folder's name;
 *   - split FOLDERS (GrandparentSplitter): <root>/<train_name>/<class>/<file> and
 *     <root>/<valid_name>/...; split RANDOM (RandomSplitter): every image under
 *     root, a seeded permutation of the sorted list, the first int(valid_pct*N)
 *     are validation; AUTO picks FOLDERS when both folders exist;
 *   - the vocabulary is the sorted set of the training split's labels; a
 *     validation file whose class never occurs in training is left out (logged),
 *     where fastai would raise.
 * An item's index is its position in the sorted list of kept files; it is the
 * sample index used in tasks, batches and randomness.
 *
 * The root may also be a pack (pack.h): its index lists the files of the
 * folder it was made from, which then give the same items in the same order.
 *
 * It does not open any image (see decode.h).
 */
#ifndef LOADER_DATASET_H
#define LOADER_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    LOADER_SPLIT_AUTO = 0,
    LOADER_SPLIT_FOLDERS = 1,
    LOADER_SPLIT_RANDOM = 2,
} loader_split_mode_t;

enum { LOADER_TRAIN = 0, LOADER_VALID = 1 };

typedef struct {
    const char *root;          // dataset folder
    const char *train_name;    // NULL = "train"
    const char *valid_name;    // NULL = "val" (Imagenette; fastai's default is "valid")
    loader_split_mode_t mode;  // AUTO by default
    double valid_pct;          // RANDOM split: fraction in validation; 0 = 0.2
    uint64_t seed;             // RANDOM split seed (stream NF_RNG_STREAM_SPLIT)
} loader_dataset_config_t;

typedef struct {
    const char *path;          // relative to the root
    int32_t label;             // class index into the vocabulary
    uint8_t split;             // LOADER_TRAIN or LOADER_VALID
} loader_item_t;

typedef struct loader_dataset_t loader_dataset_t;

// Builds the index. On a user error (missing folder, no images, no training
// items) returns NULL and writes a one-line reason to err.
loader_dataset_t *loader_dataset_new(const loader_dataset_config_t *cfg, char *err,
                                     size_t err_len);
void loader_dataset_destroy(loader_dataset_t **self_p);

const char *loader_dataset_root(const loader_dataset_t *self);
loader_split_mode_t loader_dataset_mode(const loader_dataset_t *self);  // FOLDERS or RANDOM
uint32_t loader_dataset_n_items(const loader_dataset_t *self);
const loader_item_t *loader_dataset_item(const loader_dataset_t *self, uint32_t index);
uint32_t loader_dataset_n_classes(const loader_dataset_t *self);
const char *loader_dataset_class_name(const loader_dataset_t *self, uint32_t label);
// Item indices of one split, ascending. *n gets the count.
const uint32_t *loader_dataset_split(const loader_dataset_t *self, int split, uint32_t *n);

// True when name's extension is one of fastai's image extensions.
bool loader_dataset_is_image_name(const char *name);

#endif
