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
 * CPU: pass 1 computes every output row of every image (OpenMP over images;
 * the reference mode's intermediate images materialized once per image; row
 * loops vectorized with OpenMP simd), equal to pixel.h's function up to
 * float rounding; with Mixup it writes f32 rows to the workspace and pass 2
 * mixes them into the output. CUDA: one kernel per batch, one thread per
 * output pixel evaluating pixel.h (and the Mixup partner's pixel: no
 * workspace, no second pass).
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
    void *ws;                           // CPU: workspace of augment_transform_workspace_bytes()
    size_t ws_bytes;                    //      for these shapes and threads; CUDA: unused
    int threads;                        // CPU: OpenMP threads (>= 1, <= the workspace's)
} augment_transform_args_t;

// What a workspace is sized for: batches of up to max_n images of at most
// presize x presize in and size x size out, Mixup or not, `threads` threads.
typedef struct {
    int max_n, presize, size, threads;
    bool mixup;
    augment_resample_t resample;
} augment_workspace_shape_t;

// Workspace bytes (0 for CUDA, whose kernel needs none).
size_t augment_transform_workspace_bytes(augment_backend_t backend,
                                         const augment_workspace_shape_t *s);

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
