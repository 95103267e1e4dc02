/*
 * cuda_ctx.c: see cuda_ctx.h. Every CUDA, cuDNN and cuBLAS call is checked;
 * only the device query at start-up turns failure into "no GPU" (NULL / 0).
 */
#include "cuda_ctx.h"

#include "check.h"
#include "cuda_check.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

int cuda_device_count(void)
{
    int n = 0;
    cudaError_t rc = cudaGetDeviceCount(&n);
    if (rc != cudaSuccess) {
        (void)cudaGetLastError();  // clear the sticky "no driver / no device" error
        return 0;
    }
    return n;
}

cuda_ctx_t *cuda_ctx_new(const cuda_ctx_config_t *cfg)
{
    const int count = cuda_device_count();
    if (cfg->device < 0 || cfg->device >= count) {
        nf_log_error("CUDA device %d not available (%d usable devices)", cfg->device, count);
        return NULL;
    }
    cudaError_t rc = cudaSetDevice(cfg->device);
    if (rc != cudaSuccess) {
        nf_log_error("cannot use CUDA device %d: %s", cfg->device, cudaGetErrorString(rc));
        (void)cudaGetLastError();
        return NULL;
    }
    cuda_ctx_t *ctx = nf_xcalloc(1, sizeof *ctx);
    ctx->device = cfg->device;
    const char *dbg = getenv("NF_CUDA_DEBUG_SYNC");
    ctx->debug_sync = dbg && *dbg && strcmp(dbg, "0") != 0;
    CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
    CUDNN_CHECK(cudnnCreate(&ctx->cudnn));
    CUDNN_CHECK(cudnnSetStream(ctx->cudnn, ctx->stream));
    CUBLAS_CHECK(cublasCreate(&ctx->cublas));
    CUBLAS_CHECK(cublasSetStream(ctx->cublas, ctx->stream));
    cuda_ctx_reserve_workspace(ctx, cfg->workspace_bytes > CUDA_CTX_MIN_WORKSPACE
                                         ? cfg->workspace_bytes
                                         : CUDA_CTX_MIN_WORKSPACE);
    return ctx;
}

void cuda_ctx_reserve_workspace(cuda_ctx_t *ctx, size_t bytes)
{
    if (bytes <= ctx->workspace_bytes) return;
    CUDA_CHECK(cudaSetDevice(ctx->device));
    CUDA_CHECK(cudaStreamSynchronize(ctx->stream));  // nothing queued may still use the old one
    if (ctx->workspace) CUDA_CHECK(cudaFree(ctx->workspace));
    ctx->workspace = NULL;
    ctx->workspace_bytes = 0;
    CUDA_CHECK(cudaMalloc(&ctx->workspace, bytes));
    ctx->workspace_bytes = bytes;
    // cuBLAS shares it: ops on one stream never run concurrently
    CUBLAS_CHECK(cublasSetWorkspace(ctx->cublas, ctx->workspace, ctx->workspace_bytes));
}

void cuda_ctx_sync(cuda_ctx_t *ctx) { CUDA_CHECK(cudaStreamSynchronize(ctx->stream)); }

void cuda_ctx_destroy(cuda_ctx_t **self_p)
{
    if (!self_p || !*self_p) return;
    cuda_ctx_t *ctx = *self_p;
    CUDA_CHECK(cudaSetDevice(ctx->device));
    CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    cuda_conv_cache_destroy(ctx->conv_cache);
    CUBLAS_CHECK(cublasDestroy(ctx->cublas));
    CUDNN_CHECK(cudnnDestroy(ctx->cudnn));
    if (ctx->workspace) CUDA_CHECK(cudaFree(ctx->workspace));
    CUDA_CHECK(cudaStreamDestroy(ctx->stream));
    free(ctx);
    *self_p = NULL;
}
