/*
 * batchnorm2d.cu: the CUDA twin of batchnorm2d.h through cuDNN 9's legacy
 * BatchNorm API in CUDNN_BATCHNORM_SPATIAL mode on NHWC descriptors. cuDNN's
 * contract matches ours: the running variance is updated with the unbiased
 * batch variance, exponentialAverageFactor = momentum, and the saved
 * statistics are the batch mean and 1/sqrt(biased var + eps). Scale, bias,
 * statistics and their gradients are fp32 (cudnnDeriveBNTensorDescriptor).
 *
 * The legacy BN functions are marked deprecated in cuDNN 9 (still shipped and
 * used by PyTorch); the graph API's BN is the migration path for a fused,
 * speed-focused executor. Descriptors are created per call (host only).
 */
#include "batchnorm2d.h"
#include "cuda_util.cuh"

typedef struct {
    cudnnTensorDescriptor_t x, bn;
} s_desc_t;

static s_desc_t s_desc(const batchnorm2d_params_t *p)
{
    NF_CHECK(p->n > 0 && p->h > 0 && p->w > 0 && p->c > 0, "batchnorm2d: bad shape");
    NF_CHECK(p->eps > 0, "batchnorm2d: eps %g", (double)p->eps);
    s_desc_t d;
    const cudnnDataType_t dt = p->dtype == KDTYPE_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    NF_CHECK(p->dtype == KDTYPE_F32 || p->dtype == KDTYPE_BF16, "batchnorm2d: bad dtype");
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&d.x));
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&d.bn));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NHWC, dt, p->n, p->c, p->h, p->w));
    CUDNN_CHECK(cudnnDeriveBNTensorDescriptor(d.bn, d.x, CUDNN_BATCHNORM_SPATIAL));
    return d;
}

static void s_free(s_desc_t *d)
{
    CUDNN_CHECK(cudnnDestroyTensorDescriptor(d->x));
    CUDNN_CHECK(cudnnDestroyTensorDescriptor(d->bn));
}

void batchnorm2d_forward_train_cuda(void *y, float *save_mean, float *save_invstd,
                                    float *running_mean, float *running_var, const void *x,
                                    const float *gamma, const float *beta,
                                    const batchnorm2d_params_t *p, cuda_ctx_t *ctx)
{
    s_desc_t d = s_desc(p);
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(
        ctx->cudnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.x, x, d.x, y, d.bn, gamma, beta,
        (double)p->momentum, running_mean, running_var, (double)p->eps, save_mean, save_invstd));
    if (ctx->debug_sync) CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    s_free(&d);
}

void batchnorm2d_forward_eval_cuda(void *y, const void *x, const float *gamma, const float *beta,
                                   const float *running_mean, const float *running_var,
                                   const batchnorm2d_params_t *p, cuda_ctx_t *ctx)
{
    s_desc_t d = s_desc(p);
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(cudnnBatchNormalizationForwardInference(
        ctx->cudnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, d.x, x, d.x, y, d.bn, gamma, beta,
        running_mean, running_var, (double)p->eps));
    if (ctx->debug_sync) CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    s_free(&d);
}

void batchnorm2d_backward_cuda(void *dx, float *dgamma, float *dbeta, const void *dy,
                               const void *x, const float *gamma, const float *save_mean,
                               const float *save_invstd, const batchnorm2d_params_t *p,
                               cuda_ctx_t *ctx)
{
    s_desc_t d = s_desc(p);
    const float one = 1.0f, zero = 0.0f;
    CUDNN_CHECK(cudnnBatchNormalizationBackward(
        ctx->cudnn, CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero, d.x, x, d.x, dy, d.x, dx,
        d.bn, gamma, dgamma, dbeta, (double)p->eps, save_mean, save_invstd));
    if (ctx->debug_sync) CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    s_free(&d);
}
