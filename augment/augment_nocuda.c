/*
 * augment_nocuda.c: the CUDA backend's entry points in a build without CUDA
 * (compiled instead of augment_cuda.cu when nvcc is absent): there is no
 * device, and asking for the CUDA backend is a clear one-line error.
 */
#include "augment_cuda.h"

#include "check.h"
#include "log.h"

int augment_cuda_device_count(void) { return 0; }

augment_cuda_t *augment_cuda_new(const augment_config_t *cfg)
{
    (void)cfg;
    nf_log_error("augment: this build has no CUDA backend (nvcc was not found at build time)");
    return NULL;
}

void augment_cuda_destroy(augment_cuda_t **self_p)
{
    if (self_p) *self_p = NULL;
}

void augment_cuda_run(augment_cuda_t *self, const augment_batch_params_t *bp,
                      const augment_image_params_t *img, const uint8_t *src, void *out,
                      augment_dtype_t dtype)
{
    NF_CHECK(0, "augment_cuda_run without a CUDA backend (self %p)", (void *)self);
}

double augment_cuda_last_kernel_ms(const augment_cuda_t *self) { return -1.0; }

void augment_cuda_run_device(augment_cuda_t *self, const augment_batch_params_t *bp,
                             const augment_image_params_t *img, const uint8_t *src, void *dev_out,
                             augment_dtype_t dtype)
{
    NF_CHECK(0, "augment_cuda_run_device without a CUDA backend (self %p)", (void *)self);
}

void *augment_cuda_stream(const augment_cuda_t *self) { return NULL; }
