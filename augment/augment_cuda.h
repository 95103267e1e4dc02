/*
 * augment_cuda.h: the CUDA backend of the augment context: device buffers
 * sized once for the largest batch, a stream, timing events, and the upload /
 * kernel / download sequence of one batch. Declared in every build; in a
 * build without CUDA (augment_nocuda.c) augment_cuda_new() returns NULL with
 * a clear message and augment_cuda_device_count() returns 0.
 */
#ifndef NF_AUGMENT_CUDA_H
#define NF_AUGMENT_CUDA_H

#include "params.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct augment_cuda_t augment_cuda_t;

// Number of usable CUDA devices (0 when none, when the driver fails, or when
// built without CUDA). Never aborts.
int augment_cuda_device_count(void);

// Allocates device buffers for cfg->max_batch images of cfg->presize^2 in
// and cfg->size^2 out, on device cfg->device. NULL (logged) when CUDA is
// unavailable.
augment_cuda_t *augment_cuda_new(const augment_config_t *cfg);
// Frees everything and nulls *self_p. Accepts NULL.
void augment_cuda_destroy(augment_cuda_t **self_p);

// Uploads src (host, (n, src_h, src_w, 3)) and the image parameters, runs
// the transform kernel, downloads the result into out (host, n x out_h x
// out_w x 3 of dtype) and waits for it.
void augment_cuda_run(augment_cuda_t *self, const augment_batch_params_t *bp,
                      const augment_image_params_t *img, const uint8_t *src, void *out,
                      augment_dtype_t dtype);
// Milliseconds the last batch's kernel took on the device (CUDA events).
double augment_cuda_last_kernel_ms(const augment_cuda_t *self);

// As augment_cuda_run, but the result stays on the device: the kernel writes
// dev_out (device memory, e.g. a devring slot) on the context's stream and
// nothing waits for it (publish the slot on augment_cuda_stream()). Only the
// previous batch's parameter upload is waited for before the pinned staging
// is reused. augment_cuda_last_kernel_ms then reports the batch before.
void augment_cuda_run_device(augment_cuda_t *self, const augment_batch_params_t *bp,
                             const augment_image_params_t *img, const uint8_t *src, void *dev_out,
                             augment_dtype_t dtype);
// The cudaStream_t every batch runs on (as void *).
void *augment_cuda_stream(const augment_cuda_t *self);

#ifdef __cplusplus
}
#endif

#endif
