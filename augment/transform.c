/*
 * transform.c: the CPU batch transform (see transform.h), OpenMP over
 * output rows. Each pixel is a pure function of its parameters, so the result
 * does not depend on the thread count or the schedule.
 */
#include "transform.h"

#include "check.h"
#include "pixel.h"

#include <omp.h>

size_t augment_transform_workspace_bytes(augment_backend_t backend, int max_n, int out_h,
                                         int out_w, bool mixup)
{
    if (backend != AUGMENT_BACKEND_CPU || !mixup) return 0;
    return (size_t)max_n * (size_t)out_h * (size_t)out_w * 3 * sizeof(float);
}

static void s_store(void *out, augment_dtype_t dtype, size_t off, const float v[3])
{
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

void augment_transform_cpu(const augment_transform_args_t *a)
{
    const augment_batch_params_t *bp = &a->batch;
    const int n = bp->n, H = bp->out_h, W = bp->out_w;
    const size_t src_stride = (size_t)bp->src_h * (size_t)bp->src_w * 3;
    const size_t img_elems = (size_t)H * (size_t)W * 3;
    const bool mix = bp->mix_on != 0;
    NF_CHECK(!mix || a->ws, "Mixup needs the workspace");
    int threads = a->threads > 0 ? a->threads : omp_get_max_threads();

    // pass 1: every output pixel (to the workspace when mixing)
#pragma omp parallel for schedule(dynamic, 4) num_threads(threads)
    for (int row = 0; row < n * H; row++) {
        int j = row / H, r = row % H;
        const augment_image_params_t *ip = &a->img[j];
        const uint8_t *src = a->src + (size_t)j * src_stride;
        size_t off = (size_t)j * img_elems + (size_t)r * W * 3;
        for (int c = 0; c < W; c++) {
            float v[3];
            augment_px_value(bp, ip, src, r, c, v);
            if (mix) {
                float *o = a->ws + off + (size_t)c * 3;
                o[0] = v[0];
                o[1] = v[1];
                o[2] = v[2];
            } else {
                s_store(a->out, a->dtype, off + (size_t)c * 3, v);
            }
        }
    }
    if (!mix) return;

    // pass 2: Mixup, x_j = lerp(x_partner, x_j, lambda_j)
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int row = 0; row < n * H; row++) {
        int j = row / H, r = row % H;
        const augment_image_params_t *ip = &a->img[j];
        size_t off = (size_t)j * img_elems + (size_t)r * W * 3;
        size_t poff = (size_t)ip->partner * img_elems + (size_t)r * W * 3;
        for (int c = 0; c < W; c++) {
            const float *x = a->ws + off + (size_t)c * 3, *p = a->ws + poff + (size_t)c * 3;
            float v[3] = {augment_px_mix(x[0], p[0], ip->lambda), augment_px_mix(x[1], p[1], ip->lambda),
                          augment_px_mix(x[2], p[2], ip->lambda)};
            s_store(a->out, a->dtype, off + (size_t)c * 3, v);
        }
    }
}
