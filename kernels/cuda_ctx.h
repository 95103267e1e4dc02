/*
 * cuda_ctx.h: the explicit CUDA context every `_cuda` op takes as its last
 * argument: device, stream, cuDNN and cuBLAS handles bound to that stream,
 * one device workspace, the debug-sync switch, and the per-shape cuDNN
 * convolution plans. No op touches global device state: two contexts on two
 * devices (or two streams) can run side by side.
 *
 * Lifetime: cuda_ctx_new() selects the device, creates the stream and
 * handles; cuda_ctx_reserve_workspace() grows the workspace at set-up time
 * (ops never allocate device memory); cuda_ctx_destroy() releases all of it.
 * Ops are asynchronous on ctx->stream; call cuda_ctx_sync() before reading
 * results on the host.
 *
 * Include only from CUDA-enabled files (HAVE_CUDA targets).
 */
#ifndef NF_CUDA_CTX_H
#define NF_CUDA_CTX_H

#include <stdbool.h>
#include <stddef.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cuda_conv_cache_t cuda_conv_cache_t;  // conv2d.cu's per-shape plans

typedef struct cuda_ctx_t {
    int device;                     // CUDA device ordinal
    cudaStream_t stream;            // every op runs on this stream
    cudnnHandle_t cudnn;            // bound to stream
    cublasHandle_t cublas;          // bound to stream, workspace set
    void *workspace;                // device scratch for cuDNN/cuBLAS (may be NULL when 0)
    size_t workspace_bytes;         // its size
    bool debug_sync;                // NF_CUDA_DEBUG_SYNC=1: synchronise after every launch
    cuda_conv_cache_t *conv_cache;  // owned; built lazily by conv2d_*_cuda
} cuda_ctx_t;

// The smallest workspace a context holds: what cuBLAS(Lt) wants on Hopper.
#define CUDA_CTX_MIN_WORKSPACE ((size_t)32 << 20)

typedef struct {
    int device;              // device ordinal (0 for the first GPU)
    size_t workspace_bytes;  // initial workspace (at least CUDA_CTX_MIN_WORKSPACE)
} cuda_ctx_config_t;

// Number of usable CUDA devices; 0 when there is no driver or no device
// (never aborts: tests use it to decide whether to skip).
int cuda_device_count(void);

// Creates the context. Returns NULL (logged) when the device is missing or
// cannot be initialised; aborts on internal CUDA/cuDNN/cuBLAS failures after that.
cuda_ctx_t *cuda_ctx_new(const cuda_ctx_config_t *cfg);

// Ensures the workspace holds at least `bytes` (reallocates after a stream
// sync when it grows). Call at set-up time, not inside a step.
void cuda_ctx_reserve_workspace(cuda_ctx_t *ctx, size_t bytes);

// Waits for everything queued on ctx->stream.
void cuda_ctx_sync(cuda_ctx_t *ctx);

// Synchronises the stream, frees everything, nulls *self_p. Accepts NULL.
void cuda_ctx_destroy(cuda_ctx_t **self_p);

// Frees conv2d.cu's plan cache (called by cuda_ctx_destroy). Accepts NULL.
void cuda_conv_cache_destroy(cuda_conv_cache_t *cache);

#ifdef __cplusplus
}
#endif

#endif
