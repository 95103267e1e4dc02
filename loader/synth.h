/*
 * synth.h: a small generated image dataset, so that a first run on a machine
 * with no Imagenette and no network still shows the whole pipeline learning
 * (`loader gen-synthetic`, run.sh's offline fallback, tests).
 *
 * Writes an ImageFolder tree <out>/train/<class>/<n>.jpg and
 * <out>/val/<class>/<n>.jpg of real JPEG files (TurboJPEG). Each class is a
 * shape or texture (stripes in four orientations, disc, ring, checkerboard,
 * cross, triangle, dot grid, then further stripe angles), drawn at a random
 * position, scale and phase in two random colours over noise, on pictures of
 * random, not necessarily square, sizes. Colours say nothing about the class:
 * a model has to learn the shapes, which a small xresnet does in a few epochs.
 * Everything is a pure function of the seed (common/rng.h).
 *
 * It does not replace a real dataset: accuracy on it means only that the
 * pipeline works.
 */
#ifndef LOADER_SYNTH_H
#define LOADER_SYNTH_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *out;           // folder to create (must not exist or be empty)
    uint32_t classes;          // 2..32; 0 = 10
    uint32_t train_per_class;  // 0 = 100
    uint32_t valid_per_class;  // 0 = 30
    uint32_t min_side;         // 0 = 72
    uint32_t max_side;         // 0 = 112
    int quality;               // JPEG quality; 0 = 90
    uint64_t seed;             // 0 = 42
} loader_synth_config_t;

// Generates the dataset. Returns 0, or -1 with a one-line reason in err
// (bad config, folder not empty, a write failed).
int loader_synth_generate(const loader_synth_config_t *cfg, char *err, size_t errlen);

// The folder name of class k (k < classes), e.g. "disc".
const char *loader_synth_class_name(uint32_t k);

#endif
