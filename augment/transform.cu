/*
 * transform.cu: the CUDA batch transform (see transform.h). One kernel per
 * batch, one thread per output pixel (all three channels): geometry, /255,
 * lighting, Normalize, Mixup (the partner's pixel is evaluated by the same
 * thread, so no workspace and no second pass), store as f32 or bf16 NHWC.
 * The per-pixel math is pixel.h verbatim (the CPU implementation is tested
 * against the same functions).
 */
#include "cuda_check.h"  // kernels/: CUDA_CHECK
#include "pixel.h"
#include "transform.h"

#include <cuda_runtime.h>

static __global__ void s_transform_kernel(augment_batch_params_t bp,
                                          const augment_image_params_t *__restrict__ img,
                                          const uint8_t *__restrict__ src, void *out, int dtype)
{
    const int j = blockIdx.y;
    const int pix = blockIdx.x * blockDim.x + threadIdx.x;
    if (pix >= bp.out_h * bp.out_w) return;
    const int r = pix / bp.out_w, c = pix % bp.out_w;
    const size_t src_stride = (size_t)bp.src_h * (size_t)bp.src_w * 3;
    const augment_image_params_t *ip = &img[j];
    float v[3];
    augment_px_value(&bp, ip, src + (size_t)j * src_stride, r, c, v);
    const int partner = ip->partner;
    if (bp.mix_on && partner != j) {
        float p[3];
        augment_px_value(&bp, &img[partner], src + (size_t)partner * src_stride, r, c, p);
        for (int ch = 0; ch < 3; ch++) v[ch] = augment_px_mix(v[ch], p[ch], ip->lambda);
    }
    const size_t off = ((size_t)j * bp.out_h * bp.out_w + (size_t)pix) * 3;
    if (dtype == AUGMENT_DTYPE_F32) {
        float *o = (float *)out + off;
        o[0] = v[0];
        o[1] = v[1];
        o[2] = v[2];
    } else {
        uint16_t *o = (uint16_t *)out + off;
        o[0] = augment_px_bf16(v[0]);
        o[1] = augment_px_bf16(v[1]);
        o[2] = augment_px_bf16(v[2]);
    }
}

extern "C" void augment_transform_cuda(const augment_transform_args_t *a, cudaStream_t stream)
{
    const augment_batch_params_t *bp = &a->batch;
    NF_CHECK(bp->n >= 1 && bp->n <= 65535, "batch of %d images", bp->n);
    const int hw = bp->out_h * bp->out_w, threads = 256;
    dim3 grid((unsigned)((hw + threads - 1) / threads), (unsigned)bp->n);
    s_transform_kernel<<<grid, threads, 0, stream>>>(*bp, a->img, a->src, a->out, (int)a->dtype);
    CUDA_CHECK(cudaGetLastError());
}
