/*
 * cuda_check.h: AUGMENT_CUDA_CHECK(call), the always-on check of every CUDA
 * runtime call in the augment .cu files. Evaluates the call once; on failure prints
 * the expression, file:line and cudaGetErrorString and aborts (nf_die_).
 * Used only by CUDA translation units (it includes the CUDA runtime API).
 * With AUGMENT_CUDA_SYNC=1 in the environment the launchers also
 * synchronize after each launch, so an asynchronous fault is reported at the
 * launch that caused it.
 */
#ifndef NF_AUGMENT_CUDA_CHECK_H
#define NF_AUGMENT_CUDA_CHECK_H

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif
#include "check.h"
#ifdef __cplusplus
}
#endif

#define AUGMENT_CUDA_CHECK(call)                                                              \
    do {                                                                                      \
        cudaError_t augment_err_ = (call);                                                    \
        if (augment_err_ != cudaSuccess)                                                      \
            nf_die_(__FILE__, __LINE__, __func__, #call, "CUDA error %d: %s",                 \
                    (int)augment_err_, cudaGetErrorString(augment_err_));                     \
    } while (0)

#endif
