/*
 * cuda_check.h: the CUDA, cuDNN and cuBLAS members of the check family
 * (common/check.h): each macro evaluates its argument once, and on failure
 * prints the expression, file:line, function and the library's error
 * string, then abort()s. Always on, whatever NDEBUG says.
 *
 * CUDA_LAUNCH_CHECK(ctx) goes after every kernel launch: it checks
 * cudaGetLastError() and, when the context's debug-sync switch is on
 * (environment NF_CUDA_DEBUG_SYNC=1), synchronises the stream so that an
 * asynchronous fault is reported at the launch that caused it.
 *
 * Include only from CUDA-enabled files (HAVE_CUDA targets).
 */
#ifndef NF_CUDA_CHECK_H
#define NF_CUDA_CHECK_H

// check.h has no C++ linkage guards of its own; the .cu files are C++.
#ifdef __cplusplus
extern "C" {
#endif
#include "check.h"
#ifdef __cplusplus
}
#endif

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#define CUDA_CHECK(call)                                                                      \
    do {                                                                                      \
        cudaError_t nf_cuda_rc_ = (call);                                                     \
        if (nf_cuda_rc_ != cudaSuccess)                                                       \
            nf_die_(__FILE__, __LINE__, __func__, #call, "CUDA error %d: %s",                \
                    (int)nf_cuda_rc_, cudaGetErrorString(nf_cuda_rc_));                       \
    } while (0)

#define CUDNN_CHECK(call)                                                                     \
    do {                                                                                      \
        cudnnStatus_t nf_cudnn_rc_ = (call);                                                  \
        if (nf_cudnn_rc_ != CUDNN_STATUS_SUCCESS)                                             \
            nf_die_(__FILE__, __LINE__, __func__, #call, "cuDNN error %d: %s",               \
                    (int)nf_cudnn_rc_, cudnnGetErrorString(nf_cudnn_rc_));                    \
    } while (0)

#define CUBLAS_CHECK(call)                                                                    \
    do {                                                                                      \
        cublasStatus_t nf_cublas_rc_ = (call);                                                \
        if (nf_cublas_rc_ != CUBLAS_STATUS_SUCCESS)                                           \
            nf_die_(__FILE__, __LINE__, __func__, #call, "cuBLAS error %d: %s",              \
                    (int)nf_cublas_rc_, cublasGetStatusString(nf_cublas_rc_));            \
    } while (0)

// After every <<<>>> launch: the launch error, and the kernel's own error
// too when ctx->debug_sync is set.
#define CUDA_LAUNCH_CHECK(ctx)                                                                \
    do {                                                                                      \
        CUDA_CHECK(cudaGetLastError());                                                       \
        if ((ctx)->debug_sync) CUDA_CHECK(cudaStreamSynchronize((ctx)->stream));              \
    } while (0)

#endif
