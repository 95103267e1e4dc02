/*
 * augment.h: the augment stage as a library: raw uint8 batches at the presize
 * in, model-ready tensors at `size` out (fastai's aug_transforms, Normalize and
 * Mixup; docs/augment.md).
 *
 * One context per stream of batches:
 *     augment_config_t cfg;
 *     augment_config_defaults(&cfg);            // the chapter's recipe
 *     augment_t *aug = augment_new(&cfg);       // buffers sized once
 *     augment_batch(aug, &out, &raw);           // per batch: no allocation
 *     augment_destroy(&aug);
 * The backend (CPU with OpenMP, or CUDA) is chosen once, in augment_new, by
 * cfg.backend; both run the same transform (transform.h) on the same drawn
 * parameters (params.h), so they agree to float rounding.
 *
 * What it does not do: decode JPEGs, talk to sockets, or compute losses. The
 * augment process (next round) is a loop of receive -> augment_batch -> send
 * around this API; the Mixup loss is the kernels library's op, fed with the
 * labels, partner labels and weights this stage writes.
 */
#ifndef NF_AUGMENT_H
#define NF_AUGMENT_H

#include "params.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct augment_t augment_t;

// One output batch. The caller owns every buffer (host memory):
// pixels holds augment_out_bytes(ctx, n); the three (n) arrays may be NULL.
typedef struct {
    void *pixels;             // (n, size, size, 3) NHWC, f32 or bf16 (cfg.dtype)
    int32_t *labels;          // (n) the raw labels (-1 when the raw batch had none)
    int32_t *partner_labels;  // (n) Mixup: label of the partner row (own label when unmixed)
    float *weights;           // (n) Mixup: lambda on labels[i] (1 when unmixed)
    // set by augment_batch:
    int n, h, w, c;
    augment_dtype_t dtype;
} augment_out_t;

// A context for cfg (copied). NULL with one logged line when cfg is invalid or
// the CUDA backend was asked for and is unavailable.
augment_t *augment_new(const augment_config_t *cfg);
// Frees the context and nulls *self_p. Accepts NULL.
void augment_destroy(augment_t **self_p);

// Bytes of out->pixels for a batch of n.
size_t augment_out_bytes(const augment_t *self, int n);

// Transforms one raw batch into out. Returns 0, or -1 (logged, counted in
// augment_bad_batches) when the raw batch is malformed (sizes, pointers,
// mode): an external fault that loses nothing else.
int augment_batch(augment_t *self, augment_out_t *out, const augment_raw_t *raw);
uint64_t augment_bad_batches(const augment_t *self);

// CUDA backend: augment_batch with the pixels left on the device: out->pixels
// is device memory (e.g. a devring slot, common/devring.h) that the kernel
// writes on augment_stream() without anyone waiting (publish the slot on that
// stream); labels and Mixup arrays are host memory as usual. Returns 0, or
// -1 (logged) for a malformed raw batch or a CPU context.
int augment_batch_device(augment_t *self, augment_out_t *out, const augment_raw_t *raw);
// The cudaStream_t (as void *) the CUDA backend runs on; NULL on the CPU.
void *augment_stream(const augment_t *self);

// fastai's Normalize() without stats: the per-channel mean and unbiased std
// (+ 1e-7) over (N, H, W) of one batch passed through every earlier batch
// transform (random geometry and lighting, no Normalize, no Mixup), as
// fastai's setups computes them from one training batch. Allocates a
// temporary output once (a set-up call, not a per-batch one). Returns 0 or -1.
int augment_compute_stats(augment_t *self, const augment_raw_t *raw, float mean[3], float std[3]);
// The same statistics of an f32 NHWC batch x (count pixels of 3 channels):
// mean over (N, H, W), unbiased std + 1e-7, accumulated in double.
void augment_stats_f32(const float *x, size_t count, float mean[3], float std[3]);
// Uses these stats from now on (and turns Normalize on).
void augment_set_stats(augment_t *self, const float mean[3], const float std[3]);

// CUDA backend: device milliseconds of the last batch's kernel; -1 on CPU.
double augment_last_kernel_ms(const augment_t *self);

// Number of usable CUDA devices (0 without a GPU or in a CPU-only build).
int augment_cuda_devices(void);

// Parses "train" | "valid" | "tta", "fused" | "reference", "f32" | "bf16",
// "cpu" | "cuda". Return 0, or -1 for an unknown name.
int augment_mode_parse(const char *s, augment_mode_t *out);
int augment_resample_parse(const char *s, augment_resample_t *out);
int augment_dtype_parse(const char *s, augment_dtype_t *out);
int augment_backend_parse(const char *s, augment_backend_t *out);
const char *augment_resample_name(augment_resample_t r);

#ifdef __cplusplus
}
#endif

#endif
