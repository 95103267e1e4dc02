/*
 * transform.h: the batch transform op, one CPU implementation (OpenMP) and
 * one CUDA twin with the same arguments plus a stream.
 *
 * Input: a uint8 NHWC batch at the presize and the parameters drawn by
 * augment_params_draw(). Output: the model-ready NHWC batch at `size`, f32 or
 * bf16: geometry (reference or fused resample), /255, lighting, Normalize,
 * Mixup. Both implementations evaluate the same per-pixel functions
 * (pixel.h); neither allocates: the caller sizes buffers once with
 * augment_transform_workspace_bytes().
 *
 * CPU: pass 1 computes every output pixel of every image (parallel over
 * rows); with Mixup it writes f32 rows to the workspace and pass 2 mixes
 * them into the output. CUDA: one kernel per batch, one thread per output
 * pixel, which also evaluates the Mixup partner's pixel (no workspace).
 */
#ifndef NF_AUGMENT_TRANSFORM_H
#define NF_AUGMENT_TRANSFORM_H

#include "params.h"

#include <stddef.h>
#include <stdint.h>

#ifdef HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    augment_batch_params_t batch;       // shapes, crop box, flags (by value)
    const augment_image_params_t *img;  // (n) per-image parameters
    const uint8_t *src;                 // (n, src_h, src_w, 3)
    void *out;                          // (n, out_h, out_w, 3) f32 or bf16
    augment_dtype_t dtype;
    float *ws;                          // CPU with Mixup: (n, out_h, out_w, 3); else unused
    int threads;                        // CPU: OpenMP threads (0 = default); CUDA: unused
} augment_transform_args_t;

// Workspace bytes for batches of up to max_n images of out_h x out_w.
size_t augment_transform_workspace_bytes(augment_backend_t backend, int max_n, int out_h,
                                         int out_w, bool mixup);

// CPU: all pointers host memory.
void augment_transform_cpu(const augment_transform_args_t *a);

#ifdef HAVE_CUDA
// CUDA: img, src and out are device memory; enqueued on stream, not synchronized.
void augment_transform_cuda(const augment_transform_args_t *a, cudaStream_t stream);
#endif

#ifdef __cplusplus
}
#endif

#endif
