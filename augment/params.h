/*
 * params.h: the augment stage's data model, and the host function that draws
 * every random parameter of a batch.
 *
 * fastai's chapter-7 batch pipeline (fastai-spec.md 3.2-3.6, 4, 8.1):
 *   u8 -> /255 -> [flip . rotate . zoom affine, then perspective warp: one
 *   grid sample at the presize] -> [RandomResizedCropGPU: one square crop per
 *   batch, area pre-shrink when > 2x, bilinear to `size`] -> [brightness and
 *   contrast in logit space, train only] -> Normalize -> Mixup (train only).
 *
 * augment_params_draw() turns a config and a batch's metadata (mode, epoch,
 * seq, pass, sample indices) into one augment_batch_params_t plus one
 * augment_image_params_t per image. It is the only place randomness enters,
 * and it runs on the host for both the CPU and the CUDA transform, so both
 * get bit-identical parameters by construction. Every draw is a pure function
 * of (seed, stream, epoch, index) through common/rng.h:
 *   per image   train: (seed, NF_RNG_STREAM_AUGMENT, epoch,      sample index)
 *               tta:   (seed, NF_RNG_STREAM_TTA,     2*pass,     sample index)
 *   crop box    train: (seed, NF_RNG_STREAM_CROP,    epoch,      seq)
 *               tta:   (seed, NF_RNG_STREAM_TTA,     2*pass + 1, seq)
 *   Mixup       train: (seed, NF_RNG_STREAM_MIXUP,   epoch,      seq)
 * Validation draws nothing.
 *
 * This header declares no pixel code: the per-pixel math shared by both
 * backends is in pixel.h, the batch op in transform.h.
 */
#ifndef NF_AUGMENT_PARAMS_H
#define NF_AUGMENT_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rng.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    AUGMENT_MODE_TRAIN = 0,  // random transforms, lighting, Mixup when alpha > 0
    AUGMENT_MODE_VALID = 1,  // identity geometry, full-image crop, no lighting, no Mixup
    AUGMENT_MODE_TTA = 2     // validation items with the training transforms, no Mixup
} augment_mode_t;

typedef enum {
    // One bilinear resample per output pixel through crop, affine and warp, with a
    // k x k box supersample (k = ceil(scale - 0.25), 1..4) when shrinking.
    AUGMENT_RESAMPLE_FUSED = 0,
    // fastai exactly: affine+warp grid sample at the presize, then the batch's
    // crop area-pre-shrunk when > 2x and bilinearly resized (two resamples).
    AUGMENT_RESAMPLE_REFERENCE = 1
} augment_resample_t;

typedef enum { AUGMENT_DTYPE_F32 = 0, AUGMENT_DTYPE_BF16 = 1 } augment_dtype_t;

typedef enum { AUGMENT_BACKEND_CPU = 0, AUGMENT_BACKEND_CUDA = 1 } augment_backend_t;

// Everything the stage is configured with. augment_config_defaults() gives the
// chapter's recipe: aug_transforms(size=224, min_scale=0.75) with fastai's
// defaults, presize 460, Normalize(imagenet_stats), no Mixup.
typedef struct {
    // aug_transforms (fastai names and meaning)
    bool do_flip;        // horizontal flip with p = 0.5
    float max_rotate;    // degrees; 0 = no Rotate
    float min_zoom;      // zoom draws U(min_zoom, max_zoom); both 1 = no Zoom
    float max_zoom;
    float max_lighting;  // brightness/contrast strength; 0 = no lighting
    float max_warp;      // perspective magnitude; 0 = no Warp
    float p_affine;      // keep-probability of each rotate/zoom/warp draw
    float p_lighting;    // keep-probability of each brightness/contrast draw
    float min_scale;     // RandomResizedCropGPU area range; 1 = no crop stage
    float max_scale;
    float ratio_lo;      // crop aspect range (aug_transforms passes (1, 1))
    float ratio_hi;
    // sizes
    int size;            // output side
    int presize;         // input side (the loader's Resize); inputs must be presize^2
    int max_batch;       // largest n accepted; buffers are sized for it once
    augment_resample_t resample;
    // Normalize
    bool normalize;      // false = output stays in [0, 1] (the chapter's baseline)
    float mean[3];       // RGB, for data in [0, 1]
    float std[3];
    // Mixup
    float mixup_alpha;   // Beta(alpha, alpha); 0 = off
    // output and execution
    augment_dtype_t dtype;
    uint64_t seed;
    augment_backend_t backend;
    int threads;         // CPU: OpenMP threads (0 = OpenMP's default)
    int device;          // CUDA: device ordinal
} augment_config_t;

// The chapter's recipe (see above); seed 0, CPU backend.
void augment_config_defaults(augment_config_t *cfg);
// Validates a config. Returns 0, or -1 with a one-line reason in err.
int augment_config_check(const augment_config_t *cfg, char *err, size_t errlen);

// One raw batch as the loader delivers it.
typedef struct {
    const uint8_t *pixels;     // (n, h, w, 3) RGB
    int n, h, w;
    const int32_t *labels;     // (n)
    const uint32_t *indices;   // (n) dataset sample index of each row
    uint32_t epoch, seq, pass; // seq: batch number in the epoch; pass: TTA pass
    augment_mode_t mode;
} augment_raw_t;

// Parameters of one image. The first block is what was drawn (fastai's
// meaning; neutral values when a coin failed), the second what the kernels use.
typedef struct {
    float flip;          // -1 mirrored, +1 not
    float rotate_deg;    // rotation in degrees
    float zoom;          // z >= 1 (scale 1/z)
    float zoom_cx;       // zoom centre fractions in [0, 1)
    float zoom_cy;
    float warp_a;        // fastai's x_t and y_t: corner displacements
    float warp_b;
    float bright;        // b in (0, 1); 0.5 = unchanged
    float contrast;      // c > 0; 1 = unchanged

    float mat[6];        // 2x3 row-major affine: A-grid normalized -> source normalized
    float warp[8];       // perspective c0..c7 (c8 = 1), applied after mat
    float bright_odds;   // b' / (1 - b'), b' = clamp(b, 1e-7, 1 - 1e-7)
    float lambda;        // Mixup weight on this image (1 = unmixed)
    int32_t partner;     // Mixup partner row (own row = unmixed)
    int32_t ss;          // fused resample: k x k supersampling (1..4)
} augment_image_params_t;

// Parameters shared by the whole batch (the geometry of the stages, the crop
// box, flags). Plain ints and floats: passed by value to the CUDA kernel.
typedef struct {
    int32_t n;
    int32_t resample;        // augment_resample_t
    int32_t src_h, src_w;    // input (presize)
    int32_t out_h, out_w;    // output (size)
    // stage A: affine + warp grid sample, producing an a_h x a_w image
    int32_t a_h, a_w;        // = src (crop stage on) or = out (no crop stage)
    int32_t a_identity;      // valid: identity map; reference mode copies pixels
    int32_t warp_on;         // perspective applied (batch-wide, as fastai)
    int32_t s_h, s_w;        // what stage A samples: src, or src area-shrunk to this
    int32_t src_shrink;      // reference, no crop stage: area pre-shrink of the source
    // stage B: RandomResizedCropGPU (one crop per batch)
    int32_t crop_on;
    int32_t crop_x0, crop_y0, crop_w, crop_h;  // box in A-grid pixels
    int32_t crop_shrink;     // reference: area pre-shrink of the crop ...
    int32_t cs_h, cs_w;      // ... to this size (= crop size when off)
    // per-batch constants of the per-pixel maps (computed once on the host)
    float a_step_x, a_step_y;    // 2 / (a_w - 1): A-grid pixel -> normalized
    float s_half_w, s_half_h;    // (s_w - 1) / 2: normalized -> sampled-image pixel
    float o_step_x, o_step_y;    // 2 / (out_w - 1): output pixel -> normalized
    float cs_half_w, cs_half_h;  // (cs_w - 1) / 2: normalized -> (shrunk) crop pixel
    float f_scale_x, f_scale_y;  // fused: output pixel -> A-grid pixel scale ...
    float f_off_x, f_off_y;      // ... and offset (the crop box; 1 and 0 without)
    // pixel stage
    int32_t light_on;        // train/TTA with max_lighting != 0
    int32_t norm_on;
    float mean[3];
    float inv_std[3];
    int32_t mix_on;          // some row has a partner other than itself
} augment_batch_params_t;

// The batch's crop box in A-grid pixels (RandomResizedCropGPU's choice).
typedef struct {
    int x0, y0, w, h;
} augment_crop_t;

// Draws the parameters of one batch: the per-image draws, the crop box and
// Mixup, then augment_params_build(). img must hold raw->n entries. The raw
// batch must already be validated (augment_raw_check); pixels are not read.
void augment_params_draw(const augment_config_t *cfg, const augment_raw_t *raw,
                         augment_batch_params_t *bp, augment_image_params_t *img);

// The deterministic half of the draw: from the drawn fields of img (flip ..
// contrast, lambda, partner) and the crop box (ignored without a crop stage),
// computes every derived field of img and all of bp. Tests use it to replay
// given draws.
void augment_params_build(const augment_config_t *cfg, const augment_raw_t *raw,
                          const augment_crop_t *crop, augment_batch_params_t *bp,
                          augment_image_params_t *img);
// Neutral draws for row `row`: no flip, rotation, zoom, warp, lighting or Mixup.
void augment_params_neutral(augment_image_params_t *p, int row);

// Checks a raw batch against the config (an external input: sizes, pointers,
// index range). Returns 0, or -1 with a one-line reason in err.
int augment_raw_check(const augment_config_t *cfg, const augment_raw_t *raw, char *err,
                      size_t errlen);

// ---------------------------------------------------------------------------
// The deterministic pieces of the draw, exposed for the golden tests.

// fastai's merged flip . rotate . zoom matrix with the aspect correction for
// an in_h x in_w input (flip_mat, rotate_mat, zoom_mat, _prepare_mat).
void augment_affine_matrix(float flip, float rotate_deg, float zoom, float zoom_cx, float zoom_cy,
                           int in_h, int in_w, float mat[6]);
// The perspective c0..c7 mapping fastai's moved corners onto the reference
// corners (_WarpCoord, find_coeffs): an 8x8 solve in double.
void augment_warp_coeffs(float warp_a, float warp_b, float coeffs[8]);
// fastai's _grid_sample pre-shrink: for an in_h x in_w input resampled to an
// out_h x out_w grid whose coordinates span z = 2/(max - min), returns 1 and
// the area-interpolate output size when fastai shrinks first, else 0.
int augment_preshrink_size(int in_h, int in_w, int out_h, int out_w, double z, int *sh, int *sw);
// RandomResizedCropGPU.before_call for an h x w input: the crop box. rng is
// NULL for validation (the centred full/clamped box).
void augment_crop_box(const augment_config_t *cfg, int h, int w, nf_rng_t *rng, int *x0, int *y0,
                      int *cw, int *ch);
// Fused mode: the supersampling factor for a local scale (source pixels per
// output pixel).
int augment_supersample_factor(double scale);
// One Beta(alpha, alpha) draw (via two Gamma draws, Marsaglia-Tsang) from rng.
double augment_beta_draw(nf_rng_t *rng, double alpha);

#ifdef __cplusplus
}
#endif

#endif
