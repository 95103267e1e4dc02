/*
 * augment_cuda.cu: the CUDA backend of the augment context (see
 * augment_cuda.h). Everything is allocated once in augment_cuda_new(); a
 * batch is: parameters to a pinned staging block, two uploads, one kernel
 * (transform.cu), one download, one stream synchronisation.
 */
#include "augment_cuda.h"
#include "cuda_check.h"  // kernels/: CUDA_CHECK
#include "transform.h"

#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "log.h"
}

struct augment_cuda_t {
    int device;
    int max_batch;
    size_t src_bytes_max;          // max_batch * presize^2 * 3
    size_t out_bytes_max;          // max_batch * size^2 * 3 * sizeof(float)
    cudaStream_t stream;
    cudaEvent_t ev_start, ev_stop;
    uint8_t *d_src;                // (max_batch, presize, presize, 3)
    augment_image_params_t *d_img; // (max_batch)
    augment_image_params_t *h_img; // (max_batch) pinned staging
    void *d_out;                   // (max_batch, size, size, 3) f32 or bf16
    float last_ms;
    bool debug_sync;               // NF_CUDA_DEBUG_SYNC=1: check the kernel right after launch
    cudaEvent_t ev_params;         // the parameter upload of the last batch has run
    bool pending;                  // a device-output batch has not been waited for
};

extern "C" int augment_cuda_device_count(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();  // clear the (non-sticky) error
        return 0;
    }
    return n;
}

extern "C" augment_cuda_t *augment_cuda_new(const augment_config_t *cfg)
{
    int count = augment_cuda_device_count();
    if (cfg->device >= count) {
        nf_log_error("augment: CUDA device %d is not available (%d usable devices)", cfg->device,
                     count);
        return NULL;
    }
    augment_cuda_t *self = (augment_cuda_t *)nf_xcalloc(1, sizeof *self);
    self->device = cfg->device;
    self->max_batch = cfg->max_batch;
    self->src_bytes_max = (size_t)cfg->max_batch * (size_t)cfg->presize * (size_t)cfg->presize * 3;
    self->out_bytes_max = (size_t)cfg->max_batch * (size_t)cfg->size * (size_t)cfg->size * 3 *
                          sizeof(float);
    CUDA_CHECK(cudaSetDevice(self->device));
    CUDA_CHECK(cudaStreamCreateWithFlags(&self->stream, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreate(&self->ev_start));
    CUDA_CHECK(cudaEventCreate(&self->ev_stop));
    CUDA_CHECK(cudaEventCreateWithFlags(&self->ev_params, cudaEventDisableTiming));
    CUDA_CHECK(cudaMalloc((void **)&self->d_src, self->src_bytes_max));
    CUDA_CHECK(
        cudaMalloc((void **)&self->d_img, (size_t)cfg->max_batch * sizeof(augment_image_params_t)));
    CUDA_CHECK(cudaMallocHost((void **)&self->h_img,
                              (size_t)cfg->max_batch * sizeof(augment_image_params_t)));
    CUDA_CHECK(cudaMalloc(&self->d_out, self->out_bytes_max));
    self->last_ms = -1.0f;
    const char *sync = getenv("NF_CUDA_DEBUG_SYNC");
    self->debug_sync = sync && sync[0] == '1';
    return self;
}

extern "C" void augment_cuda_destroy(augment_cuda_t **self_p)
{
    if (!self_p || !*self_p) return;
    augment_cuda_t *self = *self_p;
    CUDA_CHECK(cudaSetDevice(self->device));
    CUDA_CHECK(cudaStreamSynchronize(self->stream));
    CUDA_CHECK(cudaFree(self->d_out));
    CUDA_CHECK(cudaFreeHost(self->h_img));
    CUDA_CHECK(cudaFree(self->d_img));
    CUDA_CHECK(cudaFree(self->d_src));
    CUDA_CHECK(cudaEventDestroy(self->ev_stop));
    CUDA_CHECK(cudaEventDestroy(self->ev_params));
    CUDA_CHECK(cudaEventDestroy(self->ev_start));
    CUDA_CHECK(cudaStreamDestroy(self->stream));
    free(self);
    *self_p = NULL;
}

// Uploads the batch and launches the transform into out_dev (enqueued).
static void s_launch(augment_cuda_t *self, const augment_batch_params_t *bp,
                     const augment_image_params_t *img, const uint8_t *src, void *out_dev,
                     augment_dtype_t dtype, size_t *out_bytes)
{
    const int n = bp->n;
    const size_t src_bytes = (size_t)n * (size_t)bp->src_h * (size_t)bp->src_w * 3;
    *out_bytes = (size_t)n * (size_t)bp->out_h * (size_t)bp->out_w * 3 *
                 (dtype == AUGMENT_DTYPE_F32 ? sizeof(float) : sizeof(uint16_t));
    NF_CHECK(n >= 1 && n <= self->max_batch && src_bytes <= self->src_bytes_max &&
                 *out_bytes <= self->out_bytes_max,
             "batch of %d (%zu in, %zu out bytes) exceeds the buffers", n, src_bytes, *out_bytes);
    CUDA_CHECK(cudaSetDevice(self->device));
    // the pinned parameters of the previous batch may still be on their way
    CUDA_CHECK(cudaEventSynchronize(self->ev_params));
    memcpy(self->h_img, img, (size_t)n * sizeof *img);
    CUDA_CHECK(cudaMemcpyAsync(self->d_img, self->h_img, (size_t)n * sizeof *img,
                               cudaMemcpyHostToDevice, self->stream));
    CUDA_CHECK(cudaEventRecord(self->ev_params, self->stream));
    CUDA_CHECK(cudaMemcpyAsync(self->d_src, src, src_bytes, cudaMemcpyHostToDevice, self->stream));
    augment_transform_args_t a;
    memset(&a, 0, sizeof a);
    a.batch = *bp;
    a.img = self->d_img;
    a.src = self->d_src;
    a.out = out_dev;
    a.dtype = dtype;
    if (self->pending) {  // the previous device-output batch's kernel time
        CUDA_CHECK(cudaEventSynchronize(self->ev_stop));
        CUDA_CHECK(cudaEventElapsedTime(&self->last_ms, self->ev_start, self->ev_stop));
        self->pending = false;
    }
    CUDA_CHECK(cudaEventRecord(self->ev_start, self->stream));
    augment_transform_cuda(&a, self->stream);
    if (self->debug_sync) CUDA_CHECK(cudaStreamSynchronize(self->stream));
    CUDA_CHECK(cudaEventRecord(self->ev_stop, self->stream));
}

extern "C" void augment_cuda_run(augment_cuda_t *self, const augment_batch_params_t *bp,
                                 const augment_image_params_t *img, const uint8_t *src, void *out,
                                 augment_dtype_t dtype)
{
    size_t out_bytes;
    s_launch(self, bp, img, src, self->d_out, dtype, &out_bytes);
    CUDA_CHECK(cudaMemcpyAsync(out, self->d_out, out_bytes, cudaMemcpyDeviceToHost, self->stream));
    CUDA_CHECK(cudaStreamSynchronize(self->stream));
    CUDA_CHECK(cudaEventElapsedTime(&self->last_ms, self->ev_start, self->ev_stop));
}

extern "C" void augment_cuda_run_device(augment_cuda_t *self, const augment_batch_params_t *bp,
                                        const augment_image_params_t *img, const uint8_t *src,
                                        void *dev_out, augment_dtype_t dtype)
{
    size_t out_bytes;
    s_launch(self, bp, img, src, dev_out, dtype, &out_bytes);
    self->pending = true;
}

extern "C" void *augment_cuda_stream(const augment_cuda_t *self) { return (void *)self->stream; }

extern "C" double augment_cuda_last_kernel_ms(const augment_cuda_t *self)
{
    return self ? (double)self->last_ms : -1.0;
}
